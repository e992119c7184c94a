"""Adagrad: per-coordinate step sizes from the running sum of squared gradients."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .. import _backend
from ..ops import kernels
from ..tensor import Tensor, _wrap
from .optimizer import Optimizer, _bump_step, _bump_version, _new_step, _scalar


class Adagrad(Optimizer):
    """Adagrad, with PyTorch's update rule.

    With gradient ``g`` (negated when ``maximize``) and step count ``t``::

        g <- g + weight_decay * p
        clr = lr / (1 + (t - 1) * lr_decay)
        s <- s + g * g                          (s starts at initial_accumulator_value)
        p <- p - clr * g / (sqrt(s) + eps)

    >>> opt = chainrule.optim.Adagrad(model.parameters(), lr=0.01)
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, lr_decay: float = 0,
                 weight_decay: float = 0, initial_accumulator_value: float = 0,
                 eps: float = 1e-10, foreach: bool | None = None, *, maximize: bool = False,
                 differentiable: bool = False, fused: bool | None = None) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= lr_decay:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= initial_accumulator_value:
            raise ValueError(f"Invalid initial_accumulator_value value: {initial_accumulator_value}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        # PyTorch creates Adagrad's state up front, so a fresh state_dict already lists it
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group)

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> None:
        state = self.state[p]
        state["step"] = _new_step()
        xp = _backend.namespace_of(p._data)
        state["sum"] = _wrap(xp.full_like(p._data, group["initial_accumulator_value"]))

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; returns the closure's loss."""
        loss = self._evaluate(closure)
        for group in self.param_groups:
            lr = _scalar(group["lr"])
            weight_decay = group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:  # a group added after construction
                    self._init_state(p, group)
                step = _bump_step(state["step"])
                grad = p.grad._data
                xp = _backend.namespace_of(grad)
                if group["maximize"]:
                    grad = -grad
                if weight_decay != 0:
                    grad = grad + weight_decay * p._data
                clr = lr / (1 + (step - 1) * group["lr_decay"])
                state_sum = state["sum"]._data
                scratch = grad * grad
                state_sum += scratch
                scratch = kernels.into(xp, "sqrt", state_sum, out=scratch)
                scratch += group["eps"]
                scratch = kernels.into(xp, "divide", grad, scratch, out=scratch)
                scratch *= clr
                p._data -= scratch
                _bump_version(p)
        return loss
