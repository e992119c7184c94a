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
from . import indexing, kernels, math, shape, unary

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


def _rebase(target: Tensor, compute: Callable[[Tensor], Tensor], op: str) -> Tensor:
    """Record ``target = compute(old target)`` in the graph and write the values in place."""
    _check_target(target, op)
    base = target._base
    if base is not None:
        position = _position_in(base._data, target._data, op)
        if position is not None:
            return _rebase_view(target, base, position, compute, op)
    old = _wrap(target._data.copy(), target.grad_fn)
    old._rg = target._rg
    new = compute(old)
    _store(target, new._data, op)
    target.grad_fn = new.grad_fn
    target._rg = new._rg
    return target


def _rebase_view(target: Tensor, base: Tensor, position: tuple,
                 compute: Callable[[Tensor], Tensor], op: str) -> Tensor:
    """An in-place change of a view changes its base, as PyTorch's CopySlices: the base
    becomes ``old base with compute(old view) written at the view's position``, and the
    view becomes that position read back from the new base."""
    if base._rg and base.grad_fn is None:
        raise RuntimeError(
            f"{op}: a view of a leaf Variable that requires grad is being used in an in-place "
            f"operation (view of shape {tuple(target.shape)}, leaf of shape "
            f"{tuple(base.shape)}). Wrap the update in `with chainrule.no_grad():`"
        )
    old_view = _wrap(target._data.copy(), target.grad_fn)
    old_view._rg = target._rg
    old_base = _wrap(base._data.copy(), base.grad_fn)
    old_base._rg = base._rg
    new_view = compute(old_view)
    new_base = _index_put(old_base, position, new_view)
    _store(target, new_view._data, op)
    base.grad_fn = new_base.grad_fn
    base._rg = new_base._rg
    reread = indexing.getitem_copy(new_base, index=position, shape=base._data.shape)
    target.grad_fn = reread.grad_fn
    target._rg = reread._rg
    return target


def _position_in(base: Any, view: Any, op: str) -> tuple | None:
    """Where ``view``'s elements lie in ``base`` (an index tuple of integer arrays), found
    from their memory addresses; None when ``view`` does not share ``base``'s memory."""
    def addresses(a: Any) -> Any:
        start = a.__array_interface__["data"][0]
        grid = np.ix_(*(np.arange(n) for n in a.shape)) if a.ndim else ()
        return start + sum((g * s for g, s in zip(grid, a.strides)), np.zeros(a.shape, np.intp))

    base_addresses = addresses(base).reshape(-1)
    order = np.argsort(base_addresses, kind="stable")
    ranked = base_addresses[order]
    wanted = addresses(view)
    found = np.minimum(np.searchsorted(ranked, wanted), ranked.size - 1)
    if ranked.size == 0 or not np.array_equal(ranked[found], wanted):
        return None
    flat = order[found]
    if np.unique(flat).size != flat.size:
        raise RuntimeError(
            f"{op}: unsupported operation: more than one element of the written-to tensor "
            f"(shape {tuple(view.shape)}) refers to a single memory location. Please clone() "
            f"the tensor before performing the operation."
        )
    return np.unravel_index(flat, base.shape)


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
    """``old`` with ``value`` written at ``index``, as a differentiable expression.

    As PyTorch's index_put: where an advanced index repeats a position the last write
    wins, and the value's gradient is the output gradient read at every indexed position
    (so a repeated position sends its gradient to each value written there).
    """
    array_index = shape._index_arg(index)
    mask = np.zeros(old._data.shape, dtype=bool)
    mask[array_index] = True
    target_shape = old._data[array_index].shape
    value_t = value if isinstance(value, Tensor) else _wrap(np.asarray(value, old._data.dtype))
    value_t = shape.expand(value_t.to(old.dtype), target_shape)
    placed = indexing.index_add(value_t, shape=old._data.shape, index=array_index)
    if not kernels.is_basic(array_index):
        written = np.zeros(old._data.shape, dtype=old._data.dtype)
        written[array_index] = value_t._data
        if not np.array_equal(written, placed._data, equal_nan=True):
            # repeated positions summed their values: put the last-write values in the
            # forward while the gradient still flows through the summing index_add
            placed = math.add(placed, _wrap(written - placed._data))
    return math.where(_wrap(mask), placed, old)
