"""Grad mode: whether operations record a graph. Per thread, as in PyTorch."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any


class _GradState(threading.local):
    def __init__(self) -> None:
        self.enabled = True
        self.recomputing = 0  # > 0 while activation checkpointing re-runs a forward


state = _GradState()


def is_recomputing() -> bool:
    """True while activation checkpointing re-runs a function for backward: layers with
    running statistics (BatchNorm) must not update them a second time."""
    return state.recomputing > 0


def is_grad_enabled() -> bool:
    """True when operations on tensors that require grad record a graph (this thread)."""
    return state.enabled


class _GradModeContext:
    """Base of no_grad / enable_grad / set_grad_enabled: a context manager and a decorator."""

    _target: bool

    def __enter__(self) -> None:
        self._previous = state.enabled
        state.enabled = self._target

    def __exit__(self, *exc: Any) -> None:
        state.enabled = self._previous

    def __call__(self, fn: Callable) -> Callable:
        target = self._target

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            previous = state.enabled
            state.enabled = target
            try:
                return fn(*args, **kwargs)
            finally:
                state.enabled = previous

        return wrapper


class no_grad(_GradModeContext):  # noqa: N801 - PyTorch's name
    """Disable graph recording.

    >>> with chainrule.no_grad():
    ...     y = x * 2          # y.requires_grad is False
    """

    _target = False


class enable_grad(_GradModeContext):  # noqa: N801
    """Enable graph recording inside a ``no_grad`` region."""

    _target = True


class set_grad_enabled(_GradModeContext):  # noqa: N801
    """Set grad mode: as a function call, a context manager or a decorator.

    >>> chainrule.set_grad_enabled(False)   # off from here on, in this thread
    >>> with chainrule.set_grad_enabled(True): ...
    """

    def __init__(self, mode: bool) -> None:
        self._target = bool(mode)
        self._previous = state.enabled
        state.enabled = self._target

    def __enter__(self) -> None:
        state.enabled = self._target
