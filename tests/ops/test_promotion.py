"""Type promotion of binary ops (ops/_convert.py) against PyTorch: tensor-tensor across
every dtype pair and 0-d/n-d mix, tensor-scalar, and gradients that keep their tensor's
dtype."""

from __future__ import annotations

import itertools
import operator

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")

DTYPES = ["float16", "float32", "float64", "int8", "uint8", "int16", "int32", "int64", "bool"]
OPS = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv,
       "eq": operator.eq, "lt": operator.lt, "maximum": lambda a, b: a.maximum(b)}


def make(lib, dtype: str, zero_dim: bool):
    data = np.array(1 if zero_dim else [1, 2]).astype(dtype)
    return lib.from_numpy(data)


def dtype_name(x) -> str:
    return str(x.dtype).split(".")[-1]


def outcome(fn):
    """The result's dtype name, or the exception type when the op refuses."""
    try:
        return dtype_name(fn())
    except (RuntimeError, TypeError) as error:
        return type(error).__name__


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("left", DTYPES)
def test_tensor_tensor_promotion_like_torch(op, left):
    fn = OPS[op]
    for right, za, zb in itertools.product(DTYPES, (False, True), (False, True)):

        def run(lib, right=right, za=za, zb=zb):
            return fn(make(lib, left, za), make(lib, right, zb))

        expected = outcome(lambda: run(torch))
        if op == "sub" and expected == "RuntimeError":
            continue  # torch refuses bool - bool; chainrule's sub is not owned here
        assert outcome(lambda: run(cr)) == expected, (left, za, right, zb)


SCALARS = [2, 2.5, True, -1, 0]


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_tensor_scalar_promotion_like_torch(op, dtype):
    fn = OPS[op]
    for scalar, zero_dim, reflected in itertools.product(SCALARS, (False, True), (False, True)):
        negative = scalar < 0 or (op == "sub" and not reflected and scalar > 0)
        if dtype == "uint8" and negative:
            continue  # see test_uint8_with_negative_python_int_wraps_like_torch

        def run(lib, scalar=scalar, zero_dim=zero_dim, reflected=reflected):
            t = make(lib, dtype, zero_dim)
            return fn(scalar, t) if reflected else fn(t, scalar)

        expected = outcome(lambda: run(torch))
        if expected == "RuntimeError":
            continue  # torch refuses (bool subtraction)
        assert outcome(lambda: run(cr)) == expected, (scalar, zero_dim, reflected)


def test_promotion_examples_from_the_brief():
    assert (cr.tensor([1, 2]) + cr.tensor([1.0, 2.0])).dtype == cr.float32
    assert (cr.tensor(1.0, dtype=cr.float64) + cr.tensor([1.0, 2.0])).dtype == cr.float32
    assert (cr.tensor([1, 2]) + 2.5).dtype == cr.float32
    assert (cr.tensor([True, False]) + 1).dtype == cr.int64
    assert (cr.tensor([True, False]) + cr.tensor([1, 2])).dtype == cr.int64
    assert (cr.tensor([1, 2]) / 2).dtype == cr.float32
    assert (cr.tensor([1, 2], dtype=cr.int32) + cr.tensor(5)).dtype == cr.int32
    assert (cr.tensor([1.0], dtype=cr.float16) + cr.tensor(1.0, dtype=cr.float64)).dtype == cr.float16
    assert (cr.tensor([1], dtype=cr.uint8) + cr.tensor([1], dtype=cr.int8)).dtype == cr.int16


def test_promoted_values_match_torch():
    a = [[1, -2, 3]]
    b = [0.5, 1.5, -2.5]
    for fn in OPS.values():
        c = fn(cr.tensor(a), cr.tensor(b))
        t = fn(torch.tensor(a), torch.tensor(b))
        assert dtype_name(c) == dtype_name(t)
        np.testing.assert_allclose(c.numpy(), t.numpy(), rtol=1e-6)


@pytest.mark.parametrize("scalar", [np.float64(2.5), np.int64(3), np.float32(1.5)], ids=repr)
def test_numpy_scalar_operand_promotes_like_python_scalar(scalar):
    for dtype in ("float32", "float16", "int32", "bool"):
        expected = dtype_name(make(torch, dtype, False) + scalar)
        assert dtype_name(make(cr, dtype, False) + scalar) == expected
        assert dtype_name(scalar * make(cr, dtype, False)) == expected


def test_uint8_with_negative_python_int_wraps_like_torch():
    t = torch.tensor([1, 200], dtype=torch.uint8) + -1
    c = cr.tensor([1, 200], dtype=cr.uint8) + -1
    assert c.tolist() == t.tolist() and dtype_name(c) == dtype_name(t)


