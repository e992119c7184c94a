"""The cost claim, measured: a gradient by reverse mode costs a small constant multiple of
one evaluation of the function, whatever the number of inputs; forward mode and finite
differences cost a multiple that grows linearly with it.

f: R^n -> R is the mean squared error of a tanh MLP (16 -> h -> h -> 1, batch 256, float64)
as a function of its n parameters; the hidden width h sets n from 10^2 to 10^6. Per n:

  (a) forward        one evaluation of f, no graph recorded: the unit of every ratio
  (b) reverse        the full gradient: a recorded forward pass, then one backward pass
  (c) forward mode   the full gradient as n Jacobian-vector products, one per basis
                     direction (chainrule.autograd.forward_ad)
  (d) central diff.  the full gradient from 2n evaluations of f

What to expect: the backward pass of a linear layer is two matrix products the size of its
forward one (weight gradient, input gradient; the first layer needs no input gradient), so
as the h x h layer comes to dominate, (b) approaches 1 + 2 = 3 forward passes from below,
plus what allocating fresh arrays for the saved activations and the gradients costs. (c)
costs about one JVP, a forward pass with tangents (1 to 3 forward passes), per input, and
(d) two forward passes per input.

Times are CPU seconds of this process (``time.process_time``), which leave out the time it
waits for a core held by other processes. Every ratio is taken against forward passes
timed right next to it, so that what other processes still change (caches, memory
bandwidth) weighs on both sides: (a) and (b) alternate, and the ratio is the median over
rounds of each reverse pass over the mean of the forward passes either side of it. (c) and
(d) are timed column by column (one basis direction each), in a random order, each column
followed by a forward pass, until all n columns are done or a time cap is spent; the ratio
is n times the median of column over forward pass (marked ~ where the cap cut the columns
short: extrapolated from a random sample of the columns). The "per n" columns divide the
ratio by n: constant when the cost grows linearly in n.
PyTorch's reverse/forward ratio for the same f is measured in the same run, as a reference.

BLAS runs on one thread by default (``--threads``): the claim is about arithmetic, and on
a shared machine a threaded BLAS call waits for whichever of its threads was descheduled,
which drowns the ratios in scheduling noise.

Run with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset in this command only:
``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/cost.py``.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import threadpoolctl

import chainrule
import workloads
from chainrule.autograd import forward_ad

D_IN = 16
BATCH = 256
TARGETS = (100, 1_000, 10_000, 100_000, 1_000_000)


def parameter_count(width: int) -> int:
    # D_IN*h + h (first layer), h*h + h (second), h + 1 (output)
    return width * width + (D_IN + 3) * width + 1


def width_for(target: int) -> int:
    """The hidden width whose parameter count is nearest ``target``."""
    root = (-(D_IN + 3) + math.sqrt((D_IN + 3) ** 2 + 4 * (target - 1))) / 2
    return min((max(1, math.floor(root)), math.ceil(root)),
               key=lambda h: abs(parameter_count(h) - target))


def make_problem(lib: Any, width: int, seed: int = 0) -> tuple[list, Any, Any]:
    """Parameters (requiring grad), inputs and targets as ``lib`` tensors, from one seed."""
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in ((D_IN, width), (width, width), (width, 1)):
        params.append(lib.tensor(rng.standard_normal((fan_out, fan_in)) / np.sqrt(fan_in),
                                 requires_grad=True))
        params.append(lib.tensor(0.1 * rng.standard_normal(fan_out), requires_grad=True))
    x = lib.tensor(rng.standard_normal((BATCH, D_IN)))
    y = lib.tensor(rng.standard_normal((BATCH, 1)))
    return params, x, y


def loss(lib: Any, params: list, x: Any, y: Any) -> Any:
    w1, b1, w2, b2, w3, b3 = params
    linear = lib.nn.functional.linear
    h = linear(linear(x, w1, b1).tanh(), w2, b2).tanh()
    return ((linear(h, w3, b3) - y) ** 2).mean()


def evaluate(lib: Any, params: list, x: Any, y: Any) -> None:
    """(a): f alone."""
    with lib.no_grad():
        loss(lib, params, x, y)


def seconds(fn: Callable[[], Any]) -> float:
    """CPU seconds of ``fn`` (with one BLAS thread, all of its work is on this thread)."""
    start = time.process_time()
    fn()
    return time.process_time() - start


def forward_and_reverse(lib: Any, params: list, x: Any, y: Any, min_seconds: float,
                        min_rounds: int = 7) -> dict:
    """(a) and (b), alternating round after round, ending on (a)."""
    def reverse() -> None:
        lib.autograd.grad(loss(lib, params, x, y), params)

    forward = lambda: evaluate(lib, params, x, y)
    forward(), reverse()  # warm-up: first-touch allocations
    forwards, reverses = [], []
    start = time.perf_counter()
    forwards.append(seconds(forward))
    while len(reverses) < min_rounds or time.perf_counter() - start < min_seconds:
        reverses.append(seconds(reverse))
        forwards.append(seconds(forward))
    ratios = [r / ((before + after) / 2) for r, before, after in zip(reverses, forwards, forwards[1:])]
    return {"forward_s": statistics.median(forwards), "reverse_s": statistics.median(reverses),
            "ratio": statistics.median(ratios), "ratio_quartiles": statistics.quantiles(ratios, n=4),
            "rounds": len(reverses)}


def reverse_gradient(params: list, x: Any, y: Any) -> np.ndarray:
    grads = chainrule.autograd.grad(loss(chainrule, params, x, y), params)
    return np.concatenate([g.numpy().ravel() for g in grads])


def forward_mode_column(constants: list, x: Any, y: Any, i: int, index: tuple) -> float:
    """(c), one column: a JVP along the basis direction of entry ``index`` of parameter
    ``i``. Only that parameter gets a tangent: the others' would be zero."""
    tangent = chainrule.zeros_like(constants[i])
    tangent[index] = 1.0
    with forward_ad.dual_level():
        inputs = list(constants)
        inputs[i] = forward_ad.make_dual(constants[i], tangent)
        return forward_ad.unpack_dual(loss(chainrule, inputs, x, y)).tangent.item()


