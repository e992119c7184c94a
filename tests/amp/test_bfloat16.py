"""chainrule.bfloat16 (ml_dtypes) against torch.bfloat16: the dtype's facts, promotion,
creation, conversion and arithmetic bit for bit (reductions and softmax accumulate in
float32 and scalar ops keep bfloat16, as PyTorch's).
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")


DTYPES = ["bfloat16", "float16", "float32", "float64", "int8", "uint8", "int16", "int32", "int64",
          "bool"]


def test_dtype_facts():
    b = cr.bfloat16
    assert repr(b) == "chainrule.bfloat16" and b.is_floating_point and not b.is_complex
    assert b.itemsize == 2 and b.np == np.dtype("bfloat16")
    assert pickle.loads(pickle.dumps(b)) is b
    assert cr.zeros(1, dtype=b).dtype is b


def test_finfo_matches_torch():
    ours, theirs = cr.finfo(cr.bfloat16), torch.finfo(torch.bfloat16)
    for field in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution"):
        assert getattr(ours, field) == getattr(theirs, field), field


@pytest.mark.parametrize("other", DTYPES)
def test_promotion_and_casting_rules_match_torch(other):
    for first, second in (("bfloat16", other), (other, "bfloat16")):
        ours = cr.promote_types(getattr(cr, first), getattr(cr, second))
        assert ours.name == str(torch.promote_types(getattr(torch, first),
                                                    getattr(torch, second))).removeprefix("torch.")
        assert cr.can_cast(getattr(cr, first), getattr(cr, second)) == torch.can_cast(
            getattr(torch, first), getattr(torch, second))


@pytest.mark.parametrize("make", [
    lambda lib: lib.zeros(3, dtype=lib.bfloat16),
    lambda lib: lib.ones(2, 2, dtype=lib.bfloat16),
    lambda lib: lib.full((2,), 1.7, dtype=lib.bfloat16),
    lambda lib: lib.arange(5, dtype=lib.bfloat16),
    lambda lib: lib.tensor([0.1, 2.5, -3.3], dtype=lib.bfloat16),
    lambda lib: lib.zeros_like(lib.ones(2), dtype=lib.bfloat16),
    lambda lib: lib.ones(2).new_zeros(3, dtype=lib.bfloat16),
], ids=["zeros", "ones", "full", "arange", "tensor", "zeros_like", "new_zeros"])
def test_creation_matches_torch(make):
    _same_bits(make(cr), make(torch))


def test_random_factories_linspace_and_numpy_interop():
    # linspace: chainrule rounds each float32 value once; PyTorch steps in bfloat16, so
    # some points differ by one unit in the last place
    np.testing.assert_allclose(cr.linspace(0, 1, 7, dtype=cr.bfloat16).float().numpy(),
                               np.linspace(0, 1, 7), rtol=2**-8)
    cr.manual_seed(0)
    for factory in (cr.randn, cr.rand, cr.empty):
        assert factory(4, dtype=cr.bfloat16).dtype == cr.bfloat16
    array = np.arange(3).astype(cr.bfloat16.np)
    assert cr.from_numpy(array).dtype == cr.bfloat16
    assert cr.tensor(array).tolist() == [0.0, 1.0, 2.0]


# round to nearest even at ties, subnormals, the largest values, infinities
SPECIAL = np.array([0.0, -0.0, 1.0, 1.00390625, 1.01171875, 1.0078125 + 2**-9, 3.3895314e38,
                    3.4028235e38, 1e-40, -1e-45, np.inf, -np.inf, np.nan, 0.1, -2.5, 65504.0,
                    1 / 3], dtype=np.float32)


def test_conversion_to_bfloat16_rounds_as_torch():
    ours = cr.tensor(SPECIAL).to(cr.bfloat16)
    theirs = torch.tensor(SPECIAL).to(torch.bfloat16)
    _same_bits(ours, theirs)
    for target in ("float16", "float32", "float64"):
        back = ours.to(getattr(cr, target))
        expected = theirs.to(getattr(torch, target)).numpy()
        np.testing.assert_array_equal(back.numpy(), expected)


A = np.random.default_rng(0).standard_normal(200).astype(np.float32) * 10
B = np.random.default_rng(1).standard_normal(200).astype(np.float32)

ARITHMETIC = {
    "add": lambda lib, x, y: x + y,
    "sub": lambda lib, x, y: x - y,
    "mul": lambda lib, x, y: x * y,
    "neg": lambda lib, x, y: -x,
    "abs": lambda lib, x, y: x.abs(),
    "relu": lambda lib, x, y: x.relu(),
    "maximum": lambda lib, x, y: lib.maximum(x, y),
    "square": lambda lib, x, y: x**2,
    "where": lambda lib, x, y: lib.where(x > 0, x, y),
    "max": lambda lib, x, y: x.max(),
    "movement": lambda lib, x, y: lib.cat([x.reshape(2, 100).transpose(0, 1).flip(0), y.reshape(100, 2)], 1),
    "times_python_float": lambda lib, x, y: x * 0.3,
    "mean": lambda lib, x, y: x.mean(),
    "softmax": lambda lib, x, y: x.softmax(0),
    "matmul": lambda lib, x, y: x.reshape(20, 10) @ y.reshape(10, 20),
}
@pytest.mark.parametrize("name", list(ARITHMETIC))
def test_arithmetic_matches_torch_bit_for_bit(name):
    op = ARITHMETIC[name]
    ours = op(cr, cr.tensor(A).to(cr.bfloat16), cr.tensor(B).to(cr.bfloat16))
    theirs = op(torch, torch.tensor(A).to(torch.bfloat16), torch.tensor(B).to(torch.bfloat16))
    _same_bits(ours, theirs)


def test_sum_accumulates_in_float32_as_torch():
    assert cr.ones(1000, dtype=cr.bfloat16).sum().item() == 1000.0


def test_bfloat16_method():
    assert cr.tensor(SPECIAL).bfloat16().dtype == cr.bfloat16
    assert cr.ones(1, dtype=cr.bfloat16).type() == "chainrule.BFloat16Tensor"


def test_bfloat16_tensor_requires_grad():
    x = cr.ones(2, dtype=cr.bfloat16)
    assert x.is_floating_point()
    x.requires_grad_()
    (x * x).sum().backward()
    assert x.grad.dtype == cr.bfloat16


def test_to_bfloat16_keeps_the_graph():
    w = cr.ones(2, requires_grad=True)
    w.to(cr.bfloat16).float().sum().backward()
    assert w.grad.tolist() == [1.0, 1.0]


def test_printing_matches_torch():
    values = [1.0, 2.5, -0.1]
    expected = repr(torch.tensor(values, dtype=torch.bfloat16)).replace("torch.", "chainrule.")
    assert repr(cr.tensor(values, dtype=cr.bfloat16)) == expected


def test_printing_names_the_dtype():
    assert "dtype=chainrule.bfloat16" in repr(cr.tensor([1.0, 2.5], dtype=cr.bfloat16))


def _same_bits(ours, theirs):
    """Same dtype and the same 16 bits per element (any NaN equals any NaN)."""
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
    assert tuple(ours.shape) == tuple(theirs.shape)
    if ours.dtype != cr.bfloat16:
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
        return
    mine = ours.numpy().view(np.uint16)
    reference = theirs.view(torch.int16).numpy().view(np.uint16)
    nan = np.isnan(ours.float().numpy())
    assert np.array_equal(nan, torch.isnan(theirs.float()).numpy())
    np.testing.assert_array_equal(mine[~nan], reference[~nan])


@pytest.mark.parametrize("op", [lambda x: x * 0.3, lambda x: x - 0.1, lambda x: x + 0.1,
                                lambda x: x / 0.7, lambda x: 1.3 / x, lambda x: x ** 1.5,
                                lambda x: 2.5 ** x, lambda x: 0.3 - x],
                         ids=["mul", "sub", "add", "div", "rdiv", "pow", "rpow", "rsub"])
def test_scalar_ops_keep_bfloat16(op):
    x = cr.tensor(np.abs(A) + 0.1).to(cr.bfloat16).requires_grad_()
    out = op(x)
    assert out.dtype == cr.bfloat16
    out.sum().backward()
    assert x.grad.dtype == cr.bfloat16
