"""Adam and AdamW (decoupled weight decay), with AMSGrad."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .. import _backend
from ..ops import kernels
from ..tensor import _wrap
from .optimizer import Optimizer, _bump_step, _bump_version, _new_step, _scalar


class Adam(Optimizer):
    """Adam, with PyTorch's update rule.

    With gradient ``g`` (negated when ``maximize``) and step count ``t``::

        g <- g + weight_decay * p            (Adam; AdamW instead p <- p * (1 - lr * wd))
        m <- m + (1 - beta1) * (g - m)
        v <- beta2 * v + (1 - beta2) * g * g
        v_max <- max(v_max, v)               (amsgrad: v_max replaces v below)
        p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    >>> opt = chainrule.optim.Adam(model.parameters(), lr=1e-3)
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *, foreach: bool | None = None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False,
                 fused: bool | None = None, decoupled_weight_decay: bool = False) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(lr=lr, betas=(_scalar(betas[0]), _scalar(betas[1])), eps=eps,
                        weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
                        foreach=foreach, capturable=capturable, differentiable=differentiable,
                        fused=fused, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; returns the closure's loss."""
        loss = self._evaluate(closure)
        for group in self.param_groups:
            lr = _scalar(group["lr"])
            beta1, beta2 = group["betas"]
            weight_decay = group["weight_decay"]
            amsgrad = group["amsgrad"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                xp = _backend.namespace_of(p._data)
                if not state:
                    state["step"] = _new_step()
                    state["exp_avg"] = _wrap(xp.zeros_like(p._data))
                    state["exp_avg_sq"] = _wrap(xp.zeros_like(p._data))
                    if amsgrad:
                        state["max_exp_avg_sq"] = _wrap(xp.zeros_like(p._data))
                step = _bump_step(state["step"])
                param = p._data
                grad = p.grad._data
                if group["maximize"]:
                    grad = -grad
                if weight_decay != 0:
                    if group["decoupled_weight_decay"]:
                        param *= 1 - lr * weight_decay
                    else:
                        grad = grad + weight_decay * param
                exp_avg = state["exp_avg"]._data
                exp_avg_sq = state["exp_avg_sq"]._data
                scratch = grad - exp_avg
                # m.lerp_(g, 1 - beta1) = m + (1 - beta1) * (g - m)
                scratch *= 1 - beta1
                exp_avg += scratch
                exp_avg_sq *= beta2
                scratch = kernels.into(xp, "multiply", grad, grad, out=scratch)
                scratch *= 1 - beta2
                exp_avg_sq += scratch
                second = exp_avg_sq
                if amsgrad:
                    most = state["max_exp_avg_sq"]
                    second = most._data = kernels.into(xp, "maximum", most._data, exp_avg_sq,
                                                       out=most._data)
                step_size = lr / (1 - beta1**step)
                # denom = sqrt(v) / sqrt(1 - beta2^t) + eps, into the scratch
                scratch = kernels.into(xp, "sqrt", second, out=scratch)
                scratch /= (1 - beta2**step) ** 0.5
                scratch += group["eps"]
                scratch = kernels.into(xp, "divide", exp_avg, scratch, out=scratch)
                scratch *= step_size
                param -= scratch
                _bump_version(p)
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay (``p <- p * (1 - lr * weight_decay)`` before the
    Adam update; the decay does not enter the moments). Default weight_decay 1e-2.

    >>> opt = chainrule.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, capturable: bool = False,
                 differentiable: bool = False, fused: bool | None = None) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, capturable=capturable, differentiable=differentiable,
                         fused=fused, decoupled_weight_decay=True)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """As ``Optimizer.load_state_dict``; the groups keep ``decoupled_weight_decay=True``."""
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
