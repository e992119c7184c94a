"""chainrule vs PyTorch eager on the CPU, in one run: prints ratios, writes JSON.

Run with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset in this command only (they slow
NumPy's BLAS on this machine): ``make bench``, or
``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/run.py``.

A ratio is chainrule's median time over PyTorch's: below 1 means chainrule is faster.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import chainrule

CHAIN_LENGTH = 200


def median_time(fn: Callable[[], Any], repeats: int, warmup: int = 3) -> float:
    """Median seconds of ``fn`` over ``repeats`` calls, after ``warmup`` calls."""
    return median_times({"only": fn}, repeats, warmup)["only"]


def median_times(fns: dict[str, Callable[[], Any]], repeats: int, warmup: int = 3,
                 rounds: int = 4) -> dict:
    """Median seconds of each function over ``repeats`` calls, taken in ``rounds`` blocks
    that alternate between the functions (A..A B..B A..A B..B), so that a change in the
    machine's load hits all of them alike. Blocks rather than single calls: PyTorch's and
    NumPy's BLAS thread pools spin after work, and alternating call by call makes each
    library's threads compete with the other's; the first call of a block is not timed."""
    times: dict[str, list] = {name: [] for name in fns}
    per_round = max(1, -(-repeats // rounds))
    for round_index in range(rounds):
        for name, fn in fns.items():
            for _ in range(warmup if round_index == 0 else 1):
                fn()
            for _ in range(per_round):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


# ------------------------------------------------------------------ (a) per-op overhead
def chain(lib: Any, x: Any, length: int) -> Any:
    """``length`` cheap elementwise ops in a row (mul, add, tanh, sub: values stay finite)."""
    h = x
    for i in range(length):
        k = i % 4
        if k == 0:
            h = h * 0.5
        elif k == 1:
            h = h + x
        elif k == 2:
            h = h.tanh()
        else:
            h = h - 0.1
    return h


def bench_overhead(torch: Any, repeats: int) -> dict:
    rng = np.random.default_rng(0)
    data = rng.standard_normal((16, 16))
    fns = {}
    for lib_name, lib in (("chainrule", chainrule), ("torch", torch)):
        x = lib.tensor(data, dtype=lib.float64, requires_grad=True)

        def fwd_bwd(lib: Any = lib, x: Any = x) -> None:
            x.grad = None
            chain(lib, x, CHAIN_LENGTH).sum().backward()

        def fwd_no_grad(lib: Any = lib, x: Any = x) -> None:
            with lib.no_grad():
                chain(lib, x, CHAIN_LENGTH)

        fns[(lib_name, "fwd_bwd_per_op_us")] = fwd_bwd
        fns[(lib_name, "fwd_no_grad_per_op_us")] = fwd_no_grad
    medians = median_times(fns, repeats)
    results: dict = {"chainrule": {}, "torch": {}}
    for (lib_name, key), seconds in medians.items():
        results[lib_name][key] = seconds / CHAIN_LENGTH * 1e6
    return results


# ------------------------------------------------------------------ (b) MLP training step
def make_mlp(lib: Any, sizes: list[int], seed: int) -> list:
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1 / np.sqrt(fan_in)
        w = rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32)
        b = rng.uniform(-bound, bound, fan_out).astype(np.float32)
        params.append(lib.tensor(w, requires_grad=True))
        params.append(lib.tensor(b, requires_grad=True))
    return params


def mlp_step(lib: Any, params: list, x: Any, y: Any, lr: float) -> Any:
    """Forward (linear-relu-linear-relu-linear), cross-entropy, backward, SGD update."""
    h = x
    layers = len(params) // 2
    for i in range(layers):
        h = lib.nn.functional.linear(h, params[2 * i], params[2 * i + 1])
        if i < layers - 1:
            h = h.relu()
    loss = lib.nn.functional.cross_entropy(h, y)
    for p in params:
        p.grad = None
    loss.backward()
    with lib.no_grad():
        for p in params:
            p.sub_(p.grad, alpha=lr)
    return loss


def bench_mlp(torch: Any, batch: int, width: int, repeats: int) -> dict:
    sizes = [784, width, width, 10]
    rng = np.random.default_rng(1)
    x_data = rng.standard_normal((batch, 784)).astype(np.float32)
    y_data = rng.integers(0, 10, batch)
    steps = {}
    for lib_name, lib in (("chainrule", chainrule), ("torch", torch)):
        params = make_mlp(lib, sizes, seed=2)
        x, y = lib.tensor(x_data), lib.tensor(y_data)
        steps[lib_name] = lambda lib=lib, p=params, x=x, y=y: mlp_step(lib, p, x, y, 1e-3)
    results: dict = {name: {"step_ms": seconds * 1e3}
                     for name, seconds in median_times(steps, repeats).items()}
    # multiply-adds: forward x@W.T and backward g.T@x for every layer, g@W for all but the
    # first (the input needs no gradient); 2 FLOPs each
    macs = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    flops = 2 * batch * (2 * sum(macs) + sum(macs[1:]))
    results["flops_per_step"] = flops
    return results


def matmul_rate(repeats: int) -> float:
    """Float32 matrix-multiply rate of NumPy's BLAS here, in FLOP/s (the step's floor)."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((1024, 1024)).astype(np.float32)
    b = rng.standard_normal((1024, 1024)).astype(np.float32)
    seconds = median_time(lambda: a @ b, repeats)
    return 2 * 1024**3 / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    parser.add_argument("--out", default="benchmarks/results/latest.json")
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: install the test extra (make test) first")
        return 1
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if name in os.environ:
            print(f"warning: {name} is set; run with it unset (make bench does)")
    torch.set_num_threads(os.cpu_count() or 1)
    scale = 0.2 if args.quick else 1.0
    report: dict = {
        "machine": {"python": sys.version.split()[0], "numpy": np.__version__,
                    "torch": torch.__version__, "cpus": os.cpu_count(),
                    "platform": platform.platform()},
    }
    overhead = bench_overhead(torch, repeats=max(5, int(40 * scale)))
    report["overhead_chain16x16_float64"] = overhead
    rows = [
        ("per-op fwd+bwd (us)", overhead["chainrule"]["fwd_bwd_per_op_us"],
         overhead["torch"]["fwd_bwd_per_op_us"]),
        ("per-op fwd no_grad (us)", overhead["chainrule"]["fwd_no_grad_per_op_us"],
         overhead["torch"]["fwd_no_grad_per_op_us"]),
    ]
    rate = matmul_rate(max(5, int(20 * scale)))
    report["matmul_float32_flops"] = rate
    for batch, width, repeats in ((16, 512, 200), (128, 512, 60), (1024, 512, 15),
                                  (1024, 1024, 10)):
        result = bench_mlp(torch, batch, width, max(3, int(repeats * scale)))
        report[f"mlp_b{batch}_w{width}"] = result
        floor_ms = result["flops_per_step"] / rate * 1e3
        result["flop_floor_ms"] = floor_ms
        result["chainrule_fraction_of_floor"] = floor_ms / result["chainrule"]["step_ms"]
        rows.append((f"MLP step b={batch} w={width} (ms)", result["chainrule"]["step_ms"],
                     result["torch"]["step_ms"]))
    print(f"{'benchmark':34} {'chainrule':>10} {'torch':>10} {'ratio':>7}")
    for name, ours, theirs in rows:
        print(f"{name:34} {ours:10.3f} {theirs:10.3f} {ours / theirs:7.2f}")
    print(f"matmul float32 rate: {rate / 1e9:.1f} GFLOP/s")
    for key in ("mlp_b1024_w1024",):
        print(f"{key}: chainrule at {report[key]['chainrule_fraction_of_floor']:.0%} of the "
              f"FLOP floor ({report[key]['flop_floor_ms']:.2f} ms)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report["ratios"] = {name: ours / theirs for name, ours, theirs in rows}
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
