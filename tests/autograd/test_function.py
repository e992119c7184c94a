"""Custom Functions with PyTorch's semantics, and graphs that leave no reference cycles."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import chainrule as cr
from chainrule.autograd import Function, gradcheck, gradgradcheck, once_differentiable


class MyReLU(Function):
    """PyTorch's tutorial example, unchanged."""

    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return input.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_output):
        (input,) = ctx.saved_tensors
        grad_input = grad_output.clone()
        grad_input[input < 0] = 0
        return grad_input


class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        result = x.exp()
        ctx.save_for_backward(result)
        return result

    @staticmethod
    def backward(ctx, grad_output):
        (result,) = ctx.saved_tensors
        return grad_output * result


class ScaledSquare(Function):
    """Non-tensor arguments, ctx attributes and needs_input_grad."""

    @staticmethod
    def forward(ctx, x, scale, w):
        ctx.scale = scale
        ctx.save_for_backward(x, w)
        return scale * x * x * w

    @staticmethod
    def backward(ctx, grad_output):
        x, w = ctx.saved_tensors
        gx = grad_output * 2 * ctx.scale * x * w if ctx.needs_input_grad[0] else None
        gw = grad_output * ctx.scale * x * x if ctx.needs_input_grad[2] else None
        return gx, None, gw


class Square(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return 2 * x * grad_output


class SortWithIndices(Function):
    @staticmethod
    def forward(ctx, x):
        order = cr.tensor(np.argsort(x.detach().numpy()))
        ctx.mark_non_differentiable(order)
        ctx.save_for_backward(order)
        return x[order], order

    @staticmethod
    def backward(ctx, grad_values, grad_order):
        (order,) = ctx.saved_tensors
        grad = cr.zeros_like(grad_values)
        grad[order] = grad_values
        return grad


class Split(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.set_materialize_grads(False)
        return x * 2, x * 3

    @staticmethod
    def backward(ctx, grad_a, grad_b):
        total = None
        for grad, factor in ((grad_a, 2), (grad_b, 3)):
            if grad is not None:
                total = grad * factor if total is None else total + grad * factor
        return total


def test_my_relu_matches_builtin_relu():
    x = cr.randn(20, dtype=cr.float64, requires_grad=True)
    weights = cr.randn(20, dtype=cr.float64)
    ours = MyReLU.apply(x)
    (ours * weights).sum().backward()
    ours_grad = x.grad.clone()
    x.grad = None
    builtin = cr.relu(x)
    (builtin * weights).sum().backward()
    np.testing.assert_array_equal(ours.detach().numpy(), builtin.detach().numpy())
    np.testing.assert_array_equal(ours_grad.numpy(), x.grad.numpy())
    assert ours.grad_fn.name() == "MyReLUBackward"


def test_my_relu_matches_torch():
    torch = pytest.importorskip("torch")

    class TorchReLU(torch.autograd.Function):
        forward = staticmethod(MyReLU.forward)
        backward = staticmethod(MyReLU.backward)

    data = np.random.default_rng(0).standard_normal(10)
    x = cr.tensor(data, requires_grad=True)
    tx = torch.tensor(data, requires_grad=True)
    MyReLU.apply(x).sum().backward()
    TorchReLU.apply(tx).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


def test_function_gradients_pass_gradcheck_and_second_order():
    x = cr.randn(4, dtype=cr.float64, requires_grad=True)
    assert gradcheck(Exp.apply, (x,))
    assert gradgradcheck(Exp.apply, (x,))


def test_non_tensor_arguments_and_needs_input_grad():
    x = cr.randn(3, dtype=cr.float64, requires_grad=True)
    w = cr.randn(3, dtype=cr.float64)
    assert gradcheck(lambda t: ScaledSquare.apply(t, 1.5, w), (x,))
    w.requires_grad_()
    assert gradcheck(lambda t, u: ScaledSquare.apply(t, 0.5, u), (x, w))


def test_once_differentiable_raises_when_differentiated_twice():
    x = cr.tensor(1.5, dtype=cr.float64, requires_grad=True)
    (g,) = cr.autograd.grad(Square.apply(x), x, create_graph=True)
    assert g.item() == 3.0
    with pytest.raises(RuntimeError, match="once_differentiable"):
        cr.autograd.grad(g, x)


def test_mark_non_differentiable_output():
    x = cr.tensor([3.0, 1.0, 2.0], requires_grad=True)
    values, order = SortWithIndices.apply(x)
    assert not order.requires_grad and values.requires_grad
    (values * cr.tensor([1.0, 10.0, 100.0])).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [100.0, 1.0, 10.0])


def test_multiple_outputs_and_unmaterialized_grads():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    a, b = Split.apply(x)
    (a.sum() + 10 * b.sum()).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [32.0, 32.0])
    x.grad = None
    a, _ = Split.apply(x)
    a.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])


def test_saved_tensors_are_freed_and_version_checked():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = Exp.apply(x)
    y.sum().backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.sum().backward()
    h = x * 1
    z = MyReLU.apply(h)
    with cr.no_grad():
        h.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


def _graph_refs(loss):
    refs, stack, seen = [], [loss.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen or isinstance(node, cr.Tensor):
            continue
        seen.add(id(node))
        refs.append(weakref.ref(node))
        stack.extend(node.edges)
    return refs


def test_create_graph_leaves_no_reference_cycle():
    x = cr.randn(5, dtype=cr.float64, requires_grad=True)
    gc.collect()
    gc.disable()
    try:
        loss = (x.tanh() * x.exp()).sum()
        (g,) = cr.autograd.grad(loss, x, create_graph=True)
        second = (g * g).sum()
        refs = _graph_refs(loss) + _graph_refs(second)
        assert refs
        del loss, g, second
        assert all(ref() is None for ref in refs), "graph kept alive without the collector"
    finally:
        gc.enable()


def test_backward_create_graph_graph_is_collectable():
    x = cr.randn(5, dtype=cr.float64, requires_grad=True)
    loss = (x.sin() * x).sum()
    loss.backward(create_graph=True)
    refs = _graph_refs(loss)
    del loss
    x.grad = None
    gc.collect()
    assert all(ref() is None for ref in refs)


def test_third_derivative_of_tanh():
    x = cr.tensor(0.3, dtype=cr.float64, requires_grad=True)
    y = x.tanh()
    (d1,) = cr.autograd.grad(y, x, create_graph=True)
    (d2,) = cr.autograd.grad(d1, x, create_graph=True)
    (d3,) = cr.autograd.grad(d2, x)
    t = np.tanh(0.3)
    # d/dx tanh = 1 - t^2; d2 = -2t(1 - t^2); d3 = (6t^2 - 2)(1 - t^2)
    assert d1.item() == pytest.approx(1 - t * t, rel=1e-14)
    assert d2.item() == pytest.approx(-2 * t * (1 - t * t), rel=1e-14)
    assert d3.item() == pytest.approx((6 * t * t - 2) * (1 - t * t), rel=1e-13)
