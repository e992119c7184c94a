"""In-place ops: ``add_``, ``mul_``, ``__setitem__`` and friends, with PyTorch's rules.

Without a graph to record, the array is updated in place (``out=``, no copy). When a
gradient must flow, the result is computed out of place from a snapshot of the old
value, written into the tensor's storage, and the tensor takes the new node as its
history. A view's base takes a node too (PyTorch's CopySlices): the old base with the
view's new values written at the view's place. Either way the version counter goes up,
so a rule that saved the old value raises at backward instead of using changed data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _backend, _dtype
from ..autograd import grad_mode
from ..tensor import Tensor, _wrap
from . import _primitive, indexing, kernels, math, shape
from ._convert import normalize_axis

_state = grad_mode.state


def _tracked(target: Tensor, *others: Any) -> bool:
    if not _state.enabled:
        return False
    # a view whose base gained a history in place since it was made requires grad now
    if target._base is not None:
        _primitive.refresh_view(target)
    if target._rg:
        return True
    for o in others:
        if isinstance(o, Tensor):
            if o._base is not None:
                _primitive.refresh_view(o)
            if o._rg:
                return True
    return False


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
    _check_writable(target, op)
    base = target._base
    if base is not None:
        # the view's history must be its base's as it is now (another view of the base may
        # have changed it in place since): apply does this for an op's inputs
        _primitive.refresh_view(target)
        position = _position_in(base._data, target._data, op)
        if position is not None:
            return _rebase_view(target, base, position, compute, op)
    old = _wrap(_backend.copy(target._data), target.grad_fn)
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
    old_view = _wrap(_backend.copy(target._data), target.grad_fn)
    old_view._rg = target._rg
    old_base = _wrap(_backend.copy(base._data), base.grad_fn)
    old_base._rg = base._rg
    new_view = compute(old_view)
    new_base = _index_put(old_base, position, new_view)
    _store(target, new_view._data, op)
    base.grad_fn = new_base.grad_fn
    base._rg = new_base._rg
    # read back through a view node, so that the view's history leads to the base's vertex
    reread = indexing.getitem(new_base, index=position, shape=base._data.shape)
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

    wanted = addresses(view)
    if base.flags.c_contiguous:
        # the usual case (a base made by an op): an address maps straight to a flat index
        offset = wanted - base.__array_interface__["data"][0]
        flat, rest = np.divmod(offset, base.itemsize)
        if rest.any() or (flat.size and (flat.min() < 0 or flat.max() >= base.size)):
            return None
    else:
        base_addresses = addresses(base).reshape(-1)
        order = np.argsort(base_addresses, kind="stable")
        ranked = base_addresses[order]
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
    if base.ndim == 0:
        # one element: a view of it is that element in size-1 dims (None per dim), or empty
        return (None,) * flat.ndim if flat.size else None
    return np.unravel_index(flat, base.shape)


def _check_writable(target: Tensor, op: str) -> None:
    """An expanded tensor (or a view of one) holds an element at several positions; NumPy
    keeps it read-only, and writing into it is refused here with PyTorch's advice."""
    if not kernels.is_writeable(target._data):
        raise RuntimeError(
            f"{op}: unsupported operation: more than one element of the written-to tensor "
            f"(shape {tuple(target.shape)}, an expanded tensor or a view of one) refers to a "
            f"single memory location. Please clone() the tensor before performing the operation."
        )


def _store(target: Tensor, values: Any, op: str) -> None:
    _check_writable(target, op)
    if values.shape != target._data.shape and np.broadcast_shapes(
            values.shape, target._data.shape) != target._data.shape:
        raise RuntimeError(
            f"{op}: output with shape {list(target.shape)} doesn't match the broadcast shape "
            f"{list(np.broadcast_shapes(values.shape, target._data.shape))}"
        )
    _check_cast(_backend.np_dtype(values), target, op)
    _write(target, values)
    target._version[0] += 1


def _write(target: Tensor, values: Any) -> None:
    """``values`` broadcast and cast into ``target``'s storage."""
    data = target._data
    if type(data) is np.ndarray and type(values) is np.ndarray:
        np.copyto(data, values, casting="unsafe")
        return
    xp = _backend.namespace_of(data)
    data[...] = _backend.astype(xp.broadcast_to(values, data.shape), _backend.np_dtype(data))


