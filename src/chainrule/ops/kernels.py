"""Array kernels the Array API lacks; the one place with backend-specific code.

Each takes and returns backend arrays. A new backend (CuPy) supplies its own versions
of these functions and nothing else.
"""

from __future__ import annotations

import ctypes
import glob
import math
import os
from typing import Any

import numpy as np

_erf_scalar = np.frompyfunc(math.erf, 1, 1)


def erf(x: Any) -> Any:
    """The error function, elementwise (NumPy has none; math.erf is exact to float64)."""
    # frompyfunc gives an object array, or a bare Python float for a 0-d input
    return np.asarray(_erf_scalar(x), dtype=x.dtype)


# integer types of each width: ``select`` moves float bits through them unchanged
_BITS = {1: np.int8, 2: np.int16, 4: np.int32, 8: np.int64}
# below this many elements np.where's branches cost less than select's five calls
_SELECT_MIN_SIZE = 1 << 13


def select(condition: Any, x: Any, y: Any) -> Any:
    """``np.where(condition, x, y)``, branch-free for a large boolean condition.

    np.where branches per element: on a random mask (relu's backward) it runs ~4 ms per
    million floats against ~0.5 ms here. The bits are picked with an all-ones/all-zeros
    mask m, ``y ^ ((x ^ y) & m)``, so every value (inf, NaN, -0.0) comes through exactly.
    """
    if getattr(condition, "size", 0) < _SELECT_MIN_SIZE or condition.dtype != np.bool_:
        return np.where(condition, x, y)
    dtype = np.result_type(x, y)
    bits = _BITS.get(dtype.itemsize)
    if bits is None or dtype.kind not in "fiubV":
        return np.where(condition, x, y)
    y_bits = np.asarray(y, dtype).view(bits)
    if type(x) in (float, int) and x == 0 and not math.copysign(1, x) < 0:
        # x = +0 has no bits set (relu's backward): y's bits where false, two passes fewer
        return np.bitwise_and(np.subtract(condition, 1, dtype=bits), y_bits).view(dtype)
    x_bits = np.asarray(x, dtype).view(bits)
    mask = np.subtract(0, condition, dtype=bits)  # -1 (all bits set) where true, else 0
    picked = np.bitwise_and(np.bitwise_xor(x_bits, y_bits), mask)  # the broadcast shape
    picked ^= y_bits
    return picked.view(dtype)


def index_add(shape: tuple, index: Any, values: Any) -> Any:
    """Zeros of ``shape`` with ``values`` added at ``index`` (repeated indices accumulate)."""
    out = np.zeros(shape, dtype=values.dtype)
    if is_basic(index):
        out[index] = values
    else:
        np.add.at(out, index, values)
    return out


def gather(x: Any, axis: int, index: Any) -> Any:
    """``x`` read at ``index`` along ``axis`` (torch.gather: index may be smaller than x)."""
    x = x[tuple(slice(0, n) if d != axis else slice(None) for d, n in enumerate(index.shape))]
    return np.take_along_axis(x, index, axis=axis)


def scatter_add(base: Any, axis: int, index: Any, src: Any) -> Any:
    """A copy of ``base`` with ``src`` added at ``index`` along ``axis`` (torch.scatter_add)."""
    out = base.copy()
    np.add.at(out, _scatter_index(index, axis), src[tuple(slice(0, n) for n in index.shape)])
    return out


def scatter(base: Any, axis: int, index: Any, src: Any) -> Any:
    """A copy of ``base`` with ``src`` written at ``index`` along ``axis`` (torch.scatter)."""
    out = base.copy()
    out[_scatter_index(index, axis)] = src[tuple(slice(0, n) for n in index.shape)]
    return out


def _scatter_index(index: Any, axis: int) -> tuple:
    grids = list(np.indices(index.shape, sparse=True))
    grids[axis] = index
    return tuple(grids)


def is_basic(index: Any) -> bool:
    """True when ``index`` has no integer/boolean arrays, so no position repeats."""
    items = index if isinstance(index, tuple) else (index,)
    return all(item is None or item is Ellipsis or isinstance(item, (int, slice, np.integer))
               for item in items)


