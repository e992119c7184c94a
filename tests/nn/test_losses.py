"""Losses, as modules and functions, against PyTorch in float64: values and the gradients
of every differentiable input, for each reduction; cross-entropy to second order."""

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

REDUCTIONS = ["none", "mean", "sum"]
TOL = 1e-10


def _as(lib, value):
    if isinstance(value, np.ndarray):
        return cr.tensor(value) if lib is cr else torch.tensor(value)
    return value


def compare(ours, theirs, differentiable, *args, tol=TOL, **kwargs):
    """Call both with the same arrays; compare the value and the gradients of the arrays
    at the positions in ``differentiable`` for a random output gradient."""
    ins_c = [cr.tensor(a, requires_grad=i in differentiable) if isinstance(a, np.ndarray) else a
             for i, a in enumerate(args)]
    ins_t = [torch.tensor(a, requires_grad=i in differentiable) if isinstance(a, np.ndarray)
             else a for i, a in enumerate(args)]
    kw_c = {k: _as(cr, v) for k, v in kwargs.items()}
    kw_t = {k: _as(torch, v) for k, v in kwargs.items()}
    out, expected = ours(*ins_c, **kw_c), theirs(*ins_t, **kw_t)
    assert tuple(out.shape) == tuple(expected.shape)
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), rtol=tol, atol=tol)
    g = np.random.default_rng(7).standard_normal(tuple(expected.shape))
    out.backward(cr.tensor(g))
    expected.backward(torch.tensor(g))
    for i in differentiable:
        np.testing.assert_allclose(ins_c[i].grad.numpy(), ins_t[i].grad.numpy(), rtol=tol,
                                   atol=tol, err_msg=f"gradient of argument {i}")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# ---------------------------------------------------------------------- regression losses


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("name", "kwargs"), [
    ("MSELoss", {}), ("L1Loss", {}), ("HuberLoss", {"delta": 0.7}), ("SmoothL1Loss", {}),
    ("SmoothL1Loss", {"beta": 0.5}), ("SmoothL1Loss", {"beta": 0.0}),
    ("SoftMarginLoss", {}),
])
def test_pointwise_losses(rng, name, kwargs, reduction):
    x, y = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    x[0, 0] = y[0, 0]  # |d| = 0: the kink of l1
    if name == "SoftMarginLoss":
        y = np.sign(y)
    ours, theirs = getattr(nn, name)(reduction=reduction, **kwargs), getattr(tnn, name)(
        reduction=reduction, **kwargs)
    assert repr(ours) == repr(theirs)
    compare(ours, theirs, (0,) if name == "SoftMarginLoss" else (0, 1), x, y)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss"])
def test_elementwise_weight(rng, name, reduction):
    x, y, w = rng.standard_normal((3, 4)), rng.standard_normal((3, 4)), rng.random((3, 4))
    compare(getattr(F, name), getattr(TF, name), (0, 1), x, y, weight=w, reduction=reduction)


def test_legacy_reduction_arguments(rng):
    x, y = rng.standard_normal(5), rng.standard_normal(5)
    for size_average, reduce in [(False, None), (None, False), (True, True)]:
        compare(lambda a, b, s=size_average, r=reduce: F.mse_loss(a, b, s, r),
                lambda a, b, s=size_average, r=reduce: TF.mse_loss(a, b, s, r), (0,), x, y)
    assert nn.L1Loss(size_average=False).reduction == "sum"


def test_broadcast_target_warns(rng):
    with pytest.warns(UserWarning, match="different to the input size"):
        F.mse_loss(cr.tensor(rng.standard_normal((3, 2))), cr.tensor(rng.standard_normal((2,))))


def test_bad_reduction():
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        F.mse_loss(cr.ones(2), cr.ones(2), reduction="avg")


# ---------------------------------------------------------------------- binary cross-entropy


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_bce(rng, reduction, weighted):
    x, y = rng.uniform(0.02, 0.98, (4, 3)), rng.random((4, 3))
    w = rng.random(3) if weighted else None
    ours, theirs = nn.BCELoss(weight=_as(cr, w), reduction=reduction), tnn.BCELoss(
        weight=_as(torch, w), reduction=reduction)
    compare(ours, theirs, (0, 1), x, y)


