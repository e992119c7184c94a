"""``autocast``: run matrix products in bfloat16 or float16 and keep the numerically
touchy ops (losses, reductions, norms) in float32, as ``torch.amp.autocast``.

Inside the region every primitive call goes through a version of ``Primitive.__call__``
that casts the inputs by the primitive's name, and the ``nn.functional`` composites that
PyTorch runs as one kernel (convolution, the norms, the losses) are swapped for versions
that cast at their boundary; ``_lists.py`` says which op gets which policy. Outside, the
plain functions are back: autocast costs nothing when off. The casts are the ``cast``
primitive, so each one's backward casts the gradient back, and a float32 parameter
receives a float32 gradient.

>>> model = chainrule.nn.Linear(4, 2)
>>> with chainrule.autocast(device_type="cpu", dtype=chainrule.bfloat16):
...     y = model(chainrule.ones(3, 4))
>>> y.dtype
chainrule.bfloat16

Like the diagnostics' swaps, the switch is process-wide rather than per thread.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _dtype
from ..autograd import grad_mode
from ..nn import conv_functional, functional
from ..ops import _primitive, unary
from ..tensor import Tensor
from . import _lists
from ._lists import FLOAT32, LOWER, WIDEN

__all__ = ["autocast", "is_autocast_available", "is_autocast_enabled", "get_autocast_dtype"]

_FLOAT32 = np.dtype(np.float32)
_FLOAT64 = np.dtype(np.float64)
_LOW = (_dtype.bfloat16.np, _dtype.float16.np)  # the dtypes autocast runs in on the CPU
_grad = grad_mode.state


class _State:
    """The autocast region in force. ``dtype`` is None when autocast is off or disabled by
    a nested ``autocast(enabled=False)``; the swapped functions then pass calls through."""

    __slots__ = ("dtype", "cache_enabled", "cache", "depth", "plain_call", "plain_functions")

    def __init__(self) -> None:
        self.dtype: np.dtype | None = None
        self.cache_enabled = True
        # (id(tensor), dtype) -> (tensor, its version, its rounded copy)
        self.cache: dict = {}
        self.depth = 0  # autocast regions entered and not yet left, enabled or not
        self.plain_call: Callable | None = None  # Primitive.__call__ while swapped
        self.plain_functions: list = []  # (module, name, function) while swapped


_state = _State()


def is_autocast_available(device_type: str) -> bool:
    """Whether autocast can run on ``device_type`` (the CPU only, in this build).

    >>> chainrule.amp.is_autocast_available("cpu")
    True
    """
    return device_type == "cpu"


def is_autocast_enabled(device_type: str = "cpu") -> bool:
    """Whether an enabled autocast region is in force, as ``torch.is_autocast_enabled``.

    >>> chainrule.amp.autocast_mode.is_autocast_enabled()
    False
    """
    return device_type == "cpu" and _state.dtype is not None


def get_autocast_dtype(device_type: str = "cpu") -> _dtype.dtype:
    """The dtype autocast runs the low-precision ops in (bfloat16 by default on the CPU),
    as ``torch.get_autocast_dtype``.

    >>> chainrule.amp.autocast_mode.get_autocast_dtype("cpu")
    chainrule.bfloat16
    """
    if _state.dtype is None:
        return _dtype.bfloat16
    return _dtype.from_numpy_dtype(_state.dtype)


class autocast:  # noqa: N801 - PyTorch's name
    """A region (context manager or decorator) where matmul, linear, convolution and
    attention run in ``dtype`` and losses run in float32, following PyTorch's CPU autocast
    lists; reductions, softmax and the norms compute in float32 and keep their input's
    dtype. Gradients flow back through every cast, so float32 parameters get float32
    gradients. ``cache_enabled`` keeps one rounded copy of each parameter for the region.

    >>> with chainrule.amp.autocast(device_type="cpu", dtype=chainrule.bfloat16):
    ...     loss = F.cross_entropy(model(x), y)     # logits bfloat16, loss float32
    >>> loss.backward()                            # outside: the backward needs no autocast
    >>> @chainrule.autocast("cpu")
    ... def forward(x): return model(x)
    """

    def __init__(self, device_type: str, dtype: _dtype.dtype | None = None, enabled: bool = True,
                 cache_enabled: bool | None = None) -> None:
        if not isinstance(device_type, str):
            raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
        self.device = device_type
        self.fast_dtype = _dtype.bfloat16 if dtype is None else dtype
        self._cache_enabled = True if cache_enabled is None else bool(cache_enabled)
        if device_type == "cuda":
            if enabled:
                warnings.warn("User provided device_type of 'cuda', but CUDA is not available. "
                              "Disabling", stacklevel=2)
            enabled = False
        elif device_type != "cpu":
            raise RuntimeError(f"User specified an unsupported autocast device_type "
                               f"'{device_type}'")
        elif enabled and _dtype.to_numpy_dtype(self.fast_dtype) not in _LOW:
            warnings.warn("In CPU autocast, but the target dtype is not supported. Disabling "
                          "autocast.\nCPU Autocast only supports dtype of chainrule.bfloat16, "
                          "chainrule.float16 currently.", stacklevel=2)
            enabled = False
        self._enabled = enabled
        self._previous: tuple | None = None
        self._installed = False

    def __enter__(self) -> autocast:
        self._previous = (_state.dtype, _state.cache_enabled)
        _state.dtype = _dtype.to_numpy_dtype(self.fast_dtype) if self._enabled else None
        _state.cache_enabled = self._cache_enabled
        _state.depth += 1
        if self._enabled and _state.plain_call is None:
            _install()
            self._installed = True
        return self

    def __exit__(self, *exc: Any) -> None:
        _state.dtype, _state.cache_enabled = self._previous
        _state.depth -= 1
        if self._installed:
            _uninstall()
            self._installed = False
        if _state.depth == 0:
            _state.cache.clear()  # as PyTorch: the cache lives as long as the outermost region

    def __call__(self, func: Callable) -> Callable:
        options = {"device_type": self.device, "dtype": self.fast_dtype,
                   "enabled": self._enabled, "cache_enabled": self._cache_enabled}

        @functools.wraps(func)
        def decorated(*args: Any, **kwargs: Any) -> Any:
            # a fresh region per call: a recursive call must not overwrite the saved state
            with autocast(**options):
                return func(*args, **kwargs)

        return decorated


# ------------------------------------------------------------------ the swap
def _install() -> None:
    plain = _primitive.Primitive.__call__
    _state.plain_call = plain
    _primitive.Primitive.__call__ = _autocast_call(plain)
    for module in (functional, conv_functional):
        for name, policy in _lists.FUNCTIONS.items():
            original = getattr(module, name, None)
            if original is not None:
                _state.plain_functions.append((module, name, original))
                setattr(module, name, _autocast_function(original, policy))


def _uninstall() -> None:
    _primitive.Primitive.__call__ = _state.plain_call
    _state.plain_call = None
    for module, name, original in _state.plain_functions:
        setattr(module, name, original)
    _state.plain_functions.clear()


def _autocast_call(plain: Callable) -> Callable:
    policies = _lists.PRIMITIVES

    def autocast_call(prim: Any, *inputs: Tensor, **params: Any) -> Tensor:
        policy = policies.get(prim.name)
        low = _state.dtype
        if policy is None or low is None:
            return plain(prim, *inputs, **params)
        if policy is LOWER:
            inputs = tuple(_rounded(t, low) for t in inputs)
            result_dtype = low
        elif policy is FLOAT32:
            inputs = tuple(_float32(t) for t in inputs)
            result_dtype = None
        else:  # WIDEN
            result_dtype = inputs[0]._data.dtype
            if result_dtype not in _LOW:
                return plain(prim, *inputs, **params)
            inputs = tuple(_float32(t) for t in inputs)
        # paused inside: forward-mode AD runs the primitive again, and its JVP rule, on
        # inputs already cast
        _state.dtype = None
        try:
            out = plain(prim, *inputs, **params)
        finally:
            _state.dtype = low
        if result_dtype is None or not _dtype.is_floating(out._data.dtype) \
                or out._data.dtype == _FLOAT64:
            return out  # nothing was rounded (float64, integers)
        return _cast(out, result_dtype)

    return autocast_call


def _autocast_function(function: Callable, policy: str) -> Callable:
    """``function`` with its tensor arguments cast by ``policy`` at the boundary and run
    with autocast paused inside."""

    @functools.wraps(function)
    def autocast_function(*args: Any, **kwargs: Any) -> Any:
        low = _state.dtype
        if low is None:
            return function(*args, **kwargs)
        if policy is LOWER:
            convert: Callable = functools.partial(_rounded, low=low)
            result_dtype = low
        else:
            convert = _float32
            # FLOAT32: the result stays float32; WIDEN: it goes back to the input's dtype
            source = _first_floating(args, kwargs)
            result_dtype = source if policy is WIDEN and source in _LOW else None
        args = tuple(convert(a) if isinstance(a, Tensor) else a for a in args)
        kwargs = {k: convert(v) if isinstance(v, Tensor) else v for k, v in kwargs.items()}
        _state.dtype = None
        try:
            out = function(*args, **kwargs)
        finally:
            _state.dtype = low
        if result_dtype is None or not isinstance(out, Tensor):
            return out
        return _cast(out, result_dtype)

    return autocast_function


def _first_floating(args: tuple, kwargs: dict) -> np.dtype | None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, Tensor) and _dtype.is_floating(value._data.dtype):
            return value._data.dtype
    return None


# ------------------------------------------------------------------ casts
def _cast(t: Tensor, dtype: np.dtype) -> Tensor:
    """``t`` as ``dtype``, recorded: the cast's backward casts the gradient back."""
    if t._data.dtype == dtype:
        return t
    return _state.plain_call(unary.cast, t, dtype=dtype, src=t._data.dtype)


def _float32(t: Tensor) -> Tensor:
    """A 16-bit float tensor as float32 (exact); anything else as it is."""
    return _cast(t, _FLOAT32) if t._data.dtype in _LOW else t


def _rounded(t: Tensor, low: np.dtype) -> Tensor:
    """A float32 tensor of ``t``'s values rounded to ``low``; float64 and non-floating
    tensors as they are. Leaves that require grad (parameters) are rounded once per
    region while cache_enabled, as PyTorch's autocast caches their casts."""
    dtype = t._data.dtype
    if dtype == _FLOAT64 or not _dtype.is_floating(dtype):
        return t
    if dtype == low:
        return _cast(t, _FLOAT32)
    cacheable = _state.cache_enabled and t._rg and t.grad_fn is None and _grad.enabled
    if cacheable:
        key = (id(t), low)
        entry = _state.cache.get(key)
        # the tensor itself (an id can be reused) at the version it was rounded at
        if entry is not None and entry[0] is t and entry[1] == t._version[0]:
            return entry[2]
    rounded = _cast(_cast(t, low), _FLOAT32)
    if cacheable:
        _state.cache[key] = (t, t._version[0], rounded)
    return rounded
