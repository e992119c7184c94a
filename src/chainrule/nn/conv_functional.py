"""The functional forms of the layers over windows and sequences (``chainrule.nn.functional``):
convolution, pooling and attention, differentiable to any order.

conv2d is one primitive (ops/nn_kernels.py: im2col and one matrix product in its forward,
its rules written in differentiable ops); the rest are ``im2col``/``col2im`` plus ordinary
ops, so all are differentiable to any order:

- conv_transpose2d: the transposed weight times the image, then col2im (the adjoint);
- max pooling: im2col with -inf padding, the first maximum of each window picked by
  ``where`` (so the gradient reaches that element only, as PyTorch);
- average pooling: im2col, a sum over each window, a division by PyTorch's divisor;
- adaptive average pooling: two averaging matrices, ``A_h @ x @ A_w^T``.

Attention is ``softmax(q k^T * scale + mask) v`` in matmuls, as PyTorch's reference path.
"""

from __future__ import annotations

from math import sqrt
from typing import Any

import numpy as np

from .. import _backend
from ..ops import math, nn_kernels
from ..ops.creation import zeros
from ..ops.kernels import BLAS_DTYPES, windows_out
from ..ops.shape import cat, pad
from ..tensor import Tensor, _wrap

__all__ = [
    "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "unfold", "fold",
    "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d",
    "adaptive_avg_pool2d", "scaled_dot_product_attention", "multi_head_attention_forward",
]


# ------------------------------------------------------------------ argument plumbing
def _pair(value: Any, op: str, name: str) -> tuple[int, int]:
    """An int or a 1/2-sequence as an (h, w) pair of ints."""
    if isinstance(value, (int, np.integer)):
        return (int(value), int(value))
    value = tuple(int(v) for v in value)
    if len(value) == 1:
        return value * 2
    if len(value) != 2:
        raise ValueError(f"{op}(): {name} must be an int or a pair of ints, got {value}")
    return value


def _single(value: Any, op: str, name: str) -> int:
    """A 1-d op's int argument, given as an int or a 1-sequence."""
    if isinstance(value, (int, np.integer)):
        return int(value)
    value = tuple(value)
    if len(value) != 1:
        raise ValueError(f"{op}(): {name} must be an int or a 1-tuple, got {value}")
    return int(value[0])


def _batched(input: Tensor, spatial: int, op: str) -> tuple[Tensor, bool]:
    """``input`` with a batch dim (PyTorch accepts an unbatched (C, *spatial) input too)."""
    if input.ndim == spatial + 2:
        return input, False
    if input.ndim == spatial + 1:
        return input.unsqueeze(0), True
    raise RuntimeError(
        f"{op}(): expected a {spatial + 1}-D (unbatched) or {spatial + 2}-D (batched) input, "
        f"got shape {tuple(input.shape)}"
    )


def _check_float(op: str, *tensors: Tensor | None) -> None:
    dtypes = {t.dtype for t in tensors if t is not None}
    if len(dtypes) > 1 or any(t is not None and not t.is_floating_point() for t in tensors):
        names = ", ".join(str(t.dtype) for t in tensors if t is not None)
        raise RuntimeError(
            f"{op}(): input, weight and bias must have the same floating dtype, got {names}; "
            f"convert them with .to(dtype)"
        )


# ------------------------------------------------------------------ unfold / fold
def unfold(input: Tensor, kernel_size: Any, dilation: Any = 1, padding: Any = 0,
           stride: Any = 1) -> Tensor:
    """Sliding windows as columns (im2col): (N, C, H, W) -> (N, C*kh*kw, L).

    >>> F.unfold(chainrule.ones(1, 2, 4, 4), kernel_size=2).shape
    chainrule.Size([1, 8, 9])
    """
    x, unbatched = _batched(input, 2, "unfold")
    kernel, dil, step = (_pair(kernel_size, "unfold", "kernel_size"),
                         _pair(dilation, "unfold", "dilation"), _pair(stride, "unfold", "stride"))
    ph, pw = _pair(padding, "unfold", "padding")
    _window_count("unfold", x.shape[2:], kernel, dil, ((ph, ph), (pw, pw)), step)
    cols = nn_kernels.im2col(x, kernel_size=kernel, dilation=dil, padding=((ph, ph), (pw, pw)),
                             stride=step, size=tuple(x.shape[2:]), value=0.0)
    return cols.squeeze(0) if unbatched else cols


