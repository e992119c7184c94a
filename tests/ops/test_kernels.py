"""The fast NumPy kernels against the plain NumPy they replace.

kernels.select: np.where's results bit for bit on arrays large enough to take the
branch-free path (every dtype, broadcasting, Python scalars, inf/NaN/-0.0), and relu's and
where's gradients through it against PyTorch. kernels.axpy: add_/sub_ with alpha and SGD's
update against PyTorch on arrays large enough for BLAS, and the cases it must leave to NumPy.
kernels.add_to_rows and column_sums (a linear layer's bias and its gradient through BLAS):
NumPy's results (bit for bit for the addition), the cases left to NumPy, linear against PyTorch.
kernels.transpose_into: NumPy's transpose for BLAS's dtypes and the others, strided views
and overlapping operands. kernels.row_sums (a convolution's bias gradient through BLAS).
kernels.erf: SciPy's vectorised erf and math.erf's agree. kernels.index_add: SciPy's sparse product
and np.add.at's sums, bit for bit.
"""

from __future__ import annotations

import sys

import ml_dtypes
import numpy as np
import pytest

import chainrule
from chainrule.ops import kernels

torch = pytest.importorskip("torch")

DTYPES = [np.float16, ml_dtypes.bfloat16, np.float32, np.float64, np.int8, np.int32, np.int64,
          np.uint8, np.bool_]
SHAPES = [((256, 256), (256, 256), (256, 256)),
          ((300, 300), (1, 300), (300, 1)),
          ((100, 200), (), (200,)),
          ((50000,), (50000,), ())]


def _draw(rng: np.random.Generator, shape: tuple, dtype: type) -> np.ndarray:
    if dtype is np.bool_:
        return rng.random(shape) < 0.5
    values = np.asarray(rng.standard_normal(shape) * 50)
    if np.dtype(dtype).kind == "u":
        values = np.abs(values)
    values = values.astype(dtype)
    if values.ndim and np.dtype(dtype).kind in "fV":
        values.flat[:4] = [np.nan, np.inf, -np.inf, -0.0]
    return values


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shapes", SHAPES, ids=str)
def test_select_equals_where_bit_for_bit(dtype: type, shapes: tuple) -> None:
    rng = np.random.default_rng(0)
    condition = rng.random(shapes[0]) < 0.5
    x, y = _draw(rng, shapes[1], dtype), _draw(rng, shapes[2], dtype)
    assert condition.size >= kernels._SELECT_MIN_SIZE  # the fast path
    assert _same_bits(kernels.select(np, condition, x, y), np.where(condition, x, y))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("scalar", [0.0, -0.0, np.inf, 3, 0])
def test_select_with_python_scalar_keeps_array_dtype(scalar: float, dtype: type) -> None:
    g = _draw(np.random.default_rng(1), (200, 200), dtype)
    mask = g > 0
    assert _same_bits(kernels.select(np, mask, scalar, g), np.where(mask, scalar, g))


def test_select_small_and_non_bool_conditions_fall_back_to_where() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((300, 300)), rng.standard_normal((300, 300))
    counts = rng.integers(0, 3, (300, 300))  # a non-bool condition: nonzero is true
    assert _same_bits(kernels.select(np, counts, x, y), np.where(counts, x, y))
    assert _same_bits(kernels.select(np, x[:3] > 0, x[:3], y[:3]), np.where(x[:3] > 0, x[:3], y[:3]))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_relu_and_where_gradients_on_large_inputs_match_torch(dtype: str) -> None:
    rng = np.random.default_rng(3)
    data = rng.standard_normal((512, 512)).astype(dtype)
    data.flat[:3] = [np.nan, 0.0, -np.inf]
    upstream = rng.standard_normal((512, 512)).astype(dtype)
    upstream.flat[3:5] = [np.inf, np.nan]
    grads = []
    for lib in (chainrule, torch):
        x = lib.tensor(data, requires_grad=True)
        y = lib.tensor(-data, requires_grad=True)
        out = x.relu() + lib.where(x > 0.5, x, y)
        out.backward(lib.tensor(upstream))
        grads.append((np.asarray(out.detach()), np.asarray(x.grad), np.asarray(y.grad)))
    for ours, theirs in zip(*grads):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("method", ["add_", "sub_"])
