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

import math

import numpy as np

from .. import _backend
from ..tensor import Tensor, _wrap
from . import kernels
from ._primitive import LINEAR, OUT, primitive


@primitive("im2col", backward_name="Im2ColBackward0")
def im2col(xp, x, kernel_size, dilation, padding, stride, size, value):
    return kernels.im2col(xp, x, kernel_size, dilation, padding, stride, value)


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
def col2im(xp, cols, size, kernel_size, dilation, padding, stride):
    return kernels.col2im(xp, cols, size, kernel_size, dilation, padding, stride)


@col2im.defvjp
def _(xp, g, saved, p, needs):
    # col2im is the transpose of im2col (with zero padding): its VJP is im2col
    return (xp.im2col(g, p["kernel_size"], p["dilation"], p["padding"], p["stride"], p["size"],
                      0.0),)


# ------------------------------------------------------------------ LSTM cell
# One step of an LSTM after its two matmuls: x_gates = x W_ih^T + b (both biases) and
# h_gates = h W_hh^T, each (N, 4H) with PyTorch's gate rows (i, f, g, o); c is (N, H):
#   z = x_gates + h_gates,  i, f, o = sigmoid(z_i, z_f, z_o),  g = tanh(z_g)
#   c' = f c + i g,  h' = o tanh(c'),  output [h', c'] as one (N, 2H) array.
# One primitive instead of ~10 (add, sigmoid, tanh, slices, products): one node and a few
# passes over (N, 4H) per step in each direction.


def _sigmoid(xp, t):
    return 1 / (1 + xp.exp(-t))


def _tanh(xp, t):
    # tanh t = 2 sigmoid(2t) - 1 (the rule namespaces have exp, not tanh)
    return 2 * _sigmoid(xp, 2 * t) - 1


def _place(xp, parts, width):
    """The (N, width) pieces side by side along the last axis, written with pad (the rule
    namespaces have no concatenate): each piece padded to full width, then summed."""
    total = len(parts) * width
    return sum(xp.pad(part, ((0, 0),) * (part.ndim - 1) + ((k * width, total - (k + 1) * width),),
                      0.0) for k, part in enumerate(parts))


def _gates(xp, z, c):
    """i, f, g, o and tanh c' from the pre-activations z and c, with rule-namespace ops."""
    size = c.shape[-1]
    i, f, o = (_sigmoid(xp, z[..., k * size:(k + 1) * size]) for k in (0, 1, 3))
    g = _tanh(xp, z[..., 2 * size:3 * size])
    return i, f, g, o, _tanh(xp, f * c + i * g)


def _cell_vjp(xp, grad, z, c):
    """The cell's VJP in rule-namespace ops (the math at lstm_cell's rule): dz, dc', f."""
    size = c.shape[-1]
    gh, gc = grad[..., :size], grad[..., size:]
    i, f, g, o, tanh_c = _gates(xp, z, c)
    dc_new = gc + gh * o * (1 - tanh_c * tanh_c)
    dz = _place(xp, (dc_new * g * i * (1 - i), dc_new * c * f * (1 - f),
                     dc_new * i * (1 - g * g), gh * tanh_c * o * (1 - o)), size)
    return dz, dc_new, f


def _cell_jvp(xp, z, c, dz, dc):
    """The cell's tangent [dh', dc'] from tangents dz of z and dc of c (either None):
    dc' = f' c + f dc + i' g + i g' with i' = i (1 - i) dz_i etc.;
    dh' = o' tanh c' + o (1 - tanh^2 c') dc'."""
    size = c.shape[-1]
    i, f, g, o, tanh_c = _gates(xp, z, c)
    dc_new = None if dc is None else f * dc
    d_o = None
    if dz is not None:
        dz_i, dz_f, dz_g, dz_o = (dz[..., k * size:(k + 1) * size] for k in range(4))
        term = f * (1 - f) * dz_f * c + i * (1 - i) * dz_i * g + i * (1 - g * g) * dz_g
        dc_new = term if dc_new is None else dc_new + term
        d_o = o * (1 - o) * dz_o
    dh = o * (1 - tanh_c * tanh_c) * dc_new
    if d_o is not None:
        dh = dh + d_o * tanh_c
    return _place(xp, (dh, dc_new), size)


