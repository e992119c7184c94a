"""Threads: grad mode is per thread (as PyTorch's), and two threads training separate
models at the same time get exactly what each gets alone."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

import chainrule as cr
import chainrule.nn as nn
import chainrule.nn.functional as F


@contextmanager
def _switching_often() -> Iterator[None]:
    """Make the interpreter switch threads every few bytecodes, so that the threads'
    steps interleave finely."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def _run_together(*jobs: Callable[[], Any]) -> list:
    """Run the jobs in threads started together; re-raise the first failure."""
    results: list = [None] * len(jobs)
    errors: list = []
    start = threading.Barrier(len(jobs))

    def target(k: int) -> None:
        try:
            start.wait()
            results[k] = jobs[k]()
        except BaseException as error:  # noqa: BLE001 - reported in the main thread
            errors.append(error)

    threads = [threading.Thread(target=target, args=(k,)) for k in range(len(jobs))]
    with _switching_often():
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]
    return results


def test_grad_mode_is_per_thread() -> None:
    inside, checked = threading.Event(), threading.Event()
    seen: dict = {}
    x = cr.ones(3, requires_grad=True)

    def quiet() -> None:
        with cr.no_grad():
            inside.set()
            checked.wait(10)
            seen["quiet"] = ((x * 2).requires_grad, cr.is_grad_enabled())

    def busy() -> None:
        inside.wait(10)
        seen["busy"] = ((x * 2).requires_grad, cr.is_grad_enabled())
        checked.set()

    _run_together(quiet, busy)
    assert seen == {"quiet": (False, False), "busy": (True, True)}


def test_set_grad_enabled_in_a_thread_leaves_the_others_alone() -> None:
    def off() -> bool:
        cr.set_grad_enabled(False)  # for the rest of this thread only
        return (cr.ones(2, requires_grad=True) * 3).requires_grad

    assert _run_together(off) == [False]
    assert cr.is_grad_enabled()
    assert (cr.ones(2, requires_grad=True) * 3).requires_grad


def test_a_new_thread_starts_with_grad_enabled() -> None:
    with cr.no_grad():
        assert _run_together(cr.is_grad_enabled) == [True]


def _train(seed: int, steps: int = 150) -> list[np.ndarray]:
    """Train a small model from weights and data drawn from ``seed`` (no global RNG: the
    threads must not share a random stream). Every step also takes a second-order term and
    a retained double backward, so that those paths run concurrently too."""
    rng = np.random.default_rng(seed)
    model = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 4))
    with cr.no_grad():
        for p in model.parameters():
            p.copy_(cr.tensor(rng.standard_normal(tuple(p.shape)).astype(np.float32) * 0.3))
    optimizer = cr.optim.Adam(model.parameters(), lr=1e-2)
    x = cr.tensor(rng.standard_normal((32, 8)).astype(np.float32))
    y = cr.tensor(rng.integers(0, 4, 32))
    for step in range(steps):
        optimizer.zero_grad()
        inputs = x.clone().requires_grad_(True)
        loss = F.cross_entropy(model(inputs), y)
        (gx,) = cr.autograd.grad(loss, inputs, create_graph=True)
        total = loss + 0.01 * (gx * gx).sum()
        total.backward(retain_graph=step % 10 == 0)
        if step % 10 == 0:
            with cr.no_grad():
                for p in model.parameters():
                    p.grad.mul_(0.5)
            total.backward()  # the retained graph again: same gradient, twice half
        optimizer.step()
    return [p.detach().numpy().copy() for p in model.parameters()]


def test_two_threads_train_as_one_after_the_other() -> None:
    alone = [_train(1), _train(2)]
    together = _run_together(lambda: _train(1), lambda: _train(2))
    for a, b in zip(alone, together):
        for p, q in zip(a, b):
            np.testing.assert_array_equal(p, q)


def test_threads_backward_through_one_shared_graph() -> None:
    """autograd.grad from several threads over one retained graph: each gets the right
    gradient and the graph is not consumed by another thread's backward."""
    x = cr.tensor(np.linspace(-1.0, 1.0, 50), requires_grad=True)
    y = (x.sin() * x).sum()
    a = x.detach().numpy()
    expected = np.sin(a) + a * np.cos(a)

    def job() -> np.ndarray:
        grads = [cr.autograd.grad(y, x, retain_graph=True)[0].numpy() for _ in range(20)]
        return np.stack(grads)

    for grads in _run_together(job, job, job):
        np.testing.assert_allclose(grads, np.broadcast_to(expected, grads.shape), rtol=1e-6)