def test_bce_at_saturated_probabilities():
    # log clamped at -100 in the value, x (1 - x) floored at 1e-12 in the gradient
    x, y = np.array([0.0, 1.0, 0.0, 1.0, 1e-30]), np.array([1.0, 0.0, 0.0, 1.0, 0.5])
    compare(F.binary_cross_entropy, TF.binary_cross_entropy, (0, 1), x, y, reduction="none",
            tol=1e-8)


def test_bce_rejects_logits():
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        F.binary_cross_entropy(cr.tensor([1.5]), cr.tensor([1.0]))
    with pytest.raises(ValueError, match="same size"):
        F.binary_cross_entropy(cr.tensor([0.5]), cr.tensor([1.0, 0.0]))


def test_bce_second_order(rng):
    x = cr.tensor(rng.uniform(0.1, 0.9, (2, 3)), requires_grad=True)
    y = cr.tensor(rng.random((2, 3)), requires_grad=True)
    assert gradcheck(F.binary_cross_entropy, (x, y))
    assert gradgradcheck(F.binary_cross_entropy, (x, y))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("weighted", "pos_weighted"), [(False, False), (True, False),
                                                        (False, True), (True, True)])
def test_bce_with_logits(rng, reduction, weighted, pos_weighted):
    x, y = rng.standard_normal((4, 3)) * 5, rng.random((4, 3))
    x[0] = [0.0, 40.0, -40.0]
    w = rng.random((4, 3)) if weighted else None
    pw = rng.random(3) * 3 if pos_weighted else None
    ours = nn.BCEWithLogitsLoss(weight=_as(cr, w), pos_weight=_as(cr, pw), reduction=reduction)
    theirs = tnn.BCEWithLogitsLoss(weight=_as(torch, w), pos_weight=_as(torch, pw),
                                   reduction=reduction)
    compare(ours, theirs, (0, 1), x, y)


def test_bce_with_logits_extreme_logits_and_second_order(rng):
    x = np.array([-800.0, -30.0, 0.0, 30.0, 800.0])
    y = np.array([1.0, 0.0, 0.5, 1.0, 0.0])
    compare(F.binary_cross_entropy_with_logits, TF.binary_cross_entropy_with_logits, (0, 1), x, y,
            reduction="none")
    xs = cr.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    ys = cr.tensor(rng.random((2, 3)))
    pw = cr.tensor([1.0, 2.0, 0.5])
    assert gradgradcheck(lambda a: F.binary_cross_entropy_with_logits(a, ys, pos_weight=pw), (xs,))


def test_bce_per_label_for_multi_label_classification(rng):
    # each label is its own binary problem: the (N, L) loss is the per-column loss
    logits, labels = rng.standard_normal((6, 4)), (rng.random((6, 4)) > 0.5).astype(float)
    pos_weight = np.array([1.0, 2.0, 0.5, 4.0])
    per_element = F.binary_cross_entropy_with_logits(
        cr.tensor(logits), cr.tensor(labels), pos_weight=cr.tensor(pos_weight), reduction="none")
    assert per_element.shape == (6, 4)
    for label in range(4):
        column = F.binary_cross_entropy_with_logits(
            cr.tensor(logits[:, label]), cr.tensor(labels[:, label]),
            pos_weight=cr.tensor(pos_weight[label:label + 1]), reduction="none")
        np.testing.assert_allclose(per_element.numpy()[:, label], column.numpy(), rtol=1e-14)
    compare(nn.BCEWithLogitsLoss(pos_weight=cr.tensor(pos_weight)),
            tnn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight)), (0,), logits, labels)
    # a tiny multi-label model learns every label of a separable problem
    cr.manual_seed(0)
    features = rng.standard_normal((64, 3))
    targets = cr.tensor(np.stack([features[:, 0] > 0, features[:, 1] + features[:, 2] > 0,
                                  features[:, 2] < 0.5], axis=1).astype(np.float32))
    model = nn.Linear(3, 3)
    inputs = cr.tensor(features.astype(np.float32))
    loss_fn = nn.BCEWithLogitsLoss()
    for _ in range(300):
        model.zero_grad()
        loss_fn(model(inputs), targets).backward()
        with cr.no_grad():
            for p in model.parameters():
                p -= 0.5 * p.grad
    accuracy = ((model(inputs).detach().numpy() > 0) == targets.numpy()).mean(axis=0)
    assert (accuracy > 0.9).all(), accuracy


# ---------------------------------------------------------------------- cross-entropy


def _targets(rng, shape, classes, ignore=True):
    t = rng.integers(0, classes, shape)
    if ignore:
        t.reshape(-1)[1] = -100
    return t