def pad(x: Any, widths: tuple, value: float) -> Any:
    """Constant padding with ``(before, after)`` per axis; negative widths crop instead."""
    crop = tuple(slice(max(-lo, 0), n - max(-hi, 0)) for (lo, hi), n in zip(widths, x.shape))
    x = x[crop]
    grow = tuple((max(lo, 0), max(hi, 0)) for lo, hi in widths)
    if not any(lo or hi for lo, hi in grow):
        return x.copy()
    return np.pad(x, grow, mode="constant", constant_values=value)


# ------------------------------------------------------------------ sliding windows
# (added for the convolution and pooling primitives in ops/nn_kernels.py)
def windows_out(size: int, kernel: int, dilation: int, stride: int) -> int:
    """How many windows of ``kernel`` taps ``dilation`` apart fit, ``stride`` apart, in ``size``."""
    return (size - dilation * (kernel - 1) - 1) // stride + 1


def im2col(x: Any, kernel_size: tuple, dilation: tuple, padding: tuple, stride: tuple,
           value: float) -> Any:
    """(N, C, H, W) -> (N, C*kh*kw, L): each window of the padded image as a column (F.unfold).

    ``padding`` is ((top, bottom), (left, right)), filled with ``value``; a negative width
    crops. The windows are a strided view of the image; the reshape into columns copies.
    """
    (kh, kw), (dh, dw), (sh, sw) = kernel_size, dilation, stride
    if any(p for pair in padding for p in pair):
        x = pad(x, ((0, 0), (0, 0)) + tuple(padding), value)
    n, c, h, w = x.shape
    oh, ow = windows_out(h, kh, dh, sh), windows_out(w, kw, dw, sw)
    s_n, s_c, s_h, s_w = x.strides
    windows = np.lib.stride_tricks.as_strided(
        x, (n, c, kh, kw, oh, ow), (s_n, s_c, dh * s_h, dw * s_w, sh * s_h, sw * s_w),
        writeable=False)
    return windows.reshape(n, c * kh * kw, oh * ow)


def col2im(cols: Any, size: tuple, kernel_size: tuple, dilation: tuple, padding: tuple,
           stride: tuple) -> Any:
    """(N, C*kh*kw, L) -> (N, C, H, W): every column added back where its window lies (F.fold).

    One strided slice-add per kernel offset (kh*kw of them); overlapping windows sum.
    """
    (kh, kw), (dh, dw), (sh, sw) = kernel_size, dilation, stride
    (top, bottom), (left, right) = padding
    n, ckk, _ = cols.shape
    hp, wp = size[0] + top + bottom, size[1] + left + right
    oh, ow = windows_out(hp, kh, dh, sh), windows_out(wp, kw, dw, sw)
    cols = cols.reshape(n, ckk // (kh * kw), kh, kw, oh, ow)
    # a negative bottom/right width cropped the image in im2col: those pixels get zeros
    out = np.zeros((n, cols.shape[1], max(hp, top + size[0]), max(wp, left + size[1])),
                   dtype=cols.dtype)
    for i in range(kh):
        rows = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
        for j in range(kw):
            out[:, :, rows, j * dw:j * dw + sw * (ow - 1) + 1:sw] += cols[:, :, i, j]
    return out[:, :, top:top + size[0], left:left + size[1]]


# ------------------------------------------------------------------ y += alpha * x
def _blas_axpy() -> dict:
    """NumPy's own OpenBLAS axpy for float32/float64, found by its wheel's symbol names;
    empty where NumPy is built otherwise (then ``axpy`` takes NumPy's two passes)."""
    blas = np.__config__.CONFIG.get("Build Dependencies", {}).get("blas", {})
    if blas.get("name") != "scipy-openblas":
        return {}
    libraries = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs",
                                       "libscipy_openblas64_*"))
    try:
        library = ctypes.CDLL(libraries[0])
        routines = {}
        for dtype, name, scalar in ((np.float32, "scipy_cblas_saxpy64_", ctypes.c_float),
                                    (np.float64, "scipy_cblas_daxpy64_", ctypes.c_double)):
            routine = getattr(library, name)
            routine.argtypes = [ctypes.c_int64, scalar, ctypes.c_void_p, ctypes.c_int64,
                                ctypes.c_void_p, ctypes.c_int64]
            routine.restype = None
            routines[np.dtype(dtype)] = routine
        return routines
    except (IndexError, OSError, AttributeError):
        return {}


