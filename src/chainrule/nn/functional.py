"""``chainrule.nn.functional``: activations, layers and losses with PyTorch's signatures.

Everything here is composed from differentiable chainrule ops (so it differentiates to
any order), except cross-entropy over class indices and binary cross-entropy, which run
as fused primitives (``_loss_kernels``). Non-smooth points follow PyTorch and are noted
where they are chosen.
"""

from __future__ import annotations

import math as _math
import warnings
from typing import Any

import numpy as np

from .. import _backend, _dtype
from ..autograd import grad_mode
from ..ops import activation, creation, kernels, math, nn_kernels
from ..ops.creation import _rng
from ..ops.math import linear, sigmoid, tanh
from ..ops.math import log_softmax as _log_softmax
from ..ops.math import softmax as _softmax
from ..ops.shape import broadcast_tensors, one_hot, pad
from ..tensor import Tensor, _wrap
from . import _loss_kernels

__all__ = [
    # layers
    "linear", "bilinear", "dropout", "dropout1d", "dropout2d", "dropout3d", "embedding",
    "one_hot", "pad", "batch_norm", "layer_norm", "group_norm", "instance_norm", "normalize",
    "cosine_similarity", "pairwise_distance",
    # activations
    "relu", "relu_", "relu6", "elu", "selu", "celu", "leaky_relu", "prelu", "gelu", "silu",
    "mish", "softplus", "softsign", "sigmoid", "tanh", "hardtanh", "hardsigmoid", "hardswish",
    "logsigmoid", "tanhshrink", "softshrink", "hardshrink", "threshold", "glu", "softmax",
    "softmin", "log_softmax",
    # losses
    "l1_loss", "mse_loss", "huber_loss", "smooth_l1_loss", "binary_cross_entropy",
    "binary_cross_entropy_with_logits", "cross_entropy", "nll_loss", "kl_div",
    "cosine_embedding_loss", "margin_ranking_loss", "soft_margin_loss", "hinge_embedding_loss",
    "poisson_nll_loss", "gaussian_nll_loss", "triplet_margin_loss",
]


def _fused(input: Tensor) -> bool:
    """Whether an activation runs as its one primitive (ops/activation.py): float16, 32 and
    64 tensors. bfloat16 keeps the composition, whose ops with a Python float compute in
    float32 and round back, as PyTorch's do."""
    dtype = input._data.dtype
    return _dtype.is_floating(dtype) and dtype != _dtype.bfloat16.np


def _inplace(input: Tensor, result: Tensor, inplace: bool) -> Tensor:
    """``inplace=True`` writes ``result`` into ``input`` (recorded like any in-place op)."""
    return input.copy_(result) if inplace else result


# ====================================================================== layers


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``y_k = x1^T A_k x2 + b_k`` over the last dims, for weight A of shape (out, in1, in2).

    >>> F.bilinear(x1, x2, w).shape   # (N, in1), (N, in2), (out, in1, in2) -> (N, out)
    """
    if weight.ndim != 3 or input1.shape[-1] != weight.shape[1] or input2.shape[-1] != weight.shape[2]:
        raise RuntimeError(
            f"bilinear(): inputs of shapes {tuple(input1.shape)} and {tuple(input2.shape)} do "
            f"not match weight {tuple(weight.shape)} (expected (out, in1, in2))"
        )
    # sum_ij x1_i A_kij x2_j as two products, (x2 A^T) then x1: NumPy's einsum runs the
    # three-operand contraction in its own loops (28 against 1.2 ms for 256 x 64 inputs and
    # 32 outputs; benchmarks/NOTES.md §39)
    out_features, in1, in2 = weight.shape
    mixed = math.matmul(input2, weight.reshape(out_features * in1, in2).mT)
    mixed = mixed.reshape(*mixed.shape[:-1], out_features, in1)
    out = math.matmul(mixed, input1.unsqueeze(-1)).squeeze(-1)
    return out if bias is None else out + bias


def _check_p(p: float, op: str) -> None:
    if p < 0.0 or p > 1.0:
        raise ValueError(f"{op}: dropout probability has to be between 0 and 1, but got {p}")


def _dropout_mask(input: Tensor, p: float, mask_shape: tuple) -> Tensor:
    # keep with probability 1 - p and scale the kept by 1/(1 - p): E[output] = input
    keep = _rng(None, input.device).random(mask_shape) >= p
    scale = 0.0 if p == 1 else 1.0 / (1.0 - p)
    return _wrap(_backend.asarray(keep * scale, _backend.np_dtype(input._data), input._data))


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p) (training only).
    Draws from chainrule's generator, so ``chainrule.manual_seed`` makes it reproducible.

    >>> F.dropout(x, 0.2, training=model.training)
    """
    _check_p(p, "dropout")
    if not training or p == 0:
        return input
    return _inplace(input, input * _dropout_mask(input, p, tuple(input.shape)), inplace)


