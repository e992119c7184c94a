"""ActivationMonitor: dead ReLU units counted over batches, saturation, mean/std."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn as nn
from chainrule.diagnostics import ActivationMonitor

DEAD = [1, 4, 6]  # planted: weight rows zero, bias negative, so relu(.) = 0 for any input


def _planted_net() -> nn.Sequential:
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3), nn.Sigmoid())
    with cr.no_grad():
        for unit in DEAD:
            model[0].weight[unit] = 0.0
            model[0].bias[unit] = -1.0
        # unit 2 fires only for inputs whose first feature is large: alive in one batch only
        model[0].weight[2] = cr.tensor([1.0, 0.0, 0.0, 0.0, 0.0])
        model[0].bias[2] = -5.0
    return model


def test_dead_units_are_the_planted_ones_over_batches_not_one_batch():
    model = _planted_net()
    gen = cr.Generator().manual_seed(1)
    with ActivationMonitor(model) as monitor:
        for _ in range(3):
            model(cr.randn(16, 5, generator=gen) * 0.5)
        assert 2 in monitor.dead_units()["1"]  # not yet active: would be a wrong "dead"
        waking = cr.zeros(1, 5)
        waking[0, 0] = 10.0
        model(waking)
    assert monitor.dead_units() == {"1": DEAD}
    stats = monitor.summary()["1"]
    assert stats.batches == 4 and stats.dead_fraction == pytest.approx(3 / 8)
    assert "3 ReLU units never active over 4 batches" in monitor.report()
    model(cr.randn(2, 5))  # hooks removed on exit: nothing more is recorded
    assert monitor.summary()["1"].batches == 4


def test_saturation_mean_and_std():
    model = _planted_net()
    with cr.no_grad():
        model[2].weight.fill_(0.0)
        model[2].bias.copy_(cr.tensor([10.0, -10.0, 0.0]))  # two of three outputs saturated
    monitor = ActivationMonitor(model)
    x = cr.randn(10, 5)
    out = model(x)
    monitor.remove()
    stats = monitor.summary()["3"]
    assert stats.kind == "Sigmoid"
    assert stats.saturated_fraction == pytest.approx(2 / 3)
    assert stats.mean == pytest.approx(float(out.detach().numpy().mean()), rel=1e-6)
    assert stats.std == pytest.approx(float(out.detach().numpy().std()), rel=1e-6)
    assert stats.dead_fraction is None
    assert monitor.summary()["0"].saturated_fraction is None
    assert "saturated" in monitor.report()


def test_only_named_modules_and_conv_units_are_channels():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
    with cr.no_grad():
        model[0].weight[3] = 0.0
        model[0].bias[3] = -1.0
    with ActivationMonitor(model, modules=["1"]) as monitor:
        model(cr.randn(2, 1, 5, 5))
    assert list(monitor.summary()) == ["1"]
    assert monitor.dead_units() == {"1": [3]}
    assert monitor.samples["1"].size == 2 * 4 * 5 * 5
    assert np.all(monitor.samples["1"] >= 0)
