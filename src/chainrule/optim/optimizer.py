"""The Optimizer base: parameter groups, per-parameter state, zero_grad, state dicts.

Subclasses implement ``step`` on the raw arrays (``p._data``, ``p.grad._data``) with
NumPy ufuncs writing in place, so an update records no graph and allocates only the
scratch space its formula needs. Layouts and errors follow ``torch.optim.Optimizer``.
"""

from __future__ import annotations

import copy
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable
from itertools import chain
from typing import Any

import numpy as np

from .. import _backend
from ..autograd.grad_mode import enable_grad
from ..tensor import Tensor, _wrap


class _Required:
    """Marks a hyper-parameter that every group must give (PyTorch's ``required``)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _Required()


class Optimizer:
    """Base class of all optimizers.

    ``params`` is an iterable of tensors, of ``(name, tensor)`` pairs, or of dicts
    (parameter groups) that override the defaults for their ``"params"``.

    >>> opt = chainrule.optim.SGD([{"params": [w]}, {"params": [b], "lr": 0.01}], lr=0.1)
    >>> opt.param_groups[1]["lr"]
    0.01
    """

    # Whether every tensor in a parameter's state has that parameter's shape (checked by
    # load_state_dict); LBFGS keeps flat vectors and turns it off.
    _state_shaped_like_params = True

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        if defaults.get("differentiable"):
            raise NotImplementedError(
                f"{type(self).__name__}(differentiable=True): chainrule's optimizers update the "
                f"parameters in place without recording a graph; differentiate through an "
                f"update written with tensor ops instead"
            )
        if isinstance(params, Tensor):
            raise TypeError(
                f"{type(self).__name__}: params should be an iterable of Tensors or dicts, but got "
                f"a single Tensor of shape {tuple(params.shape)}; wrap it in a list: [tensor]"
            )
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {key}: {group[key]}" for key in sorted(group) if key != "params")
        return "\n".join(lines) + "\n)"

    # ----------------------------------------------------------------- groups
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own options (the rest from the defaults).

        >>> opt.add_param_group({"params": [new_layer_weight], "lr": 1e-3})
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the "
                "ordering of tensors in sets will change between runs. Please use a list instead."
            )
        params = list(params)
        names = [p[0] for p in params if isinstance(p, tuple)]
        if names:
            if len(names) != len(params):
                raise ValueError(
                    "all optimizer params should be with/without names. Some param names are missing"
                )
            param_group["param_names"] = names
            params = [p[1] for p in params]
        param_group["params"] = params
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"optimizer can only optimize Tensors, but params[{i}] of the new group is "
                    f"{type(p).__name__}"
                )
            if not p.is_leaf and not p.retains_grad:
                raise ValueError(
                    f"can't optimize a non-leaf Tensor (params[{i}], shape {tuple(p.shape)}, made "
                    f"by {type(p.grad_fn).__name__}); optimize the leaf it was computed from"
                )
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(
                    f"parameter group didn't specify a value of required optimization parameter {name}"
                )
            param_group.setdefault(name, default)
        if len({id(p) for p in params}) != len(params):
            warnings.warn(
                "optimizer contains a parameter group with duplicate parameters; in future, this "
                "will cause an error",
                stacklevel=3,
            )
        existing = {id(p) for group in self.param_groups for p in group["params"]}
        for group in self.param_groups:
            if ("param_names" in param_group) != ("param_names" in group):
                which = "with names" if "param_names" in param_group else "without names"
                raise ValueError(
                    "all optimizer param groups should be with/without names. cannot add param "
                    f"group {which} to the optimizer"
                )
        if any(id(p) in existing for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    # ------------------------------------------------------------------ steps
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients: to None (default), or to zeros in place.

        >>> opt.zero_grad()
        """
        for group in self.param_groups:
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    grad.detach_()
                    grad._data.fill(0)
                    grad._version[0] += 1

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update the parameters once; ``closure`` re-evaluates the model and returns the loss."""
        raise NotImplementedError

    @staticmethod
    def _evaluate(closure: Callable[[], Any] | None) -> Any:
        """Run the closure with grad mode on (PyTorch's step does the same)."""
        if closure is None:
            return None
        with enable_grad():
            return closure()

    # ------------------------------------------------------------ state dicts
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state: ``{'state': {index: {...}}, 'param_groups': [{..., 'params':
        [indices]}]}``, PyTorch's layout. The tensors are the live state, not copies.

        >>> chainrule.save(opt.state_dict(), "opt.safetensors")
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {(index[id(k)] if isinstance(k, Tensor) else k): v for k, v in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state from ``state_dict()`` (deep-copied; floating tensors cast to each
        parameter's dtype, except ``step``). Everything is checked before anything changes.

        >>> opt.load_state_dict(chainrule.load("opt.safetensors"))
        """
        name = type(self).__name__
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= state_dict.keys():
            raise ValueError(
                f"{name}.load_state_dict: expected a dict with 'state' and 'param_groups' (from "
                f"optimizer.state_dict()), got {_describe(state_dict)}"
            )
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        groups = self.param_groups
        if len(groups) != len(saved_groups):
            raise ValueError(
                f"{name}.load_state_dict: loaded state dict has {len(saved_groups)} parameter "
                f"groups, this optimizer has {len(groups)}"
            )
        for i, (group, saved) in enumerate(zip(groups, saved_groups)):
            if len(group["params"]) != len(saved["params"]):
                raise ValueError(
                    f"{name}.load_state_dict: loaded state dict contains a parameter group "
                    f"(group {i}, {len(saved['params'])} params) that doesn't match the size of "
                    f"optimizer's group ({len(group['params'])} params)"
                )
        id_map = dict(zip(chain.from_iterable(g["params"] for g in saved_groups),
                          chain.from_iterable(g["params"] for g in groups)))
        state: defaultdict[Any, dict[str, Any]] = defaultdict(dict)
        for key, value in state_dict["state"].items():
            param = id_map.get(key)
            if param is None:
                state[key] = copy.deepcopy(value)
                continue
            if self._state_shaped_like_params:
                _check_state_shapes(name, key, param, value)
            state[param] = _cast_state(param, value)
        for group, saved in zip(groups, saved_groups):
            saved["params"] = group["params"]
            if "param_names" in group and "param_names" not in saved:
                saved["param_names"] = group["param_names"]
        self.state = state
        self.param_groups = saved_groups


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return f"a dict with keys {sorted(map(str, value))}"
    return type(value).__name__


def _check_state_shapes(name: str, index: Any, param: Tensor, value: Any) -> None:
    if not isinstance(value, dict):
        return
    for key, entry in value.items():
        if isinstance(entry, Tensor) and key != "step" and entry.shape != param.shape:
            raise ValueError(
                f"{name}.load_state_dict: state '{key}' of parameter {index} has shape "
                f"{tuple(entry.shape)} but the parameter has shape {tuple(param.shape)}: the "
                f"state dict belongs to another model"
            )


def _cast_state(param: Tensor, value: Any, key: Any = None) -> Any:
    """A deep copy of ``value`` with floating tensors in ``param``'s dtype and on its device
    (not ``step``, which stays on the CPU as PyTorch's)."""
    if isinstance(value, Tensor):
        array = _backend.copy(value._data)
        if key == "step":
            return _wrap(array)
        array = _backend.to_device(array, param.device)
        if _backend.np_dtype(param._data).kind == "f" and _backend.np_dtype(array).kind == "f":
            array = _backend.astype(array, _backend.np_dtype(param._data))
        return _wrap(array)
    if isinstance(value, dict):
        return {k: _cast_state(param, v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cast_state(param, v) for v in value)
    return copy.deepcopy(value)


def _scalar(value: Any) -> float:
    """A hyper-parameter as a Python number (a one-element tensor is accepted, as in PyTorch)."""
    return float(value) if isinstance(value, Tensor) else value


def _new_step() -> Tensor:
    # PyTorch keeps the step count as a float32 0-d tensor on the CPU
    return _wrap(np.zeros((), dtype=np.float32))


def _bump_step(step: Tensor) -> float:
    """Increment a step counter in place and return the new count."""
    step._data += 1
    return float(step._data)


def _bump_version(p: Tensor) -> None:
    # an in-place change of a parameter invalidates what a graph saved of it
    p._version[0] += 1