def central_difference_column(constants: list, x: Any, y: Any, i: int, index: tuple,
                              eps: float = 1e-6) -> float:
    """(d), one column: (f(theta + eps e) - f(theta - eps e)) / 2 eps, the entry nudged in
    place."""
    p = constants[i]
    with chainrule.no_grad():
        value = p[index].item()
        p[index] = value + eps
        up = loss(chainrule, constants, x, y).item()
        p[index] = value - eps
        down = loss(chainrule, constants, x, y).item()
        p[index] = value
    return (up - down) / (2 * eps)


def by_column(step: Callable[..., float], params: list, x: Any, y: Any, cap: float,
              reference: np.ndarray) -> dict:
    """The full gradient by ``step(constants, x, y, parameter index, entry index)`` per
    input of f. Random order, so that the columns done before the cap are a fair sample."""
    constants = [p.detach().clone() for p in params]
    offsets = np.cumsum([0] + [p.numel() for p in constants])
    n = int(offsets[-1])
    values = np.full(n, np.nan)
    column_times, forward_times = [], []
    deadline = time.perf_counter() + cap
    for flat in np.random.default_rng(1).permutation(n):
        i = int(np.searchsorted(offsets, flat, side="right")) - 1
        index = tuple(int(j) for j in np.unravel_index(flat - offsets[i], tuple(constants[i].shape)))
        start = time.process_time()
        values[flat] = step(constants, x, y, i, index)
        column_times.append(time.process_time() - start)
        forward_times.append(seconds(lambda: evaluate(chainrule, constants, x, y)))
        if time.perf_counter() > deadline:
            break
    done = ~np.isnan(values)
    return {
        "seconds": n * statistics.median(column_times),
        "forward_s": statistics.median(forward_times),
        "ratio": n * statistics.median([c / f for c, f in zip(column_times, forward_times)]),
        "columns_done": int(done.sum()),
        "columns_seconds": sum(column_times),
        "extrapolated": bool(done.sum() < n),
        "max_rel_error": float(np.abs(values[done] - reference[done]).max() / np.abs(reference).max()),
    }


