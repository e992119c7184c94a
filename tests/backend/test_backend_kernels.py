"""ops/kernels.py on the second device: the kernels listed as backend-specific refuse it by
name (and run on NumPy), the others give NumPy's results in Array API terms."""

from __future__ import annotations

import array_api_strict as strict
import numpy as np
import pytest

from chainrule.ops import kernels

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 3, 5, 4))
INDEX = np.array([[0, 2, 2], [1, 0, 1]])


def _both(fn, *arrays):
    """fn on NumPy arrays and on array_api_strict arrays, the latter brought back."""
    return fn(np, *arrays), np.asarray(fn(strict, *[strict.asarray(a) for a in arrays]))


REFUSED = {
    "erf": lambda xp, x: kernels.erf(xp, x),
    "index_add": lambda xp, x: kernels.index_add(xp, (3,), xp.asarray([0, 0]), x[0, :2]),
    "scatter_add": lambda xp, x: kernels.scatter_add(xp, x[:2, :3], 1, xp.asarray(INDEX),
                                                     x[:2, :3]),
    "scatter": lambda xp, x: kernels.scatter(xp, x[:2, :3], 1, xp.asarray(INDEX), x[:2, :3]),
    "advanced_index": lambda xp, x: kernels.advanced_index(xp, x, (slice(None), xp.asarray([1]))),
}


def test_every_listed_kernel_is_exercised_here():
    assert set(REFUSED) == set(kernels.BACKEND_SPECIFIC)


@pytest.mark.parametrize("name", list(REFUSED))
def test_backend_specific_kernels_refuse_strict_by_name_and_run_on_numpy(name):
    x = RNG.standard_normal((3, 4))
    REFUSED[name](np, x)
    with pytest.raises(kernels.MissingKernel, match=name) as caught:
        REFUSED[name](strict, strict.asarray(x))
    assert caught.value.kernel == name and "array_api_strict" in str(caught.value)


GENERIC = {
    "pad": lambda xp, x: kernels.pad(xp, x, ((0, 0), (1, 0), (2, -1), (0, 3)), 1.5),
    "einsum": lambda xp, x: kernels.einsum(xp, "abij,abjk->abik", x, xp.permute_dims(x, (0, 1, 3, 2))),
    "einsum-sum": lambda xp, x: kernels.einsum(xp, "abij->b", x),
    "im2col": lambda xp, x: kernels.im2col(xp, x, (2, 3), (1, 1), ((1, 0), (0, 1)), (2, 1), -1.0),
    "col2im": lambda xp, x: kernels.col2im(xp, xp.reshape(x, (1, 20, 6)), (3, 4), (2, 2), (1, 1),
                                           ((0, 0), (0, 0)), (1, 1)),
    "select": lambda xp, x: kernels.select(xp, x > 0, x, -x),
    "cumsum": lambda xp, x: kernels.cumsum(xp, x, 2),
    "gather": lambda xp, x: kernels.gather(xp, x[0, 0, :2, :3], 1, xp.asarray(INDEX)),
    "sigmoid": lambda xp, x: kernels.sigmoid(xp, x * 20),
    "lstm_cell": lambda xp, x: kernels.lstm_cell(xp, x[0, 0, ...], x[1, 0, ...], x[0, 1, :, :1])[0],
    "lstm_layer": lambda xp, x: kernels.lstm_layer(xp, x[0, ...], x[1, 0, :, :1], x[1, 1, :, :1],
                                                   x[1, 2, :4, :], x[1, 0, :4, 1:2], x[1, 2, 4, :],
                                                   True)[0],
}


@pytest.mark.parametrize("name", list(GENERIC))
def test_array_api_versions_give_numpys_results(name):
    ours, reference = _both(GENERIC[name], X)[::-1]
    np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-12)
