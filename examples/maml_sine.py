"""Second-order MAML on sine-wave regression, against first-order MAML from the same seed.

MAML (Finn et al., 2017) learns an initialisation theta from which one or a few SGD steps
on a handful of points of a new task fit that task well. The meta-loss is the loss after
adaptation, L_query(theta - alpha * grad L_support(theta)), and its gradient with respect
to theta passes through the inner gradient: (I - alpha * H_support) grad L_query, a
Hessian-vector product that chainrule gets by differentiating the inner gradient again
(``autograd.grad(..., create_graph=True)``). First-order MAML drops the Hessian term by
treating the inner gradient as a constant (``create_graph=False``: it comes back detached).

Tasks: y = A sin(x - phi), A in [0.1, 5], phi in [0, pi], x in [-5, 5]. The network is a
1-40-40-1 MLP written as a function of its parameter tensors. Every task of a meta-batch
is adapted at once: the parameters are expanded along a leading task axis (a view, no
copy), and because the tasks' losses are independent, the gradient of their sum with
respect to the expanded parameters holds each task's own gradient in its row.

Run: ``python examples/maml_sine.py``
"""

from __future__ import annotations

import math
import time

import chainrule as torch

Params = list[torch.Tensor]


def init_params(generator: torch.Generator, width: int = 40) -> Params:
    """Weights stored (fan_in, fan_out) so a layer is ``x @ w + b``; PyTorch's default
    uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) initialisation."""
    params = []
    for fan_in, fan_out in ((1, width), (width, width), (width, 1)):
        bound = 1 / math.sqrt(fan_in)
        for shape in ((fan_in, fan_out), (1, fan_out)):
            p = (torch.rand(*shape, generator=generator, dtype=torch.float64) * 2 - 1) * bound
            params.append(p.requires_grad_())
    return params


def mlp(params: Params, x: torch.Tensor) -> torch.Tensor:
    """The network, for parameters with or without a leading task axis."""
    w1, b1, w2, b2, w3, b3 = params
    h = (x @ w1 + b1).relu()
    h = (h @ w2 + b2).relu()
    return h @ w3 + b3


def sample_tasks(generator: torch.Generator, tasks: int, shots: int) -> tuple:
    """Support and query sets, each (tasks, shots, 1), from tasks drawn as in the paper."""
    amplitude = 0.1 + 4.9 * torch.rand(tasks, 1, 1, generator=generator, dtype=torch.float64)
    phase = math.pi * torch.rand(tasks, 1, 1, generator=generator, dtype=torch.float64)
    xs = [10 * torch.rand(tasks, shots, 1, generator=generator, dtype=torch.float64) - 5
          for _ in range(2)]
    return tuple((x, amplitude * (x - phase).sin()) for x in xs)


def task_losses(params: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error of each task: shape (tasks,)."""
    return ((mlp(params, x) - y) ** 2).mean(dim=(1, 2))


def adapt(params: Params, support: tuple, inner_lr: float, steps: int, second_order: bool) -> Params:
    """Per-task parameters after ``steps`` of SGD on each task's support set."""
    tasks = support[0].shape[0]
    fast = [p.expand(tasks, *p.shape) for p in params]
    for _ in range(steps):
        # the sum's gradient in row i is task i's gradient: the tasks share no computation
        loss = task_losses(fast, *support).sum()
        # first order: the gradient comes back as a constant, so the meta-gradient skips H
        grads = torch.autograd.grad(loss, fast, create_graph=second_order)
        fast = [w - inner_lr * g for w, g in zip(fast, grads)]
    return fast


def evaluate(params: Params, tasks: tuple, inner_lr: float, steps: int) -> tuple[float, float]:
    """Mean query loss over held-out tasks before and after adaptation."""
    support, query = tasks
    fast = adapt(params, support, inner_lr, steps, second_order=False)
    with torch.no_grad():
        before = task_losses(params, *query)
        after = task_losses(fast, *query)
    return before.mean().item(), after.mean().item()


def meta_train(second_order: bool, iterations: int, meta_batch: int, shots: int, inner_lr: float,
               inner_steps: int, meta_lr: float, seed: int) -> Params:
    """MAML with a hand-written Adam on the initialisation; the seed fixes the initial
    parameters and the sequence of tasks, so both variants see exactly the same data."""
    generator = torch.Generator().manual_seed(seed)
    params = init_params(generator)
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for step in range(1, iterations + 1):
        support, query = sample_tasks(generator, meta_batch, shots)
        fast = adapt(params, support, inner_lr, inner_steps, second_order)
        meta_loss = task_losses(fast, *query).mean()
        grads = torch.autograd.grad(meta_loss, params)
        if step % max(1, iterations // 4) == 0:
            print(f"  {'second' if second_order else 'first'}-order step {step:5d}: "
                  f"meta-loss {meta_loss.item():.4f}")
        with torch.no_grad():
            for p, g, m_i, v_i in zip(params, grads, m, v):
                m_i.mul_(beta1).add_(g, alpha=1 - beta1)
                v_i.mul_(beta2).add_(g * g, alpha=1 - beta2)
                m_hat = m_i / (1 - beta1 ** step)
                v_hat = v_i / (1 - beta2 ** step)
                p.sub_(meta_lr * m_hat / (v_hat.sqrt() + eps))
    return params


def main(iterations: int = 2000, meta_batch: int = 25, shots: int = 10, inner_lr: float = 0.02,
         inner_steps: int = 2, meta_lr: float = 3e-3, held_out: int = 200, seed: int = 0) -> dict:
    print(f"MAML on sine regression: {iterations} meta-iterations of {meta_batch} tasks, "
          f"{shots}-shot, {inner_steps} inner step(s) of lr {inner_lr}, Adam lr {meta_lr}")
    held_out_tasks = sample_tasks(torch.Generator().manual_seed(seed + 1), held_out, shots)
    results = {}
    for name, second_order in (("first-order", False), ("second-order", True)):
        start = time.perf_counter()
        params = meta_train(second_order, iterations, meta_batch, shots, inner_lr, inner_steps,
                            meta_lr, seed)
        before, after = evaluate(params, held_out_tasks, inner_lr, inner_steps)
        results[name] = {"before": before, "after": after, "seconds": time.perf_counter() - start}
    print(f"\nquery MSE on {held_out} held-out tasks (mean), before and after adaptation:")
    print(f"{'':14} {'before':>9} {'after':>9} {'train s':>8}")
    for name, r in results.items():
        print(f"{name:14} {r['before']:9.4f} {r['after']:9.4f} {r['seconds']:8.1f}")
    gain = results["first-order"]["after"] / results["second-order"]["after"]
    print(f"second-order's post-adaptation loss is {gain:.2f}x lower than first-order's")
    return results


if __name__ == "__main__":
    main()