def _feature_dropout(input: Tensor, p: float, training: bool, inplace: bool, spatial: int,
                     op: str) -> Tensor:
    """Dropout of whole channels: one draw per (sample, channel), shared over ``spatial``
    trailing dims; an unbatched input (C, *spatial) has one draw per channel."""
    _check_p(p, op)
    if input.ndim not in (spatial + 1, spatial + 2):
        raise RuntimeError(
            f"{op}: expected {spatial + 1}D or {spatial + 2}D input, got {input.ndim}D input of "
            f"shape {tuple(input.shape)}"
        )
    if not training or p == 0:
        return input
    lead = tuple(input.shape[: input.ndim - spatial])
    mask = _dropout_mask(input, p, lead + (1,) * spatial)
    return _inplace(input, input * mask, inplace)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, L) or (C, L) inputs with probability ``p``.

    >>> F.dropout1d(x, 0.2, training=True)   # x: (N, C, L)
    """
    return _feature_dropout(input, p, training, inplace, 1, "dropout1d")


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, H, W) or (C, H, W) inputs with probability ``p``.

    >>> F.dropout2d(x, 0.2, training=True)   # x: (N, C, H, W)
    """
    return _feature_dropout(input, p, training, inplace, 2, "dropout2d")


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, D, H, W) or (C, D, H, W) inputs with probability ``p``.

    >>> F.dropout3d(x, 0.2, training=True)   # x: (N, C, D, H, W)
    """
    return _feature_dropout(input, p, training, inplace, 3, "dropout3d")


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None,
              max_norm: float | None = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of ``weight`` picked by integer ``input``; the row at ``padding_idx`` gets no
    gradient (as PyTorch's embedding backward).

    >>> F.embedding(chainrule.tensor([[0, 2]]), w).shape   # w: (num, dim) -> (1, 2, dim)
    """
    if _backend.np_dtype(input._data).kind not in "iu":
        raise RuntimeError(
            f"embedding(): expected an integer (Long or Int) index tensor, got {input.dtype}"
        )
    num = weight.shape[0]
    indices = _backend.to_numpy(input._data)
    if input.numel() and (int(indices.min()) < 0 or int(indices.max()) >= num):
        raise IndexError(
            f"embedding(): index out of range in self (indices in "
            f"[{int(indices.min())}, {int(indices.max())}], {num} embeddings)"
        )
    if max_norm is not None:
        _renorm_rows(weight, input, max_norm, norm_type)
    if scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding(): scale_grad_by_freq and sparse are not supported")
    out = weight[input]
    if padding_idx is not None:
        if padding_idx < 0:
            padding_idx += num
        hit = _wrap(np.expand_dims(input._data == padding_idx, -1))
        if hit._data.any():
            # same values, but the padding rows reach weight through a detached copy
            out = math.where(hit, out.detach(), out)
    return out


def _renorm_rows(weight: Tensor, input: Tensor, max_norm: float, norm_type: float) -> None:
    """Rescale, in place and unrecorded, the looked-up rows whose norm exceeds max_norm."""
    rows = np.unique(input._data)
    data = weight._data
    norms = np.linalg.norm(data[rows], ord=norm_type, axis=1)
    over = norms > max_norm
    data[rows[over]] *= (max_norm / (norms[over] + 1e-7))[:, None]
    weight._version[0] += 1


def _channel_shape(input: Tensor) -> tuple:
    """The shape that broadcasts a per-channel (dim 1) vector against ``input``."""
    return (1, input.shape[1]) + (1,) * (input.ndim - 2)


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise each channel (dim 1) by its batch statistics (training) or by the running
    ones (evaluation), then scale and shift.

    In training the running statistics are updated in place:
    ``running = (1 - momentum) running + momentum batch``, with the unbiased batch variance,
    as PyTorch.

    >>> F.batch_norm(x, rm, rv, training=True)
    """
    if input.ndim < 2:
        raise ValueError(f"batch_norm: expected at least 2D input (N, C, ...), got {input.ndim}D")
    channels = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if t is not None and t.numel() != channels:
            raise RuntimeError(
                f"batch_norm: input of shape {tuple(input.shape)} has {channels} channels at dim "
                f"1 but {name} has {t.numel()} elements: build the layer with num_features="
                f"{channels}, or put the channels at dim 1 of the input"
            )
    axes = (0,) + tuple(range(2, input.ndim))
    count = input.numel() // input.shape[1]
    if training:
        if count <= 1:
            raise ValueError(
                f"Expected more than 1 value per channel when training, got input size "
                f"{input.shape}"
            )
        mean = input.mean(axes, keepdim=True)
        centered = input - mean
        var = (centered * centered).mean(axes, keepdim=True)
        # a checkpointed forward run again for backward has already updated them once
        if (running_mean is not None or running_var is not None) and not grad_mode.is_recomputing():
            with grad_mode.no_grad():
                if running_mean is not None:
                    running_mean.mul_(1 - momentum).add_(mean.detach().reshape(-1) * momentum)
                if running_var is not None:
                    unbiased = var.detach().reshape(-1) * (count / (count - 1))
                    running_var.mul_(1 - momentum).add_(unbiased * momentum)
    else:
        if running_mean is None or running_var is None:
            raise RuntimeError(
                "batch_norm: running_mean and running_var must be given when training=False"
            )
        shape = _channel_shape(input)
        centered = input - running_mean.reshape(shape)
        var = running_var.reshape(shape)
    out = centered * math.rsqrt(var + eps)
    return _affine(out, weight, bias, _channel_shape(input))


def _affine(out: Tensor, weight: Tensor | None, bias: Tensor | None, shape: tuple) -> Tensor:
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def instance_norm(input: Tensor, running_mean: Tensor | None = None,
                  running_var: Tensor | None = None, weight: Tensor | None = None,
                  bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise each (sample, channel) over its spatial dims (biased variance).

    >>> F.instance_norm(x)   # x: (N, C, L)
    """
    if running_mean is not None or running_var is not None or not use_input_stats:
        raise NotImplementedError("instance_norm(): running statistics are not supported")
    axes = tuple(range(2, input.ndim))
    mean = input.mean(axes, keepdim=True)
    centered = input - mean
    var = (centered * centered).mean(axes, keepdim=True)
    return _affine(centered * math.rsqrt(var + eps), weight, bias, _channel_shape(input))


