"""Reductions over axes, and the normalising functions built on them (softmax family).

Parameters: ``axis`` is None (all axes) or a tuple of non-negative ints, ``keepdims`` a
bool, ``shape`` the input's shape (the VJP broadcasts the gradient back to it).
"""

from __future__ import annotations

import math

import numpy as np

from ._primitive import LINEAR, OUT, SLICEWISE, SYMMETRIC, primitive


def keep_reduced(xp, g, shape, axis, keepdims):
    """Reinsert the reduced axes of ``g`` as size 1 so that it broadcasts against the input."""
    if keepdims or axis is None:
        return g if keepdims or g.ndim == len(shape) else g.reshape((1,) * len(shape))
    kept = list(g.shape)
    for a in sorted(axis):
        kept.insert(a, 1)
    return g.reshape(tuple(kept))


@primitive("sum", jvp=LINEAR)
def sum_(x, axis, keepdims, shape):
    return np.sum(x, axis=axis, keepdims=keepdims)


@sum_.defvjp
def _(xp, g, saved, p, needs):
    # d/dx_i sum(x) = 1: every input element gets the gradient of its sum
    g = keep_reduced(xp, g, p["shape"], p["axis"], p["keepdims"])
    return (xp.broadcast_to(g, p["shape"]),)


@primitive("mean", jvp=LINEAR)
def mean(x, axis, keepdims, shape):
    return np.mean(x, axis=axis, keepdims=keepdims)


@mean.defvjp
def _(xp, g, saved, p, needs):
    shape, axis = p["shape"], p["axis"]
    count = 1
    for a in range(len(shape)) if axis is None else axis:
        count *= shape[a]
    g = keep_reduced(xp, g, shape, axis, p["keepdims"])
    return (xp.broadcast_to(g / count, shape),)  # d/dx_i mean(x) = 1/n


@primitive("prod", save=(0, OUT), jvp=SLICEWISE)
def prod(x, axis, keepdims, shape):
    return np.prod(x, axis=axis, keepdims=keepdims)


@prod.defvjp
def _(xp, g, saved, p, needs):
    # d/dx_i prod(x) = prod_{j != i} x_j, the product of the others.
    x, out = saved
    shape, axis = p["shape"], p["axis"]
    g = keep_reduced(xp, g, shape, axis, p["keepdims"])
    is_zero = x == 0
    zeros = is_zero.sum(axis=axis, keepdims=True)
    infinite = (~(xp.abs(x) < math.inf)).sum(axis=axis, keepdims=True)  # inf or NaN
    if bool(((zeros > 1) | ((zeros > 0) & (infinite > 0))).any()):
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
    at_zero = safe.prod(axis=axis, keepdims=True)
    return (g * xp.where(is_zero, at_zero, out / safe),)


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
    rows = xp.expand_dims(xp.permute_dims(x, order).reshape(lead + (n,)), -2)  # (..., 1, n)
    others = xp.where(xp.eye(n, dtype=bool), 1.0, rows).prod(axis=-1)  # (..., n)
    others = others.reshape(lead + tuple(shape[a] for a in reduced))
    return xp.permute_dims(others, tuple(order.index(a) for a in range(ndim)))


def _extremum(reducer):
    def forward(x, axis, keepdims, shape):
        return reducer(x, axis=axis, keepdims=keepdims)

    return forward


amax = primitive("amax", save=(0, OUT), jvp=SLICEWISE)(_extremum(np.amax))
amin = primitive("amin", save=(0, OUT), jvp=SLICEWISE)(_extremum(np.amin))


@amax.defvjp
@amin.defvjp
def _(xp, g, saved, p, needs):
    # the gradient is shared evenly among the elements equal to the extremum, and among the
    # NaNs where the extremum is NaN (as torch.max(x); torch.amax(x, dim) gives that slice
    # NaN gradients instead)
    x, out = saved
    shape, axis, keepdims = p["shape"], p["axis"], p["keepdims"]
    out = keep_reduced(xp, out, shape, axis, keepdims)
    g = keep_reduced(xp, g, shape, axis, keepdims)
    hit = (x == out) | ((x != x) & (out != out))
    count = hit.sum(axis=axis, keepdims=True)
    return (xp.where(hit, g / count, 0.0),)