CE_OPTIONS = [
    {}, {"weight": True}, {"ignore": True}, {"weight": True, "ignore": True},
    {"label_smoothing": 0.2}, {"label_smoothing": 0.3, "weight": True, "ignore": True},
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("options", CE_OPTIONS, ids=lambda o: "-".join(o) or "plain")
@pytest.mark.parametrize("shape", [(6, 5), (3, 4, 2, 3), (5,)], ids=["NC", "NCHW", "C"])
def test_cross_entropy_class_indices(rng, shape, options, reduction):
    x = rng.standard_normal(shape) * 3
    target_shape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    t = _targets(rng, target_shape, shape[-1] if len(shape) == 1 else shape[1],
                 ignore=options.get("ignore", False) and len(shape) > 1)
    classes = shape[0] if len(shape) == 1 else shape[1]
    w = rng.random(classes) + 0.2 if options.get("weight") else None
    ls = options.get("label_smoothing", 0.0)
    compare(nn.CrossEntropyLoss(weight=_as(cr, w), reduction=reduction, label_smoothing=ls),
            tnn.CrossEntropyLoss(weight=_as(torch, w), reduction=reduction, label_smoothing=ls),
            (0,), x, t)
    compare(nn.NLLLoss(weight=_as(cr, w), reduction=reduction),
            tnn.NLLLoss(weight=_as(torch, w), reduction=reduction), (0,), x, t)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("options", [{}, {"weight": True}, {"label_smoothing": 0.25},
                                     {"weight": True, "label_smoothing": 0.1}],
                         ids=["plain", "weight", "smoothing", "both"])
def test_cross_entropy_class_probabilities(rng, options, reduction):
    x = rng.standard_normal((4, 5, 2))
    p = rng.random((4, 5, 2))
    p /= p.sum(axis=1, keepdims=True)
    w = rng.random(5) + 0.2 if options.get("weight") else None
    ls = options.get("label_smoothing", 0.0)
    compare(lambda a, b: F.cross_entropy(a, b, _as(cr, w), reduction=reduction, label_smoothing=ls),
            lambda a, b: TF.cross_entropy(a, b, _as(torch, w), reduction=reduction,
                                          label_smoothing=ls),
            (0, 1), x, p)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
def test_cross_entropy_second_order_matches_pytorch(rng, reduction, label_smoothing):
    x = rng.standard_normal((5, 4))
    t = np.array([0, 3, -100, 1, 3])
    w = rng.random(4) + 0.5
    v = rng.standard_normal((5, 4))

    def hvp(lib, tensor, fn):
        xs = tensor(x, requires_grad=True)
        loss = fn(xs, tensor(t), weight=tensor(w), reduction=reduction,
                  label_smoothing=label_smoothing).sum()
        (g,) = lib.autograd.grad(loss, xs, create_graph=True)
        (h,) = lib.autograd.grad((g * tensor(v)).sum(), xs)
        return g.detach().numpy(), h.detach().numpy()

    ours = hvp(cr, cr.tensor, F.cross_entropy)
    theirs = hvp(torch, torch.tensor, TF.cross_entropy)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=TOL, atol=TOL)
    xs = cr.tensor(x, requires_grad=True)
    fn = lambda a: F.cross_entropy(a, cr.tensor(t), cr.tensor(w), reduction=reduction,  # noqa: E731
                                   label_smoothing=label_smoothing)
    assert gradcheck(fn, (xs,))
    assert gradgradcheck(fn, (xs,))


def test_cross_entropy_forward_mode(rng):
    from chainrule.autograd import forward_ad

    x, v = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    t = np.array([2, 0, 1, 1])
    for reduction in REDUCTIONS:
        with forward_ad.dual_level():
            dual = forward_ad.make_dual(cr.tensor(x), cr.tensor(v))
            out = F.cross_entropy(dual, cr.tensor(t), reduction=reduction, label_smoothing=0.1)
            tangent = forward_ad.unpack_dual(out).tangent.numpy()
        _, expected = torch.func.jvp(
            lambda a, reduction=reduction: TF.cross_entropy(a, torch.tensor(t), reduction=reduction,
                                       label_smoothing=0.1), (torch.tensor(x),), (torch.tensor(v),))
        np.testing.assert_allclose(tangent, expected.numpy(), rtol=TOL, atol=TOL)


