"""Functional transforms against torch.autograd.functional and torch.func, and forward mode."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
import chainrule.autograd.forward_ad as fwAD
from chainrule import func as crfunc
from chainrule.autograd import functional as F

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(7)
A = RNG.standard_normal((3, 4))
X = RNG.standard_normal(4)
Y = RNG.standard_normal((2, 3))


def f_vector(lib, x):
    return lib.tanh(lib.tensor(A) @ x) * x[:3].exp()


def f_scalar(lib, x):
    return (x.sin() * x).sum() + (lib.tensor(A) @ x).pow(2).sum() * x.prod()


def f_two(lib, x, y):
    return (y @ lib.tensor(A) @ x).logsumexp(0) + (y * y).sum() * x.norm()


def both(fn):
    def run(lib, *arrays):
        return fn(lib, *[lib.tensor(a) for a in arrays])
    return run


def assert_nested_close(ours, theirs, rtol=1e-10, atol=1e-12):
    if isinstance(theirs, (tuple, list)):
        assert isinstance(ours, tuple) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            assert_nested_close(a, b, rtol, atol)
        return
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=rtol, atol=atol)


def test_jacobian_matches_torch_both_strategies():
    expected = torch.autograd.functional.jacobian(lambda x: f_vector(torch, x), torch.tensor(X))
    for strategy in ("reverse-mode", "forward-mode"):
        ours = F.jacobian(lambda x: f_vector(cr, x), cr.tensor(X), strategy=strategy)
        assert_nested_close(ours, expected)


def test_jacobian_of_several_inputs_and_outputs():
    def ours_fn(x, y):
        return f_vector(cr, x), (y * x[:3]).sum(1)

    def torch_fn(x, y):
        return f_vector(torch, x), (y * x[:3]).sum(1)

    ours = F.jacobian(ours_fn, (cr.tensor(X), cr.tensor(Y)))
    expected = torch.autograd.functional.jacobian(torch_fn, (torch.tensor(X), torch.tensor(Y)))
    assert_nested_close(ours, expected)


def test_hessian_matches_torch():
    ours = F.hessian(lambda x: f_scalar(cr, x), cr.tensor(X))
    expected = torch.autograd.functional.hessian(lambda x: f_scalar(torch, x), torch.tensor(X))
    assert_nested_close(ours, expected)
    ours2 = F.hessian(lambda x, y: f_two(cr, x, y), (cr.tensor(X), cr.tensor(Y)))
    expected2 = torch.autograd.functional.hessian(lambda x, y: f_two(torch, x, y),
                                                  (torch.tensor(X), torch.tensor(Y)))
    assert_nested_close(ours2, expected2)


@pytest.mark.parametrize("name", ["vjp", "jvp", "hvp", "vhp"])
def test_products_match_torch(name):
    if name == "vjp":
        v = RNG.standard_normal(3)
        ours = F.vjp(lambda x: f_vector(cr, x), cr.tensor(X), cr.tensor(v))
        theirs = torch.autograd.functional.vjp(lambda x: f_vector(torch, x), torch.tensor(X),
                                               torch.tensor(v))
    elif name == "jvp":
        v = RNG.standard_normal(4)
        ours = F.jvp(lambda x: f_vector(cr, x), cr.tensor(X), cr.tensor(v))
        theirs = torch.autograd.functional.jvp(lambda x: f_vector(torch, x), torch.tensor(X),
                                               torch.tensor(v))
    else:
        v = RNG.standard_normal(4)
        ours = getattr(F, name)(lambda x: f_scalar(cr, x), cr.tensor(X), cr.tensor(v))
        theirs = getattr(torch.autograd.functional, name)(lambda x: f_scalar(torch, x),
                                                           torch.tensor(X), torch.tensor(v))
    assert_nested_close(ours, theirs)


def test_strict_mode_reports_independent_input():
    with pytest.raises(RuntimeError, match="independent of input 1"):
        F.jacobian(lambda x, y: x * 2, (cr.tensor(X), cr.tensor(X)), strict=True)


def test_create_graph_keeps_results_differentiable():
    x = cr.tensor(X, requires_grad=True)
    jac = F.jacobian(lambda t: f_vector(cr, t), x, create_graph=True)
    jac.sum().backward()
    tx = torch.tensor(X, requires_grad=True)
    torch.autograd.functional.jacobian(lambda t: f_vector(torch, t), tx, create_graph=True).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10)


# ------------------------------------------------------------------ chainrule.func
def test_func_grad_nested_and_argnums():
    x = cr.tensor(0.5)
    second = crfunc.grad(crfunc.grad(lambda t: t.sin()))(x)
    assert second.item() == pytest.approx(-np.sin(0.5), rel=1e-6)
    a, b = cr.tensor(X), cr.tensor(X[::-1].copy())
    ga, gb = crfunc.grad(lambda p, q: (p * q).sum(), argnums=(0, 1))(a, b)
    np.testing.assert_array_equal(ga.numpy(), b.numpy())
    np.testing.assert_array_equal(gb.numpy(), a.numpy())


def test_func_grad_and_value_with_aux():
    (g, (value, aux)) = crfunc.grad_and_value(lambda t: ((t * t).sum(), t.mean()), has_aux=True)(
        cr.tensor(X))
    np.testing.assert_allclose(g.numpy(), 2 * X)
    assert value.item() == pytest.approx((X * X).sum())
    assert aux.item() == pytest.approx(X.mean())


def test_func_transforms_match_torch_func():
    x_ours, x_torch = cr.tensor(X), torch.tensor(X)
    v = RNG.standard_normal(4)
    cases = [
        (crfunc.jacrev(lambda t: f_vector(cr, t))(x_ours),
         torch.func.jacrev(lambda t: f_vector(torch, t))(x_torch)),
        (crfunc.jacfwd(lambda t: f_vector(cr, t))(x_ours),
         torch.func.jacfwd(lambda t: f_vector(torch, t))(x_torch)),
        (crfunc.hessian(lambda t: f_scalar(cr, t))(x_ours),
         torch.func.hessian(lambda t: f_scalar(torch, t))(x_torch)),
        (crfunc.jvp(lambda t: f_vector(cr, t), (x_ours,), (cr.tensor(v),))[1],
         torch.func.jvp(lambda t: f_vector(torch, t), (x_torch,), (torch.tensor(v),))[1]),
    ]
    out, fn = crfunc.vjp(lambda t: f_vector(cr, t), x_ours)
    tout, tfn = torch.func.vjp(lambda t: f_vector(torch, t), x_torch)
    u = RNG.standard_normal(3)
    cases.append((fn(cr.tensor(u))[0], tfn(torch.tensor(u))[0]))
    for ours, theirs in cases:
        assert_nested_close(ours, theirs)


# ------------------------------------------------------------------ forward mode
def test_forward_mode_matches_reverse_mode_identity():
    # <u, J v> computed forward equals <J^T u, v> computed backward
    v = cr.tensor(RNG.standard_normal(4))
    u = cr.tensor(RNG.standard_normal(3))
    with fwAD.dual_level():
        jv = fwAD.unpack_dual(f_vector(cr, fwAD.make_dual(cr.tensor(X), v))).tangent
    x = cr.tensor(X, requires_grad=True)
    (jtu,) = cr.autograd.grad(f_vector(cr, x), x, u)
    assert (u * jv).sum().item() == pytest.approx((jtu * v).sum().item(), rel=1e-12)


def test_dual_level_drops_tangents_and_checks_shapes():
    x = cr.tensor(X)
    with fwAD.dual_level():
        dual = fwAD.make_dual(x, cr.ones(4, dtype=cr.float64))
        assert fwAD.unpack_dual(dual).tangent is not None
        with pytest.raises(RuntimeError, match="shape"):
            fwAD.make_dual(x, cr.ones(3, dtype=cr.float64))
    assert fwAD.unpack_dual(dual).tangent is None
    assert fwAD.unpack_dual(x).tangent is None
    with pytest.raises(RuntimeError, match="dual_level"):
        fwAD.make_dual(x, x)


def test_forward_over_reverse_gives_hessian_vector_products():
    v = cr.tensor(RNG.standard_normal(4))
    x = cr.tensor(X, requires_grad=True)
    with fwAD.dual_level():
        (g,) = cr.autograd.grad(f_scalar(cr, fwAD.make_dual(x, v)), x, create_graph=True)
        forward_over_reverse = fwAD.unpack_dual(g).tangent
    _, expected = torch.autograd.functional.hvp(lambda t: f_scalar(torch, t), torch.tensor(X),
                                                torch.tensor(v.numpy()))
    np.testing.assert_allclose(forward_over_reverse.detach().numpy(), expected.numpy(), rtol=1e-10)
    ours = F.hessian(lambda t: f_scalar(cr, t), cr.tensor(X), outer_jacobian_strategy="forward-mode")
    theirs = torch.autograd.functional.hessian(lambda t: f_scalar(torch, t), torch.tensor(X))
    assert_nested_close(ours, theirs)