def test_add_sub_with_alpha_match_torch_on_large_tensors(dtype: str, method: str) -> None:
    rng = np.random.default_rng(4)
    base, other = rng.standard_normal((2, 300, 100)).astype(dtype)
    results = []
    for lib in (chainrule, torch):
        target = lib.tensor(base)
        version = target._version if lib is torch else target._version[0]
        out = getattr(target, method)(lib.tensor(other), alpha=0.37)
        assert out is target
        assert (target._version if lib is torch else target._version[0]) == version + 1
        results.append(np.asarray(target))
    assert kernels.axpy(np.zeros(1 << 14, dtype), 1.0, np.ones(1 << 14, dtype))  # BLAS took it
    np.testing.assert_allclose(*results, rtol=1e-6 if dtype == "float32" else 1e-15, atol=0)


def test_axpy_leaves_what_blas_cannot_do_to_numpy() -> None:
    y = np.zeros(1 << 14, np.float32)
    assert not kernels.axpy(y, 1.0, np.ones(1 << 14, np.float64))  # dtypes differ
    assert not kernels.axpy(y[:100], 1.0, np.ones(100, np.float32))  # too small to pay
    assert not kernels.axpy(y[::2], 1.0, np.ones(1 << 13, np.float32))  # strided
    assert not kernels.axpy(y[1:], 1.0, y[:-1])  # overlapping
    assert not y.any()
    shifted = chainrule.arange(1 << 15, dtype=chainrule.float64)
    expected = np.asarray(shifted).copy()
    expected[1:] += 2.0 * expected[:-1].copy()
    shifted[1:].add_(shifted[:-1], alpha=2.0)  # overlapping views: NumPy's path, same answer
    np.testing.assert_array_equal(np.asarray(shifted), expected)


def test_add_with_alpha_into_expanded_tensor_raises() -> None:
    expanded = chainrule.zeros(1).expand(1 << 14)
    with pytest.raises(RuntimeError, match="add_: unsupported operation"):
        expanded.add_(chainrule.ones(1 << 14), alpha=2.0)


def test_sgd_update_through_blas_matches_torch() -> None:
    rng = np.random.default_rng(5)
    weights, grads = rng.standard_normal((2, 200, 100)).astype(np.float32)
    updated = []
    for lib in (chainrule, torch):
        p = lib.tensor(weights, requires_grad=True)
        p.grad = lib.tensor(grads)
        lib.optim.SGD([p], lr=0.05).step()
        updated.append(np.asarray(p.detach()))
    np.testing.assert_allclose(*updated, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES[:-1], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(100,), (64, 128), (3, 50, 70)], ids=str)
def test_relu_equals_maximum_with_zero_bit_for_bit(dtype: type, shape: tuple) -> None:
    x = _draw(np.random.default_rng(6), shape, dtype)
    assert _same_bits(kernels.relu(np, x), np.maximum(x, 0))
    assert _same_bits(kernels.relu(np, x.T), np.maximum(x.T, 0))  # strided: the scalar path
    for zeros in kernels._ZEROS.values():  # the shared zeros stay zeros and read-only
        assert not zeros.flags.writeable and not zeros.any()


def test_relu_grows_its_zeros_for_a_larger_input() -> None:
    small = kernels.relu(np, np.full(5000, -1.0))
    large = kernels.relu(np, np.linspace(-1.0, 1.0, 300_001))
    assert not small.any() and kernels._ZEROS[np.dtype(np.float64)].size >= 300_001
    np.testing.assert_array_equal(large, np.maximum(np.linspace(-1.0, 1.0, 300_001), 0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(1024, 512), (40, 1000), (3, 5)], ids=str)