def layer_norm(input: Tensor, normalized_shape: Any, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise over the last ``len(normalized_shape)`` dims (biased variance), then
    scale and shift elementwise.

    >>> F.layer_norm(x, (x.shape[-1],))
    """
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(input.shape[input.ndim - len(shape):]) != shape or len(shape) > input.ndim:
        raise RuntimeError(
            f"layer_norm: given normalized_shape={list(shape)}, expected input with shape "
            f"[*, {', '.join(map(str, shape))}], but got input of size {list(input.shape)}"
        )
    axes = tuple(range(input.ndim - len(shape), input.ndim))
    if input.is_floating_point() and all(
            p is None or (p.dtype == input.dtype and tuple(p.shape) == shape)
            for p in (weight, bias)):
        # one fused primitive (ops/nn_kernels.py); a missing weight or bias is the identity's
        # ones or zeros, whose gradients are not wanted and so not computed
        if weight is None:
            weight = creation.ones(*shape, dtype=input.dtype, device=input.device)
        if bias is None:
            bias = creation.zeros(*shape, dtype=input.dtype, device=input.device)
        out = nn_kernels.layer_norm(input, weight, bias, axes=axes, eps=eps)
        return out if kernels.is_contiguous(_backend.namespace_of(out._data), out._data) else out.clone()
    mean = input.mean(axes, keepdim=True)
    centered = input - mean
    var = (centered * centered).mean(axes, keepdim=True)
    out = centered * math.rsqrt(var + eps)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    # contiguous, as PyTorch's (elementwise results keep a transposed input's order), so
    # that a later view shares memory where PyTorch's does
    return out if kernels.is_contiguous(_backend.namespace_of(out._data), out._data) else out.clone()


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise each group of channels of each sample (biased variance), then apply the
    per-channel scale and shift.

    >>> F.group_norm(x, 2)   # x: (N, C, ...) with C divisible by 2
    """
    if input.ndim < 2 or input.shape[1] % num_groups:
        raise RuntimeError(
            f"group_norm: expected input (N, C, ...) with C divisible by num_groups="
            f"{num_groups}, got shape {tuple(input.shape)}"
        )
    n = input.shape[0]
    grouped = input.reshape(n, num_groups, -1)
    if input.is_floating_point():
        # the fused layer_norm primitive over each group, its affine the identity: one node
        # and a few passes instead of six ops (forward + backward 15.2 -> 11.2 ms, NOTES §42)
        size = grouped.shape[-1]
        identity = (creation.ones(size, dtype=input.dtype, device=input.device),
                    creation.zeros(size, dtype=input.dtype, device=input.device))
        out = nn_kernels.layer_norm(grouped, *identity, axes=(2,), eps=eps).reshape(input.shape)
    else:
        mean = grouped.mean(2, keepdim=True)
        centered = grouped - mean
        var = (centered * centered).mean(2, keepdim=True)
        out = (centered * math.rsqrt(var + eps)).reshape(input.shape)
    return _affine(out, weight, bias, _channel_shape(input))


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12,
              out: Any = None) -> Tensor:
    """``x / max(||x||_p, eps)`` along ``dim``.

    >>> F.normalize(chainrule.tensor([[3.0, 4.0]]))
    tensor([[0.6000, 0.8000]])
    """
    norm = input.norm(p, dim, keepdim=True).clamp(min=eps)
    return input / norm


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """``x1 . x2 / (max(||x1||, eps) max(||x2||, eps))`` along ``dim`` (PyTorch's clamping
    of each norm).

    >>> F.cosine_similarity(a, b, dim=1)
    """
    x1, x2 = broadcast_tensors(x1, x2)  # PyTorch broadcasts before taking the norms
    n1 = x1.norm(2, dim, keepdim=True).clamp(min=eps)
    n2 = x2.norm(2, dim, keepdim=True).clamp(min=eps)
    # PyTorch's formulation (each side normalised, then the dot): the same rounding, and
    # the saved tensors are the normalised ones, so changing x1 or x2 in place afterwards
    # leaves the backward valid where theirs does not need them
    return ((x1 / n1) * (x2 / n2)).sum(dim)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6,
                      keepdim: bool = False) -> Tensor:
    """``||x1 - x2 + eps||_p`` along the last dim.

    >>> F.pairwise_distance(a, b, p=1.0)
    """
    return (x1 - x2 + eps).norm(p, -1, keepdim=keepdim)