def _check_cast(result: np.dtype, target: Tensor, op: str) -> None:
    # PyTorch's rule: the result may not be of a higher category (bool < integer < floating
    # point) than the tensor written to; within a category it wraps (int16 into uint8).
    if not _dtype.can_cast(result, target._data.dtype):
        raise RuntimeError(
            f"{op}: result type {result} can't be cast to the desired output type "
            f"{target._data.dtype} (tensor of shape {tuple(target.shape)})"
        )


# NumPy's ufunc names that the Array API spells otherwise
_ARRAY_API_NAMES = {"power": "pow", "true_divide": "divide"}


def _ufunc_inplace(target: Tensor, ufunc: Any, other: Any, op: str) -> Tensor:
    other_data = other._data if isinstance(other, Tensor) else other
    if type(target._data) is not np.ndarray:  # another backend: compute, then write back
        xp = _backend.namespace_of(target._data)
        result = getattr(xp, _ARRAY_API_NAMES.get(ufunc.__name__, ufunc.__name__))(
            target._data, other_data)
        _store(target, result, op)
        return target
    result = np.result_type(target._data, other_data)
    if ufunc is np.true_divide and result.kind in "biu":
        result = np.dtype(np.float64)
    _check_cast(result, target, op)
    _check_writable(target, op)
    try:
        ufunc(target._data, other_data, out=target._data, casting="unsafe")
    except (ValueError, TypeError) as error:
        raise RuntimeError(
            f"{op}: cannot update a {target.dtype} tensor of shape {tuple(target.shape)} in "
            f"place with {getattr(other, 'dtype', type(other).__name__)} operand of shape "
            f"{tuple(np.shape(other_data))}: {error}"
        ) from None
    target._version[0] += 1
    return target


def _axpy(target: Tensor, alpha: Any, other: Tensor, op: str) -> bool:
    """``target += alpha * other`` in one BLAS pass when both are alike (an optimizer's
    update through add_/sub_ with alpha); False when NumPy's path must do it."""
    if not isinstance(alpha, (int, float)):
        return False
    _check_writable(target, op)
    if not kernels.axpy(target._data, alpha, other._data):
        return False
    target._version[0] += 1
    return True


def add_(self: Tensor, other: Any, *, alpha: Any = 1) -> Tensor:
    """In-place ``self += alpha * other``."""
    if _tracked(self, other):
        return _rebase(self, lambda old: math.add(old, other, alpha=alpha), "add_")
    if alpha != 1:
        if isinstance(other, Tensor) and _axpy(self, alpha, other, "add_"):
            return self
        other = (other._data if isinstance(other, Tensor) else other) * alpha
    return _ufunc_inplace(self, np.add, other, "add_")


def sub_(self: Tensor, other: Any, *, alpha: Any = 1) -> Tensor:
    """In-place ``self -= alpha * other``."""
    if _tracked(self, other):
        return _rebase(self, lambda old: math.sub(old, other, alpha=alpha), "sub_")
    if alpha != 1:
        if isinstance(other, Tensor) and _axpy(self, -alpha, other, "sub_"):
            return self
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
    _check_writable(self, "clamp_")
    np.clip(self._data, lo, hi, out=self._data)
    self._version[0] += 1
    return self


clip_ = clamp_


def copy_(self: Tensor, src: Any, non_blocking: bool = False) -> Tensor:
    """Copy ``src``'s values (broadcast, cast) into this tensor's storage."""
    src_t = src if isinstance(src, Tensor) else _wrap(np.asarray(src))
    if _tracked(self, src_t):
        # overwrite keeps the history of the old value (with a zero gradient): the result
        # requires grad when either self or src does, as in PyTorch
        return _rebase(self, lambda old: overwrite(old, src_t), "copy_")
    _check_writable(self, "copy_")
    try:
        if type(self._data) is np.ndarray and type(src_t._data) is np.ndarray:
            np.copyto(self._data, src_t._data, casting="unsafe")
        else:  # another backend, or across devices (the source is moved first, as PyTorch)
            values = _backend.to_device(src_t._data, self.device)
            values = _backend.astype(values, _backend.np_dtype(self._data))
            self._data[...] = _backend.namespace_of(values).broadcast_to(values, self._data.shape)
    except ValueError:
        raise RuntimeError(
            f"copy_: source of shape {tuple(src_t.shape)} cannot be broadcast to the "
            f"destination's shape {tuple(self.shape)}"
        ) from None
    self._version[0] += 1
    return self


