"""``chainrule.autograd.functional``: Jacobians, Hessians and products with them, with the
signatures of ``torch.autograd.functional``.

``vjp`` and ``hvp``/``vhp`` use reverse mode (the last two differentiate a gradient
again); ``jvp`` uses the forward-mode engine; ``jacobian`` uses either, by ``strategy``.

>>> from chainrule.autograd.functional import hessian
>>> hessian(lambda x: (x ** 3).sum(), chainrule.tensor([1.0, 2.0]))
tensor([[ 6.,  0.],
        [ 0., 12.]])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import _backend
from ..tensor import Tensor
from . import engine, forward_ad, grad_mode
from ._jacobians import forward_jacobian, reverse_jacobian, zeros_like

__all__ = ["vjp", "jvp", "jacobian", "hessian", "hvp", "vhp"]


def _as_tuple(value: Any, name: str, fn: str) -> tuple[bool, tuple]:
    if isinstance(value, Tensor):
        return False, (value,)
    if isinstance(value, (tuple, list)) and all(isinstance(v, Tensor) for v in value):
        return True, tuple(value)
    raise TypeError(f"{fn}: the {name} must be a Tensor or a tuple of Tensors, got {type(value)}")


def _prepare(inputs: tuple, create_graph: bool) -> tuple:
    """Fresh leaves to differentiate against; with create_graph, still wired to the caller's
    graph so that the result can be differentiated with respect to the original inputs."""
    prepared = []
    for t in inputs:
        if create_graph and t._rg:
            prepared.append(forward_ad.graph_alias(t))
        else:
            prepared.append(t.detach().requires_grad_(_backend.np_dtype(t._data).kind == "f"))
    return tuple(prepared)


def _finish(values: Any, create_graph: bool) -> Any:
    if isinstance(values, Tensor):
        return values if create_graph else values.detach()
    if values is None:
        return None
    return tuple(_finish(v, create_graph) for v in values)


def _outputs(func: Callable, inputs: tuple, fn: str) -> tuple[bool, tuple]:
    with grad_mode.enable_grad():
        result = func(*inputs)
    return _as_tuple(result, "output of the user-provided function", fn)


def _check_v(v: Any, like: tuple, what: str, fn: str) -> tuple:
    if v is None:
        if len(like) != 1 or like[0]._data.size != 1:
            raise RuntimeError(
                f"{fn}: the vector v can only be None if the {what} is a single element tensor"
            )
        return (Tensor(1.0, dtype=like[0].dtype).reshape(like[0].shape),)
    _, vs = _as_tuple(v, "vector v", fn)
    if len(vs) != len(like) or any(a.shape != b.shape for a, b in zip(vs, like)):
        raise RuntimeError(
            f"{fn}: v has shapes {[tuple(a.shape) for a in vs]} but the {what} has shapes "
            f"{[tuple(b.shape) for b in like]}"
        )
    return vs


def _grads_or_zeros(grads: tuple, inputs: tuple, strict: bool, fn: str) -> tuple:
    out = []
    for j, (g, x) in enumerate(zip(grads, inputs)):
        if g is None:
            if strict:
                raise RuntimeError(
                    f"{fn}: the output of the user-provided function is independent of input "
                    f"{j}. This is not allowed in strict mode."
                )
            g = zeros_like(x)
        out.append(g)
    return tuple(out)


def vjp(func: Callable, inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False) -> tuple:
    """``(func(inputs), v^T J)``: the vector-Jacobian product at ``inputs``."""
    tuple_in, ins = _as_tuple(inputs, "inputs", "vjp")
    ins = _prepare(ins, create_graph)
    tuple_out, outs = _outputs(func, ins, "vjp")
    vs = _check_v(v, outs, "output", "vjp")
    live = [(o, w) for o, w in zip(outs, vs) if o._rg]
    grads = engine.grad([o for o, _ in live], ins, [w for _, w in live],
                        create_graph=create_graph, allow_unused=True) if live else (None,) * len(ins)
    grads = _grads_or_zeros(grads, ins, strict, "vjp")
    out_value = outs if tuple_out else outs[0]
    return _finish(out_value, create_graph), _finish(grads if tuple_in else grads[0], create_graph)


def jvp(func: Callable, inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False) -> tuple:
    """``(func(inputs), J v)``: the Jacobian-vector product, by forward mode."""
    tuple_in, ins = _as_tuple(inputs, "inputs", "jvp")
    vs = _check_v(v, ins, "input", "jvp")
    ins = _prepare(ins, create_graph)
    with forward_ad.dual_level():
        result = func(*[forward_ad.make_dual(x, t) for x, t in zip(ins, vs)])
        tuple_out, outs = _as_tuple(result, "output of the user-provided function", "jvp")
        unpacked = [forward_ad.unpack_dual(o) for o in outs]
    tangents = []
    for i, (primal, tangent) in enumerate(unpacked):
        if tangent is None:
            if strict:
                raise RuntimeError(
                    f"jvp: output {i} of the user-provided function is independent of the "
                    f"inputs. This is not allowed in strict mode."
                )
            tangent = zeros_like(primal)
        tangents.append(tangent)
    primals = tuple(p for p, _ in unpacked)
    return (_finish(primals if tuple_out else primals[0], create_graph),
            _finish(tuple(tangents) if tuple_out else tangents[0], create_graph))


def jacobian(func: Callable, inputs: Any, create_graph: bool = False, strict: bool = False,
             vectorize: bool = False, strategy: str = "reverse-mode") -> Any:
    """The Jacobian of ``func`` at ``inputs``: entry ``[i][j]`` has shape
    ``outputs[i].shape + inputs[j].shape``, nested like PyTorch's (a Tensor when both are
    single tensors). ``vectorize`` is accepted for compatibility; rows are computed in turn.
    """
    if strategy not in ("reverse-mode", "forward-mode"):
        raise ValueError(f"jacobian: strategy must be 'reverse-mode' or 'forward-mode', got {strategy}")
    tuple_in, ins = _as_tuple(inputs, "inputs", "jacobian")
    ins = _prepare(ins, create_graph)
    if strategy == "forward-mode":
        if create_graph:
            raise NotImplementedError("jacobian: forward-mode strategy with create_graph=True")
        tuple_out, jac = forward_jacobian(func, ins)
    else:
        tuple_out, outs = _outputs(func, ins, "jacobian")
        jac = reverse_jacobian(outs, ins, create_graph, strict)
    jac = [[_finish(entry, create_graph) for entry in row] for row in jac]
    return _nest(jac, tuple_in, tuple_out)


def _nest(jac: list, tuple_in: bool, tuple_out: bool) -> Any:
    rows = [tuple(row) if tuple_in else row[0] for row in jac]
    return tuple(rows) if tuple_out else rows[0]


def hessian(func: Callable, inputs: Any, create_graph: bool = False, strict: bool = False,
            vectorize: bool = False, outer_jacobian_strategy: str = "reverse-mode") -> Any:
    """The Hessian of a scalar ``func``: entry ``[i][j]`` has shape
    ``inputs[i].shape + inputs[j].shape`` (a Tensor for a single input)."""
    tuple_in, ins = _as_tuple(inputs, "inputs", "hessian")

    def gradient(*xs: Tensor) -> tuple:
        out = func(*xs)
        if not isinstance(out, Tensor) or out._data.size != 1:
            raise RuntimeError("hessian: the function given to hessian must return a single-element Tensor")
        grads = engine.grad(out, xs, create_graph=True, allow_unused=True) if out._rg else (
            (None,) * len(xs))
        return _grads_or_zeros(grads, xs, strict, "hessian")

    jac = jacobian(gradient, ins, create_graph=create_graph, strict=strict,
                   strategy=outer_jacobian_strategy)
    return jac if tuple_in else jac[0][0]


def vhp(func: Callable, inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False) -> tuple:
    """``(func(inputs), v^T H)`` without forming H: the gradient's VJP with v."""
    tuple_in, ins = _as_tuple(inputs, "inputs", "vhp")
    vs = _check_v(v, ins, "input", "vhp")
    ins = _prepare(ins, True)
    with grad_mode.enable_grad():
        out = func(*ins)
        if not isinstance(out, Tensor) or out._data.size != 1:
            raise RuntimeError("vhp: the function given to vhp must return a single-element Tensor")
        grads = engine.grad(out, ins, create_graph=True, allow_unused=True)
        grads = _grads_or_zeros(grads, ins, strict, "vhp")
        live = [(g, w) for g, w in zip(grads, vs) if g._rg]
        second = engine.grad([g for g, _ in live], ins, [w for _, w in live],
                             create_graph=create_graph, allow_unused=True) if live else (
            (None,) * len(ins))
    second = _grads_or_zeros(second, ins, strict, "vhp")
    return _finish(out, create_graph), _finish(second if tuple_in else second[0], create_graph)


def hvp(func: Callable, inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False) -> tuple:
    """``(func(inputs), H v)``; H is symmetric for the twice-differentiable functions here,
    so this is ``vhp``."""
    return vhp(func, inputs, v, create_graph, strict)
