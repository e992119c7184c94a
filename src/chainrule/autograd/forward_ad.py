"""Forward-mode automatic differentiation: tangents carried alongside the forward pass.

Inside ``dual_level()``, ``make_dual(x, v)`` gives a tensor whose tangent is ``v``; every
primitive applied to it computes its output's tangent with its JVP rule (written next to
its VJP rule in chainrule/ops), so ``unpack_dual(f(make_dual(x, v))).tangent`` is the
Jacobian-vector product J_f(x) v, in one forward pass.

>>> import chainrule.autograd.forward_ad as fwAD
>>> with fwAD.dual_level():
...     y = fwAD.make_dual(x, v).sin()
...     jvp = fwAD.unpack_dual(y).tangent      # cos(x) * v
"""

from __future__ import annotations

import threading
import weakref
from collections import namedtuple
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .. import _backend
from ..tensor import Tensor

UnpackedDualTensor = namedtuple("UnpackedDualTensor", ["primal", "tangent"])


class _ForwardState(threading.local):
    def __init__(self) -> None:
        self.active = 0  # open dual levels in this thread; the hot path only reads this
        self.duals: list = []  # weak references to tensors carrying a tangent, per level


state = _ForwardState()


@contextmanager
def dual_level() -> Iterator[int]:
    """Open a forward-AD level; tangents made inside are dropped when it closes."""
    level = enter_dual_level()
    try:
        yield level
    finally:
        exit_dual_level(level=level)


def enter_dual_level() -> int:
    state.active += 1
    state.duals.append([])
    return state.active - 1


def exit_dual_level(*, level: int | None = None) -> None:
    """Close the innermost level, dropping the tangents made in it."""
    for ref in state.duals.pop():
        tensor = ref()
        if tensor is not None and tensor._extra is not None:
            tensor._extra.fw_grad = None
    state.active -= 1


def tangent_of(tensor: Tensor) -> Tensor | None:
    extra = tensor._extra
    return None if extra is None else extra.fw_grad


def set_tangent(tensor: Tensor, tangent: Tensor) -> None:
    tensor._extra_state().fw_grad = tangent
    if state.duals:
        state.duals[-1].append(weakref.ref(tensor))


def make_dual(tensor: Tensor, tangent: Tensor, *, level: int | None = None) -> Tensor:
    """A view of ``tensor`` that carries ``tangent`` (same shape) through forward mode."""
    if not state.active:
        raise RuntimeError(
            "make_dual: no forward AD level is open; use `with forward_ad.dual_level():`"
        )
    if not isinstance(tangent, Tensor):
        raise TypeError(f"make_dual: the tangent must be a Tensor, got {type(tangent).__name__}")
    if tangent.shape != tensor.shape:
        raise RuntimeError(
            f"make_dual: the tangent has shape {tuple(tangent.shape)} but the primal has shape "
            f"{tuple(tensor.shape)}; they must match"
        )
    if _backend.np_dtype(tensor._data).kind != "f" or _backend.np_dtype(tangent._data).kind != "f":
        raise RuntimeError(
            f"make_dual: expected floating-point primal and tangent, got {tensor.dtype} and "
            f"{tangent.dtype}"
        )
    dual = graph_alias(tensor)
    set_tangent(dual, tangent)
    return dual


def unpack_dual(tensor: Tensor, *, level: int | None = None) -> UnpackedDualTensor:
    """``(primal, tangent)`` of a dual tensor; ``tangent`` is None for an ordinary tensor."""
    tangent = tangent_of(tensor)
    if tangent is None:
        return UnpackedDualTensor(tensor, None)
    return UnpackedDualTensor(graph_alias(tensor), tangent)


_graph_alias: Any = None


def set_graph_alias(alias: Any) -> None:
    """Register the op that views a tensor as a new graph node (the ops layer owns it)."""
    global _graph_alias
    _graph_alias = alias


def graph_alias(tensor: Tensor) -> Tensor:
    """The same storage and the same place in the backward graph, without a tangent."""
    if not tensor._rg:
        return tensor.detach()
    previous, state.active = state.active, 0
    try:
        return _graph_alias(tensor)
    finally:
        state.active = previous


__all__ = ["dual_level", "enter_dual_level", "exit_dual_level", "make_dual", "unpack_dual",
           "UnpackedDualTensor"]