def test_cross_entropy_keeps_float32_and_errors():
    logits = cr.randn(4, 3, requires_grad=True)
    loss = F.cross_entropy(logits, cr.tensor([0, 1, 2, 1]))
    loss.backward()
    assert loss.dtype == cr.float32 and logits.grad.dtype == cr.float32
    with pytest.raises(IndexError, match="Target 3 is out of bounds"):
        F.cross_entropy(cr.randn(2, 3), cr.tensor([0, 3]))
    with pytest.raises(ValueError, match="expected target of shape"):
        F.cross_entropy(cr.randn(2, 3), cr.tensor([0, 1, 2]))
    with pytest.raises(RuntimeError, match="weight tensor should be defined"):
        F.cross_entropy(cr.randn(2, 3), cr.tensor([0, 1]), weight=cr.ones(2))


def test_all_targets_ignored_gives_nan_mean_like_pytorch():
    ours = F.cross_entropy(cr.randn(2, 3), cr.tensor([-100, -100]))
    theirs = TF.cross_entropy(torch.randn(2, 3), torch.tensor([-100, -100]))
    assert np.isnan(ours.item()) and np.isnan(theirs.item())


def test_loss_weight_is_a_buffer():
    loss = nn.CrossEntropyLoss(weight=cr.ones(3))
    assert list(loss.state_dict()) == list(tnn.CrossEntropyLoss(weight=torch.ones(3)).state_dict())
    loss.double()
    assert loss.weight.dtype == cr.float64
    assert list(nn.BCEWithLogitsLoss(pos_weight=cr.ones(2)).state_dict()) == ["pos_weight"]


# ---------------------------------------------------------------------- other losses


@pytest.mark.parametrize("reduction", REDUCTIONS + ["batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(rng, reduction, log_target):
    x = np.log(rng.dirichlet(np.ones(4), size=3))
    y = rng.dirichlet(np.ones(4), size=3)
    y[0, 0] = 0.0  # 0 log 0 = 0
    if log_target:
        y = np.log(rng.dirichlet(np.ones(4), size=3))
    differentiable = (0, 1) if log_target else (0,)
    compare(nn.KLDivLoss(reduction=reduction, log_target=log_target),
            tnn.KLDivLoss(reduction=reduction, log_target=log_target), differentiable, x, y)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.3])
@pytest.mark.parametrize("shape", [(5, 4), (4,)])
def test_cosine_embedding_loss(rng, shape, margin, reduction):
    a, b = rng.standard_normal(shape), rng.standard_normal(shape)
    y = np.array([1, -1, -1, 1, -1][: shape[0]]) if len(shape) == 2 else np.array(-1)
    compare(nn.CosineEmbeddingLoss(margin, reduction=reduction),
            tnn.CosineEmbeddingLoss(margin, reduction=reduction), (0, 1), a, b, y)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_ranking_and_embedding_losses(rng, reduction):
    a, b = rng.standard_normal(6), rng.standard_normal(6)
    y = np.sign(rng.standard_normal(6))
    compare(nn.MarginRankingLoss(0.2, reduction=reduction),
            tnn.MarginRankingLoss(0.2, reduction=reduction), (0, 1), a, b, y)
    compare(nn.HingeEmbeddingLoss(0.5, reduction=reduction),
            tnn.HingeEmbeddingLoss(0.5, reduction=reduction), (0,), a, y)
    anchor, pos, neg = (rng.standard_normal((4, 3)) for _ in range(3))
    compare(nn.TripletMarginLoss(swap=True, reduction=reduction),
            tnn.TripletMarginLoss(swap=True, reduction=reduction), (0, 1, 2), anchor, pos, neg)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_likelihood_losses(rng, reduction):
    x, y = rng.standard_normal((3, 4)), rng.poisson(2.0, (3, 4)).astype(float)
    compare(nn.PoissonNLLLoss(reduction=reduction), tnn.PoissonNLLLoss(reduction=reduction),
            (0,), x, y)
    compare(nn.PoissonNLLLoss(log_input=False, full=True, reduction=reduction),
            tnn.PoissonNLLLoss(log_input=False, full=True, reduction=reduction),
            (0,), np.abs(x) + 0.1, y)
    var = rng.random((3, 1)) + 1e-7
    var[0] = 1e-8  # clamped to eps in the value, not in the gradient
    compare(nn.GaussianNLLLoss(full=True, reduction=reduction),
            tnn.GaussianNLLLoss(full=True, reduction=reduction), (0, 1, 2), x, y / 2, var)
