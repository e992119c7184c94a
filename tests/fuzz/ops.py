"""The fuzzer's vocabulary: each entry draws its arguments for a value and calls the op.

An ``Op`` has ``call(m, xs, kw)``, run with ``m`` = chainrule or torch on tensors ``xs``
(value ids resolved by the interpreter) and JSON-able keyword data ``kw`` (NumPy arrays for
constant indices, masks and targets, turned into tensors of ``m`` at call time), and
``make(b, x)``, which, given the builder ``b`` (tests/fuzz/program.py) and the id of a
value ``x``, picks the other inputs (reusing values of the right shape or making leaves)
and the keywords, returning ``(ids, kw)`` or None when the op does not apply to ``x``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Op:
    name: str
    call: Callable[[Any, list, dict], Any]
    make: Callable[[Any, int], tuple[list[int], dict] | None]
    weight: float = 1.0
    inplace: bool = False


OPS: dict[str, Op] = {}


def register(name: str, call: Callable, make: Callable, weight: float = 1.0,
             inplace: bool = False) -> None:
    OPS[name] = Op(name, call, make, weight, inplace)


def const(m: Any, value: Any) -> Any:
    """A constant (index, mask, target) as a tensor of module ``m``; other values as they are."""
    if isinstance(value, np.ndarray):
        return m.tensor(value.copy())
    if isinstance(value, tuple):
        return tuple(const(m, v) for v in value)
    return value


# ------------------------------------------------------------------ drawing helpers
def pick_dim(b: Any, ndim: int) -> int:
    """A dim of a tensor with ``ndim`` dims, negative half the time (0-d: 0 or -1)."""
    if ndim == 0:
        return int(b.rng.choice([0, -1]))
    d = int(b.rng.integers(0, ndim))
    return d - ndim if b.rng.random() < 0.5 else d


def pick_dims(b: Any, ndim: int) -> Any:
    """None, one dim, or a tuple of distinct dims (some negative)."""
    r = b.rng.random()
    if r < 0.25 or ndim == 0:
        return None if r < 0.2 or ndim == 0 else pick_dim(b, ndim)
    if r < 0.55:
        return pick_dim(b, ndim)
    count = int(b.rng.integers(1, ndim + 1))
    dims = b.rng.permutation(ndim)[:count]
    return tuple(int(d) - ndim if b.rng.random() < 0.5 else int(d) for d in dims)


def scalar(b: Any, low: float = -2.0, high: float = 2.0) -> float:
    return round(float(b.rng.uniform(low, high)), 3)


def shape_of(b: Any, x: int) -> tuple:
    return tuple(b.values[x].shape)


# ------------------------------------------------------------------ elementwise, one input
def _unary(name: str, fn: Callable, weight: float = 1.0, domain: str = "real") -> None:
    def make(b: Any, x: int) -> tuple[list[int], dict]:
        return [b.domain(x, domain)], {}

    register(name, lambda m, xs, kw: fn(m, xs[0]), make, weight)


# constants are exact in float32: PyTorch turns some (celu's alpha) into float32 in its
# float64 kernels, and the comparison is about derivative rules, not about that rounding.
# Not here: hardsigmoid and hardswish, whose float64 backward in PyTorch multiplies by 1/6
# rounded to float32 (relative error 3e-8) and has no double backward.
for _name, _fn in {
    "neg": lambda m, x: -x,
    "sin": lambda m, x: m.sin(x),
    "cos": lambda m, x: x.cos(),
    "tanh": lambda m, x: m.tanh(x),
    "sigmoid": lambda m, x: x.sigmoid(),
    "relu": lambda m, x: m.relu(x),
    "abs": lambda m, x: x.abs(),
    "erf": lambda m, x: m.erf(x),
    "square": lambda m, x: x.square(),
    "x*x": lambda m, x: x * x,
    "x+x": lambda m, x: x + x,
    "x-x": lambda m, x: x - x,  # exact zeros: relu/abs/max at their kinks downstream
    "x**2": lambda m, x: x ** 2,
    "x**3": lambda m, x: m.pow(x, 3),
    "x**0": lambda m, x: x ** 0,
    "2**x": lambda m, x: 2.0 ** x,
    "floor": lambda m, x: m.floor(x),
    "round": lambda m, x: x.round(),
    "sign": lambda m, x: m.sign(x),
    "softplus": lambda m, x: m.nn.functional.softplus(x),
    "softplus[beta]": lambda m, x: m.nn.functional.softplus(x, beta=2.0, threshold=1.5),
    "gelu": lambda m, x: m.nn.functional.gelu(x),
    "gelu[tanh]": lambda m, x: m.nn.functional.gelu(x, approximate="tanh"),
    "silu": lambda m, x: m.nn.functional.silu(x),
    "elu": lambda m, x: m.nn.functional.elu(x, alpha=0.75),
    "celu": lambda m, x: m.nn.functional.celu(x, alpha=1.25),
    "selu": lambda m, x: m.nn.functional.selu(x),
    "leaky_relu": lambda m, x: m.nn.functional.leaky_relu(x, 0.1),
    "logsigmoid": lambda m, x: m.nn.functional.logsigmoid(x),
    "softsign": lambda m, x: m.nn.functional.softsign(x),
    "hardtanh": lambda m, x: m.nn.functional.hardtanh(x, -0.75, 0.875),
    "relu6": lambda m, x: m.nn.functional.relu6(x * 4),
    "mish": lambda m, x: m.nn.functional.mish(x),
    "tanhshrink": lambda m, x: m.nn.functional.tanhshrink(x),
    "softshrink": lambda m, x: m.nn.functional.softshrink(x, 0.375),
    "hardshrink": lambda m, x: m.nn.functional.hardshrink(x, 0.375),
    "detach": lambda m, x: x.detach(),
    "clone": lambda m, x: x.clone(),
}.items():
    _unary(_name, _fn, weight=0.5 if _name in ("detach", "floor", "round", "sign", "x**0") else 1.0)

for _name, _fn in {
    "log": lambda m, x: m.log(x),
    "sqrt": lambda m, x: x.sqrt(),
    "rsqrt": lambda m, x: m.rsqrt(x),
    "reciprocal": lambda m, x: x.reciprocal(),
    "log1p": lambda m, x: m.log1p(x),
    "log2": lambda m, x: m.log2(x),
    "x**0.5": lambda m, x: x ** 0.5,
    "x**-1.5": lambda m, x: m.pow(x, -1.5),
    "1.5/x": lambda m, x: 1.5 / x,
}.items():
    _unary(_name, _fn, domain="positive")

for _name, _fn in {
    "exp": lambda m, x: m.exp(x),
    "expm1": lambda m, x: m.expm1(x),
    "exp2": lambda m, x: m.exp2(x),
    "tan": lambda m, x: m.tan(x * 0.4),
}.items():
    _unary(_name, _fn, domain="bounded")


def _scalar_op(name: str, fn: Callable, nonzero: bool = False) -> None:
    def make(b: Any, x: int) -> tuple[list[int], dict]:
        c = scalar(b)
        if nonzero and abs(c) < 0.3:
            c = 0.5
        return [x], {"c": c}

    register(name, lambda m, xs, kw: fn(m, xs[0], kw["c"]), make)


_scalar_op("x+c", lambda m, x, c: x + c)
_scalar_op("c-x", lambda m, x, c: c - x)
_scalar_op("x*c", lambda m, x, c: x * c)
_scalar_op("x/c", lambda m, x, c: x / c, nonzero=True)


def _make_alpha(b: Any, x: int) -> tuple[list[int], dict]:
    return [x, b.partner(shape_of(b, x), "real")], {"c": scalar(b)}


register("add[alpha]", lambda m, xs, kw: m.add(xs[0], xs[1], alpha=kw["c"]), _make_alpha)


def _make_clamp(b: Any, x: int) -> tuple[list[int], dict]:
    lo, hi = sorted((scalar(b, -1.5, 1.0), scalar(b, -1.0, 1.5)))
    kind = b.rng.integers(0, 3)
    return [x], {"min": lo if kind != 2 else None, "max": hi if kind != 1 else None}


register("clamp", lambda m, xs, kw: m.clamp(xs[0], min=kw["min"], max=kw["max"]), _make_clamp)


# ------------------------------------------------------------------ elementwise, two inputs
def _binary(name: str, fn: Callable, partner: str = "real", weight: float = 1.0,
            left: str = "real") -> None:
    def make(b: Any, x: int) -> tuple[list[int], dict]:
        y = b.partner(shape_of(b, x), partner)
        return [b.domain(x, left), y], {}

    register(name, lambda m, xs, kw: fn(m, xs[0], xs[1]), make, weight)


_binary("add", lambda m, x, y: x + y, weight=2.0)
_binary("sub", lambda m, x, y: m.sub(x, y), weight=1.5)
_binary("mul", lambda m, x, y: x * y, weight=2.0)
_binary("div", lambda m, x, y: x / y, partner="nonzero", weight=1.5)
_binary("maximum", lambda m, x, y: m.maximum(x, y))
_binary("minimum", lambda m, x, y: m.minimum(x, y))
_binary("pow", lambda m, x, y: m.pow(x, y), partner="bounded", left="positive")
_binary("where", lambda m, x, y: m.where(x > y, x, y))
_binary("where[cond other]", lambda m, x, y: m.where(y > 0.3, x * 2, y))
_binary("lerp", lambda m, x, y: m.lerp(x, y, 0.3))


def _make_addc(b: Any, x: int) -> tuple[list[int], dict]:
    shape = shape_of(b, x)
    return [x, b.partner(shape, "real"), b.partner(shape, "nonzero")], {"v": scalar(b)}


register("addcmul", lambda m, xs, kw: m.addcmul(xs[0], xs[1], xs[2], value=kw["v"]), _make_addc)
register("addcdiv", lambda m, xs, kw: m.addcdiv(xs[0], xs[1], xs[2], value=kw["v"]), _make_addc)


# ------------------------------------------------------------------ reductions
def _reduction(name: str, fn: Callable, weight: float = 1.0, domain: str = "real") -> None:
    def make(b: Any, x: int) -> tuple[list[int], dict]:
        dims = pick_dims(b, len(shape_of(b, x)))
        return [b.domain(x, domain)], {"dim": dims, "keepdim": bool(b.rng.random() < 0.4)}

    register(name, lambda m, xs, kw: fn(m, xs[0], kw["dim"], kw["keepdim"]), make, weight)


def _with_dim(method: str) -> Callable:
    def fn(m: Any, x: Any, dim: Any, keepdim: bool) -> Any:
        if dim is None:
            return getattr(x, method)()
        return getattr(x, method)(dim, keepdim=keepdim)

    return fn


_reduction("sum", _with_dim("sum"), weight=2.0)
_reduction("mean", _with_dim("mean"), weight=1.5)
_reduction("amax", lambda m, x, d, k: m.amax(x, () if d is None else d, keepdim=k))
_reduction("amin", lambda m, x, d, k: x.amin(() if d is None else d, keepdim=k))
_reduction("var", lambda m, x, d, k: m.var(x, d, keepdim=k))
_reduction("var[correction=0]", lambda m, x, d, k: x.var(d, keepdim=k, correction=0))
_reduction("std", lambda m, x, d, k: x.std(d, keepdim=k), weight=0.7)
_reduction("logsumexp", lambda m, x, d, k: m.logsumexp(x, tuple(range(x.dim())) if d is None
                                                       else d, keepdim=k))
_reduction("norm", lambda m, x, d, k: m.norm(x, dim=d, keepdim=k))
_reduction("norm[p=1]", lambda m, x, d, k: x.norm(p=1, dim=d, keepdim=k), weight=0.5)
_reduction("norm[p=3]", lambda m, x, d, k: m.norm(x, p=3, dim=d, keepdim=k), weight=0.5)
_reduction("norm[inf]", lambda m, x, d, k: m.norm(x, p=float("inf"), dim=d, keepdim=k), weight=0.5)


def _one_dim(name: str, fn: Callable, weight: float = 1.0) -> None:
    def make(b: Any, x: int) -> tuple[list[int], dict]:
        return [x], {"dim": pick_dim(b, len(shape_of(b, x))), "keepdim": bool(b.rng.random() < 0.4)}

    register(name, lambda m, xs, kw: fn(m, xs[0], kw["dim"], kw["keepdim"]), make, weight)


_one_dim("prod", lambda m, x, d, k: m.prod(x, d, keepdim=k), weight=0.7)
_one_dim("max[dim]", lambda m, x, d, k: m.max(x, d, keepdim=k)[0])
_one_dim("min[dim]", lambda m, x, d, k: x.min(d, keepdim=k).values)
_one_dim("softmax", lambda m, x, d, k: m.softmax(x, d), weight=1.5)
_one_dim("log_softmax", lambda m, x, d, k: m.log_softmax(x, dim=d), weight=1.5)
_one_dim("F.softmax", lambda m, x, d, k: m.nn.functional.softmax(x, dim=d))
_one_dim("softmin", lambda m, x, d, k: m.nn.functional.softmin(x, dim=d), weight=0.5)
_one_dim("cumsum", lambda m, x, d, k: m.cumsum(x, d))


def well_scaled(t: Any, dim: Any) -> bool:
    """Every slice along ``dim`` has a norm above 1e-6: below, the norm is clamped at eps
    (1e-8, 1e-12) and the result and its gradient magnify rounding noise (of the values, or
    of a gradient that should be 0) by 1/eps, past any tolerance. Norms at 0 are checked in
    tests/reliability/test_numerics.py."""
    if t.numel() == 0:
        return True
    return bool((t.detach().norm(dim=dim if t.dim() else None) > 1e-6).all())


def _make_normalize(b: Any, x: int) -> tuple[list[int], dict] | None:
    d = pick_dim(b, len(shape_of(b, x)))
    return ([x], {"dim": d, "keepdim": False}) if well_scaled(b.values[x], d) else None


register("normalize", lambda m, xs, kw: m.nn.functional.normalize(xs[0], dim=kw["dim"]),
         _make_normalize, 0.7)
register("max[all]", lambda m, xs, kw: m.max(xs[0]), lambda b, x: ([x], {}), 0.5)
register("min[all]", lambda m, xs, kw: xs[0].min(), lambda b, x: ([x], {}), 0.5)
register("prod[all]", lambda m, xs, kw: xs[0].prod(), lambda b, x: ([x], {}), 0.3)


# ------------------------------------------------------------------ shape and layout
def _make_reshape(b: Any, x: int) -> tuple[list[int], dict]:
    shape = shape_of(b, x)
    n = int(np.prod(shape, dtype=np.int64))
    sides: list[int] = []
    rest = n
    for _ in range(int(b.rng.integers(0, 4))):
        divisors = [d for d in range(1, 5) if rest % d == 0] if rest else [0, 1, 2]
        d = int(b.rng.choice(divisors))
        sides.append(d)
        rest = rest // d if d else rest
    if n == 0 and 0 not in sides:
        sides.append(0)
    elif n and int(np.prod(sides, dtype=np.int64)) != n:
        sides.append(rest)
    if sides and n and b.rng.random() < 0.4:
        sides[int(b.rng.integers(0, len(sides)))] = -1
    return [x], {"shape": tuple(sides)}


register("reshape", lambda m, xs, kw: xs[0].reshape(kw["shape"]), _make_reshape, 1.5)
register("view", lambda m, xs, kw: xs[0].view(*kw["shape"]), _make_reshape)
register("flatten", lambda m, xs, kw: m.flatten(xs[0]), lambda b, x: ([x], {}), 0.5)


def _make_permute(b: Any, x: int) -> tuple[list[int], dict]:
    return [x], {"dims": tuple(int(d) for d in b.rng.permutation(len(shape_of(b, x))))}


register("permute", lambda m, xs, kw: xs[0].permute(*kw["dims"]), _make_permute)


def _make_pair_dims(b: Any, x: int) -> tuple[list[int], dict]:
    nd = len(shape_of(b, x))
    return [x], {"a": pick_dim(b, nd), "b": pick_dim(b, nd)}


register("transpose", lambda m, xs, kw: m.transpose(xs[0], kw["a"], kw["b"]), _make_pair_dims)
register("movedim", lambda m, xs, kw: m.movedim(xs[0], kw["a"], kw["b"]), _make_pair_dims, 0.5)
register("mT", lambda m, xs, kw: xs[0].mT, lambda b, x: ([x], {}) if b.values[x].dim() >= 2
         else None, 0.5)
register("t", lambda m, xs, kw: xs[0].t(), lambda b, x: ([x], {}) if b.values[x].dim() <= 2
         else None, 0.5)


def _make_unsqueeze(b: Any, x: int) -> tuple[list[int], dict]:
    nd = len(shape_of(b, x)) + 1
    return [x], {"dim": pick_dim(b, nd)}


register("unsqueeze", lambda m, xs, kw: xs[0].unsqueeze(kw["dim"]), _make_unsqueeze)


def _make_squeeze(b: Any, x: int) -> tuple[list[int], dict]:
    shape = shape_of(b, x)
    ones = [i for i, n in enumerate(shape) if n == 1]
    if not ones or b.rng.random() < 0.3:
        return [x], {"dim": None}
    return [x], {"dim": int(b.rng.choice(ones))}


register("squeeze", lambda m, xs, kw: m.squeeze(xs[0]) if kw["dim"] is None
         else m.squeeze(xs[0], kw["dim"]), _make_squeeze)


def _make_expand(b: Any, x: int) -> tuple[list[int], dict]:
    shape = shape_of(b, x)
    sizes = [int(b.rng.integers(2, 4)) if n == 1 and b.rng.random() < 0.7 else
             (-1 if b.rng.random() < 0.3 else n) for n in shape]
    lead = [int(b.rng.integers(1, 4)) for _ in range(int(b.rng.integers(0, 2)))]
    return [x], {"sizes": tuple(lead + sizes)}


register("expand", lambda m, xs, kw: xs[0].expand(*kw["sizes"]), _make_expand)


def _make_dims_tuple(b: Any, x: int) -> tuple[list[int], dict] | None:
    nd = len(shape_of(b, x))
    if nd == 0:
        return None
    count = int(b.rng.integers(1, nd + 1))
    return [x], {"dims": tuple(int(d) for d in b.rng.permutation(nd)[:count])}


register("flip", lambda m, xs, kw: m.flip(xs[0], kw["dims"]), _make_dims_tuple)


def _make_roll(b: Any, x: int) -> tuple[list[int], dict]:
    nd = len(shape_of(b, x))
    if nd == 0 or b.rng.random() < 0.3:
        return [x], {"shifts": int(b.rng.integers(-3, 4)), "dims": None}
    return [x], {"shifts": int(b.rng.integers(-3, 4)), "dims": pick_dim(b, nd)}


register("roll", lambda m, xs, kw: m.roll(xs[0], kw["shifts"], kw["dims"]), _make_roll)


def _make_repeat(b: Any, x: int) -> tuple[list[int], dict]:
    nd = len(shape_of(b, x))
    return [x], {"reps": tuple(int(b.rng.integers(1, 3)) for _ in range(nd + int(b.rng.integers(0, 2))))}


register("repeat", lambda m, xs, kw: xs[0].repeat(*kw["reps"]) if kw["reps"] else xs[0].clone(),
         _make_repeat, 0.7)
register("tile", lambda m, xs, kw: m.tile(xs[0], kw["reps"]), _make_repeat, 0.3)


def _make_narrow(b: Any, x: int) -> tuple[list[int], dict] | None:
    shape = shape_of(b, x)
    if not shape:
        return None
    d = pick_dim(b, len(shape))
    n = shape[d]
    start = int(b.rng.integers(0, n + 1))
    return [x], {"dim": d, "start": start, "length": int(b.rng.integers(0, n - start + 1))}


register("narrow", lambda m, xs, kw: xs[0].narrow(kw["dim"], kw["start"], kw["length"]),
         _make_narrow, 0.7)


def _make_select(b: Any, x: int) -> tuple[list[int], dict] | None:
    shape = shape_of(b, x)
    if not shape:
        return None
    d = pick_dim(b, len(shape))
    if shape[d] == 0:
        return None
    return [x], {"dim": d, "index": int(b.rng.integers(-shape[d], shape[d]))}


register("select", lambda m, xs, kw: m.select(xs[0], kw["dim"], kw["index"]), _make_select, 0.7)
register("unbind", lambda m, xs, kw: m.unbind(xs[0], kw["dim"])[kw["index"]], _make_select, 0.5)


def _make_split(b: Any, x: int) -> tuple[list[int], dict] | None:
    shape = shape_of(b, x)
    if not shape:
        return None
    d = pick_dim(b, len(shape))
    size = int(b.rng.integers(1, max(shape[d], 1) + 1))
    pieces = -(-shape[d] // size) if shape[d] else 1
    return [x], {"dim": d, "size": size, "piece": int(b.rng.integers(0, pieces))}


register("split", lambda m, xs, kw: m.split(xs[0], kw["size"], kw["dim"])[kw["piece"]],
         _make_split)
def _chunk(m: Any, xs: list, kw: dict) -> Any:
    pieces = xs[0].chunk(kw["size"], kw["dim"])  # chunk may give fewer pieces than asked for
    return pieces[kw["piece"] % len(pieces)]


register("chunk", _chunk, _make_split, 0.5)


def _make_cat(b: Any, x: int) -> tuple[list[int], dict] | None:
    shape = shape_of(b, x)
    if not shape:
        return None
    d = pick_dim(b, len(shape))
    others = []
    for _ in range(int(b.rng.integers(1, 3))):
        other = list(shape)
        other[d] = int(b.rng.integers(0, 3))
        others.append(b.same_shape(tuple(other)))
    return [x, *others], {"dim": d}


register("cat", lambda m, xs, kw: m.cat(list(xs), dim=kw["dim"]), _make_cat, 1.5)


def _make_stack(b: Any, x: int) -> tuple[list[int], dict]:
    shape = shape_of(b, x)
    others = [b.same_shape(shape) for _ in range(int(b.rng.integers(1, 3)))]
    return [x, *others], {"dim": pick_dim(b, len(shape) + 1)}


register("stack", lambda m, xs, kw: m.stack(list(xs), dim=kw["dim"]), _make_stack)


def _make_pad(b: Any, x: int) -> tuple[list[int], dict] | None:
    shape = shape_of(b, x)
    if not shape:
        return None
    count = int(b.rng.integers(1, min(len(shape), 3) + 1))
    pad = []
    for n in shape[::-1][:count]:
        lo, hi = int(b.rng.integers(-1, 3)), int(b.rng.integers(-1, 3))
        if lo + hi + n < 0 or (lo < 0 and -lo > n) or (hi < 0 and -hi > n):
            lo, hi = 1, 0
        pad += [lo, hi]
    return [x], {"pad": tuple(pad), "value": scalar(b)}


register("pad", lambda m, xs, kw: m.nn.functional.pad(xs[0], kw["pad"], value=kw["value"]),
         _make_pad, 0.7)


def _make_diag(b: Any, x: int) -> tuple[list[int], dict] | None:
    if b.values[x].dim() < 2:
        return None
    return [x], {"k": int(b.rng.integers(-2, 3))}


register("tril", lambda m, xs, kw: m.tril(xs[0], kw["k"]), _make_diag, 0.5)
register("triu", lambda m, xs, kw: xs[0].triu(kw["k"]), _make_diag, 0.5)


# ------------------------------------------------------------------ indexing
def basic_index(b: Any, shape: tuple) -> tuple:
    """A random basic index: ints, slices with positive steps, None and one Ellipsis."""
    items: list = []
    dims = list(shape)
    ellipsis = b.rng.random() < 0.2
    k = 0
    while k < len(dims) and b.rng.random() < 0.75:
        n = dims[k]
        r = b.rng.random()
        if r < 0.3 and n > 0:
            items.append(int(b.rng.integers(-n, n)))
        elif r < 0.4:
            items.append(None)
            continue
        else:
            start = None if b.rng.random() < 0.4 else int(b.rng.integers(-n - 1, n + 2))
            stop = None if b.rng.random() < 0.4 else int(b.rng.integers(-n - 1, n + 2))
            step = None if b.rng.random() < 0.5 else int(b.rng.integers(1, 4))
            items.append(slice(start, stop, step))
        k += 1
    if ellipsis:
        items.insert(int(b.rng.integers(0, len(items) + 1)), Ellipsis)
    if len(items) == 1 and b.rng.random() < 0.5:
        return items[0]
    return tuple(items)


def advanced_index(b: Any, shape: tuple, unique: bool = False) -> Any:
    """Integer arrays (repeats and negatives unless ``unique``) or a boolean mask, mixed with
    slices."""
    if not shape:
        return np.array(True) if b.rng.random() < 0.5 else None
    d = int(b.rng.integers(0, len(shape)))
    n = shape[d]
    lead: list = [slice(None)] * d
    if b.rng.random() < 0.3:
        span = int(b.rng.integers(1, len(shape) - d + 1))
        mask = b.rng.random(shape[d:d + span]) < 0.5
        return tuple(lead + [mask])
    if n == 0:
        return None
    if unique:
        count = int(b.rng.integers(0, n + 1))
        idx = b.rng.permutation(n)[:count]
    else:
        idx = b.rng.integers(0, n, int(b.rng.integers(0, 5)))
    idx = np.where(b.rng.random(idx.shape) < 0.3, idx - n, idx).astype(np.int64)
    if b.rng.random() < 0.2 and not unique and idx.size == 4:
        idx = idx.reshape(2, 2)
    items = lead + [idx]
    if b.rng.random() < 0.3 and d + 1 < len(shape) and shape[d + 1] > 0:
        # a second array, broadcast against the first
        items.append(np.int64(b.rng.integers(0, shape[d + 1])) if unique
                     else b.rng.integers(0, shape[d + 1], idx.shape).astype(np.int64))
    return tuple(items)


def _make_getitem(b: Any, x: int) -> tuple[list[int], dict] | None:
    return [x], {"index": basic_index(b, shape_of(b, x))}


def _make_getitem_adv(b: Any, x: int) -> tuple[list[int], dict] | None:
    index = advanced_index(b, shape_of(b, x))
    return None if index is None else ([x], {"index": index})


register("getitem", lambda m, xs, kw: xs[0][const(m, kw["index"])], _make_getitem, 3.0)
register("getitem[advanced]", lambda m, xs, kw: xs[0][const(m, kw["index"])], _make_getitem_adv,
         1.5)
register("getitem[list]", lambda m, xs, kw: xs[0][kw["index"]],
         lambda b, x: ([x], {"index": [int(i) for i in b.rng.integers(0, b.values[x].shape[0], 3)]})
         if b.values[x].dim() and b.values[x].shape[0] else None, 0.5)


def _gather_index(b: Any, shape: tuple, d: int) -> np.ndarray:
    sizes = [int(b.rng.integers(0, n + 1)) if i != d % len(shape) else int(b.rng.integers(0, 4))
             for i, n in enumerate(shape)]
    return b.rng.integers(0, max(shape[d], 1), sizes).astype(np.int64)


def _make_gather(b: Any, x: int) -> tuple[list[int], dict] | None:
    shape = shape_of(b, x)
    if not shape or 0 in shape:
        return None
    d = pick_dim(b, len(shape))
    return [x], {"dim": d, "index": _gather_index(b, shape, d)}


register("gather", lambda m, xs, kw: m.gather(xs[0], kw["dim"], const(m, kw["index"])), _make_gather)


def _make_take_along(b: Any, x: int) -> tuple[list[int], dict] | None:
    shape = shape_of(b, x)
    if not shape or 0 in shape:
        return None
    d = pick_dim(b, len(shape))
    sizes = [1 if b.rng.random() < 0.3 else n for n in shape]
    sizes[d] = int(b.rng.integers(0, 4))
    return [x], {"dim": d, "index": b.rng.integers(0, shape[d], sizes).astype(np.int64)}


register("take_along_dim", lambda m, xs, kw: m.take_along_dim(xs[0], const(m, kw["index"]),
                                                              dim=kw["dim"]), _make_take_along)


def _make_index_select(b: Any, x: int) -> tuple[list[int], dict] | None:
    shape = shape_of(b, x)
    if not shape:
        return None
    d = pick_dim(b, len(shape))
    if shape[d] == 0:
        return None
    return [x], {"dim": d, "index": b.rng.integers(0, shape[d], int(b.rng.integers(0, 5)))
                 .astype(np.int64)}


register("index_select", lambda m, xs, kw: xs[0].index_select(kw["dim"], const(m, kw["index"])),
         _make_index_select)


def _make_masked_fill(b: Any, x: int) -> tuple[list[int], dict]:
    shape = shape_of(b, x)
    keep = int(b.rng.integers(0, len(shape) + 1))
    mask_shape = tuple(1 if b.rng.random() < 0.3 else n for n in shape[len(shape) - keep:])
    return [x], {"mask": b.rng.random(mask_shape) < 0.5, "value": scalar(b)}


register("masked_fill", lambda m, xs, kw: m.masked_fill(xs[0], const(m, kw["mask"]), kw["value"]),
         _make_masked_fill)


def _scatter_index(b: Any, shape: tuple, d: int, unique: bool) -> np.ndarray | None:
    if not shape or 0 in shape:
        return None
    sizes = [int(b.rng.integers(1, n + 1)) for n in shape]
    if unique:
        # distinct positions along d in each column, so that the result is deterministic
        idx = np.stack([b.rng.permutation(shape[d])[:sizes[d]] for _ in
                        range(int(np.prod(sizes, dtype=np.int64)) // sizes[d])], -1)
        idx = np.moveaxis(idx.reshape((sizes[d],) + tuple(s for i, s in enumerate(sizes)
                                                          if i != d % len(shape))), 0, d)
        return idx.astype(np.int64)
    return b.rng.integers(0, shape[d], sizes).astype(np.int64)


def _make_scatter(unique: bool) -> Callable:
    def make(b: Any, x: int) -> tuple[list[int], dict] | None:
        shape = shape_of(b, x)
        if not shape:
            return None
        d = pick_dim(b, len(shape))
        index = _scatter_index(b, shape, d, unique)
        if index is None:
            return None
        return [x, b.same_shape(index.shape)], {"dim": d, "index": index}

    return make


register("scatter", lambda m, xs, kw: m.scatter(xs[0], kw["dim"], const(m, kw["index"]), xs[1]),
         _make_scatter(True), 0.7)
register("scatter_add", lambda m, xs, kw: xs[0].scatter_add(kw["dim"], const(m, kw["index"]),
                                                            xs[1]), _make_scatter(False), 0.7)


# ------------------------------------------------------------------ linear algebra
def _make_matmul(b: Any, x: int) -> tuple[list[int], dict] | None:
    shape = shape_of(b, x)
    if not shape:
        return None
    n = shape[-1]
    k = int(b.rng.integers(1, 4))
    r = b.rng.random()
    if r < 0.25:
        other: tuple = (n,)
    elif r < 0.7 or len(shape) < 3:
        other = (n, k)
    else:
        batch = tuple(1 if b.rng.random() < 0.3 else s for s in shape[-3:-2])
        other = batch + (n, k)
    return [x, b.same_shape(other)], {}


register("matmul", lambda m, xs, kw: m.matmul(xs[0], xs[1]), _make_matmul, 1.5)
register("@", lambda m, xs, kw: xs[0] @ xs[1], _make_matmul, 0.5)


def _make_linear(b: Any, x: int) -> tuple[list[int], dict] | None:
    shape = shape_of(b, x)
    if not shape:
        return None
    k = int(b.rng.integers(1, 4))
    w = b.same_shape((k, shape[-1]))
    if b.rng.random() < 0.3:
        return [x, w], {}
    return [x, w, b.same_shape((k,))], {}


register("linear", lambda m, xs, kw: m.nn.functional.linear(*xs), _make_linear)


def _make_vector_pair(b: Any, x: int) -> tuple[list[int], dict] | None:
    shape = shape_of(b, x)
    if len(shape) != 1:
        return None
    return [x, b.same_shape(shape if b.rng.random() < 0.5 else (int(b.rng.integers(1, 4)),))], {}


register("outer", lambda m, xs, kw: m.outer(xs[0], xs[1]), _make_vector_pair, 0.5)
register("dot", lambda m, xs, kw: m.dot(xs[0], xs[1]) if xs[0].shape == xs[1].shape
         else m.outer(xs[0], xs[1]), _make_vector_pair, 0.5)


def _make_bmm(b: Any, x: int) -> tuple[list[int], dict] | None:
    shape = shape_of(b, x)
    if len(shape) != 3:
        return None
    return [x, b.same_shape((shape[0], shape[2], int(b.rng.integers(1, 4))))], {}


register("bmm", lambda m, xs, kw: m.bmm(xs[0], xs[1]), _make_bmm, 0.5)


def _make_einsum(b: Any, x: int) -> tuple[list[int], dict] | None:
    shape = shape_of(b, x)
    if len(shape) != 2:
        return None
    i, j = shape
    eq, other = [("ij,jk->ik", (j, 2)), ("ij,kj->ik", (3, j)), ("ij,ij->i", (i, j)),
                 ("ij,j->i", (j,)), ("ij->ji", None), ("ij->", None), ("ii->i", None),
                 ("ij,ik->jk", (i, 2))][int(b.rng.integers(0, 8))]
    if eq == "ii->i" and i != j:
        return None
    return ([x] if other is None else [x, b.same_shape(other)]), {"eq": eq}


register("einsum", lambda m, xs, kw: m.einsum(kw["eq"], *xs), _make_einsum, 0.7)


# ------------------------------------------------------------------ losses and nn
def _make_loss_pair(b: Any, x: int) -> tuple[list[int], dict]:
    return [x, b.same_shape(shape_of(b, x))], {
        "reduction": str(b.rng.choice(["mean", "sum", "none"]))}


for _name, _fn in {
    "mse_loss": lambda m, x, y, r: m.nn.functional.mse_loss(x, y, reduction=r),
    "l1_loss": lambda m, x, y, r: m.nn.functional.l1_loss(x, y, reduction=r),
    "smooth_l1_loss": lambda m, x, y, r: m.nn.functional.smooth_l1_loss(x, y, reduction=r, beta=0.5),
    "huber_loss": lambda m, x, y, r: m.nn.functional.huber_loss(x, y, reduction=r, delta=0.7),
    "bce": lambda m, x, y, r: m.nn.functional.binary_cross_entropy(
        m.sigmoid(x), m.sigmoid(y), reduction=r),
    "bce_with_logits": lambda m, x, y, r: m.nn.functional.binary_cross_entropy_with_logits(
        x, m.sigmoid(y), reduction=r),
    "kl_div": lambda m, x, y, r: m.nn.functional.kl_div(
        m.log_softmax(x, -1), m.softmax(y, -1), reduction="batchmean" if r == "mean" else r),
}.items():
    register(_name, lambda m, xs, kw, fn=_fn: fn(m, xs[0], xs[1], kw["reduction"]),
             _make_loss_pair, 0.5)


def _make_cross_entropy(b: Any, x: int) -> tuple[list[int], dict] | None:
    shape = shape_of(b, x)
    if len(shape) not in (1, 2) or 0 in shape:
        return None
    classes = shape[-1]
    target = b.rng.integers(0, classes, shape[:-1]).astype(np.int64)
    return [x], {"target": target, "smoothing": float(b.rng.choice([0.0, 0.0, 0.2])),
                 "reduction": str(b.rng.choice(["mean", "sum", "none"]))}


register("cross_entropy", lambda m, xs, kw: m.nn.functional.cross_entropy(
    xs[0], const(m, kw["target"]), label_smoothing=kw["smoothing"], reduction=kw["reduction"]),
    _make_cross_entropy, 0.7)
register("nll_loss", lambda m, xs, kw: m.nn.functional.nll_loss(
    m.log_softmax(xs[0], -1), const(m, kw["target"]), reduction=kw["reduction"]),
    _make_cross_entropy, 0.5)


def _make_cosine(b: Any, x: int) -> tuple[list[int], dict] | None:
    shape = shape_of(b, x)
    if not shape:
        return None
    y, d = b.partner(shape, "real"), pick_dim(b, len(shape))
    try:
        pair = b.torch.broadcast_tensors(b.values[x], b.values[y])
    except RuntimeError:
        return None
    if not (well_scaled(pair[0], d) and well_scaled(pair[1], d)):
        return None
    return [x, y], {"dim": d}


register("cosine_similarity", lambda m, xs, kw: m.nn.functional.cosine_similarity(
    xs[0], xs[1], dim=kw["dim"]), _make_cosine, 0.5)


def _make_layer_norm(b: Any, x: int) -> tuple[list[int], dict] | None:
    shape = shape_of(b, x)
    if not shape:
        return None
    k = int(b.rng.integers(1, len(shape) + 1))
    normalized = shape[len(shape) - k:]
    if b.rng.random() < 0.5:
        return [x], {"shape": normalized}
    return [x, b.same_shape(normalized), b.same_shape(normalized)], {"shape": normalized}


register("layer_norm", lambda m, xs, kw: m.nn.functional.layer_norm(xs[0], kw["shape"], *xs[1:]),
         _make_layer_norm, 0.7)


def _make_conv(b: Any, x: int) -> tuple[list[int], dict] | None:
    shape = shape_of(b, x)
    if len(shape) not in (3, 4) or 0 in shape:
        return None
    spatial = shape[2:]
    kernel = tuple(int(b.rng.integers(1, n + 1)) for n in spatial)
    out = int(b.rng.integers(1, 3))
    args = [x, b.same_shape((out, shape[1]) + kernel)]
    if b.rng.random() < 0.5:
        args.append(b.same_shape((out,)))
    return args, {"stride": int(b.rng.integers(1, 3)), "padding": int(b.rng.integers(0, 2))}


register("conv", lambda m, xs, kw: (m.nn.functional.conv1d if xs[0].dim() == 3 else
                                    m.nn.functional.conv2d)(*xs, stride=kw["stride"],
                                                            padding=kw["padding"]), _make_conv)


def _make_pool(b: Any, x: int) -> tuple[list[int], dict] | None:
    shape = shape_of(b, x)
    if len(shape) not in (3, 4) or 0 in shape:
        return None
    k = int(b.rng.integers(1, min(shape[2:]) + 1))
    return [x], {"k": k, "stride": int(b.rng.integers(1, k + 1))}


register("max_pool", lambda m, xs, kw: (m.nn.functional.max_pool1d if xs[0].dim() == 3 else
                                        m.nn.functional.max_pool2d)(xs[0], kw["k"], kw["stride"]),
         _make_pool)
register("avg_pool", lambda m, xs, kw: (m.nn.functional.avg_pool1d if xs[0].dim() == 3 else
                                        m.nn.functional.avg_pool2d)(xs[0], kw["k"], kw["stride"]),
         _make_pool, 0.5)


# ------------------------------------------------------------------ in place
def _inplace(name: str, fn: Callable, make: Callable, weight: float = 1.0) -> None:
    def call(m: Any, xs: list, kw: dict) -> Any:
        out = fn(m, xs, kw)
        return xs[0] if out is None else out

    register(name, call, make, weight, inplace=True)


def _target_only(b: Any, x: int) -> tuple[list[int], dict]:
    return [x], {}


def _target_positive(b: Any, x: int) -> tuple[list[int], dict] | None:
    return ([x], {}) if b.is_in(x, "positive") else None


def _target_bounded(b: Any, x: int) -> tuple[list[int], dict] | None:
    return ([x], {}) if b.is_in(x, "bounded") else None


def _target_scalar(b: Any, x: int) -> tuple[list[int], dict]:
    c = scalar(b)
    return [x], {"c": c if abs(c) > 0.3 else 0.7}


def _target_into(domain: str) -> Callable:
    def make(b: Any, x: int) -> tuple[list[int], dict]:
        return [x, b.partner(shape_of(b, x), domain, into=True)], {}

    return make


_inplace("add_", lambda m, xs, kw: xs[0].add_(xs[1]), _target_into("real"), 2.0)
_inplace("add_[alpha]", lambda m, xs, kw: xs[0].add_(xs[1], alpha=-0.5), _target_into("real"))
_inplace("sub_", lambda m, xs, kw: xs[0].sub_(xs[1]), _target_into("real"))
_inplace("mul_", lambda m, xs, kw: xs[0].mul_(xs[1]), _target_into("real"), 1.5)
_inplace("div_", lambda m, xs, kw: xs[0].div_(xs[1]), _target_into("nonzero"))
_inplace("add_[c]", lambda m, xs, kw: xs[0].add_(kw["c"]), _target_scalar)
_inplace("mul_[c]", lambda m, xs, kw: xs[0].mul_(kw["c"]), _target_scalar, 1.5)
_inplace("div_[c]", lambda m, xs, kw: xs[0].div_(kw["c"]), _target_scalar)
_inplace("pow_", lambda m, xs, kw: xs[0].pow_(2), _target_only, 0.5)
_inplace("clamp_", lambda m, xs, kw: xs[0].clamp_(kw["min"], kw["max"]), _make_clamp)
_inplace("relu_", lambda m, xs, kw: xs[0].relu_(), _target_only)
_inplace("sigmoid_", lambda m, xs, kw: xs[0].sigmoid_(), _target_only, 0.5)
_inplace("tanh_", lambda m, xs, kw: xs[0].tanh_(), _target_only)
_inplace("neg_", lambda m, xs, kw: xs[0].neg_(), _target_only, 0.5)
_inplace("abs_", lambda m, xs, kw: xs[0].abs_(), _target_only, 0.5)
_inplace("exp_", lambda m, xs, kw: xs[0].exp_(), _target_bounded, 0.5)
_inplace("sqrt_", lambda m, xs, kw: xs[0].sqrt_(), _target_positive, 0.5)
_inplace("zero_", lambda m, xs, kw: xs[0].zero_(), _target_only, 0.3)
_inplace("fill_", lambda m, xs, kw: xs[0].fill_(kw["c"]), _target_scalar, 0.3)
_inplace("copy_", lambda m, xs, kw: xs[0].copy_(xs[1]), _target_into("real"))
_inplace("masked_fill_", lambda m, xs, kw: xs[0].masked_fill_(const(m, kw["mask"]), kw["value"]),
         _make_masked_fill)
_inplace("addcmul_", lambda m, xs, kw: xs[0].addcmul_(xs[1], xs[2], value=0.5),
         lambda b, x: ([x, b.partner(shape_of(b, x), "real", into=True),
                        b.partner(shape_of(b, x), "real", into=True)], {}), 0.5)
_inplace("lerp_", lambda m, xs, kw: xs[0].lerp_(xs[1], 0.25), _target_into("real"), 0.5)


def _setitem(m: Any, xs: list, kw: dict) -> Any:
    index = const(m, kw["index"])
    xs[0][index] = xs[1] if len(xs) > 1 else kw["value"]
    return xs[0]


def _make_setitem(advanced: bool) -> Callable:
    def make(b: Any, x: int) -> tuple[list[int], dict] | None:
        shape = shape_of(b, x)
        index = advanced_index(b, shape, unique=True) if advanced else basic_index(b, shape)
        if index is None:
            return None
        if b.rng.random() < 0.3:
            return [x], {"index": index, "value": scalar(b)}
        target_shape = tuple(b.values[x][const(b.torch, index)].shape)
        return [x, b.partner(target_shape, "real", into=True)], {"index": index}

    return make


_inplace("setitem", _setitem, _make_setitem(False), 2.0)
_inplace("setitem[advanced]", _setitem, _make_setitem(True), 1.0)


def _make_index_add(b: Any, x: int) -> tuple[list[int], dict] | None:
    shape = shape_of(b, x)
    if not shape:
        return None
    d = pick_dim(b, len(shape))
    if shape[d] == 0:
        return None
    index = b.rng.integers(0, shape[d], int(b.rng.integers(0, 4))).astype(np.int64)
    src = list(shape)
    src[d] = index.size
    return [x, b.same_shape(tuple(src))], {"dim": d, "index": index}


_inplace("index_add_", lambda m, xs, kw: xs[0].index_add_(kw["dim"], const(m, kw["index"]), xs[1]),
         _make_index_add, 0.7)
_inplace("scatter_", lambda m, xs, kw: xs[0].scatter_(kw["dim"], const(m, kw["index"]), xs[1]),
         _make_scatter(True), 0.5)
_inplace("scatter_add_", lambda m, xs, kw: xs[0].scatter_add_(kw["dim"], const(m, kw["index"]),
                                                             xs[1]), _make_scatter(False), 0.5)