# ====================================================================== activations


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0); gradient 0 at 0, as PyTorch.

    >>> F.relu(chainrule.tensor([-1.0, 2.0]))
    tensor([0., 2.])
    """
    return _inplace(input, math.relu(input), inplace)


def relu_(input: Tensor) -> Tensor:
    """relu in place.

    >>> F.relu_(x)   # x itself, rectified
    """
    return relu(input, inplace=True)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:
    """x clipped to [min_val, max_val]; gradient 1 strictly inside, 0 at and beyond the
    bounds (PyTorch's hardtanh backward).

    >>> F.hardtanh(chainrule.tensor([-3.0, 0.5]))
    tensor([-1.0000,  0.5000])
    """
    if min_val > max_val:
        raise ValueError("hardtanh: min_val cannot be greater than max_val")
    if _fused(input):
        out = activation.hardtanh(input, min_val=min_val, max_val=max_val)
    else:
        out = math.where(input <= min_val, min_val, math.where(input >= max_val, max_val, input))
    return _inplace(input, out, inplace)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6), as hardtanh(x, 0, 6).

    >>> F.relu6(chainrule.tensor([-1.0, 8.0]))
    tensor([0., 6.])
    """
    return hardtanh(input, 0.0, 6.0, inplace)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x for x > 0, slope * x otherwise (gradient slope at 0, as PyTorch).

    >>> F.leaky_relu(chainrule.tensor([-1.0]), 0.1)
    tensor([-0.1000])
    """
    if _fused(input):
        return _inplace(input, activation.leaky_relu(input, negative_slope=negative_slope),
                        inplace)
    return _inplace(input, math.where(input > 0, input, input * negative_slope), inplace)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """Leaky ReLU with a learned slope per channel (dim 1), or one shared slope.

    >>> F.prelu(x, chainrule.full((1,), 0.25))
    """
    if weight.numel() != 1:
        if input.ndim < 2 or input.shape[1] != weight.numel():
            raise RuntimeError(
                f"prelu: mismatch of parameter numbers and input channel size: weight has "
                f"{weight.numel()} elements, input shape {tuple(input.shape)} (channels at dim 1)"
            )
        weight = weight.reshape(_channel_shape(input))
    elif input.ndim:
        weight = weight.reshape((1,) * input.ndim)
    else:
        weight = weight.reshape(())
    return math.where(input > 0, input, input * weight)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, alpha (e^x - 1) otherwise.

    >>> F.elu(x, alpha=0.5)
    """
    return _inplace(input, _elu(input, alpha, 1.0, 1.0), inplace)


def _elu(input: Tensor, alpha: float, scale: float, input_scale: float) -> Tensor:
    """PyTorch's elu kernel: scale x for x > 0, scale alpha (e^(input_scale x) - 1) else."""
    if _fused(input):
        return activation.elu(input, alpha=alpha, scale=scale, input_scale=input_scale)
    # expm1 of min(x, 0): no overflow in the branch not taken, so no inf * 0 in the gradient
    negative = math.expm1(input.clamp(max=0) * input_scale) * (alpha * scale)
    return math.where(input > 0, input * scale, negative)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """scale * elu(x, alpha) with the self-normalising constants.

    >>> F.selu(x)
    """
    return _inplace(input, _elu(input, _SELU_ALPHA, _SELU_SCALE, 1.0), inplace)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """max(0, x) + min(0, alpha (e^(x/alpha) - 1)).

    >>> F.celu(x, alpha=2.0)
    """
    if _fused(input):
        out = activation.celu(input, alpha=alpha, scale=1.0, input_scale=1.0 / alpha)
    else:
        negative = math.expm1(input.clamp(max=0) / alpha) * alpha
        out = math.where(input > 0, input, negative)
    return _inplace(input, out, inplace)


_SQRT_HALF = 1.0 / _math.sqrt(2.0)
_SQRT_2_OVER_PI = _math.sqrt(2.0 / _math.pi)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x Phi(x), Phi the standard normal CDF: exact via erf, or PyTorch's tanh
    approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).

    >>> F.gelu(x, approximate="tanh")
    """
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got '{approximate}'")
    if _fused(input):
        return activation.gelu(input, approximate=approximate)
    if approximate == "none":
        return input * 0.5 * (1 + math.erf(input * _SQRT_HALF))
    if approximate == "tanh":
        inner = (input + input * input * input * 0.044715) * _SQRT_2_OVER_PI
    return input * 0.5 * (1 + tanh(inner))


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x sigmoid(x) (Swish).

    >>> F.silu(chainrule.tensor([0.0]))
    tensor([0.])
    """
    if _fused(input):
        return _inplace(input, activation.silu(input), inplace)
    return _inplace(input, input * sigmoid(input), inplace)


def _softplus_unit(input: Tensor) -> Tensor:
    """log(1 + e^x) = x + log1p(e^-x) for x > 0, log1p(e^x) otherwise.

    Each branch sees its input clamped to its own side of 0, so no exponential overflows
    and the branch not taken contributes a zero (not NaN) gradient; at x = 0 the second
    branch gives the exact slope 1/2 (clamp passes the gradient at its bound).
    """
    positive = input.clamp(min=0)
    negative = input.clamp(max=0)
    return math.where(input > 0, positive + math.log1p(math.exp(-positive)),
                      math.log1p(math.exp(negative)))


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """(1/beta) log(1 + e^(beta x)), and x itself where beta x > threshold (PyTorch's
    switch to the linear function for large inputs).

    >>> F.softplus(x, beta=2.0)
    """
    if _fused(input):
        return activation.softplus(input, beta=beta, threshold=threshold)
    scaled = input * beta if beta != 1 else input
    smooth = _softplus_unit(scaled)
    if beta != 1:
        smooth = smooth / beta
    return math.where(scaled > threshold, input, smooth)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x tanh(softplus(x)).

    >>> F.mish(x)
    """
    return _inplace(input, input * tanh(softplus(input)), inplace)


def logsigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)) = -softplus(-x), stable for large |x|.

    >>> F.logsigmoid(chainrule.tensor([0.0]))
    tensor([-0.6931])
    """
    if _fused(input):
        return activation.log_sigmoid(input)
    return -_softplus_unit(-input)


def softsign(input: Tensor) -> Tensor:
    """x / (1 + |x|).

    >>> F.softsign(chainrule.tensor([1.0]))
    tensor([0.5000])
    """
    return input / (input.abs() + 1)


