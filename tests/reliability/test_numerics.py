"""Numerics at the edges (docs/numerics.md): values and gradients where a function or its
derivative is infinite, undefined or a convention, against PyTorch in float64 and float32.

Each case feeds exact values (0, ±inf, NaN, ties, huge logits) to one function; the values
and the gradient of ``sum(out * w)`` must equal PyTorch's, with NaN and inf in the same
places. The second-order cases compare where PyTorch has an answer, and check chainrule's
documented conventions where it has none.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest

import chainrule

torch = pytest.importorskip("torch")

INF, NAN = np.inf, np.nan


class Edge(NamedTuple):
    name: str
    fn: Callable[..., Any]  # fn(m, *inputs) for m in (chainrule, torch)
    values: tuple


def F(m: Any) -> Any:  # noqa: N802 - the usual alias of nn.functional
    return m.nn.functional


EDGES = [
    # roots, logs and powers at 0
    Edge("sqrt", lambda m, x: m.sqrt(x), ([0.0, -0.0, 1e-300, 4.0, INF, -1.0],)),
    Edge("rsqrt", lambda m, x: m.rsqrt(x), ([0.0, 4.0, INF],)),
    Edge("log", lambda m, x: m.log(x), ([0.0, -0.0, 1.0, INF, -1.0],)),
    Edge("log2", lambda m, x: m.log2(x), ([0.0, 1.0],)),
    Edge("log1p", lambda m, x: m.log1p(x), ([-1.0, 0.0, INF],)),
    Edge("x**2", lambda m, x: x ** 2, ([0.0, -0.0, INF],)),
    Edge("x**0.5", lambda m, x: x ** 0.5, ([0.0, 4.0, -1.0],)),
    Edge("x**-1", lambda m, x: x ** -1, ([0.0, -0.0, 2.0],)),
    Edge("x**0", lambda m, x: x ** 0, ([0.0, NAN, INF],)),
    Edge("x**1.5", lambda m, x: x ** 1.5, ([0.0, 1.0],)),
    Edge("0**x", lambda m, x: 0.0 ** x, ([0.0, 1.0, -1.0, 0.5],)),
    Edge("x**y", lambda m, x, y: x ** y,
         ([0.0, 0.0, 0.0, 0.0, 2.0, -2.0], [0.0, 1.0, 2.0, -1.0, 0.0, 0.5])),
    # norms at 0
    Edge("norm", lambda m, x: m.norm(x), ([0.0, 0.0, 0.0],)),
    Edge("norm[p=1]", lambda m, x: m.norm(x, p=1), ([0.0, 0.0],)),
    Edge("norm[p=3]", lambda m, x: m.norm(x, p=3), ([0.0, 0.0],)),
    Edge("norm[inf]", lambda m, x: m.norm(x, p=INF), ([0.0, 0.0],)),
    Edge("norm[dim]", lambda m, x: m.norm(x, dim=1), ([[0.0, 0.0], [3.0, 4.0]],)),
    Edge("normalize", lambda m, x: F(m).normalize(x, dim=0), ([0.0, 0.0],)),
    Edge("cosine_similarity", lambda m, x, y: F(m).cosine_similarity(x, y, dim=0),
         ([0.0, 0.0], [1.0, 2.0])),
    # a NaN or inf in the branch where does not take
    Edge("where[log of negative]", lambda m, x: m.where(x > 0, m.log(x), m.zeros_like(x)),
         ([-1.0, 0.0, 2.0],)),
    Edge("where[sqrt of negative]", lambda m, x: m.where(x > 0, m.sqrt(x), x), ([-1.0, 0.0, 4.0],)),
    Edge("where[overflow]", lambda m, x: m.where(x < 100, x, m.exp(x * 100)), ([1.0, 200.0],)),
    Edge("where[1/0]", lambda m, x: m.where(x != 0, 1 / x, x), ([0.0, 2.0],)),
    # log-sum-exp and softmax
    Edge("logsumexp[all -inf]", lambda m, x: m.logsumexp(x, dim=0), ([-INF, -INF],)),
    Edge("logsumexp[rows]", lambda m, x: m.logsumexp(x, dim=1), ([[-INF, -INF], [0.0, -INF]],)),
    Edge("logsumexp[+inf]", lambda m, x: m.logsumexp(x, dim=0), ([INF, 1.0],)),
    Edge("logsumexp[nan]", lambda m, x: m.logsumexp(x, dim=0), ([NAN, 1.0],)),
    Edge("logsumexp[1e308]", lambda m, x: m.logsumexp(x, dim=0), ([1e308, 1e308],)),
    Edge("softmax[large]", lambda m, x: m.softmax(x, dim=0), ([1000.0, 1000.0, -1000.0],)),
    Edge("softmax[huge]", lambda m, x: m.softmax(x, dim=0), ([1e308, -1e308, 0.0],)),
    Edge("softmax[-inf]", lambda m, x: m.softmax(x, dim=0), ([-INF, 0.0],)),
    Edge("softmax[all -inf]", lambda m, x: m.softmax(x, dim=0), ([-INF, -INF],)),
    Edge("softmax[+inf]", lambda m, x: m.softmax(x, dim=0), ([INF, 0.0],)),
    Edge("log_softmax[large]", lambda m, x: m.log_softmax(x, dim=0), ([1000.0, -1000.0],)),
    Edge("log_softmax[all -inf]", lambda m, x: m.log_softmax(x, dim=0), ([-INF, -INF],)),
    Edge("cross_entropy[large]", lambda m, x: F(m).cross_entropy(x, m.tensor([0, 1])),
         ([[1000.0, -1000.0], [1e4, 0.0]],)),
    # binary cross-entropy at 0 and 1
    Edge("bce[0 and 1]", lambda m, p, t: F(m).binary_cross_entropy(p, t, reduction="none"),
         ([0.0, 1.0, 0.0, 1.0, 0.5], [0.0, 1.0, 1.0, 0.0, 1.0])),
    Edge("bce[mean]", lambda m, p, t: F(m).binary_cross_entropy(p, t),
         ([0.0, 1.0, 1e-20], [1.0, 0.0, 1.0])),
    Edge("bce_with_logits[large]", lambda m, x, t: F(m).binary_cross_entropy_with_logits(
        x, t, reduction="none"), ([1000.0, -1000.0, 0.0], [0.0, 1.0, 0.5])),
    # ties and NaNs in max/min
    Edge("max[ties]", lambda m, x: m.max(x), ([1.0, 3.0, 3.0, 3.0],)),
    Edge("max[dim, ties]", lambda m, x: m.max(x, dim=1)[0], ([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]],)),
    Edge("amax[ties]", lambda m, x: m.amax(x, dim=1), ([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]],)),
    Edge("min[ties]", lambda m, x: m.min(x), ([0.0, 0.0, 1.0],)),
    Edge("maximum[ties]", lambda m, x, y: m.maximum(x, y), ([1.0, 2.0], [1.0, 3.0])),
    Edge("max[nan]", lambda m, x: m.max(x), ([1.0, NAN, 3.0],)),
    Edge("max[dim, nan]", lambda m, x: m.max(x, dim=0)[0], ([1.0, NAN, 3.0],)),
    Edge("clamp[nan]", lambda m, x: m.clamp(x, -1, 1), ([NAN, 2.0, 1.0, -1.0],)),
    Edge("relu[nan, 0]", lambda m, x: m.relu(x), ([NAN, 0.0],)),
    Edge("abs[0]", lambda m, x: m.abs(x), ([0.0, -0.0],)),
    Edge("sign", lambda m, x: m.sign(x), ([0.0, NAN],)),
    # division by zero
    Edge("x/y[y=0]", lambda m, x, y: x / y, ([1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 0.0, -0.0])),
    Edge("x/0.0", lambda m, x: x / 0.0, ([1.0, 0.0, -2.0],)),
    Edge("1.0/x", lambda m, x: 1.0 / x, ([0.0, -0.0, 2.0],)),
    Edge("reciprocal", lambda m, x: m.reciprocal(x), ([0.0, -0.0],)),
    Edge("div[floor, y=0]", lambda m, x, y: m.div(x, y, rounding_mode="floor"),
         ([1.0, -1.0, 7.0], [0.0, 2.0, 2.0])),
    Edge("div[trunc, y=0]", lambda m, x, y: m.div(x, y, rounding_mode="trunc"),
         ([1.0, -7.0], [0.0, 2.0])),
    # degenerate statistics and saturated activations
    Edge("std[constant]", lambda m, x: m.std(x), ([1.0, 1.0, 1.0],)),
    Edge("std[one element]", lambda m, x: m.std(x), ([1.0],)),
    Edge("var[one element]", lambda m, x: m.var(x), ([1.0],)),
    Edge("prod[zeros]", lambda m, x: m.prod(x), ([0.0, 2.0, 0.0],)),
    Edge("prod[one zero]", lambda m, x: m.prod(x), ([0.0, 2.0, 3.0],)),
    Edge("tanh[large]", lambda m, x: m.tanh(x), ([1000.0, -1000.0],)),
    Edge("sigmoid[large]", lambda m, x: m.sigmoid(x), ([1000.0, -1000.0, -745.0],)),
    Edge("softplus[large]", lambda m, x: F(m).softplus(x), ([1000.0, -1000.0],)),
    Edge("logsigmoid[large]", lambda m, x: F(m).logsigmoid(x), ([1000.0, -1000.0],)),
    Edge("exp[overflow]", lambda m, x: m.exp(x), ([1000.0, -1000.0],)),
    Edge("expm1[tiny, overflow]", lambda m, x: m.expm1(x), ([1e-20, 1000.0],)),
    Edge("erf[tails]", lambda m, x: m.erf(x), ([30.0, -30.0],)),
    Edge("gelu[tails]", lambda m, x: F(m).gelu(x), ([-40.0, 40.0],)),
    Edge("silu[large]", lambda m, x: F(m).silu(x), ([-1000.0, 1000.0],)),
    Edge("mish[large]", lambda m, x: F(m).mish(x), ([-1000.0, 1000.0],)),
    Edge("elu[large]", lambda m, x: F(m).elu(x), ([-1000.0, 1000.0],)),
    Edge("layer_norm[constant]", lambda m, x: F(m).layer_norm(x, (3,)), ([2.0, 2.0, 2.0],)),
    Edge("mse_loss[inf]", lambda m, x, y: F(m).mse_loss(x, y), ([INF, 1.0], [1.0, 1.0])),
    Edge("smooth_l1[beta=0]", lambda m, x, y: F(m).smooth_l1_loss(x, y, beta=0.0),
         ([1.0, 2.0], [1.0, 0.0])),
]


def _run(m: Any, edge: Edge, dtype: Any, order: int = 1) -> tuple:
    """The edge's value, and its gradients (order 1) or second-order gradients (order 2)."""
    inputs = [m.tensor(np.array(v, dtype=dtype), requires_grad=True) for v in edge.values]
    out = edge.fn(m, *inputs)
    weights = m.tensor(np.linspace(0.5, 1.5, out.numel()).reshape(tuple(out.shape)).astype(dtype))
    grads = m.autograd.grad((out * weights).sum(), inputs, allow_unused=True,
                            create_graph=order == 2)
    if order == 2:
        inner = sum((g * m.tensor(np.linspace(-1.0, 2.0, g.numel()).reshape(tuple(g.shape))
                                  .astype(dtype))).sum() for g in grads if g is not None)
        if isinstance(inner, int) or not inner.requires_grad:
            grads = [None] * len(inputs)  # the gradient is constant: second order 0
        else:
            grads = m.autograd.grad(inner, inputs, allow_unused=True)
    return _numpy(out), [None if g is None else _numpy(g) for g in grads]


