"""chainrule.utils.data: datasets, samplers, DataLoader batching, shuffling and collation."""

from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest

import chainrule
from chainrule.utils.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    TensorDataset,
    default_collate,
    random_split,
)

Point = namedtuple("Point", "x y")


def _dataset(n=10):
    x = chainrule.arange(n * 2, dtype=chainrule.float32).reshape(n, 2)
    return TensorDataset(x, chainrule.arange(n))


def _labels(loader):
    return [yb.tolist() for _, yb in loader]


def test_tensor_dataset():
    ds = _dataset()
    assert len(ds) == 10
    x3, y3 = ds[3]
    assert x3.tolist() == [6.0, 7.0] and y3.item() == 3
    with pytest.raises(ValueError, match=r"same first dimension.*\[\(3,\), \(4,\)\]"):
        TensorDataset(chainrule.zeros(3), chainrule.zeros(4))


def test_sequential_batches_and_drop_last():
    loader = DataLoader(_dataset(), batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and [tuple(xb.shape) for xb, _ in batches] == [(4, 2), (4, 2), (2, 2)]
    assert _labels(loader) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    dropped = DataLoader(_dataset(), batch_size=4, drop_last=True)
    assert len(dropped) == 2 and _labels(dropped) == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_shuffle_is_reproducible_with_a_seeded_generator():
    def epochs(seed):
        loader = DataLoader(_dataset(), batch_size=3, shuffle=True,
                            generator=chainrule.Generator().manual_seed(seed))
        return [_labels(loader) for _ in range(3)]

    first, again = epochs(0), epochs(0)
    assert first == again
    assert first[0] != first[1]  # a new order each epoch
    for epoch in first:
        assert sorted(sum(epoch, [])) == list(range(10))
    assert epochs(1) != first


def test_shuffle_without_generator_follows_manual_seed():
    loader = DataLoader(_dataset(), batch_size=5, shuffle=True)
    chainrule.manual_seed(123)
    a = [_labels(loader), _labels(loader)]
    chainrule.manual_seed(123)
    assert [_labels(loader), _labels(loader)] == a


def test_random_sampler_replacement_and_num_samples():
    g = chainrule.Generator().manual_seed(0)
    draws = list(RandomSampler(range(4), replacement=True, num_samples=50, generator=g))
    assert len(draws) == 50 and set(draws) <= {0, 1, 2, 3}
    longer = list(RandomSampler(range(4), num_samples=10, generator=g))
    assert len(longer) == 10 and sorted(longer[:8]) == [0, 0, 1, 1, 2, 2, 3, 3]
    with pytest.raises(ValueError, match="num_samples should be a positive integer"):
        RandomSampler(range(4), num_samples=0)


def test_sampler_and_batch_sampler_arguments():
    reverse = list(range(9, -1, -1))
    assert _labels(DataLoader(_dataset(), batch_size=4, sampler=reverse)) == [
        [9, 8, 7, 6], [5, 4, 3, 2], [1, 0]]
    batches = [[0, 5], [1, 2, 3]]
    loader = DataLoader(_dataset(), batch_sampler=batches)
    assert _labels(loader) == batches and len(loader) == 2
    sampler = BatchSampler(SequentialSampler(range(5)), batch_size=2, drop_last=True)
    assert list(sampler) == [[0, 1], [2, 3]] and len(sampler) == 2


def test_no_auto_batching():
    loader = DataLoader([np.array([1.0, 2.0]), np.array([3.0, 4.0])], batch_size=None)
    items = list(loader)
    assert len(loader) == 2 and isinstance(items[0], chainrule.Tensor)
    assert items[1].tolist() == [3.0, 4.0]


@pytest.mark.parametrize("kwargs, message", [
    (dict(shuffle=True, sampler=[0]), "mutually exclusive with shuffle"),
    (dict(batch_sampler=[[0]], batch_size=2), "batch_sampler option is mutually exclusive"),
    (dict(batch_sampler=[[0]], drop_last=True), "batch_sampler option is mutually exclusive"),
    (dict(batch_size=None, drop_last=True), "mutually exclusive with drop_last"),
    (dict(num_workers=-1), "num_workers"),
    (dict(batch_size=0), "batch_size should be a positive integer"),
])
def test_loader_argument_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DataLoader(_dataset(), **kwargs)


class Stream(IterableDataset):
    def __iter__(self):
        return iter(range(7))


def test_iterable_dataset_batches_in_order():
    assert [b.tolist() for b in DataLoader(Stream(), batch_size=3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [b.tolist() for b in DataLoader(Stream(), batch_size=3, drop_last=True)] == [
        [0, 1, 2], [3, 4, 5]]
    with pytest.raises(ValueError, match="shuffle"):
        DataLoader(Stream(), shuffle=True)
    with pytest.raises(TypeError):
        len(DataLoader(Stream()))


def test_collate_structures_like_torch():
    torch = pytest.importorskip("torch")
    samples = [({"img": np.full((2, 2), i, np.float32), "name": f"s{i}", "w": 0.5 * i},
                [i, True], Point(chainrule.tensor([i, i]), np.int64(i))) for i in range(3)]
    ours = default_collate(samples)
    theirs = torch.utils.data.default_collate(
        [({"img": s[0]["img"], "name": s[0]["name"], "w": s[0]["w"]}, s[1],
          Point(torch.tensor(s[2].x.tolist()), s[2].y)) for s in samples])

    def same(a, b):
        if isinstance(b, torch.Tensor):
            assert isinstance(a, chainrule.Tensor) and str(a.dtype)[10:] == str(b.dtype)[6:]
            np.testing.assert_array_equal(a.numpy(), b.numpy())
        elif isinstance(b, dict):
            assert list(a) == list(b)
            for k in b:
                same(a[k], b[k])
        elif isinstance(b, (list, tuple)):
            assert type(a) is type(b) and len(a) == len(b)
            for x, y in zip(a, b):
                same(x, y)
        else:
            assert a == b

    same(ours, theirs)


def test_collate_errors():
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([[1, 2], [3]])
    with pytest.raises(TypeError, match="default_collate: batch must contain"):
        default_collate([object(), object()])


def test_subset_concat_and_custom_dataset():
    class Squares(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return i * i

    sub = Subset(_dataset(), [7, 2])
    assert len(sub) == 2 and sub[0][1].item() == 7
    assert _labels(DataLoader(sub, batch_size=2)) == [[7, 2]]
    both = Squares() + Squares()
    assert isinstance(both, ConcatDataset) and len(both) == 8 and both[5] == 1 and both[-1] == 9
    with pytest.raises(IndexError):
        both[8]
    assert [b.tolist() for b in DataLoader(Squares(), batch_size=3)] == [[0, 1, 4], [9]]


def test_random_split_lengths_and_fractions():
    ds = _dataset(10)
    a, b = random_split(ds, [7, 3], generator=chainrule.Generator().manual_seed(0))
    ids = sorted([a[i][1].item() for i in range(7)] + [b[i][1].item() for i in range(3)])
    assert (len(a), len(b)) == (7, 3) and ids == list(range(10))
    again = random_split(ds, [7, 3], generator=chainrule.Generator().manual_seed(0))
    assert again[0].indices == a.indices
    parts = random_split(ds, [0.5, 0.3, 0.2], generator=chainrule.Generator().manual_seed(1))
    assert [len(p) for p in parts] == [5, 3, 2]
    uneven = random_split(_dataset(11), [0.5, 0.5])
    assert [len(p) for p in uneven] == [6, 5]
    with pytest.raises(ValueError, match=r"sum of input lengths \(9\) does not equal .* \(10\)"):
        random_split(ds, [5, 4])


def test_tensor_dataset_batches_equal_stacked_samples():
    ds = TensorDataset(chainrule.randn(9, 2, 3), chainrule.arange(9), chainrule.rand(9) > 0.5)
    gen = lambda: chainrule.Generator().manual_seed(5)  # noqa: E731
    fast = list(DataLoader(ds, batch_size=4, shuffle=True, generator=gen()))
    generic = list(DataLoader(Subset(ds, range(9)), batch_size=4, shuffle=True, generator=gen()))
    assert len(fast) == len(generic) == 3
    for batch, expected in zip(fast, generic):
        assert isinstance(batch, list) and len(batch) == 3
        for a, b in zip(batch, expected):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a.numpy(), b.numpy())