_AXPY = _blas_axpy()
# below this the ctypes call (~2 us) costs more than NumPy's temporary
_AXPY_MIN_SIZE = 1 << 13


def axpy(y: Any, alpha: float, x: Any) -> bool:
    """``y += alpha * x`` in place in one pass through BLAS, when it can (an optimizer's
    update); returns False, leaving y alone, for other dtypes, layouts, small sizes and
    overlapping operands, where the caller does NumPy's two passes.

    NumPy needs a temporary for ``alpha * x`` and two passes over memory (72 us against
    26 us on 400k float32); BLAS axpy reads x and y once.
    """
    routine = _AXPY.get(y.dtype)
    if (routine is None or x.dtype != y.dtype or x.shape != y.shape or y.size < _AXPY_MIN_SIZE
            or not (y.flags.c_contiguous and x.flags.c_contiguous and y.flags.writeable)
            or (x is not y and np.may_share_memory(x, y))):
        return False
    routine(y.size, alpha, x.ctypes.data, 1, y.ctypes.data, 1)
    return True


# ------------------------------------------------------------------ LSTM
# (for ops/nn_kernels.py's lstm_cell and lstm_layer: gates (i, f, g, o) in blocks of H
# columns, state [h, c] side by side in 2H columns)
def _lstm_cell_into(acts: Any, c: Any, state: Any, tanh_c: Any) -> None:
    """The cell's nonlinearities in place: ``acts`` holds z = x_gates + h_gates and becomes
    (i, f, g, o); ``state`` gets [h', c'] and ``tanh_c`` tanh c'.

    i, f, o = sigmoid, g = tanh of z's blocks; c' = f c + i g; h' = o tanh c'.
    sigmoid(z) = (1 + tanh(z/2)) / 2: no overflow, one tanh for all gates.
    """
    size = c.shape[-1]
    acts *= 0.5
    acts[..., 2 * size:3 * size] *= 2
    np.tanh(acts, out=acts)
    for sig in (acts[..., :2 * size], acts[..., 3 * size:]):
        sig *= 0.5
        sig += 0.5
    i, f, g, o = (acts[..., k * size:(k + 1) * size] for k in range(4))
    c_new = state[..., size:]
    np.multiply(f, c, out=c_new)
    c_new += i * g
    np.tanh(c_new, out=tanh_c)
    np.multiply(o, tanh_c, out=state[..., :size])


def lstm_cell(x_gates: Any, h_gates: Any, c: Any) -> tuple:
    """One LSTM step after its matmuls: ``([h', c'], activations (i, f, g, o), tanh c')``."""
    acts = x_gates + h_gates
    state = np.empty((*c.shape[:-1], 2 * c.shape[-1]), dtype=acts.dtype)
    tanh_c = np.empty_like(state[..., :c.shape[-1]])
    _lstm_cell_into(acts, c, state, tanh_c)
    return state, acts, tanh_c


def lstm_cell_backward(grad: Any, c: Any, acts: Any, tanh_c: Any, dz: Any = None) -> tuple:
    """lstm_cell's VJP from its saved activations: ``(dz, dc', f)``, dc = dc' f; dz is
    written into ``dz`` when given.

    dc' = gc + gh o (1 - tanh^2 c');  dz_i = dc' g i (1 - i),  dz_f = dc' c f (1 - f),
    dz_g = dc' i (1 - g^2),  dz_o = gh tanh(c') o (1 - o).
    """
    size = c.shape[-1]
    gh, gc = grad[..., :size], grad[..., size:]
    i, f, g, o = (acts[..., k * size:(k + 1) * size] for k in range(4))
    dc_new = gh * o
    dc_new *= 1 - tanh_c * tanh_c
    dc_new += gc
    if dz is None:
        dz = np.empty_like(acts)
    np.multiply(dc_new * g, i * (1 - i), out=dz[..., :size])
    np.multiply(dc_new * c, f * (1 - f), out=dz[..., size:2 * size])
    np.multiply(dc_new * i, 1 - g * g, out=dz[..., 2 * size:3 * size])
    np.multiply(gh * tanh_c, o * (1 - o), out=dz[..., 3 * size:])
    return dz, dc_new, f


