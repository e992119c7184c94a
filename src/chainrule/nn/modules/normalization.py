"""Normalisation layers: BatchNorm1d/2d/3d, LayerNorm, GroupNorm, InstanceNorm1d/2d/3d."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...autograd import grad_mode
from ...ops import creation
from ...tensor import Tensor, _wrap
from .. import functional as F
from .. import init
from ..parameter import Parameter
from .module import Module


def _affine_parameters(module: Module, shape: tuple, weight: bool, bias: bool, dtype: Any,
                       device: Any) -> None:
    """Register ``weight`` (ones) and ``bias`` (zeros), or None placeholders."""
    if weight:
        module.weight = Parameter(creation.ones(shape, dtype=dtype, device=device))
    else:
        module.register_parameter("weight", None)
    if bias:
        module.bias = Parameter(creation.zeros(shape, dtype=dtype, device=device))
    else:
        module.register_parameter("bias", None)


class _NormBase(Module):
    """Per-channel affine parameters and running statistics, as PyTorch's _NormBase."""

    _dims: tuple = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device: Any = None,
                 dtype: Any = None, *, bias: bool = True) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        _affine_parameters(self, (num_features,), affine, affine and bias, dtype, device)
        if track_running_stats:
            self.register_buffer("running_mean", creation.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", creation.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", _wrap(np.zeros((), dtype=np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, no batches seen."""
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            init.zeros_(self.num_batches_tracked)

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def _check_input_dim(self, input: Tensor) -> None:
        if input.ndim not in self._dims:
            expected = " or ".join(f"{d}D" for d in self._dims)
            raise ValueError(f"{type(self).__name__}: expected {expected} input (got "
                             f"{input.ndim}D input of shape {tuple(input.shape)})")

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if (self.training and self.track_running_stats and self.num_batches_tracked is not None
                and not grad_mode.is_recomputing()):
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                # momentum None: the running statistics are the plain average of all batches
                factor = 1.0 / float(self.num_batches_tracked.item())
        # batch statistics in training, and in evaluation when nothing was tracked
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        track = not self.training or self.track_running_stats
        return F.batch_norm(input, self.running_mean if track else None,
                            self.running_var if track else None, self.weight, self.bias,
                            use_batch, factor, self.eps)


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) inputs over the batch (and length) dims.

    Training uses the batch's mean and biased variance and updates ``running_mean`` and
    ``running_var`` (unbiased) with ``momentum`` (None: cumulative average); evaluation
    uses the running ones.

    >>> bn = chainrule.nn.BatchNorm1d(3)
    >>> list(bn.state_dict())
    ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']
    """

    _dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) inputs, per channel.

    >>> chainrule.nn.BatchNorm2d(16)(chainrule.randn(8, 16, 5, 5)).shape
    chainrule.Size([8, 16, 5, 5])
    """

    _dims = (4,)


class BatchNorm3d(_BatchNorm):
    """Batch normalisation of (N, C, D, H, W) inputs, per channel.

    >>> chainrule.nn.BatchNorm3d(4)(chainrule.randn(2, 4, 3, 3, 3)).shape
    chainrule.Size([2, 4, 3, 3, 3])
    """

    _dims = (5,)


class _InstanceNorm(_NormBase):
    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = False, track_running_stats: bool = False, device: Any = None,
                 dtype: Any = None, *, bias: bool = True) -> None:
        if track_running_stats:
            raise NotImplementedError(f"{type(self).__name__}: track_running_stats is not "
                                      f"supported")
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device,
                         dtype, bias=bias)

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        batched = input.ndim == self._dims[-1]
        if not batched:
            input = input.unsqueeze(0)
        out = F.instance_norm(input, weight=self.weight, bias=self.bias, eps=self.eps)
        return out if batched else out.squeeze(0)


class InstanceNorm1d(_InstanceNorm):
    """Normalise each channel of each (N, C, L) sample over its length.

    >>> chainrule.nn.InstanceNorm1d(3)(chainrule.randn(2, 3, 10)).shape
    chainrule.Size([2, 3, 10])
    """

    _dims = (2, 3)


class InstanceNorm2d(_InstanceNorm):
    """Normalise each channel of each (N, C, H, W) sample over its pixels.

    >>> chainrule.nn.InstanceNorm2d(3, affine=True)
    """

    _dims = (3, 4)


class InstanceNorm3d(_InstanceNorm):
    """Normalise each channel of each (N, C, D, H, W) sample over its voxels.

    >>> chainrule.nn.InstanceNorm3d(3)
    """

    _dims = (4, 5)


class LayerNorm(Module):
    """Normalise over the last dims given by ``normalized_shape``, then apply an elementwise
    scale (ones) and shift (zeros).

    >>> chainrule.nn.LayerNorm(5)
    LayerNorm((5,), eps=1e-05, elementwise_affine=True, bias=True)
    """

    def __init__(self, normalized_shape: Any, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        _affine_parameters(self, self.normalized_shape, elementwise_affine,
                           elementwise_affine and bias, dtype, device)

    def reset_parameters(self) -> None:
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, input: Tensor) -> Tensor:
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class GroupNorm(Module):
    """Normalise each of ``num_groups`` groups of channels of each sample, then apply a
    per-channel scale and shift.

    >>> chainrule.nn.GroupNorm(2, 4)
    GroupNorm(2, 4, eps=1e-05, affine=True, bias=True)
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 device: Any = None, dtype: Any = None, *, bias: bool = True) -> None:
        super().__init__()
        if num_channels % num_groups:
            raise ValueError("num_channels must be divisible by num_groups")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        _affine_parameters(self, (num_channels,), affine, affine and bias, dtype, device)

    def reset_parameters(self) -> None:
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, input: Tensor) -> Tensor:
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


