"""RMSprop: steps scaled by a running average of squared gradients (optionally centered)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .. import _backend
from ..ops import kernels
from ..tensor import _wrap
from .optimizer import Optimizer, _bump_step, _bump_version, _new_step, _scalar


class RMSprop(Optimizer):
    """RMSprop, with PyTorch's update rule.

    With gradient ``g`` (negated when ``maximize``)::

        g <- g + weight_decay * p
        v <- alpha * v + (1 - alpha) * g * g
        avg = sqrt(v - a * a) + eps,  a <- a + (1 - alpha) * (g - a)   (centered)
        avg = sqrt(v) + eps                                             (otherwise)
        b <- momentum * b + g / avg;  p <- p - lr * b                   (momentum > 0)
        p <- p - lr * g / avg                                           (otherwise)

    >>> opt = chainrule.optim.RMSprop(model.parameters(), lr=0.01, momentum=0.9)
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0, momentum: float = 0,
                 centered: bool = False, capturable: bool = False, foreach: bool | None = None,
                 maximize: bool = False, differentiable: bool = False) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=capturable, foreach=foreach,
                        maximize=maximize, differentiable=differentiable)
        super().__init__(params, defaults)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; returns the closure's loss."""
        loss = self._evaluate(closure)
        for group in self.param_groups:
            lr = _scalar(group["lr"])
            alpha = group["alpha"]
            momentum = group["momentum"]
            weight_decay = group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = _new_step()
                    state["square_avg"] = _wrap(_backend.namespace_of(p._data).zeros_like(p._data))
                    if momentum > 0:
                        state["momentum_buffer"] = _wrap(_backend.namespace_of(p._data).zeros_like(p._data))
                    if group["centered"]:
                        state["grad_avg"] = _wrap(_backend.namespace_of(p._data).zeros_like(p._data))
                _bump_step(state["step"])
                grad = p.grad._data
                xp = _backend.namespace_of(grad)
                if group["maximize"]:
                    grad = -grad
                if weight_decay != 0:
                    grad = grad + weight_decay * p._data
                square_avg = state["square_avg"]._data
                square_avg *= alpha
                avg = grad * grad
                avg *= 1 - alpha
                square_avg += avg
                if group["centered"]:
                    grad_avg = state["grad_avg"]._data
                    # a.lerp_(g, 1 - alpha) = a + (1 - alpha) * (g - a)
                    avg = kernels.into(xp, "subtract", grad, grad_avg, out=avg)
                    avg *= 1 - alpha
                    grad_avg += avg
                    avg = kernels.into(xp, "multiply", grad_avg, grad_avg, out=avg)
                    avg = kernels.into(xp, "subtract", square_avg, avg, out=avg)
                    avg = kernels.into(xp, "sqrt", avg, out=avg)
                else:
                    avg = kernels.into(xp, "sqrt", square_avg, out=avg)
                avg += group["eps"]
                avg = kernels.into(xp, "divide", grad, avg, out=avg)
                if momentum > 0:
                    buf = state["momentum_buffer"]._data
                    buf *= momentum
                    buf += avg
                    avg = kernels.into(xp, "multiply", buf, lr, out=avg)
                else:
                    avg *= lr
                p._data -= avg
                _bump_version(p)
        return loss
