"""Gradient clipping: scale all gradients by one factor (by norm) or clamp each entry (by value)."""

from __future__ import annotations

import math
import types
import warnings
from collections.abc import Iterable

import numpy as np

from ... import _backend
from ...ops import kernels
from ...tensor import Tensor, _wrap


def _grads(parameters: Tensor | Iterable[Tensor]) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    elif isinstance(parameters, types.GeneratorType):
        parameters = list(parameters)
        if not parameters:
            warnings.warn("`parameters` is an empty generator, no gradient clipping will occur.",
                          stacklevel=3)
    return [p.grad for p in parameters if p.grad is not None]


def _vector_norm(array: np.ndarray, norm_type: float) -> np.ndarray:
    """||array||_p over all entries: max |x| for inf, min |x| for -inf, the count of
    non-zeros for 0, else (sum |x|^p)^(1/p)."""
    flat = array.reshape(-1)
    if flat.size == 0:
        if norm_type < 0:
            raise RuntimeError(
                f"clip_grad_norm_: the norm of order {norm_type} of an empty gradient is undefined"
            )
        return np.zeros((), dtype=array.dtype)
    return np.asarray(np.linalg.norm(flat, ord=norm_type), dtype=array.dtype)


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach: bool | None = None) -> Tensor:
    """Scale the gradients in place so that their joint norm is at most ``max_norm``.

    The total norm is the ``norm_type`` norm of the vector of the gradients' norms (as if
    all gradients were one vector); each gradient is multiplied by
    ``min(1, max_norm / (total_norm + 1e-6))``. Returns the total norm before clipping.

    >>> loss.backward()
    >>> total = chainrule.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    >>> opt.step()
    """
    grads = _grads(parameters)
    norm_type = float(norm_type)
    if not grads:
        return _wrap(np.zeros((), dtype=np.float32))
    # the norms on the host (one number per gradient), the scaling on each gradient's device
    norms = [_vector_norm(_backend.to_numpy(g._data), norm_type) for g in grads]
    total = _vector_norm(np.array(norms, dtype=np.result_type(*norms)), norm_type)
    if error_if_nonfinite and not math.isfinite(float(total)):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so "
            f"it cannot be clipped. To disable this error and scale the gradients by the "
            f"non-finite norm anyway, set `error_if_nonfinite=False`"
        )
    with np.errstate(invalid="ignore"):  # an infinite norm gives NaN gradients, silently as PyTorch
        clip_coef = np.minimum(float(max_norm) / (total + 1e-6), 1.0)
        for g in grads:
            if type(g._data) is np.ndarray:
                np.multiply(g._data, clip_coef.astype(g._data.dtype), out=g._data)
            else:
                g._data *= float(clip_coef)
            g._version[0] += 1
    return _wrap(total)


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float,
                     foreach: bool | None = None) -> None:
    """Clamp every gradient entry to ``[-clip_value, clip_value]`` in place.

    >>> chainrule.nn.utils.clip_grad_value_(model.parameters(), clip_value=0.5)
    """
    clip_value = float(clip_value)
    for g in _grads(parameters):
        xp = _backend.namespace_of(g._data)
        g._data = kernels.into(xp, "clip", g._data, -clip_value, clip_value, out=g._data)
        g._version[0] += 1
