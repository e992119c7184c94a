"""The reverse-mode engine: walk the graph from the outputs, push gradients to the leaves.

The walk is iterative (a 10,000-op chain needs no recursion) and counts, for every
vertex, how many gradients it will receive; a vertex runs once all have arrived, so a
tensor used several times gets the sum of its contributions. A vertex is a Node, or a
leaf Tensor that requires grad (where gradients accumulate into ``.grad``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as _numpy

from .. import _backend
from ..tensor import Tensor, _wrap
from . import forward_ad, grad_mode
from .graph import Node

_state = grad_mode.state
# each backend's array type (and NumPy's scalar types) -> what rules get as ``xp`` in a
# plain backward on such arrays; looked up per node, since ``.to(device)`` makes a graph
# whose nodes sit on different devices
_array_namespaces: dict = {}
_make_array_namespace: Any = None
_tensor_namespace: Any = None
# set once any tensor has been moved between devices (ops/movement.py's to_device): until
# then every graph is on one device and a backward pass takes one rule namespace throughout
devices_crossed = False
# called with each node whose saved arrays backward releases (diagnostics.memory sets it)
release_hook: Any = None
# called with each node, the gradients its rule returned and its upstream gradient (anomaly mode)
anomaly_hook: Any = None


def set_namespaces(array_namespace: Any, tensor_namespace: Any) -> None:
    """Register what rules get as ``xp``: ``array_namespace(backend)`` makes the array
    functions of a backend for a plain backward, ``tensor_namespace`` the tensor functions
    under create_graph (the ops layer owns both; see ops/namespace.py)."""
    global _make_array_namespace, _tensor_namespace
    _make_array_namespace, _tensor_namespace = array_namespace, tensor_namespace
    for owner in _backend.BACKENDS.values():
        _add_backend(owner)
    _backend.on_load.append(_add_backend)


def _add_backend(owner: _backend.Backend) -> None:
    namespace = _make_array_namespace(owner)
    for kind, holder in _backend.BY_TYPE.items():
        if holder is owner:
            _array_namespaces[kind] = namespace


def rule_namespace(g: Any) -> Any:
    """What rules get as ``xp`` for a plain backward on ``g`` (an array of any backend; a
    multi-output Function's per-output gradients route through a rule that reads none)."""
    if not hasattr(g, "dtype"):
        arrays = [part for part in getattr(g, "parts", ()) if part is not None]
        if not arrays:
            return _array_namespaces[_numpy.ndarray]
        g = arrays[0]
    return _array_namespaces[_backend.backend_of(g).array_type]


def tensor_namespace() -> Any:
    """The namespace of tensor functions rules use when their work must be recorded."""
    return _tensor_namespace


def _refcount(array: Any) -> int:
    return sys.getrefcount(array)


_probe = _numpy.empty(0)
_UNSHARED_REFS = _refcount(_probe)  # refs to an array held by one name and nothing else
del _probe


def sum_to_shape(grad: Any, shape: tuple, xp: Any) -> Any:
    """Undo broadcasting: sum ``grad`` over the axes along which ``shape`` was expanded
    (``xp``: the rules' namespace of ``grad``)."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1
    )
    if axes:
        grad = xp.sum(grad, axis=axes, keepdims=True)
    return xp.reshape(grad, shape)


# ---------------------------------------------------------------- public API
def backward(
    tensors: Any,
    grad_tensors: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    inputs: Any = None,
) -> None:
    """Accumulate into ``.grad`` of the leaves the gradient of ``tensors``.

    >>> chainrule.autograd.backward(loss)            # same as loss.backward()
    >>> chainrule.autograd.backward([y1, y2], [g1, g2])
    """
    outputs = _as_tuple(tensors)
    grads = _as_tuple(grad_tensors) if grad_tensors is not None else (None,) * len(outputs)
    if inputs is not None:
        targets = _as_tuple(inputs)
        if not targets:
            raise RuntimeError("backward: 'inputs' argument must not be empty")
    else:
        targets = None
    _run(outputs, grads, targets, retain_graph, create_graph, accumulate=True,
         allow_unused=True)


def grad(
    outputs: Any,
    inputs: Any,
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool | None = None,
    materialize_grads: bool = False,
) -> tuple:
    """Return the gradients of ``outputs`` with respect to ``inputs`` (``.grad`` untouched).

    >>> x = chainrule.tensor(3.0, requires_grad=True)
    >>> (dx,) = chainrule.autograd.grad(x ** 2, x)      # tensor(6.)
    """
    outs = _as_tuple(outputs)
    ins = _as_tuple(inputs)
    grads = _as_tuple(grad_outputs) if grad_outputs is not None else (None,) * len(outs)
    for k, t in enumerate(ins):
        if not isinstance(t, Tensor) or not t._rg:
            what = f"of shape {tuple(t.shape)}" if isinstance(t, Tensor) else type(t).__name__
            raise RuntimeError(
                f"grad: input {k} ({what}) does not require grad, so it has no gradient; "
                f"create it with requires_grad=True (or call .requires_grad_() on a leaf)"
            )
    if allow_unused is None:
        allow_unused = materialize_grads
    results = _run(outs, grads, ins, retain_graph, create_graph, accumulate=False,
                   allow_unused=allow_unused)
    if materialize_grads:
        from ..ops import zeros_like

        results = tuple(zeros_like(t) if r is None else r for r, t in zip(results, ins))
    return results


def _as_tuple(value: Any) -> tuple:
    if isinstance(value, Tensor) or value is None:
        return (value,)
    return tuple(value)


# ---------------------------------------------------------------- the walk
def _run(outputs: Sequence, grad_outputs: Sequence, targets: Sequence | None,
         retain_graph: bool | None, create_graph: bool, accumulate: bool,
         allow_unused: bool) -> tuple:
    if len(grad_outputs) != len(outputs):
        raise RuntimeError(
            f"backward: got {len(grad_outputs)} gradients for {len(outputs)} outputs"
        )
    if retain_graph is None:
        retain_graph = create_graph
    _refresh_views(outputs)
    if targets is not None:
        _refresh_views(targets)
    roots, root_grads = _root_gradients(outputs, grad_outputs, create_graph)

    target_vertices = None
    if targets is not None:
        target_vertices = [t.grad_fn if t.grad_fn is not None else t for t in targets]
    deps, runs = _dependencies(roots, target_vertices)

    grads: dict = {}
    for vertex, g in zip(roots, root_grads):
        previous = grads.get(vertex)
        grads[vertex] = g if previous is None else previous + g
    ready = [v for v in dict.fromkeys(roots) if not deps.get(v)]

    wanted = set(target_vertices) if target_vertices is not None else None
    captured: dict = {}
    previous_mode = _state.enabled
    _state.enabled = create_graph
    xp = _tensor_namespace
    # one namespace for the whole pass unless a graph can span devices (a recorded move, or
    # roots on different devices): then each node's is looked up from its gradient's type
    plain = not create_graph
    last_kind = None  # the array type of the last node's gradient, whose namespace is xp
    if plain and not devices_crossed and len({type(g) for g in root_grads}) == 1:
        xp = rule_namespace(root_grads[0])
        plain = False
    pop, take, pending = ready.pop, grads.pop, grads.get
    try:
        while ready:
            vertex = pop()
            g = take(vertex)
            if type(vertex) is not Node:
                g = _leaf_gradient(vertex, g, create_graph)
                if wanted is not None and vertex in wanted:
                    captured[vertex] = g
                if accumulate and (wanted is None or vertex in wanted):
                    _accumulate(vertex, g, create_graph)
                continue
            if vertex.hooks is not None or vertex.retained is not None:
                g = _node_hooks(vertex, g, create_graph)
            if wanted is not None:
                if vertex in wanted:
                    captured[vertex] = g
                if vertex not in runs:
                    continue
            saved = vertex.saved
            if saved is None:
                raise _freed_error(vertex)
            for cell, version in vertex.versions:
                if cell[0] != version:
                    _check_versions(vertex)
            if create_graph and vertex.prim.save is not None:
                saved = _saved_as_tensors(vertex)
            if not retain_graph and saved:
                vertex.saved = None
                if release_hook is not None:
                    release_hook(vertex)
            if plain and type(g) is not last_kind:
                last_kind = type(g)
                try:
                    xp = _array_namespaces[last_kind]
                except KeyError:
                    xp = rule_namespace(g)
            input_grads = vertex.prim.vjp(xp, g, saved, vertex.params, vertex.needs)
            if anomaly_hook is not None:
                anomaly_hook(vertex, input_grads, g)
            shapes = vertex.shapes
            i = -1
            for edge in vertex.edges:
                i += 1
                if edge is None:
                    continue
                gi = input_grads[i]
                if gi is None:
                    continue
                remaining = deps.get(edge)
                if remaining is None:  # leads to no wanted input
                    continue
                if shapes is not None and gi.shape != shapes[i]:
                    gi = sum_to_shape(gi, shapes[i], xp)
                previous = pending(edge)
                grads[edge] = gi if previous is None else previous + gi
                if remaining == 1:
                    ready.append(edge)
                else:
                    deps[edge] = remaining - 1
            # drop our references so that a leaf can take ownership of its gradient array
            input_grads = gi = None
    finally:
        _state.enabled = previous_mode

    if target_vertices is None or accumulate:
        return ()
    results = []
    for t, vertex in zip(targets, target_vertices):
        g = captured.get(vertex)
        if g is None:
            if not allow_unused:
                raise RuntimeError(
                    "grad: one of the differentiated Tensors appears to not have been used "
                    "in the graph. Set allow_unused=True if this is the desired behavior."
                )
            results.append(None)
        else:
            results.append(g if isinstance(g, Tensor) else
                           _wrap(_backend.astype(g, _backend.np_dtype(t._data))))
    return tuple(results)


def _refresh_views(tensors: Sequence) -> None:
    """A view whose base changed in place since it was made takes the base's current
    history before its own is used (as ops do for their inputs)."""
    for t in tensors:
        if isinstance(t, Tensor) and t._base is not None:
            from ..ops._primitive import refresh_view  # the ops layer sits above

            refresh_view(t)


def _root_gradients(outputs: Sequence, grad_outputs: Sequence,
                    create_graph: bool) -> tuple[list, list]:
    roots, grads = [], []
    for out, g in zip(outputs, grad_outputs):
        if not isinstance(out, Tensor):
            raise TypeError(f"backward: expected Tensor outputs, got {type(out).__name__}")
        if not out._rg:
            raise RuntimeError(
                "element 0 of tensors does not require grad and does not have a grad_fn: "
                "nothing to differentiate (did you compute it under no_grad or detach it?)"
            )
        if g is None:
            if out._data.size != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs: this output has "
                    f"shape {tuple(out.shape)}; pass gradient= (or grad_outputs=) of that shape"
                )
            array = _backend.namespace_of(out._data).ones_like(out._data)
            g = _wrap(array) if create_graph else array
        else:
            array = (g._data if isinstance(g, Tensor) else
                     _backend.asarray(g, _backend.np_dtype(out._data), out._data))
            if array.shape != out._data.shape:
                raise RuntimeError(
                    f"Mismatch in shape: grad_output has a shape of {tuple(array.shape)} and "
                    f"output has a shape of {tuple(out._data.shape)}"
                )
            if create_graph:
                g = g if isinstance(g, Tensor) else _wrap(array)
            else:
                g = array
        roots.append(out.grad_fn if out.grad_fn is not None else out)
        grads.append(g)
    return roots, grads


def _dependencies(roots: list, targets: list | None) -> tuple[dict, set | None]:
    """Count incoming gradients per vertex; with targets, also the set of nodes to run.

    Without targets every reachable vertex leads to a leaf that requires grad (a node
    exists only when one of its inputs needs a gradient), so all of them run.
    """
    deps: dict = {}
    if targets is None:
        root_set = set(roots)
        stack = [v for v in root_set if type(v) is Node]
        count = deps.get
        while stack:
            for child in stack.pop().edges:
                if child is None:
                    continue
                seen = count(child)
                if seen is None:
                    deps[child] = 1
                    if type(child) is Node and child not in root_set:
                        stack.append(child)
                else:
                    deps[child] = seen + 1
        return deps, None

    # Post-order over the reachable graph, then keep what leads to a target.
    order: list = []
    visited: set = set()
    for root in dict.fromkeys(roots):
        if root in visited:
            continue
        visited.add(root)
        stack = [(root, 0)]
        while stack:
            vertex, i = stack[-1]
            edges = vertex.edges if type(vertex) is Node else ()
            if i < len(edges):
                stack[-1] = (vertex, i + 1)
                child = edges[i]
                if child is not None and child not in visited:
                    visited.add(child)
                    stack.append((child, 0))
            else:
                stack.pop()
                order.append(vertex)
    wanted = set(targets)
    useful: set = set()
    runs: set = set()
    for vertex in order:
        if type(vertex) is Node and any(c in useful for c in vertex.edges if c is not None):
            runs.add(vertex)
            useful.add(vertex)
        elif vertex in wanted:
            useful.add(vertex)
    for node in runs:
        for child in node.edges:
            if child is not None and child in useful:
                deps[child] = deps.get(child, 0) + 1
    return deps, runs


def _freed_error(node: Node) -> RuntimeError:
    return RuntimeError(
        f"Trying to backward through the graph a second time (or directly access saved "
        f"tensors after they have already been freed) at {node.name()}. Specify "
        f"retain_graph=True if you need to backward through the graph a second time."
    )


def _check_versions(node: Node) -> None:
    uses = getattr(node.prim, "uses", None)
    for k, (cell, version) in enumerate(node.versions):
        if cell[0] != version:
            if uses is not None:
                # the inputs whose gradients read saved tensor k (ops/_primitive.py: uses)
                readers = ([i for i in range(len(node.needs)) if i != k] if isinstance(uses, str)
                           else uses[k])
                if readers is not None and not any(node.needs[i] for i in readers):
                    continue  # the rule reads this saved tensor for no gradient that is wanted
            raise RuntimeError(
                f"one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: a tensor of shape {list(node.saved[k].shape)} saved by "
                f"{node.name()} is at version {cell[0]}; expected version {version} instead. "
                f"Clone it before the in-place change, or make the change out of place."
            )


def _saved_as_tensors(node: Node) -> tuple:
    """Saved arrays as tensors wired to the graph, so that the rule's own ops are recorded."""
    spec = node.prim.save
    if isinstance(spec, str):  # every input was saved
        spec = tuple(range(len(node.edges)))
    tensors = []
    for k, array in enumerate(node.saved):
        if k < len(spec):
            vertex = node if spec[k] == -1 else node.edges[spec[k]]
            if vertex is None:
                tensors.append(_wrap(array))
            elif type(vertex) is Node:
                tensors.append(_wrap(array, vertex))
            else:
                tensors.append(vertex)
        else:
            tensors.append(_wrap(array))
    if node.tangents is not None and forward_ad.state.active:
        for tensor, tangent in zip(tensors, node.tangents):
            if tangent is not None:
                forward_ad.set_tangent(tensor, tangent)
    return tuple(tensors)


def _run_hooks(hooks: list, g: Any, create_graph: bool) -> Any:
    if not hasattr(g, "shape"):
        return g  # the per-output gradients of a multi-output Function: no one tensor's
    as_tensor = g if create_graph else _wrap(g)
    for hook in list(hooks):
        replaced = hook(as_tensor)
        if replaced is not None:
            as_tensor = replaced
    return as_tensor if create_graph else as_tensor._data


def _node_hooks(node: Node, g: Any, create_graph: bool) -> Any:
    if node.hooks:
        g = _run_hooks(node.hooks, g, create_graph)
    if node.retained:
        for ref in node.retained:
            tensor = ref()
            if tensor is not None:
                _accumulate(tensor, g, create_graph)
    return g


def _leaf_gradient(leaf: Tensor, g: Any, create_graph: bool) -> Any:
    if g.dtype != leaf._data.dtype:
        g = g.to(leaf.dtype) if create_graph else _backend.astype(g, _backend.np_dtype(leaf._data))
    extra = leaf._extra
    if extra is not None and extra.hooks:
        g = _run_hooks(extra.hooks, g, create_graph)
    return g


def _accumulate(leaf: Tensor, g: Any, create_graph: bool) -> None:
    """Add ``g`` into ``leaf.grad`` as PyTorch's AccumulateGrad does."""
    current = leaf.grad
    if create_graph:
        leaf.grad = g if current is None else current + g
        return
    if current is None:
        # Take ownership of the array when no one else holds it; copy otherwise.
        if type(g) is not _numpy.ndarray:
            g = _backend.copy(g)  # a NumPy scalar, or another backend's array
        elif (g.base is not None or _refcount(g) > _UNSHARED_REFS + 1
              or not g.flags.c_contiguous and leaf._data.flags.c_contiguous):
            # a C-ordered leaf gets a C-ordered .grad, as PyTorch's (a rule may return
            # another layout: conv2d's input gradient is laid out (C, N, H, W))
            g = _numpy.array(g, copy=True, order="C" if leaf._data.flags.c_contiguous else "K")
        leaf.grad = _wrap(g)
    elif current._rg:
        # a .grad left by create_graph is part of a graph: replace it, never mutate it
        leaf.grad = _wrap(current._data + g)
    else:
        current._data += g
