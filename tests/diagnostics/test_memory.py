"""saved_tensors_report lists exactly what the rules save; the live counter finds the peak."""

from __future__ import annotations

import numpy as np

import chainrule as cr
import chainrule.nn as nn
import chainrule.nn.functional as F
from chainrule.diagnostics import saved_tensors_report, track_modules, track_saved_memory


def _mlp_loss():
    rng = np.random.default_rng(0)
    x = cr.tensor(rng.standard_normal((8, 5)))
    w1 = cr.tensor(rng.standard_normal((7, 5)), requires_grad=True)
    w2 = cr.tensor(rng.standard_normal((3, 7)), requires_grad=True)
    target = cr.tensor(rng.standard_normal((8, 3)))
    h = F.linear(x, w1).relu()
    loss = ((F.linear(h, w2) - target) ** 2).mean()
    return loss, x, w1, h, w2


def test_report_lists_exactly_the_saved_arrays_of_a_two_layer_mlp():
    loss, x, w1, h, w2 = _mlp_loss()
    report = saved_tensors_report(loss)
    listed = sorted((e.op, e.shapes) for e in report.entries)
    assert listed == sorted([
        ("AddmmBackward0", ((8, 5), (7, 5))),   # x, W1
        ("ReluBackward0", ((8, 7),)),           # its output h
        ("AddmmBackward0", ((8, 7), (3, 7))),   # h (the same array: counted once), W2
        ("PowBackward0", ((8, 3),)),            # the difference
    ])
    expected = 8 * (8 * 5 + 7 * 5 + 8 * 7 + 3 * 7 + 8 * 3)
    assert report.total_bytes == expected
    assert sum(report.by_op.values()) == expected
    assert "total" in str(report)


def test_views_count_by_their_base():
    x = cr.randn(4, 4, dtype=cr.float64, requires_grad=True)
    y = x * 1
    loss = (y[0] * y[1]).sum()  # two views of one array saved by mul
    report = saved_tensors_report(loss)
    assert report.total_bytes == 4 * 4 * 8


def test_report_by_module():
    model = nn.Sequential(nn.Linear(5, 7), nn.Linear(7, 2)).double()
    with track_modules(model):
        out = model(cr.randn(3, 5, dtype=cr.float64)).sum()
    by_module = saved_tensors_report(out).by_module
    assert set(by_module) >= {"0", "1"}
    assert by_module["1"] == 8 * 2 * 7 + 8 * 3 * 7  # W of layer 1 and its input


def test_live_counter_peaks_before_backward_and_returns_to_zero():
    with track_saved_memory() as memory:
        loss, *_ = _mlp_loss()
        before = memory.current_bytes
        loss.backward()
    assert memory.peak_bytes == before == 8 * (8 * 5 + 7 * 5 + 8 * 7 + 3 * 7 + 8 * 3)
    assert memory.current_bytes == 0
