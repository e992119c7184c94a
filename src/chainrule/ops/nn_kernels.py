"""Sliding-window primitives: im2col (unfold) and col2im (fold), each the other's VJP.

Convolution, transposed convolution and pooling are compositions of these two with
matmul, reductions and ``where`` (nn/conv_functional.py), so they are differentiable to
any order. Parameters, shared by both so that each rule can call the other with them:

- ``kernel_size``, ``dilation``, ``stride``: (h, w) pairs of ints;
- ``padding``: ((top, bottom), (left, right)), may be asymmetric ('same', ceil_mode);
- ``size``: the (H, W) of the unpadded image;
- ``value`` (im2col only): what fills the padding (-inf for max pooling).
"""

from __future__ import annotations

from . import kernels
from ._primitive import LINEAR, primitive


@primitive("im2col", backward_name="Im2ColBackward0")
def im2col(x, kernel_size, dilation, padding, stride, size, value):
    return kernels.im2col(x, kernel_size, dilation, padding, stride, value)


@im2col.defvjp
def _(xp, g, saved, p, needs):
    # each pixel is copied into every window covering it (padding is constant), so its
    # gradient is the sum of those windows' gradients: col2im
    return (xp.col2im(g, p["size"], p["kernel_size"], p["dilation"], p["padding"], p["stride"]),)


@im2col.defjvp
def _(xp, tangents, inputs, out, p):
    # linear in x apart from the padding value, a constant: its tangent is 0
    return xp.im2col(tangents[0], p["kernel_size"], p["dilation"], p["padding"], p["stride"],
                     p["size"], 0.0)


@primitive("col2im", backward_name="Col2ImBackward0", jvp=LINEAR)
def col2im(cols, size, kernel_size, dilation, padding, stride):
    return kernels.col2im(cols, size, kernel_size, dilation, padding, stride)


@col2im.defvjp
def _(xp, g, saved, p, needs):
    # col2im is the transpose of im2col (with zero padding): its VJP is im2col
    return (xp.im2col(g, p["kernel_size"], p["dilation"], p["padding"], p["stride"], p["size"],
                      0.0),)