@primitive("logsumexp", save=(0, OUT), jvp=SLICEWISE)
def logsumexp(x, axis, keepdims, shape):
    # initial=-inf: a slice may be empty (its logsumexp is -inf, as PyTorch's)
    peak = np.amax(x, axis=axis, keepdims=True, initial=-np.inf)
    peak = np.where(np.isfinite(peak), peak, 0)
    out = np.log(np.sum(np.exp(x - peak), axis=axis, keepdims=True)) + peak
    if keepdims:
        return out
    return out.reshape(()) if axis is None else np.squeeze(out, axis=axis)


@logsumexp.defvjp
def _(xp, g, saved, p, needs):
    # d/dx_i log sum_j e^{x_j} = e^{x_i - lse}
    x, out = saved
    shape, axis, keepdims = p["shape"], p["axis"], p["keepdims"]
    out = keep_reduced(xp, out, shape, axis, keepdims)
    g = keep_reduced(xp, g, shape, axis, keepdims)
    return (g * xp.exp(x - out),)


@primitive("norm", save=(0, OUT), jvp=SLICEWISE)
def norm(x, ord, axis, keepdims, shape):  # noqa: A002
    if ord == 2:
        return np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims))
    return np.sum(np.abs(x) ** ord, axis=axis, keepdims=keepdims) ** (1.0 / ord)


@norm.defvjp
def _(xp, g, saved, p, needs):
    # d/dx ||x||_p = sign(x) |x|^(p-1) / ||x||^(p-1); 0 where the norm is 0 (PyTorch)
    x, out = saved
    shape, axis, keepdims, order = p["shape"], p["axis"], p["keepdims"], p["ord"]
    out = keep_reduced(xp, out, shape, axis, keepdims)
    g = keep_reduced(xp, g, shape, axis, keepdims)
    safe = xp.where(out == 0, 1.0, out)
    if order == 2:
        scaled = x / safe
    elif order == 1:
        scaled = xp.sign(x)
    else:
        scaled = xp.sign(x) * xp.abs(x) ** (order - 1) / safe ** (order - 1)
    return (xp.where(out == 0, 0.0, g * scaled),)


@primitive("softmax", save=(OUT,), jvp=SYMMETRIC)
def softmax(x, axis):
    # initial=-inf: the dim may have size 0 (the result is then empty, as PyTorch's)
    shifted = np.exp(x - np.amax(x, axis=axis, keepdims=True, initial=-np.inf))
    out = shifted / np.sum(shifted, axis=axis, keepdims=True)
    # contiguous, as PyTorch's (NumPy keeps a transposed input's order): later views match
    return out if out.flags.c_contiguous else out.copy()


@softmax.defvjp
def _(xp, g, saved, p, needs):
    # dy_i/dx_j = y_i (delta_ij - y_j)  =>  grad = y * (g - sum(g * y))
    y = saved[0]
    return (y * (g - (g * y).sum(axis=p["axis"], keepdims=True)),)


@primitive("log_softmax", save=(OUT,))
def log_softmax(x, axis):
    shifted = x - np.amax(x, axis=axis, keepdims=True, initial=-np.inf)
    out = shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    return out if out.flags.c_contiguous else out.copy()  # contiguous, as softmax


@log_softmax.defvjp
def _(xp, g, saved, p, needs):
    # d/dx_j (x_i - lse(x)) = delta_ij - softmax_j  =>  grad = g - softmax * sum(g)
    y = saved[0]
    return (g - xp.exp(y) * g.sum(axis=p["axis"], keepdims=True),)


@log_softmax.defjvp
def _(xp, tangents, inputs, out, p):
    # J = I - 1 softmax^T (not symmetric)  =>  J t = t - sum(softmax * t)
    t = tangents[0]
    return t - (xp.exp(out) * t).sum(axis=p["axis"], keepdims=True)


@primitive("cumsum", jvp=LINEAR)
def cumsum(x, axis):
    return np.cumsum(x, axis=axis).reshape(x.shape)  # NumPy makes a 0-d input 1-d


@cumsum.defvjp
def _(xp, g, saved, p, needs):
    # each x_i feeds every later partial sum: the gradient is a reversed cumulative sum
    axis = p["axis"]
    if g.ndim == 0:
        return (g,)  # the cumulative sum of one number is that number
    return (xp.flip(xp.cumsum(xp.flip(g, axis=axis), axis=axis), axis=axis),)
