"""Hypothesis at the edges of shapes, against PyTorch and finite differences (float64).

tests/test_properties.py and tests/ops/test_op_table.py draw broadcastable arithmetic,
reductions over non-empty dims and basic indexing; this file draws what they leave out:
0-d, size-1 and zero-size dims everywhere (reductions over an empty dim included), advanced
index expressions (integer arrays with repeats and negatives, boolean masks, mixed with
slices, None and Ellipsis) for reading and for writing, matmul over every rank and batch
broadcast, chains of views written through in place, and gradients checked against central
differences as well as against PyTorch. Where PyTorch refuses an input (amax over an empty
dim), chainrule must refuse it too.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import chainrule as cr
from chainrule.autograd import gradcheck, gradgradcheck

torch = pytest.importorskip("torch")

SHAPES = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=3)


def _values(draw: Any, shape: tuple, low: float = -2.0, high: float = 2.0) -> np.ndarray:
    return draw(hnp.arrays(np.float64, shape, elements=st.floats(
        low, high, allow_nan=False, allow_subnormal=False, width=64)))


def _run(m: Any, fn: Callable, arrays: list, grad: bool = True) -> tuple:
    """``fn``'s result and the gradients of sum(out * w) (fixed w), or the error's type."""
    inputs = [m.tensor(a.copy(), requires_grad=grad) for a in arrays]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = fn(m, *inputs)
            result = out.detach().numpy().copy()
            if not grad or not out.requires_grad:
                return result, None
            w = m.tensor(np.linspace(-1.0, 1.5, out.numel()).reshape(tuple(out.shape)))
            grads = m.autograd.grad((out * w).sum(), inputs, allow_unused=True)
    except (RuntimeError, IndexError, ValueError) as error:
        return type(error), None
    return result, [None if g is None else g.numpy().copy() for g in grads]


def _same_as_torch(fn: Callable, arrays: list, grad: bool = True) -> None:
    ours, our_grads = _run(cr, fn, arrays, grad)
    theirs, their_grads = _run(torch, fn, arrays, grad)
    if isinstance(theirs, type) or isinstance(ours, type):
        # PyTorch refuses: chainrule refuses too (and the other way round)
        assert isinstance(ours, type) and isinstance(theirs, type), (ours, theirs)
        return
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12, equal_nan=True)
    if their_grads is None:
        return
    for g, e, a in zip(our_grads, their_grads, arrays):
        g = np.zeros_like(a) if g is None else g
        e = np.zeros_like(a) if e is None else e
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12, equal_nan=True)


def _finite_differences(fn: Callable, arrays: list, second: bool = True) -> None:
    inputs = [cr.tensor(a.copy(), requires_grad=True) for a in arrays]
    if not any(a.size for a in arrays):
        return
    assert gradcheck(lambda *xs: fn(cr, *xs), inputs, atol=1e-5, rtol=1e-3)
    if second:
        assert gradgradcheck(lambda *xs: fn(cr, *xs), inputs, atol=1e-5, rtol=1e-3)


# ------------------------------------------------------------------ elementwise, any shape
UNARY: dict[str, tuple[Callable, float, float]] = {
    "exp": (lambda m, x: m.exp(x), -2.0, 2.0),
    "log": (lambda m, x: m.log(x), 0.3, 3.0),
    "sqrt": (lambda m, x: m.sqrt(x), 0.3, 3.0),
    "rsqrt": (lambda m, x: m.rsqrt(x), 0.3, 3.0),
    "log1p": (lambda m, x: m.log1p(x), -0.5, 2.0),
    "reciprocal": (lambda m, x: m.reciprocal(x), 0.3, 3.0),
    "tanh": (lambda m, x: m.tanh(x), -2.0, 2.0),
    "sigmoid": (lambda m, x: m.sigmoid(x), -3.0, 3.0),
    "erf": (lambda m, x: m.erf(x), -2.0, 2.0),
    "sin": (lambda m, x: m.sin(x), -3.0, 3.0),
    "x**2.5": (lambda m, x: x ** 2.5, 0.3, 2.0),
    "softplus": (lambda m, x: m.nn.functional.softplus(x), -3.0, 3.0),
    "gelu": (lambda m, x: m.nn.functional.gelu(x), -3.0, 3.0),
    "silu": (lambda m, x: m.nn.functional.silu(x), -3.0, 3.0),
    "logsigmoid": (lambda m, x: m.nn.functional.logsigmoid(x), -3.0, 3.0),
}


@given(name=st.sampled_from(sorted(UNARY)), shape=SHAPES, data=st.data())
def test_unary_ops_on_any_shape(name: str, shape: tuple, data: st.DataObject) -> None:
    fn, low, high = UNARY[name]
    x = _values(data.draw, shape, low, high)
    _same_as_torch(fn, [x])
    _finite_differences(fn, [x])


# ------------------------------------------------------------------ broadcasting, with FD
BINARY: dict[str, tuple[Callable, tuple[float, float]]] = {
    "add": (lambda m, x, y: x + y, (-2.0, 2.0)),
    "mul": (lambda m, x, y: x * y, (-2.0, 2.0)),
    "div": (lambda m, x, y: x / y, (0.5, 2.0)),
    "pow": (lambda m, x, y: x ** y, (0.5, 2.0)),
    "x*y+x": (lambda m, x, y: x * y + x, (-2.0, 2.0)),  # x used twice
    "where": (lambda m, x, y: m.where(x > y, x * y, x - y), (-2.0, 2.0)),
}


@given(name=st.sampled_from(sorted(BINARY)),
       shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3,
                                                min_side=0, max_side=3), data=st.data())
def test_broadcast_pairs_against_finite_differences(name: str, shapes: Any,
                                                     data: st.DataObject) -> None:
    fn, (low, high) = BINARY[name]
    x, y = (_values(data.draw, s, low, high) for s in shapes.input_shapes)
    if name == "where":
        assume(np.abs(np.subtract.outer(x.ravel(), y.ravel())).min(initial=1.0) > 1e-3)
    _same_as_torch(fn, [x, y])
    _finite_differences(fn, [x, y])


# ------------------------------------------------------------------ reductions, empty dims
REDUCTIONS: dict[str, Callable] = {
    "sum": lambda m, x, d, k: x.sum(d, keepdim=k),
    "mean": lambda m, x, d, k: x.mean(d, keepdim=k),
    "prod": lambda m, x, d, k: x.prod(d, keepdim=k),
    "amax": lambda m, x, d, k: m.amax(x, d, keepdim=k),
    "logsumexp": lambda m, x, d, k: m.logsumexp(x, d, keepdim=k),
    "norm": lambda m, x, d, k: m.norm(x, dim=d, keepdim=k),
    "var": lambda m, x, d, k: m.var(x, d, keepdim=k),
    "max[dim]": lambda m, x, d, k: m.max(x, d, keepdim=k)[0],
    "softmax": lambda m, x, d, k: m.softmax(x, d),
    "log_softmax": lambda m, x, d, k: m.log_softmax(x, d),
    "cumsum": lambda m, x, d, k: m.cumsum(x, d),
}
ONE_DIM = {"prod", "max[dim]", "softmax", "log_softmax", "cumsum"}


@given(name=st.sampled_from(sorted(REDUCTIONS)), shape=SHAPES, keepdim=st.booleans(),
       data=st.data())
def test_reductions_over_any_dims(name: str, shape: tuple, keepdim: bool,
                                  data: st.DataObject) -> None:
    ndim = max(len(shape), 1)  # a 0-d tensor takes dim 0 or -1
    if name in ONE_DIM:
        dims: Any = data.draw(st.integers(-ndim, ndim - 1), label="dim")
    else:
        dims = tuple(data.draw(st.lists(st.integers(-ndim, ndim - 1), min_size=1, max_size=ndim,
                                        unique_by=lambda d: d % ndim), label="dims"))
        if not shape:
            dims = dims[:1]
        if name == "norm":
            dims = dims[:2]  # PyTorch's norm (p='fro') refuses 3 dims; chainrule takes them
    x = _values(data.draw, shape, 0.5, 2.0)  # positive: prod, norm and var stay smooth
    fn = REDUCTIONS[name]
    _same_as_torch(lambda m, t: fn(m, t, dims, keepdim), [x])
    if name not in ("amax", "max[dim]", "norm") and x.size:
        _finite_differences(lambda m, t: fn(m, t, dims, keepdim), [x], second=name != "var")


# ------------------------------------------------------------------ advanced indexing
@st.composite
def index_expressions(draw: Any, shape: tuple, unique: bool = False) -> tuple:
    """Ints, slices (positive steps), None, one Ellipsis, integer arrays (repeats and
    negatives unless ``unique``) and boolean masks, in PyTorch's accepted combinations."""
    items: list = []
    dim = 0
    while dim < len(shape) and draw(st.booleans()):
        n = shape[dim]
        kind = draw(st.sampled_from(["int", "slice", "none", "array", "mask"]))
        if kind == "int" and n:
            items.append(draw(st.integers(-n, n - 1)))
        elif kind == "none":
            items.append(None)
            continue
        elif kind == "array" and n:
            if unique:
                count = draw(st.integers(0, n))
                values = draw(st.permutations(range(n)))[:count]
            else:
                values = draw(st.lists(st.integers(-n, n - 1), min_size=0, max_size=4))
            items.append(np.array(values, dtype=np.int64))
        elif kind == "mask":
            span = draw(st.integers(1, len(shape) - dim))
            items.append(draw(hnp.arrays(np.bool_, shape[dim:dim + span])))
            dim += span
            continue
        else:
            items.append(slice(draw(st.none() | st.integers(-n - 1, n + 1)),
                               draw(st.none() | st.integers(-n - 1, n + 1)),
                               draw(st.none() | st.integers(1, 3))))
        dim += 1
    if draw(st.booleans()):
        items.insert(draw(st.integers(0, len(items))), Ellipsis)
    arrays = [i for i in items if isinstance(i, np.ndarray) and i.dtype != np.bool_]
    if unique and len(arrays) > 1:
        items = [i for i in items if not (isinstance(i, np.ndarray) and i is not arrays[0]
                                          and i.dtype != np.bool_)]
    return tuple(items)


