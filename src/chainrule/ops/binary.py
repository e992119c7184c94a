"""Elementwise functions of two tensors (broadcasting) and of a tensor and a Python scalar.

Tensor-tensor primitives declare ``broadcasts=True``: their rules return gradients in
the broadcast shape and the engine sums them back to each input's shape.
"""

from __future__ import annotations

from . import kernels
from ._primitive import ELEMENTWISE, OUT, primitive


@primitive("add", broadcasts=True, jvp=ELEMENTWISE)
def add(xp, x, y):
    return x + y


@add.defvjp
def _(xp, g, saved, p, needs):
    return (g, g)  # d(x+y) = dx + dy


@primitive("sub", broadcasts=True, jvp=ELEMENTWISE)
def sub(xp, x, y):
    return x - y


@sub.defvjp
def _(xp, g, saved, p, needs):
    return (g, -g if needs[1] else None)


# uses: x is read only for y's gradient and y only for x's
@primitive("mul", save=(0, 1), broadcasts=True, jvp=ELEMENTWISE, uses=((1,), (0,)))
def mul(xp, x, y):
    return x * y


@mul.defvjp
def _(xp, g, saved, p, needs):
    x, y = saved
    return (g * y if needs[0] else None, g * x if needs[1] else None)  # d(xy) = y dx + x dy


@primitive("div", save=(0, 1), broadcasts=True, jvp=ELEMENTWISE, uses=((1,), None))
def div(xp, x, y):
    return x / y


@div.defvjp
def _(xp, g, saved, p, needs):
    x, y = saved
    gx = g / y if needs[0] else None  # d/dx x/y = 1/y
    gy = -g * x / (y * y) if needs[1] else None  # d/dy x/y = -x/y^2
    return (gx, gy)


@primitive("pow", save=(0, 1, OUT), broadcasts=True, backward_name="PowBackward1",
           jvp=ELEMENTWISE)
def pow_(xp, x, y):
    return xp.pow(x, y)


@pow_.defvjp
def _(xp, g, saved, p, needs):
    x, y, out = saved
    gx = gy = None
    if needs[0]:
        # d/dx x^y = y x^(y-1); exponent 0 gives 0, as PyTorch
        gx = xp.where(y == 0, 0.0, g * y * x ** (y - 1))
    if needs[1]:
        # d/dy x^y = x^y ln x; at x = 0 with y >= 0 the limit 0 is used (PyTorch)
        safe = xp.where((x == 0) & (y >= 0), 1.0, x)
        gy = xp.where((x == 0) & (y >= 0), 0.0, g * out * xp.log(safe))
    return (gx, gy)


@primitive("div_rounded", broadcasts=True, backward_name="DivBackward2", jvp=ELEMENTWISE)
def div_rounded(xp, x, y, mode):
    with kernels.quiet_division():  # x / 0 is +-inf or NaN, as PyTorch
        q = x / y
    return xp.trunc(q) if mode == "trunc" else xp.floor(q)


@div_rounded.defvjp
def _(xp, g, saved, p, needs):
    # piecewise constant: zero gradients, as PyTorch's (never g * 0 / y, which is NaN at y = 0)
    zero = xp.zeros_like(g)
    return (zero if needs[0] else None, zero if needs[1] else None)


@primitive("maximum", save=(0, 1), broadcasts=True, jvp=ELEMENTWISE)
def maximum(xp, x, y):
    return xp.maximum(x, y)


@primitive("minimum", save=(0, 1), broadcasts=True, jvp=ELEMENTWISE)
def minimum(xp, x, y):
    return xp.minimum(x, y)


def _extremum_vjp(sign):
    def rule(xp, g, saved, p, needs):
        # the larger (smaller) input takes the gradient and ties split it in half; where a
        # NaN leaves the comparison undecided, both inputs get it (PyTorch)
        x, y = saved
        lead = (x - y) * sign
        tie = x == y
        half = g * 0.5
        gx = xp.where(lead < 0, 0.0, xp.where(tie, half, g)) if needs[0] else None
        gy = xp.where(lead > 0, 0.0, xp.where(tie, half, g)) if needs[1] else None
        return (gx, gy)

    return rule


maximum.defvjp(_extremum_vjp(1))
minimum.defvjp(_extremum_vjp(-1))


@primitive("where", save=(0,), broadcasts=True, jvp=ELEMENTWISE)
def where(xp, condition, x, y):
    return kernels.select(xp, condition, x, y)


@where.defvjp
def _(xp, g, saved, p, needs):
    # select, never multiply: a NaN in the branch not taken stays out of the gradient;
    # the zero a Python scalar, the select's two-pass case (g has the output's shape)
    condition = saved[0]
    gx = xp.where(condition, g, 0.0) if needs[1] else None
    gy = xp.where(condition, 0.0, g) if needs[2] else None
    return (None, gx, gy)


# x.masked_fill(mask, value) is where(mask, value, x) in C order, as PyTorch lays out its
# result (NumPy's where keeps a transposed input's order): later views then share memory
# where PyTorch's do
@primitive("masked_fill", save=(0,), broadcasts=True, jvp=ELEMENTWISE)
def masked_fill(xp, mask, value, x):
    return kernels.contiguous(xp, kernels.select(xp, mask, value, x))


masked_fill.defvjp(where.vjp)


# --------------------------------------------------- tensor with a Python scalar
# A bfloat16 tensor's scalar comes as a kernels.Opmath float (math._scalar_operand), which
# computes in float32 and rounds back to bfloat16, as PyTorch; other scalars are plain.
@primitive("add_scalar", backward_name="AddBackward0", jvp=ELEMENTWISE)
def add_scalar(xp, x, other):
    return x + other


@add_scalar.defvjp
def _(xp, g, saved, p, needs):
    return (g,)


@primitive("sub_scalar", backward_name="SubBackward0", jvp=ELEMENTWISE)
def sub_scalar(xp, x, other):
    return x - other


sub_scalar.defvjp(add_scalar.vjp)  # d/dx (x - c) = 1


@primitive("rsub_scalar", backward_name="RsubBackward1", jvp=ELEMENTWISE)
def rsub_scalar(xp, x, other):
    return other - x


@rsub_scalar.defvjp
def _(xp, g, saved, p, needs):
    return (-g,)  # d/dx (c - x) = -1


@primitive("mul_scalar", backward_name="MulBackward0", jvp=ELEMENTWISE)
def mul_scalar(xp, x, other):
    return x * other


@mul_scalar.defvjp
def _(xp, g, saved, p, needs):
    return (g * p["other"],)


@primitive("div_scalar", backward_name="DivBackward0", jvp=ELEMENTWISE)
def div_scalar(xp, x, other):
    return x / other


@div_scalar.defvjp
def _(xp, g, saved, p, needs):
    return (g / p["other"],)


@primitive("rdiv_scalar", save=(0,), backward_name="DivBackward0", jvp=ELEMENTWISE)
def rdiv_scalar(xp, x, other):
    return other / x


@rdiv_scalar.defvjp
def _(xp, g, saved, p, needs):
    x = saved[0]
    return (-g * p["other"] / (x * x),)  # d/dx c/x = -c/x^2
