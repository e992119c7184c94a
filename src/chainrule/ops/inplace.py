"""In-place ops: ``add_``, ``mul_``, ``__setitem__`` and friends, with PyTorch's rules.

Without a graph to record, the array is updated in place (``out=``, no copy). When a
gradient must flow, the result is computed out of place from a snapshot of the old
value, written into the tensor's storage, and the tensor takes the new node as its
history. Either way the version counter goes up, so a rule that saved the old value
raises at backward instead of using changed data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..autograd import grad_mode
from ..tensor import Tensor, _wrap
from . import indexing, math, shape, unary

_state = grad_mode.state


def _tracked(target: Tensor, *others: Any) -> bool:
    if not _state.enabled:
        return False
    if target._rg:
        return True
    return any(isinstance(o, Tensor) and o._rg for o in others)


def _check_target(target: Tensor, op: str) -> None:
    if target._rg and target.grad_fn is None:
        raise RuntimeError(
            f"{op}: a leaf Variable that requires grad is being used in an in-place operation "
            f"(shape {tuple(target.shape)}). Wrap the update in `with chainrule.no_grad():` "
            f"or operate on .data"
        )
    base = target._base
    if base is not None and base._rg:
        raise RuntimeError(
            f"{op}: in-place change of a view of a tensor that requires grad (view of shape "
            f"{tuple(target.shape)}, base of shape {tuple(base.shape)}) is not supported by "
            f"chainrule; clone() the view or use the out-of-place op"
        )


def _rebase(target: Tensor, compute: Callable[[Tensor], Tensor], op: str) -> Tensor:
    """Record ``target = compute(old target)`` in the graph and write the values in place."""
    _check_target(target, op)
    old = _wrap(target._data.copy(), target.grad_fn)
    old._rg = target._rg
    new = compute(old)
    _store(target, new._data, op)
    target.grad_fn = new.grad_fn
    target._rg = new._rg
    return target


def _store(target: Tensor, values: Any, op: str) -> None:
    if values.shape != target._data.shape and np.broadcast_shapes(
            values.shape, target._data.shape) != target._data.shape:
        raise RuntimeError(
            f"{op}: output with shape {list(target.shape)} doesn't match the broadcast shape "
            f"{list(np.broadcast_shapes(values.shape, target._data.shape))}"
        )
    if not np.can_cast(values.dtype, target._data.dtype, "same_kind"):
        raise RuntimeError(
            f"{op}: result type {values.dtype} can't be cast to the desired output type "
            f"{target._data.dtype}"
        )
    np.copyto(target._data, values, casting="same_kind")
    target._version[0] += 1


def _ufunc_inplace(target: Tensor, ufunc: Any, other: Any, op: str) -> Tensor:
    other_data = other._data if isinstance(other, Tensor) else other
    try:
        ufunc(target._data, other_data, out=target._data, casting="same_kind")
    except (ValueError, TypeError) as error:
        raise RuntimeError(
            f"{op}: cannot update a {target.dtype} tensor of shape {tuple(target.shape)} in "
            f"place with {getattr(other, 'dtype', type(other).__name__)} operand of shape "
            f"{tuple(np.shape(other_data))}: {error}"
        ) from None
    target._version[0] += 1
    return target


def add_(self: Tensor, other: Any, *, alpha: Any = 1) -> Tensor:
    """In-place ``self += alpha * other``."""
    if _tracked(self, other):
        return _rebase(self, lambda old: math.add(old, other, alpha=alpha), "add_")
    if alpha != 1:
        other = (other._data if isinstance(other, Tensor) else other) * alpha
    return _ufunc_inplace(self, np.add, other, "add_")


def sub_(self: Tensor, other: Any, *, alpha: Any = 1) -> Tensor:
    """In-place ``self -= alpha * other``."""
    if _tracked(self, other):
        return _rebase(self, lambda old: math.sub(old, other, alpha=alpha), "sub_")
    if alpha != 1:
        other = (other._data if isinstance(other, Tensor) else other) * alpha
    return _ufunc_inplace(self, np.subtract, other, "sub_")


def mul_(self: Tensor, other: Any) -> Tensor:
    """In-place ``self *= other``."""
    if _tracked(self, other):
        return _rebase(self, lambda old: math.mul(old, other), "mul_")
    return _ufunc_inplace(self, np.multiply, other, "mul_")


def div_(self: Tensor, other: Any, *, rounding_mode: str | None = None) -> Tensor:
    """In-place ``self /= other``."""
    if _tracked(self, other) or rounding_mode is not None:
        return _rebase(self, lambda old: math.div(old, other, rounding_mode=rounding_mode),
                       "div_")
    return _ufunc_inplace(self, np.true_divide, other, "div_")


def pow_(self: Tensor, exponent: Any) -> Tensor:
    if _tracked(self, exponent):
        return _rebase(self, lambda old: math.pow(old, exponent), "pow_")
    return _ufunc_inplace(self, np.power, exponent, "pow_")


def clamp_(self: Tensor, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002
    """In-place clamp to [min, max]."""
    if _tracked(self, min, max):
        return _rebase(self, lambda old: math.clamp(old, min, max), "clamp_")
    lo = min._data if isinstance(min, Tensor) else min
    hi = max._data if isinstance(max, Tensor) else max
    np.clip(self._data, lo, hi, out=self._data)
    self._version[0] += 1
    return self


clip_ = clamp_


def copy_(self: Tensor, src: Any, non_blocking: bool = False) -> Tensor:
    """Copy ``src``'s values (broadcast, cast) into this tensor's storage."""
    src_t = src if isinstance(src, Tensor) else _wrap(np.asarray(src))
    if _tracked(self, src_t):
        def compute(old: Tensor) -> Tensor:
            moved = unary.clone(src_t.to(self.dtype)) if src_t._rg else src_t.to(self.dtype)
            return shape.expand(moved, self._data.shape) if moved.shape != self.shape else moved
        return _rebase(self, compute, "copy_")
    try:
        np.copyto(self._data, src_t._data, casting="unsafe")
    except ValueError:
        raise RuntimeError(
            f"copy_: source of shape {tuple(src_t.shape)} cannot be broadcast to the "
            f"destination's shape {tuple(self.shape)}"
        ) from None
    self._version[0] += 1
    return self


def fill_(self: Tensor, value: Any) -> Tensor:
    """Set every element to ``value``."""
    if _tracked(self, value):
        return _rebase(self, lambda old: math.add(math.mul(old, 0), value), "fill_")
    self._data.fill(value._data if isinstance(value, Tensor) else value)
    self._version[0] += 1
    return self


def zero_(self: Tensor) -> Tensor:
    """Set every element to 0."""
    return fill_(self, 0)


def setitem(self: Tensor, index: Any, value: Any) -> None:
    """``self[index] = value``; differentiable with respect to both when a graph is recorded."""
    if _tracked(self, value):
        def compute(old: Tensor) -> Tensor:
            return _index_put(old, index, value)
        _rebase(self, compute, "__setitem__")
        return
    array_index = shape._index_arg(index)
    self._data[array_index] = value._data if isinstance(value, Tensor) else value
    self._version[0] += 1


def _index_put(old: Tensor, index: Any, value: Any) -> Tensor:
    """``old`` with ``value`` written at ``index``, as a differentiable expression."""
    array_index = shape._index_arg(index)
    mask = np.zeros(old._data.shape, dtype=bool)
    mask[array_index] = True
    target_shape = old._data[array_index].shape
    value_t = value if isinstance(value, Tensor) else _wrap(np.asarray(value, old._data.dtype))
    value_t = shape.expand(value_t.to(old.dtype), target_shape)
    placed = indexing.index_add(value_t, shape=old._data.shape, index=array_index)
    return math.where(_wrap(mask), placed, old)
