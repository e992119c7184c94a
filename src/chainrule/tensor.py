"""The Tensor: an array, its gradient, and the node that made it.

Only state and thin plumbing live here. Math methods and operator dunders are
bound onto the class by ``chainrule._tensor_methods`` once the ops exist, so this
module imports nothing above it (DESIGN.md: imports point down).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from . import _backend, _dtype
from ._backend import xp

_new = object.__new__


class Tensor:
    """A multi-dimensional array that can record the operations applied to it.

    >>> import chainrule as torch
    >>> x = torch.tensor([1.0, 2.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    tensor([2., 4.])
    """

    # _data: the backend array. _rg: requires_grad. _version: a one-element list shared
    # with every view of the same storage, bumped by in-place ops and checked at backward.
    # _base: the tensor this one is a view of. _extra: rarely used state (hooks,
    # retain_grad, forward-mode tangent), None on the hot path.
    __slots__ = ("_data", "_rg", "grad", "grad_fn", "_version", "_base", "_extra", "__weakref__")

    __array_priority__ = 1000  # make ndarray <op> Tensor defer to Tensor's reflected ops

    def __init__(self, *args: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        """PyTorch's legacy constructor: ``Tensor(2, 3)`` or ``Tensor(Size)`` is an
        uninitialised tensor of that shape, ``Tensor(data)`` converts to the default float
        dtype (``dtype=`` picks another); ``chainrule.tensor`` is the usual factory.

        >>> chainrule.Tensor(2, 3).shape
        chainrule.Size([2, 3])
        >>> chainrule.Tensor([1, 2])
        tensor([1., 2.])
        """
        np_dtype = _dtype.get_default_dtype().np if dtype is None else dtype
        if args and all(isinstance(a, int) and not isinstance(a, bool) for a in args):
            array = xp.empty(args, dtype=_dtype.to_numpy_dtype(np_dtype))
        elif len(args) == 1 and isinstance(args[0], Size):
            array = xp.empty(tuple(args[0]), dtype=_dtype.to_numpy_dtype(np_dtype))
        elif len(args) == 1 and isinstance(args[0], Tensor):
            # Tensor(t) aliases t's storage and dtype, as in PyTorch
            array = _as_array(args[0], dtype)
        elif len(args) <= 1:
            array = _as_array(args[0] if args else [], np_dtype)
        else:
            raise TypeError(f"Tensor(): expected sizes (ints) or one data argument, got {args!r}")
        self._data = array
        self._rg = False
        self.grad = None
        self.grad_fn = None
        self._version = [0]
        self._base = None
        self._extra = None
        if requires_grad:
            self.requires_grad_(True)

    # ------------------------------------------------------------------ basics
    @property
    def data(self) -> Tensor:
        """The same storage without history (no grad_fn, requires_grad False).

        As in PyTorch, changes made through ``.data`` are invisible to autograd: it has its
        own version counter, so a rule that saved this tensor does not notice them
        (``detach()`` shares the counter and does).

        >>> w.data.mul_(0.5)    # an optimizer-style update that autograd does not record
        """
        return _wrap(self._data)

    @data.setter
    def data(self, value: Tensor) -> None:
        self._data = value._data if isinstance(value, Tensor) else _as_array(value, None)

    @property
    def requires_grad(self) -> bool:
        return self._rg

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        self.requires_grad_(flag)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set requires_grad on a leaf, in place; only floating-point tensors may require grad."""
        if self.grad_fn is not None and not requires_grad:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables; use .detach() "
                "to get a tensor that does not require grad"
            )
        if requires_grad and not (_dtype.is_floating(self._data.dtype) or self.dtype.is_complex):
            raise RuntimeError(
                f"only tensors of floating point dtype can require gradients; this tensor is "
                f"{self.dtype} with shape {tuple(self.shape)}: convert it first with .float()"
            )
        self._rg = bool(requires_grad)
        return self

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def shape(self) -> Size:
        return Size(self._data.shape)

    def size(self, dim: int | None = None) -> Any:
        """The shape (``size()``), or the length of one dim (``size(d)``, negative counts
        from the end).

        >>> chainrule.zeros(2, 3).size(-1)
        3
        """
        if dim is None:
            return Size(self._data.shape)
        rank = self._data.ndim
        if rank == 0:
            raise IndexError(f"size(): dimension specified as {dim} but tensor has no dimensions")
        if not -rank <= dim < rank:
            raise IndexError(
                f"size(): dimension out of range (expected to be in range of [{-rank}, "
                f"{rank - 1}], but got {dim})"
            )
        return self._data.shape[dim]

    def dim(self) -> int:
        return self._data.ndim

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return int(self._data.size)

    nelement = numel
    ndimension = dim

    def stride(self, dim: int | None = None) -> Any:
        """Steps in elements between neighbours along each dim (``stride(d)``: one dim)."""
        steps = tuple(s // self._data.itemsize for s in self._data.strides)
        return steps if dim is None else steps[dim]

    def data_ptr(self) -> int:
        """The address of the first element."""
        return self._data.__array_interface__["data"][0]

    @property
    def is_cuda(self) -> bool:
        return type(self._data) is not np.ndarray and self.device.type == "cuda"

    @property
    def nbytes(self) -> int:
        return self.numel() * self.itemsize

    @property
    def itemsize(self) -> int:
        return self.dtype.itemsize

    @property
    def dtype(self) -> _dtype.dtype:
        return _dtype.from_numpy_dtype(self._data.dtype)

    @property
    def device(self) -> _backend.device:
        """Where the elements live (``device(type='cpu')``, ``device(type='cuda', index=0)``)."""
        return _backend.device_of(self._data)

    def is_floating_point(self) -> bool:
        return _dtype.is_floating(self._data.dtype)

    def element_size(self) -> int:
        return self.dtype.itemsize

    def item(self) -> Any:
        if self.numel() != 1:
            raise RuntimeError(
                f"item(): a Tensor with {self.numel()} elements cannot be converted to a "
                f"Python scalar (shape {tuple(self.shape)})"
            )
        return _backend.to_numpy(self._data).item()

    def tolist(self) -> Any:
        return _backend.to_numpy(self._data).tolist()

    def numpy(self, *, force: bool = False) -> np.ndarray:
        """The array itself (shared storage); refuses a tensor that requires grad, as PyTorch,
        and one on another device than the CPU (``force=True``: a host copy of either)."""
        if self._rg and not force:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() "
                "instead."
            )
        if type(self._data) is not np.ndarray:
            if not force:
                raise TypeError(
                    f"can't convert {self.device} device type tensor to numpy. Use Tensor.cpu() "
                    f"to copy the tensor to host memory first."
                )
            return _backend.to_numpy(self._data)
        return self._data

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        # np.asarray(t) is t.numpy(): refused while t requires grad, as in PyTorch.
        array = self.numpy()
        if dtype is not None and array.dtype != dtype:
            return array.astype(dtype)
        return array.copy() if copy else array

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self) -> Any:
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    def __bool__(self) -> bool:
        if self.numel() != 1:
            raise RuntimeError(
                f"Boolean value of Tensor with {self.numel()} elements is ambiguous"
            )
        return bool(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.dtype.is_floating_point or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __repr__(self) -> str:
        return _format(self)

    def __format__(self, spec: str) -> str:
        # a 0-d tensor formats as its number (f"{loss:.3f}"), as in PyTorch
        if self._data.ndim == 0:
            return self.item().__format__(spec)
        return object.__format__(self, spec)

    # ----------------------------------------------------------- history tools
    def detach(self) -> Tensor:
        """A new tensor on the same storage, cut from the graph.

        It shares the version counter, so changing it in place still invalidates what a
        backward rule saved of this tensor (as in PyTorch).

        >>> d = x.detach(); d[0] = 5.0     # x sees the change
        """
        t = _wrap(self._data)
        t._version = self._version
        return t

    def detach_(self) -> Tensor:
        """Cut this tensor from the graph in place (it becomes a leaf)."""
        if self._base is not None:
            # a view's history is re-read from its base when the base changes in place
            raise RuntimeError(
                f"detach_(): can't detach views in-place (this tensor of shape "
                f"{tuple(self.shape)} is a view). Use detach() instead."
            )
        self.grad_fn = None
        self._rg = False
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor after backward."""
        if self.grad_fn is None:
            if not self._rg:
                raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
            return
        retained = self.grad_fn.retained
        if retained is None:
            self.grad_fn.retained = retained = []
        if not any(ref() is self for ref in retained):
            retained.append(weakref.ref(self))

    @property
    def retains_grad(self) -> bool:
        fn = self.grad_fn
        return fn is not None and fn.retained is not None and any(r() is self for r in fn.retained)

    def register_hook(self, hook: Callable[[Tensor], Tensor | None]) -> RemovableHandle:
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned tensor replaces it.

        >>> h = x.register_hook(lambda g: g * 2)
        >>> h.remove()
        """
        if not self._rg:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is not None:
            owner = self.grad_fn
            if owner.hooks is None:
                owner.hooks = []
            hooks = owner.hooks
        else:
            extra = self._extra_state()
            if extra.hooks is None:
                extra.hooks = []
            hooks = extra.hooks
        hooks.append(hook)
        return RemovableHandle(hooks, hook)

    def _extra_state(self) -> _Extra:
        if self._extra is None:
            self._extra = _Extra()
        return self._extra

    def backward(
        self,
        gradient: Any = None,
        retain_graph: bool | None = None,
        create_graph: bool = False,
        inputs: Any = None,
    ) -> None:
        """Compute the gradient of this tensor with respect to the graph's leaves.

        Leaves that require grad accumulate into ``.grad``. A non-scalar tensor needs
        ``gradient`` (the vector in the vector-Jacobian product).
        """
        from .autograd.engine import backward

        backward(self, gradient, retain_graph, create_graph, inputs=inputs)


class _Extra:
    """State most tensors never use, kept off the hot path."""

    __slots__ = ("hooks", "fw_grad", "name", "no_grad_view")

    def __init__(self) -> None:
        self.hooks = None
        self.fw_grad = None
        self.name = None
        # a view made under no_grad of a tensor that required grad: a constant, whose
        # history is never refreshed from its base (PyTorch's CreationMeta.NO_GRAD_MODE)
        self.no_grad_view = False


class RemovableHandle:
    """Returned by ``register_hook``; ``remove()`` unregisters the hook."""

    __slots__ = ("_hooks", "_hook")

    def __init__(self, hooks: list, hook: Callable) -> None:
        self._hooks = hooks
        self._hook = hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


class Size(tuple):
    """A shape, as ``torch.Size``: a tuple with ``numel()``."""

    def numel(self) -> int:
        n = 1
        for d in self:
            n *= d
        return n

    def __repr__(self) -> str:
        return f"chainrule.Size({list(self)})"


def _wrap(array: Any, grad_fn: Any = None) -> Tensor:
    """Make a Tensor around a backend array without copying (the ops' fast path)."""
    t = _new(Tensor)
    if type(array) is not xp.ndarray and type(array) not in _backend.ARRAY_TYPES:
        array = xp.asarray(array)  # NumPy scalars, host data
    t._data = array
    t._rg = grad_fn is not None
    t.grad = None
    t.grad_fn = grad_fn
    t._version = [0]
    t._base = None
    t._extra = None
    return t


def _as_array(data: Any, dtype: Any) -> Any:
    """Convert Python data, arrays or tensors to a backend array with PyTorch's dtype rules."""
    if isinstance(data, Tensor):
        array = data._data
        if type(array) is not xp.ndarray:
            return array if dtype is None else _backend.astype(array, _dtype.to_numpy_dtype(dtype))
    elif isinstance(data, (list, tuple)) and _contains_tensor(data):
        array = xp.asarray(_unwrap_nested(data))
    else:
        array = xp.asarray(data)
    if dtype is not None:
        return array.astype(_dtype.to_numpy_dtype(dtype), copy=False)
    if array.dtype == xp.float64 and not _has_float64_item(data):
        # Python floats become the default dtype (float32), as torch.tensor does; float64
        # arrays, NumPy scalars and tensors keep their dtype.
        return array.astype(_dtype.get_default_dtype().np)
    if array.dtype.kind in "US" or array.dtype == object:
        raise TypeError(f"tensor(): cannot make a tensor from {type(data).__name__} data")
    return array


def _has_float64_item(data: Any) -> bool:
    """Whether ``data`` is, or nests, a float64 array, NumPy scalar or tensor."""
    if isinstance(data, (list, tuple)):
        # set(map(type, ...)) runs at C speed: a long list of Python numbers costs little
        if set(map(type, data)) <= _PYTHON_NUMBERS:
            return False
        return any(_has_float64_item(v) for v in data if type(v) not in _PYTHON_NUMBERS)
    if isinstance(data, Tensor):
        return _backend.np_dtype(data._data) == xp.float64
    return isinstance(data, (xp.ndarray, xp.generic)) and data.dtype == xp.float64


_PYTHON_NUMBERS = frozenset((float, int, bool, complex))


def _contains_tensor(seq: Any) -> bool:
    if set(map(type, seq)) <= _PYTHON_NUMBERS:
        return False
    return any(isinstance(v, Tensor) or (isinstance(v, (list, tuple)) and _contains_tensor(v))
               for v in seq)


def _unwrap_nested(seq: Any) -> Any:
    return [_backend.to_numpy(v._data) if isinstance(v, Tensor) else
            (_unwrap_nested(v) if isinstance(v, (list, tuple)) else v) for v in seq]


# ------------------------------------------------------------------ printing
# PyTorch's print options (torch._tensor_str.PRINT_OPTS defaults), so that a repr reads
# exactly as PyTorch's does with "torch." replaced by "chainrule.".
_PRECISION = 4
_THRESHOLD = 1000
_EDGEITEMS = 3
_LINEWIDTH = 80


def _format(t: Tensor) -> str:
    """``repr(t)``, laid out as PyTorch's ``_str_intern`` lays it out."""
    array = _backend.to_numpy(t._data)
    prefix = "tensor(" if type(t) is Tensor else f"{type(t).__name__}("
    indent = len(prefix)
    default = _dtype.get_default_dtype().np
    suffix = []
    if array.size == 0:
        # NumPy-like: the shape is shown unless it is (0,); no element tells the dtype.
        if array.ndim != 1:
            suffix.append(f"size={tuple(array.shape)}")
        if array.dtype != default:
            suffix.append(f"dtype={t.dtype!r}")
        body = "[]"
    else:
        if array.dtype not in (default, np.dtype(np.int64), np.dtype(np.bool_)):
            suffix.append(f"dtype={t.dtype!r}")
        summarize = array.size > _THRESHOLD
        fmt = _Formatter(_summarized(array) if summarize else array)
        body = _tensor_str(array, indent, summarize, fmt)
    if type(t._data) is not np.ndarray:
        suffix.insert(0, f"device='{t.device}'")
    if t.grad_fn is not None:
        suffix.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t._rg:
        suffix.append("requires_grad=True")
    if t._extra is not None and t._extra.fw_grad is not None:
        suffix.append(f"tangent={t._extra.fw_grad!r}")
    return _add_suffixes(prefix + body, suffix, indent)


class _Formatter:
    """One width and one notation for every element, chosen as PyTorch's _Formatter does:
    integers print as-is; floats print fixed with 4 decimals, as integers with a trailing
    dot when all are whole, or in scientific notation when their magnitudes span more than
    1000x, exceed 1e8 or go below 1e-4."""

    def __init__(self, array: Any) -> None:
        self.floating = _dtype.is_floating(array.dtype)
        self.int_mode = True
        self.sci_mode = False
        self.width = 1
        flat = array.reshape(-1)
        if not self.floating:
            self.width = max((len(str(v)) for v in flat.tolist()), default=1)
            return
        values = flat[np.isfinite(flat) & (flat != 0)]
        if values.size == 0:
            return
        magnitudes = np.abs(values.astype(np.float64))
        low, high = magnitudes.min(), magnitudes.max()
        self.int_mode = bool(np.all(values == np.ceil(values)))
        self.sci_mode = bool(high / low > 1000.0 or high > 1.0e8 or low < 1.0e-4)
        for v in values.tolist():
            if self.sci_mode:
                text = f"{v:.{_PRECISION}e}"
            elif self.int_mode:
                text = f"{v:.0f}" + "."
            else:
                text = f"{v:.{_PRECISION}f}"
            self.width = max(self.width, len(text))

    def format(self, value: Any) -> str:
        if not self.floating:
            text = str(value)
        elif self.sci_mode:
            text = f"{value:{self.width}.{_PRECISION}e}"
        elif self.int_mode:
            text = f"{value:.0f}"
            if np.isfinite(value):
                text += "."
        else:
            text = f"{value:.{_PRECISION}f}"
        return text.rjust(self.width)


def _summarized(array: Any) -> Any:
    """The elements a summarized print shows (the first and last ``_EDGEITEMS`` per dim)."""
    if array.ndim == 0:
        return array
    if array.ndim == 1:
        if array.shape[0] > 2 * _EDGEITEMS:
            return np.concatenate((array[:_EDGEITEMS], array[-_EDGEITEMS:]))
        return array
    rows = range(array.shape[0])
    if array.shape[0] > 2 * _EDGEITEMS:
        rows = [*range(_EDGEITEMS), *range(array.shape[0] - _EDGEITEMS, array.shape[0])]
    return np.stack([_summarized(array[i]) for i in rows])


def _tensor_str(array: Any, indent: int, summarize: bool, fmt: _Formatter) -> str:
    if array.ndim == 0:
        return fmt.format(array.item())
    if array.ndim == 1:
        per_line = max(1, (_LINEWIDTH - indent) // (fmt.width + 2))
        if summarize and array.shape[0] > 2 * _EDGEITEMS:
            items = ([fmt.format(v) for v in array[:_EDGEITEMS].tolist()] + [" ..."] +
                     [fmt.format(v) for v in array[-_EDGEITEMS:].tolist()])
        else:
            items = [fmt.format(v) for v in array.tolist()]
        lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
        return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"
    n = array.shape[0]
    if summarize and n > 2 * _EDGEITEMS:
        slices = ([_tensor_str(array[i], indent + 1, summarize, fmt) for i in range(_EDGEITEMS)]
                  + ["..."] +
                  [_tensor_str(array[i], indent + 1, summarize, fmt)
                   for i in range(n - _EDGEITEMS, n)])
    else:
        slices = [_tensor_str(array[i], indent + 1, summarize, fmt) for i in range(n)]
    return "[" + ("," + "\n" * (array.ndim - 1) + " " * (indent + 1)).join(slices) + "]"


def _add_suffixes(text: str, suffixes: list, indent: int) -> str:
    """Append ``, suffix`` items, wrapping to a new line past the line width."""
    parts = [text]
    line = len(text) - text.rfind("\n") + 1
    for suffix in suffixes:
        # Measure "dtype=chainrule.x" as PyTorch's "dtype=torch.x", so that lines break
        # where PyTorch's do and the two reprs differ only by that word.
        width = len(suffix.replace("chainrule.", "torch."))
        if line + width + 2 > _LINEWIDTH:
            parts.append(",\n" + " " * indent + suffix)
            line = indent + width
        else:
            parts.append(", " + suffix)
            line += width + 2
    return "".join(parts) + ")"


def is_tensor(obj: Any) -> bool:
    """True for a chainrule Tensor."""
    return isinstance(obj, Tensor)
