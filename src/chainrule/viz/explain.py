"""The backward pass of a small graph written out as a teacher works it on the board.

For each op from the loss back to the leaves: the upstream gradient (dL/d its output),
the local derivative of its output with respect to each input, and their product, the
input's share of the gradient. Shares of an input used several times are added. The
last lines give dL/d each named result and each parameter.

>>> w = chainrule.tensor(3.0, requires_grad=True)
>>> L = (w * 2.0 - 1.0) ** 2
>>> text = chainrule.viz.explain(L)      # prints, and returns the text
"""

from __future__ import annotations

import ast
from typing import Any

import numpy as np

from .._dtype import float64
from ..autograd import engine
from ..autograd.grad_mode import no_grad
from ..ops import creation
from ..tensor import Tensor
from .graph import Graph, Vertex, read_graph, user_names

__all__ = ["explain", "explain_expression"]

# how a few ops read as formulas; ``{0}``, ``{1}``: input names, other keys: static params
_FORMULAS = {
    "add": "{0} + {1}", "sub": "{0} - {1}", "mul": "{0} * {1}", "div": "{0} / {1}",
    "matmul": "{0} @ {1}", "neg": "-{0}", "pow": "{0} ^ {1}",
    "add_scalar": "{0} + {other}", "sub_scalar": "{0} - {other}", "rsub_scalar": "{other} - {0}",
    "mul_scalar": "{other} * {0}", "div_scalar": "{0} / {other}", "rdiv_scalar": "{other} / {0}",
    "pow_scalar": "{0} ^ {exponent}", "rpow_scalar": "{base} ^ {0}",
}


def _num(value: Any) -> str:
    """A value as the board shows it: a number for a scalar, a short array otherwise."""
    array = np.asarray(value)
    if array.size == 1:
        return f"{float(array.reshape(())):.4g}"
    if array.size <= 6:
        return np.array2string(array, precision=4, separator=", ")
    return f"<{array.dtype} {tuple(array.shape)} mean {float(array.mean()):.4g}>"


def _names(graph: Graph) -> dict:
    """A name for every vertex: the user's, else t1, t2, ... for results and p1, ... for leaves."""
    names, counts = {}, {"op": 0, "leaf": 0}
    for vertex in graph.vertices:
        if vertex.name:
            names[vertex.index] = vertex.name
        else:
            counts[vertex.kind] += 1
            names[vertex.index] = ("t" if vertex.kind == "op" else "p") + str(counts[vertex.kind])
    return names


def _constant(node: Any, position: int, constants: dict) -> str:
    """A constant input by its name where the op saved it (else its value, else ``c``)."""
    spec = getattr(node.prim, "save", None) or ()
    if isinstance(spec, str):
        spec = tuple(range(len(node.edges)))
    if position not in spec or not node.saved:
        return "c"
    array = node.saved[spec.index(position)]
    return constants.get(id(array)) or (_num(array) if np.size(array) <= 6 else "c")


def _formula(vertex: Vertex, names: dict, constants: dict) -> str:
    """``w1 * x`` style text for an op; constants by name where known, else ``c``."""
    node = vertex.source
    args, inputs = [], iter(vertex.inputs)
    for position, edge in enumerate(node.edges):
        args.append(_constant(node, position, constants) if edge is None else names[next(inputs)])
    template = _FORMULAS.get(vertex.op)
    if template is not None:
        try:
            return template.format(*args, **{k: _num(v) for k, v in node.params.items()})
        except (IndexError, KeyError):
            pass
    extra = [f"{k}={v}" for k, v in vertex.params.items()]
    return f"{vertex.op}({', '.join(args + extra)})"


def _shares(vertex: Vertex, grad: np.ndarray) -> tuple:
    """The input gradients of one op for upstream ``grad``, and for upstream ones (the local
    derivatives, meaningful where everything is a scalar)."""
    node = vertex.source
    rule = node.prim.vjp
    with no_grad():  # as the engine runs a plain backward: rules on arrays, nothing recorded
        xp = engine.rule_namespace(grad)
        shares = rule(xp, grad, node.saved, node.params, node.needs)
        local = rule(xp, xp.ones_like(grad), node.saved, node.params, node.needs)
    return shares, local


def _written(graph: Graph, names: dict, constants: dict, loss_name: str) -> list:
    lines = ["Forward pass:"]
    for vertex in graph.vertices:
        value = "?" if vertex.value is None else _num(vertex.value)
        if vertex.kind == "leaf":
            lines.append(f"  {names[vertex.index]} = {value}")
        else:
            lines.append(f"  {names[vertex.index]} = {_formula(vertex, names, constants)} = {value}")
    lines += ["", f"Backward pass, from d{loss_name}/d{loss_name} = 1 back to the leaves:"]
    for vertex in reversed(graph.vertices):
        if vertex.kind == "leaf":
            continue
        out = names[vertex.index]
        grad = vertex.grad
        lines.append(f"  {out} = {_formula(vertex, names, constants)}    upstream d{loss_name}/d{out} "
                     f"= {_num(grad)}")
        shares, local = _shares(vertex, grad)
        inputs = iter(vertex.inputs)
        for edge, share, slope in zip(vertex.source.edges, shares, local):
            if edge is None:
                continue
            name = names[next(inputs)]
            if np.size(grad) == 1 and np.size(share) == 1:
                lines.append(f"    d{loss_name}/d{name} += d{loss_name}/d{out} * d{out}/d{name} "
                             f"= {_num(grad)} * {_num(slope)} = {_num(share)}")
            else:
                lines.append(f"    d{loss_name}/d{name} += vjp of {vertex.op}: {_num(grad)} "
                             f"-> {_num(share)}")
    lines += ["", "Gradients:"]
    deltas = _layer_outputs(graph)
    for vertex in reversed(graph.vertices):
        if vertex.index != graph.root.index and (vertex.name or vertex.kind == "leaf"
                                                 or vertex.index in deltas):
            line = f"  d{loss_name}/d{names[vertex.index]} = {_num(vertex.grad)}"
            if vertex.index in deltas:
                layer = deltas[vertex.index]
                line += f"    (delta{layer} = {_num(vertex.grad)}: the error at layer {layer}'s output)"
            lines.append(line)
    return lines


