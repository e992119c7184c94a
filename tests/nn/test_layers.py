"""Layers against PyTorch from identical weights in float64: values, input and parameter
gradients, running statistics over several steps, train/eval behaviour, reprs."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn
from chainrule.autograd import gradcheck, gradgradcheck

torch = pytest.importorskip("torch")
tnn = torch.nn
TOL = 1e-10


def twin(name, *args, randomize=True, **kwargs):
    """The same layer in both libraries, float64, PyTorch's (randomised) state copied in."""
    ours = getattr(nn, name)(*args, **kwargs).double()
    theirs = getattr(tnn, name)(*args, **kwargs).double()
    if randomize:
        with torch.no_grad():
            for p in theirs.parameters():
                p.uniform_(-1, 1)
    ours.load_state_dict({k: cr.tensor(v.detach().numpy().copy())
                          for k, v in theirs.state_dict().items()})
    assert repr(ours) == repr(theirs)
    return ours, theirs


def check_step(ours, theirs, *arrays, seed=0):
    """One forward and backward with a random output gradient: values, input gradients and
    parameter gradients must agree."""
    xs = [cr.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    ts = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    out, expected = ours(*xs), theirs(*ts)
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), rtol=TOL, atol=TOL)
    g = np.random.default_rng(seed).standard_normal(tuple(expected.shape))
    out.backward(cr.tensor(g))
    expected.backward(torch.tensor(g))
    for x, t in zip(xs, ts):
        if t.requires_grad:
            np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=TOL, atol=TOL)
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=TOL, atol=TOL,
                                   err_msg=name)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# ---------------------------------------------------------------------- affine layers


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(5, 3), (2, 4, 3), (3,)])
def test_linear(rng, shape, bias):
    check_step(*twin("Linear", 3, 4, bias=bias), rng.standard_normal(shape))


@pytest.mark.parametrize("bias", [True, False])
def test_bilinear(rng, bias):
    check_step(*twin("Bilinear", 3, 2, 4, bias=bias), rng.standard_normal((5, 3)),
               rng.standard_normal((5, 2)))


def test_identity_flatten_unflatten(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    check_step(nn.Identity(7, unused=True), tnn.Identity(7, unused=True), x)
    for args in [(), (0,), (1, 2), (-3, -2)]:
        ours, theirs = nn.Flatten(*args), tnn.Flatten(*args)
        assert repr(ours) == repr(theirs)
        check_step(ours, theirs, x)
    for dim, sizes in [(1, (3, 1)), (-1, (5, 1)), (2, (2, -1))]:
        ours, theirs = nn.Unflatten(dim, sizes), tnn.Unflatten(dim, sizes)
        assert repr(ours) == repr(theirs)
        check_step(ours, theirs, x)
    with pytest.raises(RuntimeError, match="Unflatten"):
        nn.Unflatten(1, (2, 2))(cr.zeros(2, 3))


# ---------------------------------------------------------------------- dropout


def test_dropout_train_and_eval():
    drop = nn.Dropout(0.25)
    assert repr(drop) == repr(tnn.Dropout(0.25))
    x = cr.ones(200, 50, requires_grad=True)
    out = drop(x)
    values = np.unique(out.detach().numpy())
    np.testing.assert_allclose(values, [0.0, 1 / 0.75], rtol=1e-6)
    assert abs((out.detach().numpy() == 0).mean() - 0.25) < 0.02
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), out.detach().numpy())  # the mask, scaled
    drop.eval()
    assert drop(x) is x
    assert F.dropout(x, 0.5, training=False) is x
    assert not nn.Dropout(1.0)(cr.ones(3)).numpy().any()
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)


def test_dropout_is_reproducible_with_manual_seed():
    cr.manual_seed(123)
    first = F.dropout(cr.ones(100)).numpy().copy()
    cr.manual_seed(123)
    second = F.dropout(cr.ones(100)).numpy()
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, F.dropout(cr.ones(100)).numpy())


def test_dropout2d_drops_whole_channels():
    cr.manual_seed(0)
    out = nn.Dropout2d(0.5)(cr.ones(8, 16, 3, 3)).numpy()
    per_channel = out.reshape(8, 16, 9)
    assert (per_channel.min(axis=2) == per_channel.max(axis=2)).all()
    assert set(np.unique(out)) == {0.0, 2.0}
    assert nn.Dropout1d(0.5)(cr.ones(4, 3, 5)).shape == (4, 3, 5)
    with pytest.raises(RuntimeError, match="expected 3D or 4D"):
        F.dropout2d(cr.ones(2, 2))


# ---------------------------------------------------------------------- embedding


@pytest.mark.parametrize("padding_idx", [None, 1, -2])
def test_embedding(rng, padding_idx):
    ours, theirs = twin("Embedding", 6, 3, padding_idx=padding_idx)
    check_step(ours, theirs, np.array([[1, 2, 1], [4, 0, 2]]))
    if padding_idx is not None:
        assert not ours.weight.grad.numpy()[padding_idx].any()


