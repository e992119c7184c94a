"""L-BFGS on the Rosenbrock function: a quasi-Newton method against first-order ones.

Run: .venv/bin/python examples/lbfgs.py

The n-dimensional Rosenbrock function sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2 has its
minimum 0 at (1, ..., 1) at the end of a long, curved, narrow valley: gradient descent
zigzags across it. L-BFGS builds a curvature model from its last gradients (the
``history_size`` pairs of steps and gradient changes) and, with a strong-Wolfe line
search, walks down the valley. Each method gets the same budget of function+gradient
evaluations (L-BFGS counts its line search's evaluations too); the table shows the loss
and the distance to the minimum each reaches.
"""

from __future__ import annotations

import chainrule as torch


def rosenbrock(x: torch.Tensor) -> torch.Tensor:
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


def start(n: int) -> torch.Tensor:
    x = torch.full((n,), 1.2, dtype=torch.float64)
    x[::2] = -1.2  # (-1.2, 1.2, -1.2, ...): the classic start (-1.2, 1) of the 2-d problem, spread out
    return x.requires_grad_()


def run_lbfgs(n: int, evaluations: int) -> tuple[float, float, int]:
    x = start(n)
    optimizer = torch.optim.LBFGS([x], lr=1, max_iter=evaluations, max_eval=evaluations,
                                  history_size=10, tolerance_grad=1e-12, tolerance_change=1e-15,
                                  line_search_fn="strong_wolfe")
    count = [0]

    def closure() -> torch.Tensor:
        count[0] += 1
        optimizer.zero_grad()
        loss = rosenbrock(x)
        loss.backward()
        return loss

    optimizer.step(closure)  # one call runs up to max_iter iterations
    return _result(x) + (count[0],)


def run_first_order(make_optimizer, n: int, evaluations: int) -> tuple[float, float, int]:
    x = start(n)
    optimizer = make_optimizer([x])
    for _ in range(evaluations):
        optimizer.zero_grad()
        rosenbrock(x).backward()
        optimizer.step()
    return _result(x) + (evaluations,)


def _result(x: torch.Tensor) -> tuple[float, float]:
    with torch.no_grad():
        return float(rosenbrock(x).item()), float((x - 1).norm().item())


def main(n: int = 10, evaluations: int = 500, verbose: bool = True) -> dict:
    results = {
        "L-BFGS (strong Wolfe)": run_lbfgs(n, evaluations),
        "gradient descent, lr 1e-3": run_first_order(lambda p: torch.optim.SGD(p, lr=1e-3), n, evaluations),
        "momentum 0.9, lr 1e-4": run_first_order(
            lambda p: torch.optim.SGD(p, lr=1e-4, momentum=0.9), n, evaluations),
        "Adam, lr 1e-2": run_first_order(lambda p: torch.optim.Adam(p, lr=1e-2), n, evaluations),
    }
    if verbose:
        print(f"{n}-dimensional Rosenbrock, at most {evaluations} function+gradient evaluations")
        print(f"{'method':28} {'evaluations':>11} {'loss':>10} {'|x - 1|':>10}")
        for name, (loss, distance, used) in results.items():
            print(f"{name:28} {used:11d} {loss:10.2e} {distance:10.2e}")
    return results


if __name__ == "__main__":
    main()
