"""Array kernels the Array API lacks; the one place with backend-specific code.

Each kernel takes the array namespace ``xp`` first and backend arrays after it. Most
have a NumPy version (the fast path, tried first) and a version in Array API terms that
serves CuPy and array_api_strict; the kernels listed in ``BACKEND_SPECIFIC`` have no
Array API version at all: they run on NumPy and CuPy only, and on any other backend
raise ``MissingKernel`` (the op suite's strict run skips the cases that reach one, and
tests them on NumPy).
"""

from __future__ import annotations

import ctypes
import glob
import importlib
import math
import os
from typing import Any

import numpy as np

from .. import _backend, _dtype

# kernel -> why it needs backend-specific code; each has a NumPy and a CuPy version
BACKEND_SPECIFIC = {
    "erf": "the Array API has no error function (NumPy: math.erf per element; CuPy: "
           "cupyx.scipy.special.erf)",
    "index_add": "adding at integer-array positions that may repeat needs an unbuffered "
                 "scatter-add (np.add.at, cupyx.scatter_add); the Array API has none",
    "scatter_add": "the same unbuffered scatter-add along an axis",
    "scatter": "writing at integer-array positions (the Array API's __setitem__ takes no "
               "integer arrays)",
    "advanced_index": "reading at integer arrays mixed with slices, or at boolean masks, "
                      "as NumPy/PyTorch index (the Array API allows integer arrays only "
                      "alongside integers)",
}


class MissingKernel(NotImplementedError):
    """A backend-specific kernel has no version for this backend."""

    def __init__(self, kernel: str, xp: Any) -> None:
        self.kernel = kernel
        super().__init__(f"{kernel}: no {xp.__name__} version of this backend-specific kernel "
                         f"({BACKEND_SPECIFIC[kernel]}); it runs on NumPy (cpu) and CuPy (cuda)")


def _is_cupy(xp: Any) -> bool:
    # the CUDA backend's namespace is array_api_compat.cupy (CuPy with the Array API's names)
    return xp.__name__.endswith("cupy")


def _cupy(module: str = "cupy") -> Any:
    """CuPy itself, or one of its modules (imported only when a CUDA tensor needs it)."""
    return importlib.import_module(module)


def native_dtype(xp: Any, np_dtype: Any) -> Any:
    """The dtype object of ``xp``'s backend for a NumPy dtype (the same object for NumPy
    and CuPy, array_api_strict's own for it)."""
    if xp is np:
        return np_dtype
    return _backend.BY_NAMESPACE[xp].native_dtype(_dtype.to_numpy_dtype(np_dtype))


def astype(xp: Any, x: Any, np_dtype: Any) -> Any:
    """A copy of ``x`` converted to ``np_dtype``'s counterpart on ``x``'s backend."""
    if xp is np:
        return x.astype(np_dtype)
    return xp.astype(x, native_dtype(xp, np_dtype))


_BFLOAT16 = _dtype.bfloat16.np
FLOAT32 = np.dtype(np.float32)  # what bfloat16 is accumulated in (accumulate_wide)


def accumulate_wide(xp: Any, x: Any) -> Any:
    """The dtype to round a reduction's (or softmax's) result back to when ``x`` must be
    computed in float32 (bfloat16: PyTorch accumulates it in float32), else None."""
    return _BFLOAT16 if xp is np and x.dtype == _BFLOAT16 else None


def into(xp: Any, function: str, *args: Any, out: Any) -> Any:
    """``function(*args)`` written into ``out`` where the backend has out= (NumPy, CuPy: an
    optimizer's scratch buffers), else a new array; returns the result either way."""
    if xp is np or _is_cupy(xp):
        return getattr(np if xp is np else _cupy(), function)(*args, out=out)
    return getattr(xp, function)(*args)


class Opmath(float):
    """A Python float that NumPy arrays combine with in float32, the result rounded back to
    the array's dtype: PyTorch's arithmetic of a bfloat16 tensor with a Python number (NumPy
    gives a float32 array). ``math._scalar_operand`` makes one for bfloat16 tensors only;
    NumPy defers to it (``__array_ufunc__ = None``), so plain floats pay nothing.
    """

    __array_ufunc__ = None

    def _with(self, array: Any, op: Any) -> Any:
        return op(array.astype(FLOAT32), float(self)).astype(array.dtype)

    def __neg__(self) -> Opmath:
        return Opmath(-float(self))  # x - c is x + (-c): still applied in float32

    def __add__(self, other: Any) -> Any:
        if isinstance(other, np.ndarray):
            return self._with(other, lambda a, c: c + a)
        return float(self) + other

    __radd__ = __add__

    def __sub__(self, other: Any) -> Any:
        if isinstance(other, np.ndarray):
            return self._with(other, lambda a, c: c - a)
        return float(self) - other

    def __rsub__(self, other: Any) -> Any:
        if isinstance(other, np.ndarray):
            return self._with(other, lambda a, c: a - c)
        return other - float(self)

    def __mul__(self, other: Any) -> Any:
        if isinstance(other, np.ndarray):
            return self._with(other, lambda a, c: c * a)
        return float(self) * other

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> Any:
        if isinstance(other, np.ndarray):
            return self._with(other, lambda a, c: c / a)
        return float(self) / other

    def __rtruediv__(self, other: Any) -> Any:
        if isinstance(other, np.ndarray):
            return self._with(other, lambda a, c: a / c)
        return other / float(self)

    def __pow__(self, other: Any) -> Any:
        if isinstance(other, np.ndarray):
            return self._with(other, lambda a, c: c ** a)
        return float(self) ** other

    def __rpow__(self, other: Any) -> Any:
        if isinstance(other, np.ndarray):
            return self._with(other, lambda a, c: a ** c)
        return other ** float(self)


def quiet_division() -> Any:
    """A context in which x / 0 and 0 / 0 give inf and NaN without NumPy's warnings (PyTorch
    gives no warning; array_api_strict computes with NumPy, CuPy never warns)."""
    return np.errstate(divide="ignore", invalid="ignore")


def sigmoid(xp: Any, x: Any) -> Any:
    """1/(1+e^-x) for x >= 0 and e^x/(1+e^x) for x < 0, with e = e^-|x|: no overflow on
    either side."""
    if xp is np:
        # the numerator, 1 or e, is e^min(x, 0): a second exponential (0.5 ms per million
        # float32) instead of np.where, which branches on the sign (4 ms per million random
        # signs); sigmoid of 2M float32 10.0 -> 4.0 ms, the same bits but a NaN's sign
        numerator = np.minimum(x, 0, out=np.empty_like(x))  # an array also when x is 0-d
        np.exp(numerator, out=numerator)
        e = np.abs(x, out=np.empty_like(x))
        np.negative(e, out=e)
        np.exp(e, out=e)
        e += 1
        return np.divide(numerator, e, out=numerator)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1.0, e) / (e + 1)


def power(xp: Any, x: Any, exponent: Any) -> Any:
    """``x ** exponent`` for a number exponent, with PyTorch's special cases on NumPy float
    arrays: x x x for 3, 1 / (x x) for -2, 1 / sqrt(x) for -0.5 (NumPy's own cover 2, 0.5
    and -1). np.power calls pow per element for the others: x ** 3.0 forward and backward
    took 65 ms on 1M float32 against PyTorch's 1.6."""
    if type(x) is np.ndarray and x.dtype.kind == "f" and type(exponent) in (int, float):
        if exponent == 3:
            return x * x * x
        if exponent == -2:
            return 1 / (x * x)
        if exponent == -0.5:
            return 1 / np.sqrt(x)
    return x ** exponent


_erf_scalar = np.frompyfunc(math.erf, 1, 1)
_OPTIONAL: dict = {}  # module name -> the module, or None when it is not installed


def _optional(module: str) -> Any:
    """An optional dependency's module (SciPy's), imported on first use; None without it."""
    if module not in _OPTIONAL:
        try:
            _OPTIONAL[module] = importlib.import_module(module)
        except ImportError:
            _OPTIONAL[module] = None
    return _OPTIONAL[module]


