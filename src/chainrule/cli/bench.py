"""`chainrule bench`: how fast chainrule runs here, beside PyTorch when it is installed.

In a source checkout with PyTorch, this runs the repository's suite (benchmarks/run.py,
the same as `make bench`); otherwise a small built-in suite: the per-op overhead of a
chain of cheap ops, and one training step of an MLP.

    chainrule bench            # the full suite
    chainrule bench --quick    # fewer repeats
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# they slow NumPy's BLAS on some machines; benchmarks unset them for their own process
BLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def add_parser(commands: Any) -> None:
    """Register ``bench`` on the ``chainrule`` command's subparsers."""
    p = commands.add_parser("bench", help="run the benchmarks (PyTorch columns when installed)",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    p.add_argument("--builtin", action="store_true",
                   help="the small built-in suite even in a source checkout")
    p.set_defaults(run=run_command)


def run_command(args: argparse.Namespace) -> int:
    suite = repository_suite()
    if suite is not None and not args.builtin and _installed("torch"):
        env = {k: v for k, v in os.environ.items() if k not in BLAS_VARIABLES}
        command = [sys.executable, str(suite), *(["--quick"] if args.quick else [])]
        return subprocess.call(command, env=env, cwd=suite.parent.parent)
    for name in BLAS_VARIABLES:
        if name in os.environ:
            print(f"note: {name} is set and may slow NumPy's BLAS; unset it for this command")
    print(builtin_table(repeats=5 if args.quick else 20))
    return 0


def repository_suite() -> Path | None:
    """benchmarks/run.py when chainrule runs from a source checkout (an editable install)."""
    root = Path(__file__).resolve().parents[3]
    suite = root / "benchmarks" / "run.py"
    return suite if suite.is_file() and (root / "pyproject.toml").is_file() else None


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def builtin_table(repeats: int = 20) -> str:
    """Median times of the built-in suite as a table: chainrule, and PyTorch with the ratio
    when it is installed.

    >>> print(builtin_table(repeats=3))
    """
    import chainrule

    libraries = {"chainrule": chainrule}
    if _installed("torch"):
        import torch

        libraries["torch"] = torch
    rows = []
    for name, make in (("200-op chain fwd+bwd, 16x16 (ms)", _chain),
                       ("MLP step 128x512x512x10 (ms)", _mlp_step)):
        times = {lib: 1e3 * _median(make(module), repeats) for lib, module in libraries.items()}
        rows.append((name, times))
    header = f"{'benchmark':36} {'chainrule':>10}"
    if "torch" in libraries:
        header += f" {'torch':>10} {'ratio':>7}"
    lines = [header]
    for name, times in rows:
        line = f"{name:36} {times['chainrule']:10.3f}"
        if "torch" in times:
            line += f" {times['torch']:10.3f} {times['chainrule'] / times['torch']:7.2f}"
        lines.append(line)
    if "torch" in libraries:
        lines.append("ratio: chainrule's time over PyTorch's (below 1: chainrule is faster)")
    return "\n".join(lines)


def _median(fn: Callable[[], Any], repeats: int) -> float:
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _chain(lib: Any) -> Callable[[], None]:
    x = lib.tensor(np.random.default_rng(0).standard_normal((16, 16)), requires_grad=True)

    def run() -> None:
        h = x
        for _ in range(50):  # 4 cheap ops a round: 200 ops
            h = (h * 0.5 + x).tanh() - 0.1
        x.grad = None
        h.sum().backward()

    return run


def _mlp_step(lib: Any) -> Callable[[], None]:
    rng = np.random.default_rng(0)
    sizes = [512, 512, 10]
    weights = [lib.tensor((rng.standard_normal((m, n)) / np.sqrt(n)).astype(np.float32),
                          requires_grad=True) for n, m in zip([512, *sizes[:-1]], sizes)]
    x = lib.tensor(rng.standard_normal((128, 512)).astype(np.float32))
    y = lib.tensor(rng.integers(0, 10, 128))

    def run() -> None:
        h = x
        for w in weights[:-1]:
            h = (h @ w.T).relu()
        loss = lib.nn.functional.cross_entropy(h @ weights[-1].T, y)
        for w in weights:
            w.grad = None
        loss.backward()
        with lib.no_grad():
            for w in weights:
                w -= 0.01 * w.grad

    return run
