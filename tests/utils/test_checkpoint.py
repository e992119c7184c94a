"""Activation checkpointing: gradients equal the plain run's, memory follows sqrt(L)."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule.diagnostics import track_saved_memory
from chainrule.utils.checkpoint import checkpoint, checkpoint_sequential, plan_segments


def _weights(count, width, seed=0):
    rng = np.random.default_rng(seed)
    return [cr.tensor(rng.standard_normal((width, width)) / np.sqrt(width), requires_grad=True)
            for _ in range(count)]


def _block(w1, w2, p=0.0):
    def run(x):
        h = F.linear(x, w1).tanh()
        if p:
            h = F.dropout(h, p=p, training=True)
        return F.linear(h, w2).sin() + x
    return run


def _grads(loss, params):
    return [g.numpy().copy() for g in cr.autograd.grad(loss, params)]


@pytest.mark.parametrize("p", [0.0, 0.5])
def test_checkpoint_gradients_equal_plain_run(p):
    w1, w2 = _weights(2, 6)
    x = cr.tensor(np.random.default_rng(1).standard_normal((4, 6)), requires_grad=True)
    cr.manual_seed(3)
    plain = _grads((_block(w1, w2, p)(x) ** 2).sum(), [x, w1, w2])
    cr.manual_seed(3)
    checked = _grads((checkpoint(_block(w1, w2, p), x) ** 2).sum(), [x, w1, w2])
    for a, b in zip(plain, checked):
        np.testing.assert_array_equal(a, b)


def test_checkpoint_under_create_graph_matches_second_derivatives():
    w1, w2 = _weights(2, 5, seed=4)
    x = cr.tensor(np.random.default_rng(2).standard_normal((3, 5)), requires_grad=True)

    def second(run):
        (g,) = cr.autograd.grad((run(x) ** 2).sum(), x, create_graph=True)
        return _grads((g * g).sum(), [x, w1, w2])

    plain = second(_block(w1, w2))
    checked = second(lambda t: checkpoint(_block(w1, w2), t))
    for a, b in zip(plain, checked):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_checkpoint_keeps_no_intermediates_and_restores_random_state():
    w1, w2 = _weights(2, 8)
    x = cr.tensor(np.ones((2, 8)), requires_grad=True)
    out = checkpoint(_block(w1, w2, p=0.5), x)
    assert out.grad_fn.name() == "_CheckpointBackward"
    cr.manual_seed(9)
    expected = cr.rand(3).numpy()
    cr.manual_seed(9)
    out.sum().backward()  # the recomputation replays dropout's draws, then restores the state
    np.testing.assert_array_equal(cr.rand(3).numpy(), expected)


def _tanh_layer(weight):
    return lambda h: F.linear(h, weight).tanh()


def _layers(count, width, seed=5):
    weights = _weights(count, width, seed)
    return [_tanh_layer(w) for w in weights], weights


@pytest.mark.parametrize("segments", [None, 1, 3, 8])
def test_checkpoint_sequential_equals_plain(segments):
    layers, weights = _layers(8, 6)
    x = cr.tensor(np.random.default_rng(6).standard_normal((4, 6)), requires_grad=True)
    h = x
    for layer in layers:
        h = layer(h)
    plain = _grads(h.sum(), [x, *weights])
    out = checkpoint_sequential(layers, segments, x)
    for a, b in zip(plain, _grads(out.sum(), [x, *weights])):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_peak_saved_memory_shrinks_with_checkpointing():
    layers, weights = _layers(16, 32)
    x = cr.tensor(np.ones((64, 32)), requires_grad=True)

    def peak(run):
        with track_saved_memory(activations_only=True) as memory:
            run().sum().backward()
        return memory.peak_bytes

    def plain():
        h = x
        for layer in layers:
            h = layer(h)
        return h

    full = peak(plain)
    checked = peak(lambda: checkpoint_sequential(layers, None, x))
    assert checked < full / 2


def test_plan_uses_sqrt_rule_and_respects_a_budget():
    plan = plan_segments([100] * 16, [10] * 16)
    assert plan.segments == 4
    budget_plan = plan_segments([100] * 16, [10] * 16, budget=450)
    assert budget_plan.peak_bytes <= 450
    roomy = plan_segments([100] * 16, [10] * 16, budget=10_000)
    assert roomy.recompute == 0 and roomy.segments == 1
    with pytest.raises(ValueError, match="no segmentation"):
        plan_segments([100] * 16, [10] * 16, budget=50)


def test_checkpoint_sequential_with_memory_budget_matches_plain():
    layers, weights = _layers(12, 16)
    x = cr.tensor(np.random.default_rng(8).standard_normal((8, 16)), requires_grad=True)
    h = x
    for layer in layers:
        h = layer(h)
    plain = _grads(h.sum(), [x, *weights])
    out = checkpoint_sequential(layers, None, x, memory_budget=10_000)
    for a, b in zip(plain, _grads(out.sum(), [x, *weights])):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_batchnorm_statistics_are_updated_once_and_dropout_replays():
    import chainrule.nn as nn

    def build():
        cr.manual_seed(0)
        return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.3),
                             nn.Linear(8, 3)).double()

    x = cr.tensor(np.random.default_rng(3).standard_normal((10, 6)), requires_grad=True)
    plain_model, checked_model = build(), build()
    cr.manual_seed(11)
    plain_model(x).pow(2).sum().backward()
    cr.manual_seed(11)
    checkpoint(checked_model, x).pow(2).sum().backward()
    for (name, a), (_, b) in zip(plain_model.named_parameters(), checked_model.named_parameters()):
        np.testing.assert_array_equal(a.grad.numpy(), b.grad.numpy(), err_msg=name)
    for (name, a), (_, b) in zip(plain_model.named_buffers(), checked_model.named_buffers()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