def _layer_outputs(graph: Graph) -> dict:
    """``vertex index -> layer number`` for the outputs of affine layers (``w * a + b``,
    ``W @ a + b``, ``linear``) in forward order: where the board writes delta_l = dL/dz_l."""
    vertices = graph.vertices

    def is_leaf(i: int) -> bool:
        return vertices[i].kind == "leaf"

    layers: dict = {}
    for v in vertices:
        affine = v.op in ("linear", "addmm") and any(is_leaf(i) for i in v.inputs)
        if v.op == "add" and len(v.inputs) == 2:
            for product, bias in (v.inputs, v.inputs[::-1]):
                inner = vertices[product]
                if is_leaf(bias) and inner.op in ("mul", "matmul") and any(map(is_leaf, inner.inputs)):
                    affine = True
        if affine:
            layers[v.index] = len(layers) + 1
    return layers


def explain(loss: Tensor, params: Any = None) -> str:
    """Print the worked backward pass of the (small) graph behind ``loss`` and return it.

    Results and leaves are named after the caller's variables (or ``params``: a Module or
    a dict of name -> tensor); others are called t1, t2, ... Call it before
    ``loss.backward()`` (or after ``backward(retain_graph=True)``): it needs the graph.

    >>> w1 = chainrule.tensor(0.5, requires_grad=True); x = chainrule.tensor(2.0)
    >>> L = (w1 * x - 1.5) ** 2
    >>> _ = chainrule.viz.explain(L)   # ... dL/dw1 = -2 ...
    """
    text = _explain(loss, user_names(params, 1), "L")
    print(text)
    return text


def _explain(loss: Tensor, names: dict, default_name: str) -> str:
    if not isinstance(loss, Tensor) or loss.grad_fn is None:
        raise ValueError("explain: expected a tensor computed from tensors that require grad "
                         "(it has no grad_fn, so there is no backward pass to explain)")
    graph = read_graph(loss, names)
    if not graph.grads_known:
        raise RuntimeError(
            f"explain: the graph behind this {tuple(loss.shape)} tensor was freed by backward; "
            f"call explain(loss) before loss.backward(), or use backward(retain_graph=True)")
    loss_name = graph.root.name or default_name
    labels = _names(graph)
    labels[graph.root.index] = loss_name
    return "\n".join(_written(graph, labels, names, loss_name))


# ------------------------------------------------------------------ expressions
_FUNCTIONS = ("exp", "log", "sin", "cos", "tanh", "sigmoid", "relu", "sqrt", "abs")
_BINARY = {ast.Add: "__add__", ast.Sub: "__sub__", ast.Mult: "__mul__", ast.Div: "__truediv__",
           ast.Pow: "__pow__"}


def _evaluate(node: ast.AST, values: dict) -> Any:
    """Evaluate a parsed arithmetic expression over tensors (no Python eval: only names,
    numbers, + - * / ** and a few functions)."""
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, values)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return float(node.value)
    if isinstance(node, ast.Name):
        if node.id not in values:
            raise ValueError(f"explain_expression: no value given for {node.id!r}; pass it as "
                             f"{node.id}=...")
        return values[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left, values), _evaluate(node.right, values)
        if not isinstance(left, Tensor):
            left, right = right, left
            method = {"__sub__": "__rsub__", "__truediv__": "__rtruediv__",
                      "__pow__": "__rpow__"}.get(_BINARY[type(node.op)], _BINARY[type(node.op)])
        else:
            method = _BINARY[type(node.op)]
        return getattr(left, method)(right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _evaluate(node.operand, values)
        return -inner if isinstance(node.op, ast.USub) else inner
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in _FUNCTIONS and len(node.args) == 1 and not node.keywords):
        inner = _evaluate(node.args[0], values)
        return getattr(inner, node.func.id)()
    raise ValueError(f"explain_expression: cannot read {ast.unparse(node)!r}; use names, numbers, "
                     f"+ - * / ** and {', '.join(_FUNCTIONS)}")


def explain_expression(expression: str, **values: float) -> str:
    """Build ``expression`` from the given values (float64 leaves that require grad), print
    its worked backward pass and return it; the text of ``chainrule explain``.

    >>> _ = chainrule.viz.explain_expression("(x+y)*z", x=2, y=3, z=4)  # ... df/dx = 4 ...
    """
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as error:
        raise ValueError(f"explain_expression: {expression!r} is not an expression: "
                         f"{error.msg}") from None
    leaves = {name: creation.tensor(float(v), requires_grad=True, dtype=float64)
              for name, v in values.items()}
    result = _evaluate(tree, leaves)
    if not isinstance(result, Tensor) or result.grad_fn is None:
        raise ValueError(f"explain_expression: {expression!r} uses none of the given values "
                         f"({', '.join(values) or 'none given'})")
    names = {id(t): name for name, t in leaves.items()}
    text = _explain(result, names, "f")
    print(text)
    return text