def tanhshrink(input: Tensor) -> Tensor:
    """x - tanh(x).

    >>> F.tanhshrink(x)
    """
    return input - tanh(input)


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x - lambd above lambd, x + lambd below -lambd, 0 between.

    >>> F.softshrink(chainrule.tensor([1.0, 0.2]))
    tensor([0.5000, 0.0000])
    """
    return math.where(input > lambd, input - lambd,
                      math.where(input < -lambd, input + lambd, input * 0))


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x where |x| > lambd, 0 elsewhere.

    >>> F.hardshrink(chainrule.tensor([1.0, 0.2]))
    tensor([1., 0.])
    """
    return math.where((input > lambd) | (input < -lambd), input, input * 0)


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """x where x > threshold, ``value`` elsewhere.

    >>> F.threshold(chainrule.tensor([0.5, 2.0]), 1.0, -1.0)
    tensor([-1.,  2.])
    """
    return _inplace(input, math.where(input > threshold, input, value), inplace)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """relu6(x + 3) / 6; gradient 1/6 strictly inside (-3, 3), as PyTorch.

    >>> F.hardsigmoid(chainrule.tensor([0.0]))
    tensor([0.5000])
    """
    if _fused(input):
        return _inplace(input, activation.hardsigmoid(input), inplace)
    return _inplace(input, relu6(input + 3) / 6, inplace)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """x relu6(x + 3) / 6.

    Written piecewise so that the gradient is PyTorch's at every point: 0 up to -3
    inclusive, x/3 + 1/2 strictly inside (-3, 3), 1 from 3 on.

    >>> F.hardswish(chainrule.tensor([1.0]))
    tensor([0.6667])
    """
    if _fused(input):
        return _inplace(input, activation.hardswish(input), inplace)
    middle = input * (input + 3) / 6
    out = math.where(input <= -3, input * 0, math.where(input < 3, middle, input))
    return _inplace(input, out, inplace)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """a * sigmoid(b) for the two halves a, b of ``input`` along ``dim``.

    >>> F.glu(chainrule.zeros(2, 6)).shape
    chainrule.Size([2, 3])
    """
    if input.ndim == 0 or input.shape[dim] % 2:
        raise RuntimeError(
            f"glu: halving dimension must be even, but dimension {dim} of shape "
            f"{tuple(input.shape)} is not"
        )
    a, b = input.chunk(2, dim)
    return a * sigmoid(b)


def _softmax_dim(name: str, ndim: int) -> int:
    warnings.warn(
        f"Implicit dimension choice for {name} has been deprecated. Change the call to "
        f"include dim=X as an argument.",
        stacklevel=3,
    )
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
            dtype: Any = None) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim`` (stable: the max is subtracted first).

    >>> F.softmax(logits, dim=-1)
    """
    if dim is None:
        dim = _softmax_dim("softmax", input.ndim)
    return _softmax(input, dim, dtype)


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
            dtype: Any = None) -> Tensor:
    """softmax(-x) along ``dim``.

    >>> F.softmin(distances, dim=1)
    """
    if dim is None:
        dim = _softmax_dim("softmin", input.ndim)
    return _softmax(-input, dim, dtype)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
                dtype: Any = None) -> Tensor:
    """x - logsumexp(x) along ``dim``, stable for large inputs.

    >>> F.log_softmax(logits, dim=1)
    """
    if dim is None:
        dim = _softmax_dim("log_softmax", input.ndim)
    return _log_softmax(input, dim, dtype)


# ====================================================================== losses


def _legacy_reduction(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    """PyTorch's deprecated ``size_average``/``reduce`` pair, mapped to ``reduction``."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{reduction} is not a valid value for reduction ('none', 'mean', 'sum')")


def _check_reduction(reduction: str, op: str, extra: tuple = ()) -> None:
    if reduction not in ("none", "mean", "sum") + extra:
        raise ValueError(
            f"{op}: {reduction} is not a valid value for reduction (expected one of "
            f"{', '.join(repr(r) for r in ('none', 'mean', 'sum') + extra)})"
        )


def _warn_size(input: Tensor, target: Tensor, op: str) -> None:
    if tuple(target.shape) != tuple(input.shape):
        try:
            np.broadcast_shapes(tuple(input.shape), tuple(target.shape))
        except ValueError:
            raise RuntimeError(
                f"{op}: input of shape {tuple(input.shape)} and target of shape "
                f"{tuple(target.shape)} cannot be broadcast together; give the target the "
                f"input's shape"
            ) from None
        warnings.warn(
            f"{op}: using a target size ({target.shape}) that is different to the input size "
            f"({input.shape}). This will likely lead to incorrect results due to broadcasting. "
            f"Please ensure they have the same size.",
            stacklevel=3,
        )


def _pointwise_loss(loss: Tensor, input: Tensor, weight: Tensor | None, reduction: str,
                    weighted_mean: bool, op: str) -> Tensor:
    """Reduce an elementwise loss; with ``weight`` the mean is sum(w l) / sum(w) for mse/l1
    and mean(w l) for huber (``weighted_mean=False``), as PyTorch."""
    _check_reduction(reduction, op)
    if weight is None:
        return _reduce(loss, reduction)
    if tuple(weight.shape) != tuple(input.shape):
        raise ValueError(f"{op}: Weights and input must have the same size.")
    loss = loss * weight
    if reduction == "mean" and weighted_mean:
        return loss.sum() / weight.sum()
    return _reduce(loss, reduction)


