"""PNG plots: gradient flow from a tracker or a model, activation histograms."""

from __future__ import annotations

import pytest

import chainrule as cr
import chainrule.nn as nn
import chainrule.viz as viz
from chainrule.diagnostics import ActivationMonitor, GradientFlowTracker

image = pytest.importorskip("matplotlib.image")


def _model_after_backward():
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Sigmoid(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 1))
    with ActivationMonitor(model) as monitor:
        (model(cr.randn(16, 4)) ** 2).mean().backward()
    return model, monitor


def _not_blank(path) -> None:
    pixels = image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert pixels[..., :3].std() > 0.05  # drawn on, not one colour


def test_plot_grad_flow_from_a_tracker_and_from_a_model(tmp_path):
    model, _ = _model_after_backward()
    tracker = GradientFlowTracker(model)
    tracker.record()
    tracker.record()
    _not_blank(viz.plot_grad_flow(tracker, tmp_path / "tracker.png"))
    _not_blank(viz.plot_grad_flow(model, tmp_path / "model.png"))
    with pytest.raises(RuntimeError, match="record"):
        viz.plot_grad_flow(GradientFlowTracker(model), tmp_path / "empty.png")


def test_activation_histograms(tmp_path):
    _, monitor = _model_after_backward()
    _not_blank(viz.plot_activation_histograms(monitor, tmp_path / "acts.png"))
    assert set(monitor.samples) == {"0", "1", "2", "3", "4"}
