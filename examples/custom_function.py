"""Custom autograd Functions: an op whose backward you write yourself.

Run: .venv/bin/python examples/custom_function.py

Two Functions, as in PyTorch (``forward(ctx, ...)``, ``backward(ctx, grad)``,
``ctx.save_for_backward``):

1. ``Softplus``: log(1 + e^x) in a form that never overflows, with the backward
   d/dx softplus(x) = sigmoid(x) written in chainrule ops, so it can be differentiated
   again: gradcheck and gradgradcheck pass, and it matches ``F.softplus``.
2. ``StraightThroughRound``: rounding has derivative 0 almost everywhere, so a weight
   that is rounded in the forward pass never learns. The straight-through estimator
   pretends the rounding is the identity in the backward pass; the rounded weight then
   learns (here, to fit y = 3 x with weights on a grid of 0.5).
"""

from __future__ import annotations

import chainrule as torch
from chainrule.autograd import Function, gradcheck, gradgradcheck


class Softplus(Function):
    """softplus(x) = max(x, 0) + log1p(exp(-|x|)), stable for any x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0) + torch.log1p(torch.exp(-x.abs()))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.sigmoid(x)  # chainrule ops: recorded under create_graph=True


class StraightThroughRound(Function):
    """round(x * steps) / steps forward; the identity backward."""

    @staticmethod
    def forward(ctx, x, steps):
        return torch.round(x * steps) / steps

    @staticmethod
    def backward(ctx, grad):
        return grad, None  # no gradient for the number of steps


def fit_rounded_weight(rounding, steps: int = 100, lr: float = 0.1) -> float:
    """Fit y = 3 x with a weight rounded to the grid of 0.5 by ``rounding``; returns the
    rounded weight reached."""
    x = torch.linspace(-1, 1, 32)
    y = 3.0 * x
    w = torch.tensor(0.2, requires_grad=True)
    for _ in range(steps):
        loss = ((rounding(w) * x - y) ** 2).mean()
        w.grad = None
        loss.backward()
        with torch.no_grad():
            w -= lr * w.grad
    return float(rounding(w).item())


def main(verbose: bool = True) -> dict:
    x = torch.tensor([-800.0, -3.0, -0.5, 0.0, 0.5, 3.0, 800.0], dtype=torch.float64, requires_grad=True)
    values = Softplus.apply(x)
    matches = bool(torch.allclose(values, torch.nn.functional.softplus(x)))
    first = gradcheck(Softplus.apply, (x,))
    second = gradgradcheck(Softplus.apply, (x,))
    plain = fit_rounded_weight(lambda w: torch.round(w * 2) / 2)
    straight_through = fit_rounded_weight(lambda w: StraightThroughRound.apply(w, 2))
    if verbose:
        print(f"softplus at +-800 is finite: {values.tolist()}")
        print(f"matches F.softplus: {matches}; gradcheck: {first}; gradgradcheck: {second}")
        print("fitting y = 3x with a weight rounded to multiples of 0.5, from w = 0.2:")
        print(f"  through torch.round (gradient 0): w = {plain}")
        print(f"  through the straight-through estimator: w = {straight_through}")
    return {"matches": matches, "gradcheck": first, "gradgradcheck": second, "plain": plain,
            "straight_through": straight_through}


if __name__ == "__main__":
    main()
