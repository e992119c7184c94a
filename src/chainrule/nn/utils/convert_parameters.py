"""Between a model's parameters and one flat vector (for second-order methods, line searches)."""

from __future__ import annotations

from collections.abc import Iterable

from ...ops.shape import cat
from ...tensor import Tensor


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """The parameters flattened and concatenated into one vector (differentiable).

    >>> vec = chainrule.nn.utils.parameters_to_vector(model.parameters())
    """
    return cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Point each parameter's data at its slice of ``vec`` (the parameters then share
    ``vec``'s memory, as in PyTorch). ``vec`` must have exactly as many elements as the
    parameters together; nothing is changed otherwise.

    >>> chainrule.nn.utils.vector_to_parameters(vec * 0.5, model.parameters())
    """
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected chainrule.Tensor, but got: {type(vec).__name__}")
    parameters = list(parameters)
    total = sum(p.numel() for p in parameters)
    if vec.ndim != 1 or vec.numel() != total:
        raise ValueError(
            f"vector_to_parameters: expected a 1-D vector of {total} elements (the "
            f"{len(parameters)} parameters' sizes added up), got shape {tuple(vec.shape)}"
        )
    pointer = 0
    for p in parameters:
        n = p.numel()
        p.data = vec[pointer:pointer + n].reshape(p.shape).data
        pointer += n
