"""Public shape and indexing ops with PyTorch's signatures, over the movement and
indexing primitives."""

from __future__ import annotations

import builtins
import math as _math
from typing import Any

import numpy as np

from .. import _backend
from ..autograd import grad_mode
from ..autograd.function import Function
from ..tensor import Tensor, _wrap
from . import binary, indexing, kernels, movement
from ._convert import (
    as_tensor_arg,
    constant_like,
    dtype_of,
    normalize_axis,
    normalize_dim,
    result_dtype,
    shape_arg,
    xp_of,
)
from ._primitive import mark_no_grad_view

# ------------------------------------------------------------------ reshaping


def reshape(input: Tensor, *shape: Any) -> Tensor:
    """The same elements in a new shape (one dim may be -1): a view when the strides allow
    one, else a copy (as PyTorch's). ``Tensor.view`` is this too: where PyTorch's view would
    refuse, it copies (some results here are laid out differently from PyTorch's, e.g.
    F.linear's, so refusing would break code that runs under PyTorch)."""
    size = _resolve_shape(shape_arg(shape), input.numel(), "reshape", input)
    return _view_as(movement.reshape, input, size)


def _view_as(prim: Any, input: Tensor, size: tuple) -> Tensor:
    """``input`` in shape ``size`` by ``prim`` (reshape or one of its renamed twins): a view
    when the strides allow one, else a copy."""
    data = input._data
    if not kernels.can_view(xp_of(input), data, size):
        return movement.reshape_copy(input, shape=size, in_shape=data.shape)
    return prim(input, shape=size, in_shape=data.shape)


