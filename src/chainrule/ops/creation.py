"""Tensor factories with PyTorch's signatures, and chainrule's random generator."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _backend, _dtype
from ..tensor import Tensor, _as_array, _wrap
from ._convert import constant_like, dtype_of, shape_arg


def _finish(array: Any, requires_grad: bool, device: Any = None) -> Tensor:
    """A tensor of a host array, on ``device`` (None: the default device)."""
    out = _wrap(_place(array, device))
    if requires_grad:
        out.requires_grad_(True)
    return out


def _place(array: Any, device: Any) -> Any:
    """``array`` (a NumPy array, or an array of any backend) moved to ``device``, the default
    device when None. Factories fill arrays on the host and move them: random samples are
    then the same on every device for the same seed."""
    if device is None:
        target = _backend.get_default_device()
        if target is _backend.CPU and type(array) is np.ndarray:
            return array
    else:
        target = _backend.resolve(device)
        _backend.check_available(target)
    return _backend.to_device(array, target)


def _float_dtype(dtype: Any) -> np.dtype:
    return _dtype.get_default_dtype().np if dtype is None else _dtype.to_numpy_dtype(dtype)


def tensor(data: Any, *, dtype: Any = None, device: Any = None, requires_grad: bool = False,
           pin_memory: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (Python floats become float32).

    >>> chainrule.tensor([[1, 2], [3, 4]]).dtype
    chainrule.int64
    """
    array = _as_array(data, dtype)
    if isinstance(data, Tensor) or array is data or getattr(array, "base", None) is not None:
        array = _backend.copy(array)
    if device is None and isinstance(data, Tensor):
        device = data.device  # a tensor's copy stays on its device, as PyTorch's
    return _finish(array, requires_grad, device)


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """A tensor sharing ``data``'s memory where possible (arrays, tensors), else a copy."""
    if isinstance(data, Tensor):
        return data.to(device=device, dtype=dtype)
    if isinstance(data, np.ndarray):
        return _wrap(_place(data if dtype is None else
                            data.astype(_dtype.to_numpy_dtype(dtype), copy=False), device))
    return _wrap(_place(_as_array(data, dtype), device))


asarray = as_tensor


def from_numpy(ndarray: np.ndarray) -> Tensor:
    """A tensor on the same memory as ``ndarray`` (changes show in both)."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"from_numpy(): expected np.ndarray (got {type(ndarray).__name__})")
    _dtype.from_numpy_dtype(ndarray.dtype)
    return _wrap(ndarray)


def zeros(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros: ``zeros(2, 3)`` or ``zeros((2, 3))``."""
    return _finish(np.zeros(shape_arg(size), dtype=_float_dtype(dtype)), requires_grad, device)


