"""Convolution (functional and modules) against PyTorch from identical weights, in float64."""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn
from chainrule.autograd import gradcheck, gradgradcheck

torch = pytest.importorskip("torch")

RTOL, ATOL = 1e-10, 1e-12


def compare(ours, theirs, *arrays: np.ndarray, seed: int = 0) -> None:
    """Same values and same gradients of every input (for a random output gradient)."""
    xs = [cr.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, expected = ours(*xs), theirs(*ts)
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), RTOL, ATOL)
    g = np.random.default_rng(seed).standard_normal(tuple(expected.shape))
    out.backward(cr.tensor(g))
    expected.backward(torch.tensor(g))
    for x, t in zip(xs, ts):
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), RTOL, ATOL)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


CONV2D_CASES = [
    {},
    {"stride": 2},
    {"padding": 1, "dilation": 2},
    {"stride": (2, 1), "padding": (1, 2), "groups": 2},
    {"stride": 3, "padding": 2, "dilation": (1, 2), "groups": 4},
    {"padding": "same", "dilation": (2, 1)},
    {"padding": "same", "groups": 2},
    {"padding": "valid"},
]


@pytest.mark.filterwarnings("ignore:Using padding='same'")  # torch's note on its own padding copy
@pytest.mark.parametrize("kwargs", CONV2D_CASES, ids=str)
def test_conv2d_matches_torch(rng, kwargs):
    groups = kwargs.get("groups", 1)
    x = rng.standard_normal((2, 4, 7, 8))
    w = rng.standard_normal((8, 4 // groups, 3, 2))
    b = rng.standard_normal(8)
    compare(lambda x, w, b: F.conv2d(x, w, b, **kwargs),
            lambda x, w, b: torch.nn.functional.conv2d(x, w, b, **kwargs), x, w, b)


def test_conv2d_without_bias_and_unbatched(rng):
    x, w = rng.standard_normal((3, 6, 5)), rng.standard_normal((2, 3, 3, 3))
    compare(lambda x, w: F.conv2d(x, w, padding=1), lambda x, w: torch.nn.functional.conv2d(x, w, padding=1),
            x, w)


@pytest.mark.parametrize("kwargs", [{}, {"stride": 2, "padding": 1},
                                    {"padding": "same", "dilation": 2, "groups": 2}], ids=str)
def test_conv1d_matches_torch(rng, kwargs):
    groups = kwargs.get("groups", 1)
    x, w, b = rng.standard_normal((2, 4, 9)), rng.standard_normal((6, 4 // groups, 4)), rng.standard_normal(6)
    compare(lambda x, w, b: F.conv1d(x, w, b, **kwargs),
            lambda x, w, b: torch.nn.functional.conv1d(x, w, b, **kwargs), x, w, b)


CONV_TRANSPOSE_CASES = [
    {},
    {"stride": 2},
    {"stride": 2, "padding": 1, "output_padding": 1},
    {"stride": (2, 3), "padding": (1, 0), "output_padding": (0, 2), "groups": 2, "dilation": (1, 2)},
    # output_padding >= stride (allowed below the dilation) reaches past the padding
    {"dilation": 3, "output_padding": 2, "padding": 1},
]


@pytest.mark.parametrize("kwargs", CONV_TRANSPOSE_CASES, ids=str)
def test_conv_transpose2d_matches_torch(rng, kwargs):
    groups = kwargs.get("groups", 1)
    x = rng.standard_normal((2, 4, 5, 6))
    w = rng.standard_normal((4, 6 // groups, 3, 2))
    b = rng.standard_normal(6)
    compare(lambda x, w, b: F.conv_transpose2d(x, w, b, **kwargs),
            lambda x, w, b: torch.nn.functional.conv_transpose2d(x, w, b, **kwargs), x, w, b)


def test_conv_transpose1d_matches_torch(rng):
    x, w, b = rng.standard_normal((2, 4, 6)), rng.standard_normal((4, 3, 3)), rng.standard_normal(3)
    kwargs = {"stride": 2, "padding": 1, "output_padding": 1}
    compare(lambda x, w, b: F.conv_transpose1d(x, w, b, **kwargs),
            lambda x, w, b: torch.nn.functional.conv_transpose1d(x, w, b, **kwargs), x, w, b)


def test_unfold_and_fold_match_torch(rng):
    kwargs = {"kernel_size": (2, 3), "dilation": (1, 2), "padding": 1, "stride": 2}
    compare(lambda x: F.unfold(x, **kwargs), lambda x: torch.nn.functional.unfold(x, **kwargs),
            rng.standard_normal((2, 3, 7, 8)))
    compare(lambda c: F.fold(c, (7, 8), **kwargs), lambda c: torch.nn.functional.fold(c, (7, 8), **kwargs),
            rng.standard_normal((2, 3 * 6, 12)))


def test_fold_rejects_mismatched_columns():
    with pytest.raises(RuntimeError, match=r"fold\(\).*expected \(N, C\*4, 9\)"):
        F.fold(cr.ones(1, 8, 10), output_size=4, kernel_size=2)


def test_conv2d_and_conv_transpose2d_second_order(rng):
    x = cr.tensor(rng.standard_normal((1, 2, 5, 4)), requires_grad=True)
    w = cr.tensor(rng.standard_normal((2, 1, 3, 2)), requires_grad=True)
    b = cr.tensor(rng.standard_normal(2), requires_grad=True)

    def conv(x, w, b):
        return F.conv2d(x, w, b, stride=(2, 1), padding=1, dilation=(1, 2), groups=2)

    def conv_t(x, w, b):
        return F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1, groups=2)

    for fn in (conv, conv_t):
        assert gradcheck(fn, (x, w, b))
        assert gradgradcheck(fn, (x, w, b))


def test_conv2d_forward_mode(rng):
    import chainrule.autograd.forward_ad as fwAD

    x, t, w = (rng.standard_normal(s) for s in ((1, 2, 5, 4), (1, 2, 5, 4), (3, 2, 3, 3)))
    with fwAD.dual_level():
        out = F.conv2d(fwAD.make_dual(cr.tensor(x), cr.tensor(t)), cr.tensor(w), padding=1)
        tangent = fwAD.unpack_dual(out).tangent
    expected = torch.nn.functional.conv2d(torch.tensor(t), torch.tensor(w), padding=1)
    np.testing.assert_allclose(tangent.numpy(), expected.numpy(), RTOL, ATOL)


FAST_CASES = [{}, {"padding": 1, "dilation": (2, 1)}, {"padding": "same"}, {"stride": 2},
              {"stride": (1, 2), "padding": (2, 0)}]


@pytest.mark.parametrize("kwargs", FAST_CASES, ids=str)
@pytest.mark.parametrize("blas", [True, False], ids=["blas", "numpy"])
def test_conv2d_float32_one_product_path_matches_torch(rng, kwargs, blas, monkeypatch):
    """float32 with one group runs kernels.conv2d (dx for stride 1 by shifted slices through
    BLAS in blocks of columns, or NumPy where its BLAS is not found)."""
    from chainrule.ops import kernels

    if blas:
        monkeypatch.setattr(kernels, "_CONV_BLOCK", 37)  # several blocks, the last one partial
    else:
        monkeypatch.setattr(kernels, "_GEMM", {})
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((3, 5, 9, 8), (6, 5, 3, 3), (6,)))
    xs = [cr.tensor(a, requires_grad=True) for a in (x, w, b)]
    ts = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    out = F.conv2d(*xs, **kwargs)
    expected = torch.nn.functional.conv2d(*ts, **kwargs)
    assert out.dtype == cr.float32
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), 1e-5, 1e-5)
    g = rng.standard_normal(tuple(expected.shape)).astype(np.float32)
    out.backward(cr.tensor(g))
    expected.backward(torch.tensor(g))
    for ours, theirs in zip(xs, ts):
        assert ours.grad.dtype == cr.float32
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), 1e-4, 1e-4)


