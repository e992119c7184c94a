"""Activation functions as single primitives: one node each, named as PyTorch names it
(``LeakyReluBackward0``, ``EluBackward0``, ...), with the forward written in a few passes
over memory instead of the five to ten ops of its composition.

Measured on a (1024, 2048) float32 input, forward + backward, against the compositions
they replace (benchmarks/NOTES.md §35). Each rule's comment gives the derivative; the
rules use only the rule namespace, so they serve double backward too. Python-float
parameters keep the input's dtype, as a tensor-with-scalar op does.
"""

from __future__ import annotations

import math

import numpy as np

from . import kernels
from ._primitive import ELEMENTWISE, primitive


def _fast(x) -> bool:
    """Whether the NumPy kernels with out= buffers run on ``x`` (NumPy computes on a 0-d
    array into a scalar, which out= cannot take)."""
    return type(x) is np.ndarray and x.ndim > 0


@primitive("leaky_relu", save=(0,), jvp=ELEMENTWISE)
def leaky_relu(xp, x, negative_slope):
    # x for x > 0, s x otherwise, without a branch: max(x, s x) when s <= 1, min(x, s x)
    # when s > 1 (either way the larger or smaller of the two is the right one; NaN kept)
    scaled = x * negative_slope
    pick = xp.maximum if negative_slope <= 1 else xp.minimum
    if _fast(x):
        return pick(x, scaled, out=scaled)
    return pick(x, scaled)


@leaky_relu.defvjp
def _(xp, g, saved, p, needs):
    # 1 for x > 0, s otherwise (at 0 too); for 0 <= s <= 1 that factor is max([x > 0], s),
    # a multiply instead of a select (1.2 against 3.5 ms on 2M float32)
    x, slope = saved[0], p["negative_slope"]
    if 0 <= slope <= 1:
        return (g * xp.maximum(xp.astype(x > 0, g.dtype), slope),)
    return (xp.where(x > 0, g, g * slope),)


@primitive("elu", save=(0,), jvp=ELEMENTWISE)
def elu(xp, x, alpha, scale, input_scale):
    # PyTorch's elu kernel: scale x for x > 0, scale alpha (e^(input_scale x) - 1) otherwise,
    # as the sum of scale max(x, 0) and scale alpha expm1(input_scale min(x, 0)), of which
    # one term is zero at every x (no branch; expm1 cannot overflow on min(x, 0)); an input
    # of -0 gives +0 where PyTorch gives -0
    if _fast(x):
        negative = np.minimum(x, 0)
        if input_scale != 1:
            negative *= input_scale
        np.expm1(negative, out=negative)
        negative *= alpha * scale
        positive = np.maximum(x, 0)
        if scale != 1:
            positive *= scale
        positive += negative
        return positive
    negative = xp.expm1(xp.minimum(x, 0) * input_scale) * (alpha * scale)
    return xp.maximum(x, 0) * scale + negative


@elu.defvjp
def _(xp, g, saved, p, needs):
    # scale for x > 0; scale alpha input_scale e^(input_scale x) otherwise (x = 0 included).
    # When alpha input_scale = 1 (elu's default, celu) the second is scale at x = 0 and
    # both are scale e^(input_scale min(x, 0)): no select
    x = saved[0]
    alpha, scale, input_scale = p["alpha"], p["scale"], p["input_scale"]
    below = xp.exp(xp.minimum(x, 0) * input_scale) * (scale * (alpha * input_scale))
    if alpha * input_scale == 1:
        return (g * below,)
    return (xp.where(x > 0, g * scale, g * below),)


# celu(x, alpha) = elu(x, alpha, 1, 1/alpha), under PyTorch's own name for it
celu = elu.renamed("celu", "CeluBackward0")


@primitive("silu", save=(0,), extras=True, jvp=ELEMENTWISE)
def silu(xp, x):
    # x sigmoid(x); the sigmoid is kept for the backward
    s = kernels.sigmoid(xp, x)
    return x * s, (s,)


@silu.defvjp
def _(xp, g, saved, p, needs):
    # d/dx x s(x) = s (1 + x (1 - s)); a recorded backward recomputes s from x so that
    # its own derivative in x is kept
    x = saved[0]
    s = saved[1] if _fast(x) else xp.sigmoid(x)
    return (g * s * (1 + x * (1 - s)),)


@primitive("log_sigmoid", save=(0,), jvp=ELEMENTWISE)
def log_sigmoid(xp, x):
    # log(1 / (1 + e^-x)) = min(x, 0) - log(1 + e^-|x|): no overflow on either side
    if _fast(x):
        tail = np.abs(x)
        np.negative(tail, out=tail)
        np.exp(tail, out=tail)
        np.log1p(tail, out=tail)
        out = np.minimum(x, 0)
        out -= tail
        return out
    return xp.minimum(x, 0) - xp.log1p(xp.exp(-xp.abs(x)))


@log_sigmoid.defvjp
def _(xp, g, saved, p, needs):
    return (g * xp.sigmoid(-saved[0]),)  # d/dx log s(x) = 1 - s(x) = s(-x)


