"""Pooling (functional and modules) against PyTorch from identical inputs, in float64."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn
from chainrule.autograd import gradcheck, gradgradcheck

torch = pytest.importorskip("torch")
TF = torch.nn.functional

RTOL, ATOL = 1e-10, 1e-12


def compare(ours, theirs, x: np.ndarray, seed: int = 0) -> None:
    """Same values (and indices, when returned) and the same input gradient."""
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, expected = ours(xc), theirs(xt)
    if isinstance(expected, tuple):
        np.testing.assert_array_equal(out[1].numpy(), expected[1].numpy())
        assert out[1].dtype == cr.int64
        out, expected = out[0], expected[0]
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), RTOL, ATOL)
    g = np.random.default_rng(seed).standard_normal(tuple(expected.shape))
    out.backward(cr.tensor(g))
    expected.backward(torch.tensor(g))
    np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), RTOL, ATOL)


@pytest.fixture
def image():
    return np.random.default_rng(0).standard_normal((2, 3, 7, 8))


MAX_POOL_CASES = [
    {"kernel_size": 2},
    {"kernel_size": 3, "stride": 2, "padding": 1},
    {"kernel_size": (3, 2), "stride": (2, 1), "padding": 1, "dilation": (2, 1), "ceil_mode": True,
     "return_indices": True},
    {"kernel_size": 3, "stride": 2, "ceil_mode": True, "return_indices": True},
    {"kernel_size": 2, "stride": 1, "dilation": 2, "return_indices": True},
]


@pytest.mark.parametrize("kwargs", MAX_POOL_CASES, ids=str)
def test_max_pool2d_matches_torch(image, kwargs):
    compare(lambda x: F.max_pool2d(x, **kwargs), lambda x: TF.max_pool2d(x, **kwargs), image)


def test_max_pool_gradient_goes_to_the_first_maximum():
    # every window is all ties: PyTorch sends each window's gradient to its first element
    x = np.zeros((1, 1, 4, 6))
    x[0, 0, 1:3, 2:4] = 1.0
    compare(lambda x: F.max_pool2d(x, 3, stride=1, padding=1, return_indices=True),
            lambda x: TF.max_pool2d(x, 3, stride=1, padding=1, return_indices=True), x)


def test_max_pool_propagates_nan():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    x[0, 0, 0, 1] = np.nan
    out = F.max_pool2d(cr.tensor(x), 2).numpy()
    expected = TF.max_pool2d(torch.tensor(x), 2).numpy()
    np.testing.assert_array_equal(out, expected)


AVG_POOL_CASES = [
    {"kernel_size": 2},
    {"kernel_size": 3, "stride": 2, "padding": 1},
    {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False, "ceil_mode": True},
    {"kernel_size": (3, 2), "stride": 2, "ceil_mode": True},
    {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
    {"kernel_size": 3, "padding": 1, "divisor_override": 5},
]


@pytest.mark.parametrize("kwargs", AVG_POOL_CASES, ids=str)
def test_avg_pool2d_matches_torch(image, kwargs):
    compare(lambda x: F.avg_pool2d(x, **kwargs), lambda x: TF.avg_pool2d(x, **kwargs), image)


@pytest.mark.parametrize("size", [1, 3, (4, 5), (None, 3), (7, 8)], ids=str)
def test_adaptive_avg_pool2d_matches_torch(image, size):
    compare(lambda x: F.adaptive_avg_pool2d(x, size), lambda x: TF.adaptive_avg_pool2d(x, size), image)


def test_one_dimensional_pools_match_torch():
    x = np.random.default_rng(1).standard_normal((2, 3, 9))
    cases = [
        (F.max_pool1d, TF.max_pool1d, {"kernel_size": 2, "return_indices": True}),
        (F.max_pool1d, TF.max_pool1d, {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
        (F.avg_pool1d, TF.avg_pool1d, {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True,
                                       "count_include_pad": False}),
        (F.adaptive_avg_pool1d, TF.adaptive_avg_pool1d, {"output_size": 4}),
    ]
    for ours, theirs, kwargs in cases:
        compare(functools.partial(ours, **kwargs), functools.partial(theirs, **kwargs), x)
    compare(lambda x: F.max_pool1d(x, 2), lambda x: TF.max_pool1d(x, 2), x[0])  # unbatched


def test_pools_second_order():
    x = cr.tensor(np.random.default_rng(2).standard_normal((1, 2, 5, 4)), requires_grad=True)
    pools = [
        lambda x: F.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True),
        lambda x: F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
        lambda x: F.adaptive_avg_pool2d(x, (3, 3)),
    ]
    for pool in pools:
        assert gradcheck(pool, (x,))
        assert gradgradcheck(pool, (x,))


def test_pool_errors():
    with pytest.raises(RuntimeError, match=r"max_pool2d\(\): pad should be at most half"):
        F.max_pool2d(cr.ones(1, 1, 5, 5), 2, padding=2)
    with pytest.raises(RuntimeError, match=r"avg_pool2d\(\): pad should be at most half"):
        F.avg_pool2d(cr.ones(1, 1, 5, 5), 2, padding=2)
    with pytest.raises(RuntimeError, match=r"max_pool2d\(\).*too small"):
        F.max_pool2d(cr.ones(1, 1, 2, 2), 3)


MODULES = [
    ("MaxPool2d", (3,), {"stride": 2, "padding": 1, "ceil_mode": True}, (2, 3, 7, 8)),
    ("MaxPool1d", (3,), {"stride": 2}, (2, 3, 9)),
    ("AvgPool2d", (2,), {}, (2, 3, 7, 8)),
    ("AvgPool1d", (3,), {"padding": 1, "count_include_pad": False}, (2, 3, 9)),
    ("AdaptiveAvgPool2d", ((2, 3),), {}, (2, 3, 7, 8)),
    ("AdaptiveAvgPool1d", (4,), {}, (2, 3, 9)),
]


@pytest.mark.parametrize("name, args, kwargs, shape", MODULES, ids=str)
def test_modules_match_torch(name, args, kwargs, shape):
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    compare(ours, theirs, np.random.default_rng(3).standard_normal(shape))


def test_max_pool_module_returns_indices():
    pool = nn.MaxPool2d(2, return_indices=True)
    out, indices = pool(cr.arange(16.0).reshape(1, 1, 4, 4))
    assert indices.tolist() == [[[[5, 7], [13, 15]]]]
