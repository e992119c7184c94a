"""The two namespaces a derivative rule can be handed as ``xp``.

``array_namespace`` runs rules on raw arrays (a plain backward, fast);
``tensor_namespace`` runs the same rules on tensors, so the backward pass is recorded
and can be differentiated again (``create_graph=True``). Both expose exactly the names
below (Array API spellings plus the indexing kernels); a rule may use only these,
array methods and operators.
"""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace
from typing import Any

import numpy as np

from .. import _backend
from .._dtype import to_numpy_dtype
from ..tensor import Tensor
from . import creation, indexing, kernels, math, movement, nn_kernels, reduce, shape, unary
from ._convert import cast

RULE_FUNCTIONS = (
    "abs", "advanced_index", "any", "astype", "broadcast_to", "cos", "cumsum", "einsum", "erf",
    "exp", "expand_dims", "eye", "flip", "gather", "index_add", "log", "matmul", "maximum",
    "minimum", "pad", "permute_dims", "power", "prod", "relu_backward", "reshape", "roll", "scatter",
    "scatter_add", "sigmoid", "sign", "sin", "sum", "swapaxes", "tanh", "tril", "to_device", "triu",
    "where", "zeros", "zeros_like", "ones_like",
    # sliding windows (ops/nn_kernels.py)
    "im2col", "col2im",
)


def array_namespace(owner: _backend.Backend) -> SimpleNamespace:
    """The functions rules get for a plain backward on ``owner``'s arrays: its own Array
    API functions, and the kernels (ops/kernels.py) where the Array API has none."""
    xp = owner.xp
    return SimpleNamespace(
        abs=xp.abs,
        advanced_index=partial(kernels.advanced_index, xp),
        any=xp.any,
        # dtype: this backend's own (a rule's g.dtype) or a NumPy dtype (a primitive's params)
        astype=((lambda x, dtype: x.astype(dtype, copy=False)) if xp is np else
                (lambda x, dtype: xp.astype(x, kernels.native_dtype(xp, dtype), copy=False))),
        broadcast_to=xp.broadcast_to,
        cos=xp.cos,
        cumsum=partial(kernels.cumsum, xp),
        einsum=partial(kernels.einsum, xp),
        erf=partial(kernels.erf, xp),
        exp=xp.exp,
        expand_dims=xp.expand_dims,
        eye=lambda n, dtype, device=None: xp.eye(n, dtype=dtype, device=device),
        flip=xp.flip,
        gather=partial(kernels.gather, xp),
        index_add=partial(kernels.index_add, xp),
        log=xp.log,
        matmul=xp.matmul,
        maximum=xp.maximum,
        minimum=xp.minimum,
        pad=partial(kernels.pad, xp),
        permute_dims=xp.permute_dims,
        power=partial(kernels.power, xp),
        prod=xp.prod,
        relu_backward=partial(kernels.relu_backward, xp),
        reshape=xp.reshape,
        roll=xp.roll,
        scatter=partial(kernels.scatter, xp),
        scatter_add=partial(kernels.scatter_add, xp),
        sigmoid=partial(kernels.sigmoid, xp),
        sign=partial(unary.sign.forward, xp),  # 0 at a NaN, as the tensor version
        sin=xp.sin,
        sum=xp.sum,
        swapaxes=lambda x, a, b: xp.permute_dims(x, _swapped(x.ndim, a, b)),
        tanh=xp.tanh,
        to_device=_backend.to_device,
        tril=lambda x, k: xp.tril(x, k=k),
        triu=lambda x, k: xp.triu(x, k=k),
        where=partial(kernels.select, xp),
        zeros=xp.zeros,
        zeros_like=xp.zeros_like,
        ones_like=xp.ones_like,
        # sliding windows (ops/nn_kernels.py); ``size`` only matters to the rules
        im2col=lambda x, kernel_size, dilation, padding, stride, size, value: kernels.im2col(
            xp, x, kernel_size, dilation, padding, stride, value),
        col2im=lambda cols, size, kernel_size, dilation, padding, stride: kernels.col2im(
            xp, cols, size, kernel_size, dilation, padding, stride),
    )


def _swapped(ndim: int, a: int, b: int) -> tuple:
    order = list(range(ndim))
    order[a], order[b] = order[b], order[a]
    return tuple(order)


def _zeros(shape_: Any, dtype: Any = None, device: Any = None) -> Tensor:
    # rules pass g.dtype, a chainrule dtype here, and g.device (made on the default device
    # otherwise, which under create_graph need not be g's); np.zeros' default is float64
    return creation.zeros(tuple(shape_), dtype=np.float64 if dtype is None else dtype,
                          device=device)


def _prod(x: Tensor, axis: Any, keepdims: bool) -> Tensor:
    # one primitive over several axes (the public prod takes one dim, as PyTorch's)
    axes = _axes(axis, x.ndim)
    return reduce.prod(x, axis=axes if x.ndim else None, keepdims=keepdims, shape=x._data.shape)


def _axes(axis: Any, ndim: int) -> Any:
    if axis is None:
        return tuple(range(ndim))
    return tuple(a % ndim for a in ((axis,) if isinstance(axis, int) else axis))


tensor_namespace = SimpleNamespace(
    abs=math.abs,
    advanced_index=lambda x, index: x[index],
    any=lambda x: x.any(),
    astype=lambda x, dtype: cast(x, to_numpy_dtype(dtype)),
    broadcast_to=lambda x, shape_: shape.expand(x, tuple(shape_)),
    cos=math.cos,
    cumsum=lambda x, axis: reduce.cumsum(x, axis=axis % max(x.ndim, 1)),
    einsum=math.einsum,
    erf=math.erf,
    exp=math.exp,
    expand_dims=lambda x, axis: shape.unsqueeze(x, axis),
    eye=lambda n, dtype, device=None: creation.eye(n, dtype=dtype, device=device),
    flip=lambda x, axis: movement.flip(x, axis=_axes(axis, x.ndim)),
    gather=lambda x, axis, index: indexing.gather(x, axis=axis, index=index, shape=x._data.shape),
    index_add=lambda shape_, index, values: indexing.index_add(values, shape=tuple(shape_),
                                                               index=index),
    log=math.log,
    matmul=math.matmul,
    maximum=math.maximum,
    minimum=math.minimum,
    pad=lambda x, widths, value: movement.pad(x, widths=tuple(widths), value=value),
    permute_dims=lambda x, axes: shape.permute(x, tuple(axes)),
    power=lambda x, exponent: x ** exponent,
    prod=lambda x, axis=None, keepdims=False: _prod(x, axis, keepdims),
    relu_backward=lambda y, g: math.where(y <= 0, 0.0, g),
    reshape=lambda x, shape_: shape.reshape(x, tuple(shape_)),
    roll=lambda x, shift, axis: movement.roll(x, shift=shift, axis=axis),
    scatter=lambda base, axis, index, src: indexing.scatter(
        base, src, axis=axis, index=index, src_shape=src._data.shape),
    scatter_add=lambda base, axis, index, src: indexing.scatter_add(
        base, src, axis=axis, index=index, src_shape=src._data.shape),
    sigmoid=math.sigmoid,
    sign=math.sign,
    sin=math.sin,
    sum=lambda x, axis=None, keepdims=False: math.sum(x, axis, keepdims),
    swapaxes=lambda x, a, b: shape.transpose(x, a, b),
    tanh=math.tanh,
    to_device=lambda x, device: x.to(device),
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

assert set(vars(array_namespace(_backend.NUMPY))) == set(RULE_FUNCTIONS) == set(vars(tensor_namespace))
