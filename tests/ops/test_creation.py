"""Factories (ops/creation.py) with PyTorch's signatures and dtypes, dtype conversions, and
chainrule's own random generator (seeding, Generator objects, RNG state)."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")


def same(c: cr.Tensor, t: torch.Tensor, rtol: float = 1e-6) -> None:
    """Equal values, shape and dtype (dtype names compared)."""
    assert str(c.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
    assert tuple(c.shape) == tuple(t.shape)
    np.testing.assert_allclose(c.detach().numpy(), t.detach().numpy(), rtol=rtol, atol=1e-7)


# ------------------------------------------------------------------ tensor()
@pytest.mark.parametrize("data", [
    1.5, 3, True, [1.0, 2.0], [1, 2], [True, False], [[1.5, 2], [3, 4]], [1, True],
    [[1, 2], [3, 4]], [], [[]], np.float32(2.5), np.int32(3), np.float64(1.5),
    [np.float64(1.5)], [np.float32(1.5), 2.0], np.array(2.5), np.array([1, 2], dtype=np.int32),
    np.array([1.0, 2.0]), np.array([True, False]), np.arange(6.0).reshape(2, 3)[:, 1],
    2**40, -0.0,
], ids=repr)
def test_tensor_infers_dtype_like_torch(data):
    same(cr.tensor(data), torch.tensor(data))


def test_tensor_python_numbers_give_float32_int64_bool():
    assert cr.tensor(1.5).dtype == cr.float32
    assert cr.tensor([1, 2]).dtype == cr.int64
    assert cr.tensor([True]).dtype == cr.bool
    assert cr.tensor([[1, 2.5]]).dtype == cr.float32


def test_tensor_from_list_of_tensors():
    same(cr.tensor([cr.tensor(1.0), cr.tensor(2.0)]),
         torch.tensor([torch.tensor(1.0), torch.tensor(2.0)]))
    f64 = cr.tensor([cr.tensor(1.0, dtype=cr.float64)])
    assert f64.dtype == cr.float64


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int32", "int64", "bool"])
def test_tensor_with_dtype(dtype):
    data = [[1.5, -2.0], [0.0, 3.25]]
    same(cr.tensor(data, dtype=getattr(cr, dtype)), torch.tensor(data, dtype=getattr(torch, dtype)))


def test_tensor_copies_its_data():
    a = np.array([1.0, 2.0])
    x = cr.tensor(a)
    a[0] = 7.0
    assert x.tolist() == [1.0, 2.0]
    y = cr.tensor(x)
    y[0] = 9.0
    assert x.tolist() == [1.0, 2.0]
    lst = [1.0, 2.0]
    cr.tensor(lst)[0] = 5.0
    assert lst == [1.0, 2.0]


def test_tensor_requires_grad():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    assert x.requires_grad and x.is_leaf


def test_tensor_refuses_strings_and_ragged_lists():
    with pytest.raises(TypeError):
        cr.tensor("a")
    with pytest.raises(ValueError):
        cr.tensor([[1, 2], [3]])


def test_tensor_refuses_other_devices():
    with pytest.raises(RuntimeError, match="cuda"):
        cr.tensor([1.0], device="cuda")
    assert cr.tensor([1.0], device="cpu").device == "cpu"


# ------------------------------------------------------------------ as_tensor, from_numpy
def test_as_tensor_shares_numpy_memory():
    a = np.array([1.0, 2.0])
    x = cr.as_tensor(a)
    a[0] = 7.0
    assert x.tolist() == [7.0, 2.0] and x.dtype == cr.float64


def test_as_tensor_of_tensor_is_itself():
    x = cr.ones(2)
    assert cr.as_tensor(x) is x and cr.asarray(x) is x
    assert cr.as_tensor(x, dtype=cr.float64).dtype == cr.float64


@pytest.mark.parametrize("data", [[1.0, 2.0], [1, 2], 2.5, np.array([1, 2])], ids=repr)
def test_as_tensor_dtypes_like_torch(data):
    same(cr.as_tensor(data), torch.as_tensor(data))
    same(cr.as_tensor(data, dtype=cr.float32), torch.as_tensor(data, dtype=torch.float32))


def test_from_numpy_is_zero_copy_both_ways():
    a = np.array([1.0, 2.0])
    x = cr.from_numpy(a)
    a[0] = 7.0
    x[1] = 8.0
    assert x.tolist() == [7.0, 8.0] and a.tolist() == [7.0, 8.0]
    x.add_(1.0)
    assert a.tolist() == [8.0, 9.0]
    assert x.numpy() is a


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int32, np.int64,
                                   np.int8, np.uint8, np.bool_])
def test_from_numpy_keeps_dtype(dtype):
    a = np.array([1, 0, 1], dtype=dtype)
    same(cr.from_numpy(a), torch.from_numpy(a))


def test_from_numpy_of_strided_view():
    a = np.arange(6.0).reshape(2, 3)[:, 1]
    same(cr.from_numpy(a), torch.from_numpy(a))


def test_from_numpy_refuses_non_arrays_and_strings():
    for lib in (cr, torch):
        with pytest.raises(TypeError, match="expected np.ndarray"):
            lib.from_numpy([1, 2])
    with pytest.raises(TypeError):
        cr.from_numpy(np.array(["a"]))


# ------------------------------------------------------------------ zeros, ones, full, empty
@pytest.mark.parametrize("name", ["zeros", "ones"])
@pytest.mark.parametrize("size", [(2, 3), ((2, 3),), ([2, 3],), (4,), ((),), (0, 3)], ids=repr)
@pytest.mark.parametrize("dtype", [None, "float64", "int64", "bool"])
def test_zeros_ones_like_torch(name, size, dtype):
    kwargs = {} if dtype is None else {"dtype": getattr(torch, dtype)}
    expected = getattr(torch, name)(*size, **kwargs)
    kwargs = {} if dtype is None else {"dtype": getattr(cr, dtype)}
    same(getattr(cr, name)(*size, **kwargs), expected)


@pytest.mark.parametrize("size", [(2, 3), ((2, 3),), (5,)], ids=repr)
def test_empty_shape_and_dtype(size):
    c, t = cr.empty(*size), torch.empty(*size)
    assert c.shape == tuple(t.shape) and c.dtype == cr.float32
    assert cr.empty(*size, dtype=cr.int32).dtype == cr.int32


def test_factories_requires_grad():
    for factory in (cr.zeros, cr.ones, cr.empty, cr.rand, cr.randn):
        x = factory(2, 3, requires_grad=True)
        assert x.requires_grad and x.is_leaf and x.shape == (2, 3)


@pytest.mark.parametrize("fill", [1.5, 7, True, -2.0], ids=repr)
@pytest.mark.parametrize("dtype", [None, "float64", "int32"])
def test_full_like_torch(fill, dtype):
    if dtype is None:
        same(cr.full((2, 3), fill), torch.full((2, 3), fill))
    else:
        same(cr.full([2, 3], fill, dtype=getattr(cr, dtype)),
             torch.full([2, 3], fill, dtype=getattr(torch, dtype)))


def test_full_requires_grad():
    x = cr.full((2,), 1.5, requires_grad=True)
    assert x.requires_grad and repr(x) == "tensor([1.5000, 1.5000], requires_grad=True)"


# ------------------------------------------------------------------ arange, linspace, eye
@pytest.mark.parametrize("args", [
    (5,), (1, 4), (1, 10, 3), (-3, 3), (5, 0, -1), (0, 1, 0.25), (5.0,), (1, 2.5, 0.5),
    (0, 1, 0.1), (1, 0, -0.3), (0,), (3, 3),
], ids=repr)
def test_arange_like_torch(args):
    same(cr.arange(*args), torch.arange(*args))


def test_arange_dtype_and_requires_grad():
    same(cr.arange(5, dtype=cr.float64), torch.arange(5, dtype=torch.float64))
    same(cr.arange(0, 2, 0.5, dtype=cr.float64), torch.arange(0, 2, 0.5, dtype=torch.float64))
    assert cr.arange(3.0, requires_grad=True).requires_grad


def test_arange_zero_step_raises():
    for lib in (cr, torch):
        with pytest.raises(RuntimeError, match="step must be nonzero"):
            lib.arange(0, 5, 0)


@pytest.mark.parametrize("args", [(0, 1, 5), (-1, 1, 3), (0, 10, 1), (0, 1, 0), (2, -2, 7)],
                         ids=repr)
def test_linspace_like_torch(args):
    same(cr.linspace(*args), torch.linspace(*args))
    same(cr.linspace(*args, dtype=cr.float64), torch.linspace(*args, dtype=torch.float64))


@pytest.mark.parametrize("args", [(3,), (2, 3), (3, 2), (0,)], ids=repr)
def test_eye_like_torch(args):
    same(cr.eye(*args), torch.eye(*args))
    same(cr.eye(*args, dtype=cr.int64), torch.eye(*args, dtype=torch.int64))


# ------------------------------------------------------------------ *_like
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_like_factories_keep_shape_and_dtype(dtype):
    c = cr.ones(2, 3, dtype=getattr(cr, dtype))
    t = torch.ones(2, 3, dtype=getattr(torch, dtype))
    same(cr.zeros_like(c), torch.zeros_like(t))
    same(cr.ones_like(c), torch.ones_like(t))
    same(cr.full_like(c, 7), torch.full_like(t, 7))
    same(cr.full_like(c, 2.7), torch.full_like(t, 2.7))
    for factory in (cr.empty_like, cr.rand_like, cr.randn_like):
        if dtype == "int64" and factory is not cr.empty_like:
            continue
        out = factory(c)
        assert out.shape == (2, 3) and out.dtype == c.dtype
    out = cr.randint_like(c, 5)
    assert out.dtype == c.dtype and out.shape == (2, 3)
    assert 0 <= out.min().item() and out.max().item() < 5


def test_like_factories_dtype_and_requires_grad():
    c = cr.ones(2)
    same(cr.zeros_like(c, dtype=cr.int32), torch.zeros_like(torch.ones(2), dtype=torch.int32))
    assert cr.zeros_like(c, requires_grad=True).requires_grad
    assert cr.ones_like(c, requires_grad=True).requires_grad


def test_new_factories_follow_source_dtype():
    c, t = cr.ones(2, dtype=cr.float64), torch.ones(2, dtype=torch.float64)
    same(c.new_zeros(2, 3), t.new_zeros(2, 3))
    same(c.new_ones((1, 2)), t.new_ones((1, 2)))
    same(c.new_full((2,), 3), t.new_full((2,), 3))
    same(c.new_tensor([1, 2]), t.new_tensor([1, 2]))
    assert c.new_empty(4).shape == (4,) and c.new_empty(4).dtype == cr.float64


# ------------------------------------------------------------------ dtypes and conversions
def test_dtype_objects():
    for name in ["float16", "float32", "float64", "int32", "int64", "bool"]:
        d, t = getattr(cr, name), getattr(torch, name)
        assert repr(d) == repr(t).replace("torch.", "chainrule.")
        assert d.is_floating_point == t.is_floating_point
        assert d.itemsize == t.itemsize
    assert cr.float is cr.float32 and cr.double is cr.float64 and cr.long is cr.int64
    assert cr.half is cr.float16 and cr.int is cr.int32
    assert cr.get_default_dtype() == cr.float32


def test_set_default_dtype():
    try:
        cr.set_default_dtype(cr.float64)
        assert cr.tensor([1.5]).dtype == cr.float64
        assert cr.zeros(2).dtype == cr.float64
        assert cr.arange(0, 1, 0.5).dtype == cr.float64
        assert (cr.tensor([1, 2]) + 2.5).dtype == cr.float64
    finally:
        cr.set_default_dtype(cr.float32)
    with pytest.raises(TypeError):
        cr.set_default_dtype(cr.int64)


CONVERSIONS = {
    "float": lambda x: x.float(), "double": lambda x: x.double(), "long": lambda x: x.long(),
    "int": lambda x: x.int(), "half": lambda x: x.half(), "bool": lambda x: x.bool(),
    "to_f64": lambda x: x.to(cr_or_torch(x).float64),
    "to_dtype_kw": lambda x: x.to(dtype=cr_or_torch(x).int32),
    "to_device_dtype": lambda x: x.to("cpu", cr_or_torch(x).float16),
    "to_other": lambda x: x.to(cr_or_torch(x).tensor([1.0], dtype=cr_or_torch(x).float64)),
    "to_cpu": lambda x: x.to("cpu"), "type": lambda x: x.type(cr_or_torch(x).float64),
    "type_as": lambda x: x.type_as(cr_or_torch(x).tensor([1], dtype=cr_or_torch(x).int32)),
}


def cr_or_torch(x):
    return cr if isinstance(x, cr.Tensor) else torch


@pytest.mark.parametrize("name", sorted(CONVERSIONS))
@pytest.mark.parametrize("data", [[1.5, -2.7, 0.0], [1, 0, 3]], ids=["float", "int"])
def test_conversions_like_torch(name, data):
    fn = CONVERSIONS[name]
    same(fn(cr.tensor(data)), fn(torch.tensor(data)))


def test_conversion_to_same_dtype_returns_self():
    x = cr.tensor([1.0, 2.0])
    assert x.float() is x and x.to(cr.float32) is x
    assert x.to(cr.float32, copy=True) is not x


def test_type_without_dtype_names_the_tensor_type():
    assert cr.ones(2).type() == torch.ones(2).type().replace("torch.", "chainrule.")
    assert cr.ones(2, dtype=cr.int64).type() == "chainrule.LongTensor"


def test_to_another_device_raises():
    with pytest.raises(RuntimeError, match="cuda"):
        cr.ones(2).to("cuda")


@pytest.mark.parametrize("target", ["float64", "float16"])
def test_conversion_is_differentiable_and_grad_keeps_leaf_dtype(target):
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    xt = torch.tensor([1.0, 2.0], requires_grad=True)
    (x.to(getattr(cr, target)) * 3).sum().backward()
    (xt.to(getattr(torch, target)) * 3).sum().backward()
    same(x.grad, xt.grad)
    assert x.grad.dtype == cr.float32


def test_conversion_to_integer_cuts_the_graph():
    x = cr.tensor([1.5, 2.5], requires_grad=True)
    y = x.long()
    assert y.dtype == cr.int64 and not y.requires_grad


# ------------------------------------------------------------------ randomness
def test_manual_seed_reproduces_every_random_factory():
    def draw():
        return [cr.rand(3), cr.randn(2, 2), cr.randint(0, 10, (4,)), cr.randperm(5),
                cr.normal(0.0, 1.0, (3,)), cr.rand_like(cr.ones(2)), cr.randn_like(cr.ones(2))]

    cr.manual_seed(123)
    first = draw()
    cr.manual_seed(123)
    second = draw()
    for a, b in zip(first, second):
        assert a.dtype == b.dtype and a.tolist() == b.tolist()


def test_different_seeds_give_different_numbers():
    cr.manual_seed(1)
    a = cr.rand(5)
    cr.manual_seed(2)
    assert a.tolist() != cr.rand(5).tolist()


def test_generator_is_independent_of_numpy_global_state():
    cr.manual_seed(3)
    a = cr.rand(4)
    cr.manual_seed(3)
    np.random.seed(0)
    np.random.rand(10)
    b = cr.rand(4)
    assert a.tolist() == b.tolist()
    state = np.random.get_state()[1].copy()
    cr.manual_seed(5)
    cr.randn(100)
    assert np.array_equal(np.random.get_state()[1], state)


def test_manual_seed_returns_default_generator():
    g = cr.manual_seed(7)
    assert g is cr.default_generator and cr.initial_seed() == 7


def test_generator_objects_are_independent_streams():
    g1 = cr.Generator().manual_seed(5)
    g2 = cr.Generator()
    g2.manual_seed(5)
    assert cr.rand(3, generator=g1).tolist() == cr.rand(3, generator=g2).tolist()
    assert g1.initial_seed() == 5
    cr.manual_seed(0)
    before = cr.rand(3)
    cr.manual_seed(0)
    cr.randn(10, generator=g1)  # using g1 must not advance the default generator
    assert cr.rand(3).tolist() == before.tolist()


def test_generator_accepted_by_every_random_factory():
    def draw(g):
        return [cr.rand(2, generator=g), cr.randn(2, generator=g),
                cr.randint(0, 9, (2,), generator=g), cr.randperm(4, generator=g),
                cr.normal(cr.zeros(2), cr.ones(2), generator=g),
                cr.rand_like(cr.ones(2), generator=g), cr.randn_like(cr.ones(2), generator=g),
                cr.randint_like(cr.ones(2), 3, generator=g)]

    a = draw(cr.Generator().manual_seed(11))
    b = draw(cr.Generator().manual_seed(11))
    assert [x.tolist() for x in a] == [x.tolist() for x in b]


def test_rng_state_round_trip():
    cr.manual_seed(3)
    state = cr.get_rng_state()
    assert state.dtype == cr.uint8 and state.dim() == 1
    x = cr.randn(4)
    cr.set_rng_state(state)
    assert cr.randn(4).tolist() == x.tolist()
    g = cr.Generator().manual_seed(9)
    cr.randint(0, 100, (3,), generator=g)  # mid-stream state
    saved = g.get_state()
    u = cr.randint(0, 100, (5,), generator=g)
    g.set_state(saved)
    assert cr.randint(0, 100, (5,), generator=g).tolist() == u.tolist()


def test_random_factories_shapes_dtypes_like_torch():
    pairs = [
        (cr.rand(2, 3), torch.rand(2, 3)), (cr.rand((4,)), torch.rand((4,))),
        (cr.randn(2, 3), torch.randn(2, 3)), (cr.randn((), dtype=cr.float64),
                                              torch.randn((), dtype=torch.float64)),
        (cr.randint(0, 10, (3,)), torch.randint(0, 10, (3,))),
        (cr.randint(10, (3,)), torch.randint(10, (3,))),
        (cr.randint(3, 10, (2, 2), dtype=cr.int32), torch.randint(3, 10, (2, 2), dtype=torch.int32)),
        (cr.randperm(5), torch.randperm(5)),
        (cr.normal(0.0, 1.0, (3,)), torch.normal(0.0, 1.0, (3,))),
        (cr.normal(cr.zeros(3), 1.0), torch.normal(torch.zeros(3), 1.0)),
        (cr.normal(2.0, cr.ones(2, 2)), torch.normal(2.0, torch.ones(2, 2))),
        (cr.normal(cr.zeros(3, dtype=cr.float64), cr.ones(3, dtype=cr.float64)),
         torch.normal(torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64))),
    ]
    for c, t in pairs:
        assert c.shape == tuple(t.shape) and str(c.dtype)[10:] == str(t.dtype)[6:]


def test_random_distributions():
    cr.manual_seed(0)
    u = cr.rand(20000).numpy()
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.01
    n = cr.randn(20000).numpy()
    assert abs(n.mean()) < 0.03 and abs(n.std() - 1) < 0.03
    k = cr.randint(3, 7, (5000,)).numpy()
    assert set(np.unique(k).tolist()) == {3, 4, 5, 6}
    g = cr.normal(5.0, 2.0, (20000,)).numpy()
    assert abs(g.mean() - 5) < 0.06 and abs(g.std() - 2) < 0.06
    assert sorted(cr.randperm(50).tolist()) == list(range(50))


def test_bernoulli_samples_with_input_probabilities():
    probs = cr.tensor([0.0, 1.0, 0.25], dtype=cr.float64).expand(4000, 3)
    sample = cr.bernoulli(probs, generator=cr.Generator().manual_seed(0))
    t = torch.bernoulli(torch.tensor([0.0, 1.0, 0.25], dtype=torch.float64).expand(4000, 3))
    assert sample.shape == tuple(t.shape) and sample.dtype == cr.float64
    column_means = sample.numpy().mean(axis=0)
    assert column_means[0] == 0 and column_means[1] == 1 and abs(column_means[2] - 0.25) < 0.03
    assert set(np.unique(cr.bernoulli(cr.empty(100), 0.5).numpy()).tolist()) == {0.0, 1.0}
    a = cr.bernoulli(probs, generator=cr.Generator().manual_seed(0))
    assert a.tolist() == sample.tolist()
