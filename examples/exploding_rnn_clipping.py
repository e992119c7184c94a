"""Exploding gradients in a recurrent network, and gradient clipping.

Run: .venv/bin/python examples/exploding_rnn_clipping.py

A ReLU RNN whose recurrent matrix starts at 1.1 I reads sequences of T positive numbers
and must output their mean. The state grows by about 1.1 a step in the forward pass and
backpropagation through time multiplies the gradient by the recurrent Jacobian once per
step, so at initialisation the gradient's norm grows exponentially with T (the first
table). Trained with plain SGD, every learning rate large enough to make progress
turns the loss into NaN within a couple of steps; only a narrow band of tiny rates works.
With ``nn.utils.clip_grad_norm_(params, 1.0)`` each step is at most lr long, the first huge
gradients only point the way, and a wide range of rates trains (the second table; the
loss of always answering 0.5 is 1/(12 T)).
"""

from __future__ import annotations

import math

import numpy as np

import chainrule as torch
import chainrule.nn as nn


def make_model(hidden: int, scale: float, seed: int) -> tuple[nn.RNN, nn.Linear]:
    torch.manual_seed(seed)
    rnn = nn.RNN(1, hidden, nonlinearity="relu", batch_first=True)
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(scale * torch.eye(hidden))  # the identity scaled past 1
    return rnn, nn.Linear(hidden, 1)


def loss_of(rnn: nn.RNN, head: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    out, _ = rnn(x)
    return nn.functional.mse_loss(head(out[:, -1]), x.mean(1))


def gradient_norm_at_init(steps: int, hidden: int = 16, scale: float = 1.1, seed: int = 0) -> float:
    rnn, head = make_model(hidden, scale, seed)
    x = torch.rand(32, steps, 1, generator=torch.Generator().manual_seed(seed))
    loss_of(rnn, head, x).backward()
    params = [*rnn.parameters(), *head.parameters()]
    return float(nn.utils.clip_grad_norm_(params, math.inf))


def train(lr: float, clip: float | None, steps: int = 30, iterations: int = 300, hidden: int = 16,
          scale: float = 1.1, seed: int = 0) -> float:
    """The mean loss of the last 20 iterations (NaN when training blew up)."""
    rnn, head = make_model(hidden, scale, seed)
    params = [*rnn.parameters(), *head.parameters()]
    optimizer = torch.optim.SGD(params, lr=lr)
    data = torch.Generator().manual_seed(seed + 1)
    losses = []
    for _ in range(iterations):
        loss = loss_of(rnn, head, torch.rand(32, steps, 1, generator=data))
        optimizer.zero_grad()
        loss.backward()
        if clip is not None:
            nn.utils.clip_grad_norm_(params, clip)
        optimizer.step()
        losses.append(float(loss.item()))
        if not math.isfinite(losses[-1]):
            return math.nan
    return float(np.mean(losses[-20:]))


def main(steps: int = 30, iterations: int = 300, lrs: tuple = (1e-7, 1e-6, 1e-5, 1e-3, 3e-2, 1e-1),
         lengths: tuple = (5, 10, 20, 40), verbose: bool = True) -> dict:
    norms = {t: gradient_norm_at_init(t) for t in lengths}
    with np.errstate(all="ignore"):  # the runs without clipping overflow on purpose
        plain = {lr: train(lr, None, steps, iterations) for lr in lrs}
        clipped = {lr: train(lr, 1.0, steps, iterations) for lr in lrs}
    if verbose:
        print("gradient norm at initialisation (recurrent matrix 1.1 I):")
        for t, norm in norms.items():
            print(f"  T = {t:3d}   {norm:10.3g}")
        print(f"\nfinal loss after {iterations} SGD steps, T = {steps} "
              f"(answering 0.5 always: {1 / (12 * steps):.5f}):")
        print(f"  {'lr':>8}  {'no clipping':>12}  {'clip norm 1':>12}")
        for lr in lrs:
            print(f"  {lr:8.0e}  {_show(plain[lr]):>12}  {_show(clipped[lr]):>12}")
    return {"norms": norms, "plain": plain, "clipped": clipped, "baseline": 1 / (12 * steps)}


def _show(loss: float) -> str:
    return "diverged" if math.isnan(loss) else f"{loss:.5f}"


if __name__ == "__main__":
    main()