def _numpy(t: Any) -> np.ndarray:
    if getattr(t, "_is_zerotensor", None) is not None and t._is_zerotensor():
        return np.zeros(tuple(t.shape), dtype=str(t.dtype).split(".")[-1])
    return np.array(t.detach().numpy())


def _assert_same(ours: np.ndarray, theirs: np.ndarray, what: str) -> None:
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype, what
    rtol = 1e-10 if ours.dtype == np.float64 else 1e-5
    # equal NaN and inf positions (and inf signs), finite values close; below the smallest
    # normal number PyTorch's kernels may give 0 where chainrule keeps a subnormal
    # (sigmoid(-745) = 5e-324)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=np.finfo(ours.dtype).tiny,
                               equal_nan=True, err_msg=what)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("edge", EDGES, ids=[e.name for e in EDGES])
def test_edge_matches_torch(edge: Edge, dtype: Any) -> None:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        value, grads = _run(chainrule, edge, dtype)
        expected_value, expected_grads = _run(torch, edge, dtype)
    _assert_same(value, expected_value, "value")
    for k, (g, e) in enumerate(zip(grads, expected_grads)):
        assert (g is None) == (e is None), f"gradient {k}: None in one library only"
        if g is not None:
            _assert_same(g, e, f"gradient of input {k}")


