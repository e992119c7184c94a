"""chainrule dtypes: thin named wrappers over NumPy dtypes with PyTorch's names."""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np


class dtype:  # noqa: N801 - PyTorch spells it lowercase
    """A tensor element type, e.g. ``chainrule.float32``."""

    __slots__ = ("name", "np", "is_floating_point", "is_complex", "itemsize")

    def __init__(self, name: str, np_dtype: Any) -> None:
        self.name = name
        self.np = np.dtype(np_dtype)
        self.is_floating_point = self.np.kind == "f"
        self.is_complex = self.np.kind == "c"
        self.itemsize = self.np.itemsize

    def __repr__(self) -> str:
        return f"chainrule.{self.name}"

    def __reduce__(self) -> str:
        return self.name


float16 = half = dtype("float16", np.float16)
float32 = float = dtype("float32", np.float32)
float64 = double = dtype("float64", np.float64)
int8 = dtype("int8", np.int8)
uint8 = dtype("uint8", np.uint8)
int16 = short = dtype("int16", np.int16)
int32 = int = dtype("int32", np.int32)
int64 = long = dtype("int64", np.int64)
bool = dtype("bool", np.bool_)  # noqa: A001 - PyTorch's name

_BY_NP = {d.np: d for d in (float16, float32, float64, int8, uint8, int16, int32, int64, bool)}

_default_float = float32


def get_default_dtype() -> dtype:
    """The dtype of floating-point tensors made from Python floats (float32 unless set)."""
    return _default_float


def set_default_dtype(d: dtype) -> None:
    """Set the default floating-point dtype, as ``torch.set_default_dtype``."""
    global _default_float
    if not d.is_floating_point:
        raise TypeError(f"set_default_dtype: only floating-point dtypes are allowed, got {d}")
    _default_float = d


def from_numpy_dtype(np_dtype: Any) -> dtype:
    """The chainrule dtype for a NumPy dtype; raises TypeError for unsupported ones."""
    try:
        return _BY_NP[np.dtype(np_dtype)]
    except KeyError:
        raise TypeError(f"chainrule has no dtype for NumPy dtype {np.dtype(np_dtype)}") from None


def to_numpy_dtype(d: Any) -> np.dtype:
    """Accept a chainrule dtype, a NumPy dtype or a Python type and return a NumPy dtype."""
    if isinstance(d, dtype):
        return d.np
    if d is builtins.float:
        return _default_float.np
    if d is builtins.int:
        return np.dtype(np.int64)
    return np.dtype(d)
