"""`chainrule gradcheck`: check every built-in op's gradient on this install.

Each op of the table below runs in float64 on random inputs drawn from a domain where it
is smooth (finite differences mean nothing at a kink); its Jacobian from reverse mode is
compared with central differences, and the table shows the worst relative error. A
correct install shows errors around 1e-9 or below; the check fails above 1e-5.

    chainrule gradcheck                # every op
    chainrule gradcheck --op softmax   # the ops whose name contains "softmax"
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._parser import UsageError

EPS = 1e-6
TOLERANCE = 1e-5  # central differences with eps 1e-6 agree to ~1e-9 on smooth ops


# ------------------------------------------------------------------ input domains
def real(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    return rng.uniform(-2.0, 2.0, shape)


def positive(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    return rng.uniform(0.5, 2.0, shape)


def nonzero(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """At least 0.3 from 0, where abs, relu and sign have their kink."""
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.3, 2.0, shape)


def unit(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    return rng.uniform(-0.9, 0.9, shape)


def off_steps(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """At least 0.1 from every multiple of 0.5, where floor/ceil/round jump."""
    return rng.integers(-4, 4, shape) * 0.5 + rng.uniform(0.1, 0.4, shape)


@dataclass(frozen=True)
class Op:
    """An op to check: ``fn(chainrule, *inputs)`` on inputs of ``shapes`` drawn from
    ``domains`` (one for all, or one per input)."""

    name: str
    fn: Callable[..., Any]
    shapes: tuple[tuple[int, ...], ...]
    domains: Any = real


def _ops() -> list[Op]:
    import chainrule.nn.functional as F

    sq = ((3, 4),)
    ops = [Op(name, (lambda n: lambda m, x: getattr(m, n)(x))(name), sq, domain) for name, domain in (
        ("neg", real), ("abs", nonzero), ("reciprocal", nonzero), ("sqrt", positive),
        ("rsqrt", positive), ("exp", real), ("log", positive), ("log1p", positive),
        ("expm1", real), ("log2", positive), ("exp2", real), ("sin", real), ("cos", real),
        ("tan", unit), ("tanh", real), ("sigmoid", real), ("relu", nonzero), ("erf", real),
        ("floor", off_steps), ("ceil", off_steps), ("round", off_steps), ("sign", nonzero),
    )]
    pair = ((3, 4), (3, 4))
    ops += [
        Op("add", lambda m, x, y: m.add(x, y), ((3, 1), (1, 4))),
        Op("sub", lambda m, x, y: m.sub(x, y), ((2, 3, 4), (4,))),
        Op("mul", lambda m, x, y: m.mul(x, y), ((3, 1), (1, 4))),
        Op("div", lambda m, x, y: m.div(x, y), pair, (real, nonzero)),
        Op("pow", lambda m, x, y: m.pow(x, y), pair, (positive, real)),
        Op("pow (scalar)", lambda m, x: x ** 3, sq),
        Op("maximum", lambda m, x, y: m.maximum(x, y), pair),
        Op("minimum", lambda m, x, y: m.minimum(x, y), pair),
        Op("where", lambda m, x, y: m.where(x > 0, x, y), pair, (nonzero, real)),
        Op("clamp", lambda m, x: m.clamp(x, -1.0, 1.0), sq, lambda r, s: off_steps(r, s) * 1.3),
        Op("sum", lambda m, x: x.sum(1), sq),
        Op("mean", lambda m, x: x.mean(0), sq),
        Op("prod", lambda m, x: x.prod(1), sq, nonzero),
        Op("amax", lambda m, x: x.amax(1), sq),
        Op("amin", lambda m, x: x.amin(0), sq),
        Op("max (dim)", lambda m, x: x.max(1).values, sq),
        Op("var", lambda m, x: x.var(1), sq),
        Op("std", lambda m, x: x.std(0), sq),
        Op("norm", lambda m, x: x.norm(), sq),
        Op("logsumexp", lambda m, x: m.logsumexp(x, 1), sq),
        Op("softmax", lambda m, x: m.softmax(x, 1), sq),
        Op("log_softmax", lambda m, x: m.log_softmax(x, 1), sq),
        Op("cumsum", lambda m, x: m.cumsum(x, 1), sq),
        Op("reshape", lambda m, x: x.reshape(4, 3), sq),
        Op("permute", lambda m, x: x.permute(2, 0, 1), ((2, 3, 4),)),
        Op("transpose", lambda m, x: x.t(), sq),
        Op("expand", lambda m, x: x.expand(2, 3, 4), ((3, 1),)),
        Op("repeat", lambda m, x: x.repeat(2, 1), sq),
        Op("cat", lambda m, x, y: m.cat([x, y], 1), ((3, 2), (3, 4))),
        Op("stack", lambda m, x, y: m.stack([x, y]), pair),
        Op("split", lambda m, x: x.split(2, 1)[1], sq),
        Op("flip", lambda m, x: x.flip(1), sq),
        Op("roll", lambda m, x: x.roll(1, 0), sq),
        Op("pad", lambda m, x: F.pad(x, (1, 2)), sq),
        Op("tril", lambda m, x: x.tril(), sq),
        Op("getitem", lambda m, x: x[1:, ::2], sq),
        Op("getitem (advanced)", lambda m, x: x[m.tensor([0, 2, 0])], sq),
        Op("gather", lambda m, x: x.gather(1, m.tensor([[0, 1], [3, 3], [2, 0]])), sq),
        Op("scatter_add", lambda m, x, y: x.scatter_add(1, m.tensor([[0, 0], [1, 3], [2, 2]]), y),
           ((3, 4), (3, 2))),
        Op("index_select", lambda m, x: x.index_select(1, m.tensor([3, 0])), sq),
        Op("masked_fill", lambda m, x: x.masked_fill(x > 0.5, 0.0), sq, nonzero),
        Op("matmul", lambda m, x, y: m.matmul(x, y), ((3, 4), (4, 2))),
        Op("bmm", lambda m, x, y: m.bmm(x, y), ((2, 3, 4), (2, 4, 2))),
        Op("einsum", lambda m, x, y: m.einsum("ij,kj->ik", x, y), ((3, 4), (2, 4))),
        Op("linear", lambda m, x, w, b: F.linear(x, w, b), ((3, 4), (2, 4), (2,))),
        Op("conv2d", lambda m, x, w: F.conv2d(x, w, padding=1), ((1, 2, 4, 4), (2, 2, 3, 3))),
        Op("max_pool2d", lambda m, x: F.max_pool2d(x, 2), ((1, 2, 4, 4),)),
        Op("avg_pool2d", lambda m, x: F.avg_pool2d(x, 2), ((1, 2, 4, 4),)),
        Op("layer_norm", lambda m, x: F.layer_norm(x, (4,)), sq),
        Op("gelu", lambda m, x: F.gelu(x), sq),
        Op("silu", lambda m, x: F.silu(x), sq),
        Op("softplus", lambda m, x: F.softplus(x), sq),
        Op("cross_entropy", lambda m, x: F.cross_entropy(x, m.tensor([0, 3, 1])), sq),
        Op("mse_loss", lambda m, x, y: F.mse_loss(x, y), pair),
        Op("bce_with_logits", lambda m, x, y: F.binary_cross_entropy_with_logits(x, y.sigmoid()),
           pair),
        Op("scaled_dot_product_attention",
           lambda m, q, k, v: F.scaled_dot_product_attention(q, k, v), ((2, 3), (4, 3), (4, 2))),
    ]
    return ops


@dataclass
class Result:
    name: str
    shapes: str
    error: float
    seconds: float

    @property
    def ok(self) -> bool:
        return self.error <= TOLERANCE


def check(op: Op, seed: int = 0) -> Result:
    """The worst relative error of ``op``'s reverse-mode Jacobian against central
    differences: ``|analytic - numeric| / max(|analytic|, |numeric|, 1)`` over its entries
    (relative for large entries, absolute for small ones, where the relative error of a
    difference quotient means nothing).

    >>> check(Op("exp", lambda m, x: m.exp(x), ((3,),))).error < 1e-8
    True
    """
    import chainrule
    from chainrule.autograd.functional import jacobian

    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    domains = op.domains if isinstance(op.domains, tuple) else (op.domains,) * len(op.shapes)
    arrays = [domain(rng, shape) for domain, shape in zip(domains, op.shapes)]
    inputs = tuple(chainrule.tensor(a, dtype=chainrule.float64, requires_grad=True) for a in arrays)
    analytic = jacobian(lambda *xs: op.fn(chainrule, *xs), inputs)
    worst = 0.0
    for i, array in enumerate(arrays):
        numeric = _numeric_jacobian(op, arrays, i)
        exact = analytic[i].numpy().reshape(-1, array.size)
        scale = np.maximum(np.maximum(np.abs(exact), np.abs(numeric)), 1.0)
        worst = max(worst, float((np.abs(exact - numeric) / scale).max(initial=0.0)))
    shapes = " ".join("x".join(map(str, s)) or "()" for s in op.shapes)
    return Result(op.name, shapes, worst, time.perf_counter() - start)


def _numeric_jacobian(op: Op, arrays: list[np.ndarray], index: int) -> np.ndarray:
    """d out / d arrays[index] by central differences, as (out numel, input numel)."""
    import chainrule

    def out(values: list[np.ndarray]) -> np.ndarray:
        with chainrule.no_grad():
            tensors = [chainrule.tensor(v, dtype=chainrule.float64) for v in values]
            return op.fn(chainrule, *tensors).numpy().ravel()

    columns = []
    for k in range(arrays[index].size):
        nudged = [a.copy() for a in arrays]
        flat = nudged[index].reshape(-1)
        flat[k] += EPS
        plus = out(nudged)
        flat[k] -= 2 * EPS
        columns.append((plus - out(nudged)) / (2 * EPS))
    return np.stack(columns, axis=1)


def add_parser(commands: Any) -> None:
    """Register ``gradcheck`` on the ``chainrule`` command's subparsers."""
    p = commands.add_parser("gradcheck", help="check every built-in op's gradient against finite "
                            "differences", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--op", metavar="TEXT", help="only the ops whose name contains TEXT")
    p.add_argument("--seed", type=int, default=0, help="seeds the random inputs (default: 0)")
    p.set_defaults(run=run_command)


def run_command(args: argparse.Namespace) -> int:
    ops = [op for op in _ops() if args.op is None or args.op in op.name]
    if not ops:
        raise UsageError(f"no op's name contains {args.op!r}")
    results = []
    print(f"{'op':30} {'input shapes':22} {'worst rel. error':>16}  ")
    for op in ops:
        result = check(op, args.seed)
        results.append(result)
        print(f"{result.name:30} {result.shapes:22} {result.error:16.2e}  "
              f"{'ok' if result.ok else 'FAIL'}", flush=True)
    failed = [r.name for r in results if not r.ok]
    worst = max(results, key=lambda r: r.error)
    print(f"{len(results)} ops in {sum(r.seconds for r in results):.1f} s; worst: {worst.name} "
          f"({worst.error:.1e}); " + (f"FAILED: {', '.join(failed)}" if failed
                                      else f"all within {TOLERANCE:g}"))
    return 1 if failed else 0
