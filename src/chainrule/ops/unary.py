"""Elementwise functions of one tensor: forward kernel and VJP side by side.

Each rule's comment gives the derivative it implements. ``saved`` holds what
``save`` names: ``(0,)`` the input x, ``(OUT,)`` the output y.
"""

from __future__ import annotations

import math

from . import kernels
from ._primitive import ELEMENTWISE, LINEAR, OUT, primitive

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_LN2 = math.log(2.0)


@primitive("neg", jvp=ELEMENTWISE)
def neg(xp, x):
    return xp.negative(x)


@neg.defvjp
def _(xp, g, saved, p, needs):
    return (-g,)  # d/dx (-x) = -1


@primitive("exp", save=(OUT,), jvp=ELEMENTWISE)
def exp(xp, x):
    return xp.exp(x)


@exp.defvjp
def _(xp, g, saved, p, needs):
    return (g * saved[0],)  # d/dx exp(x) = exp(x)


@primitive("exp2", save=(OUT,), jvp=ELEMENTWISE)
def exp2(xp, x):
    return 2.0 ** x  # the Array API has no exp2


@exp2.defvjp
def _(xp, g, saved, p, needs):
    return (g * saved[0] * _LN2,)  # d/dx 2^x = 2^x ln 2


@primitive("expm1", save=(OUT,), jvp=ELEMENTWISE)
def expm1(xp, x):
    return xp.expm1(x)


@expm1.defvjp
def _(xp, g, saved, p, needs):
    return (g * (saved[0] + 1),)  # d/dx (e^x - 1) = e^x


@primitive("log", save=(0,), jvp=ELEMENTWISE)
def log(xp, x):
    return xp.log(x)


@log.defvjp
def _(xp, g, saved, p, needs):
    return (g / saved[0],)  # d/dx log x = 1/x


@primitive("log2", save=(0,), jvp=ELEMENTWISE)
def log2(xp, x):
    return xp.log2(x)


@log2.defvjp
def _(xp, g, saved, p, needs):
    return (g / (saved[0] * _LN2),)  # d/dx log2 x = 1/(x ln 2)


@primitive("log1p", save=(0,), backward_name="Log1PBackward0", jvp=ELEMENTWISE)
def log1p(xp, x):
    return xp.log1p(x)


@log1p.defvjp
def _(xp, g, saved, p, needs):
    return (g / (saved[0] + 1),)  # d/dx log(1+x) = 1/(1+x)


@primitive("sqrt", save=(OUT,), jvp=ELEMENTWISE)
def sqrt(xp, x):
    return xp.sqrt(x)


@sqrt.defvjp
def _(xp, g, saved, p, needs):
    return (g / (2 * saved[0]),)  # d/dx sqrt x = 1/(2 sqrt x); inf at 0, as PyTorch


@primitive("rsqrt", save=(OUT,), jvp=ELEMENTWISE)
def rsqrt(xp, x):
    return 1 / xp.sqrt(x)


@rsqrt.defvjp
def _(xp, g, saved, p, needs):
    y = saved[0]
    return (g * (-0.5) * y * y * y,)  # d/dx x^(-1/2) = -x^(-3/2)/2 = -y^3/2


@primitive("reciprocal", save=(OUT,), jvp=ELEMENTWISE)
def reciprocal(xp, x):
    return 1 / x


@reciprocal.defvjp
def _(xp, g, saved, p, needs):
    y = saved[0]
    return (-g * y * y,)  # d/dx 1/x = -1/x^2


@primitive("sin", save=(0,), jvp=ELEMENTWISE)
def sin(xp, x):
    return xp.sin(x)


@sin.defvjp
def _(xp, g, saved, p, needs):
    return (g * xp.cos(saved[0]),)  # d/dx sin x = cos x


@primitive("cos", save=(0,), jvp=ELEMENTWISE)
def cos(xp, x):
    return xp.cos(x)


@cos.defvjp
def _(xp, g, saved, p, needs):
    return (-g * xp.sin(saved[0]),)  # d/dx cos x = -sin x


@primitive("tan", save=(OUT,), jvp=ELEMENTWISE)
def tan(xp, x):
    return xp.tan(x)


@tan.defvjp
def _(xp, g, saved, p, needs):
    y = saved[0]
    return (g * (1 + y * y),)  # d/dx tan x = 1 + tan^2 x


@primitive("tanh", save=(OUT,), jvp=ELEMENTWISE)
def tanh(xp, x):
    return xp.tanh(x)


@tanh.defvjp
def _(xp, g, saved, p, needs):
    y = saved[0]
    return (g * (1 - y * y),)  # d/dx tanh x = 1 - tanh^2 x


@primitive("sigmoid", save=(OUT,), jvp=ELEMENTWISE)
def sigmoid(xp, x):
    return kernels.sigmoid(xp, x)


@sigmoid.defvjp
def _(xp, g, saved, p, needs):
    y = saved[0]
    return (g * y * (1 - y),)  # d/dx s(x) = s(x)(1 - s(x))


@primitive("relu", save=(OUT,), jvp=ELEMENTWISE)
def relu(xp, x):
    return kernels.relu(xp, x)