# Second order where both libraries have an answer: the stable formulations stay stable,
# and where never lets a NaN from the branch not taken reach a gradient of any order.
SECOND_ORDER = [e for e in EDGES if e.name in {
    "where[log of negative]", "where[sqrt of negative]", "where[overflow]", "where[1/0]",
    "softmax[large]", "softmax[-inf]", "log_softmax[large]", "logsumexp[1e308]",
    "cross_entropy[large]", "bce_with_logits[large]", "sigmoid[large]", "tanh[large]",
    "softplus[large]", "logsigmoid[large]", "max[ties]", "amax[ties]", "maximum[ties]",
    "x**2", "x**0", "prod[zeros]", "prod[one zero]", "std[constant]", "layer_norm[constant]",
    "gelu[tails]", "silu[large]", "elu[large]", "x/y[y=0]", "1.0/x",
}]


@pytest.mark.parametrize("edge", SECOND_ORDER, ids=[e.name for e in SECOND_ORDER])
def test_edge_second_order_matches_torch(edge: Edge) -> None:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        _, grads = _run(chainrule, edge, np.float64, order=2)
        _, expected = _run(torch, edge, np.float64, order=2)
    for k, (g, e) in enumerate(zip(grads, expected)):
        if g is None and e is None:
            continue
        # a second-order gradient that is None is a zero one
        g = np.zeros_like(e) if g is None else g
        e = np.zeros_like(g) if e is None else e
        _assert_same(g, e, f"second-order gradient of input {k}")


