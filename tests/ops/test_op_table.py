"""Tests driven by the op table (tests/ops/specs.py).

For every case: gradcheck and gradgradcheck in float64 (first and second derivatives
against central differences; third order too on the small cases), and the values and
gradients of PyTorch from the same inputs, in float64 and in float32. The PyTorch gradient
compared is that of ``sum(out * w)`` for fixed random weights ``w``, a vector-Jacobian
product that sees every element of the Jacobian's rows. Hypothesis then draws further
shapes for the broadcasting and reduction entries.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import chainrule
from chainrule.autograd import gradcheck, gradgradcheck

from .specs import REQUIRED, SPECS, Case, OpSpec

CASES = [(spec, c) for spec in SPECS for c in spec.cases]
IDS = [f"{spec.name}-{c.id}" for spec, c in CASES]
SMOOTH = [(spec, c) for spec, c in CASES if spec.differentiable and c.smooth]
SMOOTH_IDS = [f"{spec.name}-{c.id}" for spec, c in SMOOTH]


def _outputs(out: Any) -> list:
    """An op's result as a list: a tensor, or the tensors of a tuple (split, max(dim))."""
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _check(check: Any, spec: OpSpec, c: Case) -> None:
    """gradcheck or gradgradcheck of the case, in float64."""
    inputs = [chainrule.tensor(a, dtype=chainrule.float64, requires_grad=True)
              for a in c.make_inputs(spec, f"{spec.name}-{c.id}")]
    assert check(lambda *xs: spec.call(chainrule, list(xs), c.kwargs), inputs,
                 atol=spec.atol, rtol=spec.rtol)


def test_table_covers_every_required_op() -> None:
    names = {spec.name.split("[")[0] for spec in SPECS}
    missing = [op for op in REQUIRED if op not in names]
    assert not missing, f"ops without an entry in the table: {missing}"
    assert len(set(IDS)) == len(IDS), "case ids must be unique"
    for spec in SPECS:
        assert spec.differentiable or spec.why_no_grad, f"{spec.name}: say why there is no grad"


@pytest.mark.parametrize(("spec", "c"), SMOOTH, ids=SMOOTH_IDS)
def test_gradcheck(spec: OpSpec, c: Case) -> None:
    _check(gradcheck, spec, c)


@pytest.mark.parametrize(("spec", "c"), SMOOTH, ids=SMOOTH_IDS)
def test_gradgradcheck(spec: OpSpec, c: Case) -> None:
    _check(gradgradcheck, spec, c)


# third order on the small cases: gradgradcheck of the first-order gradient, whose rules ran
# under create_graph, so one rule serving every order is checked once more
SMALL = [(spec, c) for spec, c in SMOOTH
         if 0 < sum(int(np.prod(s)) for s in (c.shapes or [np.shape(v) for v in c.values])) <= 8
         and all(0 not in s for s in c.shapes)]


@pytest.mark.parametrize(("spec", "c"), SMALL, ids=[f"{spec.name}-{c.id}" for spec, c in SMALL])
def test_third_order(spec: OpSpec, c: Case) -> None:
    inputs = [chainrule.tensor(a, dtype=chainrule.float64, requires_grad=True)
              for a in c.make_inputs(spec, f"{spec.name}-{c.id}")]

    def first_order(*xs: Any) -> tuple:
        outs = [o for o in _outputs(spec.call(chainrule, list(xs), c.kwargs))
                if o.dtype.is_floating_point and o.requires_grad]
        # fixed weights: the gradient of sum(out * w) is a smooth function of the inputs
        loss = sum((o * chainrule.linspace(0.3, 1.7, o.numel(), dtype=chainrule.float64)
                    .reshape(o.shape)).sum() for o in outs)
        grads = chainrule.autograd.grad(loss, xs, create_graph=True, allow_unused=True)
        return tuple(chainrule.zeros_like(x) if g is None else g for g, x in zip(grads, xs))

    assert gradgradcheck(first_order, inputs, atol=spec.atol, rtol=spec.rtol)


@pytest.mark.parametrize(("spec", "c"), CASES, ids=IDS)
def test_matches_torch(spec: OpSpec, c: Case) -> None:
    _compare_with_torch(spec, c, f"{spec.name}-{c.id}")


# float32, the default dtype: results and gradients keep it, and agree with PyTorch's to
# float32 rounding (the two libraries may sum in different orders)
FLOAT32_VALUES = {"rtol": 1e-5, "atol": 1e-6}
FLOAT32_GRADIENTS = {"rtol": 1e-4, "atol": 1e-5}


@pytest.mark.parametrize(("spec", "c"), CASES, ids=IDS)
def test_matches_torch_float32(spec: OpSpec, c: Case) -> None:
    _compare_with_torch(spec, c, f"{spec.name}-{c.id}", np.float32)