def _sum(*terms):
    """The sum of the terms that are not None (None if all are)."""
    present = [t for t in terms if t is not None]
    return sum(present[1:], present[0]) if present else None


@primitive("lstm_cell", save=(0, 1, 2), extras=True, backward_name="LstmCellBackward0")
def lstm_cell(xp, x_gates, h_gates, c):
    out, acts, tanh_c = kernels.lstm_cell(xp, x_gates, h_gates, c)
    return out, (acts, tanh_c)


@lstm_cell.defvjp
def _(xp, g, saved, p, needs):
    # with gh, gc the gradients of h', c':  dc' = gc + gh o (1 - tanh^2 c')
    #   dz_i = dc' g i (1 - i),  dz_f = dc' c f (1 - f),  dz_g = dc' i (1 - g^2),
    #   dz_o = gh tanh(c') o (1 - o);  d x_gates = d h_gates = dz,  dc = dc' f
    x_gates, h_gates, c, acts, tanh_c = saved
    if kernels.is_numpy(x_gates):
        # plain backward on NumPy: from the forward's activations, in a few passes
        dz, dc_new, f = kernels.lstm_cell_backward(g, c, acts, tanh_c)
    else:
        dz, dc_new, f = _cell_vjp(xp, g, x_gates + h_gates, c)
    # the two gate inputs get equal gradients, as separate arrays (each may be owned)
    return (dz if needs[0] else None, (dz * 1 if needs[0] else dz) if needs[1] else None,
            dc_new * f if needs[2] else None)


@lstm_cell.defjvp
def _(xp, tangents, inputs, out, p):
    t_x, t_h, t_c = tangents
    x_gates, h_gates, c = inputs
    return _cell_jvp(xp, x_gates + h_gates, c, _sum(t_x, t_h), t_c)


# ------------------------------------------------------------------ LSTM layer
# A whole layer over time from its input x (L, N, E): the input projection
# projected = x W_ih^T + bias (bias = b_ih + b_hh, zeros for a layer without biases), h0
# and c0 (N, H), w_hh (4H, H); each step z_t = projected_t + h_{t-1} W_hh^T and the cell
# above. Output: [h_t, c_t] for every step, (L, N, 2H). ``reverse`` runs from t = L-1 down
# (a bidirectional layer's backward direction). One node for the whole sequence, the input
# projection included (PyTorch's oneDNN layer does the same): the NumPy kernels compute it
# step by step beside the recurrent product, and the weights' gradients as one matmul each.


def _steps(length, reverse):
    return range(length - 1, -1, -1) if reverse else range(length)


def _along_time(xp, pieces, length):
    """The per-step (N, k) pieces, indexed by step, as one (L, N, k) array (pad and sum: the
    rule namespaces have no stack)."""
    return sum(xp.pad(xp.expand_dims(piece, 0), ((t, length - 1 - t), (0, 0), (0, 0)), 0.0)
               for t, piece in enumerate(pieces))


def _projected(xp, x, w_ih, bias):
    """x W_ih^T + bias, (L, N, 4H), in rule-namespace ops."""
    return xp.matmul(x, xp.swapaxes(w_ih, 0, 1)) + bias


@primitive("lstm_layer", save=(0, 1, 2, 3, 4, 5, OUT), extras=True,
           backward_name="LstmBackward0")
def lstm_layer(xp, x, h0, c0, w_ih, w_hh, bias, reverse):
    return kernels.lstm_layer(xp, x, h0, c0, w_ih, w_hh, bias, reverse)