def fold(input: Tensor, output_size: Any, kernel_size: Any, dilation: Any = 1, padding: Any = 0,
         stride: Any = 1) -> Tensor:
    """Columns summed back into an image (col2im): (N, C*kh*kw, L) -> (N, C, H, W).

    ``fold(unfold(x))`` multiplies each pixel by the number of windows covering it.

    >>> F.fold(chainrule.ones(1, 8, 9), output_size=4, kernel_size=2).shape
    chainrule.Size([1, 2, 4, 4])
    """
    cols, unbatched = _batched(input, 1, "fold")
    size = _pair(output_size, "fold", "output_size")
    kernel, dil, step = (_pair(kernel_size, "fold", "kernel_size"),
                         _pair(dilation, "fold", "dilation"), _pair(stride, "fold", "stride"))
    ph, pw = _pair(padding, "fold", "padding")
    padding_pairs = ((ph, ph), (pw, pw))
    oh, ow = _window_count("fold", size, kernel, dil, padding_pairs, step)
    taps = kernel[0] * kernel[1]
    if cols.shape[1] % taps or cols.shape[2] != oh * ow:
        raise RuntimeError(
            f"fold(): input of shape {tuple(input.shape)} does not match kernel_size {kernel} "
            f"and output_size {size}: expected (N, C*{taps}, {oh * ow})"
        )
    out = nn_kernels.col2im(cols, size=size, kernel_size=kernel, dilation=dil,
                            padding=padding_pairs, stride=step)
    return out.squeeze(0) if unbatched else out


def _window_count(op: str, size: Any, kernel: tuple, dilation: tuple, padding: tuple,
                  stride: tuple) -> tuple[int, int]:
    """Windows along (h, w); an error that names the sizes when none fits."""
    counts = tuple(
        windows_out(n + lo + hi, k, d, s)
        for n, k, d, s, (lo, hi) in zip(size, kernel, dilation, stride, padding)
    )
    if min(counts) < 1 or min(stride) < 1 or min(dilation) < 1:
        raise RuntimeError(
            f"{op}(): input of spatial size {tuple(size)} padded by {padding} is smaller than "
            f"the kernel {kernel} with dilation {dilation} (stride {stride}); use a smaller "
            f"kernel or more padding"
        )
    return counts


# ------------------------------------------------------------------ convolution
def _conv_padding(padding: Any, kernel: tuple, dilation: tuple, stride: tuple,
                  op: str) -> tuple:
    """Padding as ((top, bottom), (left, right)); 'same' pads the extra one on the right."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0), (0, 0))
        if padding != "same":
            raise ValueError(f"{op}(): padding must be 'valid', 'same' or ints, got '{padding}'")
        if stride != (1, 1):
            raise ValueError(f"{op}(): padding='same' is not supported for strided convolutions")
        total = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in total)
    ph, pw = _pair(padding, op, "padding")
    return ((ph, ph), (pw, pw))


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
           padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation, as PyTorch) of (N, C, H, W) with (O, C/groups, kh, kw).

    ``padding`` is an int, a pair, 'valid' or 'same'.

    >>> F.conv2d(chainrule.ones(1, 1, 5, 5), chainrule.ones(2, 1, 3, 3), padding=1).shape
    chainrule.Size([1, 2, 5, 5])
    """
    x, unbatched = _batched(input, 2, "conv2d")
    _check_float("conv2d", x, weight, bias)
    if weight.ndim != 4:
        raise RuntimeError(f"conv2d(): expected a 4-D weight (O, C/groups, kh, kw), got shape "
                           f"{tuple(weight.shape)}")
    channels, h, w = x.shape[1:]
    out_channels, group_channels, kh, kw = weight.shape
    if groups < 1 or channels != group_channels * groups or out_channels % groups:
        raise _channel_error("conv2d", input, weight, groups)
    step, dil = _pair(stride, "conv2d", "stride"), _pair(dilation, "conv2d", "dilation")
    padding = _conv_padding(padding, (kh, kw), dil, step, "conv2d")
    _window_count("conv2d", (h, w), (kh, kw), dil, padding, step)
    inputs = (x, weight) if bias is None else (x, weight, bias)
    out = nn_kernels.conv2d(*inputs, stride=step, padding=padding, dilation=dil, groups=groups)
    return out.squeeze(0) if unbatched else out


