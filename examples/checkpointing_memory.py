"""Activation checkpointing: trading compute for memory in backpropagation.

Run: .venv/bin/python examples/checkpointing_memory.py

Backprop keeps every layer's activations from the forward pass until the backward pass
has used them: memory grows with depth L. ``checkpoint_sequential(model, k, x)`` keeps
only the inputs of k segments; each segment's inside is recomputed during backward.
The peak of saved activations falls from ~L layers' worth to ~(L/k + k), smallest near
k = sqrt(L), for one extra forward pass at most (about a third more compute, since a
backward costs about two forwards).

For a deep MLP this prints, per k: the peak memory a training step allocates (measured
with the standard library's tracemalloc, which sees NumPy's buffers: activations,
gradients and temporaries alike), the step time, both against the plain run, and the
largest difference of the gradients from the plain run's (zero: the recomputation is
exact). The memory column traces the U of L/k + k: past sqrt(L), the k segment inputs
cost more than the shorter segments save.
"""

from __future__ import annotations

import math
import time
import tracemalloc

import numpy as np

import chainrule as torch
import chainrule.nn as nn
from chainrule.utils.checkpoint import checkpoint_sequential


def make_model(depth: int, width: int, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    layers = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.Tanh()]
    return nn.Sequential(*layers)


def step(model: nn.Sequential, x: torch.Tensor, segments: int | None) -> None:
    """One forward and backward, from gradients set to None."""
    model.zero_grad()
    out = model(x) if segments is None else checkpoint_sequential(model, segments, x)
    out.square().mean().backward()


def peak_bytes(model: nn.Sequential, x: torch.Tensor, segments: int | None) -> tuple[int, list]:
    """Peak bytes allocated by a step, and the gradients it gives."""
    model.zero_grad()
    tracemalloc.start()
    try:
        start_bytes = tracemalloc.get_traced_memory()[0]
        step(model, x, segments)
        peak = tracemalloc.get_traced_memory()[1] - start_bytes
    finally:
        tracemalloc.stop()
    return peak, [p.grad.numpy().copy() for p in model.parameters()]


def step_times(model: nn.Sequential, x: torch.Tensor, plans: dict, repeats: int) -> dict:
    """Median seconds of a step per plan, the plans taking turns (so that a change in the
    machine's load hits them alike), timed without tracemalloc, which slows allocation."""
    times: dict = {name: [] for name in plans}
    for segments in plans.values():
        step(model, x, segments)  # warm-up: the first step pays for first-time allocations
    for _ in range(repeats):
        for name, segments in plans.items():
            start = time.perf_counter()
            step(model, x, segments)
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def main(depth: int = 64, width: int = 128, batch: int = 1024, repeats: int = 5,
         verbose: bool = True) -> dict:
    model = make_model(depth, width)
    x = torch.randn(batch, width)
    layers = 2 * depth  # Linear and Tanh modules
    root = round(math.sqrt(layers))
    plans = {"plain": None, **{f"k = {k}": k for k in sorted({2, 4, root, layers // 4})}}
    memory = {name: peak_bytes(model, x, segments) for name, segments in plans.items()}
    times = step_times(model, x, plans, repeats)
    plain_grads = memory["plain"][1]
    rows = {name: (peak, times[name], max(float(np.max(np.abs(a - b))) for a, b in zip(grads, plain_grads)))
            for name, (peak, grads) in memory.items()}
    plain_bytes, plain_time = rows["plain"][0], rows["plain"][1]
    if verbose:
        print(f"{depth} Linear+Tanh layers of width {width}, batch {batch}, float32 "
              f"(sqrt of {layers} modules: {root})")
        print(f"{'':10} {'step peak':>12} {'vs plain':>9} {'step':>9} {'vs plain':>9} {'grad diff':>10}")
        for name, (peak, seconds, error) in rows.items():
            print(f"{name:10} {peak / 2**20:9.2f} MiB {peak / plain_bytes:9.2f} "
                  f"{seconds * 1e3:6.1f} ms {seconds / plain_time:9.2f} {error:10.1e}")
    return {name: {"bytes": peak, "seconds": seconds, "grad_diff": error}
            for name, (peak, seconds, error) in rows.items()}


if __name__ == "__main__":
    main()
