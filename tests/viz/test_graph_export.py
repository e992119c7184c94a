"""to_dot / render / the graph reader: shapes, values and gradients are right, DOT parses,
and reading the graph leaves the user's gradients and hooks alone."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn as nn
import chainrule.viz as viz
from chainrule.viz.graph import param_names, read_graph

needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's dot program is not installed (apt-get install graphviz)")


def _edges(dot: str) -> list:
    return re.findall(r"^  (\w+) -> (\w+);$", dot, flags=re.M)


def _mlp():
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    loss = (model(cr.randn(5, 4)) ** 2).mean()
    return model, loss


def test_read_graph_gives_shapes_values_and_the_gradients_backward_gives():
    model, loss = _mlp()
    hooked = []
    model[0].weight.register_hook(lambda g: hooked.append(g))
    graph = read_graph(loss, param_names(model))
    assert model[0].weight.grad is None and hooked == []  # nothing of the user's touched
    ops = [v.op for v in graph.vertices if v.kind == "op"]
    assert ops == ["linear", "relu", "linear", "pow_scalar", "mean"]
    relu = next(v for v in graph.vertices if v.op == "relu")
    assert relu.shape == (5, 8) and relu.value is not None and np.all(relu.value >= 0)
    loss.backward()
    for vertex in graph.vertices:
        if vertex.kind == "leaf":
            np.testing.assert_allclose(vertex.grad, dict(model.named_parameters())[vertex.name].grad.numpy(),
                                       rtol=1e-6)
    assert len(hooked) == 1
    assert graph.root.shape == () and graph.root.value == pytest.approx(loss.item())


def test_dot_has_every_op_with_shapes_and_values_on_request():
    model, loss = _mlp()
    dot = viz.to_dot(loss, params=model, show_values=True)
    assert dot.startswith("digraph chainrule {") and dot.rstrip().endswith("}")
    for text in ('label="0.weight\\n(8, 4)', 'label="relu\\n(5, 8)', "value: ", "grad: "):
        assert text in dot
    assert len(_edges(dot)) == 8
    collapsed = viz.to_dot(loss, params=model, collapse_modules=True)
    assert "0 (Linear)" in collapsed and "2 (Linear)" in collapsed and "weight" not in collapsed
    assert _edges(collapsed) == [("m_0", "v3"), ("v3", "m_2"), ("m_2", "v7"), ("v7", "v8")]


def test_dot_after_backward_says_what_it_lost():
    model, loss = _mlp()
    loss.backward()
    dot = viz.to_dot(loss, params=model)
    assert "graph freed by backward" in dot and "0.weight\\n(8, 4)" in dot


@needs_dot
def test_dot_parses_with_the_graphviz_package_and_renders(tmp_path):
    graphviz = pytest.importorskip("graphviz")
    model, loss = _mlp()
    for options in ({}, {"show_values": True}, {"collapse_modules": True}):
        svg = graphviz.Source(viz.to_dot(loss, params=model, **options)).pipe(format="svg")
        assert b"<svg" in svg and b"relu" in svg
    png = viz.render(loss, tmp_path / "graph.png", params=model)
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in open(viz.render(loss, tmp_path / "graph.svg")).read()


def test_render_refuses_an_unknown_format(tmp_path):
    _, loss = _mlp()
    with pytest.raises(ValueError, match="end it in .svg"):
        viz.render(loss, tmp_path / "graph.gif")


def test_collapse_puts_a_convolutions_ops_in_its_box_and_not_the_activation_after():
    cr.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    loss = model(cr.randn(2, 1, 8, 8)).sum()
    dot = viz.to_dot(loss, params=model, collapse_modules=True)
    # conv2d is one primitive (its weight and bias feed it directly)
    assert "0 (Conv2d)\\n1 op -> (2, 4, 6, 6)" in dot and "3 (Linear)\\n1 op -> (2, 2)" in dot
    assert 'v3 [label="relu\\n(2, 4, 6, 6)"' in dot
    assert ("m_0", "v3") in _edges(dot)  # conv box -> relu
