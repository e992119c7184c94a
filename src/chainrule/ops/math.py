"""Public math ops with PyTorch's signatures: elementwise, comparisons, reductions, linalg.

These wrappers only convert arguments (scalars, dtypes, dims) and check them; the
differentiable work is done by the primitives.
"""

from __future__ import annotations

import builtins
from collections import namedtuple
from typing import Any

import numpy as np

from .. import _backend, _dtype
from ..tensor import Tensor, _wrap
from . import binary, kernels, linalg, reduce, unary
from ._convert import (
    as_tensor_arg,
    broadcast_error,
    cast,
    constant_like,
    dtype_of,
    floating,
    is_floating_data,
    is_scalar,
    normalize_axis,
    normalize_dim,
    pick_dim,
    result_dtype,
    scalar_dtype,
    xp_of,
)

# ------------------------------------------------------------------ binary arithmetic
_BFLOAT16 = _dtype.bfloat16.np


def _pair(op: str, a: Any, b: Any) -> tuple[Tensor, Tensor]:
    a, b = as_tensor_arg(a, op), as_tensor_arg(b, op)
    if dtype_of(a) != dtype_of(b):
        dtype = result_dtype(a, b)
        a, b = cast(a, dtype), cast(b, dtype)
    return a, b


def _tensor_tensor(op: str, prim: Any, a: Any, b: Any) -> Tensor:
    if not (isinstance(a, Tensor) and isinstance(b, Tensor) and a._data.dtype is b._data.dtype):
        a, b = _pair(op, a, b)
    try:
        return prim.__call__(a, b)  # not prim(a, b): see _primitive.apply
    except ValueError:
        if not _broadcastable(a._data.shape, b._data.shape):
            raise broadcast_error(op, a, b) from None
        raise


def _broadcastable(s1: tuple, s2: tuple) -> bool:
    try:
        np.broadcast_shapes(s1, s2)
    except ValueError:
        return False
    return True


# the arithmetic wrappers' fast path: a Python float with a NumPy float tensor needs no
# conversion, decided inline (a helper's call would cost what it saves, ~0.1 us an op)
_ndarray = np.ndarray


def _scalar_operand(t: Tensor, value: Any) -> tuple[Tensor, Any] | None:
    """``(t, value)`` ready for a tensor-with-scalar primitive, or None if ``value`` is not
    a real number. NumPy scalars become Python numbers (they must not change the result's
    dtype); ``t`` is promoted as PyTorch does (an int tensor with a float becomes float32);
    an int out of an integer dtype's range wraps, as PyTorch's does."""
    kind = type(value)
    if kind is float:
        try:
            if t._data.dtype.kind == "f":
                return t, value  # the common case, decided with two checks
        except AttributeError:
            pass  # a backend whose dtypes are not NumPy's (array_api_strict)
    if kind is not float and kind is not int and kind is not bool:
        if isinstance(value, np.generic) and value.dtype.kind in "biuf":
            value = value.item()
        elif not is_scalar(value):
            return None
    dtype = scalar_dtype(t, value)
    if dtype != dtype_of(t):
        t = cast(t, dtype)
    if dtype.kind in "iu" and type(value) is int:
        info = np.iinfo(dtype)
        if not info.min <= value <= info.max:
            value = np.array(value).astype(dtype)
    elif dtype == _BFLOAT16 and isinstance(value, float):
        value = kernels.Opmath(value)  # computed in float32, rounded back (PyTorch's opmath)
    return t, value


def add(input: Any, other: Any, *, alpha: Any = 1) -> Tensor:
    """``input + alpha * other`` with broadcasting.

    >>> chainrule.add(chainrule.ones(2), 1.5)
    tensor([2.5000, 2.5000])
    """
    if alpha != 1:
        other = mul(other, alpha)
    if isinstance(input, Tensor):
        if isinstance(other, Tensor):
            return _tensor_tensor("add", binary.add, input, other)
        if type(other) is float and type(input._data) is _ndarray and input._data.dtype.kind == "f":
            return binary.add_scalar.__call__(input, other=other)
        pair = _scalar_operand(input, other)
        if pair is not None:
            return binary.add_scalar(pair[0], other=pair[1])
    elif isinstance(other, Tensor):
        pair = _scalar_operand(other, input)
        if pair is not None:
            return binary.add_scalar(pair[0], other=pair[1])
    return _tensor_tensor("add", binary.add, input, other)