def mse_loss(input: Tensor, target: Tensor, size_average: bool | None = None,
             reduce: bool | None = None, reduction: str = "mean",
             weight: Tensor | None = None) -> Tensor:
    """Mean squared error (x - y)^2.

    >>> F.mse_loss(prediction, target)
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _warn_size(input, target, "mse_loss")
    diff = input - target
    return _pointwise_loss(diff * diff, input, weight, reduction, True, "mse_loss")


def l1_loss(input: Tensor, target: Tensor, size_average: bool | None = None,
            reduce: bool | None = None, reduction: str = "mean",
            weight: Tensor | None = None) -> Tensor:
    """Mean absolute error |x - y| (gradient 0 where x = y, as PyTorch).

    >>> F.l1_loss(prediction, target)
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _warn_size(input, target, "l1_loss")
    return _pointwise_loss((input - target).abs(), input, weight, reduction, True, "l1_loss")


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,
               weight: Tensor | None = None) -> Tensor:
    """0.5 d^2 where |d| < delta, delta (|d| - 0.5 delta) elsewhere, d = x - y.

    >>> F.huber_loss(prediction, target, delta=0.5)
    """
    _warn_size(input, target, "huber_loss")
    diff = input - target
    size = diff.abs()
    loss = math.where(size < delta, diff * diff * 0.5, (size - 0.5 * delta) * delta)
    return _pointwise_loss(loss, input, weight, reduction, False, "huber_loss")


def smooth_l1_loss(input: Tensor, target: Tensor, size_average: bool | None = None,
                   reduce: bool | None = None, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere (beta = 0: L1).

    >>> F.smooth_l1_loss(prediction, target, beta=0.5)
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _warn_size(input, target, "smooth_l1_loss")
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    diff = input - target
    size = diff.abs()
    if beta == 0:
        return _pointwise_loss(size, input, None, reduction, True, "smooth_l1_loss")
    loss = math.where(size < beta, diff * diff * (0.5 / beta), size - 0.5 * beta)
    return _pointwise_loss(loss, input, None, reduction, True, "smooth_l1_loss")


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         size_average: bool | None = None, reduce: bool | None = None,
                         reduction: str = "mean") -> Tensor:
    """-w (y log x + (1 - y) log(1 - x)) for probabilities x, each log clamped at -100 as
    PyTorch (so the loss stays finite at x = 0 or 1).

    >>> F.binary_cross_entropy(chainrule.sigmoid(logits), labels)
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "binary_cross_entropy")
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(
            f"binary_cross_entropy: Using a target size ({target.shape}) that is different to "
            f"the input size ({input.shape}) is deprecated. Please ensure they have the same "
            f"size."
        )
    data = _backend.to_numpy(input._data)
    if data.size and (data.min() < 0 or data.max() > 1):
        raise RuntimeError(
            "binary_cross_entropy: all elements of input should be between 0 and 1 (pass "
            "logits to binary_cross_entropy_with_logits instead)"
        )
    target = target.to(input.dtype)
    w = None
    if weight is not None:
        w = np.broadcast_to(weight.to(input.dtype)._data, data.shape)
    loss = _loss_kernels.binary_cross_entropy(input, target, weight=w)
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                     size_average: bool | None = None,
                                     reduce: bool | None = None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """Binary cross-entropy of sigmoid(x), computed stably from the logits x:
    ``(1 - y) x + l softplus(-x)`` with ``l = 1 + (pos_weight - 1) y``, times ``weight``.

    ``pos_weight`` (one per class, broadcast over the last dim) weighs the positive term;
    each element is its own binary problem, so this is the multi-label loss.

    >>> F.binary_cross_entropy_with_logits(logits, labels, pos_weight=chainrule.tensor([3.0]))
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "binary_cross_entropy_with_logits")
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(
            f"binary_cross_entropy_with_logits: Target size ({target.shape}) must be the same "
            f"as input size ({input.shape})"
        )
    # softplus(-x) = -log sigmoid(x) = max(-x, 0) + log(1 + e^-|x|)
    negative_log_p = -logsigmoid(input)
    if pos_weight is not None:
        log_weight = (pos_weight - 1) * target + 1
        loss = (1 - target) * input + log_weight * negative_log_p
    else:
        loss = (1 - target) * input + negative_log_p
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def _class_targets(input: Tensor, target: Tensor, op: str) -> tuple[Tensor, Tensor, tuple]:
    """Bring (N, C, d1, ...) input and (N, d1, ...) target to (M, C) and (M,); returns the
    shape the per-element loss has before flattening. A (C,) input takes a 0-d target."""
    if input.ndim == 1:
        if target.ndim != 0:
            raise ValueError(
                f"{op}: for an unbatched input of shape {tuple(input.shape)} the target must be "
                f"a 0-d class index, got shape {tuple(target.shape)}"
            )
        return input.reshape(1, -1), target.reshape(1), ()
    expected = (input.shape[0],) + tuple(input.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(
            f"{op}: expected target of shape {expected} for input of shape "
            f"{tuple(input.shape)} (classes at dim 1), got {tuple(target.shape)}"
        )
    if input.ndim == 2:
        return input, target, expected
    classes = input.shape[1]
    return input.movedim(1, -1).reshape(-1, classes), target.reshape(-1), expected


def _device_array(array: np.ndarray | None, like: Tensor) -> Any:
    """A host array (indices, weights) on ``like``'s device; NumPy's own on the CPU."""
    return None if array is None else _backend.asarray(array, array.dtype, like._data)


def _row_weights(target: Any, classes: int, weight: Tensor | None,
                 ignore_index: int, dtype: np.dtype, op: str) -> tuple:
    """(safe target, per-row target weight or None, valid mask or None, class weights) as
    host arrays: class indices are checked and picked on the host whatever the device."""
    target = _backend.to_numpy(target)
    valid = target != ignore_index
    all_valid = bool(valid.all())
    safe = target if all_valid else np.where(valid, target, 0)
    if safe.size and (safe.min() < 0 or safe.max() >= classes):
        bad = target[valid & ((target < 0) | (target >= classes))][0]
        raise IndexError(f"{op}: Target {bad} is out of bounds (the input has {classes} classes)")
    w = None
    if weight is not None:
        if weight.shape != (classes,):
            raise RuntimeError(
                f"{op}: weight tensor should be defined either for all {classes} classes or no "
                f"classes but got weight tensor of shape: {list(weight.shape)}"
            )
        w = _backend.to_numpy(weight._data).astype(dtype, copy=False)
    if w is None:
        row_w = None if all_valid else valid.astype(dtype)
    else:
        row_w = w[safe] if all_valid else w[safe] * valid
    return safe, row_w, None if all_valid else valid.astype(dtype), w


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                  size_average: bool | None = None, ignore_index: int = -100,
                  reduce: bool | None = None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy of logits (classes at dim 1) against class indices or class
    probabilities, with PyTorch's ``weight``, ``ignore_index`` and ``label_smoothing``.

    With class indices the mean divides by the summed weights of the non-ignored targets.
    That path runs as one fused primitive (log-softmax and pick in one pass, no one-hot).

    >>> F.cross_entropy(logits, chainrule.tensor([0, 2, 1]))
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0. Got: "
                         f"{label_smoothing}")
    if _backend.np_dtype(target._data).kind == "f":
        return _cross_entropy_probabilities(input, target, weight, reduction, label_smoothing)
    if _backend.np_dtype(target._data).kind not in "iu":
        raise RuntimeError(f"cross_entropy: expected an integer class-index target or float "
                           f"class probabilities, got {target.dtype}")
    flat, flat_target, shape = _class_targets(input, target, "cross_entropy")
    classes = flat.shape[1]
    safe, row_w, valid, w = _row_weights(flat_target._data, classes, weight, ignore_index,
                                         _backend.np_dtype(flat._data), "cross_entropy")
    scale = None
    if reduction == "sum":
        scale = 1.0
    elif reduction == "mean":
        count = (float(row_w.sum()) if row_w is not None else float(safe.size))
        scale = 1.0 / count if count else float("nan")
    safe, row_w, valid, w = (_device_array(a, flat) for a in (safe, row_w, valid, w))
    loss = _loss_kernels.cross_entropy(flat, target=safe, row_w=row_w, valid=valid, weight=w,
                                       smoothing=float(label_smoothing), scale=scale)
    return loss if reduction != "none" else loss.reshape(shape)


