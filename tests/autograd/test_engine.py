"""Engine behaviour (DESIGN.md, "The engine"): graph walk, accumulation, freeing, errors."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import chainrule as cr
from chainrule.autograd import grad


def leaf(value, dtype=cr.float64):
    return cr.tensor(value, dtype=dtype, requires_grad=True)


# ------------------------------------------------------------- worked examples of backprop
def test_sum_times_product_example():
    x, y, z = leaf(2.0), leaf(3.0), leaf(4.0)
    f = (x + y) * z
    f.backward()
    assert (x.grad.item(), y.grad.item(), z.grad.item()) == (4.0, 4.0, 5.0)


def test_square_of_affine_example():
    x, w = leaf(2.0), leaf(3.0)
    y = x * w + 1
    z = y**2
    z.backward()
    assert (x.grad.item(), w.grad.item()) == (42.0, 28.0)


def test_two_layer_scalar_network_example():
    w1, b1, w2, b2 = leaf(0.5), leaf(0.1), leaf(0.8), leaf(0.2)
    x, target = cr.tensor(2.0, dtype=cr.float64), cr.tensor(1.5, dtype=cr.float64)
    z1 = w1 * x + b1
    a1 = cr.relu(z1)
    yhat = w2 * a1 + b2
    loss = 0.5 * (yhat - target) ** 2
    loss.backward()
    assert loss.item() == pytest.approx(0.0882, abs=1e-12)
    assert w2.grad.item() == pytest.approx(-0.462, abs=1e-12)
    assert b2.grad.item() == pytest.approx(-0.42, abs=1e-12)
    assert w1.grad.item() == pytest.approx(-0.672, abs=1e-12)
    assert b1.grad.item() == pytest.approx(-0.336, abs=1e-12)


# ------------------------------------------------------------- graph shapes
def test_diamond_graph_sums_both_paths():
    x = leaf([1.0, 2.0, 3.0])
    a = x * 2
    b = x.exp()
    y = (a * b).sum()
    y.backward()
    data = x.detach().numpy()
    # d/dx (2x e^x) = 2 e^x + 2x e^x
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.exp(data) * (1 + data), rtol=1e-14)


def test_tensor_used_several_times():
    x = leaf(3.0)
    y = x * x * x + x
    y.backward()
    assert x.grad.item() == pytest.approx(3 * 9 + 1)


def test_same_tensor_twice_in_one_op():
    x = leaf([1.0, -2.0])
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, -4.0])
    x.grad = None
    (x + x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])


def test_ten_thousand_op_chain_needs_no_recursion():
    x = leaf(1.0)
    h = x
    for _ in range(10_000):
        h = h * 1.0001
    h.backward()
    assert x.grad.item() == pytest.approx(1.0001**10_000, rel=1e-9)


def test_deep_chain_through_grad_with_create_graph():
    x = leaf(0.5)
    h = x
    for _ in range(3_000):
        h = h + 0.0 * h
    (g,) = grad(h, x, create_graph=True)
    assert g.item() == pytest.approx(1.0)


def test_unrelated_branch_is_not_visited():
    x, w = leaf(2.0), leaf(3.0)
    visited = []
    side = w.exp()
    side.register_hook(lambda g: visited.append(g))
    y = x * 3 + side
    (gx,) = grad(y, x)
    assert gx.item() == 3.0
    assert visited == []
    assert w.grad is None


# ------------------------------------------------------------- grad mode
def test_no_grad_records_nothing():
    x = leaf([1.0, 2.0])
    with cr.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None
    with cr.no_grad():
        with cr.enable_grad():
            z = x * 2
    assert z.requires_grad


def test_grad_mode_decorators_and_set_grad_enabled():
    x = leaf(1.0)

    @cr.no_grad()
    def doubled(t):
        return t * 2

    assert not doubled(x).requires_grad
    with cr.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert cr.is_grad_enabled()
    cr.set_grad_enabled(False)
    try:
        assert not (x * 2).requires_grad
    finally:
        cr.set_grad_enabled(True)


def test_grad_mode_is_per_thread():
    seen = {}

    def worker():
        x = leaf(1.0)
        seen["thread"] = (x * 2).requires_grad

    with cr.no_grad():
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        assert not cr.is_grad_enabled()
    assert seen["thread"] is True


def test_detach_cuts_the_graph_and_shares_storage():
    x = leaf([1.0, 2.0])
    y = x * 3
    d = y.detach()
    assert d.grad_fn is None and not d.requires_grad
    d.zero_()
    np.testing.assert_array_equal(y.detach().numpy(), [0.0, 0.0])
    z = (y.detach() * x).sum()
    z.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0])


# ------------------------------------------------------------- accumulation and freeing
def test_repeated_backward_accumulates_into_grad():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 8.0])


def test_backward_through_freed_graph_raises():
    x = leaf([1.0, 2.0])
    y = (x.exp() * 2).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_saved_arrays_are_freed_after_backward():
    x = leaf([1.0, 2.0])
    e = x.exp()
    y = (e * x).sum()
    y.backward()
    assert e.grad_fn.saved is None


def test_leaf_gradients_never_share_memory():
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (x + w).sum().backward()
    assert not np.shares_memory(x.grad.numpy(), w.grad.numpy())
    with cr.no_grad():
        x.grad.mul_(10)
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, 1.0])


def test_grad_does_not_touch_dot_grad():
    x = leaf([1.0, 2.0])
    (g,) = grad((x**2).sum(), x)
    np.testing.assert_array_equal(g.numpy(), [2.0, 4.0])
    assert x.grad is None


def test_backward_inputs_restricts_accumulation():
    x, w = leaf(2.0), leaf(3.0)
    (x * w).backward(inputs=[w])
    assert x.grad is None and w.grad.item() == 2.0


def test_unused_input():
    x, unused = leaf(2.0), leaf(5.0)
    y = x * 3
    with pytest.raises(RuntimeError, match="allow_unused"):
        grad(y, [x, unused], retain_graph=True)
    gx, gu = grad(y, [x, unused], allow_unused=True)
    assert gx.item() == 3.0 and gu is None
    gx, gu = grad(x * 3, [x, unused], materialize_grads=True)
    assert gu.item() == 0.0


def test_grad_with_respect_to_intermediate():
    x = leaf(2.0)
    h = x * x
    y = h * 3
    gh, gx = grad(y, [h, x])
    assert gh.item() == 3.0 and gx.item() == 12.0


def test_several_roots_and_a_root_inside_the_graph():
    x = leaf([1.0, 2.0])
    y1 = x * 2
    y2 = (y1 * y1).sum()
    cr.autograd.backward([y1, y2], [cr.ones(2, dtype=cr.float64), None])
    # dy1/dx = 2; dy2/dx = 2 * y1 * 2 = 8x
    np.testing.assert_array_equal(x.grad.numpy(), [2.0 + 8.0, 2.0 + 16.0])


# ------------------------------------------------------------- hooks
def test_leaf_and_nonleaf_hooks_and_retain_grad():
    x = leaf([1.0, 2.0])
    x.register_hook(lambda g: g * 10)
    h = x * 2
    h.retain_grad()
    seen = []
    h.register_hook(lambda g: seen.append(g.numpy().copy()))
    h.sum().backward()
    np.testing.assert_array_equal(seen[0], [1.0, 1.0])
    np.testing.assert_array_equal(h.grad.numpy(), [1.0, 1.0])
    np.testing.assert_array_equal(x.grad.numpy(), [20.0, 20.0])


def test_hook_handle_removes_hook():
    x = leaf(1.0)
    handle = x.register_hook(lambda g: g * 0)
    handle.remove()
    (x * 2).backward()
    assert x.grad.item() == 2.0


# ------------------------------------------------------------- errors
def test_backward_on_non_scalar_needs_gradient():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"scalar outputs.*shape \(2,\)"):
        (x * 2).backward()
    (x * 2).backward(cr.tensor([1.0, 0.5], dtype=cr.float64))
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 1.0])


def test_gradient_of_wrong_shape_is_refused():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        (x * 2).backward(cr.ones(3, dtype=cr.float64))


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        cr.ones(2).sum().backward()


def test_in_place_change_of_saved_tensor_raises_at_backward():
    x = leaf([1.0, 2.0])
    e = x.exp()
    y = (e * 2).sum()
    e.add_(1)
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation.*\[2\].*ExpBackward0"):
        y.backward()


# ------------------------------------------------------------- dtypes and higher order
def test_gradient_has_its_tensors_dtype():
    x = leaf([1.0, 2.0], dtype=cr.float32)
    (x.double() * 3).sum().backward()
    assert x.grad.dtype == cr.float32


def test_third_derivative_of_cube():
    x = leaf(2.0)
    (g1,) = grad(x**3, x, create_graph=True)
    (g2,) = grad(g1, x, create_graph=True)
    (g3,) = grad(g2, x)
    assert (g1.item(), g2.item(), g3.item()) == (12.0, 12.0, 6.0)


def test_hessian_vector_product_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    w_data, x_data, v_data = rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal(4)

    def loss(lib, w, x):
        return (lib.tanh(w @ x) ** 2).sum() + (x.exp() * x).sum()

    results = []
    for lib in (cr, torch):
        w = lib.tensor(w_data, dtype=lib.float64)
        x = lib.tensor(x_data, dtype=lib.float64, requires_grad=True)
        v = lib.tensor(v_data, dtype=lib.float64)
        (g,) = (grad if lib is cr else torch.autograd.grad)(loss(lib, w, x), x, create_graph=True)
        (hv,) = (grad if lib is cr else torch.autograd.grad)((g * v).sum(), x)
        results.append(hv.detach().numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12)