@lstm_layer.defvjp
def _(xp, g, saved, p, needs):
    # back through time: g_t plus what step t+1 sent back gives the cell's dz_t and dc_t;
    # dh_{t-1} = dz_t W_hh, d projected_t = dz_t, dW_hh = sum_t dz_t^T h_{t-1}; then through
    # the projection: dx = dz W_ih, dW_ih = sum_t dz_t^T x_t, d bias = sum of dz
    x, h0, c0, w_ih, w_hh, bias, states = saved[:7]
    reverse = p["reverse"]
    if kernels.is_numpy(x):
        return kernels.lstm_layer_backward(g, x, h0, c0, w_ih, w_hh, saved[7:], reverse, needs)
    projected = _projected(xp, x, w_ih, bias)
    length = projected.shape[0]
    size = c0.shape[-1]
    w_t = xp.swapaxes(w_hh, 0, 1)
    dh = dc = dw = None
    dzs = [None] * length
    for t in reversed(list(_steps(length, reverse))):
        first = t == (length - 1 if reverse else 0)
        before = t + (1 if reverse else -1)
        h_prev = h0 if first else states[before, :, :size]
        c_prev = c0 if first else states[before, :, size:]
        grad = g[t, ...]
        if dh is not None:
            grad = grad + _place(xp, (dh, dc), size)
        dz, dc_new, f = _cell_vjp(xp, grad, projected[t, ...] + xp.matmul(h_prev, w_t), c_prev)
        dzs[t] = dz
        dh, dc = xp.matmul(dz, w_hh), dc_new * f
        term = xp.matmul(xp.swapaxes(dz, 0, 1), h_prev)
        dw = term if dw is None else dw + term
    d_projected = _along_time(xp, dzs, length) if needs[0] or needs[3] or needs[5] else None
    d_w_ih = None
    if needs[3]:
        rows = length * x.shape[1]
        d_w_ih = xp.matmul(xp.swapaxes(xp.reshape(d_projected, (rows, 4 * size)), 0, 1),
                           xp.reshape(x, (rows, x.shape[-1])))
    return (xp.matmul(d_projected, w_ih) if needs[0] else None, dh if needs[1] else None,
            dc if needs[2] else None, d_w_ih, dw if needs[4] else None,
            xp.sum(d_projected, axis=(0, 1)) if needs[5] else None)


@lstm_layer.defjvp
def _(xp, tangents, inputs, out, p):
    # step by step: dz_t = d projected_t + dh_{t-1} W^T + h_{t-1} dW^T, then the cell's JVP,
    # with d projected = dx W_ih^T + x dW_ih^T + d bias
    t_x, t_h, t_c, t_w_ih, t_w, t_bias = tangents
    x, h0, c0, w_ih, w_hh, bias = inputs
    projected = _projected(xp, x, w_ih, bias)
    t_proj = _sum(None if t_x is None else xp.matmul(t_x, xp.swapaxes(w_ih, 0, 1)),
                  None if t_w_ih is None else xp.matmul(x, xp.swapaxes(t_w_ih, 0, 1)),
                  None if t_bias is None else xp.broadcast_to(t_bias, projected.shape))
    length = projected.shape[0]
    size = c0.shape[-1]
    w_t = xp.swapaxes(w_hh, 0, 1)
    h, c, dh, dc = h0, c0, t_h, t_c
    pieces = [None] * length
    for t in _steps(length, p["reverse"]):
        dz = _sum(None if t_proj is None else t_proj[t, ...],
                  None if dh is None else xp.matmul(dh, w_t),
                  None if t_w is None else xp.matmul(h, xp.swapaxes(t_w, 0, 1)))
        if dz is None and dc is None:
            tangent = xp.zeros_like(out[t, ...])
        else:
            tangent = _cell_jvp(xp, projected[t, ...] + xp.matmul(h, w_t), c, dz, dc)
        pieces[t] = tangent
        dh, dc = tangent[..., :size], tangent[..., size:]
        h, c = out[t, :, :size], out[t, :, size:]
    return _along_time(xp, pieces, length)