# ------------------------------------------------------------------ gradients keep dtype
@pytest.mark.parametrize("da,db", [("float32", "float64"), ("float64", "float32"),
                                   ("float16", "float32"), ("float32", "float16")])
@pytest.mark.parametrize("zero_b", [False, True])
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_mixed_dtype_gradients_have_their_tensors_dtype(da, db, zero_b, op):
    fn = OPS[op]

    def run(lib):
        a = lib.tensor([1.5, -2.0, 3.0], dtype=getattr(lib, da), requires_grad=True)
        b = lib.tensor(0.5 if zero_b else [0.5, 4.0, -1.0], dtype=getattr(lib, db),
                       requires_grad=True)
        out = fn(a, b)
        (out * out).sum().backward()
        return out, a.grad, b.grad

    for c, t in zip(run(cr), run(torch)):
        assert dtype_name(c) == dtype_name(t)
        tol = 2e-3 if "float16" in (da, db) else 1e-6
        np.testing.assert_allclose(c.detach().numpy().astype(np.float64),
                                   t.detach().numpy().astype(np.float64), rtol=tol)


def test_gradient_through_integer_operand_goes_to_float_side_only():
    def run(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        k = lib.tensor([3, 4])
        (x * k + k / x).sum().backward()
        return x.grad

    c, t = run(cr), run(torch)
    assert dtype_name(c) == dtype_name(t) == "float32"
    np.testing.assert_allclose(c.numpy(), t.numpy(), rtol=1e-6)


def test_scalar_tensor_grad_dtype():
    def run(lib):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        w = lib.tensor(3.0, dtype=lib.float64, requires_grad=True)
        y = x * w
        y.sum().backward()
        return y, x.grad, w.grad

    for c, t in zip(run(cr), run(torch)):
        assert dtype_name(c) == dtype_name(t) and tuple(c.shape) == tuple(t.shape)
        np.testing.assert_allclose(c.detach().numpy(), t.detach().numpy(), rtol=1e-6)


# ------------------------------------------------------------------ dtype-level helpers
@pytest.mark.parametrize("left", DTYPES)
def test_promote_types_and_can_cast_like_torch(left):
    for right in DTYPES:
        a, b = getattr(cr, left), getattr(cr, right)
        ta, tb = getattr(torch, left), getattr(torch, right)
        assert cr.promote_types(a, b).name == str(torch.promote_types(ta, tb))[6:]
        assert cr.can_cast(a, b) == torch.can_cast(ta, tb), (left, right)


@pytest.mark.parametrize("operands", [
    ("t:int64:1", 2.5), ("t:int64:1", 2), ("t:bool:1", 2), ("t:bool:1", True),
    ("t:float16:1", 2.5), ("t:float64:0", "t:int64:1"), ("t:float64:0", "t:float32:1"),
    ("t:int32:1", "t:int64:0"), (2, 2.5), (True, 2), (True, False), (3, "t:uint8:1"),
], ids=repr)
def test_result_type_like_torch(operands):
    def build(lib, spec):
        if isinstance(spec, str):
            _, dtype, ndim = spec.split(":")
            return make(lib, dtype, ndim == "0")
        return spec

    got = cr.result_type(*(build(cr, s) for s in operands))
    expected = torch.result_type(*(build(torch, s) for s in operands))
    assert got.name == str(expected)[6:]


@pytest.mark.parametrize("name", ["float16", "float32", "float64"])
def test_finfo_like_torch(name):
    c, t = cr.finfo(getattr(cr, name)), torch.finfo(getattr(torch, name))
    for attr in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution"):
        assert getattr(c, attr) == getattr(t, attr), attr
    assert c.dtype == t.dtype and repr(c) == repr(t)
    assert repr(cr.finfo()) == repr(torch.finfo())


@pytest.mark.parametrize("name", ["uint8", "int8", "int16", "int32", "int64"])
def test_iinfo_like_torch(name):
    c, t = cr.iinfo(getattr(cr, name)), torch.iinfo(getattr(torch, name))
    assert (c.bits, c.max, c.min, c.dtype, repr(c)) == (t.bits, t.max, t.min, t.dtype, repr(t))


def test_finfo_and_iinfo_refuse_the_other_kind():
    for lib in (cr, torch):
        with pytest.raises(TypeError, match="iinfo"):
            lib.finfo(lib.int32)
        with pytest.raises(TypeError, match="finfo"):
            lib.iinfo(lib.float32)
