"""Run the same training loop on chainrule and PyTorch and compare the trajectories.

The model is a 2-layer MLP written with plain tensor ops, in float64, on fixed data; the
loop is written once against the PyTorch API and run with either library as ``lib``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import chainrule

STEPS = 50


def initial_arrays(seed: int = 0) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    params = [rng.normal(0, 0.5, (4, 8)), rng.normal(0, 0.1, 8),
              rng.normal(0, 0.5, (8, 2)), rng.normal(0, 0.1, 2)]
    x = rng.normal(size=(16, 4))
    y = np.stack([np.sin(x[:, 0] + x[:, 1]), x[:, 2] * x[:, 3]], axis=1)
    return params, x, y


def loss_fn(params: list[Any], x: Any, y: Any) -> Any:
    w1, b1, w2, b2 = params
    out = (x @ w1 + b1).tanh() @ w2 + b2
    return ((out - y) ** 2).mean()


def train(lib: Any, make_optimizer: Callable[[Any, list[Any]], Any],
          make_scheduler: Callable[[Any, Any], Any] | None = None, steps: int = STEPS,
          plateau: bool = False) -> tuple[list[np.ndarray], list[list[float]]]:
    """Train with ``lib`` (chainrule or torch); returns the final parameters and the
    learning rates after every step."""
    arrays, x_np, y_np = initial_arrays()
    params = [lib.tensor(a, dtype=lib.float64, requires_grad=True) for a in arrays]
    x, y = lib.tensor(x_np, dtype=lib.float64), lib.tensor(y_np, dtype=lib.float64)
    opt = make_optimizer(lib, params)
    sched = make_scheduler(lib, opt) if make_scheduler else None
    lrs = []

    def closure() -> Any:
        opt.zero_grad()
        loss = loss_fn(params, x, y)
        loss.backward()
        return loss

    for _ in range(steps):
        loss = opt.step(closure)
        if sched is not None:
            sched.step(loss.item()) if plateau else sched.step()
        lrs.append([group["lr"] for group in opt.param_groups])
    return [p.detach().numpy().copy() for p in params], lrs


def assert_same_trajectory(make_optimizer: Callable, make_scheduler: Callable | None = None,
                           steps: int = STEPS, plateau: bool = False, rtol: float = 1e-8) -> None:
    import torch

    ours, our_lrs = train(chainrule, make_optimizer, make_scheduler, steps, plateau)
    theirs, their_lrs = train(torch, make_optimizer, make_scheduler, steps, plateau)
    assert our_lrs == their_lrs
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-12)