# ------------------------------------------------------------------ max pooling
# Max pooling over windows that tile the image (stride = kernel, no padding or dilation:
# the usual 2x2 pooling). y = x at each window's first maximum, so given where the maxima
# are (``first``, the tap index) y is linear in x: the VJP puts each g at its window's
# maximum (zeros elsewhere), the JVP picks the tangent there. Other geometries are the
# im2col composition in nn/conv_functional.py.


@primitive("max_pool", extras=True, backward_name="MaxPool2DWithIndicesBackward0")
def max_pool(xp, x, kernel_size, size):
    out, first = kernels.pool_max(xp, x, kernel_size)
    return out, (first,)


@max_pool.defvjp
def _(xp, g, saved, p, needs):
    (first,) = saved
    kernel_size, size = p["kernel_size"], p["size"]
    if kernels.is_numpy(g):
        return (kernels.pool_place(g, first, kernel_size, size),)
    (kh, kw), (n, c, oh, ow) = kernel_size, g.shape
    if isinstance(g, Tensor):  # recorded: the saved indices come back as a (constant) tensor
        mask = _wrap(kernels.pool_tap_mask(first._data, kh * kw))
    else:
        mask = kernels.pool_tap_mask(first, kh * kw)
    windows = xp.where(mask, xp.expand_dims(g, -1), 0.0)
    tiles = xp.permute_dims(xp.reshape(windows, (n, c, oh, ow, kh, kw)), (0, 1, 2, 4, 3, 5))
    out = xp.reshape(tiles, (n, c, oh * kh, ow * kw))
    return (xp.pad(out, ((0, 0), (0, 0), (0, size[0] - oh * kh), (0, size[1] - ow * kw)), 0.0),)


@primitive("max_pool_windows", extras=True, backward_name="MaxPool2DWithIndicesBackward0")
def max_pool_windows(xp, x, kernel_size, stride, padding, dilation, out_size, size):
    # any windows on NumPy float arrays without NaN (nn.functional.max_pool2d checks)
    out, first = kernels.pool_max_windows(x, kernel_size, stride, padding, dilation, out_size)
    return out, (first,)


@max_pool_windows.defvjp
def _(xp, g, saved, p, needs):
    (first,) = saved
    kernel_size, padding, size = p["kernel_size"], p["padding"], p["size"]
    if kernels.is_numpy(g):
        return (kernels.pool_place_windows(g, first, kernel_size, p["stride"], padding,
                                           p["dilation"], size),)
    # recorded: each window's g at its first maximum's tap, the windows summed back by col2im
    (kh, kw), (n, c, oh, ow) = kernel_size, g.shape
    mask = _wrap(kernels.pool_tap_mask(first._data, kh * kw))
    windows = xp.where(mask, xp.expand_dims(g, -1), 0.0)  # (N, C, oh, ow, taps)
    cols = xp.reshape(xp.permute_dims(windows, (0, 1, 4, 2, 3)), (n, c * kh * kw, oh * ow))
    return (xp.col2im(cols, size, kernel_size, p["dilation"], padding, p["stride"]),)


@max_pool_windows.defjvp
def _(xp, tangents, inputs, out, p):
    # the tangent at each window's first maximum (recomputed from x: the same choice)
    kernel_size, (oh, ow) = p["kernel_size"], p["out_size"]
    data = inputs[0]._data
    _, first = kernels.pool_max_windows(data, kernel_size, p["stride"], p["padding"],
                                        p["dilation"], p["out_size"])
    taps = kernel_size[0] * kernel_size[1]
    cols = xp.im2col(tangents[0], kernel_size, p["dilation"], p["padding"], p["stride"],
                     p["size"], 0.0)
    windows = xp.permute_dims(xp.reshape(cols, (data.shape[0], data.shape[1], taps, oh, ow)),
                              (0, 1, 3, 4, 2))
    mask = _wrap(kernels.pool_tap_mask(first, taps))
    return xp.sum(xp.where(mask, windows, 0.0), axis=-1)


