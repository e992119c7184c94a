"""Flatten and Unflatten: reshape a range of dims into one, and back."""

from __future__ import annotations

from typing import Any

from ...ops._convert import normalize_axis
from ...tensor import Tensor
from .module import Module


class Flatten(Module):
    """Merge dims ``start_dim`` .. ``end_dim`` into one (by default all but the batch dim).

    >>> chainrule.nn.Flatten()(chainrule.zeros(2, 3, 4)).shape
    chainrule.Size([2, 12])
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input: Tensor) -> Tensor:
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dim ``dim`` into ``unflattened_size`` (which may hold one -1).

    >>> chainrule.nn.Unflatten(1, (3, 4))(chainrule.zeros(2, 12)).shape
    chainrule.Size([2, 3, 4])
    """

    def __init__(self, dim: int, unflattened_size: Any) -> None:
        super().__init__()
        if not isinstance(unflattened_size, (tuple, list)):
            raise TypeError(
                f"Unflatten: unflattened_size must be a tuple or list of ints, got "
                f"{type(unflattened_size).__name__}"
            )
        self.dim = dim
        self.unflattened_size = unflattened_size

    def forward(self, input: Tensor) -> Tensor:
        axis = normalize_axis(self.dim, input.ndim, "Unflatten")
        sizes = tuple(self.unflattened_size)
        known = 1
        for s in sizes:
            if s != -1:
                known *= s
        length = input.shape[axis]
        if (-1 not in sizes and known != length) or (known == 0 or length % known):
            raise RuntimeError(
                f"Unflatten: sizes {list(sizes)} don't multiply up to the size of dim {self.dim} "
                f"({length}) of input of shape {tuple(input.shape)}"
            )
        return input.reshape(tuple(input.shape[:axis]) + sizes + tuple(input.shape[axis + 1:]))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
