"""Reductions over axes, and the normalising functions built on them (softmax family).

Parameters: ``axis`` is None (all axes) or a tuple of non-negative ints, ``keepdims`` a
bool, ``shape`` the input's shape (the VJP broadcasts the gradient back to it).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from . import kernels
from ._primitive import LINEAR, OUT, SLICEWISE, SYMMETRIC, primitive


def keep_reduced(xp, g, shape, axis, keepdims):
    """Reinsert the reduced axes of ``g`` as size 1 so that it broadcasts against the input."""
    if keepdims or axis is None:
        return g if keepdims or g.ndim == len(shape) else xp.reshape(g, (1,) * len(shape))
    kept = list(g.shape)
    for a in sorted(axis):
        kept.insert(a, 1)
    return xp.reshape(g, tuple(kept))


def _with_reduced_axes(xp, p, *arrays):
    """A reduction's output or gradient arrays with the reduced axes reinserted as size 1
    (``keep_reduced``), from the primitive's params."""
    return tuple(keep_reduced(xp, a, p["shape"], p["axis"], p["keepdims"]) for a in arrays)


def _by_dim(op: str) -> Callable:
    """The node's name for a reduction whose PyTorch overload 0 reduces every dim and
    overload 1 takes ``dim`` (``sum()``: SumBackward0, ``sum(0)``: SumBackward1)."""
    whole, along = f"{op}Backward0", f"{op}Backward1"
    return lambda node: whole if node.params["axis"] is None else along


@primitive("sum", jvp=LINEAR, backward_name=_by_dim("Sum"))
def sum_(xp, x, axis, keepdims, shape):
    narrow = kernels.accumulate_wide(xp, x)
    if narrow is not None:  # bfloat16: summed in float32 and rounded once, as PyTorch
        return xp.astype(xp.sum(x, axis=axis, keepdims=keepdims, dtype=kernels.FLOAT32), narrow)
    return xp.sum(x, axis=axis, keepdims=keepdims)


@sum_.defvjp
def _(xp, g, saved, p, needs):
    # d/dx_i sum(x) = 1: every input element gets the gradient of its sum
    g = keep_reduced(xp, g, p["shape"], p["axis"], p["keepdims"])
    return (xp.broadcast_to(g, p["shape"]),)


@primitive("mean", jvp=LINEAR, backward_name=_by_dim("Mean"))
def mean(xp, x, axis, keepdims, shape):
    narrow = kernels.accumulate_wide(xp, x)
    if narrow is not None:  # bfloat16: averaged in float32 and rounded once, as PyTorch
        return xp.astype(xp.mean(xp.astype(x, kernels.FLOAT32), axis=axis, keepdims=keepdims),
                         narrow)
    return xp.mean(x, axis=axis, keepdims=keepdims)


@mean.defvjp
def _(xp, g, saved, p, needs):
    shape, axis = p["shape"], p["axis"]
    count = 1
    for a in range(len(shape)) if axis is None else axis:
        count *= shape[a]
    g = keep_reduced(xp, g, shape, axis, p["keepdims"])
    return (xp.broadcast_to(g / count, shape),)  # d/dx_i mean(x) = 1/n


@primitive("prod", save=(0, OUT), jvp=SLICEWISE, backward_name=_by_dim("Prod"))
def prod(xp, x, axis, keepdims, shape):
    return xp.prod(x, axis=axis, keepdims=keepdims)


