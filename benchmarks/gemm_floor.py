"""How fast can the MLP step be here? The time of its matrix products alone, in NumPy.

The MLP step (784-w-w-10, ReLU, cross-entropy, SGD) is mostly matrix products: forward
x W^T per layer, backward g^T x per layer and g W for all but the first. This times those
products by themselves, each in the faster of its two memory layouts (``a @ b`` or
``(b^T @ a^T)^T``), and PyTorch's whole step in the same run. Their ratio is the least
chainrule/PyTorch ratio any NumPy-based step can reach: the products are a floor that no
Python-level change removes (only a faster BLAS would).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/gemm_floor.py

Timings are the best of many calls (a floor, not a typical time), libraries in blocks.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import chainrule  # noqa: E402
import workloads  # noqa: E402


def best_time(fn: Callable[[], Any], repeats: int) -> float:
    """The fastest of ``repeats`` calls after two warm-up calls, in seconds."""
    fn()
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def products(sizes: list[int], batch: int, rng: np.random.Generator) -> list[tuple]:
    """(name, a, b) for every matrix product of one step: the result is a @ b."""
    def draw(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)

    out = []
    for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        x, w, g = draw(batch, fan_in), draw(fan_out, fan_in), draw(batch, fan_out)
        out.append((f"layer {layer + 1} forward x W^T", x, w.T))
        out.append((f"layer {layer + 1} dW = g^T x", g.T, x))
        if layer > 0:  # the input needs no gradient
            out.append((f"layer {layer + 1} dx = g W", g, w))
    return out


def floor_ms(sizes: list[int], batch: int, repeats: int) -> tuple[float, dict]:
    rng = np.random.default_rng(0)
    parts = {}
    for name, a, b in products(sizes, batch, rng):
        direct = best_time(lambda a=a, b=b: a @ b, repeats)
        swapped = best_time(lambda a=a, b=b: (b.T @ a.T).T, repeats)
        parts[name] = 1e3 * min(direct, swapped)
    return sum(parts.values()), parts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="benchmarks/results/gemm_floor.json")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(os.cpu_count() or 1)  # as benchmarks/run.py
    report = {}
    for batch, width, repeats in ((16, 512, 400), (1024, 512, 20), (1024, 1024, 10)):
        sizes = [784, width, width, 10]
        gemm_ms, parts = floor_ms(sizes, batch, repeats)
        steps = {}
        for lib in (torch, chainrule):
            step = workloads.mlp_parts(lib, sizes, batch)["step"]
            steps[lib.__name__] = 1e3 * best_time(step, repeats)
        row = {"gemm_floor_ms": gemm_ms, "products_ms": parts,
               "torch_step_ms": steps["torch"], "chainrule_step_ms": steps["chainrule"],
               "least_reachable_ratio": gemm_ms / steps["torch"],
               "ratio": steps["chainrule"] / steps["torch"]}
        report[f"mlp_b{batch}_w{width}"] = row
        print(f"b={batch:5} w={width:5}: products {gemm_ms:7.3f} ms, torch step "
              f"{steps['torch']:7.3f} ms, chainrule step {steps['chainrule']:7.3f} ms; "
              f"least reachable ratio {row['least_reachable_ratio']:.2f}, "
              f"chainrule's {row['ratio']:.2f} (best of {repeats})")
    workloads.write_json(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