@relu.defvjp
def _(xp, g, saved, p, needs):
    # relu'(x) = 1 for x > 0 and 0 for x <= 0 (PyTorch: 0 at 0, and g passes at a NaN):
    # where(y <= 0, 0, g) from the output y
    return (xp.relu_backward(saved[0], g),)


@primitive("abs", save=(0,), jvp=ELEMENTWISE)
def abs_(xp, x):
    return xp.abs(x)


@abs_.defvjp
def _(xp, g, saved, p, needs):
    return (g * xp.sign(saved[0]),)  # d/dx |x| = sign(x), 0 at 0 as PyTorch


@primitive("erf", save=(0,), jvp=ELEMENTWISE)
def erf(xp, x):
    return kernels.erf(xp, x)


@erf.defvjp
def _(xp, g, saved, p, needs):
    x = saved[0]
    return (g * _TWO_OVER_SQRT_PI * xp.exp(-(x * x)),)  # d/dx erf x = 2/sqrt(pi) e^(-x^2)


@primitive("pow_scalar", save=(0,), backward_name="PowBackward0", jvp=ELEMENTWISE)
def pow_scalar(xp, x, exponent):
    # a bfloat16 tensor's exponent is a kernels.Opmath (binary.py)
    return kernels.power(xp, x, exponent)


@pow_scalar.defvjp
def _(xp, g, saved, p, needs):
    c = p["exponent"]
    if c == 0:
        return (g * 0,)
    if c == 2:
        return (g * 2 * saved[0],)
    return (g * c * xp.power(saved[0], c - 1),)  # d/dx x^c = c x^(c-1)


@primitive("rpow_scalar", save=(OUT,), backward_name="PowBackward2", jvp=ELEMENTWISE)
def rpow_scalar(xp, x, base):
    return base ** x  # a bfloat16 tensor's base is a kernels.Opmath (binary.py)


@rpow_scalar.defvjp
def _(xp, g, saved, p, needs):
    base = p["base"]
    if base == 0:
        # d/dx 0^x = 0^x ln 0: PyTorch takes 0 for x >= 0 (0^x <= 1 there) and -inf for
        # x < 0 (0^x = inf); -0^x gives that -inf without an ln 0 that would turn the
        # double backward at x >= 0 into 0 * inf = NaN
        out = saved[0]
        return (g * xp.where(out <= 1, 0.0, -out),)
    return (g * saved[0] * math.log(base),)  # d/dx b^x = b^x ln b


@primitive("clamp_scalar", save=(0,), backward_name="ClampBackward1", jvp=ELEMENTWISE)
def clamp_scalar(xp, x, min, max):  # noqa: A002 - PyTorch's argument names
    if min is not None and max is not None and min > max:
        out = xp.minimum(xp.maximum(x, min), max)  # every element becomes max (NaN stays NaN)
    else:
        out = xp.clip(x, min, max)
    # NumPy clips bfloat16 with float bounds into float32; PyTorch keeps bfloat16
    return out if out.dtype is x.dtype else xp.astype(out, x.dtype)


@clamp_scalar.defvjp
def _(xp, g, saved, p, needs):
    # gradient passes where min <= x <= max (boundaries included, as PyTorch)
    x = saved[0]
    lo, hi = p["min"], p["max"]
    if lo is not None and hi is not None:
        inside = (x >= lo) & (x <= hi)
    elif lo is not None:
        inside = x >= lo
    else:
        inside = x <= hi
    return (g * xp.astype(inside, g.dtype),)  # g * 0 keeps a NaN in g, as PyTorch


def _zero_gradient_vjp(xp, g, saved, p, needs):
    return (g * 0,)  # piecewise constant: derivative 0 almost everywhere (PyTorch's choice)


@primitive("floor", jvp=ELEMENTWISE)
def floor(xp, x):
    return xp.floor(x)


@primitive("ceil", jvp=ELEMENTWISE)
def ceil(xp, x):
    return xp.ceil(x)


@primitive("round", jvp=ELEMENTWISE)
def round_(xp, x, decimals=0):
    if not decimals:
        return xp.round(x)
    # the Array API's round has no decimals: scale, round half to even, scale back (NumPy's
    # own method, so the results are NumPy's)
    scale = 10.0 ** decimals
    return xp.round(x * scale) / scale


@primitive("trunc", jvp=ELEMENTWISE)
def trunc(xp, x):
    return xp.trunc(x)


@primitive("sign", jvp=ELEMENTWISE)
def sign(xp, x):
    # (x > 0) - (x < 0): 0 at a NaN, as PyTorch (NumPy's sign gives NaN)
    if x.dtype == xp.bool:
        return kernels.copy(xp, x)
    return xp.astype(x > 0, x.dtype) - xp.astype(x < 0, x.dtype)


for _prim in (floor, ceil, round_, trunc, sign):
    _prim.defvjp(_zero_gradient_vjp)


@primitive("cast", backward_name="ToCopyBackward0", jvp=LINEAR)
def cast(xp, x, dtype, src):
    return kernels.astype(xp, x, dtype)


@cast.defvjp
def _(xp, g, saved, p, needs):
    return (xp.astype(g, p["src"]),)  # the gradient has its tensor's dtype


@primitive("clone", backward_name="CloneBackward0", jvp=LINEAR)
def clone(xp, x):
    return kernels.copy(xp, x)


@clone.defvjp
def _(xp, g, saved, p, needs):
    return (g,)
