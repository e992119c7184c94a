"""What needs no MPI job: errors before init_process_group, and DistributedSampler's
arithmetic for explicit ranks (against PyTorch's where the order does not depend on its RNG)."""

from __future__ import annotations

import pytest

import chainrule as cr
import chainrule.distributed as dist
from chainrule.distributed import DistributedDataParallel as DDP
from chainrule.utils.data import DistributedSampler


def test_nothing_runs_before_init_process_group() -> None:
    assert dist.is_available() and not dist.is_initialized()
    for call in (dist.get_rank, dist.get_world_size, dist.barrier,
                 lambda: dist.all_reduce(cr.ones(2)), lambda: DDP(cr.nn.Linear(2, 2))):
        with pytest.raises(ValueError, match="has not been initialized.*init_process_group"):
            call()
    with pytest.raises(RuntimeError, match="process group's, but it is not initialized"):
        DistributedSampler(range(4))


def test_only_the_mpi_backend() -> None:
    with pytest.raises(ValueError, match="backend 'nccl' is not supported.*mpiexec -n N"):
        dist.init_process_group(backend="nccl")
    with pytest.raises(ValueError, match="init_method and store must be left unset"):
        dist.init_process_group(backend="mpi", init_method="tcp://10.0.0.1:23456")
    assert not dist.is_initialized()


@pytest.mark.parametrize("n, replicas, drop_last", [(10, 2, False), (10, 3, False), (7, 3, True),
                                                     (2, 4, False), (0, 2, False)])
def test_sampler_splits_like_pytorch(n: int, replicas: int, drop_last: bool) -> None:
    torch = pytest.importorskip("torch")
    for rank in range(replicas):
        ours = DistributedSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        theirs = torch.utils.data.DistributedSampler(range(n), replicas, rank, shuffle=False,
                                                     drop_last=drop_last)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)


@pytest.mark.parametrize("n, replicas", [(12, 3), (13, 4), (5, 2)])
def test_shuffled_epoch_covers_the_data_once_plus_padding(n: int, replicas: int) -> None:
    samplers = [DistributedSampler(range(n), replicas, r, seed=7) for r in range(replicas)]
    orders = []
    for epoch in range(3):
        parts = []
        for sampler in samplers:
            sampler.set_epoch(epoch)
            parts.append(list(sampler))
        assert len({len(p) for p in parts}) == 1            # equal counts on every rank
        flat = sorted(i for part in parts for i in part)
        padding = len(flat) - n
        assert 0 <= padding < replicas
        assert sorted(set(flat)) == list(range(n))          # every example reaches a rank
        assert len(flat) - len(set(flat)) == padding        # and only padding repeats
        orders.append(parts)
    assert orders[0] != orders[1] != orders[2]
    again = DistributedSampler(range(n), replicas, 0, seed=7)
    again.set_epoch(1)
    assert list(again) == orders[1][0]                       # same seed and epoch, same order


def test_sampler_rejects_a_rank_outside_the_group() -> None:
    with pytest.raises(ValueError, match=r"Invalid rank 2, rank should be in the interval \[0, 1\]"):
        DistributedSampler(range(4), num_replicas=2, rank=2)
