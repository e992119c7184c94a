"""chainrule.datasets: scikit-learn's bundled tables, and the IDX reader on files written here."""

from __future__ import annotations

import gzip
import struct
import sys

import numpy as np
import pytest

import chainrule
from chainrule.datasets import (
    load_breast_cancer,
    load_digits,
    load_iris,
    load_mnist,
    load_wine,
    read_idx,
)
from chainrule.utils.data import DataLoader, TensorDataset

TABLES = {"load_digits": (load_digits, 1797, 64, 10), "load_iris": (load_iris, 150, 4, 3),
          "load_wine": (load_wine, 178, 13, 3),
          "load_breast_cancer": (load_breast_cancer, 569, 30, 2)}


@pytest.mark.parametrize("name", TABLES)
def test_sklearn_tables(name):
    sk_datasets = pytest.importorskip("sklearn.datasets")
    load, n, d, classes = TABLES[name]
    x, y = load()
    assert x.shape == (n, d) and x.dtype == chainrule.float32
    assert y.shape == (n,) and y.dtype == chainrule.int64 and set(y.tolist()) == set(range(classes))
    reference = getattr(sk_datasets, name)()
    np.testing.assert_array_equal(x.numpy(), reference.data.astype(np.float32))
    np.testing.assert_array_equal(y.numpy(), reference.target)
    x64, _ = load(dtype=chainrule.float64)
    np.testing.assert_array_equal(x64.numpy(), reference.data)


def test_table_as_dataset_feeds_a_loader():
    pytest.importorskip("sklearn")
    ds = load_iris(as_dataset=True)
    assert isinstance(ds, TensorDataset) and len(ds) == 150
    xb, yb = next(iter(DataLoader(ds, batch_size=32)))
    assert xb.shape == (32, 4) and yb.shape == (32,)


def test_missing_sklearn_is_explained(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(ImportError, match=r"load_wine needs scikit-learn.*chainrule\[datasets\]"):
        load_wine()


def _idx_bytes(array: np.ndarray, code: int) -> bytes:
    big_endian = array.astype(array.dtype.newbyteorder(">"))
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + big_endian.tobytes()


IDX_CASES = [
    (np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4), 0x08),
    (np.array([-128, 0, 127], dtype=np.int8), 0x09),
    (np.array([[-300, 2], [5, 32767]], dtype=np.int16), 0x0B),
    (np.array([1, -70000, 2**31 - 1], dtype=np.int32), 0x0C),
    (np.array([[0.5, -1.25e-3]], dtype=np.float32), 0x0D),
    (np.array([np.pi, -np.e, 1e300], dtype=np.float64), 0x0E),
    (np.zeros((0, 5), dtype=np.uint8), 0x08),
]


@pytest.mark.parametrize("array, code", IDX_CASES)
@pytest.mark.parametrize("compressed", [False, True])
def test_read_idx_round_trip(array, code, compressed, tmp_path):
    data = _idx_bytes(array, code)
    path = tmp_path / ("a.idx.gz" if compressed else "a.idx")
    path.write_bytes(gzip.compress(data) if compressed else data)
    loaded = read_idx(path)
    assert loaded.shape == array.shape and loaded.numpy().dtype == array.dtype
    np.testing.assert_array_equal(loaded.numpy(), array)
    assert loaded.numpy().dtype.isnative and loaded.numpy().flags.writeable


@pytest.mark.parametrize("content, message", [
    (b"", "not an IDX file"),
    (b"\x01\x02\x08\x01" + bytes(8), "not an IDX file"),
    (b"\x00\x00\x07\x01" + bytes(8), "type code 0x07"),
    (b"\x00\x00\x08\x03\x00\x00", "truncated: its 3 dimensions need a 16-byte header"),
    (_idx_bytes(np.zeros((4, 4), np.uint8), 0x08)[:-3], "truncated: shape \\(4, 4\\)"),
    (_idx_bytes(np.zeros(3, np.int32), 0x0C) + b"\x00", "longer than its header says"),
    (b"\x1f\x8b not really gzip", "damaged gzip"),
])
def test_read_idx_errors_name_the_file(content, message, tmp_path):
    path = tmp_path / "bad-file"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"bad-file.*{message}"):
        read_idx(path)


def test_load_mnist_from_small_files(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 3, 2), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(images, 0x08)))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx_bytes(labels, 0x08))
    x, y = load_mnist(tmp_path, train=False)
    assert x.shape == (5, 1, 3, 2) and x.dtype == chainrule.float32
    np.testing.assert_allclose(x.numpy()[:, 0], images / 255, rtol=1e-6)
    assert y.dtype == chainrule.int64 and y.tolist() == [3, 1, 4, 1, 5]
    ds = load_mnist(tmp_path, train=False, as_dataset=True, dtype=chainrule.float64)
    assert len(ds) == 5 and ds[0][0].dtype == chainrule.float64
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.*downloads nothing"):
        load_mnist(tmp_path, train=True)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx_bytes(labels[:4], 0x08))
    with pytest.raises(ValueError, match=r"images \(5, 3, 2\) and labels \(4,\)"):
        load_mnist(tmp_path, train=False)


def test_end_to_end_learns_digits(tmp_path):
    """Dataset -> DataLoader -> model -> Adam + schedule -> checkpoint: over 95% held out (98.9% seen)."""
    pytest.importorskip("sklearn")
    from chainrule import nn
    from chainrule.nn import functional as F
    from chainrule.utils.data import random_split

    chainrule.manual_seed(0)
    x, y = load_digits()
    ds = TensorDataset(x / 16, y)
    train, test = random_split(ds, [0.8, 0.2], generator=chainrule.Generator().manual_seed(0))
    hidden, out = nn.Linear(64, 64), nn.Linear(64, 10)
    params = [*hidden.parameters(), *out.parameters()]

    def model(inputs):
        return out(F.relu(hidden(inputs)))

    opt = chainrule.optim.Adam(params, lr=0.01)
    loader = DataLoader(train, batch_size=64, shuffle=True,
                        generator=chainrule.Generator().manual_seed(0))
    sched = chainrule.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.02, epochs=8,
                                                    steps_per_epoch=len(loader))
    for _ in range(8):
        for xb, yb in loader:
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
            sched.step()
    chainrule.save({"hidden": hidden.state_dict(), "out": out.state_dict()}, tmp_path / "d.safetensors")
    restored_hidden, restored_out = nn.Linear(64, 64), nn.Linear(64, 10)
    ckpt = chainrule.load(tmp_path / "d.safetensors")
    restored_hidden.load_state_dict(ckpt["hidden"])
    restored_out.load_state_dict(ckpt["out"])
    xt, yt = next(iter(DataLoader(test, batch_size=len(test))))
    with chainrule.no_grad():
        predictions = restored_out(F.relu(restored_hidden(xt))).argmax(dim=1)
    accuracy = (predictions == yt).float().mean().item()
    assert accuracy > 0.95