def overwrite(old: Tensor, values: Any) -> Tensor:
    """``values`` broadcast to ``old``'s shape, as a result that still depends on ``old``
    (with a zero gradient), so a non-leaf keeps its history as in PyTorch. ``where`` rather
    than ``old * 0 + values``: an inf or NaN in ``old`` must not leak into the result."""
    everywhere = _wrap(np.broadcast_to(np.True_, old._data.shape))
    if not isinstance(values, Tensor):
        values = _wrap(np.asarray(values, dtype=old._data.dtype))
    return math.where(everywhere, values.to(old.dtype), old)


def fill_(self: Tensor, value: Any) -> Tensor:
    """Set every element to ``value``."""
    if _tracked(self, value):
        return _rebase(self, lambda old: overwrite(old, value), "fill_")
    _check_writable(self, "fill_")
    self._data.fill(value._data if isinstance(value, Tensor) else value)
    self._version[0] += 1
    return self


def zero_(self: Tensor) -> Tensor:
    """Set every element to 0."""
    return fill_(self, 0)


def assign(self: Tensor, compute: Callable[[Tensor], Tensor], op: str, *others: Any) -> Tensor:
    """``self = compute(self)`` in place: recorded in the graph when ``self`` or one of
    ``others`` requires grad (and grad mode is on), else computed and written in directly.
    The result is cast to ``self``'s dtype within its kind, as PyTorch's in-place ops."""
    if _tracked(self, *others):
        return _rebase(self, compute, op)
    _store(self, compute(self)._data, op)
    return self


def _unary_inplace(fn: Callable[[Tensor], Tensor], name: str) -> Callable[[Tensor], Tensor]:
    def op(self: Tensor) -> Tensor:
        return assign(self, fn, name)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"In-place ``{name[:-1]}``: ``x.{name}()`` is ``x.copy_(x.{name[:-1]}())``."
    return op


exp_ = _unary_inplace(math.exp, "exp_")
log_ = _unary_inplace(math.log, "log_")
sqrt_ = _unary_inplace(math.sqrt, "sqrt_")
rsqrt_ = _unary_inplace(math.rsqrt, "rsqrt_")
reciprocal_ = _unary_inplace(math.reciprocal, "reciprocal_")
sin_ = _unary_inplace(math.sin, "sin_")
cos_ = _unary_inplace(math.cos, "cos_")
tanh_ = _unary_inplace(math.tanh, "tanh_")
sigmoid_ = _unary_inplace(math.sigmoid, "sigmoid_")
relu_ = _unary_inplace(math.relu, "relu_")
neg_ = _unary_inplace(math.neg, "neg_")
abs_ = _unary_inplace(math.abs, "abs_")
sign_ = _unary_inplace(math.sign, "sign_")
floor_ = _unary_inplace(math.floor, "floor_")
ceil_ = _unary_inplace(math.ceil, "ceil_")
trunc_ = _unary_inplace(math.trunc, "trunc_")
round_ = _unary_inplace(math.round, "round_")
square_ = _unary_inplace(lambda x: math.pow(x, 2), "square_")


def clamp_min_(self: Tensor, min: Any) -> Tensor:  # noqa: A002
    """In-place ``max(x, min)``."""
    return clamp_(self, min=min)


def clamp_max_(self: Tensor, max: Any) -> Tensor:  # noqa: A002
    """In-place ``min(x, max)``."""
    return clamp_(self, max=max)


