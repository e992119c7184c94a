"""Anomaly mode, as PyTorch's ``torch.autograd.detect_anomaly``: the first NaN or Inf that
an op produces raises an error naming the op, its inputs' shapes and dtypes, and the
line of the user's code that created the op.

- In the forward pass every op's output is checked; a NaN or Inf that was not already in
  its inputs raises at once (the inputs are only looked at when the output is bad).
- In the backward pass every rule's gradients are checked; the error points at the line
  that created the op in the forward pass (recorded while anomaly mode is on).
- ``check_forward=False`` is the lighter mode: the forward pass runs untouched (no checks,
  no tracebacks) and only the backward pass is checked.

Off, it costs nothing: it swaps in a checking ``Primitive.__call__`` and sets the engine's
``anomaly_hook`` only while on, as ``diagnostics.memory`` does.

>>> with chainrule.autograd.detect_anomaly():
...     loss = model(x).log().sum()      # AnomalyError: log produced -inf ... at train.py:12
...     loss.backward()
>>> chainrule.autograd.set_detect_anomaly(True)          # globally, until set back
"""

from __future__ import annotations

import functools
import os
import traceback
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from ..tensor import Tensor
from . import engine
from .graph import Node

__all__ = ["AnomalyError", "detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled",
           "is_anomaly_check_nan_enabled"]

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class AnomalyError(RuntimeError):
    """A NaN or Inf found by anomaly mode. ``op``: the op's name; ``phase``: "forward" or
    "backward"; ``shapes``: its inputs' shapes; ``location``: ``(file, line, function)`` of
    the user's code that created the op; ``forward_traceback``: the whole forward stack."""

    def __init__(self, message: str, op: str, phase: str, shapes: tuple,
                 stack: traceback.StackSummary | None) -> None:
        super().__init__(message)
        self.op = op
        self.phase = phase
        self.shapes = shapes
        self.forward_traceback = stack
        frame = _user_frame(stack) if stack is not None else None
        self.location = None if frame is None else (frame.filename, frame.lineno, frame.name)


class _State:
    __slots__ = ("enabled", "check_nan", "check_forward", "plain_call", "plain_apply")

    def __init__(self) -> None:
        self.enabled = False
        self.check_nan = True
        self.check_forward = True
        self.plain_call: Callable | None = None
        self.plain_apply: Any = None


_state = _State()
# node -> the forward stack that created it (kept only while anomaly mode is on)
_created_at: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def is_anomaly_enabled() -> bool:
    """Whether anomaly mode is on.

    >>> chainrule.autograd.is_anomaly_enabled()
    False
    """
    return _state.enabled


def is_anomaly_check_nan_enabled() -> bool:
    """Whether anomaly mode, when on, checks for NaN and Inf (``check_nan``)."""
    return _state.check_nan


class set_detect_anomaly:  # noqa: N801 - PyTorch's name
    """Turn anomaly mode on or off from here on (see ``detect_anomaly``); used as a context
    manager, the previous setting comes back on exit, as in PyTorch.

    >>> chainrule.autograd.set_detect_anomaly(True)
    >>> with chainrule.autograd.set_detect_anomaly(False):
    ...     fast_part()
    >>> chainrule.autograd.set_detect_anomaly(True, check_forward=False)  # backward only
    """

    def __init__(self, mode: bool, check_nan: bool = True, check_forward: bool = True) -> None:
        self._previous = (_state.enabled, _state.check_nan, _state.check_forward)
        _configure(bool(mode), bool(check_nan), bool(check_forward))

    def __enter__(self) -> set_detect_anomaly:
        return self

    def __exit__(self, *exc: Any) -> None:
        _configure(*self._previous)