def test_add_to_rows_equals_numpy_bit_for_bit(dtype: type, shape: tuple) -> None:
    out = _draw(np.random.default_rng(7), shape, dtype)
    vector = _draw(np.random.default_rng(8), shape[1:], dtype)
    expected = out + vector
    kernels.add_to_rows(out, vector)
    assert _same_bits(out, expected)


def test_add_to_rows_leaves_what_blas_cannot_do_to_numpy() -> None:
    rng = np.random.default_rng(9)
    base = rng.standard_normal((512, 512)).astype(np.float32)
    for out, vector in ((base.copy(), rng.standard_normal(512)),  # dtypes differ
                        (base.copy().T, rng.standard_normal(512).astype(np.float32)),  # not C
                        (base.copy(), rng.standard_normal(1024).astype(np.float32)[::2]),
                        (base.copy(), np.float32(2.0))):  # a scalar
        expected = (out + vector).astype(np.float32)
        kernels.add_to_rows(out, vector)
        np.testing.assert_array_equal(out, expected)
    aliased = base.copy()
    expected = aliased + aliased[0]
    kernels.add_to_rows(aliased, aliased[0])  # the row itself changes as it is added
    np.testing.assert_array_equal(aliased, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_column_sums_match_numpy(dtype: type) -> None:
    a = np.random.default_rng(10).standard_normal((2048, 300)).astype(dtype)
    tolerance = 1e-5 if dtype is np.float32 else 1e-12
    np.testing.assert_allclose(kernels.column_sums(np, a), a.sum(axis=0), rtol=tolerance,
                               atol=tolerance * 50)
    strided = a[::2]  # not C-contiguous: NumPy's own sum
    assert _same_bits(kernels.column_sums(np, strided), strided.sum(axis=0))


def test_linear_with_bias_through_blas_matches_torch() -> None:
    rng = np.random.default_rng(11)
    data, weight, bias, upstream = (rng.standard_normal(shape).astype(np.float32) for shape in
                                    ((1024, 300), (200, 300), (200,), (1024, 200)))
    results = []
    for lib in (chainrule, torch):
        x, w, b = (lib.tensor(v, requires_grad=True) for v in (data, weight, bias))
        out = lib.nn.functional.linear(x, w, b)
        out.backward(lib.tensor(upstream))
        results.append([np.asarray(t.detach()) for t in (out, x.grad, w.grad, b.grad)])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_relu_backward_equals_where_bit_for_bit(dtype: type) -> None:
    rng = np.random.default_rng(12)
    x = _draw(rng, (300, 300), dtype)
    x.flat[4:8] = [-np.nan, 0.0, -0.0, 1e-40]  # a NaN with its sign bit set, both zeros, tiny
    y = kernels.relu(np, x)
    assert np.signbit(y).any()  # -0.0 and the negative NaN come through relu
    g = _draw(rng, (300, 300), dtype)
    for upstream in (g, g.T, np.broadcast_to(g[0], g.shape)):  # any layout of the gradient
        assert _same_bits(kernels.relu_backward(np, y, upstream), np.where(y <= 0, 0.0, upstream))
    strided = y[:, ::2]
    assert _same_bits(kernels.relu_backward(np, strided, g[:, :150]),
                      np.where(strided <= 0, 0.0, g[:, :150]))


def test_relu_backward_is_laid_out_as_its_gradient() -> None:
    # conv2d's input gradient comes laid out (C, N, H, W) under its (N, C, H, W) shape
    rng = np.random.default_rng(13)
    y = kernels.relu(np, rng.standard_normal((4, 6, 20, 20)).astype(np.float32))
    g = np.ascontiguousarray(rng.standard_normal((6, 4, 20, 20)).astype(np.float32))
    upstream = g.transpose(1, 0, 2, 3)
    result = kernels.relu_backward(np, y, upstream)
    assert result.strides == upstream.strides
    assert _same_bits(np.ascontiguousarray(result), np.where(y <= 0, 0.0, upstream))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_row_sums_match_numpy(dtype: type, monkeypatch: pytest.MonkeyPatch) -> None:
    a = np.random.default_rng(14).standard_normal((64, 3000)).astype(dtype)
    tolerance = 1e-5 if dtype is np.float32 else 1e-12
    np.testing.assert_allclose(kernels.row_sums(a), a.sum(axis=1), rtol=tolerance,
                               atol=tolerance * 50)
    strided = a[:, ::2]  # not C-contiguous: NumPy's own sum
    assert _same_bits(kernels.row_sums(strided), strided.sum(axis=1))
    monkeypatch.setattr(kernels, "_ROW_ROUTINES", {})  # NumPy built without its OpenBLAS
    assert _same_bits(kernels.row_sums(a), a.sum(axis=1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int32])
@pytest.mark.parametrize("shape", [(32, 512), (1, 7), (7, 1), (5, 3), (0, 4)])
def test_transpose_into_is_numpys_transpose(dtype, shape) -> None:
    # float32/float64 go through BLAS omatcopy, the others through NumPy: the same values
    a = (np.random.default_rng(0).standard_normal(shape) * 100).astype(dtype)
    out = np.full(shape[::-1], -1, dtype)
    kernels.transpose_into(out, a)
    np.testing.assert_array_equal(out, a.T)


def test_transpose_into_strided_operands() -> None:
    # row strides of views (a step's state inside a sequence), transposed and reversed views
    rng = np.random.default_rng(1)
    whole = rng.standard_normal((4, 6, 10)).astype(np.float32)
    target = np.zeros((4, 10, 12), np.float32)
    kernels.transpose_into(target[1, :, 2:8], whole[2, :, :10])
    np.testing.assert_array_equal(target[1, :, 2:8], whole[2].T)
    assert not target[1, :, :2].any() and not target[1, :, 8:].any() and not target[0].any()
    for source in (whole[0].T, whole[0, ::-1], whole[0, :, ::2]):
        out = np.empty(source.shape[::-1], np.float32)
        kernels.transpose_into(out, source)
        np.testing.assert_array_equal(out, source.T)


def test_transpose_into_overlapping_operands() -> None:
    square = np.arange(16.0).reshape(4, 4)
    expected = square.T.copy()
    kernels.transpose_into(square, square)  # in place: NumPy's path, which handles overlap
    np.testing.assert_array_equal(square, expected)


def test_erf_without_scipy_matches_the_vectorised_one(monkeypatch):
    # SciPy is optional: without it erf goes element by element through math.erf
    x = np.random.default_rng(0).standard_normal(1000) * 3
    assert kernels._optional("scipy.special") is not None
    with_scipy = kernels.erf(np, x)
    monkeypatch.setitem(kernels._OPTIONAL, "scipy.special", None)  # as if not installed
    without = kernels.erf(np, x)
    np.testing.assert_allclose(without, with_scipy, rtol=1e-15, atol=1e-16)
    assert kernels.erf(np, np.float32(0.5) * np.ones((), np.float32)).dtype == np.float32


def test_optional_module_is_none_when_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "no_such_module_here", None)  # import fails
    monkeypatch.setattr(kernels, "_OPTIONAL", {})
    assert kernels._optional("no_such_module_here") is None


@pytest.mark.parametrize("index_shape", [(4000,), (50, 80)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_index_add_by_sparse_product_is_add_at(index_shape, dtype):
    # repeated and negative row indices: the sparse product adds in np.add.at's order
    rng = np.random.default_rng(0)
    index = rng.integers(-300, 300, index_shape)
    values = rng.standard_normal(index_shape + (16,)).astype(dtype)
    expected = np.zeros((300, 16), dtype)
    np.add.at(expected, index, values)
    added = kernels.index_add(np, (300, 16), index, values)
    np.testing.assert_array_equal(added, expected)
    assert added.dtype == dtype and added.flags.c_contiguous


def test_index_add_without_scipy_takes_add_at(monkeypatch):
    monkeypatch.setitem(kernels._OPTIONAL, "scipy.sparse", None)  # as if not installed
    index = np.arange(5000) % 7
    values = np.ones((5000, 8), np.float32)
    assert kernels.index_add(np, (7, 8), index, values)[0, 0] == 715
