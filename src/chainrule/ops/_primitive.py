"""Primitives: a forward kernel on raw arrays and its derivative rules, side by side.

A forward kernel is ``forward(xp, *arrays, **params) -> array``, where ``xp`` is the
array namespace of the inputs' backend (NumPy, CuPy, array_api_strict), looked up once
per call from the first input's array type; kernels use only the Array API's names on it
and ``ops/kernels.py`` for what the Array API lacks.

A rule is ``vjp(xp, g, saved, p, needs) -> tuple of input gradients``:

- ``xp`` is the namespace the rule must use for functions (``xp.exp``, ``xp.where``,
  ``xp.sum``): its backend's array namespace (ops/namespace.py) for a plain backward,
  chainrule's own tensor namespace under
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

import numpy as np

from .. import _backend
from .._dtype import is_floating
from ..autograd import engine, forward_ad, grad_mode
from ..autograd.graph import Node
from ..tensor import Tensor

_new = object.__new__
_np = np
_ndarray = np.ndarray
# each backend's array type -> its namespace, filled as backends load (_backend.on_load)
_NAMESPACES: dict = {}
_ONE = (True,)

OUT = -1  # in a ``save`` spec: the primitive's output
ALL_INPUTS = "all inputs"  # a ``save`` spec for primitives with any number of inputs
OTHER_INPUTS = "other inputs"  # a ``uses`` spec: each saved input is read for the others' grads

# JVP rule families: a primitive names the one whose math holds for it, or gives its own
# rule ``jvp(xp, tangents, inputs, out, p)`` with ``defjvp``.
# ELEMENTWISE: each input's Jacobian is diagonal (after broadcasting), so the VJP rule with
#   g = t_i gives that input's contribution: J v = sum_i vjp(t_i)[i].
# LINEAR: the output is linear in the inputs jointly, so J v = the primitive applied to v.
# SLICEWISE: a reduction whose output slice depends only on its input slice:
#   J v = sum over the reduced axes of v * d out/d x, and d out/d x is the VJP of ones.
# SYMMETRIC: the Jacobian is symmetric (softmax), so J v = J^T v = vjp(v).
ELEMENTWISE = "elementwise"
LINEAR = "linear"
SLICEWISE = "slicewise"
SYMMETRIC = "symmetric"

_state = grad_mode.state
_forward = forward_ad.state


class Primitive:
    """One differentiable operation on arrays."""

    __slots__ = ("name", "forward", "vjp", "jvp", "save", "broadcasts", "extras", "view",
                 "backward_name", "uses")

    def __init__(self, name: str, forward: Callable, save: tuple, broadcasts: bool,
                 extras: bool, view: bool, backward_name: str | Callable | None, jvp: Any,
                 uses: tuple | None = None) -> None:
        self.name = name
        self.uses = uses
        self.forward = forward
        self.vjp: Callable | None = None
        self.jvp = jvp
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

    def renamed(self, name: str, backward_name: str | Callable) -> Primitive:
        """This primitive under another name, sharing its kernel and rules (defined by now).

        PyTorch names a node after the public op, not its math: ``x.max()`` is amax's math
        named ``MaxBackward1``, ``x.t()`` a permute named ``TBackward0``.
        """
        twin = Primitive(name, self.forward, self.save, self.broadcasts, self.extras,
                         self.view, backward_name, self.jvp, self.uses)
        twin.vjp = self.vjp
        PRIMITIVES[name] = twin
        return twin

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


PRIMITIVES: dict[str, Primitive] = {}


def primitive(name: str, *, save: tuple = (), broadcasts: bool = False, extras: bool = False,
              view: bool = False, backward_name: str | Callable | None = None, jvp: Any = None,
              uses: tuple | None = None) -> Callable[[Callable], Primitive]:
    """Declare a primitive from its forward kernel.

    ``save``: input positions (and ``OUT``) the VJP needs. ``broadcasts``: inputs may be
    broadcast against each other, so the engine records their shapes. ``extras``: the
    forward returns ``(out, (by_products...))`` and the by-products are saved too.
    ``view``: the output shares storage with input 0 (and so its version counter).
    ``jvp``: the forward-mode rule family (ELEMENTWISE, LINEAR, ...) or None until
    ``defjvp`` gives an explicit rule. ``uses``: for each ``save`` entry, the inputs whose
    gradient reads it (None: all; OTHER_INPUTS: every input but its own). A saved tensor
    changed in place is then an error only when such a gradient is wanted, as PyTorch,
    which saves ``x`` of ``x * y`` only when ``y`` requires grad. ``backward_name``: the
    node's PyTorch name (default ``<CamelName>Backward0``), or a function of the node that
    returns it, for names that depend on the call (``Node.name``).
    """

    def make(forward: Callable) -> Primitive:
        prim = Primitive(name, forward, save, broadcasts, extras, view, backward_name, jvp, uses)
        PRIMITIVES[name] = prim
        return prim

    return make


def refresh_view(view: Tensor) -> None:
    """Give a view whose base changed in place since the view was made the history of the
    base as it is now (PyTorch regenerates a view's grad_fn the same way).

    A view's history is a chain of view nodes leading back to its base's vertex as it was
    when the view was made; when that is no longer the base's vertex, the history is stale.
    """
    base = view._base
    vertex = view.grad_fn
    if base is None or not base._rg:
        return
    if vertex is None:
        # no history: either a constant (made under no_grad of a tensor that required grad),
        # or made while the base required no grad, which it has since gained by an in-place
        # op (then, as PyTorch, the view is re-read from the base)
        if view._extra is not None and view._extra.no_grad_view:
            return
    else:
        # up to date when the chain of view nodes passes through the base's vertex (the
        # base may itself be a view's output, with view nodes of its own further back)
        current = base.grad_fn if base.grad_fn is not None else base
        while vertex is not current and type(vertex) is Node and vertex.prim.view:
            vertex = vertex.edges[0]
        if vertex is current:
            return
    data = view._data
    if not hasattr(data, "strides"):
        raise NotImplementedError(
            f"a view on {view.device} whose base changed in place: re-reading it needs memory "
            f"strides, which this backend's arrays do not have; clone the view before the change")
    # an expanded view (stride 0) holds an element several times: re-read the elements
    # once, then expand them again
    expanded = 0 in data.strides and data.size > 1
    if expanded:
        data = data[tuple(slice(0, 1) if s == 0 else slice(None) for s in data.strides)]
    try:
        position = view_position(base._data, data, "view")
    except RuntimeError:
        return  # elements overlapping otherwise: cannot be re-read
    if position is None:
        return
    from . import indexing, movement

    reread = indexing.getitem(base, index=position, shape=base._data.shape)
    if expanded:
        reread = movement.expand(reread, shape=view._data.shape)
    view.grad_fn = reread.grad_fn
    view._rg = reread._rg


def mark_no_grad_view(view: Tensor, source: Tensor, enabled: bool) -> None:
    """Mark ``view`` a constant when made under no_grad from a tensor that requires grad,
    or from such a view (views of it inherit that, as in PyTorch)."""
    extra = source._extra
    if (not enabled and source._rg) or (extra is not None and extra.no_grad_view):
        view._extra_state().no_grad_view = True


view_position: Any = None  # set by ops/inplace.py: where a view's elements lie in its base


# True while NumPy is the only backend loaded: then every array is NumPy's and apply needs
# no check to hand kernels ``np`` (set False for good once another backend loads)
_numpy_only = True


def _add_backend(owner: _backend.Backend) -> None:
    global _numpy_only
    _NAMESPACES[owner.array_type] = owner.xp
    if owner is not _backend.NUMPY:
        _numpy_only = False


for _owner in _backend.BACKENDS.values():
    _add_backend(_owner)
_backend.on_load.append(_add_backend)


def _namespace(prim: Primitive, inputs: tuple) -> Any:
    """The namespace of the inputs' arrays, when they are not all NumPy's: another backend
    (found by the first input's array type), a NumPy subclass (memmap), or inputs on
    different devices (an error naming both)."""
    xp = _NAMESPACES.get(type(inputs[0]._data))
    if xp is not None and all(type(t._data) is type(inputs[0]._data) for t in inputs[1:]):
        return xp
    owner = _backend.backend_of(inputs[0]._data)
    first = _backend.device_of(inputs[0]._data)
    for t in inputs[1:]:
        where = _backend.device_of(t._data)
        if where != first:
            raise RuntimeError(
                f"{prim.name}(): expected all tensors to be on the same device, but found at "
                f"least two devices, {first} and {where}; move them with .to(device) first")
    return owner.xp


def _result_array(out: Any) -> Any:
    """A kernel's result as an array: NumPy turns some 0-d results into scalars."""
    return np.asarray(out) if isinstance(out, (np.generic, float, int, bool)) else out


def apply(prim: Primitive, *inputs: Tensor, **params: Any) -> Tensor:
    """Run ``prim`` on tensors and, when a gradient is needed, record its node.

    This is the forward hot path: every op of every user step runs through it, so the
    one- and two-input cases are written out rather than looped. The public wrappers on
    that path call ``prim.__call__(...)`` rather than ``prim(...)``: calling an instance
    goes through its type's call slot, which packs the arguments into a tuple and a dict
    (~0.15 us an op), while the method lookup still finds a swapped-in
    ``Primitive.__call__`` (anomaly mode, autocast, checkpointing, the memory diagnostic).
    """
    # a tangent lives in a tensor's _extra: the thread's forward-AD state is read only for
    # inputs that have one (a thread-local read costs ~40 ns an op)
    enabled = _state.enabled
    count = len(inputs)
    if count == 1:
        x = inputs[0]
        if x._extra is not None and _forward.active and _carries_tangent(inputs):
            return _apply_with_tangent(prim, inputs, params)
        if enabled and x._base is not None:
            refresh_view(x)
        data = x._data
        if _numpy_only or type(data) is _ndarray:
            xp = _np
        else:  # another backend, found by its array type
            xp = _namespace(prim, inputs)
        # no ``**{}`` for ops without parameters: unpacking even an empty dict costs ~50 ns
        out = prim.forward(xp, data, **params) if params else prim.forward(xp, data)
    elif count == 2:
        x, y = inputs
        if ((x._extra is not None or y._extra is not None) and _forward.active
                and _carries_tangent(inputs)):
            return _apply_with_tangent(prim, inputs, params)
        if enabled and (x._base is not None or y._base is not None):
            refresh_view(x)
            refresh_view(y)
        data, other = x._data, y._data
        if _numpy_only or (type(data) is _ndarray and type(other) is _ndarray):
            xp = _np
        else:  # another backend, or two devices (an error naming both)
            xp = _namespace(prim, inputs)
        out = (prim.forward(xp, data, other, **params) if params else
               prim.forward(xp, data, other))
    else:
        if _forward.active and _carries_tangent(inputs):
            return _apply_with_tangent(prim, inputs, params)
        if enabled:
            for t in inputs:
                refresh_view(t)
        xp = _namespace(prim, inputs)
        out = prim.forward(xp, *[t._data for t in inputs], **params)
    if prim.extras:
        out, by_products = out
    else:
        by_products = ()
    result = _new(Tensor)
    result._data = out if type(out) is _ndarray else _result_array(out)
    result.grad = result._base = result._extra = result.grad_fn = None
    result._rg = False
    if prim.view:
        source = inputs[0]
        result._version = source._version
        result._base = source if source._base is None else source._base
        if source._extra is not None or (not enabled and source._rg):
            mark_no_grad_view(result, source, enabled)
    else:
        result._version = [0]
    if not enabled:
        return result
    if count == 1:
        if not x._rg:
            return result
        fn = x.grad_fn
        edges = (x if fn is None else fn,)
        needs = _ONE
    elif count == 2:
        x_rg, y_rg = x._rg, y._rg
        if not (x_rg or y_rg):
            return result
        fn = x.grad_fn
        x_edge = (x if fn is None else fn) if x_rg else None
        fn = y.grad_fn
        edges = (x_edge, (y if fn is None else fn) if y_rg else None)
        needs = (x_rg, y_rg)
    else:
        needs = tuple([t._rg for t in inputs])
        if True not in needs:
            return result
        edges = tuple([(t if t.grad_fn is None else t.grad_fn) if t._rg else None
                       for t in inputs])
    save = prim.save
    if save:
        if save is ALL_INPUTS:
            save = range(count)
        if len(save) == 1:
            i = save[0]
            source = result if i == OUT else inputs[i]
            cell = source._version
            saved = (source._data,)
            versions = ((cell, cell[0]),)
        else:
            saved = []
            versions = []
            for i in save:
                source = result if i == OUT else inputs[i]
                saved.append(source._data)
                cell = source._version
                versions.append((cell, cell[0]))
            saved = tuple(saved)
            versions = tuple(versions)
        if by_products:
            saved += by_products
    else:
        saved = by_products
        versions = ()
    node = _new(Node)
    node.prim = prim
    node.edges = edges
    node.saved = saved
    node.versions = versions
    node.params = params
    if not prim.broadcasts:
        node.shapes = None
    elif count == 2:
        node.shapes = (data.shape, other.shape)
    else:
        node.shapes = tuple([t._data.shape for t in inputs])
    node.needs = needs
    node.hooks = node.retained = node.tangents = None
    result.grad_fn = node
    result._rg = True
    return result


Primitive.__call__ = apply


# ------------------------------------------------------------------ forward mode
def _carries_tangent(inputs: tuple) -> bool:
    for t in inputs:
        if t._extra is not None and t._extra.fw_grad is not None:
            return True
    return False


def _apply_with_tangent(prim: Primitive, inputs: tuple, params: dict) -> Tensor:
    """Run ``prim`` and give its output the tangent its JVP rule computes from the inputs'.

    The JVP itself runs as ordinary recorded ops (so it can be differentiated in reverse
    mode) with forward mode paused, so that no tangent of a tangent is computed.
    """
    tangents = [forward_ad.tangent_of(t) for t in inputs]
    previous, _forward.active = _forward.active, 0
    try:
        result = prim(*inputs, **params)
        tangent = jvp_of(prim, tangents, inputs, result, params)
    finally:
        _forward.active = previous
    if tangent is not None and is_floating(result._data.dtype):
        if tangent._data.dtype != result._data.dtype:
            tangent = tangent.to(result.dtype)
        forward_ad.set_tangent(result, tangent)
    node = result.grad_fn
    if node is not None and prim.save:
        # keep the saved tensors' tangents beside them: a backward pass recorded inside this
        # dual level rebuilds the saved tensors and must give them their tangents again
        spec = range(len(inputs)) if prim.save is ALL_INPUTS else prim.save
        node.tangents = tuple(tangent if i == OUT else tangents[i] for i in spec)
    return result


def _saved_tensors(prim: Primitive, inputs: tuple, out: Tensor) -> tuple:
    save = range(len(inputs)) if prim.save is ALL_INPUTS else prim.save
    return tuple(out if i == OUT else inputs[i] for i in save)


def jvp_of(prim: Primitive, tangents: list, inputs: tuple, out: Tensor, params: dict) -> Any:
    """The output tangent of ``prim`` (None when every input tangent is None)."""
    rule = prim.jvp
    if rule is None:
        raise NotImplementedError(f"forward-mode AD: {prim.name} has no JVP rule")
    xp = engine.tensor_namespace()
    if callable(rule):
        return rule(xp, tangents, inputs, out, params)
    if rule is LINEAR:
        filled = [t if t is not None else xp.zeros_like(x) for t, x in zip(tangents, inputs)]
        return prim(*filled, **params)
    saved = _saved_tensors(prim, inputs, out)
    if rule is ELEMENTWISE:
        total = None
        for i, t in enumerate(tangents):
            if t is None:
                continue
            needs = tuple(j == i for j in range(len(inputs)))
            part = prim.vjp(xp, t, saved, params, needs)[i]
            total = part if total is None else total + part
        if total is not None and total.shape != out.shape:
            total = xp.broadcast_to(total, out.shape)
        return total
    if rule is SLICEWISE:
        slope = prim.vjp(xp, xp.ones_like(out), saved, params, (True,))[0]
        return (tangents[0] * slope).sum(axis=params["axis"], keepdims=params["keepdims"])
    if rule is SYMMETRIC:
        return prim.vjp(xp, tangents[0], saved, params, (True,))[0]
    raise ValueError(f"{prim.name}: unknown JVP rule family {rule!r}")