def erf(xp: Any, x: Any) -> Any:
    """The error function, elementwise (backend-specific: BACKEND_SPECIFIC)."""
    if xp is np:
        # SciPy's vectorised erf for float16/32/64 (33 against 230 ms for 2M values, its
        # float64 results within 5e-16 of math.erf's); without SciPy math.erf element by
        # element (exact to float64; frompyfunc gives an object array, or a bare Python float
        # for a 0-d input)
        special = _optional("scipy.special")
        if special is not None and x.dtype.kind == "f":
            return np.asarray(special.erf(x), dtype=x.dtype)
        return np.asarray(_erf_scalar(x), dtype=x.dtype)
    if _is_cupy(xp):
        return _cupy("cupyx.scipy.special").erf(x)
    raise MissingKernel("erf", xp)


# zeros that relu compares against, grown to the largest input seen; np.zeros takes fresh
# pages from calloc and nothing writes them, so they stay the kernel's shared zero page
_ZEROS: dict = {}
# below this many elements the scalar path's fewer calls win
_RELU_MIN_SIZE = 1 << 12


def relu(xp: Any, x: Any) -> Any:
    """``max(x, 0)`` elementwise, NaN kept (PyTorch's relu).

    NumPy's maximum has a vectorised loop for two arrays of one shape but not for an array
    and a scalar: 0.19 ms against 0.08 ms for (1024, 512) float32, so on NumPy the zero is
    a read-only view of a shared zeros buffer.
    """
    if xp is not np or x.size < _RELU_MIN_SIZE or not x.flags.c_contiguous:
        return xp.maximum(x, 0)
    zeros = _ZEROS.get(x.dtype)
    if zeros is None or zeros.size < x.size:
        zeros = np.zeros(x.size, dtype=x.dtype)
        zeros.flags.writeable = False
        _ZEROS[x.dtype] = zeros
    return np.maximum(x, zeros[:x.size].reshape(x.shape))


# integer types of each width: ``select`` moves float bits through them unchanged
_BITS = {1: np.int8, 2: np.int16, 4: np.int32, 8: np.int64}
# below this many elements np.where's branches cost less than select's five calls
_SELECT_MIN_SIZE = 1 << 13


def select(xp: Any, condition: Any, x: Any, y: Any) -> Any:
    """``xp.where(condition, x, y)``; on NumPy, branch-free for a large boolean condition.

    np.where branches per element: on a random mask (relu's backward) it runs ~4 ms per
    million floats against ~0.5 ms here. The bits are picked with an all-ones/all-zeros
    mask m, ``y ^ ((x ^ y) & m)``, so every value (inf, NaN, -0.0) comes through exactly.
    """
    if xp is not np:
        return xp.where(condition, x, y)
    if getattr(condition, "size", 0) < _SELECT_MIN_SIZE or condition.dtype != np.bool_:
        return np.where(condition, x, y)
    dtype = np.result_type(x, y)
    bits = _BITS.get(dtype.itemsize)
    if bits is None or dtype.kind not in "fiubV":
        return np.where(condition, x, y)
    # a +0 scalar has no bits set (relu's and where's backward): the other side's bits
    # under a mask, two passes fewer
    if type(x) in (float, int) and x == 0 and not math.copysign(1, x) < 0:
        y_bits = np.asarray(y, dtype).view(bits)
        return np.bitwise_and(np.subtract(condition, 1, dtype=bits), y_bits).view(dtype)
    x_bits = np.asarray(x, dtype).view(bits)
    if type(y) in (float, int) and y == 0 and not math.copysign(1, y) < 0:
        return np.bitwise_and(np.negative(condition, dtype=bits), x_bits).view(dtype)
    y_bits = np.asarray(y, dtype).view(bits)
    mask = np.subtract(0, condition, dtype=bits)  # -1 (all bits set) where true, else 0
    picked = np.bitwise_and(np.bitwise_xor(x_bits, y_bits), mask)  # the broadcast shape
    picked ^= y_bits
    return picked.view(dtype)


# float dtype -> (integer of its width, all bits but the sign, the sign's shift)
_MAGNITUDE_BITS = {np.dtype(np.float32): (np.int32, 0x7FFFFFFF, 31),
                   np.dtype(np.float64): (np.int64, 0x7FFFFFFFFFFFFFFF, 63)}


def relu_backward(xp: Any, y: Any, g: Any) -> Any:
    """relu's VJP from its output ``y = relu(x)``: ``where(y <= 0, 0, g)`` (PyTorch's
    threshold_backward: g passes at a NaN).

    On NumPy float32/float64, from y's bits: a relu output is +0, -0, positive or NaN, so
    g passes exactly where the bits other than the sign are not all zero. With t those bits
    (0 <= t < 2^31), -t >> 31 is all ones where t > 0, else 0: four integer passes, against
    a comparison, a bool-to-int conversion and an AND (0.90 vs 1.40 ms on 2M float32).
    The result is laid out as g: conv2d's input gradient comes laid out (C, N, H, W), and
    the conv2d backward before it then reads it as rows without a copy (relu's backward
    and that copy 1.68 ms, this 1.27, on conv1 of the CNN step, one thread).
    """
    found = _MAGNITUDE_BITS.get(y.dtype) if type(y) is np.ndarray else None
    if (found is None or type(g) is not np.ndarray or g.dtype != y.dtype or g.shape != y.shape
            or y.size < _SELECT_MIN_SIZE):
        return select(xp, y <= 0, 0.0, g)
    bits, magnitude, sign_shift = found
    mask = np.empty_like(g, dtype=bits)  # g's layout
    np.bitwise_and(y.view(bits), magnitude, out=mask)
    np.negative(mask, out=mask)
    np.right_shift(mask, sign_shift, out=mask)
    np.bitwise_and(mask, g.view(bits), out=mask)
    return mask.view(y.dtype)


def full_index(index: Any) -> tuple:
    """A basic index with a trailing Ellipsis: the Array API requires every axis to be
    indexed (or an Ellipsis), where NumPy fills the rest with ``:``. NumPy then also gives
    a 0-d array, never a scalar, when every axis takes an integer."""
    if not isinstance(index, tuple):
        return (index,) if index is Ellipsis else (index, Ellipsis)
    return index if any(item is Ellipsis for item in index) else (*index, Ellipsis)


def advanced_index(xp: Any, x: Any, index: Any) -> Any:
    """``x[index]`` with integer arrays or boolean masks (backend-specific)."""
    if xp is np or _is_cupy(xp):
        return x[index]
    raise MissingKernel("advanced_index", xp)


# below this many values np.add.at's single call costs less than building the sparse matrix
_SPARSE_MIN_SIZE = 1 << 14


def _rows_added(shape: tuple, index: Any, values: Any) -> Any:
    """``index_add`` for one integer array indexing axis 0 (``x[i]``, index_select, an
    embedding's lookup), as the product of a sparse 0/1 matrix S (S[index[k], k] = 1) with
    the values as rows: SciPy's CSR product adds them in np.add.at's order, and 4-17x faster
    (512 x 2048 float32 rows from 4096 indices: 4.5 against 75 ms). None where it does not
    apply (no SciPy, other index kinds or dtypes, small sizes, indices out of range)."""
    if type(index) is tuple and len(index) == 1:
        index = index[0]
    if (type(index) is not np.ndarray or index.dtype.kind not in "iu" or not shape
            or values.dtype not in BLAS_DTYPES or values.size < _SPARSE_MIN_SIZE
            or values.shape != index.shape + tuple(shape[1:])):
        return None
    sparse = _optional("scipy.sparse")
    rows, count = shape[0], index.size
    if sparse is None or count == 0:
        return None
    positions = index.reshape(-1)
    if positions.min() < -rows or positions.max() >= rows:
        return None  # np.add.at raises PyTorch's IndexError
    positions = np.where(positions < 0, positions + rows, positions)
    picks = sparse.csr_matrix((np.ones(count, dtype=values.dtype), (positions, np.arange(count))),
                       shape=(rows, count))
    return np.asarray(picks @ values.reshape(count, -1)).reshape(shape)