def test_embedding_init_and_from_pretrained():
    cr.manual_seed(0)
    emb = nn.Embedding(1000, 8, padding_idx=3)
    w = emb.weight.detach().numpy()
    assert not w[3].any()
    assert abs(w.std() - 1) < 0.05 and abs(w.mean()) < 0.05  # N(0, 1)
    table = cr.tensor([[1.0, 2.0], [3.0, 4.0]])
    frozen = nn.Embedding.from_pretrained(table)
    assert not frozen.weight.requires_grad
    assert frozen(cr.tensor([1])).tolist() == [[3.0, 4.0]]
    assert nn.Embedding.from_pretrained(table, freeze=False).weight.requires_grad
    for bad in (2, -1):  # negative indices are refused too, as PyTorch
        with pytest.raises(IndexError, match="out of range"):
            frozen(cr.tensor([bad]))
    with pytest.raises(RuntimeError, match="integer"):
        frozen(cr.tensor([1.0]))


def test_embedding_max_norm(rng):
    ours, theirs = twin("Embedding", 5, 4, max_norm=0.5)
    with torch.no_grad():
        theirs.weight.mul_(3)
    with cr.no_grad():
        ours.weight.mul_(3)
    check_step(ours, theirs, np.array([0, 2, 2, 4]))
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(),
                               rtol=1e-6)


# ---------------------------------------------------------------------- normalisation


@pytest.mark.parametrize("momentum", [0.1, None, 0.5])
@pytest.mark.parametrize(("name", "shape"), [("BatchNorm1d", (6, 3)), ("BatchNorm1d", (4, 3, 5)),
                                             ("BatchNorm2d", (2, 3, 4, 4)),
                                             ("BatchNorm3d", (2, 3, 2, 2, 2))])
def test_batch_norm_training_steps_then_eval(rng, name, shape, momentum):
    ours, theirs = twin(name, 3, momentum=momentum)
    for step in range(3):
        check_step(ours, theirs, rng.standard_normal(shape) * 2 + 1, seed=step)
        for key in ("running_mean", "running_var"):
            np.testing.assert_allclose(getattr(ours, key).numpy(), getattr(theirs, key).numpy(),
                                       rtol=TOL, err_msg=key)
        ours.zero_grad()
        theirs.zero_grad()
    assert int(ours.num_batches_tracked.item()) == 3
    ours.eval()
    theirs.eval()
    check_step(ours, theirs, rng.standard_normal(shape))


@pytest.mark.parametrize(("affine", "track"), [(False, True), (True, False), (False, False)])
def test_batch_norm_options(rng, affine, track):
    ours, theirs = twin("BatchNorm1d", 4, affine=affine, track_running_stats=track)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    check_step(ours, theirs, rng.standard_normal((5, 4)))
    ours.eval()
    theirs.eval()
    check_step(ours, theirs, rng.standard_normal((5, 4)), seed=1)


def test_batch_norm_errors():
    with pytest.raises(ValueError, match="expected 4D input"):
        nn.BatchNorm2d(3)(cr.zeros(2, 3))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(cr.zeros(1, 3))
    assert nn.BatchNorm1d(3).eval()(cr.zeros(1, 3)).shape == (1, 3)


def test_batch_norm_momentum_none_is_the_cumulative_average(rng):
    bn = nn.BatchNorm1d(2, momentum=None).double()
    batches = [rng.standard_normal((5, 2)) for _ in range(4)]
    for b in batches:
        bn(cr.tensor(b))
    means = np.mean([b.mean(axis=0) for b in batches], axis=0)
    np.testing.assert_allclose(bn.running_mean.numpy(), means, rtol=1e-12)
    variances = np.mean([b.var(axis=0, ddof=1) for b in batches], axis=0)
    np.testing.assert_allclose(bn.running_var.numpy(), variances, rtol=1e-12)


@pytest.mark.parametrize(("normalized", "shape", "kwargs"), [
    (4, (3, 4), {}), ((2, 4), (3, 2, 4), {}), (4, (2, 3, 4), {"elementwise_affine": False}),
    (4, (2, 4), {"bias": False}), ((3,), (5, 3), {"eps": 1e-3}),
])
def test_layer_norm(rng, normalized, shape, kwargs):
    check_step(*twin("LayerNorm", normalized, **kwargs), rng.standard_normal(shape) * 3)


@pytest.mark.parametrize(("groups", "shape", "kwargs"), [
    (2, (3, 4, 5), {}), (1, (2, 6), {}), (6, (2, 6, 2, 2), {}), (3, (2, 6, 3), {"affine": False}),
])
def test_group_norm(rng, groups, shape, kwargs):
    check_step(*twin("GroupNorm", groups, shape[1], **kwargs), rng.standard_normal(shape))


@pytest.mark.parametrize(("name", "shape"), [("InstanceNorm1d", (2, 3, 5)),
                                             ("InstanceNorm2d", (2, 3, 4, 4)),
                                             ("InstanceNorm1d", (3, 5))])
def test_instance_norm(rng, name, shape):
    check_step(*twin(name, 3, affine=True), rng.standard_normal(shape))


def test_normalisation_second_order(rng):
    x = cr.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    w = cr.tensor(rng.random(3) + 0.5, requires_grad=True)
    b = cr.tensor(rng.standard_normal(3), requires_grad=True)
    for fn in (lambda x, w, b: F.layer_norm(x, (3,), w, b),
               lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
               lambda x, w, b: F.group_norm(x.reshape(2, 3, 2), 3, w, b)):
        assert gradcheck(fn, (x, w, b))
        assert gradgradcheck(fn, (x, w, b))
    with pytest.raises(RuntimeError, match="normalized_shape"):
        F.layer_norm(cr.zeros(2, 3), (4,))
