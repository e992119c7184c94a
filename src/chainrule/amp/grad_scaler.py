"""``GradScaler``: dynamic loss scaling, as ``torch.amp.GradScaler``.

Small float16 gradients underflow to zero. Multiplying the loss by a large scale lifts
them into range; the gradients are divided by it again before the optimizer uses them.
A step whose gradients hold an Inf or NaN (the scale was too large) is skipped and the
scale halved; after ``growth_interval`` steps without one, the scale doubles. The
arithmetic is PyTorch's, value for value: the scale is a float32 number, and the update
rule is ``_amp_update_scale_``'s.

>>> scaler = chainrule.amp.GradScaler("cpu")
>>> for x, y in batches:
...     optimizer.zero_grad()
...     with chainrule.autocast("cpu", dtype=chainrule.float16):
...         loss = F.cross_entropy(model(x), y)
...     scaler.scale(loss).backward()
...     scaler.unscale_(optimizer)                   # before clipping, if you clip
...     nn.utils.clip_grad_norm_(model.parameters(), 1.0)
...     scaler.step(optimizer)                       # skipped if a gradient is Inf/NaN
...     scaler.update()
"""

from __future__ import annotations

import numbers
import warnings
from collections import abc, defaultdict
from enum import Enum
from typing import Any

import numpy as np

from .. import _dtype
from ..autograd import grad_mode
from ..ops import math
from ..tensor import Tensor

__all__ = ["GradScaler", "OptState"]


class OptState(Enum):
    """Where an optimizer is in the current iteration: gradients as backward left them,
    unscaled, or stepped."""

    READY = 0
    UNSCALED = 1
    STEPPED = 2


def _refresh_per_optimizer_state() -> dict:
    return {"stage": OptState.READY, "found_inf": None}


def _float32(value: float) -> float:
    """``value`` rounded to float32, as stored in PyTorch's float32 scale tensor (a value
    too large for float32 becomes inf)."""
    with np.errstate(over="ignore"):
        return float(np.float32(value))