def _channel_error(op: str, input: Tensor, weight: Tensor, groups: int) -> RuntimeError:
    expected = weight.shape[1] * groups
    at = input.ndim - weight.ndim + 1  # 1 batched, 0 unbatched
    channels = input.shape[at]
    if groups < 1 or weight.shape[0] % groups:
        problem = (f"groups={groups} must be positive and divide the weight's out channels "
                   f"{weight.shape[0]}")
    else:
        problem = (f"it has {channels} channels at dim {at} but the weight of shape "
                   f"{tuple(weight.shape)} with groups={groups} expects {expected} "
                   f"(weight.shape[1] * groups): build the layer with in_channels={channels}, "
                   f"or give the input {expected} channels")
    return RuntimeError(f"{op}(): input of shape {tuple(input.shape)}: {problem}")


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
           padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Tensor:
    """1-D convolution of (N, C, L) with (O, C/groups, k): conv2d over a height of 1.

    >>> F.conv1d(chainrule.ones(1, 1, 5), chainrule.ones(2, 1, 3)).shape
    chainrule.Size([1, 2, 3])
    """
    x, unbatched = _batched(input, 1, "conv1d")
    if weight.ndim != 3:
        raise RuntimeError(f"conv1d(): expected a 3-D weight (O, C/groups, k), got shape "
                           f"{tuple(weight.shape)}")
    if groups < 1 or x.shape[1] != weight.shape[1] * groups or weight.shape[0] % groups:
        raise _channel_error("conv1d", input, weight, groups)
    if not isinstance(padding, str):
        padding = (0, _single(padding, "conv1d", "padding"))
    out = conv2d(x.unsqueeze(2), weight.unsqueeze(2), bias, (1, _single(stride, "conv1d", "stride")),
                 padding, (1, _single(dilation, "conv1d", "dilation")), groups).squeeze(2)
    return out.squeeze(0) if unbatched else out


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
                     padding: Any = 0, output_padding: Any = 0, groups: int = 1,
                     dilation: Any = 1) -> Tensor:
    """Transposed 2-D convolution (the gradient of conv2d w.r.t. its input), with weight
    (C_in, C_out/groups, kh, kw). Output size: (H - 1)*stride - 2*padding +
    dilation*(k - 1) + output_padding + 1.

    >>> F.conv_transpose2d(chainrule.ones(1, 2, 3, 3), chainrule.ones(2, 4, 3, 3), stride=2).shape
    chainrule.Size([1, 4, 7, 7])
    """
    x, unbatched = _batched(input, 2, "conv_transpose2d")
    _check_float("conv_transpose2d", x, weight, bias)
    if weight.ndim != 4:
        raise RuntimeError(f"conv_transpose2d(): expected a 4-D weight (C_in, C_out/groups, kh, "
                           f"kw), got shape {tuple(weight.shape)}")
    n, channels, h, w = x.shape
    in_channels, group_out, kh, kw = weight.shape
    if groups < 1 or channels != in_channels or channels % groups:
        raise RuntimeError(
            f"conv_transpose2d(): input of shape {tuple(x.shape)} and weight of shape "
            f"{tuple(weight.shape)} with groups={groups}: expected weight.shape[0] = input "
            f"channels, divisible by groups"
        )
    op = "conv_transpose2d"
    step, dil = _pair(stride, op, "stride"), _pair(dilation, op, "dilation")
    (ph, pw), (oph, opw) = _pair(padding, op, "padding"), _pair(output_padding, op, "output_padding")
    if not (oph < max(step[0], dil[0]) and opw < max(step[1], dil[1])):
        raise RuntimeError(
            f"{op}(): output_padding {(oph, opw)} must be smaller than either stride {step} or "
            f"dilation {dil}"
        )
    size = tuple((n_in - 1) * s - 2 * p + d * (k - 1) + extra + 1 for n_in, s, p, d, k, extra in
                 zip((h, w), step, (ph, pw), dil, (kh, kw), (oph, opw)))
    if min(size) < 1:
        raise RuntimeError(f"{op}(): input of shape {tuple(x.shape)} gives a non-positive output "
                           f"size {size}; use less padding")
    # each input pixel spreads weight-times-value over its window: columns W^T x, summed by
    # col2im. The output_padding rows/cols lie past the last window (negative far padding).
    taps = kh * kw
    weight_t = weight.reshape(groups, in_channels // groups, group_out * taps).transpose(1, 2)
    cols = math.matmul(weight_t, x.reshape(n, groups, in_channels // groups, h * w))
    out = nn_kernels.col2im(cols.reshape(n, groups * group_out * taps, h * w), size=size,
                            kernel_size=(kh, kw), dilation=dil,
                            padding=((ph, ph - oph), (pw, pw - opw)), stride=step)
    if bias is not None:
        out = out + bias.reshape(groups * group_out, 1, 1)
    return out.squeeze(0) if unbatched else out


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1,
                     padding: Any = 0, output_padding: Any = 0, groups: int = 1,
                     dilation: Any = 1) -> Tensor:
    """Transposed 1-D convolution: conv_transpose2d over a height of 1.

    >>> F.conv_transpose1d(chainrule.ones(1, 2, 3), chainrule.ones(2, 4, 3), stride=2).shape
    chainrule.Size([1, 4, 7])
    """
    x, unbatched = _batched(input, 1, "conv_transpose1d")
    op = "conv_transpose1d"
    out = conv_transpose2d(
        x.unsqueeze(2), weight.unsqueeze(2), bias, (1, _single(stride, op, "stride")),
        (0, _single(padding, op, "padding")), (0, _single(output_padding, op, "output_padding")),
        groups, (1, _single(dilation, op, "dilation"))).squeeze(2)
    return out.squeeze(0) if unbatched else out


# ------------------------------------------------------------------ pooling
def _pool_size(size: int, kernel: int, stride: int, padding: int, dilation: int,
               ceil_mode: bool) -> int:
    """PyTorch's pooling output size: with ceil_mode the last window may hang over the
    right edge, but must start inside the input or the left padding."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _pool_geometry(op: str, x: Tensor, kernel_size: Any, stride: Any, padding: Any,
                   dilation: Any, ceil_mode: bool) -> tuple:
    """kernel, stride, dilation, ((top, bottom), (left, right)) padding and output size; the
    far side is padded further so that the ceil_mode windows fit."""
    kernel = _pair(kernel_size, op, "kernel_size")
    step = kernel if stride is None or stride == [] or stride == () else _pair(stride, op, "stride")
    pads, dil = _pair(padding, op, "padding"), _pair(dilation, op, "dilation")
    for p, k, d in zip(pads, kernel, dil):
        if p > (d * (k - 1) + 1) // 2:
            raise RuntimeError(
                f"{op}(): pad should be at most half of effective kernel size, but got "
                f"pad={p}, kernel_size={k} and dilation={d}"
            )
    out = tuple(_pool_size(n, k, s, p, d, ceil_mode)
                for n, k, s, p, d in zip(x.shape[2:], kernel, step, pads, dil))
    if min(out) < 1:
        raise RuntimeError(f"{op}(): input of shape {tuple(x.shape)} is too small for "
                           f"kernel_size {kernel} (dilation {dil}, padding {pads})")
    padding_pairs = tuple(
        (p, (o - 1) * s + d * (k - 1) + 1 - n - p)  # the far padding the last window needs
        for n, k, s, p, d, o in zip(x.shape[2:], kernel, step, pads, dil, out)
    )
    return kernel, step, dil, padding_pairs, out


def max_pool2d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               dilation: Any = 1, ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """Maximum over each window; the gradient goes to the first maximum, as PyTorch.

    With ``return_indices`` also returns each maximum's flat index into H*W (int64).

    >>> F.max_pool2d(chainrule.arange(16.).reshape(1, 1, 4, 4), 2)
    tensor([[[[ 5.,  7.],
              [13., 15.]]]])
    """
    x, unbatched = _batched(input, 2, "max_pool2d")
    kernel, step, dil, padding_pairs, (oh, ow) = _pool_geometry(
        "max_pool2d", x, kernel_size, stride, padding, dilation, ceil_mode)
    n, c, h, w = x.shape
    if (step == kernel and dil == (1, 1) and padding_pairs == ((0, 0), (0, 0))
            and not return_indices):
        # windows that tile the image (the usual 2x2): one fused primitive, a few passes
        out = nn_kernels.max_pool(x, kernel_size=kernel, size=(h, w))
        return out.squeeze(0) if unbatched else out
    data = x._data
    if (not return_indices and type(data) is np.ndarray and data.dtype in BLAS_DTYPES
            and not np.isnan(data).any()):
        # overlapping or padded windows on NumPy: running maxima over strided views
        out = nn_kernels.max_pool_windows(x, kernel_size=kernel, stride=step,
                                          padding=padding_pairs, dilation=dil, out_size=(oh, ow),
                                          size=(h, w))
        return out.squeeze(0) if unbatched else out
    taps = kernel[0] * kernel[1]
    cols = nn_kernels.im2col(x, kernel_size=kernel, dilation=dil, padding=padding_pairs,
                             stride=step, size=(h, w), value=-np.inf).reshape(n, c, taps, oh * ow)
    # argmax returns the first maximum (and the first NaN, which max then propagates)
    xp = _backend.namespace_of(cols._data)
    first = xp.argmax(cols._data, axis=2)
    picked = xp.reshape(xp.arange(taps, device=first.device), (taps, 1)) == first[:, :, None, :]
    out = math.where(_wrap(picked), cols, 0.0).sum(2).reshape(n, c, oh, ow)
    if unbatched:
        out = out.squeeze(0)
    if not return_indices:
        return out
    # the flat index h*W + w of the picked tap: window start plus the tap's offset
    tap_h, tap_w = np.divmod(_backend.to_numpy(first).reshape(n, c, oh, ow), kernel[1])
    rows = np.arange(oh).reshape(oh, 1) * step[0] - padding_pairs[0][0] + tap_h * dil[0]
    columns = np.arange(ow) * step[1] - padding_pairs[1][0] + tap_w * dil[1]
    indices = _on_device((rows * w + columns).astype(np.int64), x)
    return out, indices.squeeze(0) if unbatched else indices


def max_pool1d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               dilation: Any = 1, ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """Maximum over each window of (N, C, L): max_pool2d over a height of 1.

    >>> F.max_pool1d(chainrule.tensor([[[1., 3., 2., 0.]]]), 2)
    tensor([[[3., 2.]]])
    """
    x, unbatched = _batched(input, 1, "max_pool1d")
    op = "max_pool1d"
    if stride is not None and stride != [] and stride != ():
        stride = (1, _single(stride, op, "stride"))
    result = max_pool2d(x.unsqueeze(2), (1, _single(kernel_size, op, "kernel_size")), stride,
                        (0, _single(padding, op, "padding")), (1, _single(dilation, op, "dilation")),
                        ceil_mode, return_indices)
    parts = result if return_indices else (result,)
    parts = tuple(t.squeeze(2).squeeze(0) if unbatched else t.squeeze(2) for t in parts)
    return parts if return_indices else parts[0]


def _on_device(array: np.ndarray, like: Tensor) -> Tensor:
    """A constant made on the host (window counts, averaging weights, indices) as a tensor
    on ``like``'s device; NumPy's own array when that is the CPU."""
    return _wrap(_backend.asarray(array, array.dtype, like._data))


def _avg_divisor(size: int, kernel: int, stride: int, padding: int, out: int,
                 count_include_pad: bool) -> np.ndarray:
    """Per output position along one axis, what PyTorch divides the window sum by: the
    window clipped to the padded input, or to the input itself without count_include_pad."""
    start = np.arange(out) * stride - padding
    end = np.minimum(start + kernel, size + padding)
    if count_include_pad:
        return end - start
    return np.minimum(end, size) - np.maximum(start, 0)


def avg_pool2d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> Tensor:
    """Mean over each window (zero padding counted unless ``count_include_pad=False``).

    >>> F.avg_pool2d(chainrule.arange(16.).reshape(1, 1, 4, 4), 2)
    tensor([[[[ 2.5000,  4.5000],
              [10.5000, 12.5000]]]])
    """
    x, unbatched = _batched(input, 2, "avg_pool2d")
    op = "avg_pool2d"
    kernel = _pair(kernel_size, op, "kernel_size")
    for p, k in zip(_pair(padding, op, "padding"), kernel):
        if p > k // 2:
            raise RuntimeError(f"{op}(): pad should be at most half of kernel size, but got "
                               f"pad={p} and kernel_size={k}")
    kernel, step, dil, padding_pairs, (oh, ow) = _pool_geometry(
        op, x, kernel, stride, padding, 1, ceil_mode)
    n, c, h, w = x.shape
    cols = nn_kernels.im2col(x, kernel_size=kernel, dilation=dil, padding=padding_pairs,
                             stride=step, size=(h, w), value=0.0)
    sums = cols.reshape(n, c, kernel[0] * kernel[1], oh * ow).sum(2).reshape(n, c, oh, ow)
    if divisor_override is not None:
        out = sums / divisor_override
    else:
        rows = _avg_divisor(h, kernel[0], step[0], padding_pairs[0][0], oh, count_include_pad)
        columns = _avg_divisor(w, kernel[1], step[1], padding_pairs[1][0], ow, count_include_pad)
        divisor = np.multiply.outer(rows, columns).astype(_backend.np_dtype(x._data))
        out = sums / _on_device(divisor, x)
    return out.squeeze(0) if unbatched else out


def avg_pool1d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    """Mean over each window of (N, C, L): avg_pool2d over a height of 1.

    >>> F.avg_pool1d(chainrule.tensor([[[1., 3., 2., 0.]]]), 2)
    tensor([[[2., 1.]]])
    """
    x, unbatched = _batched(input, 1, "avg_pool1d")
    op = "avg_pool1d"
    if stride is not None and stride != [] and stride != ():
        stride = (1, _single(stride, op, "stride"))
    out = avg_pool2d(x.unsqueeze(2), (1, _single(kernel_size, op, "kernel_size")), stride,
                     (0, _single(padding, op, "padding")), ceil_mode, count_include_pad).squeeze(2)
    return out.squeeze(0) if unbatched else out


def _averaging_matrix(size: int, out: int, dtype: np.dtype) -> np.ndarray:
    """(out, size): row i averages input positions floor(i*size/out) .. ceil((i+1)*size/out)."""
    matrix = np.zeros((out, size), dtype=dtype)
    for i in range(out):
        start, end = (i * size) // out, -((-(i + 1) * size) // out)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


def adaptive_avg_pool2d(input: Tensor, output_size: Any) -> Tensor:
    """Average pooling to a fixed output size (None keeps that input dim), windows as PyTorch.

    >>> F.adaptive_avg_pool2d(chainrule.ones(2, 3, 7, 5), 1).shape
    chainrule.Size([2, 3, 1, 1])
    """
    x, unbatched = _batched(input, 2, "adaptive_avg_pool2d")
    sizes = (output_size, output_size) if output_size is None or isinstance(output_size, int) \
        else tuple(output_size)
    h, w = x.shape[2:]
    oh, ow = (n if s is None else int(s) for s, n in zip(sizes, (h, w)))
    if oh < 1 or ow < 1:
        raise RuntimeError(f"adaptive_avg_pool2d(): output_size must be positive, got {sizes}")
    dtype = _backend.np_dtype(x._data)
    # out = A_h x A_w^T: two matmuls, linear in x, so differentiable like any matmul
    rows = _on_device(_averaging_matrix(h, oh, dtype), x)
    columns = _on_device(np.ascontiguousarray(_averaging_matrix(w, ow, dtype).T), x)
    out = math.matmul(math.matmul(rows, x), columns)
    return out.squeeze(0) if unbatched else out


def adaptive_avg_pool1d(input: Tensor, output_size: Any) -> Tensor:
    """Average pooling of (N, C, L) to a fixed length.

    >>> F.adaptive_avg_pool1d(chainrule.ones(2, 3, 7), 2).shape
    chainrule.Size([2, 3, 2])
    """
    size = _single(output_size, "adaptive_avg_pool1d", "output_size")
    return adaptive_avg_pool2d(input.unsqueeze(-2), (1, size)).squeeze(-2)



# ------------------------------------------------------------------ attention
def _dropout(x: Tensor, p: float) -> Tensor:
    # imported here: nn.functional re-exports this module at its end
    from .functional import dropout

    return dropout(x, p, True)


def _safe_softmax(scores: Tensor) -> Tensor:
    """Softmax over the last dim, 0 (not NaN) on rows where every score is -inf, as
    PyTorch's scaled_dot_product_attention: a query that may attend nowhere gets 0."""
    xp = _backend.namespace_of(scores._data)
    empty = xp.all(scores._data == -np.inf, axis=-1, keepdims=True)
    if not bool(xp.any(empty)):
        return math.softmax(scores, -1)
    empty = _wrap(empty)
    return math.where(empty, 0.0, math.softmax(math.where(empty, 0.0, scores), -1))


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor,
                                 attn_mask: Tensor | None = None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """``softmax(q k^T * scale + mask) v`` over (..., L, E) queries and (..., S, E) keys.

    A bool ``attn_mask`` marks the pairs that may attend (True = take part); a float mask
    is added to the scores. ``is_causal`` masks the upper triangle. ``scale`` defaults to
    1/sqrt(E). Rows with nothing to attend to give 0.

    >>> q = k = v = chainrule.randn(2, 4, 5, 8)      # (N, heads, L, E)
    >>> F.scaled_dot_product_attention(q, k, v, is_causal=True).shape
    chainrule.Size([2, 4, 5, 8])
    """
    op = "scaled_dot_product_attention"
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise RuntimeError(f"{op}(): query {tuple(query.shape)}, key {tuple(key.shape)} and "
                           f"value {tuple(value.shape)} must share E (query/key) and S (key/value)")
    if enable_gqa and query.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        # grouped-query attention: each key/value head serves a group of query heads
        repeats = query.shape[-3] // key.shape[-3]
        key, value = (t.unsqueeze(-3).expand(*t.shape[:-2], repeats, *t.shape[-2:])
                      .reshape(*t.shape[:-3], query.shape[-3], *t.shape[-2:]) for t in (key, value))
    length, source = query.shape[-2], key.shape[-2]
    factor = 1.0 / sqrt(query.shape[-1]) if scale is None else scale
    scores = math.matmul(query, key.transpose(-2, -1)) * factor
    if is_causal:
        if attn_mask is not None:
            raise RuntimeError(f"{op}(): explicit attn_mask should not be set when is_causal=True")
        attn_mask = _on_device(np.tril(np.ones((length, source), dtype=bool)), query)
    if attn_mask is not None:
        if _backend.np_dtype(attn_mask._data) == np.bool_:
            scores = scores.masked_fill(attn_mask.logical_not(), -np.inf)
        else:
            scores = scores + attn_mask
    weights = _safe_softmax(scores)
    if dropout_p > 0:
        weights = _dropout(weights, dropout_p)
    return math.matmul(weights, value)


def _float_mask(mask: Tensor | None, dtype: Any, name: str) -> Tensor | None:
    """A bool mask (True = masked out, as nn.MultiheadAttention) as an additive float mask."""
    if mask is None:
        return None
    if _backend.np_dtype(mask._data) == np.bool_:
        return _on_device(np.where(_backend.to_numpy(mask._data), -np.inf, 0.0).astype(dtype), mask)
    if not mask.is_floating_point():
        raise RuntimeError(f"multi_head_attention_forward(): {name} must be bool or floating, got "
                           f"{mask.dtype}")
    return mask


def _rows_linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``linear`` over the last dim of (L, N, E) as one 2-D product over L*N rows: a 3-D
    product runs one BLAS call per leading index (measured 2x slower here)."""
    out = math.linear(x.reshape(-1, x.shape[-1]), weight, bias)
    return out.reshape(*x.shape[:-1], out.shape[-1])


def _in_projection(query: Tensor, key: Tensor, value: Tensor, embed_dim: int,
                   in_proj_weight: Tensor | None, in_proj_bias: Tensor | None,
                   separate: tuple | None) -> tuple:
    """q, k, v = the three projections; one matmul when query, key and value are one tensor."""
    biases = (None,) * 3 if in_proj_bias is None else tuple(
        in_proj_bias[i * embed_dim:(i + 1) * embed_dim] for i in range(3))
    if separate is not None:
        return tuple(_rows_linear(x, w, b) for x, w, b in zip((query, key, value), separate,
                                                              biases))
    if query is key and key is value:
        packed = _rows_linear(query, in_proj_weight, in_proj_bias)
        return tuple(packed[..., i * embed_dim:(i + 1) * embed_dim] for i in range(3))
    weights = tuple(in_proj_weight[i * embed_dim:(i + 1) * embed_dim] for i in range(3))
    return tuple(_rows_linear(x, w, b) for x, w, b in zip((query, key, value), weights, biases))


def multi_head_attention_forward(
        query: Tensor, key: Tensor, value: Tensor, embed_dim_to_check: int, num_heads: int,
        in_proj_weight: Tensor | None, in_proj_bias: Tensor | None, bias_k: Tensor | None,
        bias_v: Tensor | None, add_zero_attn: bool, dropout_p: float, out_proj_weight: Tensor,
        out_proj_bias: Tensor | None, training: bool = True,
        key_padding_mask: Tensor | None = None, need_weights: bool = True,
        attn_mask: Tensor | None = None, use_separate_proj_weight: bool = False,
        q_proj_weight: Tensor | None = None, k_proj_weight: Tensor | None = None,
        v_proj_weight: Tensor | None = None, static_k: Tensor | None = None,
        static_v: Tensor | None = None, average_attn_weights: bool = True,
        is_causal: bool = False) -> tuple:
    """Multi-head attention over sequence-first (L, N, E) inputs (or unbatched (L, E)), as
    PyTorch's: returns the output (L, N, E) and, with ``need_weights``, the attention
    weights (N, L, S) averaged over heads (or (N, heads, L, S)).

    Masks: ``key_padding_mask`` (N, S) and ``attn_mask`` (L, S) or (N*heads, L, S); in bool
    masks True marks what may NOT be attended to; float masks are added to the scores.

    >>> mha = chainrule.nn.MultiheadAttention(8, 2)      # holds the weights used here
    >>> x = chainrule.randn(5, 3, 8)
    >>> out, w = F.multi_head_attention_forward(x, x, x, 8, 2, mha.in_proj_weight,
    ...     mha.in_proj_bias, None, None, False, 0.0, mha.out_proj.weight, mha.out_proj.bias)
    >>> out.shape, w.shape
    (chainrule.Size([5, 3, 8]), chainrule.Size([3, 5, 5]))
    """
    op = "multi_head_attention_forward"
    unbatched = query.ndim == 2
    if unbatched:
        query, key, value = (t.unsqueeze(1) for t in (query, key, value))
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    length, batch, embed_dim = query.shape
    if embed_dim != embed_dim_to_check or embed_dim % num_heads:
        raise RuntimeError(f"{op}(): query of shape {tuple(query.shape)}: expected embed_dim "
                           f"{embed_dim_to_check}, divisible by num_heads={num_heads}")
    if is_causal and attn_mask is None:
        raise RuntimeError(f"{op}(): need attn_mask if specifying the is_causal hint")
    head_dim = embed_dim // num_heads
    dtype = _backend.np_dtype(query._data)
    causal_hint = is_causal and key_padding_mask is None and not need_weights
    attn_mask = None if causal_hint else _float_mask(attn_mask, dtype, "attn_mask")
    key_padding_mask = _float_mask(key_padding_mask, dtype, "key_padding_mask")
    if attn_mask is not None:
        expected = (length, key.shape[0]) if attn_mask.ndim == 2 else \
            (batch * num_heads, length, key.shape[0])
        if tuple(attn_mask.shape) != expected:
            raise RuntimeError(f"{op}(): attn_mask of shape {tuple(attn_mask.shape)}, expected "
                               f"{expected}")
        if attn_mask.ndim == 2:
            attn_mask = attn_mask.unsqueeze(0)

    separate = (q_proj_weight, k_proj_weight, v_proj_weight) if use_separate_proj_weight else None
    q, k, v = _in_projection(query, key, value, embed_dim, in_proj_weight, in_proj_bias, separate)
    if bias_k is not None and bias_v is not None:
        # one more key/value position, learned, that every query may attend to
        k = cat([k, bias_k.expand(1, batch, embed_dim)], 0)
        v = cat([v, bias_v.expand(1, batch, embed_dim)], 0)
        attn_mask = _pad_last(attn_mask)
        key_padding_mask = _pad_last(key_padding_mask)
    # (L, N, E) -> (N*heads, L, head_dim)
    q = q.reshape(length, batch * num_heads, head_dim).transpose(0, 1)
    k = (k.reshape(k.shape[0], batch * num_heads, head_dim).transpose(0, 1) if static_k is None
         else static_k)
    v = (v.reshape(v.shape[0], batch * num_heads, head_dim).transpose(0, 1) if static_v is None
         else static_v)
    if add_zero_attn:
        k = cat([k, zeros((batch * num_heads, 1, head_dim), dtype=dtype)], 1)
        v = cat([v, zeros((batch * num_heads, 1, head_dim), dtype=dtype)], 1)
        attn_mask = _pad_last(attn_mask)
        key_padding_mask = _pad_last(key_padding_mask)
    source = k.shape[1]
    if key_padding_mask is not None:
        if tuple(key_padding_mask.shape) != (batch, source):
            raise RuntimeError(f"{op}(): key_padding_mask of shape "
                               f"{tuple(key_padding_mask.shape)}, expected {(batch, source)}")
        padding = key_padding_mask.reshape(batch, 1, 1, source).expand(
            batch, num_heads, 1, source).reshape(batch * num_heads, 1, source)
        attn_mask = padding if attn_mask is None else attn_mask + padding
    if not training:
        dropout_p = 0.0

    if need_weights:
        # PyTorch's explicit path: weights = softmax(q k^T / sqrt(d) + mask), NaN on rows
        # with nothing to attend to
        scores = math.matmul(q * sqrt(1.0 / head_dim), k.transpose(1, 2))
        if attn_mask is not None:
            scores = scores + attn_mask
        weights = math.softmax(scores, -1)
        if dropout_p > 0:
            weights = _dropout(weights, dropout_p)
        out = math.matmul(weights, v)
        weights = weights.reshape(batch, num_heads, length, source)
        if average_attn_weights:
            weights = weights.mean(1)
    else:
        if attn_mask is not None:
            attn_mask = (attn_mask.unsqueeze(0) if attn_mask.shape[0] == 1
                         else attn_mask.reshape(batch, num_heads, -1, source))
        out = scaled_dot_product_attention(
            q.reshape(batch, num_heads, length, head_dim), k.reshape(batch, num_heads, source, head_dim),
            v.reshape(batch, num_heads, source, head_dim), attn_mask, dropout_p, causal_hint)
        out = out.reshape(batch * num_heads, length, head_dim)
        weights = None
    # (N*heads, L, head_dim) -> (L, N, E), then the output projection
    out = _rows_linear(out.transpose(0, 1).reshape(length, batch, embed_dim), out_proj_weight,
                       out_proj_bias)
    if unbatched:
        out = out.squeeze(1)
        weights = None if weights is None else weights.squeeze(0)
    return out, weights


def _pad_last(mask: Tensor | None) -> Tensor | None:
    """A mask with one more (unmasked) key position."""
    return None if mask is None else pad(mask, (0, 1))
