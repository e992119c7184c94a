"""`chainrule bench`: how fast chainrule runs here, beside PyTorch when it is installed.

In a source checkout with PyTorch, this runs the repository's suite (benchmarks/run.py,
the same as `make bench`); otherwise a small built-in suite: the per-op overhead of a
chain of cheap ops, and one training step of an MLP. Either prints a table with a column
per library installed (PyTorch; JAX's eager jax.grad and HIPS autograd as peers) and,
with --out, writes the figures as JSON.

    chainrule bench                    # the full suite
    chainrule bench --quick            # fewer repeats
    chainrule bench --out bench.json   # also write the results as JSON
"""

from __future__ import annotations

import argparse
import importlib.util
import json
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
# the libraries the built-in suite compares, in column order, when they are installed
LIBRARIES = ("chainrule", "torch", "jax", "autograd")


def add_parser(commands: Any) -> None:
    """Register ``bench`` on the ``chainrule`` command's subparsers."""
    p = commands.add_parser("bench", help="run the benchmarks (PyTorch columns when installed)",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    p.add_argument("--builtin", action="store_true",
                   help="the small built-in suite even in a source checkout")
    p.add_argument("--out", default=None, metavar="PATH",
                   help="write the results as JSON to PATH (the full suite: "
                        "benchmarks/results/latest.json unless given)")
    p.set_defaults(run=run_command)


def run_command(args: argparse.Namespace) -> int:
    suite = repository_suite()
    if suite is not None and not args.builtin and _installed("torch"):
        env = {k: v for k, v in os.environ.items() if k not in BLAS_VARIABLES}
        command = [sys.executable, str(suite), *(["--quick"] if args.quick else []),
                   *(["--out", str(Path(args.out).resolve())] if args.out else [])]
        return subprocess.call(command, env=env, cwd=suite.parent.parent)
    for name in BLAS_VARIABLES:
        if name in os.environ:
            print(f"note: {name} is set and may slow NumPy's BLAS; unset it for this command")
    results = builtin_results(repeats=5 if args.quick else 20)
    print(format_table(results))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2))
        print(f"wrote {out}")
    return 0


def repository_suite() -> Path | None:
    """benchmarks/run.py when chainrule runs from a source checkout (an editable install)."""
    root = Path(__file__).resolve().parents[3]
    suite = root / "benchmarks" / "run.py"
    return suite if suite.is_file() and (root / "pyproject.toml").is_file() else None


def _installed(name: str) -> bool:
    """Whether the library ``name`` is installed. A bare directory of that name on sys.path
    (the test suite's tests/autograd) is a namespace package, with no origin: not it."""
    spec = importlib.util.find_spec(name)
    return spec is not None and spec.origin is not None


def builtin_results(repeats: int = 20) -> dict:
    """Median milliseconds of the built-in suite for each installed library: ``libraries``
    (the columns, chainrule first) and ``rows`` (name, ms per library, chainrule/torch).

    >>> builtin_results(repeats=3)["libraries"][:2]
    ['chainrule', 'torch']
    """
    libraries = [name for name in LIBRARIES if name == "chainrule" or _installed(name)]
    rows = []
    for name, makers in (("200-op chain fwd+bwd, 16x16 (ms)", _CHAINS),
                         ("MLP step 128x512x512x10 (ms)", _MLP_STEPS)):
        times = {lib: 1e3 * _median(makers[lib](), repeats) for lib in libraries}
        ratio = times["chainrule"] / times["torch"] if "torch" in times else None
        rows.append({"name": name, "ms": times, "ratio_to_torch": ratio})
    return {"libraries": libraries, "rows": rows}