@prod.defvjp
def _(xp, g, saved, p, needs):
    # d/dx_i prod(x) = prod_{j != i} x_j, the product of the others.
    x, out = saved
    shape, axis = p["shape"], p["axis"]
    g = keep_reduced(xp, g, shape, axis, p["keepdims"])
    is_zero = x == 0
    zeros = _count(xp, is_zero, axis, x.dtype)
    infinite = _count(xp, ~(xp.abs(x) < math.inf), axis, x.dtype)  # inf or NaN
    if bool(xp.any((zeros > 1) | ((zeros > 0) & (infinite > 0)))):
        # a slice with two zeros: every product of others is 0 here, yet the one left out at
        # a zero has a non-zero derivative in the other zero; only the literal product keeps
        # that for the next order. With a zero and an inf or NaN, out = NaN and out/x_i
        # would be NaN where the literal product is not (PyTorch computes it exactly there).
        return (g * _products_of_others(xp, x, shape, axis),)
    # at most one zero per slice: out/x_i off the zero (0 if the slice has one), and at the
    # zero the product of the non-zero others. Both are products of x, so they differentiate
    # again correctly.
    out = keep_reduced(xp, out, shape, axis, p["keepdims"])
    safe = xp.where(is_zero, 1.0, x)
    at_zero = xp.prod(safe, axis=axis, keepdims=True)
    return (g * xp.where(is_zero, at_zero, out / safe),)


def _count(xp, flags, axis, dtype):
    """How many ``flags`` are set per slice (kept axes), in a float ``dtype``: the Array API
    sums no bools."""
    return xp.sum(xp.astype(flags, dtype), axis=axis, keepdims=True)


def _products_of_others(xp, x, shape, axis):
    """prod_{j != i} x_j over the reduced axes, for every i: the reduced axes flattened
    into one of length n, x repeated n times with x_i replaced by 1 in the i-th copy.
    O(n^2) work, so only for slices where out/x_i cannot be used."""
    ndim = len(shape)
    reduced = tuple(range(ndim)) if axis is None else tuple(axis)
    kept = tuple(a for a in range(ndim) if a not in reduced)
    order = kept + reduced
    n = 1
    for a in reduced:
        n *= shape[a]
    lead = tuple(shape[a] for a in kept)
    rows = xp.expand_dims(xp.reshape(xp.permute_dims(x, order), lead + (n,)), -2)  # (..., 1, n)
    others = xp.prod(xp.where(xp.eye(n, dtype=x.dtype, device=x.device) > 0, 1.0, rows), axis=-1)  # (..., n)
    others = xp.reshape(others, lead + tuple(shape[a] for a in reduced))
    return xp.permute_dims(others, tuple(order.index(a) for a in range(ndim)))


@primitive("amax", save=(0, OUT), jvp=SLICEWISE)
def amax(xp, x, axis, keepdims, shape):
    return xp.max(x, axis=axis, keepdims=keepdims)


@primitive("amin", save=(0, OUT), jvp=SLICEWISE)
def amin(xp, x, axis, keepdims, shape):
    return xp.min(x, axis=axis, keepdims=keepdims)


@amax.defvjp
@amin.defvjp
def _(xp, g, saved, p, needs):
    # the gradient is shared evenly among the elements equal to the extremum, and among the
    # NaNs where the extremum is NaN (as torch.max(x); torch.amax(x, dim) gives that slice
    # NaN gradients instead)
    x, out = saved
    out, g = _with_reduced_axes(xp, p, out, g)
    hit = (x == out) | ((x != x) & (out != out))
    count = _count(xp, hit, p["axis"], g.dtype)
    return (xp.where(hit, g / count, 0.0),)


# max() and min() over every element: amax's and amin's math under PyTorch's names
max_all = amax.renamed("max_all", "MaxBackward1")
min_all = amin.renamed("min_all", "MinBackward1")


# max(dim) and min(dim): ``index`` is the arg-extremum along ``axis`` (kept as size 1), so
# the values are linear in x: x read at index
@primitive("max_dim", backward_name="MaxBackward0", jvp=LINEAR)
def max_dim(xp, x, axis, index, keepdims, shape):
    out = kernels.gather(xp, x, axis, index)
    return out if keepdims else xp.squeeze(out, axis=axis)


@max_dim.defvjp
def _(xp, g, saved, p, needs):
    # the whole gradient goes to the one position picked (the first extremum, as PyTorch)
    axis = p["axis"]
    g = g if p["keepdims"] else xp.expand_dims(g, axis)
    zeros = xp.zeros(p["shape"], dtype=g.dtype, device=g.device)
    return (xp.scatter_add(zeros, axis, p["index"], g),)


min_dim = max_dim.renamed("min_dim", "MinBackward0")


