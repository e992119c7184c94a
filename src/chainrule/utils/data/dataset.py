"""Datasets: indexable collections of samples, and ways to split or subset them."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

from ...ops.creation import Generator, default_generator, randperm
from ...tensor import Tensor


class Dataset:
    """A map-style dataset: ``dataset[i]`` is the i-th sample; subclasses define
    ``__getitem__`` and (for samplers) ``__len__``. ``a + b`` concatenates.

    >>> class Squares(chainrule.utils.data.Dataset):
    ...     def __len__(self): return 10
    ...     def __getitem__(self, i): return chainrule.tensor(float(i)), chainrule.tensor(float(i * i))
    """

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A dataset that is a stream: subclasses define ``__iter__``; the DataLoader batches
    what it yields, in order (no sampler, no shuffling).

    >>> class Counter(chainrule.utils.data.IterableDataset):
    ...     def __iter__(self): return iter(range(100))
    """

    def __iter__(self) -> Iterator[Any]:
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__")


class TensorDataset(Dataset):
    """Samples are the rows of tensors that share their first dimension:
    ``dataset[i] == (t[i] for t in tensors)``.

    >>> ds = chainrule.utils.data.TensorDataset(features, labels)
    >>> x0, y0 = ds[0]
    """

    def __init__(self, *tensors: Tensor) -> None:
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        sizes = [tuple(t.shape) for t in tensors]
        if any(len(s) == 0 for s in sizes) or len({s[0] for s in sizes}) != 1:
            raise ValueError(
                f"Size mismatch between tensors: TensorDataset needs tensors with the same first "
                f"dimension (one row per sample), got shapes {sizes}"
            )
        self.tensors = tensors

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]


class ConcatDataset(Dataset):
    """Several datasets one after another.

    >>> both = chainrule.utils.data.ConcatDataset([train_a, train_b])
    """

    def __init__(self, datasets: Sequence[Dataset]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise TypeError("ConcatDataset does not support IterableDataset")
        self.cumulative_sizes = []
        total = 0
        for d in self.datasets:
            total += len(d)
            self.cumulative_sizes.append(total)

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index: int) -> Any:
        if index < 0:
            if -index > len(self):
                raise ValueError("absolute value of index should not exceed dataset length")
            index += len(self)
        for i, end in enumerate(self.cumulative_sizes):
            if index < end:
                start = self.cumulative_sizes[i - 1] if i else 0
                return self.datasets[i][index - start]
        raise IndexError(f"ConcatDataset index {index} is out of range for length {len(self)}")


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order.

    >>> first_hundred = chainrule.utils.data.Subset(ds, range(100))
    """

    def __init__(self, dataset: Dataset, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx: Any) -> Any:
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __getitems__(self, indices: list[int]) -> list[Any]:
        # a batch at once, for datasets that fetch batches faster than single samples
        if callable(getattr(self.dataset, "__getitems__", None)):
            return self.dataset.__getitems__([self.indices[i] for i in indices])
        return [self.dataset[self.indices[i]] for i in indices]

    def __len__(self) -> int:
        return len(self.indices)


def random_split(dataset: Dataset, lengths: Sequence[int | float],
                 generator: Generator | None = default_generator) -> list[Subset]:
    """Split ``dataset`` at random into non-overlapping subsets of the given lengths, or of
    the given fractions (floored, the remainder dealt out one by one from the first).

    >>> train, val = chainrule.utils.data.random_split(ds, [0.8, 0.2],
    ...                                                 generator=chainrule.Generator().manual_seed(0))
    """
    n = len(dataset)
    lengths = list(lengths)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        counts = []
        for i, frac in enumerate(lengths):
            if frac < 0 or frac > 1:
                raise ValueError(f"Fraction at index {i} is not between 0 and 1")
            counts.append(int(math.floor(n * frac)))
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        for i, count in enumerate(counts):
            if count == 0:
                warnings.warn(
                    f"Length of split at index {i} is 0. This might result in an empty dataset.",
                    stacklevel=2,
                )
        lengths = counts
    if sum(lengths) != n:
        raise ValueError(
            f"random_split: sum of input lengths ({sum(lengths)}) does not equal the length of "
            f"the input dataset ({n}); give lengths that add up to it, or fractions that add up to 1"
        )
    order = randperm(sum(lengths), generator=generator).tolist()
    subsets, offset = [], 0
    for length in lengths:
        subsets.append(Subset(dataset, order[offset:offset + length]))
        offset += length
    return subsets