class GradScaler:
    """Scale the loss, unscale the gradients, skip steps with Inf/NaN gradients and adapt
    the scale: ``scale``, ``unscale_``, ``step``, ``update`` (see the module's example).

    ``device`` is ``"cpu"``; ``"cuda"`` disables the scaler with a warning, as PyTorch does
    where CUDA is not available. A disabled scaler passes everything through.

    >>> scaler = chainrule.amp.GradScaler(init_scale=2.0**16, growth_interval=2000)
    >>> scaler.get_scale()
    65536.0
    """

    def __init__(self, device: str = "cpu", init_scale: float = 2.0**16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000,
                 enabled: bool = True) -> None:
        self._device = device
        self._enabled = enabled
        if device == "cuda" and enabled:
            warnings.warn("chainrule.amp.GradScaler is enabled, but CUDA is not available. "
                          "Disabling.", stacklevel=2)
            self._enabled = False
        elif device not in ("cpu", "cuda"):
            raise RuntimeError(f"GradScaler: device {device!r} is not available: this build "
                               f"runs on the CPU")
        if self._enabled:
            if growth_factor <= 1.0:
                raise ValueError("The growth factor must be > 1.0.")
            if backoff_factor >= 1.0:
                raise ValueError("The backoff factor must be < 1.0.")
        self._init_scale = init_scale
        self._growth_factor = growth_factor
        self._backoff_factor = backoff_factor
        self._growth_interval = growth_interval
        self._init_growth_tracker = 0
        # the float32 scale and the count of finite steps since the last change; both set
        # on the first scale() (PyTorch makes its tensors lazily too)
        self._scale: float | None = None
        self._growth_tracker: int | None = None
        self._per_optimizer_states: defaultdict = defaultdict(_refresh_per_optimizer_state)

    # ------------------------------------------------------------------ the iteration
    def scale(self, outputs: Any) -> Any:
        """``outputs`` (a tensor, or an iterable of them) multiplied by the scale.

        >>> scaler.scale(loss).backward()
        """
        if not self._enabled:
            return outputs
        if self._scale is None:
            self._scale = _float32(self._init_scale)
            self._growth_tracker = self._init_growth_tracker

        def apply_scale(value: Any) -> Any:
            if isinstance(value, Tensor):
                return value * self._scale
            if isinstance(value, abc.Iterable):
                scaled = map(apply_scale, value)
                return type(value)(scaled) if isinstance(value, (list, tuple)) else scaled
            raise ValueError("outputs must be a Tensor or an iterable of Tensors")

        return apply_scale(outputs)

    def unscale_(self, optimizer: Any) -> None:
        """Divide ``optimizer``'s gradients by the scale, in place, and note whether any is
        Inf or NaN. Call it at most once per step, before anything that reads the
        gradients (clipping); ``step`` calls it if you did not.

        >>> scaler.unscale_(optimizer)
        >>> chainrule.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        """
        if not self._enabled:
            return
        self._check_scale_growth_tracker("unscale_")
        state = self._per_optimizer_states[id(optimizer)]
        if state["stage"] is OptState.UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since the "
                               "last update().")
        if state["stage"] is OptState.STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        # PyTorch: self._scale.double().reciprocal().float()
        inv_scale = _float32(1.0 / self._scale)
        state["found_inf"] = self._unscale_grads_(optimizer, inv_scale)
        state["stage"] = OptState.UNSCALED

    def _unscale_grads_(self, optimizer: Any, inv_scale: float) -> float:
        found_inf = 0.0
        with grad_mode.no_grad():
            for group in optimizer.param_groups:
                for param in group["params"]:
                    grad = param.grad
                    if grad is None:
                        continue
                    if grad._data.dtype == _dtype.float16.np:
                        raise ValueError("Attempting to unscale FP16 gradients.")
                    if not bool(math.isfinite(grad).all()):
                        found_inf = 1.0
                    # inv_scale is a float32 value: float32 gradients are multiplied in float32
                    grad.mul_(inv_scale)
        return found_inf

    def step(self, optimizer: Any, *args: Any, **kwargs: Any) -> Any:
        """``optimizer.step(*args, **kwargs)`` on unscaled gradients, unless one of them is
        Inf or NaN: then the step is skipped (and None returned).

        >>> scaler.step(optimizer)
        """
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is enabled.")
        self._check_scale_growth_tracker("step")
        state = self._per_optimizer_states[id(optimizer)]
        if state["stage"] is OptState.STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if state["stage"] is OptState.READY:
            self.unscale_(optimizer)
        result = None
        if not state["found_inf"]:
            result = optimizer.step(*args, **kwargs)
        state["stage"] = OptState.STEPPED
        return result

    def update(self, new_scale: float | Tensor | None = None) -> None:
        """Adapt the scale for the next iteration: times ``backoff_factor`` if this
        iteration's gradients held an Inf/NaN, times ``growth_factor`` after
        ``growth_interval`` finite ones in a row. ``new_scale`` sets it instead.

        >>> scaler.update()
        """
        if not self._enabled:
            return
        self._check_scale_growth_tracker("update")
        if new_scale is not None:
            self._scale = _float32(self._new_scale_value(new_scale))
        else:
            found = [s["found_inf"] for s in self._per_optimizer_states.values()
                     if s["found_inf"] is not None]
            if not found:
                raise RuntimeError("No inf checks were recorded prior to update().")
            self._update_scale(sum(found))
        self._per_optimizer_states = defaultdict(_refresh_per_optimizer_state)

    def _update_scale(self, found_inf: float) -> None:
        # PyTorch's _amp_update_scale_: the float32 scale times a double factor, stored
        # back as float32; a growth that would overflow to inf leaves the scale unchanged
        if found_inf:
            self._scale = _float32(self._scale * self._backoff_factor)
            self._growth_tracker = 0
            return
        successful = self._growth_tracker + 1
        if successful == self._growth_interval:
            grown = _float32(self._scale * self._growth_factor)
            if np.isfinite(grown):
                self._scale = grown
            self._growth_tracker = 0
        else:
            self._growth_tracker = successful

    @staticmethod
    def _new_scale_value(new_scale: Any) -> float:
        if isinstance(new_scale, numbers.Real):
            return float(new_scale)
        if isinstance(new_scale, Tensor) and new_scale.numel() == 1 and not new_scale.requires_grad:
            return float(new_scale.item())
        raise ValueError("new_scale should be a float or a 1-element tensor with "
                         "requires_grad=False.")

    def _check_scale_growth_tracker(self, funcname: str) -> None:
        if self._scale is None:
            raise RuntimeError(f"Attempted {funcname} but _scale is None.  This may indicate "
                               f"your script did not use scaler.scale(loss or outputs) earlier "
                               f"in the iteration.")

    # ------------------------------------------------------------------ settings and state
    def get_scale(self) -> float:
        """The current scale (1.0 when disabled)."""
        if not self._enabled:
            return 1.0
        return _float32(self._init_scale) if self._scale is None else self._scale

    def get_growth_factor(self) -> float:
        """What the scale is multiplied by after ``growth_interval`` finite steps."""
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        """Set the growth factor, e.g. ``scaler.set_growth_factor(4.0)``."""
        self._growth_factor = new_factor

    def get_backoff_factor(self) -> float:
        """What the scale is multiplied by after a step with an Inf/NaN gradient."""
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        """Set the backoff factor, e.g. ``scaler.set_backoff_factor(0.25)``."""
        self._backoff_factor = new_factor

    def get_growth_interval(self) -> int:
        """How many finite steps in a row make the scale grow."""
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        """Set the growth interval, e.g. ``scaler.set_growth_interval(1000)``."""
        self._growth_interval = new_interval

    def _get_growth_tracker(self) -> int:
        if not self._enabled:
            return 0
        return self._init_growth_tracker if self._growth_tracker is None else self._growth_tracker

    def is_enabled(self) -> bool:
        """False for a scaler made with ``enabled=False`` (or for the unavailable CUDA)."""
        return self._enabled

    def state_dict(self) -> dict:
        """The scale and its settings (empty when disabled), for a checkpoint.

        >>> chainrule.save({"model": model.state_dict(), "scaler": scaler.state_dict()}, path)
        """
        if not self._enabled:
            return {}
        return {"scale": self.get_scale(), "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor, "growth_interval": self._growth_interval,
                "_growth_tracker": self._get_growth_tracker()}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what ``state_dict`` returned.

        >>> scaler.load_state_dict(chainrule.load(path)["scaler"])
        """
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("The source state dict is empty, possibly because it was saved "
                               "from a disabled instance of GradScaler.")
        self._init_scale = float(state_dict["scale"])
        if self._scale is not None:
            self._scale = _float32(self._init_scale)
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._init_growth_tracker = int(state_dict["_growth_tracker"])
        if self._growth_tracker is not None:
            self._growth_tracker = self._init_growth_tracker