def addcmul_(self: Tensor, tensor1: Any, tensor2: Any, *, value: Any = 1) -> Tensor:
    """In-place ``self += value * tensor1 * tensor2`` (an Adam-style moment update)."""
    return assign(self, lambda old: math.add(old, math.mul(math.mul(tensor1, tensor2), value)),
                  "addcmul_", tensor1, tensor2)


def addcdiv_(self: Tensor, tensor1: Any, tensor2: Any, *, value: Any = 1) -> Tensor:
    """In-place ``self += value * tensor1 / tensor2``."""
    return assign(self, lambda old: math.add(old, math.mul(math.div(tensor1, tensor2), value)),
                  "addcdiv_", tensor1, tensor2)


def lerp_(self: Tensor, end: Any, weight: Any) -> Tensor:
    """In-place ``self += weight * (end - self)``."""
    return assign(self, lambda old: math.add(old, math.mul(math.sub(end, old), weight)),
                  "lerp_", end, weight)


def masked_fill_(self: Tensor, mask: Any, value: Any) -> Tensor:
    """Set ``value`` where ``mask`` is True.

    >>> x.masked_fill_(x < 0, 0.0)
    """
    return assign(self, lambda old: shape.masked_fill(old, mask, value), "masked_fill_", value)


def scatter_(self: Tensor, dim: int, index: Any, src: Any = None, *, value: Any = None,
             reduce: str | None = None) -> Tensor:
    """In-place ``scatter``: ``self[index[i][j]][j] = src[i][j]`` for dim 0, and so on."""
    return assign(self, lambda old: shape.scatter(old, dim, index, src, value=value,
                                                  reduce=reduce), "scatter_", src)


def scatter_add_(self: Tensor, dim: int, index: Any, src: Tensor) -> Tensor:
    """In-place ``scatter_add``: ``self[index[i][j]][j] += src[i][j]`` for dim 0, and so on."""
    return assign(self, lambda old: shape.scatter_add(old, dim, index, src), "scatter_add_", src)


def _along(self: Tensor, dim: int, index: Any, op: str) -> tuple:
    """The index expression that picks ``index`` (1-D integers) along ``dim``."""
    axis = normalize_axis(dim, self._data.ndim, op)
    index_data = index._data if isinstance(index, Tensor) else np.asarray(index)
    if index_data.ndim > 1 or index_data.dtype.kind not in "iu":
        raise IndexError(f"{op}(): index must be a 1-D integer tensor, got {index_data.dtype} "
                         f"of shape {tuple(index_data.shape)}")
    return (slice(None),) * axis + (index_data,)


def index_fill_(self: Tensor, dim: int, index: Any, value: Any) -> Tensor:
    """Set ``value`` in the slices at ``index`` along ``dim``."""
    where = _along(self, dim, index, "index_fill_")
    return assign(self, lambda old: _index_put(old, where, value), "index_fill_", value)


def index_add_(self: Tensor, dim: int, index: Any, source: Tensor, *, alpha: Any = 1) -> Tensor:
    """Add ``alpha * source``'s slices into the slices at ``index`` along ``dim`` (repeated
    indices accumulate)."""
    where = _along(self, dim, index, "index_add_")

    def compute(old: Tensor) -> Tensor:
        values = source.to(old.dtype) if alpha == 1 else math.mul(source.to(old.dtype), alpha)
        return math.add(old, indexing.index_add(values, shape=old._data.shape, index=where))

    return assign(self, compute, "index_add_", source)


def setitem(self: Tensor, index: Any, value: Any) -> None:
    """``self[index] = value``; differentiable with respect to both when a graph is recorded."""
    array_index = shape._index_arg(index)
    if not kernels.is_basic(array_index):
        shape._check_masks(self, array_index)
        selects, rest = shape._selects_first(array_index)
        if selects is not None:
            # PyTorch applies the integers first (x[0, :, [0, 1]] is (3, 2) where NumPy
            # makes it (2, 3)): write through that view, as getitem reads through it
            setitem(shape.getitem(self, selects), rest, value)
            return
    if _tracked(self, value):
        def compute(old: Tensor) -> Tensor:
            return _index_put(old, index, value)
        _rebase(self, compute, "__setitem__")
        return
    _check_writable(self, "__setitem__")
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


_primitive.view_position = _position_in