def _compare_with_torch(spec: OpSpec, c: Case, key: str, dtype: Any = np.float64) -> None:
    """Same inputs to both libraries: equal values, and equal gradients of sum(out * w)."""
    torch = pytest.importorskip("torch")
    arrays = [a.astype(dtype) for a in c.make_inputs(spec, key)]
    if dtype == np.float64:
        values = gradients = {"rtol": spec.parity_rtol, "atol": spec.parity_atol}
    else:
        values, gradients = FLOAT32_VALUES, FLOAT32_GRADIENTS
    grad = spec.differentiable
    ours = [chainrule.tensor(a.copy(), requires_grad=grad) for a in arrays]
    theirs = [torch.tensor(a.copy(), requires_grad=grad) for a in arrays]
    out_ours = _outputs(spec.call(chainrule, ours, c.kwargs))
    out_theirs = _outputs(spec.call(torch, theirs, c.kwargs))
    assert len(out_ours) == len(out_theirs)

    for k, (o, t) in enumerate(zip(out_ours, out_theirs)):
        expected = t.detach().numpy()
        actual = o.detach().cpu().numpy()
        assert actual.shape == expected.shape, f"output {k}: shape"
        assert actual.dtype == expected.dtype, f"output {k}: dtype"
        if expected.dtype.kind == "f":
            np.testing.assert_allclose(actual, expected, **values, err_msg=f"output {k}")
        else:
            np.testing.assert_array_equal(actual, expected, err_msg=f"output {k}")

    if not grad or not arrays:
        return
    if c.torch_no_grad:
        pytest.skip(f"gradient not compared: {c.torch_no_grad}")
    rng = np.random.default_rng(zlib.crc32(("weights-" + key).encode()))
    weights = [rng.standard_normal(t.shape).astype(dtype) for t in out_theirs]
    pairs = [(o, t, w) for o, t, w in zip(out_ours, out_theirs, weights)
             if t.dtype.is_floating_point and t.requires_grad]
    assert all(o.requires_grad for o, _, _ in pairs), "an output lost its grad_fn"
    if not pairs:
        return
    loss_ours = sum((o * chainrule.tensor(w)).sum() for o, _, w in pairs)
    loss_theirs = sum((t * torch.tensor(w)).sum() for _, t, w in pairs)
    g_ours = chainrule.autograd.grad(loss_ours, ours, allow_unused=True)
    g_theirs = torch.autograd.grad(loss_theirs, theirs, allow_unused=True)
    for k, (a, go, gt) in enumerate(zip(arrays, g_ours, g_theirs)):
        actual = np.zeros_like(a) if go is None else go.cpu().numpy()
        expected = np.zeros_like(a) if gt is None else gt.numpy()
        assert actual.shape == expected.shape == a.shape, f"gradient {k}: shape"
        assert actual.dtype == expected.dtype == a.dtype, f"gradient {k}: dtype"
        np.testing.assert_allclose(actual, expected, **gradients,
                                   err_msg=f"gradient of input {k}")


# ------------------------------------------------------------------ drawn shapes
# Hypothesis draws the shapes (and the dims reduced) for the table's broadcasting and
# reduction entries; values come from each entry's domain, as in the table.

BROADCASTING = {spec.name: spec for spec in SPECS if spec.name in (
    "add", "sub", "mul", "div", "pow[x**y]", "maximum", "minimum", "where", "clamp[tensor]")}
REDUCING = {spec.name: spec for spec in SPECS if spec.name in (
    "sum", "mean", "prod", "amax", "amin", "var", "std", "logsumexp", "norm")}
ALONG_ONE_DIM = {spec.name: spec for spec in SPECS if spec.name in (
    "softmax", "log_softmax", "cumsum", "max[dim]", "min[dim]")}


@st.composite
def _broadcast_case(draw: Any) -> tuple[OpSpec, Case]:
    spec = BROADCASTING[draw(st.sampled_from(sorted(BROADCASTING)))]
    arity = 3 if spec.name == "clamp[tensor]" else 2
    drawn = draw(hnp.mutually_broadcastable_shapes(num_shapes=arity, max_dims=3, min_side=0,
                                                    max_side=3))
    shapes = drawn.input_shapes
    if spec.name == "clamp[tensor]":  # PyTorch: the bounds broadcast to x, never x to them
        shapes = (drawn.result_shape,) + shapes[1:]
    return spec, Case(shapes=shapes)


@st.composite
def _reduction_case(draw: Any) -> tuple[OpSpec, Case]:
    spec = REDUCING[draw(st.sampled_from(sorted(REDUCING)))]
    # amax/amin/logsumexp/var/std/norm need a non-empty slice; zero-size shapes are in the table
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3))
    dims = draw(st.lists(st.integers(-len(shape), len(shape) - 1), min_size=1, max_size=3,
                         unique_by=lambda d: d % len(shape)))
    # PyTorch's prod takes one dim
    kwargs: dict = {"dim": dims[0] if spec.name == "prod" else tuple(dims),
                    "keepdim": draw(st.booleans())}
    if spec.name == "norm":
        kwargs["p"] = draw(st.sampled_from([1, 2, 3, float("inf")]))
    return spec, Case(shapes=(shape,), kwargs=kwargs)


@st.composite
def _along_dim_case(draw: Any) -> tuple[OpSpec, Case]:
    spec = ALONG_ONE_DIM[draw(st.sampled_from(sorted(ALONG_ONE_DIM)))]
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3))
    return spec, Case(shapes=(shape,), kwargs={
        "dim": draw(st.integers(-len(shape), len(shape) - 1))})


@pytest.mark.parametrize("strategy", [_broadcast_case, _reduction_case, _along_dim_case],
                         ids=["broadcasting", "reductions", "along-one-dim"])
def test_drawn_shapes_match_torch(strategy: Any) -> None:
    @given(strategy())
    def check(drawn: tuple[OpSpec, Case]) -> None:
        spec, c = drawn
        _compare_with_torch(spec, c, f"{spec.name}-drawn-{c.id}")

    check()
