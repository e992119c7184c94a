"""No leaks: 3,000 training steps of an MLP. Resident memory stops growing after warm-up
(under 5% over the last 2,000 steps, read from /proc/self/statm) and no graph node
outlives its step (weak references, with the cycle collector off: nodes must be freed by
reference counting alone). Plain steps, steps that backward twice with retain_graph, and
steps with a gradient penalty (create_graph) all take part."""

from __future__ import annotations

import gc
import os
import weakref
from typing import Any

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn as nn
import chainrule.nn.functional as F
from chainrule.autograd.graph import Node

STEPS = 3000
WARM_UP = 1000
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss() -> int:
    """Resident set size in bytes (the second field of /proc/self/statm, in pages)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def _graph_nodes(*roots: Any) -> list:
    """Every node reachable from the roots' grad_fn."""
    seen: dict = {}
    stack = [r.grad_fn for r in roots if r is not None and r.grad_fn is not None]
    while stack:
        node = stack.pop()
        if type(node) is not Node and not hasattr(node, "edges"):
            continue
        if id(node) in seen:
            continue
        seen[id(node)] = node
        stack.extend(e for e in node.edges if e is not None and not isinstance(e, cr.Tensor))
    return list(seen.values())


def _step(model: nn.Module, optimizer: Any, x: cr.Tensor, y: cr.Tensor, kind: str) -> list:
    """One training step; returns weak references to every node its graph had."""
    optimizer.zero_grad()
    if kind == "create_graph":
        # a gradient penalty: the gradient with respect to the input, differentiated again
        x = x.clone().requires_grad_(True)
        loss = F.cross_entropy(model(x), y)
        (gx,) = cr.autograd.grad(loss, x, create_graph=True)
        total = loss + 0.1 * (gx * gx).sum()
        refs = [weakref.ref(n) for n in _graph_nodes(total, gx)]
        total.backward()
    else:
        loss = F.cross_entropy(model(x), y)
        refs = [weakref.ref(n) for n in _graph_nodes(loss)]
        if kind == "retain_graph":
            loss.backward(retain_graph=True)
            loss.backward()  # the graph is still there, and freed after
        else:
            loss.backward()
    optimizer.step()
    return refs


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc (Linux)")
def test_training_does_not_leak() -> None:
    cr.manual_seed(0)
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(32, 64), nn.Tanh(), nn.Linear(64, 64), nn.ReLU(),
                          nn.Linear(64, 10))
    optimizer = cr.optim.Adam(model.parameters(), lr=1e-3)
    batches = [(cr.tensor(rng.standard_normal((64, 32)).astype(np.float32)),
                cr.tensor(rng.integers(0, 10, 64))) for _ in range(16)]
    kinds = ["plain"] * 8 + ["retain_graph", "create_graph"]
    survivors = []
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()  # nodes must be freed by reference counting: no cycles through the graph
    try:
        for step in range(STEPS):
            x, y = batches[step % len(batches)]
            kind = kinds[step % len(kinds)]
            refs = _step(model, optimizer, x, y, kind)
            alive = [r for r in refs if r() is not None]
            if alive:
                survivors.append((step, kind, len(alive), alive[0]().name()))
            if step == WARM_UP:
                after_warm_up = _rss()
        final = _rss()
    finally:
        if was_enabled:
            gc.enable()
    assert not survivors, f"graph nodes outlived their step: {survivors[:5]}"
    growth = (final - after_warm_up) / after_warm_up
    assert growth < 0.05, (f"resident memory grew {growth:.1%} over the last {STEPS - WARM_UP} "
                           f"steps ({after_warm_up >> 20} -> {final >> 20} MiB)")


def test_a_dropped_graph_frees_its_saved_arrays() -> None:
    """A graph that is never backpropagated (an evaluation pass that forgot no_grad) is
    freed with its last tensor, saved arrays included."""
    x = cr.randn(256, 256, requires_grad=True)
    y = (x.tanh() * x).sum()
    refs = [weakref.ref(n) for n in _graph_nodes(y)]
    assert refs
    gc.disable()
    try:
        del y
        assert all(r() is None for r in refs)
    finally:
        gc.enable()