def _degrees_of_freedom(shape, axis, correction):
    """n - correction, for the n elements each output of var or std averages over."""
    count = 1
    for a in range(len(shape)) if axis is None else axis:
        count *= shape[a]
    return count - correction


def _variance(xp, x, axis, keepdims, dof):
    """sum((x - mean)^2) / max(dof, 0): two passes, as PyTorch; inf or NaN where dof <= 0."""
    centered = x - xp.mean(x, axis=axis, keepdims=True)
    with kernels.quiet_division():
        return xp.sum(centered * centered, axis=axis, keepdims=keepdims) / max(dof, 0)


@primitive("var", save=(0,), jvp=SLICEWISE)
def var(xp, x, axis, keepdims, correction, shape):
    dof = _degrees_of_freedom(shape, axis, correction)
    narrow = kernels.accumulate_wide(xp, x)
    if narrow is not None:  # bfloat16: computed in float32 and rounded once, as PyTorch
        return xp.astype(_variance(xp, xp.astype(x, kernels.FLOAT32), axis, keepdims, dof),
                         narrow)
    return _variance(xp, x, axis, keepdims, dof)


def _centered_over_dof(xp, x, p):
    """(x - mean) / (n - correction); the factor is inf where n <= correction (PyTorch's
    2 / 0 = inf there), so the gradient is NaN at the mean and infinite elsewhere."""
    shape, axis = p["shape"], p["axis"]
    dof = _degrees_of_freedom(shape, axis, p["correction"])
    count = dof + p["correction"]
    centered = x - xp.sum(x, axis=axis, keepdims=True) / count
    return centered * (1.0 / dof if dof > 0 else math.inf)


@var.defvjp
def _(xp, g, saved, p, needs):
    # d/dx_i sum_j (x_j - m)^2 / (n - c) = 2 (x_i - m) / (n - c): the terms through the
    # mean m sum to 0
    (g,) = _with_reduced_axes(xp, p, g)
    return (g * (2.0 * _centered_over_dof(xp, saved[0], p)),)


@primitive("std", save=(0, OUT), jvp=SLICEWISE)
def std(xp, x, axis, keepdims, correction, shape):
    dof = _degrees_of_freedom(shape, axis, correction)
    narrow = kernels.accumulate_wide(xp, x)
    if narrow is not None:  # bfloat16: computed in float32 and rounded once, as PyTorch
        wide = _variance(xp, xp.astype(x, kernels.FLOAT32), axis, keepdims, dof)
        return xp.astype(xp.sqrt(wide), narrow)
    return xp.sqrt(_variance(xp, x, axis, keepdims, dof))


@std.defvjp
def _(xp, g, saved, p, needs):
    # d/dx_i sqrt(var) = (x_i - m) / ((n - c) std). A constant slice (std = 0) is a kink,
    # where PyTorch defines the gradient as 0: selected, so that no inf or NaN leaks in
    x, out = saved
    out, g = _with_reduced_axes(xp, p, out, g)
    safe = xp.where(out == 0, 1.0, out)
    return (xp.where(out == 0, 0.0, g * _centered_over_dof(xp, x, p) / safe),)


def _peak(xp, x, axis):
    """The max over ``axis`` (kept as size-1 axes); -inf where a slice is empty (then its
    logsumexp is -inf and its softmax empty, as PyTorch's)."""
    if math.prod(x.shape):
        return xp.max(x, axis=axis, keepdims=True)
    kept = tuple(1 if axis is None or d in axis else n for d, n in enumerate(x.shape))
    return xp.full(kept, -math.inf, dtype=x.dtype)


@primitive("logsumexp", save=(0, OUT), jvp=SLICEWISE)
def logsumexp(xp, x, axis, keepdims, shape):
    peak = _peak(xp, x, axis)
    peak = xp.where(xp.isfinite(peak), peak, 0.0)
    out = xp.log(xp.sum(xp.exp(x - peak), axis=axis, keepdims=True)) + peak
    if keepdims:
        return out
    return xp.reshape(out, ()) if axis is None else xp.squeeze(out, axis=axis)


