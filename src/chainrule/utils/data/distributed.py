"""DistributedSampler: each rank of a data-parallel job reads its own share of a dataset."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sized

from ...ops.creation import Generator, randperm
from .sampler import Sampler


class DistributedSampler(Sampler):
    """The indices for rank ``rank`` of ``num_replicas``, as ``torch.utils.data.DistributedSampler``.

    Every epoch all ranks draw the same permutation (seeded with ``seed + epoch``: call
    ``set_epoch`` at the start of each epoch for a new order) and rank r takes positions
    r, r + num_replicas, ... of it. So that every rank gets the same number of indices,
    the list is padded with its own first indices up to a multiple of ``num_replicas``
    (or, with ``drop_last``, cut down to one). ``num_replicas`` and ``rank`` default to
    the process group's world size and rank.

    >>> sampler = DistributedSampler(dataset, shuffle=True, seed=0)
    >>> loader = DataLoader(dataset, batch_size=32, sampler=sampler)
    >>> for epoch in range(epochs):
    ...     sampler.set_epoch(epoch)
    ...     for x, y in loader: ...
    """

    def __init__(self, dataset: Sized, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False) -> None:
        if num_replicas is None or rank is None:
            from ... import distributed

            if not distributed.is_initialized():
                raise RuntimeError(
                    "DistributedSampler: num_replicas and rank default to the process group's, "
                    "but it is not initialized; call chainrule.distributed.init_process_group "
                    "first or pass num_replicas= and rank="
                )
            num_replicas = distributed.get_world_size() if num_replicas is None else num_replicas
            rank = distributed.get_rank() if rank is None else rank
        if num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be at least 1, got {num_replicas}")
        if rank >= num_replicas or rank < 0:
            raise ValueError(
                f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]"
            )
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        if drop_last and len(dataset) % num_replicas != 0:
            # drop the tail so that every rank gets the same number without repeats
            self.num_samples = math.ceil((len(dataset) - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(len(dataset) / num_replicas)
        self.total_size = self.num_samples * num_replicas
        self.shuffle = shuffle
        self.seed = seed

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            generator = Generator().manual_seed(self.seed + self.epoch)
            indices = randperm(n, generator=generator).tolist()
        else:
            indices = list(range(n))
        if not self.drop_last:
            padding = self.total_size - len(indices)
            if padding <= len(indices):
                indices += indices[:padding]
            else:
                indices += (indices * math.ceil(padding / len(indices)))[:padding]
        else:
            indices = indices[:self.total_size]
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch`` in the shuffle's seed, so each epoch visits the data in a new order
        (the same on every rank).

        >>> sampler.set_epoch(3)
        """
        self.epoch = epoch
