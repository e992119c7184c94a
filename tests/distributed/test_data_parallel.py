"""Collectives, DistributedDataParallel and DistributedSampler on two ranks (mpiexec -n 2).

One MPI job (``_worker.py main``) runs every scenario and saves what each rank saw; the
tests compare it with the values expected, and with reference runs made here in one
process: two ranks with batch B must end where one process with batch 2B ends.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr

from . import _worker
from ._mpi import finish, launch, requires_mpi

pytestmark = requires_mpi


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    out = tmp_path_factory.mktemp("mpi_main")
    code, output = finish(launch("main", out), timeout=60)
    assert code == 0, f"mpiexec -n 2 _worker.py main failed ({code}):\n{output}"
    return [dict(np.load(out / f"rank{r}.npz")) for r in range(2)]


def test_all_reduce_sum_avg_max(ranks: list[dict]) -> None:
    for seen in ranks:
        np.testing.assert_array_equal(seen["sum"], [3.0, 10.0])
        np.testing.assert_array_equal(seen["avg"], np.float32([1.5, 5.0]))
        assert seen["avg"].dtype == np.float32
        np.testing.assert_array_equal(seen["max_int"], [[5, 1]])
        np.testing.assert_array_equal(seen["f16"], np.float16([4.0, -4.0]))


def test_async_all_reduce_on_a_non_contiguous_view(ranks: list[dict]) -> None:
    base = np.arange(12.0).reshape(3, 4)
    for rank, seen in enumerate(ranks):
        assert seen["async_type"] == "Work" and seen["async_done"]
        expected = base * (rank + 1)
        expected[:, 1] = base[:, 1] * 3        # only the column took part
        np.testing.assert_array_equal(seen["noncontiguous"], expected)


def test_broadcast_all_gather_reduce_scatter(ranks: list[dict]) -> None:
    for rank, seen in enumerate(ranks):
        np.testing.assert_array_equal(seen["broadcast"], np.full((2, 2), 7.0))
        np.testing.assert_array_equal(seen["broadcast_async"], np.full(3, 5.0))
        np.testing.assert_array_equal(seen["all_gather"], [np.full((2, 2), 1.0), np.full((2, 2), 2.0)])
        np.testing.assert_array_equal(seen["all_gather_into_tensor"], [0.0, 0.5, 1.0, 1.5])
        # inputs [1, 2] * (r + 1) for rank 0's slice, [3, 4] * (r + 1) for rank 1's: summed x3
        np.testing.assert_array_equal(seen["reduce_scatter"], [[3.0, 6.0], [9.0, 12.0]][rank])
        # (arange(4) + 0 + arange(4) + 1) / 2, split in two
        np.testing.assert_array_equal(seen["reduce_scatter_tensor"], [[0.5, 1.5], [2.5, 3.5]][rank])


def test_async_collectives_progress_in_the_background(ranks: list[dict]) -> None:
    for seen in ranks:
        assert seen["background"].tolist() == [True, True]


def test_collective_errors_name_the_mistake(ranks: list[dict]) -> None:
    seen = {key: str(value) for key, value in ranks[0].items() if value.dtype.kind == "U"}
    assert "src=5 is not a rank of this group (0 to 1)" in seen["bad_src"]
    assert "tensor_list has 1 tensors but the group has 2 ranks" in seen["bad_list"]
    assert "ReduceOp.AVG needs a floating-point tensor, got int64" in seen["bad_avg"]
    assert "initialize the default process group twice" in seen["twice"]


def _reference(optimizer: str, steps: int = _worker.STEPS, micro: int = 1) -> list[np.ndarray]:
    """One process, the whole global batch, no DDP, from rank 0's initial weights."""
    return _worker.train(_worker.make_model(seed=0), optimizer, rank=0, world=1, steps=steps,
                         micro=micro)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_two_ranks_match_one_process_with_twice_the_batch(ranks: list[dict], optimizer: str) -> None:
    expected = _reference(optimizer)
    for seen in ranks:
        assert seen[f"buckets_{optimizer}"] == 3      # the tiny bucket cap splits the model
        for i, want in enumerate(expected):
            np.testing.assert_allclose(seen[f"{optimizer}_{i}"], want, rtol=1e-12, atol=0)
    # and the run moved the weights: the comparison is not between two copies of the start
    start = [p.detach().numpy() for p in _worker.make_model(seed=0).parameters()]
    assert max(np.abs(a - b).max() for a, b in zip(expected, start)) > 1e-2