def _cnn(lib, weights):
    """The benchmark's CNN in small: conv, relu, conv, relu, 2x2 max pooling, flatten, linear."""
    nn_ = lib.nn
    model = nn_.Sequential(nn_.Conv2d(1, 16, 3), nn_.ReLU(), nn_.Conv2d(16, 32, 3), nn_.ReLU(),
                           nn_.MaxPool2d(2), nn_.Flatten(), nn_.Linear(32 * 5 * 5, 10))
    model.load_state_dict({name: lib.tensor(value) for name, value in weights.items()})
    return model


def test_small_cnn_step_matches_torch(rng):
    """float32 through the fast kernels (one GEMM per convolution, dW as (cols G^T)^T, db
    by BLAS, dx laid out (C, N, H, W) into relu's backward): values, every gradient, and
    PyTorch's layouts where a user sees them (the output of a convolution, flatten's view,
    a leaf's .grad)."""
    shapes = {"0.weight": (16, 1, 3, 3), "0.bias": (16,), "2.weight": (32, 16, 3, 3),
              "2.bias": (32,), "6.weight": (10, 800), "6.bias": (10,)}
    weights = {name: (rng.standard_normal(shape) / 4).astype(np.float32)
               for name, shape in shapes.items()}
    images = rng.standard_normal((16, 1, 14, 14)).astype(np.float32)
    results = []
    for lib in (cr, torch):
        model = _cnn(lib, weights)
        x = lib.tensor(images, requires_grad=True)
        features = model[:4](x)
        assert features.is_contiguous()
        assert model[5](model[4](features)).grad_fn.name() == "ViewBackward0"
        model(x).square().sum().backward()
        assert x.grad.is_contiguous()
        grads = [p.grad for p in model.parameters()]
        results.append([np.asarray(t.detach()) for t in (features, x.grad, *grads)])
    for ours, theirs in zip(*results):  # float32 sums: errors scale with the largest value
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5 * np.abs(theirs).max())