def sub(input: Any, other: Any, *, alpha: Any = 1) -> Tensor:
    """``input - alpha * other`` with broadcasting."""
    if alpha != 1:
        other = mul(other, alpha)
    if isinstance(input, Tensor):
        if isinstance(other, Tensor):
            return _tensor_tensor("sub", binary.sub, input, other)
        if type(other) is float and type(input._data) is _ndarray and input._data.dtype.kind == "f":
            return binary.sub_scalar.__call__(input, other=other)
        pair = _scalar_operand(input, other)
        if pair is not None:
            return binary.sub_scalar(pair[0], other=pair[1])
    elif isinstance(other, Tensor):
        pair = _scalar_operand(other, input)
        if pair is not None:
            return binary.rsub_scalar(pair[0], other=pair[1])
    return _tensor_tensor("sub", binary.sub, input, other)


def mul(input: Any, other: Any) -> Tensor:
    """Elementwise product with broadcasting."""
    if isinstance(input, Tensor):
        if isinstance(other, Tensor):
            return _tensor_tensor("mul", binary.mul, input, other)
        if type(other) is float and type(input._data) is _ndarray and input._data.dtype.kind == "f":
            return binary.mul_scalar.__call__(input, other=other)
        pair = _scalar_operand(input, other)
        if pair is not None:
            return binary.mul_scalar(pair[0], other=pair[1])
    elif isinstance(other, Tensor):
        pair = _scalar_operand(other, input)
        if pair is not None:
            return binary.mul_scalar(pair[0], other=pair[1])
    return _tensor_tensor("mul", binary.mul, input, other)


def div(input: Any, other: Any, *, rounding_mode: str | None = None) -> Tensor:
    """True division (integers give floats); ``rounding_mode`` 'trunc' or 'floor' rounds."""
    if rounding_mode is not None:
        if rounding_mode not in ("trunc", "floor"):
            raise ValueError(f"div(): rounding_mode must be 'trunc', 'floor' or None, got "
                             f"{rounding_mode!r}")
        a, b = _pair("div", input, other)
        rounded = _tensor_tensor("div", lambda x, y: binary.div_rounded(x, y, mode=rounding_mode),
                                 floating(a), floating(b))
        both_int = all(
            (isinstance(v, Tensor) and dtype_of(v).kind in "iu")
            or (isinstance(v, int) and not isinstance(v, bool))
            for v in (input, other)
        )
        if both_int:
            kind = input if isinstance(input, Tensor) else other
            return _wrap(_backend.astype(rounded._data, dtype_of(kind)))
        return rounded
    if isinstance(input, Tensor):
        pair = _scalar_operand(floating(input), other)
        if pair is not None:
            return binary.div_scalar(pair[0], other=pair[1])
    elif isinstance(other, Tensor):
        pair = _scalar_operand(floating(other), input)
        if pair is not None:
            return binary.rdiv_scalar(pair[0], other=pair[1])
    a, b = _pair("div", input, other)
    return _tensor_tensor("div", binary.div, floating(a), floating(b))


def rtruediv(input: Tensor, other: Any) -> Tensor:
    """``other / input`` (``Tensor.__rtruediv__``). For a number ``other`` PyTorch computes
    ``reciprocal(input) * other``: its backward saves the reciprocal, not ``input`` nor the
    result, so changing either in place afterwards leaves the backward valid; so here."""
    if isinstance(other, Tensor) or not is_scalar(other):
        return div(other, input)
    return mul(reciprocal(input), other)


true_divide = divide = div
multiply = mul
subtract = sub


def pow(input: Any, exponent: Any) -> Tensor:  # noqa: A001 - PyTorch's name
    """``input ** exponent``; either side may be a Python number."""
    if isinstance(input, Tensor):
        pair = _scalar_operand(input, exponent)
        if pair is not None:
            return unary.pow_scalar(pair[0], exponent=pair[1])
    elif isinstance(exponent, Tensor):
        pair = _scalar_operand(exponent, input)
        if pair is not None:
            return unary.rpow_scalar(pair[0], base=pair[1])
    return _tensor_tensor("pow", binary.pow_, input, exponent)


def maximum(input: Tensor, other: Tensor) -> Tensor:
    """Elementwise maximum; at ties each input gets half the gradient."""
    return _tensor_tensor("maximum", binary.maximum, input, other)


def minimum(input: Tensor, other: Tensor) -> Tensor:
    """Elementwise minimum; at ties each input gets half the gradient."""
    return _tensor_tensor("minimum", binary.minimum, input, other)


