"""Indexing primitives. Reading at positions (getitem, gather) and adding at positions
(index_add, scatter_add) are each other's VJPs, so both orders stay differentiable.

Rules reach the kernels through the namespace (``xp.index_add``, ``xp.gather``,
``xp.scatter_add``, ``xp.scatter``), which is the kernel itself for arrays and the
primitive below for tensors.
"""

from __future__ import annotations

from typing import Any

from . import kernels
from ._primitive import LINEAR, primitive


def _basic_index_name(node: Any) -> str:
    """PyTorch reads a basic index as one view per item, left to right, and the node is the
    last of them: an int selects, None unsqueezes, a slice that is not the whole dim slices
    (whole ones are skipped), and an index that changes nothing is an alias. A lone slice,
    ``x[:]``, is always a slice."""
    index, shape = node.params["index"], node.params["shape"]
    if type(index) is slice:
        return "SliceBackward0"
    items = index if type(index) is tuple else (index,)
    last, dim = "AliasBackward0", 0
    for item in items:
        if item is None:
            last = "UnsqueezeBackward0"
        elif item is Ellipsis:
            dim += len(shape) - sum(i is not None and i is not Ellipsis for i in items)
        elif type(item) is slice:
            if item.indices(shape[dim]) != (0, shape[dim], 1):
                last = "SliceBackward0"
            dim += 1
        else:
            last = "SelectBackward0"
            dim += 1
    return last


@primitive("getitem", view=True, backward_name=_basic_index_name, jvp=LINEAR)
def getitem(xp, x, index, shape):
    # with an Ellipsis, as the Array API asks; NumPy then gives a 0-d view where every dim
    # takes an integer (a scalar copy without), as PyTorch
    return x[kernels.full_index(index)]


def _getitem_vjp(xp, g, saved, p, needs):
    # each output element came from one input position: send its gradient back there,
    # adding where an integer-array index repeats a position
    return (xp.index_add(p["shape"], p["index"], g),)


getitem.defvjp(_getitem_vjp)
# integer or boolean array indices copy instead of viewing; the copy is contiguous, as
# PyTorch's (NumPy may put the indexed dims first in memory), so that later views match
@primitive("getitem_copy", backward_name="IndexBackward0", jvp=LINEAR)
def getitem_copy(xp, x, index, shape):
    return kernels.contiguous(xp, kernels.advanced_index(xp, x, index))


getitem_copy.defvjp(_getitem_vjp)
index_select = getitem_copy.renamed("index_select", "IndexSelectBackward0")


@primitive("index_add", backward_name="IndexPutBackward0", jvp=LINEAR)
def index_add(xp, values, shape, index):
    return kernels.index_add(xp, shape, index, values)


@index_add.defvjp
def _(xp, g, saved, p, needs):
    index = p["index"]
    return (g[kernels.full_index(index)] if kernels.is_basic(index) else
            xp.advanced_index(g, index),)


@primitive("gather", jvp=LINEAR)
def gather(xp, x, axis, index, shape):
    return kernels.gather(xp, x, axis, index)


@gather.defvjp
def _(xp, g, saved, p, needs):
    zeros = xp.zeros(p["shape"], dtype=g.dtype, device=g.device)
    return (xp.scatter_add(zeros, p["axis"], p["index"], g),)


# ``src_shape`` is for the rule: src may be larger than index, and only its leading part
# (index's shape) is read, so its gradient is zero-padded back to src's shape
@primitive("scatter_add", jvp=LINEAR)
def scatter_add(xp, base, src, axis, index, src_shape):
    return kernels.scatter_add(xp, base, axis, index, src)


@scatter_add.defvjp
def _(xp, g, saved, p, needs):
    g_src = _src_gradient(xp, g, p, needs)
    return (g if needs[0] else None, g_src)


@primitive("scatter", jvp=LINEAR)
def scatter(xp, base, src, axis, index, src_shape):
    return kernels.scatter(xp, base, axis, index, src)


@scatter.defvjp
def _(xp, g, saved, p, needs):
    # written positions came from src, the others from base
    axis, index = p["axis"], p["index"]
    g_base = None
    if needs[0]:
        g_base = xp.scatter(g, axis, index, xp.zeros(index.shape, dtype=g.dtype, device=g.device))
    return (g_base, _src_gradient(xp, g, p, needs))


def _src_gradient(xp, g, p, needs):
    """The gradient of src: g read at ``index``, zero-padded where src is larger than index."""
    if not needs[1]:
        return None
    picked = xp.gather(g, p["axis"], p["index"])
    src_shape = p["src_shape"]
    if tuple(picked.shape) == tuple(src_shape):
        return picked
    return xp.pad(picked, tuple((0, s - n) for s, n in zip(src_shape, picked.shape)), 0.0)
