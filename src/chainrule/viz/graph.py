"""Read a computation graph back from its output: the vertices in forward order, each with
its op, shape, value and gradient where they can be known.

The graph keeps no output values or shapes (that would cost every op), so they are
recovered after the fact:

- gradients (and so every shape) by one extra backward pass over the graph with
  ``retain_graph=True``, while the graph still holds its saved arrays (before
  ``backward``, or after ``backward(retain_graph=True)``); nothing of the user's is
  touched: ``.grad``, tensor hooks and ``retain_grad`` are left as they were;
- values from the arrays the rules saved (an op that saves its output, or a consumer that
  saved this op's result as its input), else by re-running the op's forward kernel on its
  inputs' values when all of them are known.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import _backend
from ..autograd import engine
from ..autograd.graph import Node
from ..tensor import Tensor

__all__ = ["Vertex", "Graph", "read_graph", "names_from_caller", "param_names", "user_names", "op_name"]

_OUT = -1  # the output's position in a primitive's save spec


@dataclass
class Vertex:
    """One vertex: an op (a Node) or a leaf tensor."""

    index: int
    kind: str  # "op" or "leaf"
    op: str  # forward op name ("mul", "relu") or "leaf"
    backward_name: str  # "MulBackward0", "AccumulateGrad" for a leaf
    name: str | None  # the user's name for it (parameter or variable), if known
    inputs: list = field(default_factory=list)  # indices of the vertices it reads
    params: dict = field(default_factory=dict)  # the op's static parameters
    shape: tuple | None = None
    dtype: str | None = None
    value: np.ndarray | None = None
    grad: np.ndarray | None = None
    source: Any = None  # the Node or leaf Tensor


@dataclass
class Graph:
    """The vertices of the graph behind ``output`` in forward order (inputs first); the
    last one is the output. ``grads_known`` says whether the gradient pass could run."""

    vertices: list
    grads_known: bool
    output: Tensor

    @property
    def root(self) -> Vertex:
        return self.vertices[-1]


def names_from_caller(depth: int) -> dict:
    """``id(leaf tensor, node or constant's array) -> variable name`` for the tensors in the
    caller's globals and locals ``depth`` frames up, so that a graph shows the user's names."""
    frame = inspect.currentframe()
    try:
        for _ in range(depth + 1):
            frame = frame.f_back
        if frame is None:
            return {}
        names = {}
        for scope in (frame.f_globals, frame.f_locals):
            for key, value in scope.items():
                if isinstance(value, Tensor) and not key.startswith("_"):
                    # an intermediate result names the node that made it
                    names[id(value) if value.grad_fn is None else id(value.grad_fn)] = key
                    if not value._rg:  # a constant is found by its array where an op saved it
                        names[id(value._data)] = key
        return names
    finally:
        del frame


def user_names(params: Any, depth: int) -> dict:
    """Names for a graph: the caller's variables ``depth`` frames up, then ``params``'s."""
    names = names_from_caller(depth + 1)
    names.update(param_names(params))
    return names


def param_names(params: Any) -> dict:
    """``id(tensor) -> name`` from a Module, a dict of name -> tensor, or (name, tensor) pairs."""
    if params is None:
        return {}
    if hasattr(params, "named_parameters"):
        params = params.named_parameters()
    elif isinstance(params, dict):
        params = params.items()
    return {id(t): name for name, t in params}


def _topological(output: Tensor) -> list:
    """Vertices (Nodes and leaf tensors) behind ``output``, inputs before their consumers."""
    start = output.grad_fn if output.grad_fn is not None else output
    order: list = []
    seen = {id(start)}
    stack = [(start, 0)]
    while stack:
        vertex, i = stack[-1]
        edges = vertex.edges if type(vertex) is Node else ()
        if i < len(edges):
            stack[-1] = (vertex, i + 1)
            child = edges[i]
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                stack.append((child, 0))
        else:
            stack.pop()
            order.append(vertex)
    return order


def _save_spec(node: Node) -> tuple:
    spec = getattr(node.prim, "save", None)
    if spec is None:
        return ()
    if isinstance(spec, str):  # every input saved
        return tuple(range(len(node.edges)))
    return tuple(spec)


def _gradients(output: Tensor, order: list) -> dict | None:
    """``id(vertex) -> gradient array`` of ``output.sum()``, by one backward pass that keeps the
    graph, or None when the graph was already freed."""
    nodes = [v for v in order if type(v) is Node]
    leaves = [v for v in order if type(v) is not Node]
    if any(n.saved is None for n in nodes) or _backend.np_dtype(output._data).kind not in "fc":
        return None
    grads: dict = {}
    kept = [(n, n.hooks, n.retained) for n in nodes]
    leaf_hooks = [(t, t._extra.hooks) for t in leaves if t._extra is not None]

    def capture(node: Node) -> Any:
        def hook(g: Tensor) -> None:
            grads[id(node)] = np.array(g._data, copy=True)
        return hook

    try:
        for node in nodes:
            node.hooks, node.retained = [capture(node)], None
        for leaf, _ in leaf_hooks:
            leaf._extra.hooks = None
        found = engine.grad(output, leaves, [np.ones_like(output._data)], retain_graph=True,
                            allow_unused=True)
    except RuntimeError:  # e.g. a saved tensor changed in place since: no gradients then
        return None
    finally:
        for node, hooks, retained in kept:
            node.hooks, node.retained = hooks, retained
        for leaf, hooks in leaf_hooks:
            leaf._extra.hooks = hooks
    for leaf, g in zip(leaves, found):
        if g is not None:
            grads[id(leaf)] = np.array(g._data, copy=True)
    return grads


def _values(output: Tensor, order: list) -> dict:
    """``id(vertex) -> value array`` wherever the graph lets it be known."""
    values: dict = {id(output.grad_fn if output.grad_fn is not None else output): output._data}
    for vertex in order:
        if type(vertex) is not Node:
            values[id(vertex)] = vertex._data
            continue
        saved = vertex.saved or ()
        for k, position in enumerate(_save_spec(vertex)):
            if k >= len(saved) or not hasattr(saved[k], "shape"):
                continue
            if position == _OUT:
                values.setdefault(id(vertex), saved[k])
            elif vertex.edges[position] is not None:
                values.setdefault(id(vertex.edges[position]), saved[k])
    for vertex in order:  # replay forward kernels where the inputs are known
        if type(vertex) is not Node or id(vertex) in values:
            continue
        forward = getattr(vertex.prim, "forward", None)
        inputs = _input_values(vertex, values)
        if forward is None or inputs is None:
            continue
        try:
            out = forward(_backend.namespace_of(inputs[0]), *inputs, **vertex.params)
        except Exception:  # a kernel with inputs this graph cannot give back: leave unknown
            continue
        values[id(vertex)] = out[0] if getattr(vertex.prim, "extras", False) else out
    return values


def _input_values(node: Node, values: dict) -> list | None:
    spec = _save_spec(node)
    saved = node.saved or ()
    found = []
    for i, edge in enumerate(node.edges):
        if i in spec and spec.index(i) < len(saved):
            found.append(saved[spec.index(i)])
        elif edge is not None and id(edge) in values:
            found.append(values[id(edge)])
        else:
            return None
    return found


def op_name(node: Node) -> str:
    """The forward op's name of a node: the primitive's (``mul``) or the Function's class."""
    prim = node.prim
    name = getattr(prim, "name", None)
    if name is None:
        cls = getattr(prim, "cls", None)
        name = cls.__name__ if cls is not None else node.name()
    return name


def read_graph(output: Tensor, names: dict | None = None) -> Graph:
    """The graph behind ``output``, with what can be known of each vertex.

    ``names`` maps ``id(leaf tensor)`` or ``id(node)`` to a name (see ``param_names`` and
    ``names_from_caller``).

    >>> graph = read_graph(loss, param_names(model))
    >>> [v.op for v in graph.vertices]
    """
    if not isinstance(output, Tensor):
        raise TypeError(f"read_graph: expected the Tensor at the end of a graph, got "
                        f"{type(output).__name__}")
    names = names or {}
    order = _topological(output)
    grads = _gradients(output, order) if output.grad_fn is not None else None
    values = _values(output, order)
    index = {id(v): i for i, v in enumerate(order)}
    vertices = []
    for i, source in enumerate(order):
        if type(source) is Node:
            vertex = Vertex(i, "op", op_name(source), source.name(), names.get(id(source)),
                            inputs=[index[id(e)] for e in source.edges if e is not None],
                            params={k: v for k, v in source.params.items() if _shown(v)}
                            if hasattr(source.prim, "forward") else {})  # a Function's are internal
        else:
            vertex = Vertex(i, "leaf", "leaf", "AccumulateGrad", names.get(id(source)))
        vertex.source = source
        vertex.value = values.get(id(source))
        vertex.grad = grads.get(id(source)) if grads is not None else (
            source.grad._data if type(source) is not Node and source.grad is not None else None)
        known = vertex.value if vertex.value is not None else vertex.grad
        if known is not None:
            vertex.shape = tuple(np.shape(known))
            vertex.dtype = str(np.asarray(known).dtype)
        vertices.append(vertex)
    if output.grad_fn is not None:
        root = vertices[-1]
        root.shape, root.dtype = tuple(output._data.shape), str(output._data.dtype)
    return Graph(vertices, grads is not None, output)


def _shown(value: Any) -> bool:
    """Static parameters worth showing: numbers, strings, small tuples (not arrays, not ctx)."""
    return isinstance(value, (int, float, str, bool)) or (
        isinstance(value, tuple) and len(value) <= 8
        and all(isinstance(x, (int, float, bool)) or x is None for x in value))