def format_table(results: dict) -> str:
    """builtin_results as text: a column per library, then chainrule/torch when PyTorch is
    installed."""
    libraries = results["libraries"]
    with_torch = "torch" in libraries
    lines = [f"{'benchmark':36}" + "".join(f" {lib:>10}" for lib in libraries)
             + (f" {'ratio':>7}" if with_torch else "")]
    for row in results["rows"]:
        line = f"{row['name']:36}" + "".join(f" {row['ms'][lib]:10.3f}" for lib in libraries)
        if with_torch:
            line += f" {row['ratio_to_torch']:7.2f}"
        lines.append(line)
    if with_torch:
        lines.append("ratio: chainrule's time over PyTorch's (below 1: chainrule is faster)")
    if "jax" in libraries:
        lines.append("jax: jax.grad run eagerly (no jit)")
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


def _chain_numpy_style(np_like: Any, grad: Callable, as_array: Callable) -> Callable[[], None]:
    """The chain for peers with a NumPy-style namespace and a ``grad`` transform."""
    x = as_array(np.random.default_rng(0).standard_normal((16, 16)))

    def f(x: Any) -> Any:
        h = x
        for _ in range(50):
            h = np_like.tanh(h * 0.5 + x) - 0.1
        return h.sum()

    gradient = grad(f)
    return lambda: np.asarray(gradient(x))


def _mlp_data(lib_tensor: Callable) -> tuple[list, Any, Any]:
    rng = np.random.default_rng(0)
    sizes = [512, 512, 10]
    weights = [lib_tensor((rng.standard_normal((m, n)) / np.sqrt(n)).astype(np.float32))
               for n, m in zip([512, *sizes[:-1]], sizes)]
    return weights, rng.standard_normal((128, 512)).astype(np.float32), rng.integers(0, 10, 128)


def _mlp_step(lib: Any) -> Callable[[], None]:
    weights, x, y = _mlp_data(lambda a: lib.tensor(a, requires_grad=True))
    x, y = lib.tensor(x), lib.tensor(y)

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


def _mlp_step_numpy_style(np_like: Any, grad: Callable, as_array: Callable,
                          logsumexp: Callable) -> Callable[[], None]:
    """The MLP step for peers: the same relu layers and mean cross-entropy (logsumexp of the
    logits minus the target's logit), the gradient by ``grad``, an SGD update."""
    weights, x, y = _mlp_data(as_array)
    x, y = as_array(x), as_array(y)
    state = {"weights": weights}

    def loss(weights: list) -> Any:
        h = x
        for w in weights[:-1]:
            h = np_like.maximum(h @ w.T, 0.0)
        logits = h @ weights[-1].T
        return np_like.mean(logsumexp(logits, axis=1) - logits[np_like.arange(len(y)), y])

    gradient = grad(loss)

    def run() -> None:
        state["weights"] = [w - 0.01 * g for w, g in zip(state["weights"],
                                                         gradient(state["weights"]))]
        np.asarray(state["weights"][0])

    return run


def _torch() -> Any:
    import torch

    return torch


def _jax_parts() -> tuple:
    import jax
    import jax.numpy as jnp
    from jax.scipy.special import logsumexp

    return jnp, jax.grad, jnp.asarray, logsumexp


def _autograd_parts() -> tuple:
    import autograd.numpy as anp
    from autograd.scipy.special import logsumexp

    from autograd import grad

    return anp, grad, np.asarray, logsumexp


def _chainrule() -> Any:
    import chainrule

    return chainrule


_CHAINS: dict[str, Callable[[], Callable[[], None]]] = {
    "chainrule": lambda: _chain(_chainrule()),
    "torch": lambda: _chain(_torch()),
    "jax": lambda: _chain_numpy_style(*_jax_parts()[:3]),
    "autograd": lambda: _chain_numpy_style(*_autograd_parts()[:3]),
}
_MLP_STEPS: dict[str, Callable[[], Callable[[], None]]] = {
    "chainrule": lambda: _mlp_step(_chainrule()),
    "torch": lambda: _mlp_step(_torch()),
    "jax": lambda: _mlp_step_numpy_style(*_jax_parts()),
    "autograd": lambda: _mlp_step_numpy_style(*_autograd_parts()),
}