def test_conv2d_skips_the_input_gradient_when_not_needed(rng, monkeypatch):
    from chainrule.ops import kernels

    def refuse(*args):
        raise AssertionError("dx computed for an input that needs no gradient")

    monkeypatch.setattr(kernels, "_conv_input_grad", refuse)
    w = cr.tensor(rng.standard_normal((2, 1, 3, 3)).astype(np.float32), requires_grad=True)
    F.conv2d(cr.tensor(rng.standard_normal((2, 1, 6, 6)).astype(np.float32)), w).sum().backward()
    assert w.grad.shape == (2, 1, 3, 3)


def test_conv2d_errors_name_op_and_shapes():
    with pytest.raises(RuntimeError, match=r"conv2d\(\).*\(1, 3, 5, 5\).*\(2, 2, 3, 3\)"):
        F.conv2d(cr.ones(1, 3, 5, 5), cr.ones(2, 2, 3, 3))
    with pytest.raises(RuntimeError, match=r"conv2d\(\).*smaller than the kernel"):
        F.conv2d(cr.ones(1, 1, 2, 2), cr.ones(1, 1, 3, 3))
    with pytest.raises(RuntimeError, match=r"conv2d\(\).*same floating dtype"):
        F.conv2d(cr.ones(1, 1, 5, 5), cr.ones(1, 1, 3, 3, dtype=cr.float64))
    with pytest.raises(ValueError, match="strided"):
        F.conv2d(cr.ones(1, 1, 5, 5), cr.ones(1, 1, 3, 3), stride=2, padding="same")


# ------------------------------------------------------------------ modules
def _copy_weights(ours: nn.Module, theirs) -> None:
    theirs.double()
    with torch.no_grad():
        for name, p in ours.named_parameters():
            theirs.get_parameter(name).copy_(torch.tensor(p.detach().numpy()))


MODULES = [
    ("Conv2d", (4, 6, 3), {"padding": 1, "stride": 2}, (2, 4, 9, 9)),
    ("Conv2d", (4, 6, (3, 2)), {"padding": "same", "groups": 2, "bias": False}, (2, 4, 6, 5)),
    ("Conv1d", (4, 6, 3), {"dilation": 2}, (2, 4, 11)),
    ("ConvTranspose2d", (4, 6, 3), {"stride": 2, "padding": 1, "output_padding": 1}, (2, 4, 5, 5)),
    ("ConvTranspose1d", (4, 2, 3), {"stride": 2, "groups": 2}, (2, 4, 5)),
]


@pytest.mark.parametrize("name, args, kwargs, shape", MODULES, ids=lambda v: str(v))
def test_modules_match_torch(rng, name, args, kwargs, shape):
    ours = getattr(nn, name)(*args, **kwargs).double()
    theirs = getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    assert [(n, tuple(p.shape)) for n, p in ours.named_parameters()] == \
        [(n, tuple(p.shape)) for n, p in theirs.named_parameters()]
    _copy_weights(ours, theirs)
    x = rng.standard_normal(shape)
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, expected = ours(xc), theirs(xt)
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), RTOL, ATOL)
    (out * out).sum().backward()
    (expected * expected).sum().backward()
    np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), RTOL, ATOL)
    for n, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), theirs.get_parameter(n).grad.numpy(), RTOL, ATOL)


def test_conv_init_is_pytorch_default():
    cr.manual_seed(0)
    conv = nn.Conv2d(8, 16, 3)
    bound = 1 / math.sqrt(8 * 9)  # kaiming_uniform_(a=sqrt(5)) and the bias share it
    for p in (conv.weight, conv.bias):
        values = p.detach().numpy()
        assert values.dtype == np.float32
        assert np.abs(values).max() <= bound and np.abs(values).max() > 0.9 * bound
    transposed = nn.ConvTranspose2d(8, 4, 3)  # fan_in from weight.shape[1] * k*k, as PyTorch
    assert np.abs(transposed.bias.detach().numpy()).max() <= 1 / math.sqrt(4 * 9)


def test_conv_transpose_output_size():
    up = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
    assert tuple(up(cr.ones(1, 2, 7, 7), output_size=(14, 13)).shape) == (1, 3, 14, 13)
    with pytest.raises(ValueError, match="reachable range"):
        up(cr.ones(1, 2, 7, 7), output_size=(15, 15))


def test_conv_module_argument_errors():
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(NotImplementedError, match="padding_mode"):
        nn.Conv2d(3, 4, 3, padding_mode="reflect")


def test_small_cnn_learns_digits():
    """End to end: conv, max/avg pooling, Adam; 8x8 digits to over 93% held-out accuracy."""
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    images, labels = (digits.images / 16.0).astype(np.float32)[:, None], digits.target
    order = np.random.default_rng(0).permutation(len(images))
    train, test = order[:1400], order[1400:]
    cr.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
                          nn.Linear(64, 10))
    optimizer = cr.optim.Adam(model.parameters(), lr=0.01)
    x, y = cr.tensor(images[train]), cr.tensor(labels[train])
    shuffle = np.random.default_rng(1)
    for _ in range(8):
        perm = shuffle.permutation(len(train))
        for start in range(0, len(train), 64):
            batch = perm[start:start + 64]
            loss = F.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with cr.no_grad():
        predicted = model(cr.tensor(images[test])).argmax(1).numpy()
    assert (predicted == labels[test]).mean() > 0.93