@max_pool.defjvp
def _(xp, tangents, inputs, out, p):
    # the maxima's positions are x's (recomputed: the same argmax), the tangent picked there
    kernel_size, data = p["kernel_size"], inputs[0]._data
    _, first = kernels.pool_max(_backend.namespace_of(data), data, kernel_size)
    windows = kernels.pool_windows(xp, tangents[0], kernel_size)
    mask = _wrap(kernels.pool_tap_mask(first, kernel_size[0] * kernel_size[1]))
    return xp.sum(xp.where(mask, windows, 0.0), axis=-1)


# ------------------------------------------------------------------ layer norm
# y = xhat * w + b, xhat = (x - mean) / sqrt(var + eps), mean and biased variance over the
# trailing ``axes`` (w, b of their shape). One node instead of nine (mean, sub, square,
# mean, add, rsqrt, mul, mul, add), two passes fewer each way.


def _mean(xp, t, axes):
    """The mean over ``axes``, kept as size-1 axes (the rule namespaces have sum, not mean)."""
    return xp.sum(t, axis=axes, keepdims=True) / math.prod(t.shape[a] for a in axes)


def _normalized(xp, x, axes, eps):
    """xhat and rstd recomputed with rule-namespace ops."""
    centered = x - _mean(xp, x, axes)
    rstd = (_mean(xp, centered * centered, axes) + eps) ** -0.5
    return centered * rstd, rstd


def _xhat_tangent(xp, xhat, rstd, t, axes):
    # d xhat = rstd (t - mean(t) - xhat mean(t xhat)): the Jacobian of normalising, which is
    # symmetric, so the same map also takes g * w back to dx in the VJP
    return rstd * (t - _mean(xp, t, axes) - xhat * _mean(xp, t * xhat, axes))


@primitive("layer_norm", save=(0, 1), extras=True, backward_name="NativeLayerNormBackward0")
def layer_norm(xp, x, weight, bias, axes, eps):
    out, xhat, rstd = kernels.layer_norm(xp, x, weight, bias, axes, eps)
    return out, (xhat, rstd)


@layer_norm.defvjp
def _(xp, g, saved, p, needs):
    # dx = rstd (gw - mean(gw) - xhat mean(gw xhat)), gw = g w; dw = sum g xhat; db = sum g
    x, weight, xhat, rstd = saved
    axes = p["axes"]
    if kernels.is_numpy(x):
        return kernels.layer_norm_backward(g, weight, xhat, rstd, axes, needs)
    if isinstance(x, Tensor):  # recorded: xhat and rstd recomputed, to differentiate them
        xhat, rstd = _normalized(xp, x, axes, p["eps"])
    leading = tuple(range(g.ndim - len(axes)))
    return (_xhat_tangent(xp, xhat, rstd, g * weight, axes) if needs[0] else None,
            xp.sum(g * xhat, axis=leading) if needs[1] else None,
            xp.sum(g, axis=leading) if needs[2] else None)


@layer_norm.defjvp
def _(xp, tangents, inputs, out, p):
    # dy = d xhat * w + xhat * dw + db
    t_x, t_w, t_b = tangents
    x, weight, _ = inputs
    xhat, rstd = _normalized(xp, x, p["axes"], p["eps"])
    return _sum(None if t_x is None else _xhat_tangent(xp, xhat, rstd, t_x, p["axes"]) * weight,
                None if t_w is None else xhat * t_w, t_b)



# ------------------------------------------------------------------ convolution
# out = W * x + b (cross-correlation, as F.conv2d) with weight (O, C/g, kh, kw) in g groups.
# With cols = im2col(x), (N, C*kh*kw, L), and per group W2 = W as (O/g, C/g*kh*kw):
#   out_n = W2 cols_n + b,  so  dx = col2im(W2^T g),  dW = sum_n g_n cols_n^T,
#   db = the sum of g over (n, h, w); and out is bilinear in (x, W), so its tangent is
#   conv(tx, W) + conv(x, tW) + tb.
# One node instead of five (im2col, reshape, matmul, reshape, add), and on NumPy with one
# group the batch-wide products of kernels.conv2d and conv2d_backward. Parameters:
# ``stride``, ``dilation`` (h, w) pairs; ``padding`` ((top, bottom), (left, right)).


