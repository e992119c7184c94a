"""Reductions over axes, and the normalising functions built on them (softmax family).

Parameters: ``axis`` is None (all axes) or a tuple of non-negative ints, ``keepdims`` a
bool, ``shape`` the input's shape (the VJP broadcasts the gradient back to it).
"""

from __future__ import annotations

import numpy as np

from ._primitive import OUT, primitive


def keep_reduced(xp, g, shape, axis, keepdims):
    """Reinsert the reduced axes of ``g`` as size 1 so that it broadcasts against the input."""
    if keepdims or axis is None:
        return g if keepdims or g.ndim == len(shape) else g.reshape((1,) * len(shape))
    kept = list(g.shape)
    for a in sorted(axis):
        kept.insert(a, 1)
    return g.reshape(tuple(kept))


@primitive("sum")
def sum_(x, axis, keepdims, shape):
    return np.sum(x, axis=axis, keepdims=keepdims)


@sum_.defvjp
def _(xp, g, saved, p, needs):
    # d/dx_i sum(x) = 1: every input element gets the gradient of its sum
    g = keep_reduced(xp, g, p["shape"], p["axis"], p["keepdims"])
    return (xp.broadcast_to(g, p["shape"]),)


@primitive("mean")
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


@primitive("prod", save=(0, OUT))
def prod(x, axis, keepdims, shape):
    return np.prod(x, axis=axis, keepdims=keepdims)


@prod.defvjp
def _(xp, g, saved, p, needs):
    # d/dx_i prod(x) = prod of the others: out/x_i where x_i != 0; where x has one zero, its
    # position gets the product of the non-zero others; two or more zeros give 0 everywhere.
    x, out = saved
    shape, axis = p["shape"], p["axis"]
    g = keep_reduced(xp, g, shape, axis, p["keepdims"])
    out = keep_reduced(xp, out, shape, axis, p["keepdims"])
    is_zero = x == 0
    safe = xp.where(is_zero, 1.0, x)
    zeros = is_zero.sum(axis=axis, keepdims=True)
    others_nonzero = safe.prod(axis=axis, keepdims=True)
    at_zero = xp.where(zeros == 1, others_nonzero, 0.0)
    return (g * xp.where(is_zero, at_zero, out / safe),)


def _extremum(reducer):
    def forward(x, axis, keepdims, shape):
        return reducer(x, axis=axis, keepdims=keepdims)

    return forward


amax = primitive("amax", save=(0, OUT))(_extremum(np.amax))
amin = primitive("amin", save=(0, OUT))(_extremum(np.amin))


@amax.defvjp
@amin.defvjp
def _(xp, g, saved, p, needs):
    # the gradient is shared evenly among the elements equal to the extremum (PyTorch)
    x, out = saved
    shape, axis, keepdims = p["shape"], p["axis"], p["keepdims"]
    out = keep_reduced(xp, out, shape, axis, keepdims)
    g = keep_reduced(xp, g, shape, axis, keepdims)
    hit = x == out
    count = hit.sum(axis=axis, keepdims=True)
    return (xp.where(hit, g / count, 0.0),)


@primitive("logsumexp", save=(0, OUT))
def logsumexp(x, axis, keepdims, shape):
    peak = np.amax(x, axis=axis, keepdims=True)
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


@primitive("norm", save=(0, OUT))
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


@primitive("softmax", save=(OUT,))
def softmax(x, axis):
    shifted = np.exp(x - np.amax(x, axis=axis, keepdims=True))
    return shifted / np.sum(shifted, axis=axis, keepdims=True)


@softmax.defvjp
def _(xp, g, saved, p, needs):
    # dy_i/dx_j = y_i (delta_ij - y_j)  =>  grad = y * (g - sum(g * y))
    y = saved[0]
    return (y * (g - (g * y).sum(axis=p["axis"], keepdims=True)),)


@primitive("log_softmax", save=(OUT,))
def log_softmax(x, axis):
    shifted = x - np.amax(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


@log_softmax.defvjp
def _(xp, g, saved, p, needs):
    # d/dx_j (x_i - lse(x)) = delta_ij - softmax_j  =>  grad = g - softmax * sum(g)
    y = saved[0]
    return (g - xp.exp(y) * g.sum(axis=p["axis"], keepdims=True),)


@primitive("cumsum")
def cumsum(x, axis):
    return np.cumsum(x, axis=axis).reshape(x.shape)  # NumPy makes a 0-d input 1-d


@cumsum.defvjp
def _(xp, g, saved, p, needs):
    # each x_i feeds every later partial sum: the gradient is a reversed cumulative sum
    axis = p["axis"]
    if g.ndim == 0:
        return (g,)  # the cumulative sum of one number is that number
    return (xp.flip(xp.cumsum(xp.flip(g, axis=axis), axis=axis), axis=axis),)
