"""Peak saved-activation bytes and step time of a deep MLP with and without checkpointing.

For L = 16, 64, 256 layers (width 256, batch 64, float32) it runs a training step three
ways: plain, checkpoint_sequential with sqrt(L) segments, and with a memory budget of
1.5x the sqrt(L) plan's estimated peak handed to the planner. It prints the peak
activation bytes saved for backward (chainrule.diagnostics.track_saved_memory, weights
left out since they stay alive anyway),
the median step time, and both relative to the plain run; JSON goes to benchmarks/results/.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/checkpoint_memory.py
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time

import numpy as np

import chainrule as cr
import chainrule.nn.functional as F
import workloads
from chainrule.diagnostics import track_saved_memory
from chainrule.utils.checkpoint import checkpoint_sequential, measure_layers, plan_segments

WIDTH, BATCH = 256, 64


def make_layers(depth: int) -> tuple[list, list]:
    rng = np.random.default_rng(0)
    weights = [cr.tensor(rng.standard_normal((WIDTH, WIDTH)).astype(np.float32) / np.sqrt(WIDTH),
                         requires_grad=True) for _ in range(depth)]
    return [_layer(w) for w in weights], weights


def _layer(weight: cr.Tensor):
    return lambda h: F.linear(h, weight).tanh()


def step(layers: list, weights: list, x: cr.Tensor, run) -> None:
    for w in weights:
        w.grad = None
    run(layers, x).sum().backward()


def plain(layers: list, x: cr.Tensor) -> cr.Tensor:
    for layer in layers:
        x = layer(x)
    return x


def measure(layers: list, weights: list, x: cr.Tensor, run, repeats: int) -> tuple[int, float]:
    with track_saved_memory(activations_only=True) as memory:
        step(layers, weights, x, run)
    step(layers, weights, x, run)  # warm-up outside the counter
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step(layers, weights, x, run)
        times.append(time.perf_counter() - start)
    return memory.peak_bytes, statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--depths", default="16,64,256")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/results/checkpoint_memory.json")
    args = parser.parse_args()
    x = cr.tensor(np.random.default_rng(1).standard_normal((BATCH, WIDTH)).astype(np.float32))
    rows = []
    print(f"{'L':>4} {'run':18} {'segments':>8} {'peak saved':>12} {'x plain':>8} "
          f"{'step ms':>8} {'x plain':>8}")
    for depth in (int(d) for d in args.depths.split(",")):
        layers, weights = make_layers(depth)
        saved, outputs = measure_layers(layers, x)
        sqrt_plan = plan_segments(saved, outputs, input_bytes=int(x._data.nbytes))
        runs = [("plain", None, plain),
                ("sqrt(L) segments", sqrt_plan,
                 lambda ls, t, p=sqrt_plan: checkpoint_sequential(ls, None, t, plan=p))]
        # a budget between the sqrt(L) plan's peak and the plain run's: the planner should
        # spend less recomputation than sqrt(L) segments while staying under it
        budget = int(sqrt_plan.peak_bytes * 1.5)
        try:
            budget_plan = plan_segments(saved, outputs, budget=budget, input_bytes=int(x._data.nbytes))
            runs.append((f"budget {budget // 1024} KiB", budget_plan,
                         lambda ls, t, p=budget_plan: checkpoint_sequential(ls, None, t, plan=p)))
        except ValueError:
            budget_plan = None
        base_peak = base_time = None
        for name, plan, run in runs:
            peak, seconds = measure(layers, weights, x, run, args.repeats)
            if base_peak is None:
                base_peak, base_time = peak, seconds
            segments = plan.segments if plan is not None else 1
            rows.append({"L": depth, "run": name, "segments": segments, "peak_saved_bytes": peak,
                         "step_ms": seconds * 1e3, "peak_vs_plain": peak / base_peak,
                         "time_vs_plain": seconds / base_time, "sqrt_L": math.sqrt(depth)})
            print(f"{depth:4d} {name:18} {segments:8d} {peak:12,d} {peak / base_peak:8.2f} "
                  f"{seconds * 1e3:8.1f} {seconds / base_time:8.2f}")
    workloads.write_json(args.out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