def test_optimizer_with_closure_lbfgs(ranks: list[dict]) -> None:
    expected = _reference("lbfgs", steps=_worker.LBFGS_STEPS)
    for seen in ranks:
        for i, want in enumerate(expected):
            np.testing.assert_allclose(seen[f"lbfgs_{i}"], want, rtol=1e-11, atol=0)


def test_no_sync_accumulation_equals_one_large_batch(ranks: list[dict]) -> None:
    expected = _reference("sgd", steps=5, micro=_worker.MICRO)
    for seen in ranks:
        for i, want in enumerate(expected):
            np.testing.assert_allclose(seen[f"nosync_{i}"], want, rtol=1e-12, atol=0)


def test_buckets_are_reduced_while_backward_runs(ranks: list[dict]) -> None:
    for seen in ranks:
        started = seen["overlap"]
        assert len(started) == 6                  # one entry per parameter finished
        assert started[:-1].max() >= 1            # all-reduces in flight before the end
        assert started[-1] == 0                   # the last one waited for them all
        # the first bucket's all-reduce finished while backward ran on without MPI calls
        assert seen["overlap_finished"].tolist() == [True]


def test_find_unused_parameters(ranks: list[dict]) -> None:
    grads = []
    for rank in range(2):
        cr.manual_seed(0)
        model = _worker.TwoHeads().double()
        model(_worker.two_heads_data(rank), use_b=rank == 0).sum().backward()
        grads.append(dict(model.named_parameters()))
    for seen in ranks:
        for name in ("trunk.weight", "trunk.bias", "a.weight", "a.bias"):
            want = (grads[0][name].grad.numpy() + grads[1][name].grad.numpy()) / 2
            np.testing.assert_allclose(seen[f"unused_{name}"], want, rtol=1e-12)
        for name in ("b.weight", "b.bias"):       # used on rank 0 only: averaged with zeros
            np.testing.assert_allclose(seen[f"unused_{name}"], grads[0][name].grad.numpy() / 2,
                                       rtol=1e-12)
        assert np.isnan(seen["unused_c.weight"]) and np.isnan(seen["unused_c.bias"])  # no .grad


def test_unused_parameters_without_find_unused_are_named(ranks: list[dict]) -> None:
    for rank, seen in enumerate(ranks):
        message = str(seen["unused_error"])
        assert "Expected to have finished reduction in the prior iteration" in message
        assert "b.weight, b.bias, c.weight, c.bias" in message and f"rank {rank}" in message
        assert "find_unused_parameters=True" in message


def test_rank0_parameters_and_buffers_reach_every_rank(ranks: list[dict]) -> None:
    first, second = ranks
    np.testing.assert_array_equal(first["bn_init_weight"], second["bn_init_weight"])
    np.testing.assert_array_equal(first["bn_init_mean"], np.ones(4))
    np.testing.assert_array_equal(second["bn_init_mean"], np.ones(4))
    # each rank's batch moves its own statistics; the next forward starts from rank 0's
    assert not np.array_equal(first["bn_after_mean"], second["bn_after_mean"])
    np.testing.assert_array_equal(first["bn_second_mean"], second["bn_second_mean"])


def test_sampler_gives_each_example_to_exactly_one_rank(ranks: list[dict]) -> None:
    for epoch in (0, 1):
        parts = [seen[f"sampler_epoch{epoch}"] for seen in ranks]
        assert [len(p) for p in parts] == [5, 5]
        assert sorted(np.concatenate(parts).tolist()) == list(range(10))
    assert ranks[0]["sampler_epoch0"].tolist() != ranks[0]["sampler_epoch1"].tolist()
    # 7 examples on 2 ranks: 4 each, example 0 repeated as padding
    assert ranks[0]["sampler_padded"].tolist() == [0, 2, 4, 6]
    assert ranks[1]["sampler_padded"].tolist() == [1, 3, 5, 0]


def test_different_models_are_refused(ranks: list[dict]) -> None:
    for seen in ranks:
        assert "the model on rank 1 differs from rank 0's" in str(seen["mismatch_error"])
