"""Gradient flow: per-parameter and per-layer gradient statistics, step after step, and the
detectors that read them (vanishing, exploding).

A layer is a module that owns parameters directly (``fc1`` for ``fc1.weight`` and
``fc1.bias``); its gradient norm is the L2 norm over all its parameters' gradients, so a
layer's numbers do not depend on how it splits its parameters.

>>> tracker = chainrule.diagnostics.GradientFlowTracker(model)
>>> loss.backward(); tracker.record()          # gradients of this step
>>> optimizer.step(); tracker.record_update()  # update/weight ratios of this step
>>> print(tracker.report())
>>> tracker.vanishing()                        # [] when every layer gets a gradient
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..tensor import Tensor

__all__ = ["GradStats", "StepRecord", "GradientFlag", "GradientFlowTracker"]


@dataclass(frozen=True)
class GradStats:
    """Gradient statistics of one parameter or one layer at one step.

    ``update_ratio`` (||update|| / ||weight||) is filled by ``record_update``; the usual
    healthy value in SGD-style training is about 1e-3.
    """

    grad_norm: float
    mean_abs: float
    max_abs: float
    weight_norm: float
    numel: int
    update_ratio: float | None = None

    @property
    def ratio(self) -> float:
        """||grad|| / ||weight|| (inf for a zero weight with a non-zero gradient)."""
        if self.weight_norm == 0.0:
            return 0.0 if self.grad_norm == 0.0 else math.inf
        return self.grad_norm / self.weight_norm


@dataclass
class StepRecord:
    """What ``record()`` saw at one step: per parameter and per layer, in model order."""

    step: int
    params: dict = field(default_factory=dict)
    layers: dict = field(default_factory=dict)


@dataclass(frozen=True)
class GradientFlag:
    """One layer flagged by a detector, with the reason in words."""

    kind: str  # "vanishing" or "exploding"
    layer: str
    step: int
    grad_norm: float
    reason: str

    def __str__(self) -> str:
        return f"{self.kind} gradient in {self.layer} at step {self.step}: {self.reason}"


def _layer_of(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else "(model)"


def _stats(grad: np.ndarray | None, weight: np.ndarray) -> GradStats:
    w = float(np.sqrt(np.sum(np.square(weight, dtype=np.float64))))
    if grad is None:
        return GradStats(0.0, 0.0, 0.0, w, int(weight.size))
    g = np.abs(grad, dtype=np.float64)
    return GradStats(float(np.sqrt(np.sum(g * g))), float(g.mean()) if g.size else 0.0,
                     float(g.max()) if g.size else 0.0, w, int(g.size))


def _combine(parts: list) -> GradStats:
    """Layer statistics from its parameters' (norms combine as a root sum of squares)."""
    numel = sum(p.numel for p in parts)
    grad_norm = math.sqrt(sum(p.grad_norm ** 2 for p in parts))
    weight_norm = math.sqrt(sum(p.weight_norm ** 2 for p in parts))
    mean_abs = sum(p.mean_abs * p.numel for p in parts) / numel if numel else 0.0
    return GradStats(grad_norm, mean_abs, max(p.max_abs for p in parts), weight_norm, numel)