def where(condition: Any, input: Any = None, other: Any = None) -> Any:
    """Pick ``input`` where ``condition`` holds, else ``other``; NaN-safe gradient.

    ``where(condition)`` alone returns the indices of the true elements, as PyTorch.
    """
    condition = as_tensor_arg(condition, "where")
    if input is None and other is None:
        return tuple(_wrap(i) for i in xp_of(condition).nonzero(condition._data))
    if dtype_of(condition) != np.bool_:
        condition = _wrap(_backend.astype(condition._data, np.dtype(np.bool_)))
    if is_scalar(input) and isinstance(other, Tensor):
        input = constant_like(input, scalar_dtype(other, input), other)
    if is_scalar(other) and isinstance(input, Tensor):
        other = constant_like(other, scalar_dtype(input, other), input)
    x, y = _pair("where", input, other)
    try:
        return binary.where(condition, x, y)
    except ValueError:
        raise RuntimeError(
            f"where(): the shapes {tuple(condition.shape)}, {tuple(x.shape)} and "
            f"{tuple(y.shape)} cannot be broadcast together"
        ) from None


def clamp(input: Tensor, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002
    """Limit values to [min, max]; the gradient passes inside the range, bounds included."""
    if min is None and max is None:
        raise RuntimeError("clamp(): at least one of 'min' or 'max' must not be None")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        return _clamp_tensor(input, None if min is None else as_tensor_arg(min, "clamp"),
                             None if max is None else as_tensor_arg(max, "clamp"))
    scalar = min if min is not None else max
    dtype = scalar_dtype(input, scalar)
    return unary.clamp_scalar(input if dtype == dtype_of(input) else cast(input, dtype),
                              min=min, max=max)


def _clamp_tensor(x: Tensor, lo: Tensor | None, hi: Tensor | None) -> Tensor:
    """PyTorch's clamp with tensor bounds, as selections. The value is min(max(x, lo), hi)
    with NaN propagated. The gradient goes to x where lo <= x <= hi (bounds included), to
    lo where x < lo < hi, to hi where x > hi or hi < lo, and to no one elsewhere (a NaN,
    or x < lo == hi): there the value is a constant."""
    data, xp = x._data, xp_of(x)
    if lo is not None:
        data = xp.maximum(data, lo._data)
    if hi is not None:
        data = xp.minimum(data, hi._data)
    out = _wrap(data)
    if lo is not None and hi is not None:
        to_x = (x._data >= lo._data) & (x._data <= hi._data)
        to_lo = (x._data < lo._data) & (lo._data < hi._data)
        to_hi = (x._data > hi._data) | (hi._data < lo._data)
    elif lo is not None:
        to_x, to_lo = x._data >= lo._data, x._data < lo._data
    else:
        to_x, to_hi = x._data <= hi._data, x._data > hi._data
    if hi is not None:
        out = where(_wrap(to_hi), hi, out)
    if lo is not None:
        out = where(_wrap(to_lo), lo, out)
    return where(_wrap(to_x), x, out)


clip = clamp

# ------------------------------------------------------------------ unary


def _unary_float(prim: Any, doc: str) -> Any:
    def op(input: Tensor) -> Tensor:
        if isinstance(input, Tensor) and (
                type(input._data) is _ndarray and input._data.dtype.kind == "f"
                or _dtype.is_floating(input._data.dtype)):
            return prim.__call__(input)  # not prim(input): see _primitive.apply
        return prim(floating(as_tensor_arg(input, prim.name)))

    op.__name__ = op.__qualname__ = prim.name
    op.__doc__ = doc
    return op


exp = _unary_float(unary.exp, "Elementwise e**x.")
exp2 = _unary_float(unary.exp2, "Elementwise 2**x.")
expm1 = _unary_float(unary.expm1, "Elementwise e**x - 1, accurate near 0.")
log = _unary_float(unary.log, "Natural logarithm.")
log2 = _unary_float(unary.log2, "Base-2 logarithm.")
log1p = _unary_float(unary.log1p, "log(1 + x), accurate near 0.")
sqrt = _unary_float(unary.sqrt, "Square root.")
rsqrt = _unary_float(unary.rsqrt, "1 / sqrt(x).")
reciprocal = _unary_float(unary.reciprocal, "1 / x.")
sin = _unary_float(unary.sin, "Sine.")
cos = _unary_float(unary.cos, "Cosine.")
tan = _unary_float(unary.tan, "Tangent.")
tanh = _unary_float(unary.tanh, "Hyperbolic tangent.")
sigmoid = _unary_float(unary.sigmoid, "Logistic sigmoid 1/(1+e**-x), stable for large |x|.")
erf = _unary_float(unary.erf, "Error function.")


def _unary_same(prim: Any, doc: str) -> Any:
    def op(input: Tensor) -> Tensor:
        input = as_tensor_arg(input, prim.name)
        if dtype_of(input).kind in "biu" and prim.name != "neg":
            return _wrap(prim.forward(xp_of(input), input._data))
        return prim(input)

    op.__name__ = op.__qualname__ = prim.name
    op.__doc__ = doc
    return op


neg = negative = _unary_same(unary.neg, "Elementwise -x.")
abs = absolute = _unary_same(unary.abs_, "Elementwise |x|; gradient sign(x), 0 at 0.")  # noqa: A001
relu = _unary_same(unary.relu, "max(x, 0); gradient 0 at 0, as PyTorch.")
sign = _unary_same(unary.sign, "Sign of x (zero gradient).")
floor = _unary_same(unary.floor, "Round down (zero gradient).")
ceil = _unary_same(unary.ceil, "Round up (zero gradient).")
trunc = _unary_same(unary.trunc, "Round toward zero (zero gradient).")


def round(input: Tensor, *, decimals: int = 0) -> Tensor:  # noqa: A001
    """Round half to even, as PyTorch (zero gradient)."""
    return unary.round_(as_tensor_arg(input, "round"), decimals=decimals)


# ------------------------------------------------------------------ comparisons and logic


def _truth(value: Any) -> Any:
    """An operand of a logical function as bools (PyTorch: any nonzero value is true)."""
    if is_scalar(value) or _backend.np_dtype(value) == np.bool_:
        return value
    return value != 0


def _compare(function: str, name: str) -> Any:
    numpy_function = getattr(np, function)
    logical = function.startswith("logical")

    def op(input: Any, other: Any) -> Tensor:
        a = input._data if isinstance(input, Tensor) else input
        b = other._data if isinstance(other, Tensor) else other
        array = a if isinstance(input, Tensor) else b
        if type(array) is np.ndarray:
            fn = numpy_function
        else:
            fn = getattr(_backend.namespace_of(array), function)
            if logical:  # the Array API's logical functions take bools only: nonzero is true
                a, b = _truth(a), _truth(b)
        try:
            return _wrap(fn(a, b))
        except ValueError:
            raise broadcast_error(name, np.asarray(a), np.asarray(b)) from None

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"Elementwise ``{name}`` as a bool tensor (no gradient)."
    return op


eq = _compare("equal", "eq")
ne = not_equal = _compare("not_equal", "ne")
lt = less = _compare("less", "lt")
le = less_equal = _compare("less_equal", "le")
gt = greater = _compare("greater", "gt")
ge = greater_equal = _compare("greater_equal", "ge")
logical_and = _compare("logical_and", "logical_and")
logical_or = _compare("logical_or", "logical_or")
logical_xor = _compare("logical_xor", "logical_xor")
bitwise_and = _compare("bitwise_and", "bitwise_and")
bitwise_or = _compare("bitwise_or", "bitwise_or")
bitwise_xor = _compare("bitwise_xor", "bitwise_xor")


def _predicate(function: str, name: str) -> Any:
    def op(input: Tensor) -> Tensor:
        input = as_tensor_arg(input, name)
        data = input._data
        if function == "logical_not" and type(data) is not np.ndarray:
            data = _truth(data)  # the Array API's logical_not takes bools only
        return _wrap(getattr(xp_of(input), function)(data))

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"Elementwise ``{name}`` as a bool tensor (no gradient)."
    return op


logical_not = _predicate("logical_not", "logical_not")
bitwise_not = _predicate("bitwise_invert", "bitwise_not")
isnan = _predicate("isnan", "isnan")
isinf = _predicate("isinf", "isinf")
isfinite = _predicate("isfinite", "isfinite")


def equal(input: Tensor, other: Tensor) -> bool:
    """True when both tensors have the same shape and elements."""
    return input.shape == other.shape and bool(
        np.array_equal(_backend.to_numpy(input._data), _backend.to_numpy(other._data)))


def allclose(input: Tensor, other: Tensor, rtol: float = 1e-5, atol: float = 1e-8,
             equal_nan: bool = False) -> bool:
    """True when ``|input - other| <= atol + rtol * |other|`` everywhere."""
    return bool(np.allclose(_backend.to_numpy(input._data), _backend.to_numpy(other._data),
                            rtol=rtol, atol=atol, equal_nan=equal_nan))


def isclose(input: Tensor, other: Tensor, rtol: float = 1e-5, atol: float = 1e-8,
            equal_nan: bool = False) -> Tensor:
    close = np.isclose(_backend.to_numpy(input._data), _backend.to_numpy(other._data), rtol=rtol,
                       atol=atol, equal_nan=equal_nan)
    return _wrap(_backend.to_device(close, input.device))


# ------------------------------------------------------------------ reductions


def _reduce(prim: Any, input: Tensor, dim: Any, keepdim: bool, name: str) -> Tensor:
    axis = normalize_dim(dim, input._data.ndim, name)
    if input._data.ndim == 0:
        axis = None
    return prim(input, axis=axis, keepdims=bool(keepdim), shape=input._data.shape)


def sum(input: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None,  # noqa: A001
        axis: Any = None, keepdims: bool | None = None) -> Tensor:
    """Sum over ``dim`` (all by default); bool and integer tensors sum to int64.

    >>> chainrule.ones(2, 3).sum(dim=1)
    tensor([3., 3.])
    """
    input = as_tensor_arg(input, "sum")
    if dtype is not None:
        input = input.to(dtype)
    elif dtype_of(input).kind in "biu":
        input = _wrap(_backend.astype(input._data, np.dtype(np.int64)))
    keep = keepdim if keepdims is None else keepdims
    return _reduce(reduce.sum_, input, pick_dim(dim, axis), keep, "sum")


def mean(input: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None,
         axis: Any = None, keepdims: bool | None = None) -> Tensor:
    """Arithmetic mean over ``dim`` (floating-point tensors only, as PyTorch)."""
    input = as_tensor_arg(input, "mean")
    if dtype is not None:
        input = input.to(dtype)
    if not is_floating_data(input._data):
        raise RuntimeError(
            f"mean(): could not infer output dtype. Input dtype must be floating point, got "
            f"{input.dtype}; call .float() first"
        )
    keep = keepdim if keepdims is None else keepdims
    return _reduce(reduce.mean, input, pick_dim(dim, axis), keep, "mean")


def prod(input: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """Product over ``dim`` (all by default); correct gradient with zeros in the input."""
    input = as_tensor_arg(input, "prod")
    if dtype is not None:
        input = input.to(dtype)
    if dim is not None and not isinstance(dim, (int, np.integer)):
        raise TypeError("prod(): dim must be a single int")
    return _reduce(reduce.prod, input, dim, keepdim, "prod")


def _dim_keep(dim: Any, keepdim: bool, axis: Any, keepdims: bool | None) -> tuple[Any, bool]:
    """PyTorch's ``dim``/``keepdim`` or NumPy's ``axis``/``keepdims`` (DESIGN.md)."""
    return pick_dim(dim, axis), bool(keepdim if keepdims is None else keepdims)


def amax(input: Tensor, dim: Any = (), keepdim: bool = False, *, axis: Any = None,
         keepdims: bool | None = None) -> Tensor:
    """Largest value over ``dim``; tied maxima share the gradient evenly."""
    dim, keepdim = _dim_keep(dim, keepdim, axis, keepdims)
    # dim () or None: every dim (normalize_dim); never ``dim or None``, which drops dim 0
    return _reduce(reduce.amax, as_tensor_arg(input, "amax"), dim, keepdim, "amax")


def amin(input: Tensor, dim: Any = (), keepdim: bool = False, *, axis: Any = None,
         keepdims: bool | None = None) -> Tensor:
    """Smallest value over ``dim``; tied minima share the gradient evenly."""
    dim, keepdim = _dim_keep(dim, keepdim, axis, keepdims)
    return _reduce(reduce.amin, as_tensor_arg(input, "amin"), dim, keepdim, "amin")


_ValuesIndices = namedtuple("_ValuesIndices", ["values", "indices"])


def _extremum_along(input: Tensor, dim: int, keepdim: bool, name: str, arg: Any) -> Any:
    axis = normalize_axis(dim, input._data.ndim, name)
    if input._data.ndim == 0:
        # a new tensor, as PyTorch's: writing into the result must not change the input
        return _ValuesIndices(unary.clone(input), constant_like(0, np.int64, input))
    if input._data.shape[axis] == 0:
        raise IndexError(f"{name}(): expected reduction dim {dim} to have non-zero size")
    xp = xp_of(input)
    index = getattr(xp, arg)(input._data, axis=axis, keepdims=True)
    prim = reduce.max_dim if name == "max" else reduce.min_dim
    values = prim(input, axis=axis, index=index, keepdims=keepdim, shape=input._data.shape)
    if not keepdim:
        index = xp.squeeze(index, axis=axis)
    return _ValuesIndices(values, _wrap(_backend.astype(index, np.dtype(np.int64))))


def max(input: Tensor, dim: Any = None, keepdim: bool = False, *, out: Any = None,  # noqa: A001
        axis: Any = None, keepdims: bool | None = None) -> Any:
    """``max(x)``: the largest value; ``max(x, dim)``: (values, indices) with the gradient
    routed to the first maximum's index, as PyTorch; ``max(x, other)``: elementwise."""
    dim, keepdim = _dim_keep(dim, keepdim, axis, keepdims)
    if isinstance(dim, Tensor):
        return maximum(input, dim)
    if dim is None:
        return _reduce(reduce.max_all, as_tensor_arg(input, "max"), None, False, "max")
    return _extremum_along(input, dim, keepdim, "max", "argmax")


def min(input: Tensor, dim: Any = None, keepdim: bool = False, *, out: Any = None,  # noqa: A001
        axis: Any = None, keepdims: bool | None = None) -> Any:
    """As ``max``, for the smallest value."""
    dim, keepdim = _dim_keep(dim, keepdim, axis, keepdims)
    if isinstance(dim, Tensor):
        return minimum(input, dim)
    if dim is None:
        return _reduce(reduce.min_all, as_tensor_arg(input, "min"), None, False, "min")
    return _extremum_along(input, dim, keepdim, "min", "argmin")


def argmax(input: Tensor, dim: int | None = None, keepdim: bool = False, *, axis: Any = None,
           keepdims: bool | None = None) -> Tensor:
    """Index of the (first) largest value, over the flattened tensor when ``dim`` is None."""
    return _arg("argmax", input, *_dim_keep(dim, keepdim, axis, keepdims), "argmax")


def argmin(input: Tensor, dim: int | None = None, keepdim: bool = False, *, axis: Any = None,
           keepdims: bool | None = None) -> Tensor:
    """Index of the (first) smallest value."""
    return _arg("argmin", input, *_dim_keep(dim, keepdim, axis, keepdims), "argmin")


def _arg(function: str, input: Tensor, dim: Any, keepdim: bool, name: str) -> Tensor:
    input = as_tensor_arg(input, name)
    data, xp = input._data, xp_of(input)
    fn = getattr(xp, function)
    if dim is None:
        index = fn(xp.reshape(data, (-1,)))
        if keepdim:
            index = xp.reshape(index, (1,) * data.ndim)
    else:
        index = fn(data, axis=normalize_axis(dim, data.ndim, name), keepdims=keepdim)
    return _wrap(_backend.astype(xp.asarray(index), np.dtype(np.int64)))


def var(input: Tensor, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction: Any = None, axis: Any = None, keepdims: bool | None = None) -> Tensor:
    """Variance over ``dim`` with Bessel's correction by default (``correction=1``)."""
    return _spread(reduce.var, "var", input, dim, unbiased, keepdim, correction, axis, keepdims)


def std(input: Tensor, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *,
        correction: Any = None, axis: Any = None, keepdims: bool | None = None) -> Tensor:
    """Standard deviation: sqrt of ``var`` with the same arguments; its gradient is 0 where
    a slice is constant, as PyTorch's."""
    return _spread(reduce.std, "std", input, dim, unbiased, keepdim, correction, axis, keepdims)


def _spread(prim: Any, name: str, input: Tensor, dim: Any, unbiased: bool | None,
            keepdim: bool, correction: Any, axis: Any, keepdims: bool | None) -> Tensor:
    """var or std after PyTorch's argument conventions: ``var(x, True)`` means unbiased."""
    input = as_tensor_arg(input, name)
    if not is_floating_data(input._data):
        raise RuntimeError(f"{name}(): std and var only support floating point dtypes, got "
                           f"{input.dtype}; call .float() first")
    dim, keepdim = _dim_keep(dim, keepdim, axis, keepdims)
    if isinstance(dim, bool):
        unbiased, dim = dim, None
    if correction is None:
        correction = 0 if unbiased is False else 1
    # a 0-d tensor accepts dim 0 or -1 as PyTorch does, meaning its one element
    axis = normalize_dim(dim, input._data.ndim, name) if input._data.ndim else None
    return prim(input, axis=axis, keepdims=keepdim, correction=correction,
                shape=input._data.shape)


def var_mean(input: Tensor, dim: Any = None, unbiased: bool | None = None,
             keepdim: bool = False, *, correction: Any = None) -> tuple[Tensor, Tensor]:
    return (var(input, dim, unbiased, keepdim, correction=correction),
            mean(input, dim, keepdim))


def std_mean(input: Tensor, dim: Any = None, unbiased: bool | None = None,
             keepdim: bool = False, *, correction: Any = None) -> tuple[Tensor, Tensor]:
    return (std(input, dim, unbiased, keepdim, correction=correction),
            mean(input, dim, keepdim))


def norm(input: Tensor, p: Any = "fro", dim: Any = None, keepdim: bool = False,
         dtype: Any = None) -> Tensor:
    """Vector p-norm over ``dim`` (all elements by default); gradient 0 at the zero vector."""
    input = floating(as_tensor_arg(input, "norm"))
    if dtype is not None:
        input = input.to(dtype)
    if p in ("fro", None):
        p = 2
    if p == float("inf"):
        return amax(abs(input), dim, keepdim)
    if p == float("-inf"):
        return amin(abs(input), dim, keepdim)
    if p == 0:
        return sum(cast(ne(input, 0), dtype_of(input)), dim, keepdim)
    return _reduce_norm(input, float(p), dim, keepdim)


def _reduce_norm(input: Tensor, order: float, dim: Any, keepdim: bool) -> Tensor:
    axis = normalize_dim(dim, input._data.ndim, "norm")
    if input._data.ndim == 0:
        axis = None
    return reduce.norm(input, ord=order, axis=axis, keepdims=bool(keepdim),
                       shape=input._data.shape)


def logsumexp(input: Tensor, dim: Any = None, keepdim: bool = False, *, axis: Any = None,
              keepdims: bool | None = None) -> Tensor:
    """log(sum(exp(x))) over ``dim``, computed stably (the max is factored out)."""
    dim, keepdim = _dim_keep(dim, keepdim, axis, keepdims)
    if dim is None:
        raise TypeError("logsumexp(): missing required argument 'dim'")
    input = floating(as_tensor_arg(input, "logsumexp"))
    return _reduce(reduce.logsumexp, input, dim, keepdim, "logsumexp")


def softmax(input: Tensor, dim: int, dtype: Any = None) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim``, with the max subtracted first."""
    input = floating(as_tensor_arg(input, "softmax"))
    if dtype is not None:
        input = input.to(dtype)
    axis = normalize_axis(dim, input._data.ndim, "softmax")
    return reduce.softmax(input, axis=axis if input._data.ndim else None)  # 0-d: all its axes


def log_softmax(input: Tensor, dim: int, dtype: Any = None) -> Tensor:
    """x - logsumexp(x) along ``dim``, stable for large inputs."""
    input = floating(as_tensor_arg(input, "log_softmax"))
    if dtype is not None:
        input = input.to(dtype)
    axis = normalize_axis(dim, input._data.ndim, "log_softmax")
    return reduce.log_softmax(input, axis=axis if input._data.ndim else None)  # 0-d: all its axes


def cumsum(input: Tensor, dim: int, *, dtype: Any = None) -> Tensor:
    """Running sum along ``dim``."""
    input = as_tensor_arg(input, "cumsum")
    if dtype is not None:
        input = input.to(dtype)
    elif dtype_of(input).kind in "biu":
        input = _wrap(_backend.astype(input._data, np.dtype(np.int64)))
    return reduce.cumsum(input, axis=normalize_axis(dim, input._data.ndim, "cumsum"))


# ------------------------------------------------------------------ linear algebra


def matmul(input: Tensor, other: Tensor) -> Tensor:
    """Matrix product with NumPy/PyTorch semantics for vectors, matrices and batches.

    >>> (chainrule.ones(2, 3) @ chainrule.ones(3)).shape
    chainrule.Size([2])
    """
    a, b = _pair("matmul", input, other)
    sa, sb = a._data.shape, b._data.shape
    if not sa or not sb:
        raise RuntimeError(
            f"matmul(): both arguments need to be at least 1D, but they are {len(sa)}D and "
            f"{len(sb)}D"
        )
    inner_b = sb[0] if len(sb) == 1 else sb[-2]
    if sa[-1] != inner_b:
        raise RuntimeError(
            f"matmul(): shapes {tuple(sa)} and {tuple(sb)} cannot be multiplied "
            f"({sa[-1]} != {inner_b}: the last dim of the first must equal the "
            f"{'only' if len(sb) == 1 else 'second-to-last'} dim of the second)"
        )
    if len(sa) > 2 or len(sb) > 2:
        batch_a = sa[:-2] if len(sa) > 1 else ()
        batch_b = sb[:-2] if len(sb) > 1 else ()
        if not _broadcastable(batch_a, batch_b):
            raise RuntimeError(
                f"matmul(): batch dimensions of {tuple(sa)} and {tuple(sb)} cannot be broadcast"
            )
    return linalg.matmul(a, b)


def mm(input: Tensor, mat2: Tensor) -> Tensor:
    """Product of two matrices (2-D only)."""
    if input.ndim != 2 or mat2.ndim != 2:
        raise RuntimeError(
            f"mm(): expected 2-D tensors, got {input.ndim}-D and {mat2.ndim}-D "
            f"(shapes {tuple(input.shape)} and {tuple(mat2.shape)})"
        )
    return matmul(input, mat2)


def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    """Batched product of (b, n, m) and (b, m, p) tensors."""
    if input.ndim != 3 or mat2.ndim != 3 or input.shape[0] != mat2.shape[0]:
        raise RuntimeError(
            f"bmm(): expected 3-D tensors with the same batch size, got shapes "
            f"{tuple(input.shape)} and {tuple(mat2.shape)}"
        )
    return linalg.bmm(*_pair("bmm", input, mat2))


def dot(input: Tensor, other: Tensor) -> Tensor:
    """Inner product of two 1-D tensors of the same length."""
    if input.ndim != 1 or other.ndim != 1 or input.shape[0] != other.shape[0]:
        raise RuntimeError(
            f"dot(): expected two 1-D tensors of the same length, got shapes "
            f"{tuple(input.shape)} and {tuple(other.shape)}"
        )
    return matmul(input, other)


inner = dot


def outer(input: Tensor, vec2: Tensor) -> Tensor:
    """Outer product of two 1-D tensors."""
    if input.ndim != 1 or vec2.ndim != 1:
        raise RuntimeError(f"outer(): expected 1-D tensors, got {input.ndim}-D and {vec2.ndim}-D")
    return mul(input.unsqueeze(1), vec2.unsqueeze(0))


ger = outer


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``input @ weight.T + bias`` in one fused primitive.

    >>> chainrule.linear(chainrule.ones(4, 3), chainrule.ones(2, 3)).shape
    chainrule.Size([4, 2])
    """
    x, w = _pair("linear", input, weight)
    if w._data.ndim != 2 or x._data.ndim == 0 or x._data.shape[-1] != w._data.shape[1]:
        raise RuntimeError(
            f"linear(): input of shape {tuple(x.shape)} cannot be multiplied with weight of "
            f"shape {tuple(w.shape)} (expected weight (out_features, {x.shape[-1] if x.ndim else '?'}))"
        )
    if bias is None:
        return linalg.linear(x, w)
    b = cast(as_tensor_arg(bias, "linear"), dtype_of(x))
    if b._data.shape not in ((w._data.shape[0],), ()):
        raise RuntimeError(
            f"linear(): bias of shape {tuple(b.shape)} does not match weight {tuple(w.shape)}"
        )
    return linalg.linear(x, w, b)


def einsum(equation: str, *operands: Any) -> Tensor:
    """Einstein summation, e.g. ``einsum('bij,bjk->bik', a, b)``."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    tensors = [as_tensor_arg(t, "einsum") for t in operands]
    if len({dtype_of(t) for t in tensors}) > 1:
        dtype = np.result_type(*[dtype_of(t) for t in tensors])
        tensors = [cast(t, dtype) for t in tensors]
    spec = _explicit_einsum(equation.replace(" ", ""), [t._data.ndim for t in tensors])
    for letters, t in zip(spec.split("->")[0].split(","), tensors):
        if len(set(letters)) != len(letters) and t._rg:
            raise NotImplementedError(
                f"einsum(): repeated index in one operand ('{letters}') is not differentiable "
                f"in chainrule; use diagonal() first"
            )
    try:
        return linalg.einsum(*tensors, spec=spec)
    except ValueError as error:
        shapes = ", ".join(str(tuple(t.shape)) for t in tensors)
        raise RuntimeError(f"einsum('{equation}'): operands of shapes {shapes}: {error}") from None


def _explicit_einsum(equation: str, ndims: list) -> str:
    """Expand '...' into letters and add the implicit output, so rules see one form."""
    inputs, _, output = equation.partition("->")
    terms = inputs.split(",")
    used = set(equation) - set(".,->")
    free = iter(c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" if c not in used)
    ellipsis_letters = ""
    if "..." in equation:
        width = builtins.max(n - (len(t) - 3) for t, n in zip(terms, ndims) if "..." in t)
        ellipsis_letters = "".join(next(free) for _ in range(width))
        terms = [
            t.replace("...", ellipsis_letters[width - (n - (len(t) - 3)):]) if "..." in t else t
            for t, n in zip(terms, ndims)
        ]
    if "->" in equation:
        output = output.replace("...", ellipsis_letters)
    else:
        letters = "".join(terms)
        output = ellipsis_letters + "".join(
            sorted(c for c in set(letters) if letters.count(c) == 1 and c not in ellipsis_letters)
        )
    return ",".join(terms) + "->" + output
