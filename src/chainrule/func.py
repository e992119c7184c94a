"""``chainrule.func``: composable function transforms with the signatures of ``torch.func``.

Each transform takes a function and returns a function; they nest (``grad(grad(f))``),
because a transform applied to inputs that already require grad records its own work.

>>> from chainrule.func import grad
>>> grad(grad(lambda x: x.sin()))(chainrule.tensor(0.5))     # -sin(0.5)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from .autograd import engine, forward_ad, grad_mode
from .autograd._jacobians import forward_jacobian, reverse_jacobian, zeros_like
from .tensor import Tensor

__all__ = ["grad", "grad_and_value", "vjp", "jvp", "jacrev", "jacfwd", "hessian"]


def _argnums(argnums: int | tuple, count: int, fn: str) -> tuple[bool, tuple]:
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    for n in nums:
        if not -count <= n < count:
            raise ValueError(f"{fn}: argnums {n} is out of range for {count} positional arguments")
    return single, tuple(n % count for n in nums)


def _track(args: tuple, nums: tuple) -> tuple[list, bool]:
    """Arguments with those at ``nums`` made differentiable; and whether an enclosing
    transform (or the caller) already tracks one of them, so results must stay recorded."""
    tracked = list(args)
    nested = False
    for n in nums:
        x = args[n]
        if not isinstance(x, Tensor):
            raise TypeError(f"expected a Tensor at argument {n}, got {type(x).__name__}")
        if x._rg and grad_mode.is_grad_enabled():
            nested = True
            tracked[n] = forward_ad.graph_alias(x)
        else:
            tracked[n] = x.detach().requires_grad_()
    return tracked, nested


def _split_aux(result: Any, has_aux: bool, fn: str) -> tuple[Any, Any]:
    if not has_aux:
        return result, None
    if not isinstance(result, tuple) or len(result) != 2:
        raise RuntimeError(f"{fn}(f, has_aux=True): f must return a (output, aux) tuple")
    return result


def _settle(value: Any, nested: bool) -> Any:
    if isinstance(value, Tensor):
        return value if nested else value.detach()
    if isinstance(value, tuple):
        return tuple(_settle(v, nested) for v in value)
    return value


def grad_and_value(func: Callable, argnums: int | tuple = 0, has_aux: bool = False) -> Callable:
    """Like ``grad``, but the new function returns ``(gradient, value)``."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> tuple:
        single, nums = _argnums(argnums, len(args), "grad")
        tracked, nested = _track(args, nums)
        with grad_mode.enable_grad():
            output, aux = _split_aux(func(*tracked, **kwargs), has_aux, "grad")
            if not isinstance(output, Tensor) or output._data.size != 1:
                raise RuntimeError(
                    "grad: the function must return a single-element Tensor, got "
                    f"{tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__}"
                )
            inputs = [tracked[n] for n in nums]
            grads = engine.grad(output, inputs, create_graph=nested, allow_unused=True) if (
                output._rg) else (None,) * len(nums)
        grads = tuple(g if g is not None else zeros_like(x) for g, x in zip(grads, inputs))
        gradient = _settle(grads[0] if single else grads, nested)
        value = _settle(output, nested)
        return (gradient, (value, aux)) if has_aux else (gradient, value)

    return wrapper


def grad(func: Callable, argnums: int | tuple = 0, has_aux: bool = False) -> Callable:
    """The gradient of a scalar function with respect to the arguments at ``argnums``.

    >>> grad(lambda x, y: (x * y).sum(), argnums=(0, 1))(a, b)    # (b, a)
    """
    both = grad_and_value(func, argnums, has_aux)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        gradient, value = both(*args, **kwargs)
        return (gradient, value[1]) if has_aux else gradient

    return wrapper


