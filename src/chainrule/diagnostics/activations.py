"""Activation statistics from forward hooks: mean and std per module, dead ReLU units over
many batches, saturated sigmoid/tanh outputs, and a sample of values for histograms.

A unit is one feature (axis 1 of an ``(N, C, ...)`` output, every element of a 1-d one);
a ReLU unit is dead when it was zero for every example of every batch seen, not just one
batch.

>>> with chainrule.diagnostics.ActivationMonitor(model) as monitor:
...     for x, _ in loader:
...         model(x)
>>> monitor.dead_units()          # {"2": [5, 17], ...}: ReLU units never active
>>> print(monitor.report())
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _backend
from ..tensor import Tensor

__all__ = ["ActivationMonitor", "ActivationStats"]

_RELU = ("ReLU", "ReLU6", "LeakyReLU")  # dead when never above zero
_SATURATING = {"Sigmoid": (0.0, 1.0), "Tanh": (-1.0, 1.0), "Hardtanh": (-1.0, 1.0)}
_SAMPLE = 10_000  # values kept per module for a histogram


@dataclass(frozen=True)
class ActivationStats:
    """One module's activations over the batches seen (``mean``/``std`` of the last batch)."""

    kind: str  # the module's class name
    batches: int
    mean: float
    std: float
    dead_fraction: float | None  # ReLU-family only
    saturated_fraction: float | None  # sigmoid/tanh only: within ``margin`` of a bound


class ActivationMonitor:
    """Forward hooks on ``model``'s leaf modules (or ``modules``: names to watch) that record
    activation statistics batch after batch. Use as a context manager, or call ``remove()``.

    ``margin``: an output within this fraction of the range from a sigmoid/tanh bound counts
    as saturated (0.02: sigmoid outside [0.02, 0.98], tanh beyond +-0.96).

    >>> monitor = ActivationMonitor(model); model(x); monitor.remove()
    >>> monitor.summary()["1"].dead_fraction
    """

    def __init__(self, model: Any, modules: list | None = None, margin: float = 0.02) -> None:
        self.margin = margin
        self.history: dict = {}  # name -> list of (mean, std) per batch
        self.samples: dict = {}  # name -> values of the last batch (at most _SAMPLE)
        self._kinds: dict = {}
        self._ever_active: dict = {}  # ReLU name -> bool per unit, OR over batches
        self._saturated: dict = {}  # name -> [saturated count, total count]
        self._handles = []
        wanted = None if modules is None else set(modules)
        for name, module in model.named_modules():
            leaf = not any(True for _ in module.children())
            if (wanted is None and leaf and name) or (wanted is not None and name in wanted):
                self._kinds[name] = type(module).__name__
                self._handles.append(module.register_forward_hook(self._hook(name)))

    def _hook(self, name: str) -> Any:
        def record(module: Any, inputs: tuple, output: Any) -> None:
            if isinstance(output, Tensor) and _backend.np_dtype(output._data).kind == "f":
                self._record(name, np.asarray(output._data))
        return record

    def _record(self, name: str, values: np.ndarray) -> None:
        kind = self._kinds[name]
        self.history.setdefault(name, []).append((float(values.mean()), float(values.std())))
        flat = values.reshape(-1)
        step = max(1, flat.size // _SAMPLE)
        self.samples[name] = np.array(flat[::step][:_SAMPLE], dtype=np.float64)
        if kind in _RELU:
            units = values.reshape(1, -1) if values.ndim <= 1 else values
            axes = tuple(i for i in range(units.ndim) if i != 1)
            active = (units > 0).any(axis=axes)
            seen = self._ever_active.get(name)
            self._ever_active[name] = active if seen is None or seen.shape != active.shape \
                else seen | active
        elif kind in _SATURATING:
            low, high = _SATURATING[kind]
            edge = self.margin * (high - low)
            count = int(np.count_nonzero((values <= low + edge) | (values >= high - edge)))
            totals = self._saturated.setdefault(name, [0, 0])
            totals[0] += count
            totals[1] += values.size

    def dead_units(self) -> dict:
        """``module name -> indices of units never active`` over every batch seen (ReLU family).

        >>> monitor.dead_units()["1"]    # [3, 9]
        """
        return {name: np.flatnonzero(~active).tolist() for name, active in self._ever_active.items()}

    def summary(self) -> dict:
        """``module name -> ActivationStats`` for every module that produced an output."""
        result = {}
        for name, rows in self.history.items():
            active = self._ever_active.get(name)
            saturated = self._saturated.get(name)
            result[name] = ActivationStats(
                kind=self._kinds[name], batches=len(rows), mean=rows[-1][0], std=rows[-1][1],
                dead_fraction=None if active is None else float(1.0 - active.mean()),
                saturated_fraction=None if saturated is None or not saturated[1]
                else saturated[0] / saturated[1])
        return result

    def report(self) -> str:
        """A table of the modules' activation statistics and warnings in words.

        >>> print(monitor.report())
        """
        summary = self.summary()
        width = max([len("module")] + [len(n) for n in summary])
        lines = [f"{'module':{width}}  {'kind':12}  {'batches':>7}  {'mean':>9}  {'std':>9}  "
                 f"{'dead':>6}  {'saturated':>9}"]
        warnings = []
        for name, s in summary.items():
            dead = "-" if s.dead_fraction is None else f"{s.dead_fraction:.0%}"
            sat = "-" if s.saturated_fraction is None else f"{s.saturated_fraction:.0%}"
            lines.append(f"{name:{width}}  {s.kind:12}  {s.batches:7d}  {s.mean:9.3g}  "
                         f"{s.std:9.3g}  {dead:>6}  {sat:>9}")
            if s.dead_fraction:
                warnings.append(f"! {name}: {len(self.dead_units()[name])} ReLU units never "
                                f"active over {s.batches} batches")
            if s.saturated_fraction is not None and s.saturated_fraction > 0.5:
                warnings.append(f"! {name}: {s.saturated_fraction:.0%} of {s.kind} outputs saturated "
                                f"(their gradients are near zero)")
        return "\n".join(lines + [""] + (warnings or ["no dead or saturated units detected"]))

    def remove(self) -> None:
        """Remove the hooks (statistics stay readable)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> ActivationMonitor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()
