"""explain: the worked backward pass of the issue's two-layer net, number by number."""

from __future__ import annotations

import re

import pytest

import chainrule as cr
import chainrule.viz as viz


def _net():
    w1, b1 = cr.tensor(0.5, requires_grad=True), cr.tensor(0.1, requires_grad=True)
    w2, b2 = cr.tensor(0.8, requires_grad=True), cr.tensor(0.2, requires_grad=True)
    x, y = cr.tensor(2.0), cr.tensor(1.5)
    z1 = w1 * x + b1
    a1 = cr.relu(z1)
    yhat = w2 * a1 + b2
    L = 0.5 * (yhat - y) ** 2
    text = viz.explain(L)
    return text, (w1, b1, w2, b2, L)


def test_the_worked_example_shows_the_board_numbers(capsys):
    text, (w1, b1, w2, b2, L) = _net()
    assert capsys.readouterr().out.strip() == text.strip()  # printed as well as returned
    assert "z1 = t1 + b1 = 1.1" in text and "t1 = w1 * x = 1" in text
    assert "yhat = t2 + b2 = 1.08" in text and "a1 = relu(z1) = 1.1" in text
    gradients = dict(re.findall(r"^  dL/d(\w+) = (\S+)", text, flags=re.M))
    assert "dL/dyhat = -0.42    (delta2 = -0.42: the error at layer 2's output)" in text
    assert "dL/dz1 = -0.336    (delta1 = -0.336: the error at layer 1's output)" in text
    assert gradients["yhat"] == "-0.42"  # delta2
    assert gradients["w2"] == "-0.462"
    assert gradients["z1"] == "-0.336"  # delta1
    assert gradients["w1"] == "-0.672"
    assert gradients["b2"] == "-0.42" and gradients["b1"] == "-0.336"
    # each step is upstream x local = product
    assert "dL/dw2 += dL/dt2 * dt2/dw2 = -0.42 * 1.1 = -0.462" in text
    assert "dL/dz1 += dL/da1 * da1/dz1 = -0.336 * 1 = -0.336" in text
    assert "dL/dw1 += dL/dt1 * dt1/dw1 = -0.336 * 2 = -0.672" in text
    # the graph is untouched: backward still works and agrees
    L.backward()
    assert [round(t.grad.item(), 4) for t in (w1, b1, w2, b2)] == [-0.672, -0.336, -0.462, -0.42]


def test_explain_after_backward_says_what_to_do():
    w = cr.tensor(2.0, requires_grad=True)
    L = w * w
    L.backward()
    with pytest.raises(RuntimeError, match="before loss.backward"):
        viz.explain(L)
    with pytest.raises(ValueError, match="no grad_fn"):
        viz.explain(cr.tensor(1.0))


def test_expression_for_the_cli_sums_a_value_used_twice():
    text = viz.explain_expression("(x+y)*z", x=2, y=3, z=4)
    assert "f = t1 * z = 20" in text
    gradients = dict(re.findall(r"^  df/d(\w+) = (\S+)$", text, flags=re.M))
    assert gradients == {"x": "4", "y": "4", "z": "5"}
    text = viz.explain_expression("x*x + sigmoid(2*x) - 1/x", x=1)
    assert "df/dx = 3.21" in text  # 2x + 2 s(2x)(1 - s(2x)) + 1/x^2 at 1
    with pytest.raises(ValueError, match="no value given for 'y'"):
        viz.explain_expression("x + y", x=1)
    with pytest.raises(ValueError, match="cannot read"):
        viz.explain_expression("__import__('os')", x=1)
    with pytest.raises(ValueError, match="not an expression"):
        viz.explain_expression("x +", x=1)