@logsumexp.defvjp
def _(xp, g, saved, p, needs):
    # d/dx_i log sum_j e^{x_j} = e^{x_i - lse}
    x, out = saved
    out, g = _with_reduced_axes(xp, p, out, g)
    return (g * xp.exp(x - out),)


@primitive("norm", save=(0, OUT), jvp=SLICEWISE, backward_name="LinalgVectorNormBackward0")
def norm(xp, x, ord, axis, keepdims, shape):  # noqa: A002
    if ord == 2:
        return xp.sqrt(xp.sum(x * x, axis=axis, keepdims=keepdims))
    return xp.sum(xp.abs(x) ** ord, axis=axis, keepdims=keepdims) ** (1.0 / ord)


@norm.defvjp
def _(xp, g, saved, p, needs):
    # d/dx ||x||_p = sign(x) |x|^(p-1) / ||x||^(p-1); 0 where the norm is 0 (PyTorch)
    x, out = saved
    out, g = _with_reduced_axes(xp, p, out, g)
    order = p["ord"]
    safe = xp.where(out == 0, 1.0, out)
    if order == 2:
        scaled = x / safe
    elif order == 1:
        scaled = xp.sign(x)
    else:
        scaled = xp.sign(x) * xp.abs(x) ** (order - 1) / safe ** (order - 1)
    return (xp.where(out == 0, 0.0, g * scaled),)


@primitive("softmax", save=(OUT,), jvp=SYMMETRIC)
def softmax(xp, x, axis):
    narrow = kernels.accumulate_wide(xp, x)
    if narrow is not None:  # bfloat16: computed in float32 and rounded once, as PyTorch
        return xp.astype(softmax.forward(xp, xp.astype(x, kernels.FLOAT32), axis), narrow)
    shifted = xp.exp(x - _peak(xp, x, None if axis is None else (axis,)))
    out = shifted / xp.sum(shifted, axis=axis, keepdims=True)
    # contiguous, as PyTorch's (NumPy keeps a transposed input's order): later views match
    return kernels.contiguous(xp, out)


@softmax.defvjp
def _(xp, g, saved, p, needs):
    # dy_i/dx_j = y_i (delta_ij - y_j)  =>  grad = y * (g - sum(g * y))
    y = saved[0]
    return (y * (g - xp.sum(g * y, axis=p["axis"], keepdims=True)),)


@primitive("log_softmax", save=(OUT,))
def log_softmax(xp, x, axis):
    narrow = kernels.accumulate_wide(xp, x)
    if narrow is not None:  # bfloat16: computed in float32 and rounded once, as PyTorch
        return xp.astype(log_softmax.forward(xp, xp.astype(x, kernels.FLOAT32), axis), narrow)
    shifted = x - _peak(xp, x, None if axis is None else (axis,))
    out = shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))
    return kernels.contiguous(xp, out)  # as softmax


@log_softmax.defvjp
def _(xp, g, saved, p, needs):
    # d/dx_j (x_i - lse(x)) = delta_ij - softmax_j  =>  grad = g - softmax * sum(g)
    y = saved[0]
    return (g - xp.exp(y) * xp.sum(g, axis=p["axis"], keepdims=True),)


@log_softmax.defjvp
def _(xp, tangents, inputs, out, p):
    # J = I - 1 softmax^T (not symmetric)  =>  J t = t - sum(softmax * t)
    t = tangents[0]
    return t - xp.sum(xp.exp(out) * t, axis=p["axis"], keepdims=True)


@primitive("cumsum", jvp=LINEAR)
def cumsum(xp, x, axis):
    if x.ndim == 0:
        return kernels.copy(xp, x)  # the running sum of one number is that number
    return kernels.cumsum(xp, x, axis)


@cumsum.defvjp
def _(xp, g, saved, p, needs):
    # each x_i feeds every later partial sum: the gradient is a reversed cumulative sum
    axis = p["axis"]
    if g.ndim == 0:
        return (g,)  # the cumulative sum of one number is that number
    return (xp.flip(xp.cumsum(xp.flip(g, axis=axis), axis=axis), axis=axis),)
