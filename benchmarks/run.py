"""chainrule against PyTorch eager and other peers on the CPU, in one run: prints a table
of medians and ratios with the issue's targets, writes JSON.

Run with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset in this command only (they slow
NumPy's BLAS on this machine): ``make bench``, or
``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/run.py``.

Columns: chainrule, PyTorch (required), and when importable JAX (``jax.grad`` run eagerly,
op by op; and ``jax.jit`` of the same function as its own column) and HIPS autograd, on the
rows they can express (the per-op chain and the MLP step). The ratio is chainrule's
median over PyTorch's: below 1 means chainrule is faster. The workloads are in
workloads.py; peak memory is measured in fresh processes by peak_rss.py.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import chainrule  # noqa: E402
import workloads  # noqa: E402
from chainrule.cli.bench import _installed  # noqa: E402

PEERS = ("jax", "jax.jit", "autograd")
# issue 8's targets: ("ratio", x) means chainrule/torch <= x, ("value", x) chainrule's
# own figure <= x, ("at least", x) chainrule's figure >= x
TARGETS = {
    "per-op fwd+bwd (us)": ("ratio", 0.6),
    "per-op fwd no_grad (us)": ("ratio", 0.8),
    "MLP step b=16 w=512 (ms)": ("ratio", 0.7),
    "MLP step b=1024 w=1024 (ms)": ("ratio", 0.8),
    "MLP b=1024 w=1024 fraction of FLOP floor": ("at least", 0.7),
    "MLP b=1024 w=1024 backward/forward": ("value", 2.3),
    "CNN step b=64 (ms)": ("ratio", 1.3),
    "LSTM step (ms)": ("ratio", 1.0),
    "Transformer layer step (ms)": ("ratio", 1.0),
    "peak RSS, 100 MLP steps (MB)": ("ratio", 1.0),
}


def median_time(fn: Callable[[], Any], repeats: int, warmup: int = 3) -> float:
    """Median seconds of ``fn`` over ``repeats`` calls, after ``warmup`` calls."""
    return median_times({"only": fn}, repeats, warmup)["only"]


# OpenBLAS's idle workers spin ~2^28 cycles (~0.1 s) before they sleep
POOL_IDLE_SECONDS = 0.15


def median_times(fns: dict, repeats: int, warmup: int = 3, rounds: int = 8) -> dict:
    """Median seconds of each function over ``repeats`` calls, taken in ``rounds`` blocks
    that alternate between the functions (A..A B..B A..A B..B), so that a change in the
    machine's load hits all of them alike. Blocks rather than single calls: PyTorch's and
    NumPy's BLAS thread pools spin after work and take cores from the other library's
    threads; so each block also starts after a pause long enough for the previous block's
    workers to go to sleep (without it PyTorch's b128 MLP step took 7.2 ms instead of 3.3
    beside chainrule's), and its first call is not timed."""
    times: dict = {name: [] for name in fns}
    per_round = max(1, -(-repeats // rounds))
    for round_index in range(rounds):
        for name, fn in fns.items():
            time.sleep(POOL_IDLE_SECONDS)
            for _ in range(warmup if round_index == 0 else 1):
                fn()
            for _ in range(per_round):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def installed_peers() -> list[str]:
    """The peer columns whose library imports here."""
    peers = []
    if _installed("jax"):
        import jax

        jax.config.update("jax_enable_x64", True)  # the per-op chain runs in float64
        peers += ["jax", "jax.jit"]
    if _installed("autograd"):
        peers.append("autograd")
    return peers


# ------------------------------------------------------------------ (a) per-op overhead
def bench_overhead(torch: Any, peers: list[str], repeats: int) -> dict:
    """Per-op microseconds of the 200-op chain: forward+backward, and forward alone."""
    steps = {"chainrule": workloads.chain_steps(chainrule), "torch": workloads.chain_steps(torch)}
    for peer in peers:
        steps[peer] = (workloads.chain_steps_autograd() if peer == "autograd"
                       else workloads.chain_steps_jax(jit=peer == "jax.jit"))
    fns = {}
    for name, (fwd_bwd, fwd_no_grad) in steps.items():
        fns[(name, "fwd_bwd_per_op_us")] = fwd_bwd
        fns[(name, "fwd_no_grad_per_op_us")] = fwd_no_grad
    results: dict = {name: {} for name in steps}
    for (name, key), seconds in median_times(fns, repeats).items():
        results[name][key] = seconds / workloads.CHAIN_LENGTH * 1e6
    return results


# ------------------------------------------------------------------ (b) MLP training step
def mlp_flops(sizes: list[int], batch: int) -> int:
    # multiply-adds: forward x@W.T and backward g.T@x for every layer, g@W for all but the
    # first (the input needs no gradient); 2 FLOPs each
    macs = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    return 2 * batch * (2 * sum(macs) + sum(macs[1:]))


def bench_mlp(torch: Any, peers: list[str], batch: int, width: int, repeats: int) -> dict:
    sizes = [784, width, width, 10]
    steps = {"chainrule": workloads.mlp_parts(chainrule, sizes, batch)["step"],
             "torch": workloads.mlp_parts(torch, sizes, batch)["step"]}
    for peer in peers:
        steps[peer] = (workloads.mlp_step_autograd(sizes, batch) if peer == "autograd"
                       else workloads.mlp_step_jax(sizes, batch, jit=peer == "jax.jit"))
    results: dict = {name: {"step_ms": seconds * 1e3}
                     for name, seconds in median_times(steps, repeats).items()}
    results["flops_per_step"] = mlp_flops(sizes, batch)
    return results


def bench_backward_ratio(torch: Any, repeats: int) -> dict:
    """Forward alone (graph recorded) and forward+backward of the 784-1024-1024-10 MLP at
    batch 1024; backward = the difference, as a multiple of forward."""
    fns = {}
    for name, lib in (("chainrule", chainrule), ("torch", torch)):
        parts = workloads.mlp_parts(lib, [784, 1024, 1024, 10], 1024)
        fns[(name, "forward_ms")] = parts["forward"]
        fns[(name, "forward_backward_ms")] = parts["forward_backward"]
    results: dict = {"chainrule": {}, "torch": {}}
    for (name, key), seconds in median_times(fns, repeats).items():
        results[name][key] = seconds * 1e3
    for times in results.values():
        times["backward_over_forward"] = (
            (times["forward_backward_ms"] - times["forward_ms"]) / times["forward_ms"])
    return results


def matmul_rate(repeats: int) -> float:
    """Float32 matrix-multiply rate of NumPy's BLAS here, in FLOP/s (the step's floor)."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((1024, 1024)).astype(np.float32)
    b = rng.standard_normal((1024, 1024)).astype(np.float32)
    seconds = median_time(lambda: a @ b, repeats)
    return 2 * 1024**3 / seconds


# ------------------------------------------------------------------ (c) nn layers
def bench_layers(torch: Any, repeats: dict) -> dict:
    """Training-step medians (ms) of the CNN, LSTM and Transformer workloads."""
    results = {}
    for key, make_model, make_step in (
            ("cnn", workloads.cnn_model, workloads.cnn_step),
            ("lstm", workloads.lstm_model, workloads.lstm_step),
            ("transformer", workloads.transformer_model, workloads.transformer_step)):
        chainrule.manual_seed(0)
        reference = make_model(chainrule)
        steps = {"chainrule": make_step(chainrule, reference),
                 "torch": make_step(torch, reference)}
        results[key] = {name: {"step_ms": seconds * 1e3}
                        for name, seconds in median_times(steps, repeats[key]).items()}
    return results


# ------------------------------------------------------------------ (d) peak memory
def peak_rss() -> dict:
    """peak_rss.py's figures for chainrule and PyTorch, each in a fresh process."""
    script = Path(__file__).resolve().parent / "peak_rss.py"
    results = {}
    for library in ("chainrule", "torch"):
        output = subprocess.run([sys.executable, str(script), library], check=True,
                                capture_output=True, text=True).stdout
        results[library] = json.loads(output.strip().splitlines()[-1])
    return results


# ------------------------------------------------------------------ the table
def make_row(name: str, values: dict) -> dict:
    """A table row: the figures per library, chainrule/torch, and the target if any."""
    row: dict = {"name": name, "values": values, "ratio": None, "target": None, "met": None}
    if "chainrule" in values and "torch" in values:
        row["ratio"] = values["chainrule"] / values["torch"]
    if name in TARGETS:
        kind, limit = TARGETS[name]
        row["target"] = {"kind": kind, "limit": limit}
        if kind == "ratio":
            row["met"] = row["ratio"] <= limit
        elif kind == "value":
            row["met"] = values["chainrule"] <= limit
        else:
            row["met"] = values["chainrule"] >= limit
    return row


def format_table(rows: list[dict], columns: list[str]) -> str:
    """The rows as text: one column per library, the ratio to PyTorch, the target."""
    symbols = {"ratio": "ratio <=", "value": "<=", "at least": ">="}
    lines = [f"{'benchmark':42}" + "".join(f" {c:>10}" for c in columns)
             + f" {'ratio':>7}  target"]
    for row in rows:
        line = f"{row['name']:42}"
        for column in columns:
            value = row["values"].get(column)
            line += f" {'-':>10}" if value is None else f" {value:10.3f}"
        line += f" {'-':>7}" if row["ratio"] is None else f" {row['ratio']:7.2f}"
        target = row["target"]
        if target is not None:
            line += (f"  {symbols[target['kind']]} {target['limit']:g}: "
                     f"{'met' if row['met'] else 'NOT met'}")
        lines.append(line)
    return "\n".join(lines)


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
    peers = installed_peers()
    scale = 0.2 if args.quick else 1.0

    def times(n: int) -> int:
        return max(3, int(n * scale))

    versions = {"python": sys.version.split()[0], "numpy": np.__version__,
                "torch": torch.__version__}
    for peer in ("jax", "autograd"):
        if peer in peers:
            versions[peer] = importlib.metadata.version(peer)
    report: dict = {"machine": {**versions, "cpus": os.cpu_count(),
                                "platform": platform.platform()},
                    "peers": peers}
    rows = []
    overhead = bench_overhead(torch, peers, repeats=max(5, int(40 * scale)))
    report["overhead_chain16x16_float64"] = overhead
    for label, key in (("per-op fwd+bwd (us)", "fwd_bwd_per_op_us"),
                       ("per-op fwd no_grad (us)", "fwd_no_grad_per_op_us")):
        rows.append(make_row(label, {name: figures[key] for name, figures in overhead.items()}))
    rate = matmul_rate(times(20))
    report["matmul_float32_flops"] = rate
    for batch, width, repeats in ((16, 512, 200), (128, 512, 60), (1024, 512, 32),
                                  (1024, 1024, 16)):
        result = bench_mlp(torch, peers, batch, width, times(repeats))
        report[f"mlp_b{batch}_w{width}"] = result
        floor_ms = result["flops_per_step"] / rate * 1e3
        result["flop_floor_ms"] = floor_ms
        result["chainrule_fraction_of_floor"] = floor_ms / result["chainrule"]["step_ms"]
        rows.append(make_row(f"MLP step b={batch} w={width} (ms)",
                             {name: result[name]["step_ms"] for name in ("chainrule", "torch", *peers)}))
    big = report["mlp_b1024_w1024"]
    rows.append(make_row("MLP b=1024 w=1024 fraction of FLOP floor",
                         {name: big["flop_floor_ms"] / big[name]["step_ms"]
                          for name in ("chainrule", "torch", *peers)}))
    ratio = bench_backward_ratio(torch, times(12))
    report["mlp_b1024_w1024_backward_ratio"] = ratio
    rows.append(make_row("MLP b=1024 w=1024 forward (ms)",
                         {name: ratio[name]["forward_ms"] for name in ratio}))
    rows.append(make_row("MLP b=1024 w=1024 forward+backward (ms)",
                         {name: ratio[name]["forward_backward_ms"] for name in ratio}))
    rows.append(make_row("MLP b=1024 w=1024 backward/forward",
                         {name: ratio[name]["backward_over_forward"] for name in ratio}))
    layers = bench_layers(torch, {"cnn": times(16), "lstm": times(30), "transformer": times(16)})
    report["layers"] = layers
    for label, key in (("CNN step b=64 (ms)", "cnn"), ("LSTM step (ms)", "lstm"),
                       ("Transformer layer step (ms)", "transformer")):
        rows.append(make_row(label, {name: layers[key][name]["step_ms"] for name in layers[key]}))
    memory = peak_rss()
    report["peak_rss_mlp_b1024_w1024"] = memory
    rows.append(make_row("peak RSS, 100 MLP steps (MB)",
                         {name: memory[name]["peak_mb"] for name in memory}))
    rows.append(make_row("RSS after import (MB)", {name: memory[name]["import_mb"] for name in memory}))
    columns = ["chainrule", "torch", *peers]
    print(format_table(rows, columns))
    print(f"matmul float32 rate: {rate / 1e9:.1f} GFLOP/s; jax: eager jax.grad, no jit; "
          f"jax.jit: the same function jitted")
    report["rows"] = rows
    report["ratios"] = {row["name"]: row["ratio"] for row in rows if row["ratio"] is not None}
    workloads.write_json(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
