"""Pooling layers: MaxPool1d/2d, AvgPool1d/2d, AdaptiveAvgPool1d/2d (PyTorch's arguments
and repr; the work is in nn/conv_functional.py)."""

from __future__ import annotations

from typing import Any

from ...tensor import Tensor
from .. import conv_functional as F
from .module import Module


class _MaxPoolNd(Module):
    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                 return_indices: bool = False, ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool2d(_MaxPoolNd):
    """Maximum over each window of (N, C, H, W); the gradient goes to the first maximum.

    >>> chainrule.nn.MaxPool2d(2)(chainrule.ones(1, 3, 8, 8)).shape
    chainrule.Size([1, 3, 4, 4])
    """

    def forward(self, input: Tensor) -> Any:
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)


class MaxPool1d(_MaxPoolNd):
    """Maximum over each window of (N, C, L).

    >>> chainrule.nn.MaxPool1d(3, stride=2)(chainrule.ones(1, 3, 9)).shape
    chainrule.Size([1, 3, 4])
    """

    def forward(self, input: Tensor) -> Any:
        return F.max_pool1d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)


class AvgPool2d(Module):
    """Mean over each window of (N, C, H, W).

    >>> chainrule.nn.AvgPool2d(2)(chainrule.ones(1, 3, 8, 8)).shape
    chainrule.Size([1, 3, 4, 4])
    """

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input: Tensor) -> Tensor:
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(Module):
    """Mean over each window of (N, C, L).

    >>> chainrule.nn.AvgPool1d(2)(chainrule.ones(1, 3, 8)).shape
    chainrule.Size([1, 3, 4])
    """

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True) -> None:
        super().__init__()
        # stored as 1-tuples, as PyTorch's (and shown so in the repr)
        self.kernel_size = _one(kernel_size)
        self.stride = _one(stride if stride is not None else kernel_size)
        self.padding = _one(padding)
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def forward(self, input: Tensor) -> Tensor:
        return F.avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


def _one(value: Any) -> tuple:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


class AdaptiveAvgPool2d(Module):
    """Average pooling of (N, C, H, W) to a fixed (oh, ow); None keeps that input size.

    >>> chainrule.nn.AdaptiveAvgPool2d((1, 1))(chainrule.ones(2, 8, 7, 7)).shape
    chainrule.Size([2, 8, 1, 1])
    """

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, input: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(AdaptiveAvgPool2d):
    """Average pooling of (N, C, L) to a fixed length.

    >>> chainrule.nn.AdaptiveAvgPool1d(4)(chainrule.ones(2, 8, 10)).shape
    chainrule.Size([2, 8, 4])
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.adaptive_avg_pool1d(input, self.output_size)
