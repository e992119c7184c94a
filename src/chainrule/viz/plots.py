"""PNG plots of gradient flow and activations (matplotlib, the ``viz`` extra).

>>> chainrule.viz.plot_grad_flow(tracker, "grad_flow.png")
>>> chainrule.viz.plot_activation_histograms(monitor, "activations.png")
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..diagnostics.gradient_flow import GradientFlowTracker

__all__ = ["plot_grad_flow", "plot_activation_histograms", "pyplot"]


def pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend, or an error that says what to install."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("chainrule.viz plots need matplotlib: pip install 'chainrule[viz]'") from None
    matplotlib.use("Agg")  # files only: never open a window or need a display
    import matplotlib.pyplot as plt

    return plt


def plot_grad_flow(tracker_or_model: Any, path: str | os.PathLike, title: str | None = None) -> str:
    """Write a PNG of per-layer gradient magnitude (L2 norm, mean |g| and max |g|) on a log
    scale, input layers on the left. Given a tracker, earlier steps are drawn faintly behind
    the latest; given a model, its current ``.grad`` is read. Returns the path.

    >>> loss.backward()
    >>> chainrule.viz.plot_grad_flow(model, "grad_flow.png")
    """
    tracker = tracker_or_model
    if not isinstance(tracker, GradientFlowTracker):
        tracker = GradientFlowTracker(tracker_or_model)
        tracker.record()
    if not tracker.history:
        raise RuntimeError("plot_grad_flow: the tracker has recorded nothing; call record() after "
                           "backward")
    plt = pyplot()
    latest = tracker.history[-1]
    layers = list(latest.layers)
    x = np.arange(len(layers))
    tiny = 1e-30  # a log scale cannot show 0: a zero gradient is drawn at the floor
    fig, ax = plt.subplots(figsize=(max(6.0, 0.25 * len(layers) + 3), 4.5), dpi=100)
    for record in tracker.history[-20:-1]:
        ax.plot(x, [max(record.layers[n].grad_norm, tiny) if n in record.layers else np.nan
                    for n in layers], color="tab:blue", alpha=0.15, linewidth=1)
    for field_name, label, style in (("grad_norm", "L2 norm", "-o"), ("mean_abs", "mean |g|", "-s"),
                                     ("max_abs", "max |g|", "--^")):
        values = [max(getattr(latest.layers[n], field_name), tiny) for n in layers]
        ax.plot(x, values, style, markersize=3, label=label)
    flagged = {f.layer for f in tracker.vanishing()} | {f.layer for f in tracker.exploding()}
    for i, name in enumerate(layers):
        if name in flagged:
            ax.axvspan(i - 0.5, i + 0.5, color="tab:red", alpha=0.12, linewidth=0)
    ax.set_yscale("log")
    ax.set_xticks(x)
    ax.set_xticklabels(layers, rotation=90, fontsize=7)
    ax.set_xlabel("layer (input to output)")
    ax.set_ylabel("gradient magnitude")
    ax.set_title(title or f"gradient flow at step {latest.step} (red: flagged layers)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.fspath(path), format="png")
    plt.close(fig)
    return os.fspath(path)


def plot_activation_histograms(monitor: Any, path: str | os.PathLike, bins: int = 50) -> str:
    """Write a PNG with one histogram per monitored module of its last batch's activations
    (an ``ActivationMonitor``), titled with mean/std and the dead or saturated fraction.

    >>> chainrule.viz.plot_activation_histograms(monitor, "activations.png")
    """
    samples = monitor.samples
    if not samples:
        raise RuntimeError("plot_activation_histograms: the monitor saw no batch; run the model "
                           "inside it first")
    plt = pyplot()
    count = len(samples)
    cols = min(4, count)
    rows = (count + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), dpi=100, squeeze=False)
    summary = monitor.summary()
    for ax, (name, values) in zip(axes.flat, samples.items()):
        ax.hist(values, bins=bins, color="tab:blue", alpha=0.8)
        stats = summary[name]
        extra = ""
        if stats.dead_fraction is not None:
            extra = f"\ndead {stats.dead_fraction:.0%}"
        elif stats.saturated_fraction is not None:
            extra = f"\nsaturated {stats.saturated_fraction:.0%}"
        ax.set_title(f"{name} ({stats.kind})\nmean {stats.mean:.3g} std {stats.std:.3g}{extra}",
                     fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[count:]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(os.fspath(path), format="png")
    plt.close(fig)
    return os.fspath(path)
