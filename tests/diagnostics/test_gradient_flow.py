"""GradientFlowTracker: the statistics are right, and the detectors flag the classic cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from deep_nets import deep_net, mse_backward

import chainrule as cr
import chainrule.nn as nn
from chainrule.diagnostics import GradientFlowTracker


def _tracked(kind: str, depth: int = 50) -> GradientFlowTracker:
    cr.manual_seed(0)
    model = deep_net(kind, depth)
    mse_backward(model)
    tracker = GradientFlowTracker(model)
    tracker.record()
    return tracker


def test_statistics_match_numpy_per_parameter_and_per_layer():
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    mse_backward(model, batch=8, width=4)
    tracker = GradientFlowTracker(model)
    record = tracker.record()
    assert list(record.layers) == ["0", "2"]
    g = model[0].weight.grad.numpy().astype(np.float64)
    stats = record.params["0.weight"]
    assert stats.grad_norm == pytest.approx(np.linalg.norm(g))
    assert stats.mean_abs == pytest.approx(np.abs(g).mean())
    assert stats.max_abs == pytest.approx(np.abs(g).max())
    assert stats.ratio == pytest.approx(np.linalg.norm(g) / np.linalg.norm(model[0].weight.detach().numpy()))
    both = np.concatenate([g.ravel(), model[0].bias.grad.numpy().ravel()])
    layer = record.layers["0"]
    assert layer.grad_norm == pytest.approx(np.linalg.norm(both))
    assert layer.mean_abs == pytest.approx(np.abs(both).mean())
    assert layer.numel == 30


def test_update_ratio_is_the_step_over_the_weight():
    cr.manual_seed(0)
    model = nn.Linear(3, 2)
    optimizer = cr.optim.SGD(model.parameters(), lr=0.1)
    mse_backward(model, batch=4, width=3)
    tracker = GradientFlowTracker(model)
    tracker.record()
    before = model.weight.detach().numpy().copy()
    optimizer.step()
    record = tracker.record_update()
    expected = np.linalg.norm(model.weight.detach().numpy() - before) / np.linalg.norm(before)
    assert record.params["weight"].update_ratio == pytest.approx(expected, rel=1e-5)
    assert record.layers["(model)"].update_ratio is not None
    assert "update/weight" in tracker.report()


def test_vanishing_flags_the_sigmoid_net_not_relu_he_or_residual():
    sigmoid = _tracked("sigmoid")
    flagged = {f.layer for f in sigmoid.vanishing()}
    assert "0" in flagged and len(flagged) > 30  # the first layers get nothing
    assert any("orders of magnitude" in str(f) for f in sigmoid.vanishing())
    assert _tracked("relu_he").vanishing() == []
    assert _tracked("residual").vanishing() == []
    report = sigmoid.report()
    assert "vanishing gradient in 0" in report and "He (kaiming) init" in report


def test_exploding_flags_weights_scaled_by_10():
    cr.manual_seed(0)
    model = deep_net("relu_he", depth=10)
    with cr.no_grad():
        for p in model.parameters():
            p.mul_(10)
    mse_backward(model)
    tracker = GradientFlowTracker(model)
    tracker.record()
    flags = tracker.exploding()
    assert {f.layer for f in flags} >= {"0", "2"}
    assert all(f.kind == "exploding" for f in flags)
    assert _tracked("relu_he", depth=10).exploding() == []


def test_exploding_flags_growth_across_steps():
    model = nn.Linear(2, 1)
    tracker = GradientFlowTracker(model)
    for scale in (0.01, 0.1, 1.0):
        model.weight.grad = cr.full((1, 2), scale)
        model.bias.grad = cr.full((1,), scale)
        tracker.record()
    (flag,) = tracker.exploding(window=3)
    assert "grew 100x" in flag.reason
    assert tracker.exploding(step=1) == []


def test_missing_gradients_count_as_zero_and_infinite_ones_explode():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    model[1].weight.grad = cr.full((1, 2), math.inf)
    tracker = GradientFlowTracker(list(model.named_parameters()))
    record = tracker.record()
    assert record.layers["0"].grad_norm == 0.0
    assert [f.layer for f in tracker.vanishing()] == ["0"]
    assert [f.layer for f in tracker.exploding()] == ["1"]


def test_history_is_bounded_and_errors_say_what_to_do():
    tracker = GradientFlowTracker(nn.Linear(2, 1), max_history=2)
    with pytest.raises(RuntimeError, match="call record"):
        tracker.report()
    with pytest.raises(RuntimeError, match="record_update"):
        tracker.record_update()
    for _ in range(3):
        tracker.record()
    assert [r.step for r in tracker.history] == [1, 2]
