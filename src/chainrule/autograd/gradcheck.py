"""Check analytic gradients against central finite differences, as torch.autograd.gradcheck.

The Jacobian is built both ways, column by column: numerically by nudging one input
element by +-eps, analytically by one vector-Jacobian product per output element. An
element passes when ``|analytic - numeric| <= atol + rtol * |numeric|``; on failure the
error names the worst element with both values and the relative error
``|analytic - numeric| / max(|analytic|, |numeric|)``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _backend
from ..tensor import Tensor, _wrap
from . import engine, grad_mode


class GradcheckError(RuntimeError):
    """Raised by gradcheck when an analytic gradient disagrees with finite differences."""


def _outputs(fn: Callable, inputs: tuple) -> tuple:
    out = fn(*inputs)
    return (out,) if isinstance(out, Tensor) else tuple(out)


def _differentiable(outputs: tuple) -> list:
    return [o for o in outputs if isinstance(o, Tensor) and _backend.np_dtype(o._data).kind == "f"]


def _host(t: Tensor) -> np.ndarray:
    """A tensor's elements as float64 on the host, raveled in C order."""
    return _backend.to_numpy(t._data).astype(np.float64).ravel()


def _numeric_jacobian(fn: Callable, inputs: tuple, index: int, eps: float, total: int) -> np.ndarray:
    """d outputs / d inputs[index] as (input numel, total output numel)."""
    x = inputs[index]._data
    jacobian = np.zeros((inputs[index].numel(), total))
    with grad_mode.no_grad():
        for row, position in enumerate(itertools.product(*[range(n) for n in x.shape])):
            original = float(x[position])
            x[position] = original + eps
            plus = _flat_outputs(fn, inputs)
            x[position] = original - eps
            minus = _flat_outputs(fn, inputs)
            x[position] = original
            jacobian[row] = (plus - minus) / (2 * eps)
    return jacobian


def _flat_outputs(fn: Callable, inputs: tuple) -> np.ndarray:
    """All differentiable outputs, raveled in C order and concatenated, as float64."""
    parts = [_host(o) for o in _differentiable(_outputs(fn, inputs))]
    return np.concatenate(parts) if parts else np.zeros(0)


def _analytic_jacobian(fn: Callable, inputs: tuple, wanted: list) -> list:
    """For each wanted input, d outputs / d input as (input numel, total output numel)."""
    outputs = _differentiable(_outputs(fn, inputs))
    total = sum(o.numel() for o in outputs)
    jacobians = [np.zeros((inputs[i].numel(), total)) for i in wanted]
    column = 0
    for position, out in enumerate(outputs):
        for k in range(out.numel()):
            # C-ordered seeds: reshape(-1) of them is a view, whatever the output's layout
            hosts = [np.zeros(o._data.shape, _backend.np_dtype(o._data)) for o in outputs]
            hosts[position].reshape(-1)[k] = 1
            seeds = [_wrap(_backend.to_device(h, o.device)) for h, o in zip(hosts, outputs)]
            live = [(o, s) for o, s in zip(outputs, seeds) if o._rg]
            if live:
                grads = engine.grad([o for o, _ in live], [inputs[i] for i in wanted],
                                    [s for _, s in live], retain_graph=True, allow_unused=True)
                for j, g in enumerate(grads):
                    if g is not None:
                        jacobians[j][:, column] = _host(g)
            column += 1
    return jacobians


def gradcheck(
    func: Callable,
    inputs: Any,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    **unused: Any,
) -> bool:
    """True when ``func``'s gradients match central differences at ``inputs``.

    Use float64 inputs with ``requires_grad=True``.

    >>> x = chainrule.randn(3, dtype=chainrule.float64, requires_grad=True)
    >>> chainrule.autograd.gradcheck(lambda t: (t * t).sum(), (x,))
    True
    """
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    wanted = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t._rg]
    if not wanted:
        raise ValueError("gradcheck expects at least one input tensor with requires_grad=True")
    for i in wanted:
        if _backend.np_dtype(inputs[i]._data) != np.float64:
            raise GradcheckError(
                f"gradcheck: input {i} is {inputs[i].dtype}; finite differences need float64 "
                f"inputs (call .double())"
            )
    analytic = _analytic_jacobian(func, inputs, wanted)
    total = analytic[0].shape[1]
    for j, i in enumerate(wanted):
        numeric = _numeric_jacobian(func, inputs, i, eps, total)
        failure = _compare(analytic[j], numeric, atol, rtol)
        if failure is not None:
            element, output, a, n = failure
            relative = abs(a - n) / max(abs(a), abs(n), 1e-300)
            message = (
                f"Jacobian mismatch for output element {output} with respect to input {i}, "
                f"element {tuple(int(k) for k in np.unravel_index(element, inputs[i].shape))}"
                f": analytic {a:.10g}, numeric {n:.10g}, relative error {relative:.3g} "
                f"(atol={atol}, rtol={rtol})"
            )
            if raise_exception:
                raise GradcheckError(message)
            return False
    return True


def _compare(analytic: np.ndarray, numeric: np.ndarray, atol: float,
             rtol: float) -> tuple | None:
    if analytic.shape != numeric.shape:
        raise GradcheckError(
            f"gradcheck: analytic Jacobian {analytic.shape} and numeric {numeric.shape} differ "
            f"in shape"
        )
    bad = ~np.isclose(analytic, numeric, rtol=rtol, atol=atol, equal_nan=True)
    if not bad.any():
        return None
    excess = np.where(bad, np.abs(analytic - numeric) - rtol * np.abs(numeric), -np.inf)
    excess = np.nan_to_num(excess, nan=np.inf)
    element, output = np.unravel_index(int(np.argmax(excess)), analytic.shape)
    return element, output, float(analytic[element, output]), float(numeric[element, output])


def gradgradcheck(
    func: Callable,
    inputs: Any,
    grad_outputs: Any = None,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    seed: int = 0,
    **unused: Any,
) -> bool:
    """Check second derivatives: gradcheck of the vector-Jacobian product of ``func``.

    ``grad_outputs`` (random by default) are treated as inputs too, so both the Hessian
    and the mixed terms are checked.
    """
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    outputs = _differentiable(_outputs(func, inputs))
    if grad_outputs is None:
        rng = np.random.default_rng(seed)
        grad_outputs = tuple(
            _wrap(_backend.to_device(rng.standard_normal(o._data.shape), o.device)).requires_grad_()
            for o in outputs
        )
    else:
        grad_outputs = (grad_outputs,) if isinstance(grad_outputs, Tensor) else tuple(
            grad_outputs)
    wanted = [t for t in inputs if isinstance(t, Tensor) and t._rg]
    count = len(inputs)

    def first_order(*args: Tensor) -> tuple:
        xs, vs = args[:count], args[count:]
        with grad_mode.enable_grad():  # the numeric pass runs under no_grad; this needs a graph
            outs = _differentiable(_outputs(func, xs))
            live = [(o, v) for o, v in zip(outs, vs) if o._rg]
            chosen = [t for t in xs if isinstance(t, Tensor) and t._rg]
            grads = engine.grad([o for o, _ in live], chosen, [v for _, v in live],
                                create_graph=True, allow_unused=True)
        return tuple(g if g is not None else _wrap(_backend.namespace_of(t._data).zeros_like(t._data))
                     for g, t in zip(grads, chosen))

    if not wanted:
        raise ValueError("gradgradcheck expects an input with requires_grad=True")
    return gradcheck(first_order, inputs + tuple(grad_outputs), eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception)