def _as_index(m: Any, index: tuple) -> tuple:
    return tuple(m.tensor(i) if isinstance(i, np.ndarray) else i for i in index)


@given(shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4), data=st.data())
def test_getitem_with_any_index_expression(shape: tuple, data: st.DataObject) -> None:
    index = data.draw(index_expressions(shape), label="index")
    x = _values(data.draw, shape)
    _same_as_torch(lambda m, t: t[_as_index(m, index)], [x])


@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4),
       scalar=st.booleans(), data=st.data())
def test_setitem_with_any_index_expression(shape: tuple, scalar: bool,
                                           data: st.DataObject) -> None:
    """Writing through an index into a tensor with a history: the new values, and the
    gradients of the old values (zero where overwritten) and of the written ones."""
    index = data.draw(index_expressions(shape, unique=True), label="index")
    x = _values(data.draw, shape)
    try:
        target = np.zeros(shape)[index].shape
    except IndexError:
        scalar = True  # an invalid index: both libraries must refuse it
    value = None if scalar else _values(data.draw, tuple(
        s if data.draw(st.booleans(), label="keep") else 1 for s in target))

    def write(m: Any, t: Any, *v: Any) -> Any:
        out = t * 1.5
        out[_as_index(m, index)] = v[0] * 2 if v else 0.25
        return out

    _same_as_torch(write, [x] if scalar else [x, value])