def lstm_layer(projected: Any, h0: Any, c0: Any, w_hh: Any, reverse: bool) -> tuple:
    """A whole LSTM layer over time: ``(states (L, N, 2H) [h_t, c_t], activations
    (L, N, 4H), tanh c_t (L, N, H))``; per step one matmul ``h W_hh^T`` written straight
    into that step's activations, then the cell in place. ``reverse``: from t = L-1 down."""
    length, batch, gates = projected.shape
    size = gates // 4
    states = np.empty((length, batch, 2 * size), dtype=projected.dtype)
    acts = np.empty_like(projected)
    tanh_c = np.empty((length, batch, size), dtype=projected.dtype)
    w_t = np.ascontiguousarray(w_hh.T)  # (H, 4H): h W^T reads it row by row (measured 1.5x)
    h, c = h0, c0
    for t in (range(length - 1, -1, -1) if reverse else range(length)):
        np.matmul(h, w_t, out=acts[t])
        acts[t] += projected[t]
        _lstm_cell_into(acts[t], c, states[t], tanh_c[t])
        h, c = states[t, :, :size], states[t, :, size:]
    return states, acts, tanh_c


def lstm_layer_backward(grad: Any, h0: Any, c0: Any, w_hh: Any, states: Any, acts: Any,
                        tanh_c: Any, reverse: bool, needs: tuple) -> tuple:
    """lstm_layer's VJP: gradients of (projected, h0, c0, w_hh), None where not needed.

    Back through time, each step's dz (the gates' gradient) gives dh_{t-1} = dz W_hh and
    dc_{t-1} = dc' f; the weight's gradient sum_t dz_t^T h_{t-1} is one matmul at the end.
    """
    length, batch, gates = acts.shape
    size = gates // 4
    dz = np.empty_like(acts)
    dh = np.zeros_like(h0)
    dc = np.zeros_like(c0)
    order = range(length) if reverse else range(length - 1, -1, -1)
    previous = 1 if reverse else -1  # where step t's incoming state was made
    for t in order:
        first = t == (length - 1 if reverse else 0)
        c_prev = c0 if first else states[t + previous, :, size:]
        step_grad = grad[t].copy()
        step_grad[:, :size] += dh
        step_grad[:, size:] += dc
        _, dc_new, f = lstm_cell_backward(step_grad, c_prev, acts[t], tanh_c[t], dz[t])
        dc = dc_new * f
        dh = dz[t] @ w_hh
    dw = None
    if needs[3]:
        # h_{t-1} of every step, in step order: h0 then the states before
        h_prev = np.empty((length, batch, size), dtype=acts.dtype)
        if reverse:
            h_prev[:-1] = states[1:, :, :size]
            h_prev[-1] = h0
        else:
            h_prev[1:] = states[:-1, :, :size]
            h_prev[0] = h0
        dw = dz.reshape(-1, gates).T @ h_prev.reshape(-1, size)
    return (dz if needs[0] else None, dh if needs[1] else None, dc if needs[2] else None, dw)


