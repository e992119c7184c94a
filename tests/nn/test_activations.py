"""Activations, as modules and functions, against PyTorch in float64: values, input
gradients (kinks included), reprs; second derivatives by gradgradcheck."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn
from chainrule.autograd import gradcheck, gradgradcheck

torch = pytest.importorskip("torch")
tnn = torch.nn
TF = torch.nn.functional

# (module name, constructor arguments, tolerance); PyTorch computes a few constants in
# float32 (1/alpha in CELU, 1/6 in Hardsigmoid), hence the looser tolerances there
MODULES = [
    ("ReLU", (), 1e-12), ("ReLU6", (), 1e-12), ("LeakyReLU", (0.2,), 1e-12), ("ELU", (), 1e-12),
    ("ELU", (0.5,), 1e-12), ("CELU", (0.7,), 1e-7), ("SELU", (), 1e-12), ("GELU", (), 1e-12),
    ("GELU", ("tanh",), 1e-12), ("SiLU", (), 1e-12), ("Mish", (), 1e-12),
    ("Softplus", (), 1e-12), ("Softplus", (2.0, 3.0), 1e-12), ("Sigmoid", (), 1e-12),
    ("Tanh", (), 1e-12), ("Hardtanh", (), 1e-12), ("Hardtanh", (-2.0, 0.5), 1e-12),
    ("Hardsigmoid", (), 1e-7), ("Hardswish", (), 1e-12), ("LogSigmoid", (), 1e-12),
    ("Softsign", (), 1e-12), ("Tanhshrink", (), 1e-12), ("Softshrink", (), 1e-12),
    ("Hardshrink", (0.3,), 1e-12), ("Threshold", (0.1, 20.0), 1e-12), ("GLU", (), 1e-12),
    ("GLU", (0,), 1e-12), ("Softmax", (1,), 1e-12), ("Softmin", (0,), 1e-12),
    ("LogSoftmax", (-1,), 1e-12),
]


def _input() -> np.ndarray:
    x = np.random.default_rng(0).standard_normal((4, 6)) * 3
    # the kinks and switch points of the piecewise activations, where PyTorch's choice of
    # derivative is what we must reproduce
    x[0] = [0.0, 3.0, -3.0, 1.0, -1.0, 6.0]
    x[1, :4] = [0.5, -0.5, 0.1, 25.0]
    return x


@pytest.mark.parametrize(("name", "args", "tol"), MODULES,
                         ids=[f"{n}{a}" for n, a, _ in MODULES])
def test_module_matches_pytorch(name, args, tol):
    ours, theirs = getattr(nn, name)(*args), getattr(tnn, name)(*args)
    assert repr(ours) == repr(theirs)
    x = _input()
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yc, yt = ours(xc), theirs(xt)
    np.testing.assert_allclose(yc.detach().numpy(), yt.detach().numpy(), rtol=tol, atol=tol)
    g = np.random.default_rng(1).standard_normal(tuple(yt.shape))
    yc.backward(cr.tensor(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), rtol=tol, atol=tol)


def test_inplace_flags_and_repr():
    assert repr(nn.ReLU(inplace=True)) == repr(tnn.ReLU(inplace=True))
    assert repr(nn.LeakyReLU(0.2, True)) == repr(tnn.LeakyReLU(0.2, True))
    assert repr(nn.Hardswish(True)) == repr(tnn.Hardswish(True))
    x = cr.tensor([-1.0, 2.0])
    out = F.relu(x, inplace=True)
    assert out is x and x.tolist() == [0.0, 2.0]


@pytest.mark.parametrize("channels", [1, 3])
def test_prelu_matches_pytorch(channels):
    ours, theirs = nn.PReLU(channels).double(), tnn.PReLU(channels).double()
    assert repr(ours) == repr(theirs)
    with torch.no_grad():
        theirs.weight.uniform_(-0.5, 0.5)
    ours.load_state_dict({"weight": cr.tensor(theirs.weight.detach().numpy().copy())})
    x = np.random.default_rng(2).standard_normal((5, 3, 2))
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (ours(xc) ** 2).sum().backward()
    (theirs(xt) ** 2).sum().backward()
    np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-12)


SMOOTH = [
    ("elu", lambda x: F.elu(x, 0.7)), ("selu", F.selu), ("celu", lambda x: F.celu(x, 1.3)),
    ("gelu", F.gelu), ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh")),
    ("silu", F.silu), ("mish", F.mish), ("softplus", lambda x: F.softplus(x, 1.5, 4.0)),
    ("logsigmoid", F.logsigmoid), ("softsign", F.softsign), ("glu", F.glu),
    ("softmin", lambda x: F.softmin(x, 1)), ("log_softmax", lambda x: F.log_softmax(x, 0)),
    ("normalize", F.normalize),
]


@pytest.mark.parametrize(("name", "fn"), SMOOTH, ids=[n for n, _ in SMOOTH])
def test_second_order(name, fn):
    x = np.random.default_rng(3).standard_normal((3, 4))
    x = np.where(np.abs(x) < 0.05, 0.3, x)  # away from the kinks finite differences straddle
    xc = cr.tensor(x, requires_grad=True)
    assert gradcheck(fn, (xc,))
    assert gradgradcheck(fn, (xc,))


def test_extreme_inputs_stay_finite():
    x = cr.tensor([-1000.0, -50.0, 0.0, 50.0, 1000.0], dtype=cr.float64, requires_grad=True)
    for fn, theirs in [(F.softplus, TF.softplus), (F.logsigmoid, TF.logsigmoid), (F.elu, TF.elu),
                       (F.mish, TF.mish), (F.silu, TF.silu), (F.selu, TF.selu)]:
        x.grad = None
        out = fn(x)
        out.sum().backward()
        xt = torch.tensor(x.detach().numpy(), requires_grad=True)
        theirs(xt).sum().backward()
        np.testing.assert_allclose(out.detach().numpy(), theirs(xt).detach().numpy(), rtol=1e-12)
        # atol: expm1's gradient is computed as expm1(x) + 1, which is 0 rather than 2e-22
        # at x = -50 (ops/unary.py); absolute differences that small are accepted
        np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_softplus_gradient_at_zero_is_one_half():
    # the kink of max(x, 0) inside the stable form must not show in the gradient
    x = cr.tensor([0.0], requires_grad=True)
    F.softplus(x).sum().backward()
    assert x.grad.tolist() == [0.5]


def test_implicit_softmax_dim_warns_like_pytorch():
    x = np.random.default_rng(4).standard_normal((2, 3, 4))
    with pytest.warns(UserWarning, match="Implicit dimension"):
        ours = F.softmax(cr.tensor(x))
    with pytest.warns(UserWarning):
        theirs = TF.softmax(torch.tensor(x))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)


@pytest.mark.parametrize("p", [0.0, 2.0])
def test_cosine_similarity_and_pairwise_distance(p):
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    ac, bc = cr.tensor(a, requires_grad=True), cr.tensor(b, requires_grad=True)
    at, bt = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    if p:
        out, expected = F.pairwise_distance(ac, bc, p), TF.pairwise_distance(at, bt, p)
    else:
        out, expected = F.cosine_similarity(ac, bc), TF.cosine_similarity(at, bt)
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), rtol=1e-12)
    out.sum().backward()
    expected.sum().backward()
    np.testing.assert_allclose(ac.grad.numpy(), at.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(bc.grad.numpy(), bt.grad.numpy(), rtol=1e-10)


# the activations that are one primitive each (ops/activation.py), with PyTorch's arguments
FUSED = [
    ("leaky_relu", (0.2,), {}), ("leaky_relu", (1.5,), {}), ("leaky_relu", (-0.3,), {}),
    ("elu", (0.7,), {}), ("selu", (), {}), ("celu", (0.7,), {}), ("silu", (), {}),
    ("softplus", (), {}), ("softplus", (2.0, 3.0), {}), ("hardtanh", (-2.0, 0.5), {}),
    ("relu6", (), {}), ("gelu", (), {}), ("gelu", (), {"approximate": "tanh"}),
    ("logsigmoid", (), {}), ("hardsigmoid", (), {}), ("hardswish", (), {}),
]
FUSED_IDS = [f"{n}{a}{k}" for n, a, k in FUSED]


def _large_float32() -> np.ndarray:
    """Large enough for the kernels' branch-free paths (over 8192 elements), with the
    kinks, signed zeros, infinities and NaNs in the first row."""
    x = (np.random.default_rng(5).standard_normal((64, 256)) * 4).astype(np.float32)
    x[0, :12] = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 6.0, 0.5, -2.0, 3.0, 25.0]
    return x


@pytest.mark.parametrize(("name", "args", "kwargs"), FUSED, ids=FUSED_IDS)
def test_fused_activation_matches_pytorch_in_float32(name, args, kwargs):
    x = _large_float32()
    if name == "gelu":
        x[0, 2] = 1.0  # PyTorch's exact float32 GELU gives NaN at +inf; x Phi(x) is inf
    if name == "hardswish":
        # PyTorch's hardswish gradient at a NaN input is g in its scalar loop and NaN in its
        # vectorised one; ours is g (the scalar loop's, checked on a short tensor below)
        x[0, 4] = 1.0
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yc, yt = getattr(F, name)(xc, *args, **kwargs), getattr(TF, name)(xt, *args, **kwargs)
    assert yc.grad_fn.name() == yt.grad_fn.name()
    assert yc.dtype == cr.float32
    np.testing.assert_allclose(yc.detach().numpy(), yt.detach().numpy(), rtol=2e-6, atol=1e-6)
    g = np.random.default_rng(6).standard_normal(x.shape).astype(np.float32)
    yc.backward(cr.tensor(g))
    yt.backward(torch.tensor(g))
    # the tanh GELU's slope has 1 - tanh(u)^2 where tanh(u) is within an ulp of -1: NumPy's
    # and PyTorch's float32 tanh differ there by an ulp, which that factor turns into ~3e-6
    atol = 1e-5 if kwargs.get("approximate") == "tanh" else 1e-6
    np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), rtol=2e-6, atol=atol)


@pytest.mark.parametrize(("name", "args", "kwargs"), FUSED, ids=FUSED_IDS)
def test_fused_activation_bfloat16_takes_the_composition(name, args, kwargs):
    # bfloat16 keeps the composed ops (their scalars in float32): bfloat16 results, within
    # bfloat16's rounding of PyTorch's
    x = _large_float32()[1:3, :64]
    out = getattr(F, name)(cr.tensor(x).to(cr.bfloat16), *args, **kwargs)
    assert out.dtype == cr.bfloat16
    expected = getattr(TF, name)(torch.tensor(x).to(torch.bfloat16), *args, **kwargs)
    np.testing.assert_allclose(out.float().numpy(), expected.float().numpy(), rtol=2e-2,
                               atol=2e-2)


@pytest.mark.parametrize(("name", "args", "kwargs"), FUSED, ids=FUSED_IDS)
def test_fused_activation_on_zero_dim_tensors(name, args, kwargs):
    for value in (-1.3, 0.0, 2.5):
        xc = cr.tensor(value, dtype=cr.float32, requires_grad=True)
        xt = torch.tensor(value, dtype=torch.float32, requires_grad=True)
        yc, yt = getattr(F, name)(xc, *args, **kwargs), getattr(TF, name)(xt, *args, **kwargs)
        yc.backward()
        yt.backward()
        assert yc.shape == ()
        np.testing.assert_allclose(yc.item(), yt.item(), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(xc.grad.item(), xt.grad.item(), rtol=1e-6, atol=1e-7)


def test_hardswish_gradient_at_nan_is_pytorch_scalar_loops():
    x = np.array([np.nan, -np.inf, np.inf, 3.0, -3.0], dtype=np.float32)
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    F.hardswish(xc).sum().backward()
    TF.hardswish(xt).sum().backward()
    np.testing.assert_array_equal(xc.grad.numpy(), xt.grad.numpy())


@pytest.mark.parametrize(("name", "args", "kwargs"), FUSED, ids=FUSED_IDS)
def test_fused_activation_float16_does_not_overflow(name, args, kwargs):
    # float16 runs the primitives in float16 (PyTorch computes in float32 and rounds): equal
    # to half-precision rounding, and nothing overflows below float16's largest value (the
    # exponentials all see arguments <= 0)
    x = (np.random.default_rng(7).standard_normal((64, 256)) * 8).astype(np.float16)
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yc, yt = getattr(F, name)(xc, *args, **kwargs), getattr(TF, name)(xt, *args, **kwargs)
    yc.sum().backward()
    yt.float().sum().backward()
    assert yc.dtype == cr.float16
    np.testing.assert_allclose(yc.detach().numpy().astype(np.float32),
                               yt.detach().numpy().astype(np.float32), rtol=4e-3, atol=1e-2)
    np.testing.assert_allclose(xc.grad.numpy().astype(np.float32),
                               xt.grad.numpy().astype(np.float32), rtol=4e-3, atol=1e-2)
