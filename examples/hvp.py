"""Hessian-vector products of an MLP loss without forming the Hessian.

For a loss L(theta) with n parameters the Hessian H has n^2 entries: 4 TB in float32 at
n = 10^6. H v needs none of it. The gradient g(theta) is itself a function chainrule can
record (``create_graph=True``), and the gradient of the scalar g(theta) . v is H v: a
second reverse pass over the recorded first one (reverse-over-reverse), costing a small
multiple of one gradient. (Forward-over-reverse, a JVP of the gradient, is not supported
by chainrule's forward mode: the backward pass does not carry tangents.)

Shown two ways, ``chainrule.autograd.functional.hvp`` and by hand with
``autograd.grad(create_graph=True)`` twice; checked on a small network against the full
Hessian from ``autograd.functional.hessian`` times v, and against central differences of
the gradient; then timed on a network with 10^6 parameters.

Run: ``python examples/hvp.py`` (with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for
representative timings: they slow NumPy's matrix products on some machines).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import chainrule as torch
import chainrule.nn.functional as F
from chainrule.autograd.functional import hessian, hvp

Params = tuple[torch.Tensor, ...]


def make_loss(sizes: list[int], x: torch.Tensor, y: torch.Tensor) -> Callable[..., torch.Tensor]:
    """Cross-entropy of a tanh MLP, as a function of its weights and biases in turn."""

    def loss(*params: torch.Tensor) -> torch.Tensor:
        h = x
        for i in range(len(sizes) - 1):
            h = F.linear(h, params[2 * i], params[2 * i + 1])
            if i < len(sizes) - 2:
                h = h.tanh()
        return F.cross_entropy(h, y)

    return loss


def problem(sizes: list[int], batch: int, dtype: torch.dtype, seed: int) -> tuple:
    """A loss, a point theta (one tensor per weight and bias) and a direction v."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, sizes[0], generator=generator, dtype=dtype)
    y = torch.randint(0, sizes[-1], (batch,), generator=generator)
    theta, v = [], []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        for shape in ((n_out, n_in), (n_out,)):
            theta.append(torch.randn(*shape, generator=generator, dtype=dtype) / n_in ** 0.5)
            v.append(torch.randn(*shape, generator=generator, dtype=dtype))
    return make_loss(sizes, x, y), tuple(theta), tuple(v)


def flatten(tensors: Params) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def unflatten(flat: torch.Tensor, like: Params) -> Params:
    pieces, start = [], 0
    for t in like:
        pieces.append(flat[start:start + t.numel()].reshape(t.shape))
        start += t.numel()
    return tuple(pieces)


def gradient(loss: Callable[..., torch.Tensor], theta: Params) -> Params:
    theta = tuple(t.detach().requires_grad_() for t in theta)
    return torch.autograd.grad(loss(*theta), theta)


def hvp_by_hand(loss: Callable[..., torch.Tensor], theta: Params, v: Params) -> Params:
    theta = tuple(t.detach().requires_grad_() for t in theta)
    # record the backward pass, so the gradient is a differentiable function of theta
    g = torch.autograd.grad(loss(*theta), theta, create_graph=True)
    # d/dtheta (g . v) = H v, v being a constant
    return torch.autograd.grad(sum((gi * vi).sum() for gi, vi in zip(g, v)), theta)


def check_small(sizes: list[int], batch: int) -> dict:
    loss, theta, v = problem(sizes, batch, torch.float64, seed=0)
    flat_theta, flat_v = flatten(theta), flatten(v)
    n = flat_theta.numel()
    # the Hessian of L as a function of one vector in R^n: n x n, fine here only
    full = hessian(lambda t: loss(*unflatten(t, theta)), flat_theta)
    reference = full @ flat_v
    eps = 1e-5
    ahead = gradient(loss, unflatten(flat_theta + eps * flat_v, theta))
    behind = gradient(loss, unflatten(flat_theta - eps * flat_v, theta))
    candidates = {
        "functional.hvp": flatten(hvp(loss, theta, v)[1]),
        "grad(create_graph) by hand": flatten(hvp_by_hand(loss, theta, v)),
        "central differences of grad": (flatten(ahead) - flatten(behind)) / (2 * eps),
    }
    errors = {name: (hv - reference).abs().max().item() for name, hv in candidates.items()}
    print(f"small MLP {sizes}, n = {n}, float64: H v against the full {n}x{n} Hessian times v "
          f"(largest |Hv| entry {reference.abs().max().item():.3g})")
    print(f"  Hessian symmetric to {(full - full.T).abs().max().item():.1e}")
    for name, error in errors.items():
        print(f"  {name:28} max abs error {error:.1e}")
    assert errors["functional.hvp"] < 1e-10 and errors["grad(create_graph) by hand"] < 1e-10, errors
    assert errors["central differences of grad"] < 1e-6, errors
    return errors


def fastest_seconds(fn: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` runs in a row: the slower ones did the same work while
    other processes held the CPU."""
    fn()  # warm-up: first-touch allocations
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def time_large(sizes: list[int], batch: int, repeats: int) -> dict:
    loss, theta, v = problem(sizes, batch, torch.float32, seed=1)
    n = sum(t.numel() for t in theta)
    print(f"\nlarge MLP {sizes}, batch {batch}, n = {n:,} parameters, float32: the Hessian would "
          f"take {n * n * 4 / 1e12:,.1f} TB")
    if os.environ.keys() & {"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"}:
        print("  (OPENBLAS_CORETYPE or OPENBLAS_L2_SIZE is set: matrix products may be slow)")
    times = {
        "loss (forward)": fastest_seconds(lambda: loss(*theta), repeats),
        "gradient": fastest_seconds(lambda: gradient(loss, theta), repeats),
        "functional.hvp": fastest_seconds(lambda: hvp(loss, theta, v), repeats),
        "grad(create_graph) by hand": fastest_seconds(lambda: hvp_by_hand(loss, theta, v), repeats),
    }
    hv = flatten(hvp_by_hand(loss, theta, v))
    agreement = (flatten(hvp(loss, theta, v)[1]) - hv).abs().max().item() / hv.abs().max().item()
    for name, seconds in times.items():
        print(f"  {name:28} {seconds * 1e3:9.1f} ms  ({seconds / times['gradient']:.2f}x a gradient)")
    print(f"  the two H v agree to {agreement:.1e} (relative)")
    assert agreement < 1e-5, agreement
    return {"n": n, "seconds": times}


def main(small_sizes: list[int] | None = None, large_sizes: list[int] | None = None, batch: int = 128,
         repeats: int = 7) -> dict:
    errors = check_small(small_sizes or [4, 5, 3], batch=6)
    timing = time_large(large_sizes or [784, 1024, 192, 10], batch, repeats)
    return {"errors": errors, **timing}


if __name__ == "__main__":
    main()