def ones(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones."""
    return _finish(np.ones(shape_arg(size), dtype=_float_dtype(dtype)), requires_grad, device)


def empty(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """An uninitialised tensor (NumPy's ``empty``)."""
    return _finish(np.empty(shape_arg(size), dtype=_float_dtype(dtype)), requires_grad, device)


def full(size: Any, fill_value: Any, *, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    """A tensor filled with ``fill_value``; its dtype follows the value as in PyTorch."""
    if dtype is None:
        if isinstance(fill_value, bool):
            np_dtype = np.dtype(np.bool_)
        elif isinstance(fill_value, int):
            np_dtype = np.dtype(np.int64)
        else:
            np_dtype = _dtype.get_default_dtype().np
    else:
        np_dtype = _dtype.to_numpy_dtype(dtype)
    return _finish(np.full(shape_arg((size,)), fill_value, dtype=np_dtype), requires_grad, device)


def arange(start: Any, end: Any = None, step: Any = 1, *, dtype: Any = None,
           device: Any = None, requires_grad: bool = False) -> Tensor:
    """Values from ``start`` (inclusive) to ``end`` (exclusive) by ``step``; int64 when all
    arguments are integers, else float32."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        integral = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        np_dtype = np.dtype(np.int64) if integral else _dtype.get_default_dtype().np
    else:
        np_dtype = _dtype.to_numpy_dtype(dtype)
    if step == 0:
        raise RuntimeError("arange(): step must be nonzero")
    return _finish(np.arange(start, end, step).astype(np_dtype), requires_grad, device)


def linspace(start: float, end: float, steps: int, *, dtype: Any = None, device: Any = None,
             requires_grad: bool = False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    return _finish(np.linspace(start, end, steps, dtype=np.float64).astype(_float_dtype(dtype)),
                   requires_grad, device)


def eye(n: int, m: int | None = None, *, dtype: Any = None, device: Any = None,
        requires_grad: bool = False) -> Tensor:
    """The identity matrix (n x m)."""
    return _finish(np.eye(n, m, dtype=_float_dtype(dtype)), requires_grad, device)


def _like(input: Tensor, dtype: Any) -> tuple:
    return input._data.shape, (dtype_of(input) if dtype is None else
                               _dtype.to_numpy_dtype(dtype))


def _like_device(input: Tensor, device: Any) -> Any:
    """``*_like`` factories put the result on the input's device unless told otherwise."""
    return input.device if device is None and type(input._data) is not np.ndarray else device


def zeros_like(input: Tensor, *, dtype: Any = None, device: Any = None,
               requires_grad: bool = False) -> Tensor:
    shape, np_dtype = _like(input, dtype)
    return _finish(np.zeros(shape, dtype=np_dtype), requires_grad, _like_device(input, device))


def ones_like(input: Tensor, *, dtype: Any = None, device: Any = None,
              requires_grad: bool = False) -> Tensor:
    shape, np_dtype = _like(input, dtype)
    return _finish(np.ones(shape, dtype=np_dtype), requires_grad, _like_device(input, device))


def empty_like(input: Tensor, *, dtype: Any = None, device: Any = None,
               requires_grad: bool = False) -> Tensor:
    shape, np_dtype = _like(input, dtype)
    return _finish(np.empty(shape, dtype=np_dtype), requires_grad, _like_device(input, device))


def full_like(input: Tensor, fill_value: Any, *, dtype: Any = None, device: Any = None,
              requires_grad: bool = False) -> Tensor:
    shape, np_dtype = _like(input, dtype)
    return _finish(np.full(shape, fill_value, dtype=np_dtype), requires_grad,
                   _like_device(input, device))


# ------------------------------------------------------------------ randomness


class Generator:
    """A seeded source of random numbers (PCG64), as ``torch.Generator``.

    >>> g = chainrule.Generator().manual_seed(0)
    >>> chainrule.rand(2, generator=g)
    """

    def __init__(self, device: Any = "cpu") -> None:
        self._seed = int(np.random.SeedSequence().entropy % (2**63))
        self._rng = np.random.Generator(np.random.PCG64(self._seed))

    def manual_seed(self, seed: int) -> Generator:
        self._seed = int(seed)
        self._rng = np.random.Generator(np.random.PCG64(self._seed))
        return self

    def seed(self) -> int:
        return self.manual_seed(int(np.random.SeedSequence().entropy % (2**63)))._seed

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> Tensor:
        """The generator's state as a uint8 tensor (restore it with ``set_state``)."""
        state = self._rng.bit_generator.state
        words = [state["state"]["state"], state["state"]["inc"], state["has_uint32"],
                 state["uinteger"]]
        raw = b"".join(int(w).to_bytes(16, "little") for w in words)
        return _wrap(np.frombuffer(raw, dtype=np.uint8).copy())

    def set_state(self, new_state: Tensor) -> None:
        raw = bytes(np.asarray(_backend.to_numpy(new_state._data), dtype=np.uint8))
        words = [int.from_bytes(raw[i:i + 16], "little") for i in range(0, 64, 16)]
        self._rng.bit_generator.state = {
            "bit_generator": "PCG64",
            "state": {"state": words[0], "inc": words[1]},
            "has_uint32": words[2],
            "uinteger": words[3],
        }


default_generator = Generator().manual_seed(0)
# CUDA tensors' generator (chainrule.cuda.manual_seed): PyTorch keeps one per device type, so
# seeding CUDA leaves the CPU's stream as it was
cuda_generator = Generator().manual_seed(0)


def manual_seed(seed: int) -> Generator:
    """Seed chainrule's default generator and CUDA's; random factories become reproducible."""
    cuda_generator.manual_seed(seed)
    return default_generator.manual_seed(seed)


def seed() -> int:
    return default_generator.seed()


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng_state() -> Tensor:
    return default_generator.get_state()


def set_rng_state(new_state: Tensor) -> None:
    default_generator.set_state(new_state)


def _rng(generator: Generator | None, device: Any = None) -> np.random.Generator:
    """The generator to draw from: the given one, else that of the device's type."""
    if generator is not None:
        return generator._rng
    where = _backend.get_default_device() if device is None else _backend.resolve(device)
    return (cuda_generator if where.type == "cuda" else default_generator)._rng


def rand(*size: Any, generator: Generator | None = None, dtype: Any = None, device: Any = None,
         requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1)."""
    np_dtype = _float_dtype(dtype)
    sample = _rng(generator, device).random(shape_arg(size), dtype=np.float64).astype(np_dtype)
    return _finish(sample, requires_grad, device)


def randn(*size: Any, generator: Generator | None = None, dtype: Any = None, device: Any = None,
          requires_grad: bool = False) -> Tensor:
    """Standard normal samples."""
    np_dtype = _float_dtype(dtype)
    sample = _rng(generator, device).standard_normal(shape_arg(size)).astype(np_dtype)
    return _finish(sample, requires_grad, device)


def randint(low: int, high: int | None = None, size: Any = None, *,
            generator: Generator | None = None, dtype: Any = None, device: Any = None,
            requires_grad: bool = False) -> Tensor:
    """Integers in [low, high): ``randint(10, (3,))`` or ``randint(2, 10, (3,))``."""
    if size is None:
        if high is None or not isinstance(high, (tuple, list)):
            raise TypeError("randint(): missing the 'size' argument")
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    np_dtype = np.dtype(np.int64) if dtype is None else _dtype.to_numpy_dtype(dtype)
    sample = _rng(generator, device).integers(low, high, size=tuple(size)).astype(np_dtype)
    return _finish(sample, requires_grad, device)


def randperm(n: int, *, generator: Generator | None = None, dtype: Any = None,
             device: Any = None) -> Tensor:
    """A random permutation of 0..n-1."""
    np_dtype = np.dtype(np.int64) if dtype is None else _dtype.to_numpy_dtype(dtype)
    return _finish(_rng(generator, device).permutation(n).astype(np_dtype), False, device)


def normal(mean: Any = 0.0, std: Any = 1.0, size: Any = None, *,
           generator: Generator | None = None, dtype: Any = None) -> Tensor:
    """Normal samples with the given mean and std (numbers or tensors, broadcast)."""
    mean_data = _backend.to_numpy(mean._data) if isinstance(mean, Tensor) else mean
    std_data = _backend.to_numpy(std._data) if isinstance(std, Tensor) else std
    if size is None:
        size = np.broadcast_shapes(np.shape(mean_data), np.shape(std_data))
    like = mean if isinstance(mean, Tensor) else std if isinstance(std, Tensor) else None
    np_dtype = dtype_of(like) if like is not None and dtype is None else _float_dtype(dtype)
    sample = _rng(generator).normal(mean_data, std_data, size=tuple(size)).astype(np_dtype)
    return _finish(sample, False, None if like is None else like.device)


def rand_like(input: Tensor, *, dtype: Any = None, generator: Generator | None = None) -> Tensor:
    shape, np_dtype = _like(input, dtype)
    return _finish(_rng(generator, input.device).random(shape).astype(np_dtype), False, input.device)


def randn_like(input: Tensor, *, dtype: Any = None, generator: Generator | None = None) -> Tensor:
    shape, np_dtype = _like(input, dtype)
    return _finish(_rng(generator, input.device).standard_normal(shape).astype(np_dtype), False, input.device)


def randint_like(input: Tensor, low: int, high: int | None = None, *, dtype: Any = None,
                 generator: Generator | None = None) -> Tensor:
    if high is None:
        low, high = 0, low
    shape, np_dtype = _like(input, dtype)
    return _finish(_rng(generator, input.device).integers(low, high, size=shape).astype(np_dtype), False,
                   input.device)


def bernoulli(input: Tensor, p: float | None = None, *,
              generator: Generator | None = None) -> Tensor:
    """1 with probability ``input`` (elementwise; or ``p`` for every element), else 0; the
    result has ``input``'s shape and dtype and no gradient.

    >>> chainrule.bernoulli(chainrule.full((4,), 0.5))
    """
    probabilities = _backend.to_numpy(input._data) if p is None else p
    sample = _rng(generator, input.device).random(input._data.shape) < probabilities
    return _finish(sample.astype(dtype_of(input)), False, input.device)


# ------------------------------------------------------------------ in-place random fills
def _fill_random(self: Tensor, sample: np.ndarray, op: str) -> Tensor:
    from . import inplace

    values = constant_like(sample, dtype_of(self), self)
    return inplace.assign(self, lambda old: inplace.overwrite(old, values), op)


def uniform_(self: Tensor, from_: float = 0.0, to: float = 1.0, *,
             generator: Generator | None = None) -> Tensor:
    """Fill with uniform samples in [from_, to).

    >>> w = chainrule.empty(3, 4).uniform_(-0.1, 0.1)
    """
    sample = _rng(generator, self.device).uniform(from_, to, size=self._data.shape)
    return _fill_random(self, sample, "uniform_")


def normal_(self: Tensor, mean: float = 0.0, std: float = 1.0, *,
            generator: Generator | None = None) -> Tensor:
    """Fill with normal samples of the given mean and std."""
    return _fill_random(self, _rng(generator, self.device).normal(mean, std, size=self._data.shape),
                        "normal_")


def bernoulli_(self: Tensor, p: float = 0.5, *, generator: Generator | None = None) -> Tensor:
    """Fill with 1 (probability ``p``) or 0."""
    p_data = _backend.to_numpy(p._data) if isinstance(p, Tensor) else p
    sample = _rng(generator, self.device).random(self._data.shape) < p_data
    return _fill_random(self, sample, "bernoulli_")


def exponential_(self: Tensor, lambd: float = 1.0, *,
                 generator: Generator | None = None) -> Tensor:
    """Fill with exponential samples of rate ``lambd``."""
    sample = _rng(generator, self.device).exponential(1.0 / lambd, size=self._data.shape)
    return _fill_random(self, sample, "exponential_")


def random_(self: Tensor, from_: int = 0, to: int | None = None, *,
            generator: Generator | None = None) -> Tensor:
    """Fill with integers in [from_, to); ``random_(n)`` draws from [0, n)."""
    if to is None:
        if from_ == 0:
            raise NotImplementedError("random_() without bounds is not supported; pass `to`")
        from_, to = 0, from_
    sample = _rng(generator, self.device).integers(from_, to, size=self._data.shape)
    return _fill_random(self, sample, "random_")
