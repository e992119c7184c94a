"""Differentiate through an iterative algorithm: Newton's method for sqrt(x).

``y <- (y + x / y) / 2`` converges to sqrt(x). Every iteration is recorded, so the graph
of ten iterations is an ordinary chain of chainrule ops and backpropagating through it
gives d sqrt(x)/dx = 1 / (2 sqrt(x)): at x = 2, 0.35355... No derivative of sqrt was ever
written down; the derivative of the loop converges along with the loop. Forward mode
(one tangent carried through the same loop) and a second derivative give the same story.

Run: ``python examples/newton_sqrt.py``
"""

from __future__ import annotations

import math

import chainrule as torch
from chainrule.autograd import forward_ad


def newton_sqrt(x: torch.Tensor, iterations: int = 10) -> torch.Tensor:
    """sqrt(x) for x > 0 by Newton's method on y^2 - x = 0, starting from y = x."""
    y = x
    for _ in range(iterations):
        y = 0.5 * (y + x / y)
    return y


def main(x: float = 2.0, iterations: int = 10) -> dict:
    exact = 1 / (2 * math.sqrt(x))
    print(f"Newton's method for sqrt({x}), differentiated through its iterations (float64)")
    print(f"{'iters':>5} {'y':>20} {'dy/dx (reverse)':>20} {'error vs 1/(2 sqrt x)':>22}")
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    # the derivative of the k-th iterate, for each k: it converges as fast as y itself
    for k in range(1, iterations + 1):
        y = newton_sqrt(xt, k)
        (dy,) = torch.autograd.grad(y, xt)
        print(f"{k:5d} {y.item():20.16f} {dy.item():20.16f} {abs(dy.item() - exact):22.2e}")

    y = newton_sqrt(xt, iterations)
    # create_graph records the backward pass too, so it can be differentiated again
    (dy,) = torch.autograd.grad(y, xt, create_graph=True)
    (d2y,) = torch.autograd.grad(dy, xt)
    with forward_ad.dual_level():
        dual = forward_ad.make_dual(torch.tensor(x, dtype=torch.float64),
                                    torch.tensor(1.0, dtype=torch.float64))
        tangent = forward_ad.unpack_dual(newton_sqrt(dual, iterations)).tangent

    results = {"value": y.item(), "reverse": dy.item(), "forward": tangent.item(),
               "second": d2y.item(), "exact": exact, "exact_second": -0.25 * x ** -1.5}
    print(f"\nafter {iterations} iterations:")
    print(f"  sqrt(x)           {results['value']:.16f}   (math.sqrt: {math.sqrt(x):.16f})")
    print(f"  dy/dx reverse     {results['reverse']:.16f}")
    print(f"  dy/dx forward     {results['forward']:.16f}")
    print(f"  1 / (2 sqrt x)    {exact:.16f}")
    print(f"  d2y/dx2           {results['second']:.16f}   (exact -x^(-3/2)/4: "
          f"{results['exact_second']:.16f})")
    assert abs(results["reverse"] - exact) < 1e-10, results
    assert abs(results["forward"] - exact) < 1e-10, results
    assert abs(results["second"] - results["exact_second"]) < 1e-10, results
    return results


if __name__ == "__main__":
    main()