@primitive("softplus", save=(0,), jvp=ELEMENTWISE)
def softplus(xp, x, beta, threshold):
    # PyTorch's: x where beta x > threshold, else log(1 + e^(beta x)) / beta, the latter
    # as max(t, 0) + log(1 + e^-|t|) with t = beta x, which overflows nowhere (float16's
    # e^t does from t = 11)
    scaled = x * beta if beta != 1 else x
    if _fast(x):
        smooth = np.abs(scaled)
        np.negative(smooth, out=smooth)
        np.exp(smooth, out=smooth)
        np.log1p(smooth, out=smooth)
        smooth += np.maximum(scaled, 0)
        if beta != 1:
            smooth /= beta
        return kernels.select(np, scaled > threshold, x, smooth)
    smooth = xp.maximum(scaled, 0) + xp.log1p(xp.exp(-xp.abs(scaled)))
    return xp.where(scaled > threshold, x, smooth / beta if beta != 1 else smooth)


@softplus.defvjp
def _(xp, g, saved, p, needs):
    # 1 where beta x > threshold, else e^(beta x) / (e^(beta x) + 1) = sigmoid(beta x)
    x = saved[0]
    beta = p["beta"]
    scaled = x * beta if beta != 1 else x
    return (xp.where(scaled > p["threshold"], g, g * xp.sigmoid(scaled)),)


@primitive("hardtanh", save=(0,), jvp=ELEMENTWISE)
def hardtanh(xp, x, min_val, max_val):
    return xp.clip(x, min_val, max_val)  # NaN passes through, as PyTorch's clamp


@hardtanh.defvjp
def _(xp, g, saved, p, needs):
    # 1 strictly inside (min, max), 0 at and beyond the bounds and at a NaN (PyTorch's)
    x = saved[0]
    outside = ~((x > p["min_val"]) & (x < p["max_val"]))
    return (xp.where(outside, 0.0, g),)  # a zero where true: the select's two-pass case


@primitive("hardsigmoid", save=(0,), jvp=ELEMENTWISE)
def hardsigmoid(xp, x):
    # PyTorch's: min(max(x + 3, 0), 6) / 6
    shifted = x + 3
    if _fast(x):
        np.clip(shifted, 0, 6, out=shifted)
        shifted /= 6
        return shifted
    return xp.clip(shifted, 0, 6) / 6


@hardsigmoid.defvjp
def _(xp, g, saved, p, needs):
    # 1/6 strictly inside (-3, 3), 0 elsewhere and at a NaN (PyTorch's)
    x = saved[0]
    return (xp.where(~((x > -3) & (x < 3)), 0.0, g / 6),)


@primitive("hardswish", save=(0,), jvp=ELEMENTWISE)
def hardswish(xp, x):
    # PyTorch's: x min(max(x + 3, 0), 6) / 6, in that order
    shifted = x + 3
    if _fast(x):
        np.clip(shifted, 0, 6, out=shifted)
        shifted *= x
        shifted /= 6
        return shifted
    return x * xp.clip(shifted, 0, 6) / 6


@hardswish.defvjp
def _(xp, g, saved, p, needs):
    # 0 up to -3 inclusive, x/3 + 1/2 strictly inside (-3, 3), 1 from 3 on and at a NaN
    # (PyTorch's)
    x = saved[0]
    slope = xp.where(x < 3, x / 3 + 0.5, 1.0)
    return (g * xp.where(x <= -3, 0.0, slope),)


_SQRT_HALF = 1 / math.sqrt(2)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_KAPPA = 0.044715  # the cubic term of PyTorch's tanh approximation


@primitive("gelu", save=(0,), extras=True, jvp=ELEMENTWISE)
def gelu(xp, x, approximate):
    # exact: x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2;
    # "tanh": x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2. The bracket is kept for the
    # backward (a plain backward then needs no second erf or tanh)
    if approximate == "tanh":
        inner = x * x
        inner *= _KAPPA
        inner += 1
        inner *= x
        inner *= _SQRT_2_OVER_PI
        bracket = xp.tanh(inner)
    else:
        bracket = kernels.erf(xp, x * _SQRT_HALF)
    bracket += 1
    return x * bracket * 0.5, (bracket,)


@gelu.defvjp
def _(xp, g, saved, p, needs):
    x = saved[0]
    if p["approximate"] == "tanh":
        # with u = sqrt(2/pi) (x + k x^3), t = tanh u:
        # d/dx = (1 + t) / 2 + x (1 - t^2) sqrt(2/pi) (1 + 3 k x^2) / 2
        u = x * (1 + _KAPPA * x * x) * _SQRT_2_OVER_PI
        bracket = saved[1] if _fast(x) else 1 + xp.tanh(u)
        t = bracket - 1
        slope = (1 - t * t) * (_SQRT_2_OVER_PI * (1 + 3 * _KAPPA * x * x))
        return (g * (bracket + x * slope) * 0.5,)
    # d/dx x Phi(x) = Phi(x) + x phi(x), phi(x) = e^(-x^2/2) / sqrt(2 pi)
    bracket = saved[1] if _fast(x) else 1 + xp.erf(x * _SQRT_HALF)
    return (g * (bracket * 0.5 + x * xp.exp(x * x * -0.5) * _INV_SQRT_2PI),)
