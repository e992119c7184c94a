"""Small real datasets, offline: scikit-learn's bundled tables and MNIST-style IDX files.

Nothing is downloaded. The table loaders need scikit-learn (``pip install
'chainrule[datasets]'``), which ships the data; the IDX reader reads files that are
already on disk (MNIST, Fashion-MNIST and others use the format).

>>> import chainrule.datasets
>>> x, y = chainrule.datasets.load_iris()
>>> x.shape, y.shape
(chainrule.Size([150, 4]), chainrule.Size([150]))
"""

from __future__ import annotations

import gzip
import os
from typing import Any

import numpy as np

from . import _dtype
from .tensor import Tensor, _wrap
from .utils.data import TensorDataset

Table = tuple[Tensor, Tensor] | TensorDataset


def _sklearn_table(name: str, dtype: Any, as_dataset: bool) -> Table:
    try:
        from sklearn import datasets as sk_datasets
    except ImportError:
        raise ImportError(
            f"chainrule.datasets.{name} needs scikit-learn, which ships the data: install it with "
            f"pip install 'chainrule[datasets]' (or pip install scikit-learn)"
        ) from None
    bunch = getattr(sk_datasets, name)()
    np_dtype = _dtype.get_default_dtype().np if dtype is None else _dtype.to_numpy_dtype(dtype)
    features = _wrap(np.ascontiguousarray(bunch.data, dtype=np_dtype))
    labels = _wrap(np.ascontiguousarray(bunch.target, dtype=np.int64))
    return TensorDataset(features, labels) if as_dataset else (features, labels)


def load_digits(*, as_dataset: bool = False, dtype: Any = None) -> Table:
    """8x8 images of handwritten digits: 1797 samples, 64 features (pixel values 0-16),
    10 classes. Features in the default float dtype (or ``dtype``), labels int64.

    >>> x, y = chainrule.datasets.load_digits()
    >>> ds = chainrule.datasets.load_digits(as_dataset=True)   # a TensorDataset
    """
    return _sklearn_table("load_digits", dtype, as_dataset)


def load_iris(*, as_dataset: bool = False, dtype: Any = None) -> Table:
    """Iris flowers: 150 samples, 4 measurements, 3 species.

    >>> x, y = chainrule.datasets.load_iris()
    """
    return _sklearn_table("load_iris", dtype, as_dataset)


def load_wine(*, as_dataset: bool = False, dtype: Any = None) -> Table:
    """Wine recognition: 178 samples, 13 chemical measurements, 3 cultivars.

    >>> x, y = chainrule.datasets.load_wine()
    """
    return _sklearn_table("load_wine", dtype, as_dataset)


def load_breast_cancer(*, as_dataset: bool = False, dtype: Any = None) -> Table:
    """Breast cancer Wisconsin (diagnostic): 569 samples, 30 features, 2 classes.

    >>> x, y = chainrule.datasets.load_breast_cancer()
    """
    return _sklearn_table("load_breast_cancer", dtype, as_dataset)


# ----------------------------------------------------------------------- IDX files
# The IDX header: two zero bytes, a type code, the number of dims, then each dim as a
# big-endian uint32; the data follows, big-endian, row-major.
_IDX_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str | os.PathLike) -> Tensor:
    """Read an IDX file (gzip-compressed or not) into a tensor of its type and shape.

    >>> images = chainrule.datasets.read_idx("train-images-idx3-ubyte.gz")   # uint8 (N, 28, 28)
    """
    path = os.fspath(path)
    with open(path, "rb") as fh:
        raw = fh.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise ValueError(f"read_idx: {path!r} is a damaged gzip file ({error})") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00":
        raise ValueError(
            f"read_idx: {path!r} is not an IDX file: it should start with two zero bytes, a type "
            f"code and the number of dimensions, but starts with {raw[:4]!r}"
        )
    type_code, ndim = raw[2], raw[3]
    if type_code not in _IDX_TYPES:
        raise ValueError(
            f"read_idx: {path!r} has IDX type code {type_code:#04x}; known codes are "
            f"{', '.join(f'{c:#04x}' for c in _IDX_TYPES)}"
        )
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise ValueError(
            f"read_idx: {path!r} is truncated: its {ndim} dimensions need a {header_len}-byte "
            f"header, the file has {len(raw)} bytes"
        )
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_TYPES[type_code]
    expected = header_len + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        state = "truncated" if len(raw) < expected else "longer than its header says"
        raise ValueError(
            f"read_idx: {path!r} is {state}: shape {shape} of {dtype.newbyteorder('=')} needs "
            f"{expected} bytes, the file has {len(raw)}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header_len).reshape(shape)
    return _wrap(data.astype(dtype.newbyteorder("="), copy=True))


def load_mnist(root: str | os.PathLike, train: bool = True, *, as_dataset: bool = False,
               dtype: Any = None) -> Table:
    """MNIST (or Fashion-MNIST) from the IDX files in ``root``: images scaled to [0, 1]
    with shape (N, 1, rows, cols) in the default float dtype (or ``dtype``), labels int64.

    Looks for ``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte`` (``t10k-`` for the
    test split), optionally ``.gz``; nothing is downloaded.

    >>> x, y = chainrule.datasets.load_mnist("data/mnist", train=False)
    """
    prefix = "train" if train else "t10k"
    images = read_idx(_find(root, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_find(root, f"{prefix}-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"load_mnist: expected images of shape (N, rows, cols) and N labels in {root!r}, got "
            f"images {tuple(images.shape)} and labels {tuple(labels.shape)}"
        )
    np_dtype = _dtype.get_default_dtype().np if dtype is None else _dtype.to_numpy_dtype(dtype)
    pixels = images._data.astype(np_dtype)[:, None]
    pixels /= 255
    features, targets = _wrap(pixels), _wrap(labels._data.astype(np.int64))
    return TensorDataset(features, targets) if as_dataset else (features, targets)


def _find(root: str | os.PathLike, stem: str) -> str:
    dotted = stem.replace("-idx", ".idx")  # the spelling some mirrors use
    candidates = [stem, stem + ".gz", dotted, dotted + ".gz"]
    for name in candidates:
        path = os.path.join(root, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(
        f"load_mnist: none of {candidates} is in {os.fspath(root)!r}; chainrule downloads "
        f"nothing, so put the IDX files there first"
    )