# ------------------------------------------------------------------ max pooling
# (for ops/nn_kernels.py's max_pool: windows that tile the image, stride = kernel size)
def _tiled(x: Any, kernel_size: tuple) -> Any:
    """The part of (N, C, H, W) that windows tiling the image cover (stride = kernel, no
    padding): rows and columns past the last whole window are left out."""
    (kh, kw), (h, w) = kernel_size, x.shape[2:]
    return x[:, :, :h // kh * kh, :w // kw * kw]


def pool_max(x: Any, kernel_size: tuple) -> tuple:
    """Max pooling over tiling windows: ``(maxima (N, C, oh, ow), the tap i*kw + j of each
    window's first maximum in row-major order)``, the first NaN where a window holds one
    (as PyTorch).

    Two running maxima with strict ``>`` (a tie keeps the earlier): across the kw columns
    of each window row, then across the kh rows; the first row holding the maximum, then
    its first column, is the row-major first. Elementwise passes over strided planes:
    argmax or max over a short last axis spends its time per window (measured 3 vs 19 ms,
    2x2 pooling of 64x64x24x24, one thread).
    """
    (kh, kw) = kernel_size
    x = _tiled(x, kernel_size)
    if np.isnan(x).any():
        n, c, h, w = x.shape
        windows = x.reshape(n, c, h // kh, kh, w // kw, kw).transpose(0, 1, 2, 4, 3, 5).reshape(
            n, c, h // kh, w // kw, kh * kw)
        first = windows.argmax(axis=-1)  # the first maximum, or the first NaN
        return np.take_along_axis(windows, first[..., None], axis=-1)[..., 0], first
    index = np.min_scalar_type(kh * kw)
    rows = x[..., 0::kw].copy()  # each window row's maximum so far, and its column
    column = np.zeros(rows.shape, dtype=index)
    # a later tap's index exceeds every earlier one, so "take it where later" is a maximum
    for j in range(1, kw):
        later = x[..., j::kw] > rows
        np.maximum(rows, x[..., j::kw], out=rows)
        np.maximum(column, np.multiply(later, j, dtype=index), out=column)
    out = rows[:, :, 0::kh].copy()
    first = column[:, :, 0::kh].copy()
    for i in range(1, kh):
        later = rows[:, :, i::kh] > out
        np.maximum(out, rows[:, :, i::kh], out=out)
        taps = column[:, :, i::kh] + index.type(i * kw)
        np.maximum(first, np.multiply(later, taps, dtype=index), out=first)
    return out, first


def pool_tap_mask(first: Any, taps: int) -> Any:
    """(N, C, oh, ow, taps) booleans, True at each window's first maximum (``first`` may be
    a tensor holding pool_max's indices: read as an array)."""
    return np.arange(taps) == np.asarray(first)[..., None]


def pool_place(grad: Any, first: Any, kernel_size: tuple, size: tuple) -> Any:
    """pool_max's VJP: zeros of (N, C, *size) with each window's gradient at its maximum.

    Per tap, the gradient where that tap is the window's maximum and 0 elsewhere, by
    ANDing its bits with an all-ones/all-zeros mask (two passes, exact for every value;
    np.copyto(where=) measured 4x slower), written into the tap's strided plane.
    """
    (kh, kw), (n, c) = kernel_size, grad.shape[:2]
    out = np.zeros((n, c, *size), dtype=grad.dtype)
    tiled = _tiled(out, kernel_size)
    bits = _BITS[grad.dtype.itemsize]
    grad_bits = np.ascontiguousarray(grad).view(bits)
    for i in range(kh):
        for j in range(kw):
            mask = np.negative(first == i * kw + j, dtype=bits)  # -1 (all bits) at the tap
            tiled[:, :, i::kh, j::kw] = np.bitwise_and(grad_bits, mask, out=mask).view(grad.dtype)
    return out


# ------------------------------------------------------------------ layer norm
# (for ops/nn_kernels.py's layer_norm: normalised over the trailing ``axes``)
def layer_norm(x: Any, weight: Any, bias: Any, axes: tuple, eps: float) -> tuple:
    """``(xhat * weight + bias, xhat, rstd)`` with xhat = (x - mean) * rstd and
    rstd = 1 / sqrt(var + eps), mean and (biased) variance over ``axes``."""
    mean = x.mean(axis=axes, keepdims=True)
    xhat = x - mean
    var = np.mean(np.square(xhat), axis=axes, keepdims=True)
    rstd = 1 / np.sqrt(var + eps)
    xhat *= rstd
    out = xhat * weight
    out += bias
    return out, xhat, rstd


def layer_norm_backward(grad: Any, weight: Any, xhat: Any, rstd: Any, axes: tuple,
                        needs: tuple) -> tuple:
    """layer_norm's VJP from xhat and rstd: (dx, dweight, dbias), None where not needed.

    dx = rstd (gw - mean(gw) - xhat mean(gw xhat)) with gw = g * weight; dweight and dbias
    sum g xhat and g over the leading (batch) axes.
    """
    leading = tuple(range(grad.ndim - len(axes)))
    dx = dweight = dbias = None
    if needs[0]:
        gw = grad * weight
        dx = gw - gw.mean(axis=axes, keepdims=True)
        dx -= xhat * (gw * xhat).mean(axis=axes, keepdims=True)
        dx *= rstd
    if needs[1]:
        dweight = (grad * xhat).sum(axis=leading)
    if needs[2]:
        dbias = grad.sum(axis=leading)
    return dx, dweight, dbias
