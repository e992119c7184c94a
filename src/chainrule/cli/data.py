"""The datasets `chainrule train` knows: scikit-learn's bundled tables, an IDX image/label
pair (MNIST and its relatives) and a CSV file with a target column, split into train and
test parts the same way for the same seed."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass

import numpy as np

from ._parser import UsageError

BUILTIN = ("digits", "iris", "wine", "breast-cancer")


@dataclass
class Data:
    """Features and int64 labels, split; ``image`` is (channels, rows, cols) for image data
    (what a CNN or a row-by-row RNN needs), None for tables."""

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    classes: int
    image: tuple[int, int, int] | None

    @property
    def features(self) -> int:
        return int(np.prod(self.train_x.shape[1:]))


def load(spec: str, *, labels: str | None = None, target: str = "target", test_fraction: float = 0.2,
         seed: int = 0, dtype: type = np.float32) -> Data:
    """Load the dataset ``spec`` names: a built-in name, a ``.csv`` file (with ``target``
    as the label column) or an IDX image file (with ``labels`` the IDX label file).

    >>> data = load("digits", seed=0)
    >>> data.train_x.shape, data.image
    ((1438, 64), (1, 8, 8))
    """
    if labels is not None and (spec in BUILTIN or spec.lower().endswith((".csv", ".csv.gz"))):
        raise UsageError(f"--labels goes with an IDX image file, not with {spec!r}")
    if spec in BUILTIN:
        x, y, image = _builtin(spec)
        name = spec
    elif spec.lower().endswith((".csv", ".csv.gz")):
        _exists(spec, "CSV file")
        x, y = _read_csv(spec, target)
        image, name = None, os.path.basename(spec)
    elif labels is not None:
        _exists(spec, "IDX image file")
        _exists(labels, "IDX label file")
        x, y, image = _read_idx_pair(spec, labels)
        name = os.path.basename(spec)
    elif os.path.exists(spec) or os.sep in spec or "." in spec:
        if not os.path.exists(spec):
            raise UsageError(f"dataset file {spec!r} does not exist")
        raise UsageError(
            f"cannot tell what {spec!r} holds: give a .csv file (with --target COLUMN) or an IDX "
            f"image file with --labels LABEL_FILE"
        )
    else:
        raise UsageError(
            f"unknown dataset {spec!r}: choose one of {', '.join(BUILTIN)}, a .csv file, or an IDX "
            f"image file with --labels"
        )
    return _split(name, x.astype(dtype, copy=False), y, image, test_fraction, seed)


def _exists(path: str, what: str) -> None:
    if not os.path.isfile(path):
        raise UsageError(f"{what} {path!r} does not exist")


def _builtin(name: str) -> tuple[np.ndarray, np.ndarray, tuple | None]:
    from .. import datasets
    from .._dtype import float64

    loader = {"digits": datasets.load_digits, "iris": datasets.load_iris,
              "wine": datasets.load_wine, "breast-cancer": datasets.load_breast_cancer}[name]
    try:
        features, labels = loader(dtype=float64)
    except ImportError as error:
        raise UsageError(str(error)) from None
    x, y = features.numpy(), labels.numpy()
    if name == "digits":
        return x / 16.0, y, (1, 8, 8)  # pixel values are 0..16
    return _standardize(x), y, None


def _standardize(x: np.ndarray) -> np.ndarray:
    # tables mix units (mm, counts, ratios); unit variance puts every feature on one scale.
    # Statistics over the whole table: the test rows' labels are never looked at.
    std = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)


def _read_csv(path: str, target: str) -> tuple[np.ndarray, np.ndarray]:
    import gzip

    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise UsageError(f"CSV file {path!r} is empty")
    header, body = [h.strip() for h in rows[0]], [r for r in rows[1:] if r]
    if target not in header:
        raise UsageError(
            f"CSV file {path!r} has no column {target!r} (its columns: {', '.join(header)}); "
            f"name the label column with --target"
        )
    if not body:
        raise UsageError(f"CSV file {path!r} has a header but no rows")
    column = header.index(target)
    features = [i for i in range(len(header)) if i != column]
    x = np.empty((len(body), len(features)))
    for r, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise UsageError(f"CSV file {path!r}, line {r}: {len(row)} fields, the header has "
                             f"{len(header)}")
        for j, i in enumerate(features):
            try:
                x[r - 2, j] = float(row[i])
            except ValueError:
                raise UsageError(f"CSV file {path!r}, line {r}: column {header[i]!r} holds "
                                 f"{row[i]!r}, not a number") from None
    # labels may be any strings: classes are their sorted distinct values
    _, y = np.unique([row[column].strip() for row in body], return_inverse=True)
    return _standardize(x), y.astype(np.int64)


def _read_idx_pair(images_path: str, labels_path: str) -> tuple[np.ndarray, np.ndarray, tuple]:
    from ..datasets import read_idx

    try:
        images, labels = read_idx(images_path).numpy(), read_idx(labels_path).numpy()
    except ValueError as error:
        raise UsageError(str(error)) from None
    if images.ndim not in (3, 4) or labels.ndim != 1 or len(images) != len(labels):
        raise UsageError(f"expected IDX images (N, rows, cols) and N labels, got images "
                         f"{images.shape} and labels {labels.shape}")
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    image = (1, *images.shape[1:]) if images.ndim == 3 else tuple(images.shape[1:])
    x = images.reshape(len(images), -1).astype(np.float64) / scale
    return x, labels.astype(np.int64), image


def _split(name: str, x: np.ndarray, y: np.ndarray, image: tuple | None, test_fraction: float,
           seed: int) -> Data:
    if len(y) < 2:
        raise UsageError(f"dataset {name!r} has {len(y)} sample(s); training needs at least 2")
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = min(max(1, round(test_fraction * len(y))), len(y) - 1)
    test, train = order[:n_test], order[n_test:]
    classes = int(y.max()) + 1
    return Data(name, np.ascontiguousarray(x[train]), y[train], np.ascontiguousarray(x[test]),
                y[test], classes, image)