def _conv_fast(x, groups):
    """Whether kernels.conv2d (NumPy, one group, float32/float64) runs this convolution."""
    return groups == 1 and type(x) is np.ndarray and x.dtype in kernels.BLAS_DTYPES


def _windows(x_shape, weight_shape, stride, padding, dilation):
    """The output's (oh, ow)."""
    return tuple(kernels.windows_out(n + lo + hi, k, d, s) for n, k, d, s, (lo, hi) in
                 zip(x_shape[2:], weight_shape[2:], dilation, stride, padding))


@primitive("conv2d", save=(0, 1), extras=True, backward_name="ConvolutionBackward0")
def conv2d(xp, x, weight, bias=None, *, stride, padding, dilation, groups):
    oh, ow = _windows(x.shape, weight.shape, stride, padding, dilation)
    kernel_size = tuple(weight.shape[2:])
    if _conv_fast(x, groups):
        out, cols = kernels.conv2d(x, weight, bias, kernel_size, dilation, padding, stride,
                                   (oh, ow))
        return out, (cols,)
    n, out_channels = x.shape[0], weight.shape[0]
    # per group: (O/g, C/g*kh*kw) @ (N, g, C/g*kh*kw, L), the groups a batch axis
    cols = kernels.im2col(xp, x, kernel_size, dilation, padding, stride, 0.0)
    out = xp.matmul(xp.reshape(weight, (groups, out_channels // groups, -1)),
                    xp.reshape(cols, (n, groups, -1, oh * ow)))
    if out.dtype != x.dtype:  # NumPy multiplies bfloat16 into float32; PyTorch rounds back
        out = kernels.astype(xp, out, _backend.np_dtype(x))
    out = xp.reshape(out, (n, out_channels, oh, ow))
    if bias is not None:
        out = out + xp.reshape(bias, (out_channels, 1, 1))
    return out, (cols,)


@conv2d.defvjp
def _(xp, g, saved, p, needs):
    x, weight, cols = saved
    kernel_size = tuple(weight.shape[2:])
    geometry = (kernel_size, p["dilation"], p["padding"], p["stride"])
    if _conv_fast(x, p["groups"]):  # a plain backward on NumPy
        return kernels.conv2d_backward(g, x.shape, weight, cols, *geometry, needs)
    n, out_channels, oh, ow = g.shape
    groups = p["groups"]
    grads = xp.reshape(g, (n, groups, out_channels // groups, oh * ow))
    dx = dw = None
    if needs[0]:
        w2 = xp.reshape(weight, (groups, out_channels // groups, -1))
        columns = xp.reshape(xp.matmul(xp.swapaxes(w2, -1, -2), grads), (n, -1, oh * ow))
        dx = xp.col2im(columns, tuple(x.shape[2:]), *geometry)
    if needs[1]:
        if isinstance(x, Tensor):  # recorded: the columns recomputed, to differentiate them
            cols = xp.im2col(x, *geometry, tuple(x.shape[2:]), 0.0)
        cols = xp.reshape(cols, (n, groups, -1, oh * ow))
        dw = xp.reshape(xp.sum(xp.matmul(grads, xp.swapaxes(cols, -1, -2)), axis=0),
                        weight.shape)
    if len(needs) == 2:
        return dx, dw
    return dx, dw, xp.sum(g, axis=(0, 2, 3)) if needs[2] else None


@conv2d.defjvp
def _(xp, tangents, inputs, out, p):
    # bilinear: d out = conv(tx, W) + conv(x, tW) + tb
    t_x, t_w = tangents[:2]
    x, weight = inputs[:2]
    t_b = tangents[2] if len(tangents) > 2 else None
    total = _sum(None if t_x is None else conv2d(t_x, weight, **p),
                 None if t_w is None else conv2d(x, t_w, **p),
                 None if t_b is None else xp.reshape(t_b, (weight.shape[0], 1, 1)))
    return total if total is None or total.shape == out.shape else xp.broadcast_to(
        total, out.shape)
