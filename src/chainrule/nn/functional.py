"""``chainrule.nn.functional``: activations and losses composed from the primitives."""

from __future__ import annotations

from ..ops import math
from ..ops.math import linear, log_softmax, relu, sigmoid, softmax, tanh
from ..ops.shape import one_hot, pad
from ..tensor import Tensor

__all__ = [
    "linear", "bilinear", "relu", "sigmoid", "tanh", "softmax", "log_softmax", "one_hot", "pad",
    "nll_loss", "cross_entropy", "mse_loss",
]


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``y_k = x1^T A_k x2 + b_k`` over the last dims, for weight A of shape (out, in1, in2).

    >>> F.bilinear(x1, x2, w).shape   # (N, in1), (N, in2), (out, in1, in2) -> (N, out)
    """
    out = math.einsum("...i,oij,...j->...o", input1, weight, input2)
    return out if bias is None else out + bias


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{reduction} is not a valid value for reduction ('none', 'mean', 'sum')")


def nll_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of class indices ``target`` under log-probabilities ``input``.

    >>> F.nll_loss(logp, chainrule.tensor([0, 2]))
    """
    if input.ndim != 2 or target.ndim != 1 or target.shape[0] != input.shape[0]:
        raise ValueError(
            f"nll_loss: expected input (N, C) and target (N,), got {tuple(input.shape)} and "
            f"{tuple(target.shape)}"
        )
    picked = input.gather(1, target.unsqueeze(1)).squeeze(1)
    return _reduce(-picked, reduction)


def cross_entropy(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Cross-entropy of logits against class indices, via a stable log-softmax."""
    return nll_loss(log_softmax(input, 1), target, reduction)


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean squared error."""
    diff = math.sub(input, target)
    return _reduce(diff * diff, reduction)

# convolution and pooling (nn/conv_functional.py)
from .conv_functional import *  # noqa: E402,F403
from .conv_functional import __all__ as _conv_all  # noqa: E402

__all__ += _conv_all