class detect_anomaly:  # noqa: N801 - PyTorch's name
    """Context manager and decorator that turns anomaly mode on inside it.

    ``check_nan``: raise at the first NaN or Inf (else only record where ops were made);
    ``check_forward=False``: check only the backward pass, leaving the forward untouched.

    >>> with chainrule.autograd.detect_anomaly():
    ...     y = x.sqrt(); y.sum().backward()   # AnomalyError at the line of x.sqrt() if x has 0
    >>> @chainrule.autograd.detect_anomaly()
    ... def step(): ...
    """

    def __init__(self, check_nan: bool = True, check_forward: bool = True) -> None:
        self.check_nan = check_nan
        self.check_forward = check_forward
        self._previous: list = []

    def __enter__(self) -> detect_anomaly:
        self._previous.append((_state.enabled, _state.check_nan, _state.check_forward))
        _configure(True, self.check_nan, self.check_forward)
        return self

    def __exit__(self, *exc: Any) -> None:
        _configure(*self._previous.pop())

    def __call__(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with detect_anomaly(self.check_nan, self.check_forward):
                return fn(*args, **kwargs)
        return wrapper


# ------------------------------------------------------------------ switching
def _configure(enabled: bool, check_nan: bool, check_forward: bool) -> None:
    from ..ops import _primitive  # ops sit above autograd: import on use
    from .function import Function

    _state.check_nan = check_nan
    _state.check_forward = check_forward
    forward = enabled and check_forward
    if forward and _state.plain_call is None:
        _state.plain_call = _primitive.Primitive.__call__
        _state.plain_apply = Function.__dict__["apply"]
        _primitive.Primitive.__call__ = _checked_call
        Function.apply = classmethod(_recorded_apply)
    elif not forward and _state.plain_call is not None:
        _primitive.Primitive.__call__ = _state.plain_call
        Function.apply = _state.plain_apply
        _state.plain_call = _state.plain_apply = None
    if not enabled:
        _created_at.clear()
    engine.anomaly_hook = _check_backward if enabled and check_nan else None
    _state.enabled = enabled


def _checked_call(prim: Any, *inputs: Tensor, **params: Any) -> Tensor:
    result = _state.plain_call(prim, *inputs, **params)
    if result.grad_fn is not None:
        _created_at[result.grad_fn] = _stack()
    if _state.check_nan:
        data = result._data
        if data.dtype.kind in "fc" and not np.isfinite(data).all():
            _forward_anomaly(prim.name, inputs, data)
    return result


def _recorded_apply(cls: type, *args: Any, **kwargs: Any) -> Any:
    result = _state.plain_apply.__func__(cls, *args, **kwargs)
    stack = None
    for out in result if isinstance(result, tuple) else (result,):
        if isinstance(out, Tensor) and out.grad_fn is not None:
            stack = stack or _stack()
            node = out.grad_fn
            _created_at[node] = stack
            if node.edges and type(node.edges[0]) is Node:  # a multi-output Function's router
                _created_at.setdefault(node.edges[0], stack)
    return result


def _stack() -> traceback.StackSummary:
    # source lines are read only if an error is shown
    return traceback.StackSummary.extract(traceback.walk_stack(None), lookup_lines=False)


def _user_frame(stack: traceback.StackSummary) -> traceback.FrameSummary | None:
    """The innermost frame outside chainrule: where the user's code asked for the op."""
    for frame in stack:  # walk_stack order: innermost first
        if not os.path.abspath(frame.filename).startswith(_PACKAGE + os.sep):
            return frame
    return None


def _where(stack: traceback.StackSummary | None) -> str:
    if stack is None:
        return ("(the line that created it is recorded only while anomaly mode checks the "
                "forward pass: run under detect_anomaly() to see it)")
    frame = _user_frame(stack)
    if frame is None:
        return "(inside chainrule)"
    line = (frame.line or "").strip()
    return f"created at {frame.filename}:{frame.lineno} in {frame.name}" + (
        f": {line}" if line else "")


def _describe(arrays: list) -> str:
    return ", ".join(f"{a.dtype}{list(a.shape)}" for a in arrays) or "none"


def _bad(array: Any) -> str:
    """Which non-finite values ``array`` holds, in words (``nan``, ``inf``, ``-inf``)."""
    kinds = []
    if np.isnan(array).any():
        kinds.append("nan")
    if np.isposinf(array).any():
        kinds.append("inf")
    if np.isneginf(array).any():
        kinds.append("-inf")
    return "/".join(kinds)


def _forward_anomaly(op: str, inputs: tuple, out: Any) -> None:
    arrays = [t._data for t in inputs]
    floats = [a for a in arrays if a.dtype.kind in "fc"]
    has_nan = any(np.isnan(a).any() for a in floats)
    has_inf = any(np.isinf(a).any() for a in floats)
    bad = _bad(out)
    # produced here: a NaN from finite or infinite inputs, an Inf only from finite ones
    if ("nan" in bad and not has_nan) or (not has_nan and not has_inf):
        stack = _stack()
        shapes = tuple(tuple(a.shape) for a in arrays)
        raise AnomalyError(
            f"Anomaly detected: {op} produced {bad} values in its output "
            f"{out.dtype}{list(out.shape)} from inputs {_describe(arrays)}; {_where(stack)}. "
            f"Check the values reaching this op (e.g. clamp before log/sqrt, add an epsilon "
            f"to denominators).", op, "forward", shapes, stack)


def _check_backward(node: Node, grads: tuple, upstream: Any) -> None:
    """The engine's ``anomaly_hook``: called with each node and the gradients its rule
    returned; raises at the first non-finite one (PyTorch's message first)."""
    for i, g in enumerate(grads):
        if g is None or not hasattr(g, "shape"):
            continue
        array = g._data if isinstance(g, Tensor) else g
        if array.dtype.kind not in "fc" or np.isfinite(array).all():
            continue
        op = node.name()
        shapes = node.shapes or tuple(tuple(np.shape(x)) for x in grads if x is not None)
        incoming = upstream._data if isinstance(upstream, Tensor) else upstream
        came_in = ("" if incoming is None or not hasattr(incoming, "dtype")
                   or np.isfinite(incoming).all() else
                   " (the gradient flowing into it was already non-finite)")
        kind = "nan" if np.isnan(array).any() else "inf"
        raise AnomalyError(
            f"Function '{op}' returned {kind} values in its {i}th output: gradient "
            f"{array.dtype}{list(array.shape)} for input {i} from upstream gradient "
            f"{_describe([np.asarray(incoming)])}{came_in}; {_where(_created_at.get(node))}. "
            f"Look at the inputs of this op in the forward pass (a derivative that is infinite "
            f"there: sqrt or log at 0, division by 0).", op, "backward", shapes,
            _created_at.get(node))
