"""In-place ops (ops/inplace.py) against PyTorch: values, gradients through them,
``__setitem__`` with basic and advanced indices, in-place changes of views, the version
counter that catches a change to a saved tensor, and the leaf rules."""

from __future__ import annotations

import re

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")


def same(c: cr.Tensor, t: torch.Tensor) -> None:
    """Equal values, shape and dtype (dtype names compared)."""
    assert str(c.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
    assert tuple(c.shape) == tuple(t.shape)
    np.testing.assert_allclose(c.detach().numpy(), t.detach().numpy(), rtol=1e-6, atol=1e-7)


def both(fn):
    """Run ``fn(lib)`` for chainrule and torch and compare every tensor it returns."""
    for c, t in zip(fn(cr), fn(torch), strict=True):
        if t is None:
            assert c is None
        else:
            same(c, t)


# ------------------------------------------------------------------ values without a graph
UPDATES = {
    "add_": lambda a, lib: a.add_(2),
    "add_tensor_alpha": lambda a, lib: a.add_(lib.tensor([1.0, 2.0, 3.0]), alpha=2),
    "add_broadcast": lambda a, lib: a.add_(lib.tensor([1.0, 2.0, 3.0])),
    "sub_": lambda a, lib: a.sub_(1.5),
    "sub_alpha": lambda a, lib: a.sub_(lib.ones(3), alpha=3),
    "mul_": lambda a, lib: a.mul_(3),
    "mul_tensor": lambda a, lib: a.mul_(lib.tensor([[2.0], [3.0]])),
    "div_": lambda a, lib: a.div_(4),
    "div_tensor": lambda a, lib: a.div_(lib.tensor([1.0, 2.0, 4.0])),
    "copy_": lambda a, lib: a.copy_(lib.tensor([7.0, 8.0, 9.0])),
    "copy_int_source": lambda a, lib: a.copy_(lib.tensor([[1, 2, 3], [4, 5, 6]])),
    "fill_": lambda a, lib: a.fill_(7),
    "fill_tensor": lambda a, lib: a.fill_(lib.tensor(2.5)),
    "zero_": lambda a, lib: a.zero_(),
    "clamp_": lambda a, lib: a.clamp_(-1, 1),
    "clamp_min": lambda a, lib: a.clamp_(min=0),
    "clamp_max": lambda a, lib: a.clamp_(max=0.5),
    "iadd": lambda a, lib: a.__iadd__(1),
    "isub": lambda a, lib: a.__isub__(lib.tensor([1, 2, 3])),
    "imul": lambda a, lib: a.__imul__(2.5),
    "itruediv": lambda a, lib: a.__itruediv__(2),
}


@pytest.mark.parametrize("name", sorted(UPDATES))
def test_inplace_values_like_torch(name):
    def run(lib):
        a = lib.tensor([[-2.0, 0.5, 3.0], [1.0, -0.25, 4.0]])
        alias = a
        out = UPDATES[name](a, lib)
        assert out is alias and a is alias  # in place: the same tensor comes back
        return (a,)

    both(run)


def test_augmented_assignment_keeps_identity():
    a = cr.ones(3)
    alias = a
    a += 1
    a *= 3
    a -= 1
    a /= 5
    assert a is alias and a.tolist() == [1.0, 1.0, 1.0]


def test_integer_inplace_with_float_raises_like_torch():
    for lib in (cr, torch):
        for update in (lambda a: a.add_(2.5), lambda a: a.div_(2), lambda a: a.mul_(2.5),
                       lambda a, lib=lib: a.__iadd__(lib.tensor([1.5, 1.0, 1.0]))):
            with pytest.raises(RuntimeError) as info:
                update(lib.ones(3, dtype=lib.int64))
            if lib is cr:
                assert "int64" in str(info.value)


def test_inplace_within_a_category_wraps_like_torch():
    both(lambda lib: (lib.tensor([1, 2], dtype=lib.uint8).add_(lib.tensor([1, -3], dtype=lib.int8)),
                      lib.tensor([1, 2], dtype=lib.int32).mul_(lib.tensor([True, False])),
                      lib.tensor([1.0, 2.0], dtype=lib.float16).add_(lib.tensor([1.0, 2.0],
                                                                                dtype=lib.float64)),
                      lib.tensor([1, 2], dtype=lib.int8).copy_(lib.tensor([1.7, -2.2]))))


def test_bool_inplace_with_int_raises_like_torch():
    for lib in (cr, torch):
        with pytest.raises(RuntimeError, match="can't be cast to the desired output type"):
            lib.tensor([True, False]).add_(1)


def test_float_inplace_with_int_operand_keeps_dtype():
    both(lambda lib: (lib.ones(3).add_(lib.tensor([1, 2, 3])),))


def test_inplace_broadcast_to_larger_shape_raises():
    with pytest.raises(RuntimeError, match=re.escape("doesn't match the broadcast shape")):
        torch.ones(3).add_(torch.ones(2, 3))
    with pytest.raises(RuntimeError, match=r"add_.*\(3,\).*\(2, 3\)"):
        cr.ones(3).add_(cr.ones(2, 3))
    with pytest.raises(RuntimeError, match=r"copy_.*\(4,\).*\(2, 3\)"):
        cr.ones(2, 3).copy_(cr.ones(4))


def test_inplace_bumps_version_counter_without_graph():
    x = cr.ones(3)
    y = x.exp()
    assert y.grad_fn is None
    x.add_(1)  # no graph: nothing saved, nothing to complain about
    assert x.tolist() == [2.0, 2.0, 2.0]


# ------------------------------------------------------------------ gradients through in-place
GRAD_UPDATES = {
    "add_": lambda y, x, lib: y.add_(1),
    "add_tensor": lambda y, x, lib: y.add_(x * x),
    "sub_alpha": lambda y, x, lib: y.sub_(x, alpha=3),
    "mul_tensor": lambda y, x, lib: y.mul_(x),
    "mul_scalar": lambda y, x, lib: y.mul_(-2),
    "div_tensor": lambda y, x, lib: y.div_(x),
    "div_scalar": lambda y, x, lib: y.div_(4),
    "clamp_": lambda y, x, lib: y.clamp_(3, 5),
    "copy_": lambda y, x, lib: y.copy_(x * x),
    "copy_broadcast": lambda y, x, lib: y.copy_(x[:1]),
    "fill_": lambda y, x, lib: y.fill_(1),
    "zero_": lambda y, x, lib: y.zero_(),
    "chain": lambda y, x, lib: y.__iadd__(x).__imul__(x).__isub__(1).__itruediv__(x),
}


@pytest.mark.parametrize("name", sorted(GRAD_UPDATES))
def test_inplace_gradients_like_torch(name):
    def run(lib):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x * 2
        out = GRAD_UPDATES[name](y, x, lib)
        assert out is y and y.requires_grad and not y.is_leaf
        (y * lib.tensor([1.0, -2.0, 0.5])).sum().backward()
        return y, x.grad

    both(run)


def test_inplace_on_tensor_without_grad_with_operand_requiring_grad():
    def run(lib):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = lib.zeros(3)
        y += x
        z = lib.zeros(3)
        z.copy_(x)
        assert y.requires_grad and not y.is_leaf and z.requires_grad
        (y * y + z).sum().backward()
        return y, z, x.grad

    both(run)


def test_inplace_on_detached_tensor_with_operand_requiring_grad():
    def run(lib):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        w = lib.ones(3, requires_grad=True)
        d = x.detach()
        d.mul_(w)
        d.sum().backward()
        return d, w.grad, x.grad

    both(run)


def test_inplace_float64_grad_keeps_dtype():
    def run(lib):
        x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        y = x * 2
        y.mul_(lib.tensor([3.0, 4.0]))  # float32 operand, float64 result
        y.sum().backward()
        return y, x.grad

    both(run)


# ------------------------------------------------------------------ __setitem__
SET_VALUES = {
    "int_scalar": (lambda lib: 1, 1),
    "row_broadcast": (lambda lib: lib.tensor([9, 9, 9]), 0),
    "column": (lambda lib: 5.5, (slice(None), 0)),
    "mask": (lambda lib: -1.0, "mask"),
    "advanced_pair": (lambda lib: lib.tensor([1.0, 2.0]), (0, [0, 2])),
    "ellipsis": (lambda lib: 0, (Ellipsis, -1)),
    "bool_rows": (lambda lib: 1, "bool_rows"),
    "negative_step_free": (lambda lib: lib.tensor([7.0, 8.0]), (1, slice(1, None))),
    "tensor_index": (lambda lib: 3.0, "tensor_index"),
    "none": (lambda lib: 4.0, (None, 1)),
}


def _index(spec, lib, a):
    if spec == "mask":
        return a > 3
    if spec == "bool_rows":
        return lib.tensor([True, False])
    if spec == "tensor_index":
        return lib.tensor([1, 0])
    return spec


@pytest.mark.parametrize("name", sorted(SET_VALUES))
def test_setitem_values_like_torch(name):
    value, spec = SET_VALUES[name]

    def run(lib):
        a = lib.arange(6.0).reshape(2, 3)
        a[_index(spec, lib, a)] = value(lib)
        b = lib.arange(6).reshape(2, 3)
        b[_index(spec, lib, b)] = 2.7 if name != "advanced_pair" else lib.tensor([1, 2])
        return a, b

    both(run)


SET_GRAD = {
    "basic_scalar_value": (lambda lib: (1,), (), lambda v: v),
    "basic_row": (lambda lib: (0,), (3,), lambda v: v * v),
    "column": (lambda lib: (slice(None), 1), (2,), lambda v: v * 3),
    "slice": (lambda lib: (slice(None), slice(1, None)), (2, 2), lambda v: v.exp()),
    "broadcast_value": (lambda lib: (slice(None), slice(1, None)), (2,), lambda v: v * 2),
    "advanced_list": (lambda lib: ([0, 1], [2, 0]), (2,), lambda v: v * v),
    "tensor_rows": (lambda lib: (lib.tensor([1]),), (3,), lambda v: v + 1),
    "mask": (lambda lib: "mask", (), lambda v: v * 2),
    "repeated_index": (lambda lib: (lib.tensor([1, 1]),), (3,), lambda v: v),
    "repeated_pair": (lambda lib: ([0, 0], [1, 1]), (2,), lambda v: v * v),
}


@pytest.mark.parametrize("name", sorted(SET_GRAD))
def test_setitem_gradients_flow_to_value_and_untouched_part(name):
    index_fn, value_shape, transform = SET_GRAD[name]

    def run(lib):
        x = lib.tensor(np.arange(6.0).reshape(2, 3) - 2, requires_grad=True)
        v = lib.tensor(np.arange(1.0, 1.0 + np.prod(value_shape, dtype=int)).reshape(value_shape),
                       requires_grad=True)
        y = x * 1
        index = index_fn(lib)
        if index == "mask":
            index = y > 0
        y[index] = transform(v)
        weights = lib.tensor([[1.0, -2.0, 3.0], [0.5, 4.0, -1.0]])
        (y * y * weights).sum().backward()
        return y, x.grad, v.grad

    both(run)


def test_setitem_on_tensor_without_grad_with_value_requiring_grad():
    def run(lib):
        v = lib.tensor([5.0, 6.0], requires_grad=True)
        y = lib.zeros(3)
        y[1:] = v
        assert y.requires_grad and not y.is_leaf
        (y * y).sum().backward()
        return y, v.grad

    both(run)


def test_setitem_on_leaf_requiring_grad_raises_and_works_under_no_grad():
    for lib in (cr, torch):
        x = lib.ones(3, requires_grad=True)
        with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
            x[0] = 2.0
        with lib.no_grad():
            x[0] = 0.0
        assert x.tolist() == [0.0, 1.0, 1.0] and x.is_leaf and x.requires_grad


# ------------------------------------------------------------------ leaf rules
@pytest.mark.parametrize("update", [
    lambda x: x.add_(1), lambda x: x.mul_(2), lambda x: x.zero_(), lambda x: x.fill_(3),
    lambda x: x.copy_(x.detach() * 2), lambda x: x.clamp_(0, 0.5), lambda x: x.__iadd__(1),
    lambda x: x.div_(2), lambda x: x.sub_(1),
], ids=["add_", "mul_", "zero_", "fill_", "copy_", "clamp_", "iadd", "div_", "sub_"])
def test_inplace_on_leaf_requiring_grad_raises_as_torch(update):
    message = "a leaf Variable that requires grad is being used in an in-place operation"
    with pytest.raises(RuntimeError, match=message):
        update(torch.ones(3, requires_grad=True))
    with pytest.raises(RuntimeError, match=message) as info:
        update(cr.ones(3, requires_grad=True))
    assert "(3,)" in str(info.value)


def test_inplace_on_leaf_works_under_no_grad():
    def run(lib):
        x = lib.ones(3, requires_grad=True)
        with lib.no_grad():
            x.add_(1)
            x *= 2
            x[0] = 0.0
            x.clamp_(max=3.0)
        assert x.is_leaf and x.requires_grad and x.grad_fn is None
        (x * x).sum().backward()
        return x, x.grad

    both(run)


def test_sgd_style_update_keeps_leaf():
    def run(lib):
        w = lib.tensor([1.0, -2.0], requires_grad=True)
        for _ in range(3):
            loss = (w * w).sum()
            loss.backward()
            with lib.no_grad():
                w.sub_(0.1 * w.grad)
            w.grad.zero_()
        return (w,)

    both(run)


# ------------------------------------------------------------------ version counter
def test_modified_output_saved_by_exp_raises_at_backward():
    x = cr.ones(3, requires_grad=True)
    a = x.exp()
    a.add_(1)  # exp saved its output
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation.*\[3\].*ExpBackward0"):
        a.sum().backward()
    xt = torch.ones(3, requires_grad=True)
    at = xt.exp()
    at.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        at.sum().backward()


def test_modified_input_saved_by_mul_raises_at_backward():
    for lib in (cr, torch):
        x = lib.ones(2, 3, requires_grad=True)
        w = lib.ones(2, 3)
        y = x * w  # saves w for x's gradient
        w.add_(1)
        with pytest.raises(RuntimeError, match="modified by an inplace operation") as info:
            y.sum().backward()
        if lib is cr:
            assert "MulBackward0" in str(info.value) and "[2, 3]" in str(info.value)


def test_modified_non_leaf_saved_by_mul_raises_at_backward():
    for lib in (cr, torch):
        x = lib.ones(3, requires_grad=True)
        w = lib.ones(3, requires_grad=True)
        h = x * 2
        z = h * w  # saves h
        h.add_(1)
        with pytest.raises(RuntimeError, match="is at version 1; expected version 0"):
            z.sum().backward()


def test_setitem_on_saved_tensor_raises_at_backward():
    for lib in (cr, torch):
        x = lib.ones(3, requires_grad=True)
        w = lib.ones(3)
        z = x * w
        w[0] = 3.0
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            z.sum().backward()


def test_modified_view_of_saved_tensor_raises_at_backward():
    for lib in (cr, torch):
        x = lib.ones(2, 3, requires_grad=True)
        y = x.sigmoid()  # saves its output
        y[0].mul_(2)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()


def test_inplace_not_saved_is_fine():
    def run(lib):
        x = lib.ones(3, requires_grad=True)
        y = x + 1  # add saves nothing
        y.add_(1)
        (y * 2).sum().backward()
        return y, x.grad

    both(run)


# ------------------------------------------------------------------ in-place changes of views
VIEW_UPDATES = {
    "slice_mul": lambda y, lib: y[1:].mul_(3),
    "row_add": lambda y, lib: y[0].add_(lib.tensor([1.0, 2.0, 3.0])),
    "column_clamp": lambda y, lib: y.T[0].clamp_(3, 5),
    "reshaped_add": lambda y, lib: y.view(3, 2).add_(1),
    "view_setitem": lambda y, lib: y[0].__setitem__(1, 7.0),
    "nested_view": lambda y, lib: y[:, 1:][0].mul_(-1),
    "two_views": lambda y, lib: (y[0].mul_(3), y[1].mul_(5)),
    "repeated": lambda y, lib: y[0].mul_(3).mul_(5),
}


@pytest.mark.parametrize("name", sorted(VIEW_UPDATES))
def test_inplace_on_view_changes_base_and_gradients(name):
    def run(lib):
        x = lib.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
        y = x * 2
        VIEW_UPDATES[name](y, lib)
        (y * y).sum().backward()
        return y, x.grad

    both(run)


def test_inplace_on_view_then_use_of_the_view():
    def run(lib):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x * 2
        v = y[1:]
        v.mul_(3)
        (v * v).sum().backward()
        return y, v, x.grad

    both(run)


def test_inplace_on_view_of_tensor_without_grad():
    def run(lib):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        out = lib.zeros(2, 3)
        out[0].copy_(x)
        out[1].add_(x * x)
        assert out.requires_grad and not out.is_leaf
        (out * out).sum().backward()
        return out, x.grad

    both(run)


def test_inplace_on_view_of_leaf_requiring_grad_raises():
    for lib in (cr, torch):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        with pytest.raises(RuntimeError, match="view of a leaf Variable that requires grad"):
            x[1:].add_(1)
        with lib.no_grad():
            x[1:].add_(1)
        assert x.tolist() == [1.0, 3.0, 4.0]


def test_inplace_on_expanded_view_raises():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    base = cr.zeros(1, 2)
    with pytest.raises(RuntimeError, match="single memory location"):
        base.expand(3, 2).add_(x)


def test_views_without_grad_share_memory():
    a = cr.ones(3)
    a[1:].add_(1)
    assert a.tolist() == [1.0, 2.0, 2.0]
    b = cr.zeros(2, 3)
    b.T[0].fill_(5)
    assert b.tolist() == [[5.0, 0.0, 0.0], [5.0, 0.0, 0.0]]


def test_view_taken_before_base_changed_sees_the_change_in_gradients():
    def run(lib):
        x = lib.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
        y = x * 2
        row = y[0]
        y.mul_(3)
        row.sum().backward()
        return row, x.grad

    both(run)


# ------------------------------------------------------------------ more in-place methods
UNARY_INPLACE = ["exp_", "log_", "sqrt_", "rsqrt_", "reciprocal_", "sin_", "cos_", "tanh_",
                 "sigmoid_", "relu_", "neg_", "abs_", "sign_", "floor_", "ceil_", "trunc_",
                 "round_", "square_"]


@pytest.mark.parametrize("name", UNARY_INPLACE)
def test_unary_inplace_values_and_gradients_like_torch(name):
    def run(lib):
        plain = lib.tensor([0.5, 1.5, 2.25])
        alias = plain
        assert getattr(plain, name)() is alias
        x = lib.tensor([0.5, 1.5, 2.25], requires_grad=True)
        y = x * 1
        getattr(y, name)()
        (y * lib.tensor([1.0, -2.0, 3.0])).sum().backward()
        return plain, y, x.grad

    both(run)


def test_unary_inplace_on_integer_tensor_refuses_float_result():
    for lib in (cr, torch):
        with pytest.raises(RuntimeError):
            lib.tensor([1, 2]).exp_()
    both(lambda lib: (lib.tensor([-1, 2]).abs_(), lib.tensor([-1, 2]).neg_()))


ARITH_INPLACE = {
    "addcmul_": lambda y, a, b, lib: y.addcmul_(a, b, value=0.5),
    "addcdiv_": lambda y, a, b, lib: y.addcdiv_(a, b, value=-2),
    "lerp_": lambda y, a, b, lib: y.lerp_(a, 0.25),
    "lerp_tensor_weight": lambda y, a, b, lib: y.lerp_(a, b / 10),
    "clamp_min_": lambda y, a, b, lib: y.clamp_min_(2.0),
    "clamp_max_": lambda y, a, b, lib: y.clamp_max_(2.0),
    "masked_fill_": lambda y, a, b, lib: y.masked_fill_(a > 1.5, -1.0),
    "masked_fill_tensor": lambda y, a, b, lib: y.masked_fill_(a > 1.5, b[0] * 2),
    "scatter_": lambda y, a, b, lib: y.scatter_(0, lib.tensor([2, 0]), b[:2]),
    "scatter_value": lambda y, a, b, lib: y.scatter_(0, lib.tensor([1]), value=5.0),
    "scatter_add_": lambda y, a, b, lib: y.scatter_add_(0, lib.tensor([2, 2, 0]), b),
    "index_fill_": lambda y, a, b, lib: y.index_fill_(0, lib.tensor([0, 2]), 7.0),
    "index_add_": lambda y, a, b, lib: y.index_add_(0, lib.tensor([1, 1, 0]), b, alpha=2),
}


@pytest.mark.parametrize("name", sorted(ARITH_INPLACE))
def test_more_inplace_ops_values_and_gradients_like_torch(name):
    def run(lib):
        x = lib.tensor([0.5, 1.5, 2.25], requires_grad=True)
        a = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        b = lib.tensor([4.0, -1.0, 0.5], requires_grad=True)
        plain = lib.tensor([0.5, 1.5, 2.25])
        ARITH_INPLACE[name](plain, a.detach(), b.detach(), lib)
        y = x * 1
        assert ARITH_INPLACE[name](y, a, b, lib) is y
        (y * lib.tensor([1.0, -2.0, 3.0])).sum().backward()
        return plain, y, x.grad, a.grad, b.grad

    both(run)


def test_optimizer_style_moment_updates_like_torch():
    def run(lib):
        p = lib.tensor([1.0, -2.0, 3.0])
        m, v = lib.zeros(3), lib.zeros(3)
        g = lib.tensor([0.1, -0.2, 0.3])
        for _ in range(3):
            m.mul_(0.9).add_(g, alpha=0.1)
            v.mul_(0.999).addcmul_(g, g, value=0.001)
            p.addcdiv_(m, v.sqrt().add_(1e-8), value=-0.01)
        return p, m, v

    both(run)


# ------------------------------------------------------------------ in-place random fills
RANDOM_FILLS = {
    "uniform_": lambda x, g: x.uniform_(-2.0, 3.0, generator=g),
    "normal_": lambda x, g: x.normal_(1.0, 0.5, generator=g),
    "bernoulli_": lambda x, g: x.bernoulli_(0.3, generator=g),
    "exponential_": lambda x, g: x.exponential_(2.0, generator=g),
    "random_": lambda x, g: x.random_(1, 6, generator=g),
}


@pytest.mark.parametrize("name", sorted(RANDOM_FILLS))
def test_random_fill_is_in_place_reproducible_and_keeps_dtype(name):
    fill = RANDOM_FILLS[name]
    x = cr.full((1000,), float("inf"), dtype=cr.float64)
    assert fill(x, cr.Generator().manual_seed(4)) is x
    assert x.dtype == cr.float64 and bool(cr.isfinite(x).all())
    y = cr.empty(1000, dtype=cr.float64)
    fill(y, cr.Generator().manual_seed(4))
    assert x.tolist() == y.tolist()
    cr.manual_seed(8)
    a = fill(cr.empty(5), None)
    cr.manual_seed(8)
    assert fill(cr.empty(5), None).tolist() == a.tolist()


def test_random_fill_distributions():
    g = cr.Generator().manual_seed(0)
    u = cr.empty(20000, dtype=cr.float64).uniform_(-2.0, 3.0, generator=g).numpy()
    assert u.min() >= -2 and u.max() < 3 and abs(u.mean() - 0.5) < 0.05
    n = cr.empty(20000, dtype=cr.float64).normal_(1.0, 0.5, generator=g).numpy()
    assert abs(n.mean() - 1) < 0.02 and abs(n.std() - 0.5) < 0.02
    b = cr.empty(20000).bernoulli_(0.3, generator=g).numpy()
    assert set(np.unique(b).tolist()) == {0.0, 1.0} and abs(b.mean() - 0.3) < 0.02
    e = cr.empty(20000, dtype=cr.float64).exponential_(2.0, generator=g).numpy()
    assert e.min() >= 0 and abs(e.mean() - 0.5) < 0.02
    r = cr.empty(2000, dtype=cr.int64).random_(1, 6, generator=g).numpy()
    assert set(np.unique(r).tolist()) == {1, 2, 3, 4, 5}
    assert set(np.unique(cr.empty(2000).random_(3, generator=g).numpy()).tolist()) == {0, 1, 2}


def test_random_fill_on_leaf_requiring_grad_needs_no_grad():
    for lib in (cr, torch):
        w = lib.empty(3, requires_grad=True)
        with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
            w.normal_()
        with lib.no_grad():
            w.uniform_(-1.0, 1.0)
        assert w.requires_grad and w.is_leaf and float(w.detach().abs().max()) <= 1


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # 0 * inf
def test_fill_of_non_leaf_gives_zero_gradient_even_through_inf():
    def run(lib):
        x = lib.tensor([0.0, 1.0], requires_grad=True)
        y = x.exp() * lib.tensor([float("inf"), 1.0])
        y.fill_(1.0)
        (y * 3).sum().backward()
        return y, x.grad

    both(run)
