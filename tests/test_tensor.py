"""The Tensor surface (tensor.py, _tensor_methods.py) against PyTorch: attributes, NumPy
interop, history tools (detach, data, clone, retain_grad, hooks), grad_fn names, repr and
the errors a user mistake gets."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")


def same(c: cr.Tensor, t: torch.Tensor) -> None:
    """Equal values, shape and dtype (dtype names compared)."""
    assert str(c.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
    assert tuple(c.shape) == tuple(t.shape)
    np.testing.assert_allclose(c.detach().numpy(), t.detach().numpy(), rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------ attributes
def test_shape_size_dim_numel_match_torch():
    data = np.arange(24.0).reshape(2, 3, 4)
    c, t = cr.tensor(data), torch.tensor(data)
    assert c.shape == tuple(t.shape) and c.size() == tuple(t.size())
    assert isinstance(c.shape, cr.Size) and isinstance(c.shape, tuple)
    for d in range(-3, 3):
        assert c.size(d) == t.size(d) and c.shape[d] == t.shape[d]
    assert (c.dim(), c.ndim, c.numel(), len(c)) == (t.dim(), t.ndim, t.numel(), len(t))
    assert c.shape.numel() == 24
    assert repr(cr.Size([2, 3])) == repr(torch.Size([2, 3])).replace("torch.", "chainrule.")


@pytest.mark.parametrize("dim", [3, -4])
def test_size_of_missing_dim_names_range(dim):
    with pytest.raises(IndexError, match=r"range of \[-3, 2\], but got " + str(dim)):
        cr.zeros(2, 3, 4).size(dim)
    with pytest.raises(IndexError):
        torch.zeros(2, 3, 4).size(dim)


def test_zero_dim_tensor_attributes():
    c, t = cr.tensor(2.5), torch.tensor(2.5)
    assert (c.shape, c.dim(), c.numel()) == (tuple(t.shape), t.dim(), t.numel())
    for lib_tensor in (c, t):
        with pytest.raises(IndexError, match="(?i)dimension specified as 0 but tensor has no dim"):
            lib_tensor.size(0)
        with pytest.raises(TypeError):
            len(lib_tensor)


def test_T_and_mT_match_torch():
    data = np.arange(24.0).reshape(2, 3, 4)
    c, t = cr.tensor(data), torch.tensor(data)
    same(c[0].T, t[0].T)
    same(c.mT, t.mT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch deprecates .T on ndim != 2
        same(c.T, t.T)


def test_mT_of_vector_raises_like_torch():
    for lib in (cr, torch):
        with pytest.raises(RuntimeError, match="only supported on matrices"):
            _ = lib.ones(3).mT


def test_T_and_mT_carry_gradients():
    x = cr.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    xt = torch.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    w = np.arange(6.0).reshape(3, 2)
    (x.T * cr.tensor(w)).sum().backward()
    (xt.T * torch.tensor(w)).sum().backward()
    same(x.grad, xt.grad)


def test_item_and_tolist():
    assert cr.tensor(2.5).item() == torch.tensor(2.5).item()
    assert type(cr.tensor([5]).item()) is int
    assert cr.tensor(True).item() is True
    data = [[1.5, 2.0], [3.0, -4.25]]
    assert cr.tensor(data).tolist() == torch.tensor(data).tolist()
    assert cr.tensor([[1, 2]], dtype=cr.int32).tolist() == [[1, 2]]
    assert cr.tensor(2.5).tolist() == 2.5


def test_item_of_many_elements_names_count_and_shape():
    with pytest.raises(RuntimeError, match=r"2 elements.*\(1, 2\)"):
        cr.tensor([[1.0, 2.0]]).item()


def test_python_conversions():
    assert float(cr.tensor(2.5)) == 2.5 and int(cr.tensor(3.7)) == 3
    assert bool(cr.tensor([1])) and not bool(cr.tensor(0.0))
    assert [v.item() for v in cr.arange(3)] == [0, 1, 2]
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(cr.ones(2))


# ------------------------------------------------------------------ NumPy interop
def test_numpy_shares_memory():
    x = cr.tensor([1.0, 2.0])
    n = x.numpy()
    n[0] = 9.0
    assert x.tolist() == [9.0, 2.0]


def test_numpy_refuses_tensor_requiring_grad_as_torch():
    message = "Can't call numpy() on Tensor that requires grad"
    with pytest.raises(RuntimeError, match=re.escape(message)):
        torch.ones(2, requires_grad=True).numpy()
    with pytest.raises(RuntimeError, match=re.escape(message)):
        cr.ones(2, requires_grad=True).numpy()
    assert cr.ones(2, requires_grad=True).detach().numpy().tolist() == [1.0, 1.0]


def test_np_asarray_via_array_protocol():
    x = cr.tensor([[1.0, 2.0], [3.0, 4.0]])
    a = np.asarray(x)
    assert a.dtype == np.float32 and a.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    a[0, 0] = 7.0  # asarray shares memory, as torch's does
    assert x[0, 0].item() == 7.0
    assert np.asarray(x, dtype=np.float64).dtype == np.float64
    copied = np.array(x, copy=True)
    copied[0, 0] = -1.0
    assert x[0, 0].item() == 7.0


def test_np_asarray_refuses_tensor_requiring_grad_as_torch():
    with pytest.raises(RuntimeError):
        np.asarray(torch.ones(2, requires_grad=True))
    with pytest.raises(RuntimeError, match="requires grad"):
        np.asarray(cr.ones(2, requires_grad=True))


# ------------------------------------------------------------------ requires_grad, leaves
def test_leaf_and_non_leaf_flags():
    for lib in (cr, torch):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = x * 2
        assert (x.is_leaf, x.requires_grad, x.grad_fn) == (True, True, None)
        assert (y.is_leaf, y.requires_grad) == (False, True)
        z = lib.tensor([1.0, 2.0])
        assert (z.is_leaf, z.requires_grad) == (True, False)


def test_requires_grad_underscore_and_setter():
    x = cr.tensor([1.0, 2.0])
    assert x.requires_grad_() is x and x.requires_grad
    x.requires_grad = False
    assert not x.requires_grad
    x.requires_grad_(True)
    assert repr(x) == "tensor([1., 2.], requires_grad=True)"


def test_requires_grad_false_on_non_leaf_raises_like_torch():
    for lib in (cr, torch):
        y = lib.ones(2, requires_grad=True) * 2
        with pytest.raises(RuntimeError, match="only change requires_grad flags of leaf"):
            y.requires_grad_(False)


@pytest.mark.parametrize("make", [
    lambda lib: lib.tensor([1, 2], requires_grad=True),
    lambda lib: lib.tensor([1, 2]).requires_grad_(),
    lambda lib: lib.zeros(2, dtype=lib.int64, requires_grad=True),
    lambda lib: lib.arange(3, requires_grad=True),
    lambda lib: lib.tensor([True], requires_grad=True),
], ids=["tensor", "requires_grad_", "zeros", "arange", "bool"])
def test_requires_grad_on_integer_tensor_raises(make):
    pattern = "only tensors of floating point.* dtype can require gradients"
    with pytest.raises(RuntimeError, match=re.compile(pattern, re.IGNORECASE)):
        make(torch)
    with pytest.raises(RuntimeError, match=re.compile(pattern, re.IGNORECASE)) as info:
        make(cr)
    assert "chainrule." in str(info.value) and "shape" in str(info.value)


# ------------------------------------------------------------------ detach, data, clone
def test_detach_shares_storage_and_is_cut_from_graph():
    for lib in (cr, torch):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        d = x.detach()
        assert (d.requires_grad, d.is_leaf, d.grad_fn) == (False, True, None)
        d[0] = 5.0
        assert x.tolist() == [5.0, 2.0]


def test_detach_shares_version_counter_so_saved_change_is_caught():
    for lib in (cr, torch):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = x * x  # saves x
        x.detach().add_(1.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()


def test_data_shares_storage_but_not_version_counter():
    for lib in (cr, torch):
        x = lib.ones(3, requires_grad=True)
        w = lib.ones(3)
        z = x * w  # saves w
        w.data.add_(1.0)  # invisible to autograd, as in PyTorch
        z.sum().backward()
        assert x.grad.tolist() == [2.0, 2.0, 2.0]
        d = x.data
        assert (d.requires_grad, d.grad_fn) == (False, None)
        d[0] = 7.0
        assert x[0].item() == 7.0


def test_data_update_on_leaf_requiring_grad_is_allowed():
    x = cr.ones(3, requires_grad=True)
    x.data.mul_(0.5)
    x.data[0] = 2.0
    assert x.tolist() == [2.0, 0.5, 0.5] and x.requires_grad and x.is_leaf


def test_data_setter_replaces_values():
    x = cr.ones(3, requires_grad=True)
    x.data = cr.zeros(2)
    assert x.tolist() == [0.0, 0.0] and x.requires_grad


def test_detach_underscore():
    for lib in (cr, torch):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = x * 2
        assert y.detach_() is y
        assert (y.is_leaf, y.grad_fn, y.requires_grad) == (True, None, False)
        assert repr(y).replace("torch.", "chainrule.") == "tensor([2., 4.])"


def test_clone_copies_and_gradient_flows_back():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    xt = torch.tensor([1.0, 2.0], requires_grad=True)
    c, ct = x.clone(), xt.clone()
    assert c.grad_fn.name() == ct.grad_fn.name() == "CloneBackward0"
    (c * c * 3).sum().backward()
    (ct * ct * 3).sum().backward()
    same(x.grad, xt.grad)
    plain = cr.tensor([1.0, 2.0])
    copy = plain.clone()
    copy[0] = 9.0
    assert plain.tolist() == [1.0, 2.0]


# ------------------------------------------------------------------ grad, retain_grad, hooks
def test_grad_accumulates_and_zero_():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    xt = torch.tensor([1.0, 2.0], requires_grad=True)
    for _ in range(2):
        (x * x).sum().backward()
        (xt * xt).sum().backward()
    same(x.grad, xt.grad)
    x.grad.zero_()
    assert x.grad.tolist() == [0.0, 0.0]
    assert x.grad.requires_grad is False


def test_non_leaf_grad_is_none_without_retain_grad():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    (y * y).sum().backward()
    assert y.grad is None and not y.retains_grad


def test_retain_grad_matches_torch():
    def run(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = x * 2
        y.retain_grad()
        (y * y).sum().backward()
        assert y.retains_grad
        return y.grad, x.grad

    for c, t in zip(run(cr), run(torch)):
        same(c, t)


def test_retain_grad_on_leaf_is_a_no_op():
    x = cr.tensor([1.0], requires_grad=True)
    x.retain_grad()
    (x * 3).sum().backward()
    assert x.grad.tolist() == [3.0]


def test_hook_on_leaf_replaces_gradient():
    def run(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        x.register_hook(lambda g: g * 10)
        (x * x).sum().backward()
        return x.grad

    same(run(cr), run(torch))


def test_hook_on_non_leaf_replaces_gradient_downstream():
    def run(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = x * 2
        seen = []
        y.register_hook(lambda g: seen.append(g.clone()))
        y.register_hook(lambda g: g * 10)
        (y * y).sum().backward()
        return seen[0], x.grad

    for c, t in zip(run(cr), run(torch)):
        same(c, t)


def test_removed_hook_is_not_called():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    handle = x.register_hook(lambda g: g * 10)
    handle.remove()
    (x * x).sum().backward()
    assert x.grad.tolist() == [2.0, 4.0]


def test_hook_on_tensor_without_grad_raises():
    for lib in (cr, torch):
        with pytest.raises(RuntimeError, match="doesn't require"):
            lib.ones(2).register_hook(lambda g: g)


# ------------------------------------------------------------------ grad_fn names
NAMES_MATCHING = {
    "mul": lambda x: x * x, "mul_scalar": lambda x: x * 2, "add": lambda x: x + x,
    "add_scalar": lambda x: x + 1, "sub": lambda x: x - x, "div": lambda x: x / x,
    "div_scalar": lambda x: x / 2, "sum": lambda x: x.sum(), "mean": lambda x: x.mean(),
    "exp": lambda x: x.exp(), "log": lambda x: x.log(), "tanh": lambda x: x.tanh(),
    "sigmoid": lambda x: x.sigmoid(), "relu": lambda x: x.relu(), "neg": lambda x: -x,
    "pow": lambda x: x ** 2, "sqrt": lambda x: x.sqrt(), "abs": lambda x: x.abs(),
    "sin": lambda x: x.sin(), "clone": lambda x: x.clone(), "to": lambda x: x.double(),
    "reshape": lambda x: x.reshape(1, 2), "view": lambda x: x.view(2, 1),
    "expand": lambda x: x.expand(3, 2), "cat": lambda x: cr_or_torch(x).cat([x, x]),
    "amax": lambda x: x.amax(), "clamp": lambda x: x.clamp(0, 1),
    "where": lambda x: cr_or_torch(x).where(x > 1, x, x * 0), "T": lambda x: x.reshape(1, 2).T,
    "mm": lambda x: x.reshape(1, 2).mm(x.reshape(2, 1)), "prod": lambda x: x.prod(),
    "softmax": lambda x: x.softmax(0), "cumsum": lambda x: x.cumsum(0),
    "index_advanced": lambda x: x[[0, 1]], "flip": lambda x: x.flip(0),
    # names that depend on the call (a function of the node, autograd/graph.py Node.name)
    "sum_dim": lambda x: x.sum(0), "mean_dim": lambda x: x.mean(0), "prod_dim": lambda x: x.prod(0),
    "select": lambda x: x[0], "slice": lambda x: x[1:], "index_step": lambda x: x[::2],
    "index_alias": lambda x: x[...], "index_none": lambda x: x[None],
    "index_mask": lambda x: x[x > 1], "narrow": lambda x: x.narrow(0, 1, 1),
    "dot": lambda x: x @ x, "mv": lambda x: x.reshape(1, 2) @ x,
    "vector_matrix": lambda x: x @ x.reshape(2, 1),
    "matmul_batched": lambda x: x.reshape(1, 1, 2) @ x.reshape(1, 2, 1),
    # PyTorch's names for ops that chainrule composes or shares a kernel between
    "sub_scalar": lambda x: x - 1, "rsub_scalar": lambda x: 1 - x,
    "unsqueeze": lambda x: x.unsqueeze(0), "squeeze": lambda x: x.reshape(1, 2).squeeze(),
    "squeeze_dim": lambda x: x.reshape(1, 2).squeeze(0),
    "squeeze_dims": lambda x: x.reshape(1, 2).squeeze((0,)),
    "transpose": lambda x: x.reshape(1, 2).transpose(0, 1), "mT": lambda x: x.reshape(1, 2).mT,
    "t": lambda x: x.reshape(1, 2).t(), "t_1d": lambda x: x.t(),
    "permute": lambda x: x.reshape(1, 2).permute(1, 0), "max": lambda x: x.max(),
    "min": lambda x: x.min(), "var": lambda x: x.var(), "var_dim": lambda x: x.var(0),
    "std": lambda x: x.std(), "stack": lambda x: cr_or_torch(x).stack([x, x]),
    "bmm": lambda x: cr_or_torch(x).bmm(x.reshape(1, 1, 2), x.reshape(1, 2, 1)),
    "index_select": lambda x: x.index_select(0, cr_or_torch(x).tensor([1, 0])),
    "roll": lambda x: x.roll(1), "pow_tensor": lambda x: x ** x, "rpow": lambda x: 2 ** x,
    "log1p": lambda x: x.log1p(), "norm": lambda x: x.norm(),
    "div_floor": lambda x: cr_or_torch(x).div(x, x, rounding_mode="floor"),
    "log_softmax": lambda x: x.log_softmax(0), "logsumexp": lambda x: x.logsumexp(0),
    "gather": lambda x: x.gather(0, cr_or_torch(x).tensor([1, 0])),
    "max_dim": lambda x: x.max(0).values, "min_dim": lambda x: x.min(0)[0],
    "repeat": lambda x: x.repeat(2), "masked_fill": lambda x: x.masked_fill(x > 1, 0.0),
    "split": lambda x: x.split(1)[1], "split_with_sizes": lambda x: x.split([1, 1])[0],
    "chunk": lambda x: x.chunk(2)[0], "unbind": lambda x: x.unbind()[1],
}


def cr_or_torch(x):
    return cr if isinstance(x, cr.Tensor) else torch


@pytest.mark.parametrize("name", sorted(NAMES_MATCHING))
def test_grad_fn_name_matches_torch(name):
    fn = NAMES_MATCHING[name]
    c = fn(cr.tensor([1.0, 2.0], requires_grad=True))
    t = fn(torch.tensor([1.0, 2.0], requires_grad=True))
    assert c.grad_fn.name() == t.grad_fn.name() == type(t.grad_fn).__name__
    assert f"grad_fn=<{t.grad_fn.name()}>" in repr(c)


def test_grad_fn_name_of_the_call_survives_backward():
    # names that depend on the call read the node's params and input shapes, never the
    # saved arrays that backward frees
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    dot, total = x @ x, x.sum(0)
    (dot + total).backward()
    assert (dot.grad_fn.name(), total.grad_fn.name()) == ("DotBackward0", "SumBackward1")


def test_no_grad_fn_without_grad_or_under_no_grad():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    assert (cr.tensor([1.0]) * 2).grad_fn is None
    with cr.no_grad():
        y = x * 2
    assert y.grad_fn is None and not y.requires_grad


# ------------------------------------------------------------------ repr
REPR_CASES = [
    "lib.tensor([1., 2.])",
    "lib.tensor([3.5, -7., 14.])",
    "lib.tensor([1., 2.], requires_grad=True)",
    "lib.tensor([1., 2.], requires_grad=True) * 2",
    "(lib.tensor([1., 2.], requires_grad=True) * 2).sum()",
    "lib.tensor([1., 2.], requires_grad=True) + 1",
    "lib.tensor([1, 2])",
    "lib.tensor([True, False])",
    "lib.tensor(3.)",
    "lib.tensor(3)",
    "lib.tensor(-0.)",
    "lib.tensor([[1.5, 2], [3, 4]])",
    "lib.tensor([[1., -2.], [300., 4.]])",
    "lib.tensor([[1, -2], [300, 4]])",
    "lib.tensor([1., 2.], dtype=lib.float64)",
    "lib.tensor([1., 2.], dtype=lib.float64, requires_grad=True)",
    "lib.tensor([1, 2], dtype=lib.int32)",
    "lib.tensor([1.5], dtype=lib.float16)",
    "lib.ones(2, 2, dtype=lib.bool)",
    "lib.zeros(2, 3, dtype=lib.int64)",
    "lib.tensor([])",
    "lib.zeros(0, dtype=lib.int64)",
    "lib.tensor([], dtype=lib.float64)",
    "lib.zeros(2, 0)",
    "lib.zeros(2, 0, dtype=lib.int64)",
    "lib.tensor([1e-5, 1.])",
    "lib.tensor([1e10, 1.])",
    "lib.tensor([0.001, 1000.])",
    "lib.tensor([123456., 1.])",
    "lib.tensor([0.1, 0.25])",
    "lib.tensor([1.23456789, 100.])",
    "lib.tensor(float('nan'))",
    "lib.tensor([float('inf'), 1.5])",
    "lib.tensor([float('nan'), 2.])",
    "lib.tensor([-float('inf'), 0.])",
    "lib.tensor(1e-10)",
    "lib.tensor([1e20])",
    "lib.ones(1, 2, 3)",
    "lib.ones(3, 3) / 3",
    "lib.arange(12).reshape(3, 4)",
    "lib.arange(30.) / 7",
    "lib.arange(2000)",
    "lib.arange(2000.)",
    "lib.arange(2000.).reshape(40, 50)",
    "lib.arange(5000).reshape(10, 10, 50)",
    "lib.tensor([1e8, 1e-8], dtype=lib.float64)",
    "lib.tensor([[1., 2.]], dtype=lib.float64, requires_grad=True) * 3",
    "lib.linspace(-1, 1, 17, dtype=lib.float64)",
    "lib.tensor([-100000, 100000, 0] * 7, dtype=lib.int32).reshape(3, 7)",
]


@pytest.mark.parametrize("expr", REPR_CASES)
def test_repr_matches_torch(expr):
    expected = repr(eval(expr, {"lib": torch})).replace("torch.", "chainrule.")
    assert repr(eval(expr, {"lib": cr})) == expected


def test_repr_of_random_tensors_matches_torch():
    rng = np.random.default_rng(0)
    for _ in range(150):
        shape = tuple(rng.integers(1, 7, size=rng.integers(0, 4)))
        dtype = str(rng.choice(["float32", "float64", "float16", "int64", "int32", "bool"]))
        a = rng.standard_normal(shape) * 10.0 ** rng.integers(-6, 10)
        if rng.random() < 0.3:
            a = np.round(a)
        a = a > 0 if dtype == "bool" else a
        if dtype.startswith("int"):
            a = np.clip(a, -10**6, 10**6)
        with np.errstate(all="ignore"):
            a = np.asarray(a).astype(dtype)
        rg = dtype.startswith("float") and rng.random() < 0.3
        t = torch.from_numpy(a.copy()).requires_grad_(rg)
        c = cr.tensor(a.copy(), requires_grad=rg)
        assert repr(c) == repr(t).replace("torch.", "chainrule."), (dtype, shape)


def test_repr_with_default_dtype_float64():
    previous_cr, previous_torch = cr.get_default_dtype(), torch.get_default_dtype()
    try:
        cr.set_default_dtype(cr.float64)
        torch.set_default_dtype(torch.float64)
        for expr in ["lib.tensor([1.5, 2.])", "lib.tensor([1.5], dtype=lib.float32)",
                     "lib.zeros(0)"]:
            expected = repr(eval(expr, {"lib": torch})).replace("torch.", "chainrule.")
            assert repr(eval(expr, {"lib": cr})) == expected
    finally:
        cr.set_default_dtype(previous_cr)
        torch.set_default_dtype(previous_torch)


# ------------------------------------------------------------------ errors a user gets
def test_broadcast_mismatch_names_op_and_shapes():
    with pytest.raises(RuntimeError):
        torch.ones(3) + torch.ones(4)
    with pytest.raises(RuntimeError, match=r"add.*\(3,\).*\(4,\)"):
        cr.ones(3) + cr.ones(4)
    with pytest.raises(RuntimeError, match=r"mul.*\(2, 3\).*\(4,\)"):
        cr.ones(2, 3) * cr.ones(4)


def test_matmul_mismatch_names_op_and_shapes():
    with pytest.raises(RuntimeError):
        torch.ones(2, 3) @ torch.ones(4, 5)
    with pytest.raises(RuntimeError, match=r"matmul.*\(2, 3\).*\(4, 5\)"):
        cr.ones(2, 3) @ cr.ones(4, 5)


def test_reshape_to_wrong_size_names_shape_and_size():
    with pytest.raises(RuntimeError, match=re.escape("shape '[4, 2]' is invalid for input of size 6")):
        torch.ones(6).reshape(4, 2)
    with pytest.raises(RuntimeError, match=r"reshape.*\[4, 2\].*size 6"):
        cr.ones(6).reshape(4, 2)


def test_backward_on_non_scalar_without_gradient():
    for lib in (cr, torch):
        y = lib.ones(3, requires_grad=True) * 2
        with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar"):
            y.backward()
    with pytest.raises(RuntimeError, match=r"\(3,\)"):
        (cr.ones(3, requires_grad=True) * 2).backward()


def test_backward_on_non_scalar_with_gradient_matches_torch():
    def run(lib):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        (x * x).backward(lib.tensor([1.0, 0.5, -1.0]))
        return x.grad

    same(run(cr), run(torch))


# ------------------------------------------------------------------ legacy constructor
@pytest.mark.parametrize("args", [([1, 2],), ([[1.5, 2], [3, 4]],), (np.array([1, 2]),), ()],
                         ids=["ints", "nested", "ndarray", "empty"])
def test_tensor_class_converts_data_to_default_float(args):
    same(cr.Tensor(*args), torch.Tensor(*args))


@pytest.mark.parametrize("args", [(2, 3), (4,), (0, 2)], ids=repr)
def test_tensor_class_with_sizes_is_uninitialised(args):
    c, t = cr.Tensor(*args), torch.Tensor(*args)
    assert c.shape == tuple(t.shape) and c.dtype == cr.float32
    assert cr.Tensor(cr.Size(args)).shape == tuple(torch.Tensor(torch.Size(args)).shape)


def test_tensor_class_of_tensor_keeps_dtype_and_requires_grad_keyword():
    same(cr.Tensor(cr.tensor([1, 2])), torch.Tensor(torch.tensor([1, 2])))
    x = cr.Tensor([1.0], requires_grad=True)
    assert x.requires_grad and x.is_leaf


# ------------------------------------------------------------------ small methods
def test_memory_layout_attributes_like_torch():
    data = np.arange(24.0, dtype=np.float32).reshape(2, 3, 4)
    c, t = cr.tensor(data), torch.tensor(data)
    assert c.stride() == t.stride() and c.stride(1) == t.stride(1)
    assert c.permute(2, 0, 1).stride() == t.permute(2, 0, 1).stride()
    assert (c.nbytes, c.itemsize, c.element_size()) == (t.nbytes, t.itemsize, t.element_size())
    assert (c.is_cuda, c.ndimension(), c.is_floating_point()) == (False, 3, True)
    assert c.data_ptr() == c.numpy().__array_interface__["data"][0]
    assert c[1].data_ptr() == c.data_ptr() + 12 * 4


def test_format_of_0d_tensor_formats_the_number():
    for lib in (cr, torch):
        x = lib.tensor(2.345)
        assert f"{x:.2f}" == "2.35" and format(lib.tensor(3), "d") == "3"
        assert f"{x}" == str(x.item())
    assert f"{cr.tensor([1.5])}" == repr(cr.tensor([1.5]))



def test_broadcast_to_takes_a_shape_or_sizes_like_torch():
    for lib in (cr, torch):
        x = lib.ones(3)
        assert tuple(x.broadcast_to(2, 3).shape) == (2, 3)
        assert tuple(x.broadcast_to((2, 3)).shape) == tuple(lib.broadcast_to(x, [2, 3]).shape)

COMPOSITES = {
    "addcmul": lambda x, a, b: x.addcmul(a, b, value=0.5),
    "addcdiv": lambda x, a, b: x.addcdiv(a, b, value=-2),
    "lerp": lambda x, a, b: x.lerp(a, 0.25),
    "lerp_tensor": lambda x, a, b: x.lerp(a, b),
    "square": lambda x, a, b: x.square() + a,
    "clamp_min": lambda x, a, b: x.clamp_min(1.0) * b,
    "clamp_max": lambda x, a, b: x.clamp_max(1.0) * b,
    "unflatten": lambda x, a, b: (x * a * b).reshape(1, 6).unflatten(1, (2, -1)),
    "type_as": lambda x, a, b: x.type_as(a.double()) * b.double(),
}


FUNCTIONS = {
    "addcmul": lambda lib, x, a, b: lib.addcmul(x, a, b, value=0.5),
    "addcdiv": lambda lib, x, a, b: lib.addcdiv(x, a, b, value=-2),
    "lerp": lambda lib, x, a, b: lib.lerp(x, a.expand(2, 3), 0.25),
    "square": lambda lib, x, a, b: lib.square(x) * a,
    "clamp_min": lambda lib, x, a, b: lib.clamp_min(x, 1.0) * b,
    "clamp_max": lambda lib, x, a, b: lib.clamp_max(x, 1.0) * b,
    "unflatten": lambda lib, x, a, b: lib.unflatten(x * a * b, 1, (3, 1)),
}
COMPOSITES.update({f"torch.{name}": fn for name, fn in FUNCTIONS.items()})


@pytest.mark.parametrize("name", sorted(COMPOSITES))
def test_composite_methods_values_and_gradients_like_torch(name):
    def run(lib):
        x = lib.tensor([[0.5, 1.5, 2.25], [-1.0, 3.0, 0.25]], requires_grad=True)
        a = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        b = lib.tensor([4.0, -1.0, 0.5], requires_grad=True)
        fn = COMPOSITES[name]
        out = fn(lib, x, a, b) if name.startswith("torch.") else fn(x, a, b)
        out.sum().backward()
        return out, x.grad, a.grad, b.grad

    for c, t in zip(run(cr), run(torch)):
        if t is None:
            assert c is None  # an input the result does not use gets no gradient
        else:
            same(c, t)
