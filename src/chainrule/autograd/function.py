"""Custom differentiable operations: ``chainrule.autograd.Function``, as PyTorch's.

A subclass gives ``forward(ctx, *args)`` and ``backward(ctx, *grad_outputs)`` as
staticmethods and is called through ``.apply``. ``forward`` runs without recording
(its inside is opaque to the engine); one node records the call, and at backward time
that node hands the engine whatever ``backward`` returns. Under ``create_graph=True``
``backward`` runs with recording on, so a Function written with chainrule ops is
differentiable again, unless it is marked ``@once_differentiable``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from .. import _backend
from ..tensor import Tensor, _wrap
from . import forward_ad, grad_mode
from .graph import Node

_state = grad_mode.state


class FunctionCtx:
    """The ``ctx`` handed to forward and backward: saved tensors, flags, free attributes."""

    def __init__(self) -> None:
        self.needs_input_grad: tuple = ()
        self.materialize_grads = True
        self._to_save: tuple = ()
        self._saved: tuple | None = ()
        self._non_differentiable: set = set()
        self._dirty: tuple = ()
        self._node: Node | None = None

    def save_for_backward(self, *tensors: Tensor | None) -> None:
        """Keep tensors for backward; read them back with ``ctx.saved_tensors``."""
        for t in tensors:
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(
                    f"save_for_backward can only save tensors or None, got {type(t).__name__}"
                )
        self._to_save = tensors

    @property
    def saved_tensors(self) -> tuple:
        """The tensors given to ``save_for_backward``; raises if they changed in place since."""
        if self._saved is None:
            raise RuntimeError(
                "Trying to backward through the graph a second time (or directly access saved "
                "tensors after they have already been freed): the saved tensors of this "
                "Function are gone. Specify retain_graph=True to keep them."
            )
        tensors = []
        for entry in self._saved:
            if entry is None:
                tensors.append(None)
                continue
            tensor, cell, version, is_output = entry
            if cell[0] != version:
                raise RuntimeError(
                    f"one of the variables needed for gradient computation has been modified by "
                    f"an inplace operation: a tensor of shape {list(tensor.shape)} saved by "
                    f"{type(self).__name__} is at version {cell[0]}; expected version {version}"
                )
            if is_output:
                # outputs are kept as bare arrays (no cycle through the node); rebuild them
                # wired to this Function's node so create_graph can differentiate through them
                tensor = _wrap(tensor, self._node) if _state.enabled else _wrap(tensor)
            tensors.append(tensor)
        return tuple(tensors)

    def mark_non_differentiable(self, *tensors: Tensor) -> None:
        """Declare outputs that get no gradient (e.g. indices returned beside values)."""
        self._non_differentiable.update(id(t) for t in tensors)

    def set_materialize_grads(self, value: bool) -> None:
        """If False, backward receives None (not zeros) for outputs that got no gradient."""
        self.materialize_grads = bool(value)

    def mark_dirty(self, *tensors: Tensor) -> None:
        """Declare inputs that forward modified in place."""
        self._dirty = tensors


class _FunctionRule:
    """Plays the part of a primitive for one Function subclass inside the engine."""

    __slots__ = ("cls", "backward_name", "view")

    # the node's ``saved`` holds ctx's saved-tensor entries, handed over as they are
    save = None

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.backward_name = cls._backward_name or f"{cls.__name__}Backward"
        self.view = cls._outputs_are_views

    def vjp(self, xp: Any, g: Any, saved: tuple, p: dict, needs: tuple) -> tuple:
        ctx = p["ctx"]
        create_graph = _state.enabled
        ctx._saved = saved
        parts = g.parts if isinstance(g, _OutputGrads) else [g]
        grads = []
        for slot, shape, dtype in p["outputs"]:
            part = None if slot is None else parts[slot]
            if part is None:
                if shape is None:  # not a tensor output
                    grads.append(None)
                    continue
                if ctx.materialize_grads:
                    part = xp.zeros(shape, dtype=dtype)
                else:
                    grads.append(None)
                    continue
            grads.append(part if isinstance(part, Tensor) else _wrap(part))
        try:
            results = self.cls.backward(ctx, *grads)
        finally:
            ctx._saved = None
        if not isinstance(results, tuple):
            results = (results,)
        positions = p["tensor_positions"]
        if len(results) < p["arg_count"]:
            raise RuntimeError(
                f"function {self.cls.__name__}.backward returned {len(results)} gradients, but "
                f"forward took {p['arg_count']} arguments"
            )
        out = []
        for position, need in zip(positions, needs):
            value = results[position]
            if value is None or not need:
                out.append(None)
                continue
            if not isinstance(value, Tensor):
                raise TypeError(
                    f"function {self.cls.__name__}.backward returned a {type(value).__name__} "
                    f"for input {position}; expected a Tensor or None"
                )
            out.append(value if create_graph else value._data)
        return tuple(out)


class _OutputGrads:
    """Gradients for the outputs of a multi-output Function, summed slot by slot."""

    __slots__ = ("parts",)

    def __init__(self, parts: list) -> None:
        self.parts = parts

    def __add__(self, other: _OutputGrads) -> _OutputGrads:
        # only the engine adds these, into an accumulator it alone holds: merge in place, so
        # that L outputs cost O(L) rather than a new list per addition
        parts = self.parts
        for i, b in enumerate(other.parts):
            if b is not None:
                a = parts[i]
                parts[i] = b if a is None else a + b
        return self


class _SelectRule:
    """Routes the gradient of output ``i`` of a multi-output Function to its node."""

    __slots__ = ("backward_name", "view")
    save = ()

    def __init__(self, name: str, view: bool) -> None:
        self.backward_name = name
        self.view = view

    @staticmethod
    def vjp(xp: Any, g: Any, saved: tuple, p: dict, needs: tuple) -> tuple:
        parts = [None] * p["count"]
        parts[p["index"]] = g
        return (_OutputGrads(parts),)


def _node(rule: Any, edges: tuple, params: dict, saved: tuple = ()) -> Node:
    return Node(rule, edges, saved, (), params, None, tuple(e is not None for e in edges))


class Function:
    """Base class of custom differentiable operations.

    >>> class MyReLU(chainrule.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x.clamp(min=0)
    ...     @staticmethod
    ...     def backward(ctx, grad_output):
    ...         (x,) = ctx.saved_tensors
    ...         grad = grad_output.clone()
    ...         grad[x < 0] = 0
    ...         return grad
    >>> y = MyReLU.apply(x)
    """

    # chainrule-internal: the outputs are views of the first input (split, unbind), so a
    # view's history can be followed back to its base through this Function's nodes
    _outputs_are_views = False
    # chainrule-internal: the name of the nodes of a Function that stands for a PyTorch op
    # (split's: SplitBackward0); a user's Function is named after its class, as in PyTorch
    _backward_name: str | None = None

    @staticmethod
    def forward(ctx: FunctionCtx, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("a Function subclass must define forward(ctx, ...)")

    @staticmethod
    def backward(ctx: FunctionCtx, *grad_outputs: Any) -> Any:
        raise NotImplementedError("a Function subclass must define backward(ctx, ...)")

    @staticmethod
    def jvp(ctx: FunctionCtx, *grad_inputs: Any) -> Any:
        """Forward mode: the outputs' tangents from the inputs' (optional)."""
        raise NotImplementedError("this Function defines no jvp")

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        ctx = FunctionCtx()
        if _state.enabled:
            _refresh_views(args)
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a._rg for a in args)
        tangents = None
        if forward_ad.state.active:
            tangents = [forward_ad.tangent_of(a) if isinstance(a, Tensor) else None for a in args]
            if all(t is None for t in tangents):
                tangents = None
        previous, forward_ad.state.active = forward_ad.state.active, 0
        try:
            with grad_mode.no_grad():
                result = cls.forward(ctx, *args, **kwargs)
        finally:
            forward_ad.state.active = previous
        single = not isinstance(result, tuple)
        outputs = (result,) if single else result
        if tangents is not None:
            _forward_tangents(cls, ctx, args, tangents, outputs)
        record = _state.enabled and any(ctx.needs_input_grad)
        if not record:
            ctx._to_save = ()
            return result
        positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        edges = tuple(
            (args[i].grad_fn if args[i].grad_fn is not None else args[i]) if args[i]._rg
            else None
            for i in positions
        )
        differentiable = [
            i for i, o in enumerate(outputs)
            if isinstance(o, Tensor) and id(o) not in ctx._non_differentiable
            and _backend.np_dtype(o._data).kind in "fc"
        ]
        # one gradient per forward output reaches backward, as in PyTorch: a slot into the
        # engine's gradients for differentiable outputs, zeros (or None) for the others
        params = {
            "ctx": ctx,
            "tensor_positions": positions,
            "arg_count": len(args),
            "outputs": [
                (differentiable.index(i) if i in differentiable else None,
                 o._data.shape if isinstance(o, Tensor) else None,
                 o._data.dtype if isinstance(o, Tensor) else None)
                for i, o in enumerate(outputs)
            ],
        }
        node = _node(_FunctionRule(cls), edges, params)
        ctx._node = node
        wrapped = list(outputs)
        for slot, i in enumerate(differentiable):
            out = outputs[i]
            if len(differentiable) == 1:
                fn = node
            else:
                fn = _node(_SelectRule(node.prim.backward_name, cls._outputs_are_views), (node,),
                           {"index": slot, "count": len(differentiable)})
            if any(out is a for a in args) and not any(out is d for d in ctx._dirty):
                # an input returned as is: give the caller a new tensor on the same storage
                out = _wrap(out._data)
            out.grad_fn = fn
            out._rg = True
            wrapped[i] = out
        node.saved = _save_entries(ctx, tuple(wrapped[i] for i in differentiable))
        return wrapped[0] if single else tuple(wrapped)


def _refresh_views(tensors: Any) -> None:
    """Give views whose base changed in place since they were made the base's current
    history, as ops do for their inputs (ops/_primitive.py; imported here, the layer above)."""
    for t in tensors:
        if isinstance(t, Tensor) and t._base is not None:
            from ..ops._primitive import refresh_view

            refresh_view(t)


def _forward_tangents(cls: type, ctx: FunctionCtx, args: tuple, tangents: list,
                      outputs: tuple) -> None:
    """Forward mode through a Function: its ``jvp(ctx, *input_tangents)`` gives the outputs'."""
    if cls.jvp is Function.jvp:
        raise NotImplementedError(
            f"forward-mode AD through {cls.__name__}: define a jvp(ctx, *tangents) staticmethod"
        )
    filled = [
        (t if t is not None else _wrap(a._data * 0)) if isinstance(a, Tensor) else None
        for a, t in zip(args, tangents)
    ]
    previous, forward_ad.state.active = forward_ad.state.active, 0
    try:
        with grad_mode.no_grad():
            results = cls.jvp(ctx, *filled)
    finally:
        forward_ad.state.active = previous
    results = results if isinstance(results, tuple) else (results,)
    for out, tangent in zip(outputs, results):
        if isinstance(out, Tensor) and isinstance(tangent, Tensor):
            forward_ad.set_tangent(out, tangent)


def _save_entries(ctx: FunctionCtx, outputs: tuple) -> tuple:
    entries = []
    for t in ctx._to_save:
        if t is None:
            entries.append(None)
            continue
        is_output = any(t is o for o in outputs)
        # an output is stored as its array so that node -> ctx -> output makes no cycle
        entries.append((t._data if is_output else t, t._version, t._version[0], is_output))
    ctx._to_save = ()
    return tuple(entries)


def once_differentiable(backward: Callable) -> Callable:
    """Mark a Function's backward as not differentiable: its results may be used, but
    differentiating them again raises a clear error instead of silently giving zeros."""

    @functools.wraps(backward)
    def wrapper(ctx: FunctionCtx, *grad_outputs: Any) -> Any:
        recording = _state.enabled
        with grad_mode.no_grad():
            results = backward(ctx, *grad_outputs)
        if not recording:
            return results
        single = not isinstance(results, tuple)
        marked = []
        edges = ctx._node.edges if ctx._node is not None else ()
        for value in (results,) if single else results:
            if isinstance(value, Tensor):
                # wired to the Function's inputs, so that a second backward reaches the error
                value = _wrap(value._data, _node(_OnceRule(), edges, {}))
            marked.append(value)
        return marked[0] if single else tuple(marked)

    return wrapper


class _OnceRule:
    __slots__ = ()
    backward_name = "OnceDifferentiableBackward"
    save = ()
    view = False

    @staticmethod
    def vjp(xp: Any, g: Any, saved: tuple, p: dict, needs: tuple) -> tuple:
        raise RuntimeError(
            "trying to differentiate twice a function that was marked with "
            "@once_differentiable: its backward is not itself differentiable"
        )
