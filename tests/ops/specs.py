"""The declarative op table: one ``OpSpec`` per op, driving tests/ops/test_op_table.py.

An entry names the op, gives one callable that works with either module
(``fn(m, *inputs, **kwargs)`` with ``m`` chainrule or torch), the domain its inputs are
drawn from, and its cases (input shapes, or explicit values, plus keyword arguments).
Every differentiable case is checked in float64 against finite differences to first and
second order, and every case against PyTorch's values and gradients.

Domains keep finite differences (eps 1e-6) away from points where an op is not smooth:
0 for abs/relu/sign, the integers (and half-integers) for floor/ceil/round, the clamp
bounds, ties for max/min. Those points are still checked, but against PyTorch only, in
cases marked ``smooth=False``: there the derivative is a convention, not a limit.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import chainrule
from chainrule.ops import nn_kernels

Domain = Callable[[np.random.Generator, tuple], np.ndarray]


# ------------------------------------------------------------------ input domains


def real(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    return rng.uniform(-2.0, 2.0, shape)


def positive(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    return rng.uniform(0.5, 2.0, shape)


def nonzero(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Either sign, at least 0.3 from 0 (abs, relu, sign, reciprocal, div)."""
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.3, 2.0, shape)


def unit(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    return rng.uniform(-0.9, 0.9, shape)


def above_minus_one(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    return rng.uniform(-0.5, 2.0, shape)  # log1p's domain, away from its pole at -1


def off_steps(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """At least 0.1 from every multiple of 0.5, where floor/ceil/round/trunc jump."""
    return rng.integers(-6, 6, shape) * 0.5 + rng.uniform(0.1, 0.4, shape)


def avoiding(*points: float, margin: float = 0.1, low: float = -2.0, high: float = 2.0) -> Domain:
    """Uniform on [low, high], redrawn until every value is ``margin`` away from ``points``."""

    def draw(rng: np.random.Generator, shape: tuple) -> np.ndarray:
        values = rng.uniform(low, high, shape)
        while True:
            near = np.zeros(shape, dtype=bool)
            for p in points:
                near |= np.abs(values - p) < margin
            if not near.any():
                return values
            values = np.where(near, rng.uniform(low, high, shape), values)

    return draw


def uniform(low: float, high: float) -> Domain:
    def draw(rng: np.random.Generator, shape: tuple) -> np.ndarray:
        return rng.uniform(low, high, shape)

    return draw


def small_integers(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Integer-valued floats in [-2, 2]: comparisons see ties, logical ops see zeros."""
    return rng.integers(-2, 3, shape).astype(np.float64)


def distinct(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """A shuffled grid with steps of 0.25: no two elements tie, so max/min/sort are smooth."""
    n = int(np.prod(shape, dtype=np.int64))
    return (rng.permutation(n) * 0.25 - n * 0.125 + rng.uniform(0.0, 0.01)).reshape(shape)


# ------------------------------------------------------------------ the table's records


@dataclass(frozen=True)
class Case:
    """One call of an op: its input shapes (or explicit values) and keyword arguments."""

    shapes: tuple = ()
    values: tuple | None = None
    kwargs: dict = field(default_factory=dict)
    label: str = ""
    smooth: bool = True  # False: a non-smooth point, checked against PyTorch only
    torch_no_grad: str = ""  # why PyTorch's gradient cannot be compared (values still are)

    def make_inputs(self, spec: OpSpec, key: str) -> list[np.ndarray]:
        if self.values is not None:
            return [np.array(v, dtype=np.float64) for v in self.values]
        rng = np.random.default_rng(zlib.crc32(key.encode()))
        domains = spec.domain if isinstance(spec.domain, tuple) else (spec.domain,) * len(
            self.shapes)
        return [np.asarray(d(rng, s), dtype=np.float64) for d, s in zip(domains, self.shapes)]

    @property
    def id(self) -> str:
        if self.label:
            return self.label
        shapes = ",".join("x".join(map(str, s)) if s else "0d" for s in self.shapes)
        kw = ",".join(f"{k}={_show(v)}" for k, v in self.kwargs.items())
        return f"{shapes}{'-' + kw if kw else ''}"


def _show(value: Any) -> str:
    """A keyword argument in a test id: arrays on one line, without spaces."""
    if isinstance(value, np.ndarray):
        return np.array2string(value, separator=",").replace("\n", "").replace(" ", "")
    return str(value).replace(" ", "")


def case(*shapes: tuple, label: str = "", torch_no_grad: str = "", **kwargs: Any) -> Case:
    """Inputs of these shapes drawn from the op's domain; ``kwargs`` go to the op."""
    return Case(shapes=shapes, kwargs=kwargs, label=label, torch_no_grad=torch_no_grad)


def at(*values: Any, label: str, smooth: bool = True, **kwargs: Any) -> Case:
    """Inputs with exactly these values (zeros in prod, ties in max, points on a kink)."""
    return Case(values=values, kwargs=kwargs, label=label, smooth=smooth)


@dataclass(frozen=True)
class OpSpec:
    """One op: ``fn(m, *inputs, **case.kwargs)`` for ``m`` in (chainrule, torch)."""

    name: str
    fn: Callable[..., Any]
    cases: tuple[Case, ...]
    domain: Domain | tuple[Domain, ...] = real
    differentiable: bool = True
    why_no_grad: str = ""  # required when not differentiable: why gradcheck is skipped
    atol: float = 1e-5  # gradcheck / gradgradcheck tolerances (finite differences)
    rtol: float = 1e-3
    parity_rtol: float = 1e-10  # against PyTorch in float64
    parity_atol: float = 1e-12

    def __repr__(self) -> str:
        return f"OpSpec({self.name!r})"

    def call(self, m: Any, inputs: list, kwargs: dict) -> Any:
        return self.fn(m, *inputs, **kwargs)


def _const(m: Any, array: Any) -> Any:
    """A constant (index, mask) as a tensor of module ``m``."""
    return m.tensor(np.asarray(array))


def _pattern(shape: tuple, period: int = 3) -> np.ndarray:
    """A fixed boolean condition of ``shape`` with both values present."""
    return (np.arange(int(np.prod(shape, dtype=np.int64))) % period != 1).reshape(shape)


NO_GRAD_BOOL = "bool output: no gradient is defined (PyTorch's comparisons have none either)"
NO_GRAD_INT = "integer output (indices): no gradient is defined"

# ------------------------------------------------------------------ shapes shared by families

UNARY = (case(()), case((5,)), case((2, 3)), case((0, 3)))
BINARY = (
    case((), ()),
    case((2, 3), (2, 3)),
    case((3, 1), (1, 4)),
    case((4,), (2, 3, 4)),
    case((2, 3), ()),
    case((0, 3), (3,)),
)
SCALAR_RHS = (case(()), case((2, 3)), case((0, 3)))


def _unary(name: str, domain: Domain = real, kink: list | None = None) -> OpSpec:
    """``m.<name>(x)`` over UNARY shapes and ``x.<name>()``; ``kink``: values at the
    non-smooth points, checked against PyTorch only."""
    cases = UNARY + (case((2, 3), label="method", method=True),)
    if kink is not None:
        cases += (at(kink, label="at-kink", smooth=False),)

    def fn(m: Any, x: Any, method: bool = False) -> Any:
        return getattr(x, name)() if method else getattr(m, name)(x)

    return OpSpec(name, fn, cases, domain)


# ------------------------------------------------------------------ elementwise

ELEMENTWISE = [
    OpSpec("add", lambda m, x, y: m.add(x, y), BINARY),
    OpSpec("add[alpha]", lambda m, x, y: m.add(x, y, alpha=2.5), BINARY[:3]),
    OpSpec("add[x+2.5]", lambda m, x: x + 2.5, SCALAR_RHS),
    OpSpec("add[2.5+x]", lambda m, x: 2.5 + x, SCALAR_RHS),
    OpSpec("sub", lambda m, x, y: m.sub(x, y), BINARY),
    OpSpec("sub[x-y]", lambda m, x, y: x - y, BINARY[:3]),
    OpSpec("sub[x-2.5]", lambda m, x: x - 2.5, SCALAR_RHS),
    OpSpec("sub[2.5-x]", lambda m, x: 2.5 - x, SCALAR_RHS),
    OpSpec("mul", lambda m, x, y: m.mul(x, y), BINARY),
    OpSpec("mul[x*x]", lambda m, x: x * x, SCALAR_RHS),  # one tensor used twice
    OpSpec("mul[x*2.5]", lambda m, x: x * 2.5, SCALAR_RHS),
    OpSpec("mul[2.5*x]", lambda m, x: 2.5 * x, SCALAR_RHS),
    OpSpec("div", lambda m, x, y: m.div(x, y), BINARY, (real, nonzero)),
    OpSpec("div[x/y]", lambda m, x, y: x / y, BINARY[:3], (real, nonzero)),
    OpSpec("div[x/2.5]", lambda m, x: x / 2.5, SCALAR_RHS),
    OpSpec("div[2.5/x]", lambda m, x: 2.5 / x, SCALAR_RHS, nonzero),
    OpSpec("neg", lambda m, x: m.neg(x), UNARY),
    OpSpec("neg[-x]", lambda m, x: -x, UNARY[:2]),
    OpSpec("pow[x**y]", lambda m, x, y: m.pow(x, y), BINARY, (positive, real)),
    OpSpec("pow[x**y op]", lambda m, x, y: x ** y, BINARY[:3], (positive, real)),
    OpSpec("pow[x**2.5]", lambda m, x: x ** 2.5, SCALAR_RHS, positive),
    OpSpec("pow[x**-1.5]", lambda m, x: m.pow(x, -1.5), SCALAR_RHS, positive),
    OpSpec("pow[x**2]", lambda m, x: x ** 2, SCALAR_RHS),
    OpSpec("pow[x**3]", lambda m, x: m.pow(x, 3), SCALAR_RHS),
    OpSpec("pow[x**0]", lambda m, x: x ** 0, SCALAR_RHS),
    OpSpec("pow[2.0**x]", lambda m, x: 2.0 ** x, SCALAR_RHS),
    OpSpec("pow[0.5**x]", lambda m, x: m.pow(0.5, x), SCALAR_RHS),
    OpSpec("pow[0.0**x]", lambda m, x: 0.0 ** x, (
        case((2, 3)),
        at([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan], label="special", smooth=False),
    ), uniform(0.2, 2.0)),
    # negative base: the exponent's gradient x^y ln x is NaN in both libraries
    OpSpec("pow[negative base]", lambda m, x, y: x ** y,
           (at([-1.5, -2.0, -0.5], [2.0, 3.0, -1.0], label="integer-exponents", smooth=False),)),
    OpSpec("pow[x**y at 0]", lambda m, x, y: x ** y,
           (at([0.0, 0.0, 0.0, 1.5], [2.0, 1.0, 0.0, 0.0], label="zero-base-and-exponent",
               smooth=False),)),
    _unary("abs", nonzero, kink=[0.0, -1.0, 1.0, np.nan]),
    _unary("sign", nonzero, kink=[0.0, -0.0, -1.0, 1.0, np.nan, -np.inf]),
    _unary("reciprocal", nonzero),
    _unary("sqrt", positive),
    _unary("rsqrt", positive),
    _unary("exp"),
    _unary("log", positive),
    _unary("log1p", above_minus_one),
    _unary("expm1"),
    _unary("log2", positive),
    _unary("exp2"),
    _unary("sin"),
    _unary("cos"),
    _unary("tan", unit),
    _unary("tanh"),
    _unary("sigmoid"),
    OpSpec("sigmoid[large]", lambda m, x: m.sigmoid(x),
           (at([-40.0, -10.0, 0.0, 10.0, 40.0], label="saturated"),)),
    _unary("relu", nonzero, kink=[0.0, -1.0, 1.0, np.nan]),
    _unary("erf"),
    _unary("floor", off_steps, kink=[-1.0, 0.0, 2.0]),
    _unary("ceil", off_steps, kink=[-1.0, 0.0, 2.0]),
    _unary("round", off_steps, kink=[-1.5, -0.5, 0.5, 1.5, 2.5]),  # half to even
    _unary("trunc", off_steps, kink=[-1.0, 0.0, 2.0]),
    OpSpec("round[decimals]", lambda m, x: m.round(x, decimals=1),
           (at([0.123, -1.271, 2.449], label="decimals=1"),)),
    OpSpec("maximum", lambda m, x, y: m.maximum(x, y), BINARY + (
        at([1.0, 2.0, 3.0], [1.0, 0.0, 3.0], label="ties", smooth=False),
        at([1.0, np.nan, np.nan, np.inf], [np.nan, 1.0, np.nan, np.inf], label="nan-inf",
           smooth=False),)),
    OpSpec("minimum", lambda m, x, y: m.minimum(x, y), BINARY + (
        at([1.0, 2.0, 3.0], [1.0, 0.0, 3.0], label="ties", smooth=False),
        at([1.0, np.nan, np.nan, -np.inf], [np.nan, 1.0, np.nan, -np.inf], label="nan-inf",
           smooth=False),)),
    OpSpec("max[x,y]", lambda m, x, y: m.max(x, y), BINARY[:3]),
    OpSpec("min[x,y]", lambda m, x, y: m.min(x, y), BINARY[:3]),
    OpSpec("clamp[scalar]", lambda m, x, **kw: m.clamp(x, **kw), (
        case((), min=-0.5, max=0.5),
        case((2, 3), min=-0.5, max=0.5),
        case((2, 3), min=-0.5),
        case((2, 3), max=0.5),
        case((0, 3), min=-0.5, max=0.5),
        case((2, 3), min=0.5, max=-0.5),  # min > max: every element becomes max
        at([-0.5, 0.5, 0.0, 1.0], label="on-bounds", smooth=False, min=-0.5, max=0.5),
    ), avoiding(-0.5, 0.5)),
    OpSpec("clip[method]", lambda m, x: x.clip(-0.5, 0.5), (case((2, 3)),), avoiding(-0.5, 0.5)),
    # tensor bounds: lo in [-1.5, -0.5], hi in [0.5, 1.5], so lo < hi; x crosses both
    OpSpec("clamp[tensor]", lambda m, x, lo, hi: m.clamp(x, lo, hi), (
        case((), (), ()),
        case((2, 3), (2, 3), (2, 3)),
        case((3, 4), (4,), (3, 1)),
        case((0, 3), (3,), ()),
        at([-1.0, 0.0, 1.0, -2.0, 2.0], [-1.0, -0.5, -0.5, -0.5, -0.5],
           [0.5, 0.5, 1.0, 0.5, 0.5], label="on-bounds", smooth=False),
        # a NaN anywhere gives NaN and no gradient; x < lo == hi gives hi and no gradient
        at([1.0, np.nan, 2.0, 0.5, 1.0], [np.nan, 0.0, 2.0, 0.7, 0.0], [2.0, 1.0, 2.0, 0.7, np.nan],
           label="nan-and-equal-bounds", smooth=False),
    ), (real, uniform(-1.5, -0.5), uniform(0.5, 1.5))),
    OpSpec("clamp[tensor min]", lambda m, x, lo: m.clamp(x, min=lo),
           (case((2, 3), (3,)),), (real, uniform(-1.5, -0.5))),
    OpSpec("clamp[tensor max]", lambda m, x, hi: m.clip(x, max=hi),
           (case((2, 3), (2, 1)),), (real, uniform(0.5, 1.5))),
    OpSpec("where", lambda m, x, y: m.where(
        _const(m, _pattern(np.broadcast_shapes(tuple(x.shape), tuple(y.shape)))), x, y), BINARY),
    OpSpec("where[cond broadcast]", lambda m, x, y: m.where(_const(m, _pattern((4,))), x, y),
           (case((3, 4), (3, 4)), case((4,), (2, 1)))),
    OpSpec("where[scalar other]", lambda m, x: m.where(_const(m, _pattern(tuple(x.shape))), x, 0.5),
           (case((2, 3)),)),
    OpSpec("where[method]", lambda m, x, y: x.where(_const(m, _pattern((2, 3))), y),
           (case((2, 3), (2, 3)),)),
    # the branch not taken is NaN (log of a negative): no NaN may reach the gradient
    OpSpec("where[nan branch]", lambda m, x: m.where(x > 0, m.log(x), x), (case((2, 3)),),
           nonzero),
    OpSpec("erf[tails]", lambda m, x: m.erf(x), (at([-6.0, -3.0, 3.0, 6.0], label="tails"),)),
]

# ------------------------------------------------------------------ comparisons and logic

_COMPARE_CASES = (case((2, 3), (2, 3)), case((3, 1), (1, 4)), case((), (3,)), case((0, 3), (3,)))


def _no_grad(name: str, fn: Callable, cases: tuple = _COMPARE_CASES, why: str = NO_GRAD_BOOL,
             domain: Domain = small_integers) -> OpSpec:
    return OpSpec(name, fn, cases, domain, differentiable=False, why_no_grad=why)


COMPARISONS = [
    _no_grad("eq", lambda m, x, y: m.eq(x, y)),
    _no_grad("ne", lambda m, x, y: m.ne(x, y)),
    _no_grad("lt", lambda m, x, y: m.lt(x, y)),
    _no_grad("le", lambda m, x, y: m.le(x, y)),
    _no_grad("gt", lambda m, x, y: m.gt(x, y)),
    _no_grad("ge", lambda m, x, y: m.ge(x, y)),
    _no_grad("eq[==]", lambda m, x, y: x == y),
    _no_grad("lt[<]", lambda m, x, y: x < y),
    _no_grad("ge[>=]", lambda m, x, y: x >= y),
    _no_grad("gt[x>0.5]", lambda m, x: x > 0.5, (case((2, 3)),)),
    _no_grad("logical_and", lambda m, x, y: m.logical_and(x, y)),
    _no_grad("logical_or", lambda m, x, y: m.logical_or(x, y)),
    _no_grad("logical_xor", lambda m, x, y: m.logical_xor(x, y)),
    _no_grad("logical_not", lambda m, x: m.logical_not(x), (case((2, 3)), case(()))),
    _no_grad("bitwise[&|~]", lambda m, x, y: ((x > 0) & (y > 0), (x > 0) | (y > 0), ~(x > 0)),
             (case((2, 3), (2, 3)),)),
    _no_grad("isfinite", lambda m, x: m.isfinite(m.log(x)), (case((2, 3)),),
             domain=uniform(-1.0, 1.0)),
]

# ------------------------------------------------------------------ reductions

# the same reduction cases for sum/mean/amax/...: all dims, one dim, several, negative, keepdim
REDUCE = (
    case(()),
    case((5,)),
    case((2, 3)),
    case((2, 3), dim=1),
    case((2, 3), dim=-2, keepdim=True),
    case((2, 3, 2), dim=(0, 2)),
    case((2, 3, 2), dim=(0, -1), keepdim=True),
    case((), dim=0),
    case((0, 3), dim=0),
    case((0, 3), dim=1),
)
# methods with NumPy's spellings (DESIGN.md: rules call .sum(axis=, keepdims=))
AXIS = (case((2, 3), axis=1), case((2, 3), axis=0, keepdims=True))
PROD_ZEROS = (
    at([[1.5, 0.0, 2.0], [0.5, -1.0, 3.0]], label="one-zero", dim=1),
    at([[1.5, 0.0, 2.0], [0.0, -1.0, 0.0]], label="one-and-two-zeros", dim=1),
    at([[1.5, 0.0, 0.0, 2.0]], label="two-zeros-all"),
    at([[0.0, 0.0, 0.0, 2.0]], label="three-zeros-all"),
    at([[np.inf, 0.0, 2.0], [np.nan, 0.0, 1.0]], label="zero-with-inf-nan", smooth=False, dim=1),
    at([[0.0, 1.5], [0.0, 2.0]], label="zeros-dim0", dim=0),
)
TIES = at([[1.0, 3.0, 3.0], [2.0, 2.0, -1.0]], label="ties", smooth=False)
# a NaN is the extremum; torch.max(x) shares the gradient among the NaNs
NANS = at([[1.0, np.nan, 3.0], [np.nan, 2.0, -1.0]], label="nans", smooth=False)


def _method(name: str) -> Callable:
    return lambda m, x, **kw: getattr(x, name)(**kw)


REDUCTIONS = [
    OpSpec("sum", lambda m, x, **kw: m.sum(x, **kw), REDUCE),
    OpSpec("sum[method]", _method("sum"), AXIS + (case((2, 3), dim=0),)),
    OpSpec("mean", lambda m, x, **kw: m.mean(x, **kw), REDUCE),  # mean over a 0-size dim: NaN
    OpSpec("mean[method]", _method("mean"), AXIS),
    OpSpec("prod", lambda m, x, **kw: m.prod(x, **kw), (
        case(()), case((5,)), case((2, 3)), case((2, 3), dim=1),
        case((2, 3), dim=0, keepdim=True), case((0, 3), dim=1), case((0, 3)),
    ) + PROD_ZEROS),
    OpSpec("prod[method]", _method("prod"), AXIS),
    OpSpec("max[all]", lambda m, x: m.max(x), (case(()), case((5,)), case((2, 3)), TIES, NANS),
           distinct),
    OpSpec("min[all]", lambda m, x: m.min(x), (case(()), case((5,)), case((2, 3)), TIES, NANS),
           distinct),
    OpSpec("max[dim]", lambda m, x, **kw: m.max(x, **kw), (
        case((5,), dim=0), case((2, 3), dim=1), case((2, 3), dim=0, keepdim=True),
        case((), dim=0), case((0, 3), dim=1),
        at([[1.0, 3.0, 3.0], [2.0, 2.0, -1.0]], label="ties-dim1", smooth=False, dim=1),
        at([[1.0, 3.0, 3.0], [1.0, 2.0, 3.0]], label="ties-dim0", smooth=False, dim=0),
    ), distinct),
    OpSpec("min[dim]", lambda m, x, **kw: m.min(x, **kw), (
        case((5,), dim=0), case((2, 3), dim=-1), case((2, 3), dim=0, keepdim=True),
        at([[1.0, -3.0, -3.0], [2.0, 2.0, 5.0]], label="ties-dim1", smooth=False, dim=1),
    ), distinct),
    OpSpec("max[method]", _method("max"), AXIS, distinct),
    OpSpec("min[method]", _method("min"), AXIS, distinct),
    OpSpec("amax", lambda m, x, **kw: m.amax(x, **kw), REDUCE[:-2] + (
        case((0, 3), dim=1),
        at([[1.0, 3.0, 3.0], [2.0, 2.0, -1.0]], label="ties-dim1", smooth=False, dim=1),
        TIES), distinct),
    OpSpec("amin", lambda m, x, **kw: m.amin(x, **kw), REDUCE[:-2] + (TIES,), distinct),
    OpSpec("amax[method]", _method("amax"), AXIS, distinct),
    OpSpec("amin[method]", _method("amin"), AXIS, distinct),
    OpSpec("var", lambda m, x, **kw: m.var(x, **kw), (
        case((5,)), case((2, 3)), case((2, 3), dim=1), case((2, 3), dim=0, keepdim=True),
        case((2, 3, 2), dim=(0, 2)), case((2, 3), dim=1, unbiased=False),
        case((2, 3), dim=1, correction=0), case((2, 4), dim=1, correction=2),
        case((), dim=0, correction=0), case((0, 3), dim=1),
        at([[1.5, 1.5, 1.5], [0.0, 1.0, 2.0]], label="constant-row", dim=1),
    )),
    OpSpec("std", lambda m, x, **kw: m.std(x, **kw), (
        case((5,)), case((2, 3)), case((2, 3), dim=1), case((2, 3), dim=0, keepdim=True),
        case((2, 3), dim=1, unbiased=False), case((2, 4), dim=-1, correction=0),
        case((0, 3), dim=1),
        # std = 0 is a kink (|x| in one dimension): PyTorch's gradient there is 0
        at([[1.5, 1.5, 1.5], [0.0, 1.0, 2.0]], label="constant-row", smooth=False, dim=1),
        at(2.0, label="0d", smooth=False, dim=0, correction=0),
    )),
    OpSpec("var[method]", _method("var"), AXIS),
    OpSpec("std[method]", _method("std"), AXIS),
    OpSpec("norm", lambda m, x, **kw: m.norm(x, **kw), (
        case(()), case((5,)), case((2, 3)), case((2, 3), p="fro"),
        case((2, 3), p=2, dim=1), case((2, 3), p=2, dim=0, keepdim=True),
        case((2, 3), p=1), case((2, 3), p=1, dim=1),
        case((2, 3), p=3), case((2, 3), p=3, dim=0),
        case((2, 3), p=float("inf")), case((2, 3), p=float("inf"), dim=1),
        case((2, 3), p=float("inf"), dim=0),
        at([[1.0, -2.0, 2.0], [0.5, 0.5, -0.5]], label="inf-ties", smooth=False, p=float("inf"),
           dim=1),
        case((2, 3, 2), p=2, dim=(0, 2)),
        at([[0.0, 0.0], [1.0, -2.0]], label="zero-row-p2", smooth=False, p=2, dim=1),
    ), nonzero),
    OpSpec("norm[method]", lambda m, x, **kw: x.norm(**kw),
           (case((2, 3), p=2, dim=1), case((2, 3))), nonzero),
    OpSpec("logsumexp", lambda m, x, **kw: m.logsumexp(x, **kw), (
        case((5,), dim=0), case((2, 3), dim=1), case((2, 3), dim=0, keepdim=True),
        case((2, 3, 2), dim=(0, 2)), case((), dim=0),
        at([[1000.0, 1000.5], [-1000.0, -999.0]], label="large", dim=1),
    )),
    OpSpec("logsumexp[method]", _method("logsumexp"), AXIS),
    OpSpec("softmax", lambda m, x, **kw: m.softmax(x, **kw), (
        case((5,), dim=0), case((2, 3), dim=1), case((2, 3), dim=0), case((2, 3, 2), dim=-2),
        case((), dim=0), case((0, 3), dim=1),
        at([[1000.0, 1000.5, 999.0]], label="large", dim=1),
        at([[0.5, -np.inf, 1.0], [-1.0, 0.0, -np.inf]], label="masked-inf", dim=1),
    )),
    OpSpec("log_softmax", lambda m, x, **kw: m.log_softmax(x, **kw), (
        case((5,), dim=0), case((2, 3), dim=1), case((2, 3), dim=0), case((2, 3, 2), dim=-2),
        case((), dim=0), case((0, 3), dim=1),
        at([[1000.0, 1000.5, 999.0]], label="large", dim=1),
        # -inf out where -inf went in: finite differences give inf - inf there
        at([[0.5, -np.inf, 1.0]], label="masked-inf", smooth=False, dim=1),
    )),
    OpSpec("softmax[method]", lambda m, x: x.softmax(-1), (case((2, 3)),)),
    OpSpec("cumsum", lambda m, x, **kw: m.cumsum(x, **kw), (
        case((5,), dim=0), case((2, 3), dim=1), case((2, 3), dim=-2), case((), dim=0),
        case((0, 3), dim=1),
    )),
    _no_grad("argmax", lambda m, x, **kw: m.argmax(x, **kw), (
        case((2, 3)), case((2, 3), dim=1), case((2, 3), dim=0, keepdim=True), case(()),
        at([[1.0, 3.0, 3.0], [2.0, 2.0, -1.0]], label="ties", dim=1),
    ), why=NO_GRAD_INT, domain=distinct),
    _no_grad("argmin", lambda m, x, **kw: m.argmin(x, **kw), (
        case((2, 3)), case((2, 3), dim=-1), case((5,), dim=0, keepdim=True),
        at([[1.0, -3.0, -3.0], [2.0, 2.0, 5.0]], label="ties", dim=1),
    ), why=NO_GRAD_INT, domain=distinct),
    _no_grad("argmax[method]", _method("argmax"), AXIS, why=NO_GRAD_INT, domain=distinct),
]

# ------------------------------------------------------------------ shape and layout

SHAPE = [
    OpSpec("reshape", lambda m, x, **kw: m.reshape(x, kw["shape"]), (
        case((2, 3), shape=(3, 2)), case((2, 3), shape=(-1,)), case((6,), shape=(2, 1, -1)),
        case((), shape=(1,)), case((1,), shape=()), case((0, 3), shape=(3, 0)),
    )),
    OpSpec("reshape[method]", lambda m, x: x.reshape(3, 2), (case((2, 3)),)),
    OpSpec("view", lambda m, x: x.view(-1, 2), (case((2, 3)), case((4,)))),
    OpSpec("flatten", lambda m, x, **kw: m.flatten(x, **kw), (
        case((2, 3, 2)), case((2, 3, 2), start_dim=1), case((2, 3, 2), end_dim=1),
        case(()), case((0, 3)),
    )),
    OpSpec("squeeze", lambda m, x, **kw: m.squeeze(x, **kw), (
        case((2, 1, 3, 1)), case((2, 1, 3, 1), dim=1), case((2, 1, 3), dim=0),
        case((2, 1, 3, 1), dim=(1, 3)), case((2, 1, 3, 1), dim=-1),
        case((1,)), case(()),
    )),
    OpSpec("unsqueeze", lambda m, x, **kw: m.unsqueeze(x, **kw), (
        case((2, 3), dim=0), case((2, 3), dim=-1), case((2, 3), dim=1), case((), dim=0),
    )),
    OpSpec("permute", lambda m, x, **kw: m.permute(x, kw["dims"]), (
        case((2, 3, 4), dims=(2, 0, 1)), case((2, 3), dims=(1, 0)), case((), dims=()),
        case((0, 3), dims=(1, 0)),
    )),
    OpSpec("permute[method]", lambda m, x: x.permute(1, 2, 0), (case((2, 3, 4)),)),
    OpSpec("transpose", lambda m, x, **kw: m.transpose(x, kw["a"], kw["b"]), (
        case((2, 3), a=0, b=1), case((2, 3, 4), a=-1, b=0), case((2, 3), a=1, b=1),
        case((), a=0, b=-1),
    )),
    OpSpec("transpose[.T,.mT]", lambda m, x: (x.T, x.mT), (case((2, 3)),)),
    OpSpec("t", lambda m, x: m.t(x), (case((2, 3)), case((3,)), case(()))),
    OpSpec("t[method]", lambda m, x: x.t(), (case((0, 3)),)),
    OpSpec("expand", lambda m, x, **kw: x.expand(*kw["size"]), (
        case((3, 1), size=(3, 4)), case((3,), size=(2, 3)), case((), size=(2, 2)),
        case((1, 3), size=(-1, 3)), case((1, 3), size=(2, 0, 3)),
    )),
    OpSpec("broadcast_to", lambda m, x, **kw: m.broadcast_to(x, kw["size"]), (
        case((3, 1), size=(2, 3, 4)), case((), size=(3,)),
    )),
    OpSpec("repeat", lambda m, x, **kw: x.repeat(*kw["reps"]), (
        case((2, 3), reps=(2, 1)), case((3,), reps=(2, 2)), case((), reps=(3,)),
        case((2, 3), reps=(1, 0)),
    )),
    OpSpec("cat", lambda m, *xs, **kw: m.cat(list(xs), **kw), (
        case((2, 3), (1, 3)), case((2, 3), (2, 1), (2, 2), dim=1),
        case((2, 3), (0, 3), dim=0), case((2,), (3,)),
        case((2, 3), (0,), label="legacy-empty-1d"),  # PyTorch skips a 1-d empty tensor
        case((2, 1), (2, 3), dim=-1),
    )),
    OpSpec("stack", lambda m, *xs, **kw: m.stack(list(xs), **kw), (
        case((2, 3), (2, 3)), case((2, 3), (2, 3), (2, 3), dim=-1), case((), ()),
        case((0, 3), (0, 3), dim=1),
    )),
    OpSpec("split", lambda m, x, **kw: m.split(x, kw["size"], dim=kw.get("dim", 0)), (
        case((5, 2), size=2), case((2, 5), size=[1, 3, 1], dim=1), case((4,), size=4),
        case((5,), size=[2, 0, 3]),
    )),
    OpSpec("chunk", lambda m, x, **kw: m.chunk(x, kw["chunks"], dim=kw.get("dim", 0)), (
        case((5, 2), chunks=2), case((2, 6), chunks=3, dim=1), case((3,), chunks=5),
    )),
    OpSpec("unbind", lambda m, x, **kw: m.unbind(x, **kw), (
        case((3, 2)), case((2, 3), dim=1), case((2,)),
    )),
    OpSpec("flip", lambda m, x, **kw: m.flip(x, kw["dims"]), (
        case((2, 3), dims=(0,)), case((2, 3, 2), dims=(0, 2)), case((4,), dims=(-1,)),
    )),
    OpSpec("roll", lambda m, x, **kw: m.roll(x, **kw), (
        case((5,), shifts=2), case((2, 3), shifts=1, dims=1), case((2, 3), shifts=-1, dims=0),
        case((2, 3), shifts=(1, 2), dims=(0, 1)), case((2, 3), shifts=4),
    )),
    # chainrule.nn.functional.pad is chainrule.ops.shape.pad
    OpSpec("pad", lambda m, x, **kw: m.nn.functional.pad(x, **kw), (
        case((2, 3), pad=(1, 2)), case((2, 3), pad=(1, 0, 0, 2), value=1.5),
        case((2, 3, 2), pad=(0, 1, 1, 1)), case((2, 4), pad=(-1, 1)), case((0, 3), pad=(1, 1)),
    )),
    OpSpec("tril", lambda m, x, **kw: m.tril(x, **kw), (
        case((3, 3)), case((3, 4), diagonal=1), case((4, 3), diagonal=-1), case((2, 3, 3)),
    )),
    OpSpec("triu", lambda m, x, **kw: m.triu(x, **kw), (
        case((3, 3)), case((3, 4), diagonal=-1), case((4, 3), diagonal=2), case((2, 3, 3)),
    )),
]

# ------------------------------------------------------------------ indexing

_IDX_DIM1 = np.array([[0, 2, 2], [1, 0, 1]])  # (2, 3): repeated positions in each row
_IDX_DIM0 = np.array([[1, 0, 1, 1], [0, 0, 1, 0]])  # (2, 4) into dim 0 of size 2 or 3
_PERM_DIM0 = np.array([[1, 0, 2, 1], [0, 2, 1, 0]])  # (2, 4): no repeat within a column
_MASK = np.array([[True, False, True, True], [False, False, True, False], [True, True, False,
                                                                           False]])


def _getitem(index: Callable) -> Callable:
    return lambda m, x: x[index(m)]


INDEXING = [
    OpSpec("getitem[int]", _getitem(lambda m: 1), (case((3, 4)), case((3,)))),
    OpSpec("getitem[slice]", _getitem(lambda m: (slice(None), slice(1, None, 2))),
           (case((3, 4)),)),
    OpSpec("getitem[negative int,slice]", _getitem(lambda m: (-1, slice(None, 2))),
           (case((3, 4)),)),
    OpSpec("getitem[None,Ellipsis]", _getitem(lambda m: (None, Ellipsis, 1)),
           (case((2, 3, 4)), case((3,)))),
    OpSpec("getitem[...]", _getitem(lambda m: ...), (case(()), case((3,)))),
    OpSpec("getitem[empty slice]", _getitem(lambda m: slice(2, 2)), (case((3, 4)),)),
    OpSpec("getitem[int array repeats]", _getitem(lambda m: _const(m, [0, 2, 0, 0])),
           (case((3, 4)), case((3,)))),
    OpSpec("getitem[list]", _getitem(lambda m: [2, 2, 1]), (case((3, 4)),)),
    OpSpec("getitem[negative ints]", _getitem(lambda m: _const(m, [-1, 0, -1])), (case((3, 2)),)),
    OpSpec("getitem[0-d int tensor]", _getitem(lambda m: _const(m, 1)), (case((3, 4)),)),
    OpSpec("getitem[2-d int array]", _getitem(lambda m: _const(m, [[0, 1], [1, 0]])),
           (case((3, 2)),)),
    OpSpec("getitem[int arrays pair]",
           _getitem(lambda m: (_const(m, [0, 2, 2]), slice(None), _const(m, [1, 0, 1]))),
           (case((3, 2, 2)),)),
    OpSpec("getitem[int array after slice]",
           _getitem(lambda m: (slice(None), _const(m, [3, 0, 3]))), (case((3, 4)),)),
    OpSpec("getitem[bool mask]", _getitem(lambda m: _const(m, _MASK)), (case((3, 4)),)),
    OpSpec("getitem[bool rows]", _getitem(lambda m: _const(m, [True, False, True])),
           (case((3, 4)),)),
    OpSpec("getitem[bool all false]", _getitem(lambda m: _const(m, np.zeros(3, dtype=bool))),
           (case((3, 2)),)),
    OpSpec("getitem[composed]", lambda m, x: x[1:][:, [0, 0, 2]][0], (case((3, 4)),)),
    OpSpec("gather", lambda m, x, **kw: m.gather(x, kw["dim"], _const(m, kw["index"])), (
        case((2, 3), dim=1, index=_IDX_DIM1),
        case((3, 4), dim=0, index=_IDX_DIM0),
        case((2, 4), dim=1, index=np.array([[3, 3], [0, 1]])),  # index smaller than input
    )),
    OpSpec("gather[method]", lambda m, x: x.gather(-1, _const(m, _IDX_DIM1)), (case((2, 3)),)),
    OpSpec("scatter", lambda m, x, src, **kw: m.scatter(x, kw["dim"], _const(m, kw["index"]),
                                                        src), (
        case((3, 4), (2, 4), dim=0, index=_PERM_DIM0),
        case((2, 4), (2, 2), dim=1, index=np.array([[3, 0], [1, 2]])),
    )),
    OpSpec("scatter[value]", lambda m, x: m.scatter(x, 0, _const(m, _PERM_DIM0), value=0.5),
           (case((3, 4)),)),
    OpSpec("scatter_add", lambda m, x, src, **kw: m.scatter_add(
        x, kw["dim"], _const(m, kw["index"]), src), (
        case((3, 4), (2, 4), dim=0, index=_IDX_DIM0),
        case((2, 3), (2, 3), dim=1, index=_IDX_DIM1),
        # src larger than index: only src[:, :2] is read, the rest gets a zero gradient
        case((2, 4), (2, 3), dim=1, index=np.array([[0, 0], [3, 3]]), torch_no_grad=(
            "PyTorch 2.13's ScatterAddBackward0 returns src's gradient in index's shape and "
            "its engine rejects it ('invalid gradient at index 1')")),
    )),
    OpSpec("index_select", lambda m, x, **kw: m.index_select(x, kw["dim"],
                                                             _const(m, kw["index"])), (
        case((3, 4), dim=1, index=[2, 0, 2]),
        case((3, 4), dim=0, index=[1, 1]),
        case((4,), dim=0, index=[3, 0, 3, 3]),
        case((3, 4), dim=0, index=np.zeros(0, dtype=np.int64)),
    )),
    OpSpec("masked_fill", lambda m, x, **kw: m.masked_fill(x, _const(m, kw["mask"]), 0.5), (
        case((3, 4), mask=_MASK), case((3, 4), mask=_MASK[0]), case((), mask=True),
    )),
    OpSpec("masked_fill[method]", lambda m, x: x.masked_fill(_const(m, _MASK), -1.0),
           (case((3, 4)),)),
    # a 0-d tensor value gets the gradient of every position it fills
    OpSpec("masked_fill[tensor value]", lambda m, x, v: m.masked_fill(x, _const(m, _MASK), v),
           (case((3, 4), ()),)),
    OpSpec("take_along_dim", lambda m, x, **kw: m.take_along_dim(x, _const(m, kw["index"]),
                                                                 dim=kw.get("dim")), (
        case((2, 3), index=_IDX_DIM1, dim=1),
        case((3, 4), index=_IDX_DIM0, dim=0),
        case((2, 3), index=np.array([[2], [0]]), dim=1),
        case((2, 3), index=np.array([[0, 1, 2]]), dim=1),  # broadcast over rows
        case((2, 3), index=np.array([5, 0, 5])),  # dim=None: the flattened input
    )),
    _no_grad("one_hot", lambda m, **kw: m.nn.functional.one_hot(_const(m, kw["index"]),
                                                                **kw.get("extra", {})), (
        at(label="classes-4", index=np.array([0, 3, 1, 3])),
        at(label="inferred", index=np.array([[0, 2], [1, 1]])),
        at(label="0d", index=np.array(2), extra={"num_classes": 3}),
    ), why=NO_GRAD_INT),
]

# ------------------------------------------------------------------ linear algebra

LINALG = [
    OpSpec("matmul", lambda m, a, b: m.matmul(a, b), (
        case((3,), (3,)),  # vector . vector
        case((2, 3), (3,)),  # matrix . vector
        case((3,), (3, 2)),  # vector . matrix
        case((2, 3), (3, 4)),
        case((2, 2, 3), (2, 3, 2)),  # batched
        case((2, 1, 2, 3), (3, 3, 2)),  # broadcast batch
        case((2, 2, 3), (3, 2)),  # batch with a plain matrix
        case((3,), (2, 3, 2)),  # vector with a batch
        case((2, 2, 3), (3,)),
        case((0, 3), (3, 2)),
        case((2, 0), (0, 3)),
    )),
    OpSpec("matmul[@]", lambda m, a, b: a @ b, (case((2, 3), (3, 2)),)),
    OpSpec("mm", lambda m, a, b: m.mm(a, b), (case((2, 3), (3, 4)), case((1, 1), (1, 3)))),
    OpSpec("bmm", lambda m, a, b: m.bmm(a, b), (case((2, 2, 3), (2, 3, 4)),)),
    OpSpec("dot", lambda m, a, b: m.dot(a, b), (case((4,), (4,)), case((0,), (0,)))),
    OpSpec("outer", lambda m, a, b: m.outer(a, b), (case((3,), (4,)), case((1,), (2,)))),
    OpSpec("einsum", lambda m, *xs, **kw: m.einsum(kw["eq"], *xs), (
        case((2, 3), (3, 4), eq="ij,jk->ik"),
        case((2, 2, 3), (2, 3, 2), eq="bij,bjk->bik"),
        case((2, 3), eq="ij->ji"),
        case((2, 3), eq="ij->"),
        case((2, 3), eq="ij->j"),
        case((3,), (4,), eq="i,j->ij"),
        case((2, 3), (2, 3), eq="ij,ij->"),
        case((2, 3), (3, 4), eq="ij,jk"),  # implicit output
        case((3,), (3,), eq="i,i"),  # implicit output: 0-d
        case((2, 2, 3), (3, 2), eq="...ij,jk->...ik"),
        case((2, 3), (3,), eq="...j,j"),  # ellipsis with implicit output
        case((2, 3), (2, 3, 4), eq="bi,bij->bj"),
        case((2, 3), (3, 4), (4,), eq="ij,jk,k->i"),
        case((2, 3), (4,), eq="ij,k->ijk"),
        # size-1 dims broadcast, as in PyTorch: kept, contracted, and under an ellipsis
        case((3, 1), (1, 4), eq="ij,ij->ij"),
        case((2, 1), (3, 4), eq="ij,jk->ik"),
        case((2, 3), (1,), eq="ij,j->i"),
        case((2, 1, 2, 3), (3, 3, 2), eq="...ij,...jk->...ik"),
        case((2, 2, 3), (2, 4, 3), eq="bij,bkj->bik"),
        case((2, 3), (3, 4), eq="ij, jk -> ik", label="spaces"),
    )),
    OpSpec("linear", lambda m, x, w, *b: m.nn.functional.linear(x, w, *b), (
        case((4, 3), (2, 3), (2,)),
        case((4, 3), (2, 3)),  # no bias
        case((2, 4, 3), (2, 3), (2,)),  # batched input
        case((3,), (2, 3), (2,)),
        case((0, 3), (2, 3), (2,)),
    )),
    OpSpec("linear[top-level]", lambda m, x, w, b: m.linear(x, w, b) if m is chainrule else
           m.nn.functional.linear(x, w, b), (case((4, 3), (2, 3), (2,)),)),
]

# ops on views and non-contiguous inputs: the rules see strided saved arrays and gradients
VIEWS = [
    OpSpec("views[softmax of x.T]", lambda m, x: m.softmax(x.T, dim=0), (case((2, 3)),)),
    OpSpec("views[strided slices]", lambda m, x: x[:, ::2] * x[:, 1::2], (case((2, 4)),)),
    OpSpec("views[x.T @ x]", lambda m, x: x.T @ x, (case((3, 2)),)),
    OpSpec("views[cumsum of flip]", lambda m, x: m.cumsum(m.flip(x, (1,)).T, dim=0),
           (case((2, 3)),)),
    OpSpec("views[expand then reduce]", lambda m, x: x.expand(3, 4).prod(dim=0), (case((1, 4)),)),
    OpSpec("views[getitem of permute]", lambda m, x: x.permute(2, 0, 1)[1, :, [0, 0]],
           (case((2, 3, 2)),)),
]



# fused nn primitives (ops/nn_kernels.py): PyTorch's side is the composition they fuse
def _lstm_cell(m: Any, x_gates: Any, h_gates: Any, c: Any) -> Any:
    """[h', c'] of one LSTM step from its two gate projections and the cell state."""
    if m is chainrule:
        return nn_kernels.lstm_cell(x_gates, h_gates, c)
    i, f, g, o = (x_gates + h_gates).chunk(4, -1)
    c_new = i.sigmoid() * g.tanh() + f.sigmoid() * c
    return m.cat([o.sigmoid() * c_new.tanh(), c_new], -1)


def _lstm_layer(m: Any, x: Any, h0: Any, c0: Any, w_ih: Any, w_hh: Any, bias: Any,
                reverse: bool) -> Any:
    """[h_t, c_t] of every step of an LSTM layer from its input; PyTorch's side projects the
    input, then steps through time."""
    if m is chainrule:
        return nn_kernels.lstm_layer(x, h0, c0, w_ih, w_hh, bias, reverse=reverse)
    projected = x @ w_ih.T + bias
    h, c = h0, c0
    states = [None] * x.shape[0]
    for t in (range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])):
        state = _lstm_cell(m, projected[t], h @ w_hh.T, c)
        h, c = state.chunk(2, -1)
        states[t] = state
    return m.stack(states)


def _max_pool(m: Any, x: Any, kernel_size: tuple) -> Any:
    """Max pooling over windows that tile the image (stride = kernel)."""
    if m is chainrule:
        return nn_kernels.max_pool(x, kernel_size=kernel_size, size=tuple(x.shape[2:]))
    return m.nn.functional.max_pool2d(x, kernel_size)


def _layer_norm(m: Any, x: Any, weight: Any, bias: Any) -> Any:
    """LayerNorm over the dims of ``weight`` (the trailing ones), eps 1e-5."""
    if m is chainrule:
        axes = tuple(range(x.ndim - weight.ndim, x.ndim))
        return nn_kernels.layer_norm(x, weight, bias, axes=axes, eps=1e-5)
    return m.nn.functional.layer_norm(x, tuple(weight.shape), weight, bias, 1e-5)


def _conv2d(m: Any, x: Any, weight: Any, *bias: Any, **kwargs: Any) -> Any:
    """F.conv2d, one primitive in chainrule (ops/nn_kernels.py)."""
    return m.nn.functional.conv2d(x, weight, *bias, **kwargs)


NN_KERNELS = [
    OpSpec("conv2d", _conv2d, (
        # stride 1: NumPy's one-product path, dx by shifted slices (dilation, padding)
        case((2, 3, 5, 6), (4, 3, 3, 2), (4,), padding=(1, 2), dilation=(2, 1)),
        case((1, 2, 4, 5), (3, 2, 2, 3), label="no-bias"),
        case((2, 2, 6, 5), (3, 2, 3, 3), (3,), stride=(2, 1), padding=1, label="strided"),
        case((1, 4, 4, 4), (4, 2, 2, 2), (4,), groups=2, label="groups"),
    )),
    OpSpec("layer_norm", _layer_norm, (
        case((3, 4), (4,), (4,)),
        case((2, 3, 4), (3, 4), (3, 4), label="two-normalized-dims"),
        case((2, 2, 5), (5,), (5,)),
    )),
    OpSpec("max_pool", _max_pool, (
        case((2, 3, 4, 6), kernel_size=(2, 2)),
        case((1, 2, 5, 4), kernel_size=(2, 2), label="rows-left-over"),
        case((2, 1, 6, 6), kernel_size=(3, 2)),
    ), domain=distinct),
    OpSpec("lstm_layer", _lstm_layer, (
        case((3, 2, 3), (2, 2), (2, 2), (8, 3), (8, 2), (8,), reverse=False),
        case((3, 2, 3), (2, 2), (2, 2), (8, 3), (8, 2), (8,), reverse=True),
        case((1, 1, 2), (1, 1), (1, 1), (4, 2), (4, 1), (4,), reverse=False),
    ), domain=uniform(-1.5, 1.5)),
    OpSpec("lstm_cell", _lstm_cell, (
        case((3, 8), (3, 8), (3, 2)),
        case((1, 4), (1, 4), (1, 1)),
        case((2, 3, 8), (2, 3, 8), (2, 3, 2), label="batch-of-batches"),
    ), domain=uniform(-3.0, 3.0)),
]

SPECS: list[OpSpec] = (ELEMENTWISE + COMPARISONS + REDUCTIONS + SHAPE + INDEXING + LINALG
                       + VIEWS + NN_KERNELS)

# every op the table must cover (the acceptance list); test_op_table checks each is present
REQUIRED = (
    "add sub mul div neg pow abs sign reciprocal sqrt rsqrt exp log log1p expm1 log2 exp2 sin "
    "cos tan tanh sigmoid relu maximum minimum clamp clip where floor ceil round erf eq ne lt "
    "le gt ge logical_and logical_or logical_xor logical_not sum mean prod max min amax amin "
    "var std norm logsumexp softmax log_softmax cumsum argmax argmin reshape view flatten "
    "squeeze unsqueeze permute transpose t expand broadcast_to repeat cat stack split chunk unbind flip "
    "roll pad tril triu getitem gather scatter scatter_add index_select masked_fill "
    "take_along_dim one_hot matmul mm bmm dot outer einsum linear"
).split()