def _resolve_shape(size: tuple, numel: int, op: str, input: Tensor) -> tuple:
    if size.count(-1) > 1:
        raise RuntimeError(f"{op}(): only one dimension can be inferred (-1), got {list(size)}")
    known = _math.prod(s for s in size if s != -1)
    if -1 in size:
        if known == 0 or numel % known:
            raise RuntimeError(
                f"{op}(): shape {list(size)} is invalid for input of size {numel} "
                f"(shape {tuple(input.shape)})"
            )
        size = tuple(numel // known if s == -1 else s for s in size)
    elif known != numel:
        raise RuntimeError(
            f"{op}(): shape {list(size)} is invalid for input of size {numel} "
            f"(shape {tuple(input.shape)})"
        )
    return size


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims ``start_dim..end_dim`` into one."""
    shape = input._data.shape
    if not shape:
        return reshape(input, (1,))
    start = normalize_axis(start_dim, len(shape), "flatten")
    end = normalize_axis(end_dim, len(shape), "flatten")
    if start > end:
        raise RuntimeError("flatten(): start_dim cannot come after end_dim")
    if start == end:
        return input  # nothing to merge: PyTorch returns the tensor itself
    merged = _math.prod(shape[start:end + 1])
    return reshape(input, shape[:start] + (merged,) + shape[end + 1:])


def squeeze(input: Tensor, dim: Any = None) -> Tensor:
    """Drop size-1 dims (all, or those in ``dim`` that have size 1)."""
    shape = input._data.shape
    if dim is None:
        axes = [i for i, n in enumerate(shape) if n == 1]
        prim = movement.squeeze
    else:
        axes = [a for a in (normalize_dim(dim, len(shape), "squeeze") or ()) if shape and
                shape[a] == 1]
        prim = movement.squeeze_dim if isinstance(dim, (int, np.integer)) else movement.squeeze_dims
    return _view_as(prim, input, tuple(n for i, n in enumerate(shape) if i not in axes))


def unsqueeze(input: Tensor, dim: int) -> Tensor:
    """Insert a size-1 dim at ``dim``."""
    shape = list(input._data.shape)
    axis = normalize_axis(dim, len(shape) + 1, "unsqueeze")
    shape.insert(axis, 1)
    return _view_as(movement.unsqueeze, input, tuple(shape))


def permute(input: Tensor, *dims: Any) -> Tensor:
    """Reorder dims; ``x.permute(2, 0, 1)``."""
    order = shape_arg(dims)
    ndim = input._data.ndim
    if len(order) != ndim:
        raise RuntimeError(
            f"permute(): number of dims don't match: got {len(order)} dims for a tensor of "
            f"shape {tuple(input.shape)}"
        )
    axes = tuple(normalize_axis(d, ndim, "permute") for d in order)
    if len(set(axes)) != ndim:
        raise RuntimeError(f"permute(): repeated dim in {list(order)}")
    return movement.permute(input, dims=axes)


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap two dims."""
    ndim = input._data.ndim
    order = list(range(ndim))
    if ndim:
        a, b = normalize_axis(dim0, ndim, "transpose"), normalize_axis(dim1, ndim, "transpose")
        order[a], order[b] = order[b], order[a]
    return movement.transpose(input, dims=tuple(order))


swapaxes = swapdims = transpose


def t(input: Tensor) -> Tensor:
    """Transpose of a tensor with at most 2 dims."""
    ndim = input._data.ndim
    if ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {input.ndim}D")
    return movement.t(input, dims=(1, 0) if ndim == 2 else tuple(range(ndim)))


def movedim(input: Tensor, source: Any, destination: Any) -> Tensor:
    """Move dims to new positions, keeping the others in order."""
    ndim = input._data.ndim
    if ndim == 0:  # a 0-d tensor takes dim 0 or -1, as PyTorch's
        normalize_axis(source, 0, "movedim")
        normalize_axis(destination, 0, "movedim")
        return permute(input, ())
    src = [normalize_axis(s, ndim, "movedim") for s in np.atleast_1d(source)]
    dst = [normalize_axis(d, ndim, "movedim") for d in np.atleast_1d(destination)]
    order = [i for i in range(ndim) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return permute(input, tuple(order))


moveaxis = movedim


def expand(input: Tensor, *sizes: Any) -> Tensor:
    """Broadcast to a larger shape without copying (-1 keeps a dim)."""
    size = shape_arg(sizes)
    shape = input._data.shape
    lead = len(size) - len(shape)
    if lead < 0:
        raise RuntimeError(
            f"expand(): the number of sizes provided ({len(size)}) must be greater or equal to "
            f"the number of dimensions in the tensor ({len(shape)})"
        )
    target = tuple(n if n != -1 else shape[i - lead] for i, n in enumerate(size))
    for i, n in enumerate(shape):
        if n != 1 and n != target[i + lead]:
            raise RuntimeError(
                f"expand(): the expanded size of the tensor ({target[i + lead]}) must match the "
                f"existing size ({n}) at non-singleton dimension {i}. Target sizes: "
                f"{list(size)}. Tensor sizes: {list(shape)}"
            )
    return movement.expand(input, shape=target)


def broadcast_to(input: Tensor, *size: Any) -> Tensor:
    """``expand`` to ``size``: a shape, or the sizes as arguments (as PyTorch's Tensor method
    takes them).

    >>> chainrule.ones(3).broadcast_to(2, 3).shape
    chainrule.Size([2, 3])
    """
    return expand(input, *size)


def broadcast_tensors(*tensors: Tensor) -> tuple:
    shape = np.broadcast_shapes(*[t._data.shape for t in tensors])
    return tuple(expand(t, shape) for t in tensors)


def repeat(input: Tensor, *sizes: Any) -> Tensor:
    """Tile the tensor ``sizes[i]`` times along each dim (``torch.Tensor.repeat``)."""
    reps = shape_arg(sizes)
    shape = input._data.shape
    if len(reps) < len(shape):
        raise RuntimeError(
            "repeat(): number of repeat dims can not be smaller than number of tensor dims"
        )
    return movement.repeat(input, reps=reps, shape=shape)


def tile(input: Tensor, dims: Any) -> Tensor:
    dims = tuple(dims)
    return repeat(input, (1,) * (input.ndim - len(dims)) + dims)


def cat(tensors: Any, dim: int = 0, *, axis: int | None = None) -> Tensor:
    """Join tensors along an existing dim (always a new tensor, even from one part)."""
    tensors = [as_tensor_arg(t, "cat") for t in tensors]
    if not tensors:
        raise RuntimeError("cat(): expected a non-empty list of Tensors")
    dim = axis if axis is not None else dim
    tensors = _promoted(tensors)
    # PyTorch skips 1-D empty tensors in cat (legacy behaviour); they stay inputs of the
    # node, so that they get their (empty) gradient as in PyTorch
    legacy = [t._data.ndim == 1 and t._data.shape[0] == 0 for t in tensors]
    parts = [t for t, skip in zip(tensors, legacy) if not skip]
    if not parts or parts[0]._data.ndim == 1:
        parts, legacy = tensors, [False] * len(tensors)
    ndim = parts[0]._data.ndim
    axis_ = normalize_axis(dim, ndim, "cat")
    first = parts[0]._data.shape
    for i, t in enumerate(tensors):
        shape = t._data.shape
        if not legacy[i] and (len(shape) != ndim or any(
                a != b for d, (a, b) in enumerate(zip(shape, first)) if d != axis_)):
            raise RuntimeError(
                f"cat(): sizes of tensors must match except in dimension {dim}: tensor 0 has "
                f"shape {tuple(first)} and tensor {i} has shape {tuple(shape)}"
            )
    sizes = tuple(None if skip else t._data.shape[axis_] for t, skip in zip(tensors, legacy))
    return movement.cat(*tensors, axis=axis_, sizes=sizes)


concat = concatenate = cat


def _promoted(tensors: list) -> list:
    """The tensors in their common dtype, as PyTorch's cat and stack promote (cat counts the
    1-D empty parts it skips too)."""
    dtype = dtype_of(tensors[0])
    for other in tensors[1:]:
        dtype = result_dtype(_wrap(np.empty(1, dtype)), other) if dtype_of(other) != dtype else dtype
    return [t if dtype_of(t) == dtype else t.to(dtype) for t in tensors]


def stack(tensors: Any, dim: int = 0) -> Tensor:
    """Join tensors of the same shape along a new dim."""
    tensors = [as_tensor_arg(t, "stack") for t in tensors]
    if not tensors:
        raise RuntimeError("stack(): expected a non-empty list of Tensors")
    first = tensors[0]._data.shape
    for i, t in enumerate(tensors):
        if t._data.shape != first:
            raise RuntimeError(
                f"stack(): expects each tensor to be equal size, but got {tuple(first)} at entry "
                f"0 and {tuple(t.shape)} at entry {i}"
            )
    axis = normalize_axis(dim, len(first) + 1, "stack")
    return movement.stack(*_promoted(tensors), axis=axis)


def hstack(tensors: Any) -> Tensor:
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors: Any) -> Tensor:
    return cat([t if t.ndim > 1 else unsqueeze(t, 0) for t in tensors], 0)


def split(tensor: Tensor, split_size_or_sections: Any, dim: int = 0) -> tuple:
    """Split into chunks of a given size, or of the given list of sizes, along ``dim``."""
    axis = normalize_axis(dim, tensor._data.ndim, "split")
    length = tensor._data.shape[axis]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0 and length:
            raise RuntimeError(f"split(): split_size must be positive, got {step}")
        sizes = [builtins.min(step, length - s) for s in range(0, length, step)] or [0]
    else:
        sizes = list(split_size_or_sections)
        if builtins.sum(sizes) != length:
            raise RuntimeError(
                f"split(): split_with_sizes expects split_sizes to sum exactly to {length} "
                f"(input tensor's size at dimension {dim}), but got split_sizes={sizes}"
            )
        return _pieces(tensor, axis, sizes, keepdim=True, cut=_SplitWithSizes)
    return _pieces(tensor, axis, sizes, keepdim=True)


class _Split(Function):
    """Cut a tensor into pieces along an axis: one node for all of them, whose backward
    joins the pieces' gradients with one cat (a getitem per piece would add a full-size
    gradient per piece, O(L^2) for L pieces). The pieces share the input's memory and
    version counter, as PyTorch's views do."""

    _outputs_are_views = True
    _backward_name = "SplitBackward0"

    @staticmethod
    def forward(ctx: Any, x: Tensor, axis: int, sizes: tuple, keepdim: bool) -> tuple:
        ctx.axis, ctx.sizes, ctx.keepdim = axis, sizes, keepdim
        ctx.set_materialize_grads(False)
        pieces, start = [], 0
        for size in sizes:
            index = (slice(None),) * axis + ((slice(start, start + size),) if keepdim else (start,))
            piece = _wrap(x._data[(*index, Ellipsis)])
            piece._version = x._version
            piece._base = x if x._base is None else x._base
            pieces.append(piece)
            start += size
        ctx.piece_shapes = [p._data.shape for p in pieces]
        ctx.dtype, ctx.xp = x._data.dtype, xp_of(x)
        return tuple(pieces)

    @staticmethod
    def backward(ctx: Any, *grads: Any) -> tuple:
        parts = []
        for grad, piece in zip(grads, ctx.piece_shapes):
            parts.append(grad if grad is not None else _wrap(ctx.xp.zeros(piece, dtype=ctx.dtype)))
        joined = cat(parts, ctx.axis) if ctx.keepdim else stack(parts, ctx.axis)
        return joined, None, None, None

    @staticmethod
    def jvp(ctx: Any, tangent: Tensor, *rest: Any) -> tuple:
        return _pieces(tangent, ctx.axis, ctx.sizes, ctx.keepdim)


class _SplitWithSizes(_Split):
    """split with a list of sizes: PyTorch's split_with_sizes."""

    _backward_name = "SplitWithSizesBackward0"


class _Unbind(_Split):
    """The slices along an axis, each without it."""

    _backward_name = "UnbindBackward0"


def _pieces(tensor: Tensor, axis: int, sizes: list, keepdim: bool, cut: type = _Split) -> tuple:
    if len(sizes) == 1 and keepdim:
        return (narrow(tensor, axis, 0, sizes[0]),)
    pieces = cut.apply(tensor, axis, tuple(sizes), keepdim)
    pieces = pieces if isinstance(pieces, tuple) else (pieces,)
    enabled = grad_mode.state.enabled
    if tensor._extra is not None or (not enabled and tensor._rg):
        for piece in pieces:  # views made under no_grad are constants, as in apply
            mark_no_grad_view(piece, tensor, enabled)
    return pieces


def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple:
    """Split into ``chunks`` pieces of (nearly) equal size."""
    if chunks <= 0:
        raise RuntimeError(f"chunk(): chunks must be greater than 0, got {chunks}")
    length = input._data.shape[normalize_axis(dim, input._data.ndim, "chunk")]
    return split(input, builtins.max(-(-length // chunks), 1), dim)


def unbind(input: Tensor, dim: int = 0) -> tuple:
    """The slices along ``dim``, each without that dim."""
    axis = normalize_axis(dim, input._data.ndim, "unbind")
    count = input._data.shape[axis]
    if count == 0:
        return ()
    return _pieces(input, axis, [1] * count, keepdim=False, cut=_Unbind)


def narrow(input: Tensor, dim: int, start: int, length: int) -> Tensor:
    """The slice ``start:start+length`` along ``dim`` (a view)."""
    axis = normalize_axis(dim, input._data.ndim, "narrow")
    return getitem(input, (slice(None),) * axis + (slice(start, start + length),))


def select(input: Tensor, dim: int, index: int) -> Tensor:
    """The slice at ``index`` along ``dim``, without that dim."""
    axis = normalize_axis(dim, input._data.ndim, "select")
    return getitem(input, (slice(None),) * axis + (index,))


def flip(input: Tensor, dims: Any) -> Tensor:
    """Reverse the order of elements along ``dims``."""
    axes = normalize_dim(dims, input._data.ndim, "flip")
    return movement.flip(input, axis=axes) if axes is not None else input


def roll(input: Tensor, shifts: Any, dims: Any = None) -> Tensor:
    """Rotate elements along ``dims`` (the flattened tensor when ``dims`` is None)."""
    if dims is None:  # the flattened tensor rolled, in the input's shape
        return movement.roll(input, shift=int(shifts), axis=None)
    if isinstance(shifts, int):
        shifts, dims = (shifts,), (dims,) if isinstance(dims, int) else tuple(dims)
    dims = tuple(normalize_axis(d, input._data.ndim, "roll") for d in
                 ((dims,) if isinstance(dims, int) else dims))
    return movement.roll(input, shift=tuple(shifts), axis=dims)


def pad(input: Tensor, pad: Any, mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad (or crop, with negative sizes) the last dims: ``pad=(left, right, top, bottom, ...)``."""
    if mode != "constant":
        raise NotImplementedError(f"pad(): mode '{mode}' is not supported; use 'constant'")
    if len(pad) % 2 or len(pad) // 2 > input._data.ndim:
        raise RuntimeError(
            f"pad(): padding length must be even and at most 2 * ndim ({2 * input.ndim}), "
            f"got {len(pad)}"
        )
    widths = [(0, 0)] * input._data.ndim
    for i in range(len(pad) // 2):
        widths[input._data.ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    return movement.pad(input, widths=tuple(widths), value=0.0 if value is None else value)


def tril(input: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle (``diagonal`` shifts it)."""
    return movement.tril(input, k=diagonal)


def triu(input: Tensor, diagonal: int = 0) -> Tensor:
    """The upper triangle (``diagonal`` shifts it)."""
    return movement.triu(input, k=diagonal)


# ------------------------------------------------------------------ indexing


def _index_arg(index: Any) -> Any:
    """Convert tensors inside an index expression to arrays; lists become integer arrays."""
    if isinstance(index, tuple):
        return tuple(_index_item(i) for i in index)
    return _index_item(index)


def _index_item(item: Any) -> Any:
    if isinstance(item, Tensor):
        data = item._data
        if dtype_of(item).kind not in "biu":
            raise IndexError(
                f"tensors used as indices must be long, int, byte or bool tensors, got "
                f"{item.dtype}"
            )
        return data
    if isinstance(item, list):
        return np.asarray(item)
    return item


def getitem(input: Tensor, index: Any) -> Tensor:
    """``input[index]`` with basic and advanced indexing; repeated positions accumulate
    their gradients."""
    return _read(input, _index_arg(index), indexing.getitem_copy)


def _read(input: Tensor, index: Any, advanced: Any) -> Tensor:
    """``input[index]`` for an index already converted, an advanced one read by ``advanced``
    (getitem_copy or its twin index_select)."""
    try:
        if kernels.is_basic(index):
            return indexing.getitem(input, index=index, shape=input._data.shape)
        _check_masks(input, index)
        selects, rest = _selects_first(index)
        if selects is not None:
            input = indexing.getitem(input, index=selects, shape=input._data.shape)
            index = rest
        return advanced(input, index=index, shape=input._data.shape)
    except IndexError as error:
        raise IndexError(f"index {index!r} is invalid for a tensor of shape "
                         f"{tuple(input.shape)}: {error}") from None


def _check_masks(input: Tensor, index: Any) -> None:
    """A boolean mask must have the shape of the dims it indexes (NumPy lets an empty mask
    through where PyTorch refuses it)."""
    items = index if isinstance(index, tuple) else (index,)
    masks = [i for i in items if isinstance(i, np.ndarray) and i.dtype == np.bool_ and i.ndim]
    if not masks:
        return
    spans = [0 if i is None or i is Ellipsis else i.ndim if isinstance(i, np.ndarray)
             and i.dtype == np.bool_ else 1 for i in items]
    fill = input._data.ndim - builtins.sum(spans)
    dim = 0
    for item, span in zip(items, spans):
        if item is Ellipsis:
            dim += builtins.max(fill, 0)
            continue
        if span and isinstance(item, np.ndarray) and item.dtype == np.bool_ and item.ndim:
            covered = input._data.shape[dim:dim + span]
            if tuple(item.shape) != tuple(covered):
                raise IndexError(
                    f"the shape of the mask {list(item.shape)} at index {dim} does not match the "
                    f"shape of the indexed tensor {list(input.shape)} at index {dim}: a mask "
                    f"must have the shape of the dims it selects from"
                )
        dim += span


def _is_int_index(item: Any) -> bool:
    if isinstance(item, np.ndarray):  # a 0-d integer tensor counts as an int, as in PyTorch
        return item.ndim == 0 and item.dtype.kind in "iu"
    return isinstance(item, (int, np.integer)) and not isinstance(item, bool)


def _selects_first(index: Any) -> tuple:
    """PyTorch applies integer indices as selects before the array indices; NumPy treats
    them as arrays, which moves the result's dims when a slice separates an int from an
    array (``x[1, :, [0, 0]]``: (3, 2) in PyTorch, (2, 3) in NumPy). Split such an index
    into its basic part and the array part that follows it, or return (None, None)."""
    items = index if isinstance(index, tuple) else (index,)
    if not any(_is_int_index(i) for i in items):
        return None, None
    selects, rest = [], []
    for item in items:
        if _is_int_index(item):
            selects.append(int(item))
        elif isinstance(item, np.ndarray):
            # a boolean mask spans as many dims as it has
            selects.extend([slice(None)] * (item.ndim if item.dtype == np.bool_ else 1))
            rest.append(item)
        elif item is None or item is Ellipsis:
            selects.append(item)
            rest.append(slice(None) if item is None else item)
        else:
            selects.append(item)
            rest.append(slice(None))
    return tuple(selects), tuple(rest)


def index_select(input: Tensor, dim: int, index: Tensor) -> Tensor:
    """Rows (or slices along ``dim``) picked by a 1-D integer tensor."""
    axis = normalize_axis(dim, input._data.ndim, "index_select")
    index = _index_arg((slice(None),) * axis + (as_tensor_arg(index, "index_select")._data,))
    return _read(input, index, indexing.index_select)


def gather(input: Tensor, dim: int, index: Tensor) -> Tensor:
    """``out[i][j] = input[index[i][j]][j]`` for dim 0, and so on (torch.gather)."""
    index = as_tensor_arg(index, "gather")._data
    axis = normalize_axis(dim, input._data.ndim, "gather")
    _check_index(input, index, axis, "gather")
    return indexing.gather(input, axis=axis, index=index, shape=input._data.shape)


def _check_index(input: Tensor, index: Any, axis: int, op: str) -> None:
    if _backend.np_dtype(index).kind not in "iu":
        raise RuntimeError(f"{op}(): expected an integer index tensor, got {index.dtype}")
    if index.ndim != input._data.ndim and input._data.ndim:
        raise RuntimeError(
            f"{op}(): index tensor must have the same number of dimensions as the input "
            f"({input.ndim}), got shape {tuple(index.shape)}"
        )
    for d, (n, m) in enumerate(zip(index.shape, input._data.shape)):
        if d != axis and n > m:
            raise RuntimeError(
                f"{op}(): size of index {tuple(index.shape)} exceeds input "
                f"{tuple(input.shape)} at dimension {d}"
            )


def take_along_dim(input: Tensor, indices: Tensor, dim: int | None = None) -> Tensor:
    """Pick values along ``dim`` at ``indices`` (broadcast against the input)."""
    if dim is None:
        return gather(flatten(input), 0, flatten(indices))
    axis = normalize_axis(dim, input._data.ndim, "take_along_dim")
    index = as_tensor_arg(indices, "take_along_dim")._data
    shape_in = list(input._data.shape)
    shape_ix = list(index.shape)
    shape_in[axis] = shape_ix[axis] = 1
    common = np.broadcast_shapes(tuple(shape_in), tuple(shape_ix))
    target_in = tuple(n if d != axis else input._data.shape[axis] for d, n in enumerate(common))
    target_ix = tuple(n if d != axis else index.shape[axis] for d, n in enumerate(common))
    return gather(expand(input, target_in), axis,
                  _wrap(xp_of(input).broadcast_to(index, target_ix)))


def scatter(input: Tensor, dim: int, index: Tensor, src: Any = None, *,
            value: Any = None, reduce: str | None = None) -> Tensor:
    """Out-of-place ``scatter``: a copy of ``input`` with ``src`` written at ``index``."""
    if reduce is not None:
        if reduce != "add":
            raise NotImplementedError(f"scatter(): reduce='{reduce}' is not supported")
        return scatter_add(input, dim, index, src)
    index_data = as_tensor_arg(index, "scatter")._data
    axis = normalize_axis(dim, input._data.ndim, "scatter")
    _check_index(input, index_data, axis, "scatter")
    src = src if src is not None else value
    if not isinstance(src, Tensor):
        src = _wrap(xp_of(input).full(index_data.shape, src, dtype=input._data.dtype))
    return indexing.scatter(input, src, axis=axis, index=index_data, src_shape=src._data.shape)


def scatter_add(input: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    """Out-of-place ``scatter_add``: ``input`` with ``src`` added at ``index`` along ``dim``."""
    index_data = as_tensor_arg(index, "scatter_add")._data
    axis = normalize_axis(dim, input._data.ndim, "scatter_add")
    _check_index(input, index_data, axis, "scatter_add")
    return indexing.scatter_add(input, src, axis=axis, index=index_data,
                                src_shape=src._data.shape)


def masked_fill(input: Tensor, mask: Tensor, value: Any) -> Tensor:
    """``value`` where ``mask`` is True, ``input`` elsewhere (no gradient through the mask)."""
    mask = as_tensor_arg(mask, "masked_fill")
    if dtype_of(mask) != np.bool_:
        raise RuntimeError(f"masked_fill(): expected a bool mask, got {mask.dtype}")
    if isinstance(value, Tensor):
        if value._data.ndim:
            raise RuntimeError("masked_fill(): only supports a 0-dimensional value tensor")
        fill = value.to(input.dtype)
    else:
        fill = constant_like(value, dtype_of(input), input)
    try:
        out = binary.masked_fill(mask, fill, input)
    except ValueError:  # shapes that do not broadcast
        out = None
    if out is None or out._data.shape != input._data.shape:
        raise RuntimeError(
            f"masked_fill(): mask of shape {tuple(mask.shape)} cannot be broadcast to the "
            f"input's shape {tuple(input.shape)}"
        )
    return out


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """Integer class indices to one-hot int64 vectors (a new last dim)."""
    tensor = as_tensor_arg(tensor, "one_hot")
    data, xp = tensor._data, xp_of(tensor)
    if dtype_of(tensor).kind not in "iu":
        raise RuntimeError(f"one_hot(): expected an integer tensor, got {tensor.dtype}")
    if tensor.numel():
        low, high = int(xp.min(data)), int(xp.max(data))
    if num_classes == -1:
        num_classes = high + 1 if tensor.numel() else 0
    if tensor.numel() and (low < 0 or high >= num_classes):
        raise RuntimeError(f"one_hot(): class values must be in [0, {num_classes})")
    hot = data[..., None] == xp.arange(num_classes, dtype=data.dtype)
    return _wrap(_backend.astype(hot, np.dtype(np.int64)))
