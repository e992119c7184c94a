"""Backends and devices: which array library holds a tensor's elements, and where.

A backend is one array namespace spoken with the Array API's names (``xp.exp``,
``xp.permute_dims``, ``xp.astype``), the type of its arrays, its dtype objects and a way
to move arrays to and from NumPy. Three are known, each loaded on first use:

- ``cpu``: NumPy (always there; the fast path);
- ``cuda``: CuPy, when it is installed (``pip install 'chainrule[cuda]'``);
- ``array_api_strict``: the array-api-strict package, a second "device" whose arrays have
  nothing but the Array API. The test suite runs the op suite on it so that code which
  quietly assumes NumPy is caught without a GPU.

Everything above this module asks here for the namespace of an array (``namespace_of``)
rather than importing NumPy for array work; the kernels the Array API lacks live in
``ops/kernels.py``, the one place with backend-specific code.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from . import _dtype

xp = np  # the CPU namespace, for code that makes host arrays (index lists, samples)
ndarray = np.ndarray

CUDA_INSTALL_HINT = "install CuPy with `pip install 'chainrule[cuda]'` (CUDA 12)"


class device:  # noqa: N801 - PyTorch spells it lowercase
    """Where a tensor's elements live, as ``torch.device``: a type and an optional index.

    >>> chainrule.device("cuda:1")
    device(type='cuda', index=1)
    >>> chainrule.device("cpu") == chainrule.device("cpu")
    True
    """

    __slots__ = ("type", "index")

    def __init__(self, type: Any, index: int | None = None) -> None:  # noqa: A002 - torch's name
        if isinstance(type, device):
            type, index = type.type, type.index if index is None else index
        elif isinstance(type, str) and ":" in type:
            if index is not None:
                raise RuntimeError(f"device(): type (string) must not include an index because "
                                   f"index was passed explicitly: {type}")
            type, _, text = type.partition(":")
            if not text.isdigit():
                raise RuntimeError(f"Invalid device string: '{type}:{text}'")
            index = int(text)
        if not isinstance(type, str) or type not in _LOADERS:
            raise RuntimeError(f"Expected one of {', '.join(_LOADERS)} device type at start of "
                               f"device string: {type}")
        if index is not None and (not isinstance(index, int) or index < 0):
            raise RuntimeError(f"Device index must not be negative, got {index}")
        self.type = type
        self.index = index

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __reduce__(self) -> tuple:
        return device, (self.type, self.index)


class Backend:
    """One array library: its namespace ``xp``, its array type, its dtype objects
    (``native[np_dtype]``) and the moves between it and NumPy."""

    __slots__ = ("name", "xp", "array_type", "native", "to_numpy", "from_numpy", "device_of",
                 "device_count", "synchronize")

    def __init__(self, name: str, xp: Any, array_type: type, native: dict,
                 to_numpy: Callable, from_numpy: Callable, device_of: Callable,
                 device_count: Callable, synchronize: Callable) -> None:
        self.name = name
        self.xp = xp
        self.array_type = array_type
        self.native = native
        self.to_numpy = to_numpy
        self.from_numpy = from_numpy
        self.device_of = device_of
        self.device_count = device_count
        self.synchronize = synchronize

    def native_dtype(self, np_dtype: Any) -> Any:
        """This backend's dtype object for a NumPy dtype (an error naming both if it has none)."""
        try:
            return self.native[_dtype.to_numpy_dtype(np_dtype)]
        except KeyError:
            raise TypeError(f"the {self.name} backend has no dtype {_dtype.from_numpy_dtype(np_dtype)}"
                            ) from None

    def __repr__(self) -> str:
        return f"<backend {self.name}>"


def _numpy_backend() -> Backend:
    native = {d.np: d.np for d in _dtype.ALL}
    return Backend("cpu", np, np.ndarray, native, lambda a: a, lambda a, index: a,
                   lambda a: CPU, lambda: 1, lambda index: None)


def _cupy_backend() -> Backend:
    try:
        cupy = importlib.import_module("cupy")
        # CuPy's own names predate the Array API's (concatenate, transpose); array-api-compat
        # wraps it with the Array API's names, over the same cupy.ndarray
        spoken = importlib.import_module("array_api_compat.cupy")
    except ImportError:
        raise RuntimeError(f"chainrule runs on the CPU here: CUDA tensors need CuPy, which is not "
                           f"installed; {CUDA_INSTALL_HINT}, or pass device='cpu'") from None

    def from_numpy(array: Any, index: int | None) -> Any:
        with cupy.cuda.Device(0 if index is None else index):
            return cupy.asarray(array)

    def synchronize(index: int | None) -> None:
        with cupy.cuda.Device(cupy.cuda.runtime.getDevice() if index is None else index):
            cupy.cuda.Device().synchronize()

    # CuPy's dtypes are NumPy's; it has no bfloat16
    native = {d.np: d.np for d in _dtype.ALL if d is not _dtype.bfloat16}
    return Backend("cuda", spoken, cupy.ndarray, native, cupy.asnumpy, from_numpy,
                   lambda a: device("cuda", a.device.id), cupy.cuda.runtime.getDeviceCount,
                   synchronize)


def _strict_backend() -> Backend:
    strict = importlib.import_module("array_api_strict")
    native = {}
    for d in _dtype.ALL:
        found = getattr(strict, d.name, None)  # no float16 nor bfloat16 in the Array API
        if found is not None:
            native[d.np] = found
    where = device("array_api_strict")
    return Backend("array_api_strict", strict, type(strict.asarray(0)), native,
                   lambda a: np.asarray(a), lambda a, index: strict.asarray(a),
                   lambda a: where, lambda: 1, lambda index: None)


