"""chainrule.nn.utils: gradient clipping and parameter/vector conversion vs PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule
from chainrule.nn.utils import (
    clip_grad_norm_,
    clip_grad_value_,
    parameters_to_vector,
    vector_to_parameters,
)

torch = pytest.importorskip("torch")


def _pair(seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    arrays = [rng.normal(size=(3, 4)) * scale, rng.normal(size=5) * scale, rng.normal(size=())]
    grads = [rng.normal(size=a.shape) * scale for a in arrays]
    ours, theirs = [], []
    for a, g in zip(arrays, grads):
        p = chainrule.tensor(a, requires_grad=True)
        p.grad = chainrule.tensor(g)
        t = torch.tensor(a, requires_grad=True)
        t.grad = torch.tensor(g)
        ours.append(p)
        theirs.append(t)
    return ours, theirs


@pytest.mark.parametrize("norm_type", [2.0, 1, 3.5, 0.5, float("inf"), "inf", 0])
@pytest.mark.parametrize("max_norm", [0.3, 1e6])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    ours, theirs = _pair()
    total = clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert total.dtype == chainrule.float64 and total.shape == ()
    np.testing.assert_allclose(total.item(), expected.item(), rtol=1e-12)
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-12, atol=1e-300)


def test_clip_grad_norm_skips_missing_grads_and_accepts_one_tensor():
    w = chainrule.ones(2, requires_grad=True)
    v = chainrule.ones(2, requires_grad=True)
    w.grad = chainrule.tensor([3.0, 4.0])
    total = clip_grad_norm_(w, 1.0)
    assert total.item() == pytest.approx(5.0)
    assert w.grad.tolist() == pytest.approx([0.6, 0.8], rel=1e-6)
    none = clip_grad_norm_([v], 1.0)
    assert none.item() == 0.0 and v.grad is None


def test_clip_grad_norm_nonfinite():
    w = chainrule.ones(2, requires_grad=True)
    w.grad = chainrule.tensor([float("inf"), 1.0])
    with pytest.raises(RuntimeError, match="total norm of order 2.0 .* non-finite"):
        clip_grad_norm_([w], 1.0, error_if_nonfinite=True)
    assert w.grad.tolist()[1] == 1.0  # untouched when it raises
    t = torch.ones(2, requires_grad=True)
    t.grad = torch.tensor([float("inf"), 1.0])
    expected = torch.nn.utils.clip_grad_norm_([t], 1.0)
    total = clip_grad_norm_([w], 1.0)
    assert total.item() == expected.item() == float("inf")
    np.testing.assert_array_equal(w.grad.numpy(), t.grad.numpy().astype(np.float32))


def test_clip_grad_norm_keeps_float32():
    w = chainrule.ones(3, requires_grad=True)
    w.grad = chainrule.full((3,), 2.0)
    assert clip_grad_norm_([w], 1.0).dtype == chainrule.float32
    assert w.grad.dtype == chainrule.float32


def test_clip_grad_value_matches_torch():
    ours, theirs = _pair(scale=3.0)
    assert clip_grad_value_(ours, 1.5) is None
    torch.nn.utils.clip_grad_value_(theirs, 1.5)
    for p, t in zip(ours, theirs):
        np.testing.assert_array_equal(p.grad.numpy(), t.grad.numpy())


def test_empty_generator_warns():
    with pytest.warns(UserWarning, match="empty generator"):
        clip_grad_norm_((p for p in []), 1.0)


def test_parameters_to_vector_and_back_match_torch():
    ours, theirs = _pair()
    vec = parameters_to_vector(ours)
    expected = torch.nn.utils.parameters_to_vector(theirs)
    np.testing.assert_array_equal(vec.detach().numpy(), expected.detach().numpy())
    # differentiable: d(sum(vec * c))/dp = c, laid out like p
    (vec * chainrule.arange(vec.shape[0], dtype=chainrule.float64)).sum().backward()
    assert ours[1].grad.tolist() != [0.0] * 5

    new = chainrule.arange(vec.shape[0], dtype=chainrule.float64)
    vector_to_parameters(new, ours)
    torch.nn.utils.vector_to_parameters(torch.arange(vec.shape[0], dtype=torch.float64), theirs)
    for p, t in zip(ours, theirs):
        np.testing.assert_array_equal(p.detach().numpy(), t.detach().numpy())
        assert p.requires_grad


def test_vector_to_parameters_errors_leave_parameters_unchanged():
    ours, _ = _pair()
    before = [p.detach().numpy().copy() for p in ours]
    with pytest.raises(TypeError, match="expected chainrule.Tensor"):
        vector_to_parameters(np.zeros(18), ours)
    with pytest.raises(ValueError, match="1-D vector of 18 elements .* got shape \\(17,\\)"):
        vector_to_parameters(chainrule.zeros(17, dtype=chainrule.float64), ours)
    for p, b in zip(ours, before):
        np.testing.assert_array_equal(p.detach().numpy(), b)
