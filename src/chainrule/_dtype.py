"""chainrule dtypes: thin named wrappers over NumPy dtypes with PyTorch's names.

bfloat16 is ``ml_dtypes.bfloat16``, a NumPy dtype whose ``kind`` is ``'V'`` (NumPy
reserves ``'f'`` for its own floats): code that asks whether an array is floating point
must use ``is_floating`` rather than ``dtype.kind == 'f'``.
"""

from __future__ import annotations

import builtins
from typing import Any

import ml_dtypes
import numpy as np

_BFLOAT16 = np.dtype(ml_dtypes.bfloat16)


class dtype:  # noqa: N801 - PyTorch spells it lowercase
    """A tensor element type, e.g. ``chainrule.float32``."""

    __slots__ = ("name", "np", "is_floating_point", "is_complex", "itemsize")

    def __init__(self, name: str, np_dtype: Any) -> None:
        self.name = name
        self.np = np.dtype(np_dtype)
        self.is_floating_point = is_floating(self.np)
        self.is_complex = self.np.kind == "c"
        self.itemsize = self.np.itemsize

    def __repr__(self) -> str:
        return f"chainrule.{self.name}"

    def __reduce__(self) -> str:
        return self.name


def is_floating(np_dtype: np.dtype) -> builtins.bool:
    """Whether a NumPy dtype is a floating-point one, bfloat16 included.

    >>> is_floating(chainrule.bfloat16.np)
    True
    """
    try:
        return np_dtype.kind == "f" or np_dtype == _BFLOAT16
    except AttributeError:  # another backend's dtype object (array_api_strict's)
        return from_numpy_dtype(np_dtype).is_floating_point


float16 = half = dtype("float16", np.float16)
bfloat16 = dtype("bfloat16", _BFLOAT16)
float32 = float = dtype("float32", np.float32)
float64 = double = dtype("float64", np.float64)
int8 = dtype("int8", np.int8)
uint8 = dtype("uint8", np.uint8)
int16 = short = dtype("int16", np.int16)
int32 = int = dtype("int32", np.int32)
int64 = long = dtype("int64", np.int64)
bool = dtype("bool", np.bool_)  # noqa: A001 - PyTorch's name

ALL = (float16, bfloat16, float32, float64, int8, uint8, int16, int32, int64, bool)
_BY_NP = {d.np: d for d in ALL}
# other backends' dtype objects (array_api_strict has its own), registered as they load;
# kept apart from _BY_NP: they hash like NumPy's dtypes but compare unequal to them
_BY_NATIVE: dict = {}


def register_native(native: Any, np_dtype: np.dtype) -> None:
    """Record a backend's dtype object as the counterpart of a NumPy dtype."""
    if not isinstance(native, np.dtype):
        _BY_NATIVE[native] = _BY_NP[np_dtype]

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
    found = _BY_NP.get(np_dtype) if isinstance(np_dtype, np.dtype) else _BY_NATIVE.get(np_dtype)
    if found is not None:
        return found
    try:
        return _BY_NP[np.dtype(np_dtype)]
    except (KeyError, TypeError):
        raise TypeError(f"chainrule has no dtype for {np_dtype}") from None


def to_numpy_dtype(d: Any) -> np.dtype:
    """Accept a chainrule dtype, a NumPy dtype or a Python type and return a NumPy dtype."""
    if isinstance(d, dtype):
        return d.np
    if d is builtins.float:
        return _default_float.np
    if d is builtins.int:
        return np.dtype(np.int64)
    native = _BY_NATIVE.get(d) if not isinstance(d, (np.dtype, type, str)) else None
    return native.np if native is not None else np.dtype(d)


# Kinds in PyTorch's category order: a dtype of a higher category wins a promotion.
_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}


def category(np_dtype: np.dtype) -> builtins.int:
    """PyTorch's promotion category of a NumPy dtype: bool 0, integer 1, floating point 2
    (bfloat16 included), complex 3.

    >>> category(chainrule.bfloat16.np)
    2
    """
    return 2 if np_dtype == _BFLOAT16 else _CATEGORY[np_dtype.kind]


def promote_types(type1: dtype, type2: dtype) -> dtype:
    """The dtype both convert to in a binary op, as ``torch.promote_types``: within a
    category the wider type (uint8 with int8 gives int16; bfloat16 with float16, neither
    wider, gives float32), across categories the higher category's type (int64 with
    float16 gives float16).

    >>> chainrule.promote_types(chainrule.int64, chainrule.float16)
    chainrule.float16
    """
    a, b = to_numpy_dtype(type1), to_numpy_dtype(type2)
    ka, kb = category(a), category(b)
    if ka != kb:
        return from_numpy_dtype(a if ka > kb else b)
    if a != b and _BFLOAT16 in (a, b):
        # NumPy has no common type for bfloat16 and float16; PyTorch takes float32
        other = b if a == _BFLOAT16 else a
        return float32 if other == float16.np else from_numpy_dtype(other)
    return from_numpy_dtype(np.promote_types(a, b))


def can_cast(from_: dtype, to: dtype) -> builtins.bool:
    """Whether PyTorch's casting rules allow ``from_`` to ``to``: never to a lower category
    (bool < integer < floating point), anything within one (int64 to uint8 included).

    >>> chainrule.can_cast(chainrule.float64, chainrule.float32)
    True
    """
    return category(to_numpy_dtype(from_)) <= category(to_numpy_dtype(to))


class finfo:  # noqa: N801 - PyTorch's name
    """Limits of a floating-point dtype, as ``torch.finfo``.

    >>> chainrule.finfo(chainrule.float16).max
    65504.0
    """

    def __init__(self, type: dtype | None = None) -> None:  # noqa: A002 - PyTorch's name
        d = _default_float if type is None else type
        np_dtype = to_numpy_dtype(d)
        if not is_floating(np_dtype):
            raise TypeError(f"finfo() requires a floating point input type, got {d}; use "
                            f"iinfo for integer types")
        info = ml_dtypes.finfo(np_dtype)  # NumPy's finfo, extended to bfloat16
        self.bits = info.bits
        self.eps = builtins.float(info.eps)
        self.max = builtins.float(info.max)
        self.min = builtins.float(info.min)
        self.tiny = self.smallest_normal = builtins.float(info.smallest_normal)
        self.resolution = 10.0 ** -info.precision
        self.dtype = from_numpy_dtype(np_dtype).name

    def __repr__(self) -> str:
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, "
                f"eps={self.eps:g}, smallest_normal={self.smallest_normal:g}, "
                f"tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:  # noqa: N801 - PyTorch's name
    """Limits of an integer dtype, as ``torch.iinfo``.

    >>> chainrule.iinfo(chainrule.uint8).max
    255
    """

    def __init__(self, type: dtype) -> None:  # noqa: A002 - PyTorch's name
        np_dtype = to_numpy_dtype(type)
        if np_dtype.kind not in "iu":
            raise TypeError(f"iinfo() requires an integer input type, got {type}; use finfo "
                            f"for floating point types")
        info = np.iinfo(np_dtype)
        self.bits = info.bits
        self.max = builtins.int(info.max)
        self.min = builtins.int(info.min)
        self.dtype = from_numpy_dtype(np_dtype).name

    def __repr__(self) -> str:
        return f"iinfo(min={self.min:g}, max={self.max:g}, dtype={self.dtype})"