_LOADERS: dict[str, Callable[[], Backend]] = {
    "cpu": _numpy_backend, "cuda": _cupy_backend, "array_api_strict": _strict_backend,
}
CPU = device("cpu")

BACKENDS: dict[str, Backend] = {}
# the backend of each array type; NumPy's scalar types too (a 0-d result may be one)
BY_TYPE: dict[type, Backend] = {}
BY_NAMESPACE: dict[Any, Backend] = {}
ARRAY_TYPES: set = set()  # the array types of the loaded backends (no scalar types)
# called with each backend as it loads (the ops layer adds its rule namespace)
on_load: list[Callable[[Backend], None]] = []


def backend(name: str) -> Backend:
    """The backend of a device type, loaded on first use (``backend('cuda')``)."""
    found = BACKENDS.get(name)
    if found is None:
        found = _LOADERS[name]()
        BACKENDS[name] = found
        BY_TYPE[found.array_type] = found
        BY_NAMESPACE[found.xp] = found
        ARRAY_TYPES.add(found.array_type)
        for d, native in found.native.items():
            _dtype.register_native(native, d)
        for hook in on_load:
            hook(found)
    return found


NUMPY = backend("cpu")
for _scalar in {d.np.type for d in _dtype.ALL}:
    BY_TYPE[_scalar] = NUMPY


def backend_of(array: Any) -> Backend:
    """The backend that owns ``array`` (NumPy for NumPy arrays, their subclasses and scalars)."""
    found = BY_TYPE.get(type(array))
    if found is None:
        if isinstance(array, (np.ndarray, np.generic)):
            return NUMPY
        raise TypeError(f"no chainrule backend holds arrays of type {type(array).__name__}")
    return found


def namespace_of(array: Any) -> Any:
    """The array namespace (module) that owns ``array``."""
    return backend_of(array).xp


def device_of(array: Any) -> device:
    """The device an array lives on."""
    if type(array) is ndarray:
        return CPU
    return backend_of(array).device_of(array)


def is_array(value: Any) -> bool:
    """Whether ``value`` is an array of a loaded backend (or a NumPy scalar)."""
    return type(value) in BY_TYPE or isinstance(value, (np.ndarray, np.generic))


def np_dtype(array: Any) -> np.dtype:
    """An array's dtype as a NumPy dtype, whatever its backend (chainrule's dtype currency)."""
    d = array.dtype
    return d if isinstance(d, np.dtype) else _dtype.to_numpy_dtype(d)


def to_numpy(array: Any) -> np.ndarray:
    """A NumPy array with ``array``'s elements (the array itself when it is one)."""
    if isinstance(array, (np.ndarray, np.generic)):
        return np.asarray(array)
    return backend_of(array).to_numpy(array)


def to_device(array: Any, target: device) -> Any:
    """``array`` on ``target`` (itself when already there), through the host if needed."""
    if device_of(array) == target:
        return array
    return backend(target.type).from_numpy(to_numpy(array), target.index)


def copy(array: Any) -> Any:
    """A copy of ``array`` that owns its memory (a 0-d array for a NumPy scalar)."""
    if isinstance(array, (np.ndarray, np.generic)):
        return np.array(array, copy=True)
    return backend_of(array).xp.asarray(array, copy=True)


def astype(array: Any, np_dtype_: Any) -> Any:
    """``array`` converted to a NumPy dtype's counterpart on its own backend (no copy if equal)."""
    if type(array) is ndarray:
        return array.astype(np_dtype_, copy=False)
    owner = backend_of(array)
    return owner.xp.astype(array, owner.native_dtype(np_dtype_), copy=False)


def asarray(data: Any, np_dtype_: Any, like: Any) -> Any:
    """``data`` (a number or host data) as an array of ``np_dtype_`` on ``like``'s device."""
    if type(like) is ndarray:
        return np.asarray(data, dtype=np_dtype_)
    owner = backend_of(like)
    return owner.from_numpy(np.asarray(data, dtype=np_dtype_), device_of(like).index)


def resolve(where: Any) -> device:
    """A device from a string, an int (a CUDA index, as PyTorch) or a device."""
    if isinstance(where, device):
        return where
    if isinstance(where, int) and not isinstance(where, bool):
        return device("cuda", where)
    return device(where)


def check_available(where: device) -> Backend:
    """The backend of ``where``, or an error naming it and saying why it cannot be used."""
    try:
        owner = backend(where.type)
    except RuntimeError as error:
        raise RuntimeError(f"device '{where}' is not available: {error}") from None
    if where.index is not None and where.type != "cpu" and where.index >= owner.device_count():
        raise RuntimeError(f"device {where} is not available: {where.type} has "
                           f"{owner.device_count()} device(s)")
    return owner


# the device factories put tensors on when no device= is given (set_default_device)
_default_device = CPU


def get_default_device() -> device:
    """The device factories use when none is given (``cpu`` unless set).

    >>> chainrule.get_default_device()
    device(type='cpu')
    """
    return _default_device


def set_default_device(where: Any) -> None:
    """Make factories (``tensor``, ``zeros``, ``randn``...) put new tensors on ``where``, as
    ``torch.set_default_device``; ``None`` restores the CPU.

    >>> chainrule.set_default_device("array_api_strict")
    """
    global _default_device
    target = CPU if where is None else resolve(where)
    check_available(target)
    _default_device = target