def test_where_with_the_input_masked_too_is_finite_at_every_order() -> None:
    """where gives the branch not taken an exact zero gradient, but that branch's own rule
    can still turn the zero into NaN (log's 0 / x at x = 0, 0 * inf), in PyTorch as here
    (the where[log of negative] edge). Masking the input as well keeps every order finite."""
    x = chainrule.tensor([-2.0, 0.0, 3.0], dtype=chainrule.float64, requires_grad=True)
    inside = x > 0
    safe = chainrule.where(inside, x, 1.0)
    y = chainrule.where(inside, chainrule.log(safe) * chainrule.sqrt(safe), x * x)
    (g,) = chainrule.autograd.grad(y.sum(), x, create_graph=True)
    (h,) = chainrule.autograd.grad(g.sum(), x)
    assert np.isfinite(g.detach().numpy()).all() and np.isfinite(h.numpy()).all()
    assert g.tolist()[:2] == [-4.0, 0.0]


def _second(fn: Callable, values: list) -> np.ndarray:
    x = chainrule.tensor(values, dtype=chainrule.float64, requires_grad=True)
    (g,) = chainrule.autograd.grad(fn(x).sum(), x, create_graph=True)
    (h,) = chainrule.autograd.grad(g.sum(), x)
    return h.numpy()


def test_second_order_conventions() -> None:
    """Where no second derivative exists, chainrule differentiates its first-order formula
    (docs/numerics.md); PyTorch gives NaN in each of these."""
    assert _second(chainrule.norm, [0.0, 0.0]).tolist() == [0.0, 0.0]
    assert _second(lambda x: chainrule.nn.functional.normalize(x, dim=0) * chainrule.tensor(
        [1.0, 2.0], dtype=chainrule.float64), [0.0, 0.0]).tolist() == [0.0, 0.0]
    x = chainrule.tensor([0.0, 0.0], dtype=chainrule.float64, requires_grad=True)
    y = chainrule.tensor([1.0, 2.0], dtype=chainrule.float64, requires_grad=True)
    gx, gy = chainrule.autograd.grad((x ** y).sum(), (x, y), create_graph=True)
    assert chainrule.autograd.grad(gy.sum(), x)[0].tolist() == [0.0, 0.0]  # PyTorch: NaN
    assert _second(lambda x: chainrule.nn.functional.mish(x), [1000.0]).tolist() == [0.0]


def test_amax_with_nan_shares_the_gradient_among_nans() -> None:
    """One rule for torch.max(x) and torch.amax(x, dim): PyTorch's amax(dim) gives the whole
    slice NaN gradients, its max(x) shares among the NaNs; chainrule does the latter."""
    x = chainrule.tensor([1.0, NAN, NAN], dtype=chainrule.float64, requires_grad=True)
    chainrule.amax(x, dim=0).backward()
    assert x.grad.tolist() == [0.0, 0.5, 0.5]
    t = torch.tensor([1.0, NAN, NAN], dtype=torch.float64, requires_grad=True)
    torch.max(t).backward()
    assert t.grad.tolist() == [0.0, 0.5, 0.5]


def test_bce_gradient_floor_is_pytorchs_float32_constant() -> None:
    p = chainrule.tensor([0.0, 1.0], dtype=chainrule.float64, requires_grad=True)
    t = chainrule.tensor([1.0, 0.0], dtype=chainrule.float64)
    chainrule.nn.functional.binary_cross_entropy(p, t, reduction="sum").backward()
    assert p.grad.tolist() == [-1 / float(np.float32(1e-12)), 1 / float(np.float32(1e-12))]
