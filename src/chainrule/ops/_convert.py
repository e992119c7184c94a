"""Argument plumbing shared by the public ops: scalars to tensors, PyTorch's type
promotion, dim normalisation, and errors that name the op."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .. import _backend, _dtype
from ..tensor import Tensor, _as_array, _wrap
from . import unary


def as_tensor_arg(value: Any, op: str) -> Tensor:
    """A tensor operand: tensors pass through, arrays and Python numbers are wrapped."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (numbers.Number, np.ndarray, np.generic, list, tuple)):
        return _wrap(_as_array(value, None))
    raise TypeError(f"{op}(): expected a Tensor or a number, got {type(value).__name__}")


def dtype_of(t: Tensor) -> np.dtype:
    """A tensor's dtype as a NumPy dtype (chainrule's dtype currency), whatever its backend."""
    data = t._data
    return data.dtype if type(data) is np.ndarray else _backend.np_dtype(data)


def xp_of(t: Tensor) -> Any:
    """The array namespace of a tensor's backend."""
    data = t._data
    return np if type(data) is np.ndarray else _backend.namespace_of(data)


def is_floating_data(data: Any) -> bool:
    """Whether a tensor's array is floating point (bfloat16 included), whatever its backend."""
    return _dtype.is_floating(data.dtype if type(data) is np.ndarray else _backend.np_dtype(data))


def constant_like(value: Any, np_dtype: Any, t: Tensor) -> Tensor:
    """A constant tensor holding ``value`` (a number or host data) on ``t``'s device."""
    return _wrap(_backend.asarray(value, np_dtype, t._data))


def is_scalar(value: Any) -> bool:
    return isinstance(value, (int, float, bool)) or (
        isinstance(value, numbers.Number) and not isinstance(value, complex)
    )


def result_dtype(a: Tensor, b: Tensor) -> np.dtype:
    """PyTorch's promotion of two tensors: a 0-d tensor only decides across categories."""
    da, db = dtype_of(a), dtype_of(b)
    ka, kb = _dtype.category(da), _dtype.category(db)
    if ka != kb:
        return da if ka > kb else db
    zero_a, zero_b = a._data.ndim == 0, b._data.ndim == 0
    if zero_a != zero_b:
        return db if zero_a else da
    return _dtype.promote_types(_dtype.from_numpy_dtype(da), _dtype.from_numpy_dtype(db)).np


def result_type(tensor1: Any, tensor2: Any) -> _dtype.dtype:
    """The dtype of an arithmetic op on the two operands (tensors or Python numbers), as
    ``torch.result_type``.

    >>> chainrule.result_type(chainrule.tensor([1, 2]), 2.5)
    chainrule.float32
    """
    first, second = isinstance(tensor1, Tensor), isinstance(tensor2, Tensor)
    if first and second:
        return _dtype.from_numpy_dtype(result_dtype(tensor1, tensor2))
    if first or second:
        t, scalar = (tensor1, tensor2) if first else (tensor2, tensor1)
        return _dtype.from_numpy_dtype(scalar_dtype(t, scalar))
    if not (is_scalar(tensor1) and is_scalar(tensor2)):
        raise TypeError(f"result_type(): expected tensors or numbers, got "
                        f"{type(tensor1).__name__} and {type(tensor2).__name__}")
    if isinstance(tensor1, float) or isinstance(tensor2, float):
        return _dtype.get_default_dtype()
    if isinstance(tensor1, bool) and isinstance(tensor2, bool):
        return _dtype.bool
    return _dtype.int64


def scalar_dtype(t: Tensor, scalar: Any) -> np.dtype:
    """The dtype of ``t <op> scalar``: a float scalar lifts an integer/bool tensor to the
    default float dtype, an int scalar lifts a bool tensor to int64; otherwise ``t``'s."""
    dtype = dtype_of(t)
    kind = dtype.kind
    if kind in "biu" and isinstance(scalar, float):
        return _dtype.get_default_dtype().np
    if kind == "b" and isinstance(scalar, int) and not isinstance(scalar, bool):
        return np.dtype(np.int64)
    return dtype


def cast(t: Tensor, dtype: np.dtype) -> Tensor:
    """``t`` converted to ``dtype``, differentiably (the gradient is cast back)."""
    src = dtype_of(t)
    if src == dtype:
        return t
    if t._rg and not _dtype.is_floating(dtype) and dtype.kind != "c":
        return _wrap(_backend.astype(t._data, dtype))
    return unary.cast(t, dtype=dtype, src=src)


def floating(t: Tensor) -> Tensor:
    """``t`` itself if floating point, else converted to the default float dtype (as torch.exp
    of an integer tensor gives float32)."""
    if is_floating_data(t._data):
        return t
    return cast(t, _dtype.get_default_dtype().np)


def normalize_dim(dim: Any, ndim: int, op: str) -> tuple | None:
    """``dim`` (int, sequence or None) as a sorted tuple of non-negative axes."""
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    if not dims:
        return None
    rank = max(ndim, 1)
    out = []
    for d in dims:
        d = int(d)
        if not -rank <= d < rank:
            raise IndexError(
                f"{op}(): dimension out of range (expected to be in range of "
                f"[{-rank}, {rank - 1}], but got {d})"
            )
        out.append(d % rank if ndim else 0)
    if len(set(out)) != len(out):
        raise RuntimeError(f"{op}(): dim {d} appears multiple times in the list of dims")
    return tuple(sorted(out))


def normalize_axis(dim: int, ndim: int, op: str) -> int:
    """One dim as a non-negative axis, with PyTorch's out-of-range message."""
    return normalize_dim(dim, ndim, op)[0]


def pick_dim(dim: Any, axis: Any, default: Any = None) -> Any:
    """Accept PyTorch's ``dim`` and NumPy's ``axis`` spelling (DESIGN.md: rules use axis)."""
    if axis is not None:
        return axis
    return default if dim is None else dim


def shape_arg(size: Any) -> tuple:
    """Accept ``f(2, 3)``, ``f((2, 3))`` and ``f([2, 3])`` as PyTorch does."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    return tuple(int(s) for s in size)


def broadcast_error(op: str, a: Any, b: Any) -> RuntimeError:
    return RuntimeError(
        f"{op}(): the shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be broadcast together: "
        f"each trailing dimension must be equal or 1"
    )