def index_add(xp: Any, shape: tuple, index: Any, values: Any) -> Any:
    """Zeros of ``shape`` with ``values`` added at ``index`` (repeated indices accumulate);
    backend-specific unless ``index`` is basic (no position can repeat)."""
    if xp is np and not is_basic(index):
        added = _rows_added(shape, index, values)
        if added is not None:
            return added
    out = xp.zeros(shape, dtype=values.dtype)
    if is_basic(index):
        index = full_index(index)
        if any(item is None for item in index):
            # the Array API's __setitem__ takes no None: drop the axes None added
            index = tuple(item for item in index if item is not None)
            values = xp.reshape(values, out[index].shape)
        out[index] = values
    elif xp is np:
        np.add.at(out, index, values)
    elif _is_cupy(xp):
        _cupy("cupyx").scatter_add(out, index, values)
    else:
        raise MissingKernel("index_add", xp)
    return out


def gather(xp: Any, x: Any, axis: int, index: Any) -> Any:
    """``x`` read at ``index`` along ``axis`` (torch.gather: index may be smaller than x)."""
    x = x[tuple(slice(0, n) if d != axis else slice(None) for d, n in enumerate(index.shape))]
    return xp.take_along_axis(x, index, axis=axis)


def scatter_add(xp: Any, base: Any, axis: int, index: Any, src: Any) -> Any:
    """A copy of ``base`` with ``src`` added at ``index`` along ``axis`` (torch.scatter_add)."""
    if xp is not np and not _is_cupy(xp):
        raise MissingKernel("scatter_add", xp)
    out = base.copy()
    positions = _scatter_index(xp, index, axis)
    picked = src[tuple(slice(0, n) for n in index.shape)]
    if xp is np:
        np.add.at(out, positions, picked)
    else:
        _cupy("cupyx").scatter_add(out, positions, picked)
    return out


def scatter(xp: Any, base: Any, axis: int, index: Any, src: Any) -> Any:
    """A copy of ``base`` with ``src`` written at ``index`` along ``axis`` (torch.scatter)."""
    if xp is not np and not _is_cupy(xp):
        raise MissingKernel("scatter", xp)
    out = base.copy()
    out[_scatter_index(xp, index, axis)] = src[tuple(slice(0, n) for n in index.shape)]
    return out


def _scatter_index(xp: Any, index: Any, axis: int) -> tuple:
    grids = list((np if xp is np else _cupy()).indices(index.shape, sparse=True))
    grids[axis] = index
    return tuple(grids)


def is_basic(index: Any) -> bool:
    """True when ``index`` has no integer/boolean arrays, so no position repeats."""
    items = index if isinstance(index, tuple) else (index,)
    return all(item is None or item is Ellipsis or isinstance(item, (int, slice, np.integer))
               for item in items)


def pad(xp: Any, x: Any, widths: tuple, value: float) -> Any:
    """Constant padding with ``(before, after)`` per axis; negative widths crop instead."""
    crop = tuple(slice(max(-lo, 0), n - max(-hi, 0)) for (lo, hi), n in zip(widths, x.shape))
    x = x[crop]
    grow = tuple((max(lo, 0), max(hi, 0)) for lo, hi in widths)
    if not any(lo or hi for lo, hi in grow):
        return copy(xp, x)
    if xp is np:
        return np.pad(x, grow, mode="constant", constant_values=value)
    shape = tuple(n + lo + hi for n, (lo, hi) in zip(x.shape, grow))
    out = xp.full(shape, value, dtype=x.dtype)
    out[tuple(slice(lo, lo + n) for n, (lo, _) in zip(x.shape, grow))] = x
    return out


def copy(xp: Any, x: Any) -> Any:
    """A copy of ``x`` that owns its memory (in C order where arrays have a layout)."""
    if xp is np or _is_cupy(xp):
        return x.copy()
    return xp.asarray(x, copy=True)


def is_writeable(x: Any) -> bool:
    """Whether ``x`` may be written into (NumPy keeps a broadcast view read-only)."""
    return x.flags.writeable if type(x) is np.ndarray else True


def is_contiguous(xp: Any, x: Any) -> bool:
    """Whether ``x`` is in C order (always, for backends without a memory layout)."""
    return x.flags.c_contiguous if xp is np or _is_cupy(xp) else True


def contiguous(xp: Any, x: Any) -> Any:
    """``x`` in C order, as PyTorch lays out the results of most ops (later views of it then
    share memory where PyTorch's do); backends without a memory layout return ``x``."""
    if xp is np or _is_cupy(xp):
        return x if x.flags.c_contiguous else x.copy()  # copy(): C order (0-d stays 0-d)
    return x


def can_view(xp: Any, x: Any, shape: tuple) -> bool:
    """Whether ``x`` can be reshaped to ``shape`` without a copy (always, without layouts)."""
    if xp is not np and not _is_cupy(xp):
        return True
    if x.flags.c_contiguous:
        return True
    try:
        xp.reshape(x, shape, copy=False)
    except (ValueError, AttributeError):
        return False
    return True


def cumsum(xp: Any, x: Any, axis: int) -> Any:
    """The running sum along ``axis`` (the Array API's cumulative_sum; CuPy calls it cumsum)."""
    if xp is np or _is_cupy(xp):
        return (np if xp is np else _cupy()).cumsum(x, axis=axis)
    return xp.cumulative_sum(x, axis=axis)


def einsum(xp: Any, spec: str, *operands: Any) -> Any:
    """Einstein summation over an explicit ``spec`` ('ij,jk->ik': no '...', output given).

    NumPy and CuPy have einsum; in Array API terms every operand is laid out over all the
    letters (missing ones as size-1 axes), the operands multiplied with broadcasting and
    the letters not in the output summed away: more memory, the same sums.
    """
    if xp is np:
        return np.einsum(spec, *operands, optimize=len(operands) > 2)
    if _is_cupy(xp):
        return _cupy().einsum(spec, *operands)
    inputs, output = spec.split("->")
    terms = inputs.split(",")
    letters = output + "".join(sorted(set("".join(terms)) - set(output)))
    product = None
    for term, x in zip(terms, operands):
        # a letter repeated within one operand is a diagonal: not used by chainrule's ops
        order = tuple(term.index(c) for c in letters if c in term)
        laid = xp.permute_dims(x, order)
        shape = tuple(x.shape[term.index(c)] if c in term else 1 for c in letters)
        laid = xp.reshape(laid, shape)
        product = laid if product is None else product * laid
    summed = tuple(range(len(output), len(letters)))
    return xp.sum(product, axis=summed) if summed else product



# ------------------------------------------------------------------ sliding windows
# (added for the convolution and pooling primitives in ops/nn_kernels.py)
def windows_out(size: int, kernel: int, dilation: int, stride: int) -> int:
    """How many windows of ``kernel`` taps ``dilation`` apart fit, ``stride`` apart, in ``size``."""
    return (size - dilation * (kernel - 1) - 1) // stride + 1


