"""Bind the ops onto Tensor as methods and operators (``x.exp()``, ``x + y``, ``x[i]``).

Kept apart from tensor.py so that the Tensor class imports nothing above it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _backend, _dtype
from .ops import creation, inplace, kernels, math, movement, shape
from .ops._convert import cast, dtype_of, normalize_axis, pick_dim, shape_arg, xp_of
from .tensor import Tensor, _wrap


def _swap(fn: Any) -> Any:
    def reflected(self: Tensor, other: Any) -> Tensor:
        return fn(other, self)

    return reflected


def _cuda(self: Tensor, device: Any = None, non_blocking: bool = False) -> Tensor:
    """This tensor on a CUDA device (``cuda:0`` by default; an int or device picks one)."""
    return _to(self, "cuda" if device is None else _backend.resolve(device))


def _cpu(self: Tensor, memory_format: Any = None) -> Tensor:
    """This tensor in host memory (itself when it is there)."""
    return _to(self, _backend.CPU)


def _to(self: Tensor, *args: Any, dtype: Any = None, device: Any = None, copy: bool = False,
        non_blocking: bool = False) -> Tensor:
    """This tensor with another dtype and/or on another device, differentiably:
    ``x.to(chainrule.float64)``, ``x.to("cuda")``, ``x.to("cuda", chainrule.float16)``,
    ``x.to(other)`` (other's dtype and device). Itself when nothing changes (``copy=True``:
    a copy then).

    >>> chainrule.ones(2).to("cpu", chainrule.float64).dtype
    chainrule.float64
    """
    for arg in args:
        if isinstance(arg, Tensor):
            dtype, device = arg.dtype, arg.device
        elif isinstance(arg, (_dtype.dtype, np.dtype, type)):
            dtype = arg
        elif arg is not None:
            device = arg
    out = self
    if dtype is not None:
        out = cast(out, _dtype.to_numpy_dtype(dtype))
    if device is not None:
        target = _backend.resolve(device)
        _backend.check_available(target)
        if target.type == "cuda" and target.index is None:
            target = _backend.device("cuda", 0)
        source = out.device
        if target != source:
            out = movement.to_device(out, device=target, src=source)
    return out.clone() if copy and out is self else out


def _dtype_method(target: _dtype.dtype) -> Any:
    def convert(self: Tensor) -> Tensor:
        return cast(self, target.np)

    convert.__name__ = target.name
    return convert


def _type_as(self: Tensor, other: Tensor) -> Tensor:
    return cast(self, dtype_of(other))


_TYPE_NAMES = {"float16": "Half", "float32": "Float", "float64": "Double", "int8": "Char",
               "uint8": "Byte", "int16": "Short", "int32": "Int", "int64": "Long",
               "bool": "Bool", "bfloat16": "BFloat16"}


def _type(self: Tensor, dtype: Any = None, non_blocking: bool = False) -> Any:
    """With no dtype, the type name (``'chainrule.FloatTensor'``); else ``self.to(dtype)``.

    >>> chainrule.ones(2).type(chainrule.float64).dtype
    chainrule.float64
    """
    if dtype is None:
        return f"chainrule.{_TYPE_NAMES[self.dtype.name]}Tensor"
    return _to(self, dtype)


def _clone(self: Tensor, *, memory_format: Any = None) -> Tensor:
    """A copy with its own storage; gradients flow back to the original."""
    from .ops import unary

    return unary.clone(self)


def _view(self: Tensor, *size: Any) -> Tensor:
    if len(size) == 1 and isinstance(size[0], (_dtype.dtype, np.dtype)):
        raise NotImplementedError("view(dtype) is not supported; use .to(dtype)")
    return shape.reshape(self, *size)


def _reduction_method(fn: Any) -> Any:
    def method(self: Tensor, dim: Any = None, keepdim: bool = False, *, axis: Any = None,
               keepdims: bool | None = None, **kwargs: Any) -> Any:
        keep = keepdim if keepdims is None else keepdims
        return fn(self, pick_dim(dim, axis), keep, **kwargs)

    method.__name__ = fn.__name__
    method.__doc__ = fn.__doc__
    return method


def _prod(self: Tensor, dim: Any = None, keepdim: bool = False, *, dtype: Any = None,
          axis: Any = None, keepdims: bool | None = None) -> Tensor:
    # rules call x.prod(axis=(...)) with several axes; PyTorch's prod takes one dim
    dim = pick_dim(dim, axis)
    keep = keepdim if keepdims is None else keepdims
    if dim is None or isinstance(dim, int):
        return math.prod(self, dim, keep, dtype=dtype)
    from .ops import reduce
    from .ops._convert import normalize_dim

    axes = normalize_dim(dim, self.ndim, "prod")
    return reduce.prod(self, axis=axes, keepdims=bool(keep), shape=self._data.shape)


def _new_factory(factory: Any) -> Any:
    def method(self: Tensor, *size: Any, dtype: Any = None, device: Any = None,
               requires_grad: bool = False) -> Tensor:
        return factory(shape_arg(size), dtype=dtype or self.dtype, requires_grad=requires_grad,
                       device=self.device if device is None else device)

    return method


def _new_full(self: Tensor, size: Any, fill_value: Any, *, dtype: Any = None,
              device: Any = None, requires_grad: bool = False) -> Tensor:
    return creation.full(size, fill_value, dtype=dtype or self.dtype, requires_grad=requires_grad,
                         device=self.device if device is None else device)


def _new_tensor(self: Tensor, data: Any, *, dtype: Any = None, device: Any = None,
                requires_grad: bool = False) -> Tensor:
    return creation.tensor(data, dtype=dtype or self.dtype, requires_grad=requires_grad,
                           device=self.device if device is None else device)


def _all(self: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    axis = None if dim is None else dim
    return _wrap(xp_of(self).all(self._data, axis=axis, keepdims=keepdim))


def _any(self: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    axis = None if dim is None else dim
    return _wrap(xp_of(self).any(self._data, axis=axis, keepdims=keepdim))


def _eq_method(self: Tensor, other: Any) -> Any:
    if other is None:
        return False
    return math.eq(self, other)


def _ne_method(self: Tensor, other: Any) -> Any:
    if other is None:
        return True
    return math.ne(self, other)


def _expand_as(self: Tensor, other: Tensor) -> Tensor:
    return shape.expand(self, other._data.shape)


def _reshape_as(self: Tensor, other: Tensor) -> Tensor:
    return shape.reshape(self, other._data.shape)


def _floordiv(self: Any, other: Any) -> Tensor:
    return math.div(self, other, rounding_mode="floor")


def _mod(self: Any, other: Any) -> Tensor:
    return math.sub(self, math.mul(_floordiv(self, other), other))


def _is_contiguous(self: Tensor, memory_format: Any = None) -> bool:
    return kernels.is_contiguous(xp_of(self), self._data)


def _contiguous(self: Tensor, memory_format: Any = None) -> Tensor:
    return self if kernels.is_contiguous(xp_of(self), self._data) else _clone(self)


def _mT(self: Tensor) -> Tensor:
    """The last two dims swapped (a batch of matrices transposed)."""
    if self.ndim < 2:
        raise RuntimeError(
            f"tensor.mT is only supported on matrices or batches of matrices. Got "
            f"{self.ndim}-D tensor."
        )
    return shape.transpose(self, -2, -1)


def _T(self: Tensor) -> Tensor:
    return shape.permute(self, tuple(reversed(range(self.ndim))))


def addcmul(input: Tensor, tensor1: Any, tensor2: Any, *, value: Any = 1) -> Tensor:
    """``input + value * tensor1 * tensor2``.

    >>> chainrule.addcmul(chainrule.ones(2), chainrule.ones(2), chainrule.ones(2), value=0.5)
    tensor([1.5000, 1.5000])
    """
    return math.add(input, math.mul(math.mul(tensor1, tensor2), value))


def addcdiv(input: Tensor, tensor1: Any, tensor2: Any, *, value: Any = 1) -> Tensor:
    """``input + value * tensor1 / tensor2``."""
    return math.add(input, math.mul(math.div(tensor1, tensor2), value))


def lerp(input: Tensor, end: Any, weight: Any) -> Tensor:
    """``input + weight * (end - input)``.

    >>> chainrule.lerp(chainrule.zeros(2), chainrule.ones(2), 0.25)
    tensor([0.2500, 0.2500])
    """
    return math.add(input, math.mul(math.sub(end, input), weight))


def square(input: Tensor) -> Tensor:
    """``input ** 2``."""
    return math.pow(input, 2)


def clamp_min(input: Tensor, min: Any) -> Tensor:  # noqa: A002 - PyTorch's name
    """``max(input, min)`` elementwise."""
    return math.clamp(input, min=min)


def clamp_max(input: Tensor, max: Any) -> Tensor:  # noqa: A002 - PyTorch's name
    """``min(input, max)`` elementwise."""
    return math.clamp(input, max=max)


def unflatten(input: Tensor, dim: int, sizes: Any) -> Tensor:
    """Split dim ``dim`` into ``sizes`` (one may be -1).

    >>> chainrule.zeros(2, 6).unflatten(1, (2, 3)).shape
    chainrule.Size([2, 2, 3])
    """
    axis = normalize_axis(dim, input.ndim, "unflatten")
    dims = input._data.shape
    return shape.reshape(input, dims[:axis] + tuple(sizes) + dims[axis + 1:])


def _iop(fn: Any) -> Any:
    def method(self: Tensor, other: Any) -> Tensor:
        return fn(self, other)

    return method


_METHODS = {
    # arithmetic
    "add": math.add, "sub": math.sub, "subtract": math.sub, "mul": math.mul,
    "multiply": math.mul, "div": math.div, "divide": math.div, "true_divide": math.div,
    "pow": math.pow, "neg": math.neg, "negative": math.neg, "abs": math.abs,
    "absolute": math.abs, "sign": math.sign, "reciprocal": math.reciprocal, "sqrt": math.sqrt,
    "rsqrt": math.rsqrt, "exp": math.exp, "exp2": math.exp2, "expm1": math.expm1,
    "log": math.log, "log2": math.log2, "log1p": math.log1p, "sin": math.sin, "cos": math.cos,
    "tan": math.tan, "tanh": math.tanh, "sigmoid": math.sigmoid, "relu": math.relu,
    "erf": math.erf, "floor": math.floor, "ceil": math.ceil, "round": math.round,
    "trunc": math.trunc, "maximum": math.maximum, "minimum": math.minimum,
    "clamp": math.clamp, "clip": math.clamp,
    "clamp_min": clamp_min, "clamp_max": clamp_max, "square": square, "addcmul": addcmul,
    "addcdiv": addcdiv, "lerp": lerp,
    "where": lambda self, condition, other: math.where(condition, self, other),
    # comparisons and logic
    "eq": math.eq, "ne": math.ne, "lt": math.lt, "le": math.le, "gt": math.gt, "ge": math.ge,
    "logical_and": math.logical_and, "logical_or": math.logical_or,
    "logical_xor": math.logical_xor, "logical_not": math.logical_not,
    "isnan": math.isnan, "isinf": math.isinf, "isfinite": math.isfinite,
    "equal": math.equal, "allclose": math.allclose, "isclose": math.isclose,
    "all": _all, "any": _any,
    # reductions
    "sum": _reduction_method(math.sum), "mean": _reduction_method(math.mean), "prod": _prod,
    "amax": math.amax, "amin": math.amin, "max": math.max, "min": math.min,
    "argmax": math.argmax, "argmin": math.argmin, "var": math.var, "std": math.std,
    "norm": math.norm, "logsumexp": math.logsumexp, "softmax": math.softmax,
    "log_softmax": math.log_softmax, "cumsum": math.cumsum,
    # linear algebra
    "matmul": math.matmul, "mm": math.mm, "bmm": math.bmm, "dot": math.dot,
    "outer": math.outer, "inner": math.dot,
    # shape
    "reshape": shape.reshape, "view": _view, "view_as": _reshape_as,
    "reshape_as": _reshape_as, "flatten": shape.flatten, "squeeze": shape.squeeze,
    "unsqueeze": shape.unsqueeze, "permute": shape.permute, "transpose": shape.transpose,
    "swapaxes": shape.transpose, "swapdims": shape.transpose, "t": shape.t,
    "movedim": shape.movedim, "expand": shape.expand, "expand_as": _expand_as,
    "broadcast_to": shape.broadcast_to, "repeat": shape.repeat, "tile": shape.tile,
    "flip": shape.flip, "roll": shape.roll, "split": shape.split, "chunk": shape.chunk,
    "unbind": shape.unbind, "unflatten": unflatten, "narrow": shape.narrow, "select": shape.select,
    "tril": shape.tril, "triu": shape.triu,
    # indexing
    "gather": shape.gather, "scatter": shape.scatter, "scatter_add": shape.scatter_add,
    "index_select": shape.index_select, "masked_fill": shape.masked_fill,
    "take_along_dim": shape.take_along_dim,
    # in place
    "add_": inplace.add_, "sub_": inplace.sub_, "mul_": inplace.mul_, "div_": inplace.div_,
    "pow_": inplace.pow_, "clamp_": inplace.clamp_, "clip_": inplace.clamp_,
    "copy_": inplace.copy_, "fill_": inplace.fill_, "zero_": inplace.zero_,
    "masked_fill_": inplace.masked_fill_, "scatter_": inplace.scatter_,
    "scatter_add_": inplace.scatter_add_, "index_fill_": inplace.index_fill_,
    "index_add_": inplace.index_add_, "clamp_min_": inplace.clamp_min_,
    "clamp_max_": inplace.clamp_max_, "addcmul_": inplace.addcmul_,
    "addcdiv_": inplace.addcdiv_, "lerp_": inplace.lerp_, "exp_": inplace.exp_,
    "log_": inplace.log_, "sqrt_": inplace.sqrt_, "rsqrt_": inplace.rsqrt_,
    "reciprocal_": inplace.reciprocal_, "sin_": inplace.sin_, "cos_": inplace.cos_,
    "tanh_": inplace.tanh_, "sigmoid_": inplace.sigmoid_, "relu_": inplace.relu_,
    "neg_": inplace.neg_, "negative_": inplace.neg_, "abs_": inplace.abs_,
    "sign_": inplace.sign_, "floor_": inplace.floor_, "ceil_": inplace.ceil_,
    "trunc_": inplace.trunc_, "round_": inplace.round_, "square_": inplace.square_,
    "uniform_": creation.uniform_, "normal_": creation.normal_,
    "bernoulli_": creation.bernoulli_, "exponential_": creation.exponential_,
    "random_": creation.random_,
    # conversion and copies
    "to": _to, "type": _type, "type_as": _type_as, "clone": _clone, "contiguous": _contiguous,
    "is_contiguous": _is_contiguous, "cpu": _cpu, "cuda": _cuda,
    "float": _dtype_method(_dtype.float32), "double": _dtype_method(_dtype.float64),
    "half": _dtype_method(_dtype.float16), "bfloat16": _dtype_method(_dtype.bfloat16),
    "long": _dtype_method(_dtype.int64),
    "int": _dtype_method(_dtype.int32), "bool": _dtype_method(_dtype.bool),
    "new_zeros": _new_factory(creation.zeros), "new_ones": _new_factory(creation.ones),
    "new_empty": _new_factory(creation.empty), "new_full": _new_full,
    "new_tensor": _new_tensor,
    # operators
    "__add__": math.add, "__radd__": _swap(math.add), "__sub__": math.sub,
    "__rsub__": _swap(math.sub), "__mul__": math.mul, "__rmul__": _swap(math.mul),
    "__truediv__": math.div, "__rtruediv__": math.rtruediv, "__floordiv__": _floordiv,
    "__rfloordiv__": _swap(_floordiv), "__mod__": _mod, "__rmod__": _swap(_mod),
    "__pow__": math.pow, "__rpow__": _swap(math.pow), "__matmul__": math.matmul,
    "__rmatmul__": _swap(math.matmul), "__neg__": math.neg, "__pos__": lambda self: self,
    "__abs__": math.abs, "__eq__": _eq_method, "__ne__": _ne_method, "__lt__": math.lt,
    "__le__": math.le, "__gt__": math.gt, "__ge__": math.ge,
    "__and__": math.bitwise_and, "__or__": math.bitwise_or, "__xor__": math.bitwise_xor,
    "__rand__": _swap(math.bitwise_and), "__ror__": _swap(math.bitwise_or),
    "__invert__": math.bitwise_not, "__getitem__": shape.getitem,
    "__setitem__": inplace.setitem,
    "__iadd__": _iop(inplace.add_), "__isub__": _iop(inplace.sub_),
    "__imul__": _iop(inplace.mul_), "__itruediv__": _iop(inplace.div_),
}

_PROPERTIES = {"T": _T, "mT": _mT}


def bind() -> None:
    for name, fn in _METHODS.items():
        setattr(Tensor, name, fn)
    for name, fn in _PROPERTIES.items():
        setattr(Tensor, name, property(fn))
