"""Indexing primitives. Reading at positions (getitem, gather) and adding at positions
(index_add, scatter_add) are each other's VJPs, so both orders stay differentiable.

Rules reach the kernels through the namespace (``xp.index_add``, ``xp.gather``,
``xp.scatter_add``, ``xp.scatter``), which is the kernel itself for arrays and the
primitive below for tensors.
"""

from __future__ import annotations

import numpy as np

from . import kernels
from ._primitive import LINEAR, primitive


@primitive("getitem", view=True, backward_name="IndexBackward0", jvp=LINEAR)
def getitem(x, index, shape):
    out = x[index]
    if type(out) is not np.ndarray:
        # every dim took an integer: NumPy hands back a scalar copy, PyTorch a 0-d view
        out = x[(*index, Ellipsis) if isinstance(index, tuple) else (index, Ellipsis)]
    return out


def _getitem_vjp(xp, g, saved, p, needs):
    # each output element came from one input position: send its gradient back there,
    # adding where an integer-array index repeats a position
    return (xp.index_add(p["shape"], p["index"], g),)


getitem.defvjp(_getitem_vjp)
# integer or boolean array indices copy instead of viewing; the copy is contiguous, as
# PyTorch's (NumPy may put the indexed dims first in memory), so that later views match
@primitive("getitem_copy", backward_name="IndexBackward0", jvp=LINEAR)
def getitem_copy(x, index, shape):
    out = x[index]
    return out if out.flags.c_contiguous else out.copy()  # copy(): C order


getitem_copy.defvjp(_getitem_vjp)


@primitive("index_add", backward_name="IndexPutBackward0", jvp=LINEAR)
def index_add(values, shape, index):
    return kernels.index_add(shape, index, values)


@index_add.defvjp
def _(xp, g, saved, p, needs):
    return (g[p["index"]],)


@primitive("gather", jvp=LINEAR)
def gather(x, axis, index, shape):
    return kernels.gather(x, axis, index)


@gather.defvjp
def _(xp, g, saved, p, needs):
    zeros = xp.zeros(p["shape"], dtype=g.dtype)
    return (xp.scatter_add(zeros, p["axis"], p["index"], g),)


# ``src_shape`` is for the rule: src may be larger than index, and only its leading part
# (index's shape) is read, so its gradient is zero-padded back to src's shape
@primitive("scatter_add", jvp=LINEAR)
def scatter_add(base, src, axis, index, src_shape):
    return kernels.scatter_add(base, axis, index, src)


@scatter_add.defvjp
def _(xp, g, saved, p, needs):
    g_src = _src_gradient(xp, g, p, needs)
    return (g if needs[0] else None, g_src)


@primitive("scatter", jvp=LINEAR)
def scatter(base, src, axis, index, src_shape):
    return kernels.scatter(base, axis, index, src)


@scatter.defvjp
def _(xp, g, saved, p, needs):
    # written positions came from src, the others from base
    axis, index = p["axis"], p["index"]
    g_base = None
    if needs[0]:
        g_base = xp.scatter(g, axis, index, xp.zeros(index.shape, dtype=g.dtype))
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