class GradientFlowTracker:
    """Collects gradient statistics of ``model`` (a Module, or ``(name, parameter)`` pairs)
    at each training step and flags layers whose gradients vanish or explode.

    >>> tracker = GradientFlowTracker(model)
    >>> for x, y in loader:
    ...     optimizer.zero_grad(); loss_fn(model(x), y).backward()
    ...     tracker.record()
    ...     optimizer.step(); tracker.record_update()
    >>> print(tracker.report())
    """

    def __init__(self, model: Any, max_history: int | None = None) -> None:
        self._model = model
        self.max_history = max_history
        self.history: list[StepRecord] = []
        self._step = 0
        self._before: dict = {}  # parameter name -> weights copied at record(), for the update

    def _named_parameters(self) -> Iterable[tuple[str, Tensor]]:
        if hasattr(self._model, "named_parameters"):
            return list(self._model.named_parameters())
        return list(self._model)

    def record(self) -> StepRecord:
        """Read every parameter's ``.grad`` (call after ``backward``) and store this step's
        statistics; parameters without a gradient count as zero gradient."""
        record = StepRecord(step=self._step)
        layers: dict = {}
        self._before = {}
        for name, param in self._named_parameters():
            weight = param._data
            grad = None if param.grad is None else param.grad._data
            stats = _stats(grad, weight)
            record.params[name] = stats
            layers.setdefault(_layer_of(name), []).append(stats)
            self._before[name] = np.array(weight, copy=True)
        record.layers = {layer: _combine(parts) for layer, parts in layers.items()}
        self.history.append(record)
        if self.max_history is not None and len(self.history) > self.max_history:
            del self.history[0]
        self._step += 1
        return record

    def record_update(self) -> StepRecord:
        """After ``optimizer.step()``: store ||update|| / ||weight|| per parameter and layer
        into the last record (the weights were copied by ``record()``)."""
        if not self.history or not self._before:
            raise RuntimeError(
                "GradientFlowTracker.record_update: call record() after backward and before "
                "optimizer.step(), then record_update() after the step"
            )
        record = self.history[-1]
        squares: dict = {}
        for name, param in self._named_parameters():
            before = self._before.get(name)
            if before is None or name not in record.params:
                continue
            delta = float(np.sqrt(np.sum(np.square(param._data - before, dtype=np.float64))))
            stats = record.params[name]
            ratio = delta / stats.weight_norm if stats.weight_norm else (0.0 if delta == 0 else math.inf)
            record.params[name] = replace(stats, update_ratio=ratio)
            layer = _layer_of(name)
            squares[layer] = squares.get(layer, 0.0) + delta * delta
        for layer, total in squares.items():
            stats = record.layers[layer]
            norm = math.sqrt(total)
            ratio = norm / stats.weight_norm if stats.weight_norm else (0.0 if norm == 0 else math.inf)
            record.layers[layer] = replace(stats, update_ratio=ratio)
        self._before = {}
        return record

    # ------------------------------------------------------------------ detectors
    def _record_at(self, step: int) -> StepRecord:
        if not self.history:
            raise RuntimeError("GradientFlowTracker: nothing recorded yet; call record() after "
                               "backward")
        return self.history[step]

    def vanishing(self, min_norm: float = 1e-7, orders: float = 3.0, step: int = -1) -> list:
        """Layers whose gradient norm is below ``min_norm``, or more than ``orders`` orders of
        magnitude under the last layer's (the one nearest the loss), at ``step`` (an index
        into ``history``, default the latest).

        >>> tracker.vanishing(orders=3)     # [GradientFlag('vanishing', '0', ...), ...]
        """
        record = self._record_at(step)
        layers = list(record.layers.items())
        if not layers:
            return []
        last_name, last = layers[-1]
        floor = last.grad_norm * 10.0 ** (-orders)
        flags = []
        for name, stats in layers:
            if stats.grad_norm < min_norm:
                reason = f"gradient norm {stats.grad_norm:.3g} < {min_norm:g}"
            elif name != last_name and stats.grad_norm < floor:
                gap = math.log10(last.grad_norm / stats.grad_norm) if stats.grad_norm else math.inf
                reason = (f"gradient norm {stats.grad_norm:.3g} is {gap:.1f} orders of magnitude "
                          f"under the last layer's ({last_name}: {last.grad_norm:.3g})")
            else:
                continue
            flags.append(GradientFlag("vanishing", name, record.step, stats.grad_norm, reason))
        return flags

    def exploding(self, max_norm: float = 1e3, growth: float = 10.0, window: int = 3,
                  step: int = -1) -> list:
        """Layers whose gradient norm is over ``max_norm`` or is not finite at ``step``, or has
        grown at every one of the last ``window`` recorded steps by ``growth`` times in all.

        >>> tracker.exploding(max_norm=100)
        """
        record = self._record_at(step)
        end = len(self.history) + step + 1 if step < 0 else step + 1
        recent = self.history[max(0, end - window):end]
        flags = []
        for name, stats in record.layers.items():
            norm = stats.grad_norm
            if not math.isfinite(norm):
                reason = f"gradient norm is {norm}"
            elif norm > max_norm:
                reason = f"gradient norm {norm:.3g} > {max_norm:g}"
            else:
                norms = [r.layers[name].grad_norm for r in recent if name in r.layers]
                rising = len(norms) == window >= 2 and all(b > a for a, b in zip(norms, norms[1:]))
                if not (rising and norms[0] > 0 and norms[-1] / norms[0] >= growth):
                    continue
                reason = (f"gradient norm grew {norms[-1] / norms[0]:.3g}x over the last "
                          f"{window} steps ({norms[0]:.3g} -> {norms[-1]:.3g})")
            flags.append(GradientFlag("exploding", name, record.step, norm, reason))
        return flags

    # ------------------------------------------------------------------ report
    def report(self, step: int = -1) -> str:
        """A table of the layers' gradient statistics at ``step`` and what the detectors say.

        >>> print(tracker.report())
        """
        record = self._record_at(step)
        width = max([len("layer")] + [len(n) for n in record.layers])
        lines = [f"gradient flow at step {record.step}",
                 f"{'layer':{width}}  {'grad norm':>10}  {'mean |g|':>10}  {'max |g|':>10}  "
                 f"{'grad/weight':>11}  {'update/weight':>13}"]
        for name, s in record.layers.items():
            update = "-" if s.update_ratio is None else f"{s.update_ratio:.3g}"
            lines.append(f"{name:{width}}  {s.grad_norm:10.3g}  {s.mean_abs:10.3g}  "
                         f"{s.max_abs:10.3g}  {s.ratio:11.3g}  {update:>13}")
        flags = self.vanishing(step=step) + self.exploding(step=step)
        lines.append("")
        if not flags:
            lines.append("no vanishing or exploding gradients detected")
        for flag in flags:
            lines.append(f"! {flag}")
        if any(f.kind == "vanishing" for f in flags):
            lines.append("  try: ReLU-family activations with He (kaiming) init, residual "
                         "connections, or normalization layers")
        if any(f.kind == "exploding" for f in flags):
            lines.append("  try: a smaller learning rate, nn.utils.clip_grad_norm_, or a smaller "
                         "initial weight scale")
        return "\n".join(lines)