def measure(width: int, cap: float, min_seconds: float, torch: Any) -> dict:
    params, x, y = make_problem(chainrule, width)
    reference = reverse_gradient(params, x, y)
    row: dict = {"n": len(reference), "width": width,
                 "chainrule": forward_and_reverse(chainrule, params, x, y, min_seconds)}
    row["forward_mode"] = by_column(forward_mode_column, params, x, y, cap, reference)
    row["central_differences"] = by_column(central_difference_column, params, x, y, cap, reference)
    if torch is not None:
        row["torch"] = forward_and_reverse(torch, *make_problem(torch, width), min_seconds)
    return row


def ratio_cell(entry: dict) -> str:
    ratio = entry["ratio"]
    return ("~" if entry["extrapolated"] else "") + (f"{ratio:.3g}" if ratio < 1e4 else f"{ratio:.2e}")


def print_table(rows: list[dict]) -> None:
    print("time of the full gradient over the time of one forward pass (a), per way of computing it")
    print(f"{'n':>9} {'h':>5} {'(a) ms':>8} {'(b) reverse':>11} {'(c) forward mode':>17} {'per n':>6} "
          f"{'(d) central diff.':>18} {'per n':>6} {'torch (b)':>9}")
    for r in rows:
        ours, fm, cd = r["chainrule"], r["forward_mode"], r["central_differences"]
        theirs = f"{r['torch']['ratio']:9.2f}" if "torch" in r else f"{'-':>9}"
        print(f"{r['n']:9d} {r['width']:5d} {ours['forward_s'] * 1e3:8.3f} "
              f"{ours['ratio']:11.2f} {ratio_cell(fm):>17} "
              f"{fm['ratio'] / r['n']:6.2f} {ratio_cell(cd):>18} {cd['ratio'] / r['n']:6.2f} {theirs}")
    print("~ extrapolated: n x the median column time, from the columns done within the cap")
    print("largest error against the reverse-mode gradient (relative to its largest entry):")
    for r in rows:
        fm, cd = r["forward_mode"], r["central_differences"]
        print(f"  n = {r['n']:<8d} forward mode {fm['max_rel_error']:.1e} over {fm['columns_done']} "
              f"columns, central differences {cd['max_rel_error']:.1e} over {cd['columns_done']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cap", type=float, default=12.0,
                        help="seconds of columns allowed to (c), and to (d), per n")
    parser.add_argument("--min-seconds", type=float, default=2.0,
                        help="seconds spent alternating (a) and (b), per n and library")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (and PyTorch's)")
    parser.add_argument("--out", default="benchmarks/results/cost.json")
    args = parser.parse_args()
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if name in os.environ:
            print(f"warning: {name} is set; run with it unset (see the docstring)")
    try:
        import torch
    except ImportError:
        torch = None
        print("PyTorch is not installed: its reference column is left out")
    else:
        torch.set_num_threads(args.threads)
    rows = []
    with threadpoolctl.threadpool_limits(args.threads, user_api="blas"):
        for target in TARGETS:
            rows.append(measure(width_for(target), args.cap, args.min_seconds, torch))
            print(f"measured n = {rows[-1]['n']}", file=sys.stderr, flush=True)
    print_table(rows)
    report = {
        "machine": {"python": sys.version.split()[0], "numpy": np.__version__,
                    "torch": None if torch is None else torch.__version__, "cpus": os.cpu_count(),
                    "platform": platform.platform()},
        "setup": {"d_in": D_IN, "batch": BATCH, "dtype": "float64", "cap_s": args.cap,
                  "threads": args.threads},
        "rows": rows,
    }
    workloads.write_json(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