def _cross_entropy_probabilities(input: Tensor, target: Tensor, weight: Tensor | None,
                                 reduction: str, label_smoothing: float) -> Tensor:
    # -sum_c w_c y_c log softmax(x)_c per element; the mean is over elements (N d1 ...),
    # not over weights
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(
            f"cross_entropy: a float target is read as class probabilities and must have the "
            f"input's shape {tuple(input.shape)}, got {tuple(target.shape)}; for class indices "
            f"pass an integer tensor (target.long())"
        )
    class_dim = 0 if input.ndim == 1 else 1
    classes = input.shape[class_dim]
    if label_smoothing > 0:
        target = target * (1 - label_smoothing) + label_smoothing / classes
    terms = _log_softmax(input, class_dim) * target
    if weight is not None:
        shape = (classes,) if input.ndim == 1 else _channel_shape(input)
        terms = terms * weight.reshape(shape)
    loss = -terms.sum(class_dim)
    return _reduce(loss, reduction)


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None,
             size_average: bool | None = None, ignore_index: int = -100,
             reduce: bool | None = None, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood ``-w_y x_y`` of class indices under log-probabilities
    (classes at dim 1); the mean divides by the summed weights of non-ignored targets.

    >>> F.nll_loss(F.log_softmax(logits, 1), chainrule.tensor([0, 2]))
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "nll_loss")
    if _backend.np_dtype(target._data).kind not in "iu":
        raise RuntimeError(f"nll_loss: expected an integer class-index target, got {target.dtype} "
                           f"of shape {tuple(target.shape)} (pass target.long())")
    flat, flat_target, shape = _class_targets(input, target, "nll_loss")
    classes = flat.shape[1]
    safe, row_w, _, _ = _row_weights(flat_target._data, classes, weight, ignore_index,
                                     _backend.np_dtype(flat._data), "nll_loss")
    picked = flat.gather(1, _wrap(_device_array(safe[:, None], flat))).reshape(-1)
    loss = -picked if row_w is None else picked * _wrap(_device_array(-row_w, flat))
    if reduction == "none":
        return loss.reshape(shape)
    if reduction == "sum":
        return loss.sum()
    if row_w is None:
        return loss.mean()
    return loss.sum() / float(row_w.sum())


