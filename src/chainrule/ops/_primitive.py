"""Primitives: a forward kernel on raw arrays and its derivative rules, side by side.

A rule is ``vjp(xp, g, saved, p, needs) -> tuple of input gradients``:

- ``xp`` is the array namespace the rule must use for functions (``xp.exp``,
  ``xp.where``): NumPy for a plain backward, chainrule's own tensor namespace under
  ``create_graph=True`` so that the backward pass is itself recorded. One rule
  therefore serves first and higher order.
- ``g`` is the gradient of the output; ``saved`` what the primitive declared in
  ``save`` (input positions, ``OUT`` for the output) followed by any by-products the
  forward returned; ``p`` the static parameters; ``needs`` one bool per input.

Gradients for broadcast inputs may come back in the broadcast shape: the engine sums
them back to the input's shape in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..autograd import grad_mode
from ..autograd.graph import Node
from ..tensor import Tensor, _wrap

OUT = -1  # in a ``save`` spec: the primitive's output
ALL_INPUTS = "all inputs"  # a ``save`` spec for primitives with any number of inputs

_state = grad_mode.state


class Primitive:
    """One differentiable operation on arrays."""

    __slots__ = ("name", "forward", "vjp", "jvp", "save", "broadcasts", "extras", "view",
                 "backward_name")

    def __init__(self, name: str, forward: Callable, save: tuple, broadcasts: bool,
                 extras: bool, view: bool, backward_name: str | None) -> None:
        self.name = name
        self.forward = forward
        self.vjp: Callable | None = None
        self.jvp: Callable | None = None
        self.save = save
        self.broadcasts = broadcasts
        self.extras = extras
        self.view = view
        camel = "".join(part.capitalize() for part in name.split("_"))
        self.backward_name = backward_name or f"{camel}Backward0"

    def defvjp(self, rule: Callable) -> Callable:
        self.vjp = rule
        return rule

    def defjvp(self, rule: Callable) -> Callable:
        self.jvp = rule
        return rule

    def __call__(self, *inputs: Tensor, **params: Any) -> Tensor:
        return apply(self, *inputs, **params)

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


PRIMITIVES: dict[str, Primitive] = {}


def primitive(name: str, *, save: tuple = (), broadcasts: bool = False, extras: bool = False,
              view: bool = False, backward_name: str | None = None
              ) -> Callable[[Callable], Primitive]:
    """Declare a primitive from its forward kernel.

    ``save``: input positions (and ``OUT``) the VJP needs. ``broadcasts``: inputs may be
    broadcast against each other, so the engine records their shapes. ``extras``: the
    forward returns ``(out, (by_products...))`` and the by-products are saved too.
    ``view``: the output shares storage with input 0 (and so its version counter).
    """

    def make(forward: Callable) -> Primitive:
        prim = Primitive(name, forward, save, broadcasts, extras, view, backward_name)
        PRIMITIVES[name] = prim
        return prim

    return make


def apply(prim: Primitive, *inputs: Tensor, **params: Any) -> Tensor:
    """Run ``prim`` on tensors and, when a gradient is needed, record its node."""
    if prim.extras:
        out, by_products = prim.forward(*[t._data for t in inputs], **params)
    else:
        out = prim.forward(*[t._data for t in inputs], **params)
        by_products = ()
    result = _wrap(out)
    if prim.view:
        source = inputs[0]
        result._version = source._version
        result._base = source if source._base is None else source._base
    if not _state.enabled:
        return result
    for t in inputs:
        if t._rg:
            break
    else:
        return result
    edges = tuple(
        (t.grad_fn if t.grad_fn is not None else t) if t._rg else None for t in inputs
    )
    save = prim.save
    if save is ALL_INPUTS:
        save = tuple(range(len(inputs)))
    if save:
        saved = tuple(inputs[i]._data if i != OUT else result._data for i in save) + by_products
        versions = tuple(
            (inputs[i]._version if i != OUT else result._version,
             inputs[i]._version[0] if i != OUT else 0)
            for i in save
        )
    else:
        saved = by_products
        versions = ()
    node = Node(
        prim,
        edges,
        saved,
        versions,
        params,
        tuple(t._data.shape for t in inputs) if prim.broadcasts else None,
        tuple(e is not None for e in edges),
    )
    result.grad_fn = node
    result._rg = True
    return result