def vjp(func: Callable, *primals: Tensor, has_aux: bool = False) -> tuple:
    """``(func(*primals), vjp_fn)``; ``vjp_fn(cotangents)`` returns one gradient per primal."""
    tracked, nested = _track(primals, tuple(range(len(primals))))
    with grad_mode.enable_grad():
        output, aux = _split_aux(func(*tracked), has_aux, "vjp")
    outputs = (output,) if isinstance(output, Tensor) else tuple(output)

    def vjp_fn(*cotangents: Any) -> tuple:
        if len(cotangents) == 1 and not isinstance(output, Tensor):
            cotangents = tuple(cotangents[0])
        live = [(o, c) for o, c in zip(outputs, cotangents) if o._rg]
        with grad_mode.enable_grad():
            grads = engine.grad([o for o, _ in live], tracked, [c for _, c in live],
                                retain_graph=True, create_graph=nested or any(
                                    c._rg for _, c in live), allow_unused=True) if live else (
                None,) * len(tracked)
        return tuple(_settle(g if g is not None else zeros_like(x), nested)
                     for g, x in zip(grads, tracked))

    value = _settle(output, nested)
    return (value, vjp_fn, aux) if has_aux else (value, vjp_fn)


def jvp(func: Callable, primals: tuple, tangents: tuple, *, has_aux: bool = False) -> tuple:
    """``(func(*primals), J tangents)`` in one forward pass (forward mode)."""
    if len(primals) != len(tangents):
        raise RuntimeError(f"jvp: got {len(primals)} primals and {len(tangents)} tangents")
    with forward_ad.dual_level():
        duals = [forward_ad.make_dual(p, t) for p, t in zip(primals, tangents)]
        output, aux = _split_aux(func(*duals), has_aux, "jvp")
        outputs = (output,) if isinstance(output, Tensor) else tuple(output)
        unpacked = [forward_ad.unpack_dual(o) for o in outputs]
    values = tuple(p for p, _ in unpacked)
    tangents_out = tuple(t if t is not None else zeros_like(p) for p, t in unpacked)
    single = isinstance(output, Tensor)
    result = (values[0] if single else values, tangents_out[0] if single else tangents_out)
    return result + (aux,) if has_aux else result


def _jacobian_transform(func: Callable, argnums: int | tuple, has_aux: bool, mode: str) -> Callable:
    @functools.wraps(func)
    def wrapper(*args: Any) -> Any:
        single, nums = _argnums(argnums, len(args), mode)
        aux_box: list = []

        def restricted(*chosen: Tensor) -> Any:
            full = list(args)
            for n, value in zip(nums, chosen):
                full[n] = value
            output, aux = _split_aux(func(*full), has_aux, mode)
            aux_box[:] = [aux]
            return output

        if mode == "jacrev":
            tracked, nested = _track(args, nums)
            chosen = [tracked[n] for n in nums]
            with grad_mode.enable_grad():
                output = restricted(*chosen)
                tuple_out = not isinstance(output, Tensor)
                outputs = tuple(output) if tuple_out else (output,)
                jac = reverse_jacobian(outputs, chosen, create_graph=nested)
        else:
            nested = False
            tuple_out, jac = forward_jacobian(restricted, [args[n] for n in nums])
        rows = [_settle(row[0] if single else tuple(row), nested) for row in jac]
        result = tuple(rows) if tuple_out else rows[0]
        return (result, aux_box[0]) if has_aux else result

    return wrapper


def jacrev(func: Callable, argnums: int | tuple = 0, *, has_aux: bool = False) -> Callable:
    """The Jacobian by reverse mode (one VJP per output element); nests with itself."""
    return _jacobian_transform(func, argnums, has_aux, "jacrev")


def jacfwd(func: Callable, argnums: int | tuple = 0, has_aux: bool = False) -> Callable:
    """The Jacobian by forward mode (one JVP per input element)."""
    return _jacobian_transform(func, argnums, has_aux, "jacfwd")


def hessian(func: Callable, argnums: int | tuple = 0) -> Callable:
    """The Hessian of a scalar function: the Jacobian of its gradient (reverse over reverse)."""
    return jacrev(jacrev(func, argnums), argnums)
