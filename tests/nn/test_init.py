"""nn.init: PyTorch's formulas (gains, fans, bounds), in-place unrecorded writes, chainrule's
generator, and the layers' default initialisation."""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.nn import init

torch = pytest.importorskip("torch")
tinit = torch.nn.init


@pytest.mark.parametrize(("nonlinearity", "param"), [
    ("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None), ("relu", None),
    ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", math.sqrt(5)), ("selu", None),
])
def test_calculate_gain(nonlinearity, param):
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(
        tinit.calculate_gain(nonlinearity, param), rel=1e-15)


def test_calculate_gain_rejects_unknown():
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        init.calculate_gain("swish")


@pytest.mark.parametrize("shape", [(3, 4), (5, 2, 3), (4, 3, 2, 2)])
def test_fans(shape):
    assert init._calculate_fan_in_and_fan_out(cr.empty(shape)) == \
        tinit._calculate_fan_in_and_fan_out(torch.empty(shape))


def test_fans_need_two_dims():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(cr.empty(3))


def test_writes_in_place_without_recording():
    w = nn.Parameter(cr.empty(30, 20))
    version = w._version[0]
    for fill in (lambda t: init.uniform_(t, -1, 1), init.normal_, init.xavier_uniform_,
                 init.xavier_normal_, init.kaiming_uniform_, init.kaiming_normal_,
                 init.orthogonal_, init.trunc_normal_, init.zeros_, init.ones_, init.eye_,
                 lambda t: init.constant_(t, 0.5), lambda t: init.sparse_(t, 0.3)):
        assert fill(w) is w
        assert w.is_leaf and w.requires_grad and w.grad_fn is None
    assert w._version[0] > version


def test_reproducible_from_the_generator():
    cr.manual_seed(7)
    first = [nn.Linear(4, 3).weight.detach().numpy().copy() for _ in range(2)]
    cr.manual_seed(7)
    second = [nn.Linear(4, 3).weight.detach().numpy().copy() for _ in range(2)]
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert not np.array_equal(first[0], first[1])
    g = cr.Generator().manual_seed(3)
    a = init.normal_(cr.empty(5), generator=g).numpy().copy()
    b = init.normal_(cr.empty(5), generator=cr.Generator().manual_seed(3)).numpy()
    np.testing.assert_array_equal(a, b)


def _big(*shape):
    cr.manual_seed(0)
    return cr.empty(*shape, dtype=cr.float64)


def test_uniform_and_normal_statistics():
    u = init.uniform_(_big(200, 200), -2.0, 3.0).numpy()
    assert u.min() >= -2 and u.max() < 3 and abs(u.mean() - 0.5) < 0.05
    n = init.normal_(_big(200, 200), 1.0, 2.0).numpy()
    assert abs(n.mean() - 1) < 0.05 and abs(n.std() - 2) < 0.05
    t = init.trunc_normal_(_big(200, 200), 0.0, 1.0, -0.5, 1.5).numpy()
    assert t.min() >= -0.5 and t.max() <= 1.5
    # the truncated normal's mean on [-0.5, 1.5]: (phi(a) - phi(b)) / (Phi(b) - Phi(a))
    phi = lambda v: math.exp(-v * v / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda v: 0.5 * (1 + math.erf(v / math.sqrt(2)))  # noqa: E731
    expected = (phi(-0.5) - phi(1.5)) / (cdf(1.5) - cdf(-0.5))
    assert abs(t.mean() - expected) < 0.02


@pytest.mark.parametrize(("fill", "mode", "shape"), [
    ("kaiming_uniform_", "fan_in", (200, 100)), ("kaiming_uniform_", "fan_out", (100, 50, 3)),
    ("kaiming_normal_", "fan_in", (200, 100)), ("kaiming_normal_", "fan_out", (100, 200)),
])
def test_kaiming_scale(fill, mode, shape):
    w = getattr(init, fill)(_big(*shape), a=0.1, mode=mode, nonlinearity="leaky_relu").numpy()
    fan_in, fan_out = init._calculate_fan_in_and_fan_out(cr.empty(shape))
    std = init.calculate_gain("leaky_relu", 0.1) / math.sqrt(fan_in if mode == "fan_in" else fan_out)
    assert abs(w.std() / std - 1) < 0.05
    if fill == "kaiming_uniform_":
        assert np.abs(w).max() <= math.sqrt(3) * std


@pytest.mark.parametrize("fill", ["xavier_uniform_", "xavier_normal_"])
def test_xavier_scale(fill):
    w = getattr(init, fill)(_big(300, 100), gain=2.0).numpy()
    std = 2.0 * math.sqrt(2.0 / 400)
    assert abs(w.std() / std - 1) < 0.05


@pytest.mark.parametrize("shape", [(4, 9), (9, 4), (6, 2, 3)])
def test_orthogonal(shape):
    w = init.orthogonal_(_big(*shape), gain=1.5).numpy().reshape(shape[0], -1)
    rows, cols = w.shape
    gram = w @ w.T if rows <= cols else w.T @ w
    np.testing.assert_allclose(gram, 2.25 * np.eye(min(rows, cols)), atol=1e-12)


def test_deterministic_fills_match_pytorch():
    for fill, shape in [(init.eye_, (3, 5)), (init.dirac_, (4, 2, 3, 3)), (init.ones_, (2, 3)),
                        (lambda t: init.constant_(t, 0.3), (2, 2))]:
        ours = fill(cr.empty(shape, dtype=cr.float64))
        theirs = {init.eye_: tinit.eye_, init.dirac_: tinit.dirac_, init.ones_: tinit.ones_}.get(
            fill, lambda t: tinit.constant_(t, 0.3))(torch.empty(shape, dtype=torch.float64))
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_sparse_zeroes_a_fraction_of_each_column():
    w = init.sparse_(_big(10, 6), sparsity=0.3).numpy()
    assert ((w == 0).sum(axis=0) == 3).all()


# ---------------------------------------------------------------------- layer defaults


def test_linear_default_init_is_pytorchs():
    # kaiming_uniform_(a=sqrt(5)) gives U(-1/sqrt(in), 1/sqrt(in)); the bias the same bound
    cr.manual_seed(0)
    layer = nn.Linear(64, 500)
    bound = 1 / math.sqrt(64)
    w, b = layer.weight.detach().numpy(), layer.bias.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert abs(w.std() / (bound / math.sqrt(3)) - 1) < 0.02
    assert np.abs(w).max() > 0.99 * bound
    assert layer.weight.dtype == cr.float32
    assert nn.Linear(2, 2, dtype=cr.float64).weight.dtype == cr.float64


def test_other_layer_defaults():
    cr.manual_seed(0)
    bil = nn.Bilinear(50, 3, 40)
    assert np.abs(bil.weight.detach().numpy()).max() <= 1 / math.sqrt(50)
    assert nn.PReLU(3).weight.tolist() == [0.25] * 3
    norm = nn.LayerNorm(3)
    assert norm.weight.tolist() == [1.0] * 3 and norm.bias.tolist() == [0.0] * 3
    bn = nn.BatchNorm1d(2)
    assert bn.running_var.tolist() == [1.0, 1.0] and bn.num_batches_tracked.item() == 0
    bn(cr.randn(4, 2))
    bn.reset_parameters()
    assert bn.running_mean.tolist() == [0.0, 0.0] and bn.num_batches_tracked.item() == 0