def kl_div(input: Tensor, target: Tensor, size_average: bool | None = None,
           reduce: bool | None = None, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    """KL divergence with ``input`` as log-probabilities: ``y (log y - x)`` (0 where y = 0),
    or ``e^y (y - x)`` when ``log_target``. ``reduction='batchmean'`` divides the sum by the
    batch size, the mathematically correct KL; 'mean' averages over every element.

    >>> F.kl_div(F.log_softmax(logits, 1), probs, reduction="batchmean")
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "kl_div", ("batchmean",))
    if reduction == "mean":
        warnings.warn(
            "kl_div: reduction 'mean' divides the total loss by both the batch size and the "
            "support size; 'batchmean' divides only by the batch size, and aligns with the KL "
            "div math definition.",
            stacklevel=2,
        )
    if log_target:
        loss = math.exp(target) * (target - input)
    else:
        # xlogy(y, y) - y x, with log taken only where y > 0 (no -inf, no NaN gradient)
        positive = target > 0
        safe = math.where(positive, target, 1.0)
        loss = math.where(positive, target * math.log(safe), 0.0) - target * input
    if reduction == "batchmean":
        return loss.sum() / input.shape[0] if input.ndim else loss.sum()
    return _reduce(loss, reduction)


def cosine_embedding_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0,
                          size_average: bool | None = None, reduce: bool | None = None,
                          reduction: str = "mean") -> Tensor:
    """1 - cos(x1, x2) for target 1, max(0, cos(x1, x2) - margin) for target -1
    (cosine along dim 1, or 0 for 1-D inputs; each squared norm gets 1e-12 as PyTorch).

    >>> F.cosine_embedding_loss(a, b, chainrule.tensor([1, -1]), margin=0.2)
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "cosine_embedding_loss")
    dim = 1 if input1.ndim == 2 else 0
    dot = (input1 * input2).sum(dim)
    square1 = (input1 * input1).sum(dim) + 1e-12
    square2 = (input2 * input2).sum(dim) + 1e-12
    cos = dot / math.sqrt(square1 * square2)
    positive = math.where(target == 1, 1 - cos, 0.0)
    negative = math.where(target == -1, (cos - margin).clamp(min=0), 0.0)
    return _reduce(positive + negative, reduction)


def margin_ranking_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0,
                        size_average: bool | None = None, reduce: bool | None = None,
                        reduction: str = "mean") -> Tensor:
    """max(0, -y (x1 - x2) + margin).

    >>> F.margin_ranking_loss(score_a, score_b, chainrule.tensor([1.0, -1.0]))
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _reduce((-target * (input1 - input2) + margin).clamp(min=0), reduction)


def hinge_embedding_loss(input: Tensor, target: Tensor, margin: float = 1.0,
                         size_average: bool | None = None, reduce: bool | None = None,
                         reduction: str = "mean") -> Tensor:
    """x where y = 1, max(0, margin - x) where y = -1.

    >>> F.hinge_embedding_loss(distances, chainrule.tensor([1.0, -1.0]))
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    margin_part = math.where(target == -1, (margin - input).clamp(min=0), 0.0)
    self_part = math.where(target == 1, input, 0.0)
    return _reduce(margin_part + self_part, reduction)


def soft_margin_loss(input: Tensor, target: Tensor, size_average: bool | None = None,
                     reduce: bool | None = None, reduction: str = "mean") -> Tensor:
    """log(1 + exp(-y x)), stably.

    >>> F.soft_margin_loss(scores, chainrule.tensor([1.0, -1.0]))
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _reduce(_softplus_unit(-target * input), reduction)


def poisson_nll_loss(input: Tensor, target: Tensor, log_input: bool = True, full: bool = False,
                     size_average: bool | None = None, eps: float = 1e-8,
                     reduce: bool | None = None, reduction: str = "mean") -> Tensor:
    """Poisson negative log-likelihood: e^x - y x (log_input) or x - y log(x + eps), plus
    Stirling's term y log y - y + 0.5 log(2 pi y) for y > 1 when ``full``.

    >>> F.poisson_nll_loss(log_rate, counts)
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if log_input:
        loss = math.exp(input) - target * input
    else:
        loss = input - target * math.log(input + eps)
    if full:
        big = target > 1
        safe = math.where(big, target, 1.0)
        stirling = safe * math.log(safe) - safe + 0.5 * math.log(2 * _math.pi * safe)
        loss = loss + math.where(big, stirling, 0.0)
    return _reduce(loss, reduction)


def gaussian_nll_loss(input: Tensor, target: Tensor, var: Any, full: bool = False,
                      eps: float = 1e-6, reduction: str = "mean") -> Tensor:
    """0.5 (log max(var, eps) + (x - y)^2 / max(var, eps)) (+ 0.5 log 2 pi when ``full``);
    the clamp of var is not differentiated, as PyTorch.

    >>> F.gaussian_nll_loss(mean, target, variance)
    """
    if not isinstance(var, Tensor):
        var = creation.full(tuple(input.shape), float(var), dtype=input.dtype)
    elif tuple(var.shape) != tuple(input.shape):
        if tuple(var.shape) == tuple(input.shape[:-1]):
            var = var.unsqueeze(-1)  # one variance per sample
        elif not (tuple(var.shape[:-1]) == tuple(input.shape[:-1]) and var.shape[-1] == 1):
            raise ValueError(
                f"gaussian_nll_loss: var is of incorrect size {tuple(var.shape)} for input "
                f"{tuple(input.shape)}"
            )
    if (var._data < 0).any():
        raise ValueError("gaussian_nll_loss: var has negative entry/entries")
    # clamp without gradient to the clamp itself: var + (max(var, eps) - var).detach()
    var = var + (var.clamp(min=eps) - var).detach()
    diff = input - target
    loss = 0.5 * (math.log(var) + diff * diff / var)
    if full:
        loss = loss + 0.5 * _math.log(2 * _math.pi)
    return _reduce(loss, reduction)


def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0,
                        p: float = 2, eps: float = 1e-6, swap: bool = False,
                        size_average: bool | None = None, reduce: bool | None = None,
                        reduction: str = "mean") -> Tensor:
    """max(d(a, p) - d(a, n) + margin, 0) with d the pairwise p-distance.

    >>> F.triplet_margin_loss(anchor, positive, negative, margin=0.5)
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = math.minimum(d_neg, pairwise_distance(positive, negative, p, eps))
    return _reduce((d_pos - d_neg + margin).clamp(min=0), reduction)

# convolution and pooling (nn/conv_functional.py)
from .conv_functional import *  # noqa: E402,F403
from .conv_functional import __all__ as _conv_all  # noqa: E402

__all__ += _conv_all