# ------------------------------------------------------------------ matmul, every rank
@st.composite
def matmul_shapes(draw: Any) -> tuple[tuple, tuple]:
    n, k, m = (draw(st.integers(0, 3)) for _ in range(3))
    batch = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3))
    left = draw(st.sampled_from(["vector", "matrix", "batch"]))
    right = draw(st.sampled_from(["vector", "matrix", "batch"]))
    a = (k,) if left == "vector" else (n, k) if left == "matrix" else batch + (n, k)
    b_batch = tuple(1 if draw(st.booleans()) else s for s in batch)
    b = (k,) if right == "vector" else (k, m) if right == "matrix" else b_batch + (k, m)
    return a, b


@given(shapes=matmul_shapes(), data=st.data())
def test_matmul_of_any_ranks(shapes: tuple, data: st.DataObject) -> None:
    a, b = (_values(data.draw, s) for s in shapes)
    fn = lambda m, x, y: m.matmul(x, y)  # noqa: E731
    _same_as_torch(fn, [a, b])
    _finite_differences(fn, [a, b])


# ------------------------------------------------------------------ views written in place
VIEWS: dict[str, Callable[[Any, tuple], Any]] = {
    "transpose": lambda t, s: t.transpose(0, -1),
    "unsqueeze": lambda t, s: t.unsqueeze(0),
    "reshape": lambda t, s: t.reshape(-1),
    "narrow": lambda t, s: t.narrow(0, 0, max(s[0] - 1, 0)),
    "select": lambda t, s: t[-1],
    "slice": lambda t, s: t[..., ::2],
    "permute": lambda t, s: t.permute(*reversed(range(t.dim()))),
}


@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3),
       chain=st.lists(st.sampled_from(sorted(VIEWS)), min_size=1, max_size=3),
       data=st.data())
def test_writing_through_a_chain_of_views(shape: tuple, chain: list, data: st.DataObject) -> None:
    """A chain of views of a tensor with a history, written in place: the base sees the
    write, and gradients flow to the values before and after it as in PyTorch."""
    x = _values(data.draw, shape)

    def program(m: Any, t: Any) -> Any:
        base = t * 1.0
        view = base
        for name in chain:
            if view.dim() == 0:
                break
            view = VIEWS[name](view, tuple(view.shape))
        view.mul_(3.0).add_(view.detach() * 0 + 1.0)
        return base * t

    _same_as_torch(program, [x])
