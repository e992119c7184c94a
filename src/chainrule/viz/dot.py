"""The computation graph as Graphviz DOT, and rendered to SVG/PNG by Graphviz's ``dot``.

>>> print(chainrule.viz.to_dot(loss, params=model))
>>> chainrule.viz.render(loss, "graph.svg", params=model)     # needs the dot program
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import numpy as np

from ..tensor import Tensor
from .graph import Graph, Vertex, read_graph, user_names

__all__ = ["to_dot", "render", "module_of_vertices", "summarize"]


def summarize(array: Any, limit: int = 6) -> str:
    """A short text for an array: all of it when small, else shape and mean/min/max."""
    if array is None:
        return "unknown"
    array = np.asarray(array)
    if array.size <= limit:
        text = np.array2string(array, precision=4, separator=", ", suppress_small=True)
        return " ".join(text.split())
    return (f"mean {float(array.mean()):.4g}, min {float(array.min()):.4g}, "
            f"max {float(array.max()):.4g}")


def _shape(vertex: Vertex) -> str:
    return "?" if vertex.shape is None else "(" + ", ".join(map(str, vertex.shape)) + ")"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def module_of_vertices(graph: Graph) -> dict:
    """``vertex index -> module name`` for parameters (``fc1`` for ``fc1.weight``) and the ops
    of their module: ops on its parameters alone, the ops that combine those with data, and
    the ops on a path between them (a convolution's matmul-reshape-add from its weight to
    its bias). Ops after the last of these, such as a following activation, stay outside."""
    vertices = graph.vertices
    params: dict = {}
    for v in vertices:
        if v.kind == "leaf" and v.name and "." in v.name:
            params.setdefault(v.name.rsplit(".", 1)[0], set()).add(v.index)
    readers: dict = {}
    for v in vertices:
        for i in v.inputs:
            readers.setdefault(i, []).append(v.index)
    modules: dict = {}
    for module, leaves in sorted(params.items(), key=lambda kv: len(kv[1])):
        own = set(leaves)  # its parameters and ops on them alone (reshape of a weight)
        for v in vertices:  # (vertices are in forward order)
            if (v.kind == "op" and v.inputs and len(v.inputs) == len(v.source.edges)  # no constants
                    and all(i in own for i in v.inputs)):
                own.add(v.index)
        after = set(own)  # everything computed from them
        for v in vertices:
            if v.kind == "op" and any(i in after for i in v.inputs):
                after.add(v.index)
        before = {v.index for v in vertices if any(i in own for i in v.inputs)}
        for v in reversed(vertices):  # the ops that combine them with data, and what leads there
            if any(r in before for r in readers.get(v.index, ())):
                before.add(v.index)
        for index in own | (after & before):
            modules.setdefault(index, module)
    return modules


def _label(vertex: Vertex, show_values: bool) -> str:
    if vertex.kind == "leaf":
        lines = [vertex.name or "leaf", _shape(vertex)]
    else:
        title = vertex.op if not vertex.name else f"{vertex.name} = {vertex.op}"
        lines = [title, _shape(vertex)]
    if show_values:
        lines.append("value: " + summarize(vertex.value))
        lines.append("grad: " + summarize(vertex.grad))
    return "\n".join(lines)


def to_dot(output: Tensor, params: Any = None, show_values: bool = False,
           collapse_modules: bool = False) -> str:
    """Graphviz DOT text of the graph behind ``output``: leaves (blue boxes, named after the
    caller's variables or from ``params``: a Module or a dict of name -> tensor) flow down
    through the ops (with their output shapes) to ``output`` (green). ``show_values`` adds
    each value and gradient (of ``output.sum()``) where known; ``collapse_modules`` draws
    each module with parameters as one box.

    >>> dot = chainrule.viz.to_dot(loss, params=model, show_values=True)
    >>> graphviz.Source(dot)        # parses with the graphviz package
    """
    return _to_dot(read_graph(output, user_names(params, 1)), params, show_values, collapse_modules)


def _to_dot(graph: Graph, params: Any, show_values: bool, collapse_modules: bool) -> str:
    classes = {}
    if params is not None and hasattr(params, "named_modules"):
        classes = {name: type(m).__name__ for name, m in params.named_modules()}
    group = module_of_vertices(graph) if collapse_modules else {}
    lines = ["digraph chainrule {",
             '  graph [rankdir=TB, fontname="Helvetica"];',
             '  node [fontname="Helvetica", fontsize=10];',
             '  edge [arrowsize=0.6];']
    if not graph.grads_known and graph.root.kind == "op":
        note = "graph freed by backward: shapes and gradients only where kept"
        lines.append(f"  graph [label={_quote(note)}, labelloc=t];")
    key_of = {}
    written = set()
    for vertex in graph.vertices:
        module = group.get(vertex.index)
        if module is not None:
            key = "m_" + "".join(ch if ch.isalnum() else "_" for ch in module)
            key_of[vertex.index] = key
            if key not in written:
                written.add(key)
                members = [v for v in graph.vertices if group.get(v.index) == module]
                ops = sum(1 for v in members if v.kind == "op")
                last = members[-1]
                kind = classes.get(module, "module")
                label = f"{module} ({kind})\n{ops} op{'' if ops == 1 else 's'} -> {_shape(last)}"
                lines.append(f"  {key} [label={_quote(label)}, shape=box3d, style=filled, "
                             f'fillcolor="#fde9c9"];')
            continue
        key = f"v{vertex.index}"
        key_of[vertex.index] = key
        if vertex.kind == "leaf":
            style = 'shape=box, style=filled, fillcolor="#cfe2f3"'
        elif vertex is graph.root:
            style = 'shape=box, style="filled,rounded", fillcolor="#d9ead3"'
        else:
            style = 'shape=box, style=rounded'
        lines.append(f"  {key} [label={_quote(_label(vertex, show_values))}, {style}];")
    edges = []
    for vertex in graph.vertices:
        for i in vertex.inputs:
            edge = (key_of[i], key_of[vertex.index])
            if edge[0] != edge[1] and edge not in edges:
                edges.append(edge)
    lines += [f"  {a} -> {b};" for a, b in edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(output: Tensor, path: str | os.PathLike, params: Any = None, show_values: bool = False,
           collapse_modules: bool = False) -> str:
    """Draw the graph behind ``output`` to ``path`` (``.svg`` or ``.png``, from the suffix)
    with Graphviz's ``dot`` program; returns the path.

    >>> chainrule.viz.render(loss, "graph.png", params=model)
    """
    path = os.fspath(path)
    fmt = os.path.splitext(path)[1].lstrip(".").lower()
    if fmt not in ("svg", "png", "pdf"):
        raise ValueError(f"render: cannot tell the format from {path!r}; end it in .svg, .png or .pdf")
    program = shutil.which("dot")
    if program is None:
        raise RuntimeError("render: Graphviz's dot program is not installed (Debian: apt-get "
                           "install graphviz); to_dot() gives the DOT text without it, and "
                           "to_html() draws the graph with no program at all")
    dot = _to_dot(read_graph(output, user_names(params, 1)), params, show_values, collapse_modules)
    subprocess.run([program, f"-T{fmt}", "-o", path], input=dot.encode(), check=True,
                   capture_output=True)
    return path
