"""End to end on real data: networks trained with chainrule reach textbook accuracy on the
scikit-learn handwritten digits (fixed split, seeded), each within a minute on 2 cores."""

from __future__ import annotations

import time

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn as nn
import chainrule.nn.functional as F
from chainrule.utils.data import DataLoader, TensorDataset

pytest.importorskip("sklearn")
datasets = pytest.importorskip("chainrule.datasets")


def _split(seed: int = 0):
    features, labels = datasets.load_digits()
    x = features.numpy().astype(np.float32) / 16.0
    y = labels.numpy().astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    test, train = order[:360], order[360:]
    return (cr.tensor(x[train]), cr.tensor(y[train])), (cr.tensor(x[test]), cr.tensor(y[test]))


def _train(model, train, epochs, lr, reshape=None):
    x, y = train
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True,
                        generator=cr.Generator().manual_seed(0))
    optimizer = cr.optim.Adam(model.parameters(), lr=lr)
    scheduler = cr.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    model.train()
    for _ in range(epochs):
        for xb, yb in loader:
            if reshape is not None:
                xb = xb.reshape(reshape)
            optimizer.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            optimizer.step()
        scheduler.step()


def _accuracy(model, data, reshape=None):
    x, y = data
    model.eval()
    with cr.no_grad():
        logits = model(x.reshape(reshape) if reshape is not None else x)
    return float((logits.argmax(1) == y).float().mean().item())


def test_mlp_learns_digits_to_97_percent():
    cr.manual_seed(0)
    train, test = _split()
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                          nn.Linear(64, 10))
    start = time.perf_counter()
    _train(model, train, epochs=30, lr=3e-3)
    elapsed = time.perf_counter() - start
    accuracy = _accuracy(model, test)
    assert accuracy >= 0.97, accuracy
    assert elapsed < 60, elapsed


def test_small_cnn_learns_digits_to_98_percent():
    cr.manual_seed(0)
    train, test = _split()
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10),
    )
    start = time.perf_counter()
    _train(model, train, epochs=20, lr=2e-3, reshape=(-1, 1, 8, 8))
    elapsed = time.perf_counter() - start
    accuracy = _accuracy(model, test, reshape=(-1, 1, 8, 8))
    assert accuracy >= 0.98, accuracy
    assert elapsed < 60, elapsed