def im2col(xp: Any, x: Any, kernel_size: tuple, dilation: tuple, padding: tuple, stride: tuple,
           value: float) -> Any:
    """(N, C, H, W) -> (N, C*kh*kw, L): each window of the padded image as a column (F.unfold).

    ``padding`` is ((top, bottom), (left, right)), filled with ``value``; a negative width
    crops. On NumPy and CuPy the windows are a strided view of the image and the reshape
    into columns copies; elsewhere one strided slice per kernel offset is stacked.
    """
    (kh, kw), (dh, dw), (sh, sw) = kernel_size, dilation, stride
    if any(p for pair in padding for p in pair):
        x = pad(xp, x, ((0, 0), (0, 0)) + tuple(padding), value)
    n, c, h, w = x.shape
    oh, ow = windows_out(h, kh, dh, sh), windows_out(w, kw, dw, sw)
    if xp is np or _is_cupy(xp):
        s_n, s_c, s_h, s_w = x.strides
        windows = (np if xp is np else _cupy()).lib.stride_tricks.as_strided(
            x, (n, c, kh, kw, oh, ow), (s_n, s_c, dh * s_h, dw * s_w, sh * s_h, sw * s_w),
            **({"writeable": False} if xp is np else {}))
        return windows.reshape(n, c * kh * kw, oh * ow)
    taps = [x[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
            for i in range(kh) for j in range(kw)]
    return xp.reshape(xp.stack(taps, axis=2), (n, c * kh * kw, oh * ow))


def col2im(xp: Any, cols: Any, size: tuple, kernel_size: tuple, dilation: tuple,
           padding: tuple, stride: tuple) -> Any:
    """(N, C*kh*kw, L) -> (N, C, H, W): every column added back where its window lies (F.fold).

    One strided slice-add per kernel offset (kh*kw of them); overlapping windows sum.
    """
    (kh, kw), (dh, dw), (sh, sw) = kernel_size, dilation, stride
    (top, bottom), (left, right) = padding
    n, ckk, _ = cols.shape
    hp, wp = size[0] + top + bottom, size[1] + left + right
    oh, ow = windows_out(hp, kh, dh, sh), windows_out(wp, kw, dw, sw)
    cols = xp.reshape(cols, (n, ckk // (kh * kw), kh, kw, oh, ow))
    # a negative bottom/right width cropped the image in im2col: those pixels get zeros
    out = xp.zeros((n, cols.shape[1], max(hp, top + size[0]), max(wp, left + size[1])),
                   dtype=cols.dtype)
    for i in range(kh):
        rows = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
        for j in range(kw):
            window = (slice(None), slice(None), rows, slice(j * dw, j * dw + sw * (ow - 1) + 1, sw))
            out[window] += cols[:, :, i, j, :, :]
    return out[:, :, top:top + size[0], left:left + size[1]]


# ------------------------------------------------------------------ NumPy's own BLAS
def _blas(routine: str, argtypes: Any) -> dict:
    """NumPy's own OpenBLAS ``routine`` (``"axpy"``: saxpy and daxpy) by dtype, float32 and
    float64, found by its wheel's symbol names, each given ``argtypes(its scalar ctype)``;
    empty where NumPy is built otherwise (then the callers take a NumPy path)."""
    blas = np.__config__.CONFIG.get("Build Dependencies", {}).get("blas", {})
    if blas.get("name") != "scipy-openblas":
        return {}
    libraries = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs",
                                       "libscipy_openblas64_*"))
    try:
        library = ctypes.CDLL(libraries[0])
        routines = {}
        for dtype, prefix, scalar in ((np.float32, "s", ctypes.c_float),
                                      (np.float64, "d", ctypes.c_double)):
            function = getattr(library, f"scipy_cblas_{prefix}{routine}64_")
            function.argtypes = argtypes(scalar)
            function.restype = None
            routines[np.dtype(dtype)] = function
        return routines
    except (IndexError, OSError, AttributeError):
        return {}


_INT, _POINTER = ctypes.c_int64, ctypes.c_void_p
_AXPY = _blas("axpy", lambda scalar: [_INT, scalar, _POINTER, _INT, _POINTER, _INT])
# cblas_?gemm(order, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
_GEMM = _blas("gemm", lambda scalar: [ctypes.c_int, ctypes.c_int, ctypes.c_int, _INT, _INT,
                                      _INT, scalar, _POINTER, _INT, _POINTER, _INT, scalar,
                                      _POINTER, _INT])
# cblas_?ger(order, m, n, alpha, x, incx, y, incy, a, lda)
_GER = _blas("ger", lambda scalar: [ctypes.c_int, _INT, _INT, scalar, _POINTER, _INT, _POINTER,
                                    _INT, _POINTER, _INT])
# cblas_?gemv(order, trans, m, n, alpha, a, lda, x, incx, beta, y, incy)
_GEMV = _blas("gemv", lambda scalar: [ctypes.c_int, ctypes.c_int, _INT, _INT, scalar, _POINTER,
                                      _INT, _POINTER, _INT, scalar, _POINTER, _INT])
_ROW_MAJOR, _NO_TRANS, _TRANSPOSE = 101, 111, 112
# the dtypes NumPy's BLAS computes in (the fast kernels' paths; others take NumPy's)
BLAS_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


# ------------------------------------------------------------------ convolution
# (for ops/nn_kernels.py's conv2d with groups 1 on NumPy, float32/float64: the columns laid
# out with the batch side by side, the weight's gradient one product over the batch, and
# for stride 1 the input's gradient without col2im, whose adds along rows of ow values took
# 15 of the CNN step's ~100 ms on one thread; benchmarks/NOTES.md §27)
_CONV_BLOCK = 8192  # columns per block of the input gradient's products


def conv_columns(x: Any, kernel_size: tuple, dilation: tuple, padding: tuple,
                 stride: tuple) -> Any:
    """(N, C, H, W) -> (C*kh*kw, N*L): im2col with the batch side by side along the columns,
    so that the weight's gradient, g as (O, N*L) times their transpose, is one product for
    the whole batch, and each image's columns are a (C*kh*kw, L) block of them."""
    (kh, kw), (dh, dw), (sh, sw) = kernel_size, dilation, stride
    if any(p for pair in padding for p in pair):
        x = pad(np, x, ((0, 0), (0, 0)) + tuple(padding), 0.0)
    n, c, h, w = x.shape
    oh, ow = windows_out(h, kh, dh, sh), windows_out(w, kw, dw, sw)
    s_n, s_c, s_h, s_w = x.strides
    windows = np.lib.stride_tricks.as_strided(
        x, (c, kh, kw, n, oh, ow), (s_c, dh * s_h, dw * s_w, s_n, sh * s_h, sw * s_w),
        writeable=False)
    return windows.reshape(c * kh * kw, n * oh * ow)


def conv2d(x: Any, weight: Any, bias: Any, kernel_size: tuple, dilation: tuple, padding: tuple,
           stride: tuple, out_size: tuple) -> tuple:
    """``(W x + b as (N, O, oh, ow), the columns)``.

    One GEMM for the whole batch, (O, C*kh*kw) x the columns (C*kh*kw, N*L), with the bias
    in it, then a copy moving the batch axis first (1.3 ms): conv2 of the CNN step with its
    columns 14.8 ms against 15.8 for a product per image written into its (O, L) plane
    plus a bias pass (two threads; on one, 23.8 against 23.1, NOTES §34).
    """
    cols = conv_columns(x, kernel_size, dilation, padding, stride)
    n, out_channels = x.shape[0], weight.shape[0]
    planes = np.empty((out_channels, n * out_size[0] * out_size[1]), dtype=x.dtype)
    _weights_times_columns(planes, weight.reshape(out_channels, -1), cols, bias)
    out = np.empty((n, out_channels, *out_size), dtype=x.dtype)
    np.copyto(out, planes.reshape(out_channels, n, *out_size).transpose(1, 0, 2, 3))
    return out, cols


def _weights_times_columns(out: Any, weights: Any, cols: Any, bias: Any) -> None:
    """``out = weights @ cols + bias[:, None]``; through BLAS gemm with beta = 1 onto rows
    filled with the bias where NumPy's BLAS is found (the bias adds no pass over out)."""
    gemm = _GEMM.get(out.dtype)
    if (gemm is None or bias is None or weights.dtype != out.dtype
            or not cols.flags.c_contiguous):
        np.matmul(weights, cols, out=out)
        if bias is not None:
            out += bias[:, None]
        return
    np.copyto(out, bias[:, None])
    (rows, inner), columns = weights.shape, out.shape[1]
    weights = np.ascontiguousarray(weights)
    gemm(_ROW_MAJOR, _NO_TRANS, _NO_TRANS, rows, columns, inner, 1.0, weights.ctypes.data, inner,
         cols.ctypes.data, columns, 1.0, out.ctypes.data, columns)


def conv2d_backward(grad: Any, x_shape: tuple, weight: Any, cols: Any, kernel_size: tuple,
                    dilation: tuple, padding: tuple, stride: tuple, needs: tuple) -> tuple:
    """conv2d's VJP from its columns: with G = grad as (O, N*L) (a view when grad is laid
    out (O, N, oh, ow), as this function's dx after relu's backward; a copy otherwise),
    dW = G cols^T (one GEMM over the batch), db = G's row sums, dx as ``_conv_input_grad``
    for stride 1 (laid out (C, N, H, W)), else col2im of W^T G."""
    n, out_channels, oh, ow = grad.shape
    rows = grad.transpose(1, 0, 2, 3).reshape(out_channels, n * oh * ow)
    dx = dw = db = None
    if needs[0]:
        if stride == (1, 1):
            dx = _conv_input_grad(grad, x_shape, weight, dilation, padding)
        else:
            columns = (weight.reshape(out_channels, -1).T @ rows).reshape(-1, n, oh * ow)
            dx = col2im(np, columns.transpose(1, 0, 2), x_shape[2:], kernel_size, dilation,
                        padding, stride)
    if needs[1]:
        # as (cols G^T)^T: OpenBLAS runs conv2's (288, 64) result in 9.3 ms against 10.3
        # for G cols^T's (64, 288), conv1's (9, 32) in 0.70 against 0.88 (two threads)
        dw = np.ascontiguousarray((cols @ rows.T).T).reshape(weight.shape)
    if len(needs) > 2 and needs[2]:
        db = row_sums(rows)
    return (dx, dw, db) if len(needs) > 2 else (dx, dw)


def _conv_input_grad(grad: Any, x_shape: tuple, weight: Any, dilation: tuple,
                     padding: tuple) -> Any:
    """dx of a stride-1 convolution without col2im's adds along rows of ow values.

    Lay the padded image out as (C, N*Hp*Wp) and put each output position q = (n, r, s) at
    n*Hp*Wp + r*Wp + s: then tap (i, j) of the window at q reads the pixel at q + i*dh*Wp
    + j*dw, a shift that is the same for every q. So with G = grad on that grid (zeros where
    no window starts), tap (i, j)'s part of dx is one slice of long rows:
    dx[:, q + shift] += W_ij^T G[:, q]. The grid costs 17% more product columns here
    (26x26 grid, 24x24 windows) and saves the short-row adds (measured below, NOTES §22).
    """
    n, channels, h, w = x_shape
    out_channels, _, kh, kw = weight.shape
    (dh, dw), ((top, bottom), (left, right)) = dilation, padding
    hp, wp = h + top + bottom, w + left + right
    grid = np.zeros((out_channels, n, hp, wp), dtype=grad.dtype)
    grid[:, :, :grad.shape[2], :grad.shape[3]] = grad.transpose(1, 0, 2, 3)
    size = n * hp * wp
    grid = grid.reshape(out_channels, size)
    span = size - (kh - 1) * dh * wp - (kw - 1) * dw  # the last window's q, plus 1
    dx = np.zeros((channels, size), dtype=grad.dtype)
    gemm = _GEMM.get(grad.dtype)
    if gemm is not None:
        # each tap's product added straight into its slice of dx by BLAS (beta = 1), by
        # blocks of columns so that a block of dx and G stays in cache for all the taps
        # (9 taps, one thread: 23.5 ms unblocked, 20.7 in blocks of 8192)
        taps = np.ascontiguousarray(weight.transpose(2, 3, 1, 0))  # (kh, kw, C, O)
        step = grad.itemsize
        for start in range(0, span, _CONV_BLOCK):
            width = min(_CONV_BLOCK, span - start)
            for i in range(kh):
                for j in range(kw):
                    shift = i * dh * wp + j * dw
                    gemm(_ROW_MAJOR, _NO_TRANS, _NO_TRANS, channels, width, out_channels, 1.0,
                         taps[i, j].ctypes.data, out_channels,
                         grid.ctypes.data + start * step, size, 1.0,
                         dx.ctypes.data + (start + shift) * step, size)
    else:
        # G^T W as one product ((span, O) by (O, C*kh*kw): measured faster than W^T G)
        taps = (grid[:, :span].T @ weight.reshape(out_channels, -1)).T
        taps = taps.reshape(channels, kh, kw, span)
        for i in range(kh):
            for j in range(kw):
                shift = i * dh * wp + j * dw
                dx[:, shift:shift + span] += taps[:, i, j]
    # left laid out (C, N, H, W), no copy back to (N, C, H, W) (1 ms for conv2 of the CNN
    # step): relu's backward keeps the layout, and a conv2d before it reads it as rows
    dx = dx.reshape(channels, n, hp, wp).transpose(1, 0, 2, 3)
    return dx[:, :, top:top + h, left:left + w]


# ------------------------------------------------------------------ y += alpha * x
# below this the ctypes call (~2 us) costs more than NumPy's temporary
_AXPY_MIN_SIZE = 1 << 13


def axpy(y: Any, alpha: float, x: Any) -> bool:
    """``y += alpha * x`` in place in one pass through BLAS, when it can (an optimizer's
    update); returns False, leaving y alone, for other dtypes, layouts, small sizes and
    overlapping operands, where the caller does NumPy's two passes.

    NumPy needs a temporary for ``alpha * x`` and two passes over memory (72 us against
    26 us on 400k float32); BLAS axpy reads x and y once.
    """
    if type(y) is not np.ndarray:
        return False  # NumPy's BLAS only
    routine = _AXPY.get(y.dtype)
    if (routine is None or x.dtype != y.dtype or x.shape != y.shape or y.size < _AXPY_MIN_SIZE
            or not (y.flags.c_contiguous and x.flags.c_contiguous and y.flags.writeable)
            or (x is not y and np.may_share_memory(x, y))):
        return False
    routine(y.size, alpha, x.ctypes.data, 1, y.ctypes.data, 1)
    return True


# ------------------------------------------------------------------ out = a^T
# cblas_?omatcopy(order, trans, rows, cols, alpha, a, lda, b, ldb)
_OMATCOPY = _blas("omatcopy", lambda scalar: [ctypes.c_int, ctypes.c_int, _INT, _INT, scalar,
                                              _POINTER, _INT, _POINTER, _INT])


def _blas_rows(a: Any) -> int:
    """The row stride of 2-D ``a`` in elements when BLAS can read it (unit column stride,
    rows not overlapping), else 0."""
    rows, cols = a.shape
    step = a.strides[0] // a.itemsize if rows > 1 else cols  # a lone row's stride is free
    return step if a.size and a.strides[1] == a.itemsize and step >= cols else 0


def transpose_into(out: Any, a: Any) -> None:
    """``out[...] = a.T`` for 2-D NumPy arrays, through BLAS omatcopy for float32/float64
    rows of unit stride: NumPy copies a transposed view element by element, 4x slower (670
    against 160 us for a (1024, 512) float32 matrix, one thread)."""
    routine = _OMATCOPY.get(a.dtype)
    a_rows = _blas_rows(a) if routine is not None else 0
    out_rows = _blas_rows(out) if a_rows else 0
    if (not out_rows or out.dtype != a.dtype or out.shape != a.shape[::-1]
            or not out.flags.writeable or np.may_share_memory(out, a)):
        np.copyto(out, a.T)
        return
    routine(_ROW_MAJOR, _TRANSPOSE, a.shape[0], a.shape[1], 1.0, a.ctypes.data,
            a_rows, out.ctypes.data, out_rows)


# ------------------------------------------------------------------ LSTM
# (for ops/nn_kernels.py's lstm_cell and lstm_layer: gates (i, f, g, o) in blocks of H
# along the gate axis, state [h, c] side by side in 2H columns). lstm_cell keeps PyTorch's
# layout, gates along the last axis; lstm_layer's NumPy path works transposed, gates along
# the first axis of (4H, N) per step, where each gate is a contiguous (H, N) block.
def _gate_blocks(acts: Any, size: int, axis: int) -> tuple:
    """The (i, f, g, o) blocks of ``acts`` along ``axis`` (0 or -1), as views."""
    if axis == 0:
        return tuple(acts[k * size:(k + 1) * size] for k in range(4))
    return tuple(acts[..., k * size:(k + 1) * size] for k in range(4))


def _lstm_cell_into(acts: Any, axis: int, c: Any, h_new: Any, c_new: Any, tanh_c: Any) -> None:
    """The cell's nonlinearities in place: ``acts`` holds z = x_gates + h_gates (gates along
    ``axis``) and becomes (i, f, g, o); h', c' and tanh c' are written to their arrays.

    i, f, o = sigmoid, g = tanh of z's blocks; c' = f c + i g; h' = o tanh c'.
    sigmoid(z) = (1 + tanh(z/2)) / 2: no overflow, one tanh for all gates.
    """
    size = c.shape[axis]
    i, f, g, o = _gate_blocks(acts, size, axis)
    sigmoids = (acts[:2 * size] if axis == 0 else acts[..., :2 * size], o)  # (i, f) and o
    for sig in sigmoids:
        sig *= 0.5
    np.tanh(acts, out=acts)
    for sig in sigmoids:
        sig *= 0.5
        sig += 0.5
    np.multiply(f, c, out=c_new)
    np.multiply(i, g, out=tanh_c)  # tanh_c as scratch, before it gets tanh c'
    c_new += tanh_c
    np.tanh(c_new, out=tanh_c)
    np.multiply(o, tanh_c, out=h_new)


def _lstm_cell_backward_into(gh: Any, gc: Any, c: Any, gates: tuple, tanh_c: Any, dz: tuple,
                             dc_new: Any, scratch: Any) -> None:
    """lstm_cell's VJP from its activations ``gates`` (i, f, g, o): dc' into ``dc_new`` and
    the four blocks of dz into the views ``dz``; ``scratch`` is a buffer of c's shape.

    dc' = gc + gh o (1 - tanh^2 c');  dz_i = dc' g i (1 - i),  dz_f = dc' c f (1 - f),
    dz_g = dc' i (1 - g^2),  dz_o = gh tanh(c') o (1 - o).
    """
    i, f, g, o = gates
    np.multiply(tanh_c, tanh_c, out=dc_new)
    np.subtract(1, dc_new, out=dc_new)
    dc_new *= o
    dc_new *= gh
    dc_new += gc
    for gate, other, upstream, out in ((i, g, dc_new, dz[0]), (f, c, dc_new, dz[1]),
                                       (o, tanh_c, gh, dz[3])):
        np.subtract(1, gate, out=scratch)  # sigmoid' = s (1 - s)
        scratch *= gate
        scratch *= other
        np.multiply(scratch, upstream, out=out)
    np.multiply(g, g, out=scratch)  # tanh' = 1 - tanh^2
    np.subtract(1, scratch, out=scratch)
    scratch *= i
    np.multiply(scratch, dc_new, out=dz[2])


def is_numpy(x: Any) -> bool:
    """Whether ``x`` is a NumPy array (the LSTM rules' fused backward kernels are NumPy's;
    other arrays and tensors take the rules' namespace path)."""
    return type(x) is np.ndarray


def lstm_cell(xp: Any, x_gates: Any, h_gates: Any, c: Any) -> tuple:
    """One LSTM step after its matmuls: ``([h', c'], activations (i, f, g, o), tanh c')``."""
    if xp is not np:
        return _lstm_cell_generic(xp, x_gates + h_gates, c)
    size = c.shape[-1]
    acts = x_gates + h_gates
    state = np.empty((*c.shape[:-1], 2 * size), dtype=acts.dtype)
    tanh_c = np.empty_like(state[..., :size])
    _lstm_cell_into(acts, -1, c, state[..., :size], state[..., size:], tanh_c)
    return state, acts, tanh_c


def lstm_cell_backward(grad: Any, c: Any, acts: Any, tanh_c: Any) -> tuple:
    """lstm_cell's VJP from its saved activations: ``(dz, dc', f)``, dc = dc' f."""
    size = c.shape[-1]
    dz = np.empty_like(acts)
    dc_new = np.empty_like(tanh_c)
    gates = _gate_blocks(acts, size, -1)
    _lstm_cell_backward_into(grad[..., :size], grad[..., size:], c, gates, tanh_c,
                             _gate_blocks(dz, size, -1), dc_new, np.empty_like(tanh_c))
    return dz, dc_new, gates[1]


def _lstm_cell_generic(xp: Any, z: Any, c: Any) -> tuple:
    """lstm_cell in Array API terms (no out= buffers): the same math, more temporaries."""
    size = c.shape[-1]
    i, f, o = (1 / (1 + xp.exp(-z[..., k * size:(k + 1) * size])) for k in (0, 1, 3))
    g = xp.tanh(z[..., 2 * size:3 * size])
    c_new = f * c + i * g
    tanh_c = xp.tanh(c_new)
    return xp.concat([o * tanh_c, c_new], axis=-1), xp.concat([i, f, g, o], axis=-1), tanh_c


def lstm_layer(xp: Any, x: Any, h0: Any, c0: Any, w_ih: Any, w_hh: Any, bias: Any,
               reverse: bool) -> tuple:
    """A whole LSTM layer over time from its input ``x`` (L, N, E): ``(states, by-products)``
    with states (L, N, 2H) = [h_t, c_t] of every step; ``reverse``: from t = L-1 down.

    NumPy: each step's gates are computed transposed, z^T = W_ih x_t^T + W_hh h^T (+ bias),
    (4H, N), so each gate is a contiguous (H, N) block for the elementwise passes (2-4x
    faster than the (N, H) column blocks of (N, 4H)) and the products have BLAS's faster
    shape (W_hh h^T 97 against h W_hh^T 142 us at N = 32, H = 256, two threads). By-products:
    the activations (L, 4H, N), tanh c_t (L, H, N) and the states [h_t; c_t] (2H, L, N).
    Other backends: the same math in Array API terms, no by-products."""
    if xp is not np:
        projected = xp.matmul(x, w_ih.mT)
        if bias is not None:
            projected = projected + bias
        return _lstm_layer_generic(xp, projected, h0, c0, w_hh, reverse), ()
    length, batch, _ = x.shape
    size = w_hh.shape[-1]
    acts = np.empty((length, 4 * size, batch), dtype=x.dtype)
    # [h_t; c_t] transposed, in slots along time (_state_offset)
    cells = np.empty((2 * size, length + 1, batch), dtype=x.dtype)
    own = _state_offset(reverse)
    start = length if reverse else 0  # the initial state's slot
    transpose_into(cells[:size, start], h0)
    transpose_into(cells[size:, start], c0)
    tanh_c = np.empty((length, size, batch), dtype=x.dtype)
    recurrent = np.empty((4 * size, batch), dtype=x.dtype)
    bias_column = None if bias is None else bias[:, None]
    for t in (range(length - 1, -1, -1) if reverse else range(length)):
        z = acts[t]
        np.matmul(w_ih, x[t].T, out=z)
        np.matmul(w_hh, cells[:size, t + 1 - own], out=recurrent)
        z += recurrent
        if bias_column is not None:
            z += bias_column
        _lstm_cell_into(z, 0, cells[size:, t + 1 - own], cells[:size, t + own],
                        cells[size:, t + own], tanh_c[t])
    states = np.empty((length, batch, 2 * size), dtype=x.dtype)
    transpose_into(states.reshape(length * batch, 2 * size),
                   cells[:, own:own + length].reshape(2 * size, -1))
    return states, (acts, tanh_c, cells)


def _state_offset(reverse: bool) -> int:
    """Where the NumPy lstm_layer keeps step t's state [h; c]^T: slot t + offset of its
    (2H, L+1, N) array. The initial state takes the slot left over (0, or L reversed), so
    step t's incoming state is slot t + 1 - offset for every step, and the h of slots
    1 - offset onwards is the matrix H_prev^T (H, L*N) of the recurrent weight's gradient."""
    return 0 if reverse else 1


def _lstm_layer_generic(xp: Any, projected: Any, h0: Any, c0: Any, w_hh: Any,
                        reverse: bool) -> Any:
    """The recurrence over the input projection (L, N, 4H) in Array API terms: states."""
    length, size = projected.shape[0], w_hh.shape[-1]
    steps = [None] * length
    h, c = h0, c0
    for t in (range(length - 1, -1, -1) if reverse else range(length)):
        steps[t] = _lstm_cell_generic(xp, projected[t, :, :] + xp.matmul(h, w_hh.mT), c)[0]
        h, c = steps[t][:, :size], steps[t][:, size:]
    return xp.stack(steps)


def lstm_layer_backward(grad: Any, x: Any, h0: Any, c0: Any, w_ih: Any, w_hh: Any,
                        by_products: tuple, reverse: bool, needs: tuple) -> tuple:
    """The NumPy lstm_layer's VJP: gradients of (x, h0, c0, w_ih, w_hh, bias), None where
    not needed.

    Back through time, transposed as the forward, each step's dz^T (4H, N) gives
    dh_{t-1}^T = W_hh^T dz^T and dc_{t-1} = dc' f. dz^T of every step is written into one
    (4H, L, N) array, a (4H, L*N) matrix, so the weights' gradients are one product each
    after the loop: dW_ih = dZ^T X, dW_hh = dZ^T H_prev (H_prev: the forward's h_t^T shifted
    by one step, read in place), d bias = dZ^T summed over its L*N columns, dx = dZ W_ih.
    """
    acts, tanh_c, cells = by_products
    length, batch, features = x.shape
    size = w_hh.shape[-1]
    gates = 4 * size
    grad_t = np.empty((2 * size, length, batch), dtype=acts.dtype)  # as the forward's cells
    transpose_into(grad_t.reshape(2 * size, -1), grad.reshape(length * batch, 2 * size))
    dz = np.empty((gates, length, batch), dtype=acts.dtype)
    dh, dc = (np.zeros((size, batch), dtype=acts.dtype) for _ in range(2))
    gh, gc, dc_new, scratch = (np.empty((size, batch), dtype=acts.dtype) for _ in range(4))
    first = length - 1 if reverse else 0
    own = _state_offset(reverse)
    w_t = np.empty((size, gates), dtype=w_hh.dtype)
    transpose_into(w_t, w_hh)
    # each step's dz^T contiguous in its own slot, where the cell writes it and the product
    # reads it; one copy after the loop lays them out as (4H, L, N) (32 copies into the
    # strided dz[:, t] took 1.04 ms of the loop, the one copy 0.21)
    dz_steps = np.empty((length, gates, batch), dtype=acts.dtype)
    for t in (range(length) if reverse else range(length - 1, -1, -1)):
        np.add(grad_t[:size, t], dh, out=gh)
        np.add(grad_t[size:, t], dc, out=gc)
        step_gates = _gate_blocks(acts[t], size, 0)
        _lstm_cell_backward_into(gh, gc, cells[size:, t + 1 - own], step_gates, tanh_c[t],
                                 _gate_blocks(dz_steps[t], size, 0), dc_new, scratch)
        np.multiply(dc_new, step_gates[1], out=dc)
        if t != first or needs[1]:  # dh of the first step is h0's gradient
            np.matmul(w_t, dz_steps[t], out=dh)
    np.copyto(dz, dz_steps.transpose(1, 0, 2))
    rows = dz.reshape(gates, length * batch)  # (4H, L*N): column t*N + n is dz_t[n]^T
    d_x = np.matmul(rows.T, w_ih).reshape(x.shape) if needs[0] else None
    d_w_ih = np.matmul(rows, x.reshape(length * batch, features)) if needs[3] else None
    d_w_hh = None
    if needs[4]:
        h_prev = cells[:size, 1 - own:1 - own + length].reshape(size, -1)  # (H, L*N)
        d_w_hh = np.matmul(rows, h_prev.T)
    return (d_x, np.ascontiguousarray(dh.T) if needs[1] else None,
            np.ascontiguousarray(dc.T) if needs[2] else None, d_w_ih, d_w_hh,
            np.sum(rows, axis=1) if needs[5] else None)

# ------------------------------------------------------------------ max pooling
# (for ops/nn_kernels.py's max_pool: windows that tile the image, stride = kernel size)
def _tiled(x: Any, kernel_size: tuple) -> Any:
    """The part of (N, C, H, W) that windows tiling the image cover (stride = kernel, no
    padding): rows and columns past the last whole window are left out."""
    (kh, kw), (h, w) = kernel_size, x.shape[2:]
    return x[:, :, :h // kh * kh, :w // kw * kw]


def pool_windows(xp: Any, x: Any, kernel_size: tuple) -> Any:
    """The tiling windows of (N, C, H, W) as (N, C, oh, ow, kh*kw), in ``xp``'s functions
    (any backend's, or the rule namespaces')."""
    (kh, kw), (n, c, h, w) = kernel_size, x.shape
    oh, ow = h // kh, w // kw
    tiles = xp.reshape(x[:, :, :oh * kh, :ow * kw], (n, c, oh, kh, ow, kw))
    return xp.reshape(xp.permute_dims(tiles, (0, 1, 2, 4, 3, 5)), (n, c, oh, ow, kh * kw))


def pool_max(xp: Any, x: Any, kernel_size: tuple) -> tuple:
    """Max pooling over tiling windows: ``(maxima (N, C, oh, ow), the tap i*kw + j of each
    window's first maximum in row-major order)``, the first NaN where a window holds one
    (as PyTorch).

    Two running maxima with strict ``>`` (a tie keeps the earlier): across the kw columns
    of each window row, then across the kh rows; the first row holding the maximum, then
    its first column, is the row-major first. Elementwise passes over strided planes:
    argmax or max over a short last axis spends its time per window (measured 3 vs 19 ms,
    2x2 pooling of 64x64x24x24, one thread).
    """
    if xp is not np:  # in Array API terms: the windows as an axis, their argmax
        windows = pool_windows(xp, x, kernel_size)
        first = xp.argmax(windows, axis=-1)  # the first maximum, or the first NaN
        return xp.take_along_axis(windows, first[..., None], axis=-1)[..., 0], first
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


def _window_taps(padded: Any, kernel_size: tuple, stride: tuple, dilation: tuple,
                 out_size: tuple) -> list:
    """Each window tap's strided view (N, C, oh, ow) of a padded (N, C, H, W) array, taps in
    row-major order (tap i*kw + j)."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel_size, stride, dilation, out_size
    return [padded[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
            for i in range(kh) for j in range(kw)]


def pool_max_windows(x: Any, kernel_size: tuple, stride: tuple, padding: tuple,
                     dilation: tuple, out_size: tuple) -> tuple:
    """Max pooling over any windows of a NumPy (N, C, H, W) array without NaN (stride,
    padding with -inf as ((top, bottom), (left, right)), dilation): ``(maxima, the tap of
    each window's first maximum)``, as pool_max: running maxima over the taps' strided views,
    a later tap taken only where strictly larger (PyTorch's first maximum). 3x3 windows at
    stride 2: 14.8 ms forward + backward where im2col, argmax and a select took 57 (PyTorch
    18.4; NOTES §40)."""
    padded = pad(np, x, ((0, 0), (0, 0)) + tuple(padding), -np.inf) if any(
        p for pair in padding for p in pair) else x
    taps = _window_taps(padded, kernel_size, stride, dilation, out_size)
    index = np.min_scalar_type(len(taps))
    out = taps[0].copy()
    first = np.zeros(out.shape, dtype=index)
    for tap, view in enumerate(taps[1:], 1):
        # a later tap's index exceeds every earlier one: "take it where later" is a maximum
        later = view > out
        np.maximum(out, view, out=out)
        np.maximum(first, np.multiply(later, tap, dtype=index), out=first)
    return out, first


def pool_place_windows(grad: Any, first: Any, kernel_size: tuple, stride: tuple,
                       padding: tuple, dilation: tuple, size: tuple) -> Any:
    """pool_max_windows' VJP: zeros of (N, C, *size) with each window's gradient added at its
    first maximum (overlapping windows: a pixel gathers from every window it wins), per tap
    by the bit mask of pool_place, added into the tap's strided view of the padded image."""
    (top, bottom), (left, right) = padding
    (h, w), (n, c) = size, grad.shape[:2]
    # a negative far padding (rows no window reaches) still leaves those rows in dx, as 0
    out = np.zeros((n, c, top + h + max(bottom, 0), left + w + max(right, 0)), dtype=grad.dtype)
    bits = _BITS[grad.dtype.itemsize]
    grad_bits = np.ascontiguousarray(grad).view(bits)
    for tap, view in enumerate(_window_taps(out, kernel_size, stride, dilation, first.shape[2:])):
        mask = np.negative(first == tap, dtype=bits)  # -1 (all bits) where the tap won
        view += np.bitwise_and(grad_bits, mask, out=mask).view(grad.dtype)
    return np.ascontiguousarray(out[:, :, top:top + h, left:left + w])


def pool_tap_mask(first: Any, taps: int) -> Any:
    """(N, C, oh, ow, taps) booleans on ``first``'s backend, True at each window's first
    maximum (``first``: pool_max's indices)."""
    xp = _backend.namespace_of(first)
    return xp.arange(taps, dtype=first.dtype) == first[..., None]


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
def layer_norm(xp: Any, x: Any, weight: Any, bias: Any, axes: tuple, eps: float) -> tuple:
    """``(xhat * weight + bias, xhat, rstd)`` with xhat = (x - mean) * rstd and
    rstd = 1 / sqrt(var + eps), mean and (biased) variance over ``axes``."""
    if xp is not np:  # the same, without NumPy's in-place passes
        xhat = x - xp.mean(x, axis=axes, keepdims=True)
        rstd = 1 / xp.sqrt(xp.mean(xhat * xhat, axis=axes, keepdims=True) + eps)
        xhat = xhat * rstd
        return xhat * weight + bias, xhat, rstd
    mean = x.mean(axis=axes, keepdims=True)
    xhat = x - mean
    rstd = 1 / np.sqrt(_mean_of_products(xhat, xhat, axes) + eps)
    xhat *= rstd
    out = xhat * weight
    out += bias
    return out, xhat, rstd


def _mean_of_products(a: Any, b: Any, axes: tuple) -> Any:
    """``mean(a * b)`` over the trailing ``axes``, keepdims, without the product's array:
    one einsum over rows (layer norm's variance and its gradient's projection) for float32
    and float64; other dtypes keep np.mean, which sums half floats in float32."""
    if a.dtype not in BLAS_DTYPES:
        return np.mean(a * b, axis=axes, keepdims=True)
    rows = math.prod(a.shape[:a.ndim - len(axes)])
    flat_a, flat_b = a.reshape(rows, -1), b.reshape(rows, -1)
    sums = np.einsum("ij,ij->i", flat_a, flat_b)
    return (sums / flat_a.shape[1]).reshape(a.shape[:a.ndim - len(axes)] + (1,) * len(axes))


def layer_norm_backward(grad: Any, weight: Any, xhat: Any, rstd: Any, axes: tuple,
                        needs: tuple) -> tuple:
    """layer_norm's VJP from xhat and rstd: (dx, dweight, dbias), None where not needed.

    dx = rstd (gw - mean(gw) - xhat mean(gw xhat)) with gw = g * weight; dweight and dbias
    sum g xhat and g over the leading (batch) axes.
    """
    leading = tuple(range(grad.ndim - len(axes)))
    dx = dweight = dbias = None
    if needs[0]:
        dx = grad * weight  # gw, turned into dx in place
        projection = _mean_of_products(dx, xhat, axes)
        dx -= dx.mean(axis=axes, keepdims=True)
        dx -= xhat * projection
        dx *= rstd
    if not (needs[1] or needs[2]):
        return dx, dweight, dbias
    # the parameters' gradients as sums over rows: einsum and BLAS gemv, no product array
    rows = math.prod(grad.shape[:len(leading)])
    flat_grad = grad.reshape(rows, -1)
    if needs[1] and grad.dtype in BLAS_DTYPES:
        dweight = np.einsum("ij,ij->j", flat_grad, xhat.reshape(rows, -1)).reshape(weight.shape)
    elif needs[1]:
        dweight = (grad * xhat).sum(axis=leading)
    if needs[2]:
        dbias = column_sums(np, flat_grad).reshape(weight.shape)
    return dx, dweight, dbias


# ------------------------------------------------------------------ rows and a vector
# A linear layer's bias: added to every row of x W^T, and its gradient the sum of g's rows.
# NumPy runs both on one core; NumPy's OpenBLAS runs them as rank-1 update and
# matrix-vector product on all cores (benchmarks/NOTES.md §25).
_ROW_ROUTINES = {dtype: (_GER[dtype], _GEMV[dtype]) for dtype in _GER.keys() & _GEMV.keys()}
# below this many elements NumPy's single pass costs less than the ctypes call
_ROWS_MIN_SIZE = 1 << 15
_ONES: dict = {}


def _ones(dtype: Any, count: int) -> Any:
    """A read-only vector of ``count`` ones (a view of a shared buffer that grows)."""
    ones = _ONES.get(dtype)
    if ones is None or ones.size < count:
        ones = np.ones(count, dtype=dtype)
        ones.flags.writeable = False
        _ONES[dtype] = ones
    return ones[:count]


def _blas_matrix(a: np.ndarray) -> bool:
    return a.ndim == 2 and a.flags.c_contiguous and a.size >= _ROWS_MIN_SIZE


def add_to_rows(out: Any, vector: Any) -> None:
    """``out += vector`` in place, ``vector`` broadcast over the rows of 2-D ``out``.

    On NumPy float32/float64 through BLAS ger, ``out += ones vector^T``: the same values
    (each element gains 1 * v_j) on all cores, 0.027 against 0.077 ms for (1024, 512).
    """
    routines = _ROW_ROUTINES.get(out.dtype) if type(out) is np.ndarray else None
    if (routines is None or not _blas_matrix(out) or type(vector) is not np.ndarray
            or vector.shape != out.shape[1:] or vector.dtype != out.dtype
            or not vector.flags.c_contiguous or not out.flags.writeable
            or np.may_share_memory(out, vector)):
        out += vector
        return
    rows, columns = out.shape
    ones = _ones(out.dtype, rows)
    routines[0](_ROW_MAJOR, rows, columns, 1.0, ones.ctypes.data, 1,
                vector.ctypes.data, 1, out.ctypes.data, columns)


def _gemv_sums(a: Any, axis: int) -> Any:
    """The sums of 2-D NumPy float32/float64 ``a`` along ``axis`` as BLAS gemv with a vector
    of ones, on all cores (``a ones`` for rows, ``a^T ones`` for columns); None for other
    arrays, where the caller sums with NumPy. The additions run in another order than
    NumPy's pairwise sum; the result agrees to float rounding."""
    routines = _ROW_ROUTINES.get(a.dtype) if type(a) is np.ndarray else None
    if routines is None or not _blas_matrix(a):
        return None
    rows, columns = a.shape
    sums = np.empty(a.shape[1 - axis], dtype=a.dtype)
    routines[1](_ROW_MAJOR, _NO_TRANS if axis == 1 else _TRANSPOSE, rows, columns, 1.0,
                a.ctypes.data, columns, _ones(a.dtype, a.shape[axis]).ctypes.data, 1, 0.0,
                sums.ctypes.data, 1)
    return sums


def row_sums(a: np.ndarray) -> np.ndarray:
    """The sums along the rows of 2-D NumPy ``a`` (``a.sum(axis=1)``), by BLAS gemv where it
    can: 0.28 against 0.48 ms for conv2's gradient rows (64, 36864) float32."""
    sums = _gemv_sums(a, 1)
    return a.sum(axis=1) if sums is None else sums


def column_sums(xp: Any, a: Any) -> Any:
    """The sum of 2-D ``a``'s rows (``xp.sum(a, axis=0)``), by BLAS gemv on NumPy where it
    can: 0.016 against 0.068 ms for (1024, 512) float32."""
    sums = _gemv_sums(a, 0)
    return xp.sum(a, axis=0) if sums is None else sums
