"""The two namespaces a derivative rule can be handed as ``xp``.

``array_namespace`` runs rules on raw arrays (a plain backward, fast);
``tensor_namespace`` runs the same rules on tensors, so the backward pass is recorded
and can be differentiated again (``create_graph=True``). Both expose exactly the names
below (Array API spellings plus the indexing kernels); a rule may use only these,
array methods and operators.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from .._dtype import to_numpy_dtype
from ..tensor import Tensor
from . import creation, indexing, kernels, math, movement, nn_kernels, reduce, shape, unary
from ._convert import cast

RULE_FUNCTIONS = (
    "abs", "astype", "broadcast_to", "cos", "cumsum", "einsum", "exp", "expand_dims", "eye", "flip",
    "gather", "index_add", "log", "matmul", "pad", "permute_dims", "roll", "scatter",
    "scatter_add", "sign", "sin", "swapaxes", "tril", "triu", "where", "zeros", "zeros_like",
    "ones_like",
    # sliding windows (ops/nn_kernels.py)
    "im2col", "col2im",
)

array_namespace = SimpleNamespace(
    abs=np.abs,
    astype=lambda x, dtype: x.astype(dtype, copy=False),
    broadcast_to=np.broadcast_to,
    cos=np.cos,
    cumsum=np.cumsum,
    einsum=np.einsum,
    exp=np.exp,
    expand_dims=np.expand_dims,
    eye=lambda n, dtype: np.eye(n, dtype=dtype),
    flip=np.flip,
    gather=kernels.gather,
    index_add=lambda shape_, index, values: kernels.index_add(shape_, index, values),
    log=np.log,
    matmul=np.matmul,
    pad=kernels.pad,
    permute_dims=np.transpose,
    roll=np.roll,
    scatter=kernels.scatter,
    scatter_add=kernels.scatter_add,
    sign=unary.sign.forward,  # 0 at a NaN, as the tensor version
    sin=np.sin,
    swapaxes=np.swapaxes,
    tril=np.tril,
    triu=np.triu,
    where=kernels.select,
    zeros=np.zeros,
    zeros_like=np.zeros_like,
    ones_like=np.ones_like,
    # sliding windows (ops/nn_kernels.py); ``size`` only matters to the rules
    im2col=lambda x, kernel_size, dilation, padding, stride, size, value: kernels.im2col(
        x, kernel_size, dilation, padding, stride, value),
    col2im=kernels.col2im,
)


def _zeros(shape_: Any, dtype: Any = None) -> Tensor:
    # rules pass g.dtype, a chainrule dtype here; np.zeros' default is float64
    return creation.zeros(tuple(shape_), dtype=np.float64 if dtype is None else dtype)


def _axes(axis: Any, ndim: int) -> Any:
    if axis is None:
        return tuple(range(ndim))
    return tuple(a % ndim for a in ((axis,) if isinstance(axis, int) else axis))


tensor_namespace = SimpleNamespace(
    abs=math.abs,
    astype=lambda x, dtype: cast(x, to_numpy_dtype(dtype)),
    broadcast_to=lambda x, shape_: shape.expand(x, tuple(shape_)),
    cos=math.cos,
    cumsum=lambda x, axis: reduce.cumsum(x, axis=axis % max(x.ndim, 1)),
    einsum=math.einsum,
    exp=math.exp,
    expand_dims=lambda x, axis: shape.unsqueeze(x, axis),
    eye=lambda n, dtype: creation.eye(n, dtype=dtype),
    flip=lambda x, axis: movement.flip(x, axis=_axes(axis, x.ndim)),
    gather=lambda x, axis, index: indexing.gather(x, axis=axis, index=index, shape=x._data.shape),
    index_add=lambda shape_, index, values: indexing.index_add(values, shape=tuple(shape_),
                                                               index=index),
    log=math.log,
    matmul=math.matmul,
    pad=lambda x, widths, value: movement.pad(x, widths=tuple(widths), value=value),
    permute_dims=lambda x, axes: shape.permute(x, tuple(axes)),
    roll=lambda x, shift, axis: movement.roll(x, shift=shift, axis=axis),
    scatter=lambda base, axis, index, src: indexing.scatter(
        base, src, axis=axis, index=index, src_shape=src._data.shape),
    scatter_add=lambda base, axis, index, src: indexing.scatter_add(
        base, src, axis=axis, index=index, src_shape=src._data.shape),
    sign=math.sign,
    sin=math.sin,
    swapaxes=lambda x, a, b: shape.transpose(x, a, b),
    tril=lambda x, k: movement.tril(x, k=k),
    triu=lambda x, k: movement.triu(x, k=k),
    where=math.where,
    zeros=_zeros,
    zeros_like=creation.zeros_like,
    ones_like=creation.ones_like,
    # sliding windows (ops/nn_kernels.py)
    im2col=lambda x, kernel_size, dilation, padding, stride, size, value: nn_kernels.im2col(
        x, kernel_size=kernel_size, dilation=dilation, padding=padding, stride=stride, size=size,
        value=value),
    col2im=lambda cols, size, kernel_size, dilation, padding, stride: nn_kernels.col2im(
        cols, size=size, kernel_size=kernel_size, dilation=dilation, padding=padding,
        stride=stride),
)

assert set(vars(array_namespace)) == set(RULE_FUNCTIONS) == set(vars(tensor_namespace))
