"""What each rank runs under ``mpiexec -n 2`` for tests/distributed (and the reference
runs the tests compute in one process, from the same functions).

``python _worker.py main OUT``: collectives, DDP parity with SGD and Adam, no_sync, buckets
overlapping backward, find_unused_parameters, buffers, DistributedSampler and error
messages; rank r writes what it saw to ``OUT/rank{r}.npz``.
``python _worker.py raise|hang|loop OUT``: the failure scenarios (see ``failure``).
"""

from __future__ import annotations

import os
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

import chainrule as cr
import chainrule.distributed as dist
import chainrule.nn.functional as F
from chainrule import nn
from chainrule.distributed import DistributedDataParallel as DDP
from chainrule.utils.data import DataLoader, DistributedSampler, TensorDataset

BATCH = 8          # per rank; the single-process reference uses 2 * BATCH
STEPS = 20
MICRO = 3          # micro-batches per step in the no_sync test
LBFGS_STEPS = 3    # each runs up to 4 forward/backward passes through the closure
TINY_BUCKET_MB = 0.0005   # ~500 bytes: several buckets for the small MLP


def make_model(seed: int) -> nn.Module:
    cr.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(),
                         nn.Linear(16, 3)).double()


def batch(step: int, size: int) -> tuple[cr.Tensor, cr.Tensor]:
    """The global batch of a step: rows [r * size / 2, (r + 1) * size / 2) go to rank r."""
    rng = np.random.default_rng(1000 + step)
    x = rng.normal(size=(size, 5))
    y = np.stack([np.sin(x[:, 0]), x[:, 1] * x[:, 2], np.cos(x[:, 3] + x[:, 4])], axis=1)
    return cr.tensor(x), cr.tensor(y)


def make_optimizer(name: str, params: list) -> cr.optim.Optimizer:
    if name == "sgd":
        return cr.optim.SGD(params, lr=0.1, momentum=0.9)
    if name == "lbfgs":
        return cr.optim.LBFGS(params, lr=0.5, max_iter=4)
    return cr.optim.Adam(params, lr=0.01)


def train(model: nn.Module, optimizer_name: str, rank: int, world: int, steps: int = STEPS,
          micro: int = 1) -> list[np.ndarray]:
    """SGD or Adam steps; each of ``world`` ranks takes its slice of every global batch of
    ``2 * BATCH * micro`` rows, in ``micro`` micro-batches (all but the last under no_sync)."""
    opt = make_optimizer(optimizer_name, list(model.parameters()))
    per_rank = 2 * BATCH * micro // world
    for step in range(steps):
        x, y = batch(step, 2 * BATCH * micro)
        x, y = x[rank * per_rank:(rank + 1) * per_rank], y[rank * per_rank:(rank + 1) * per_rank]
        if optimizer_name == "lbfgs":      # forward and backward inside the closure
            def closure(x: cr.Tensor = x, y: cr.Tensor = y) -> cr.Tensor:
                opt.zero_grad()
                loss = F.mse_loss(model(x), y)
                loss.backward()
                return loss
            opt.step(closure)
            continue
        opt.zero_grad()
        size = per_rank // micro
        for k in range(micro):
            xs, ys = x[k * size:(k + 1) * size], y[k * size:(k + 1) * size]
            if k < micro - 1 and isinstance(model, DDP):
                with model.no_sync():
                    (F.mse_loss(model(xs), ys) / micro).backward()
            else:
                (F.mse_loss(model(xs), ys) / micro).backward()
        opt.step()
    return [p.detach().numpy().copy() for p in model.parameters()]


class TwoHeads(nn.Module):
    """A trunk and two heads; head ``b`` is used on rank 0 only, ``c`` never."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Linear(4, 6)
        self.a = nn.Linear(6, 1)
        self.b = nn.Linear(6, 1)
        self.c = nn.Linear(6, 1)

    def forward(self, x: cr.Tensor, use_b: bool) -> cr.Tensor:
        h = self.trunk(x).tanh()
        return self.a(h) + self.b(h) if use_b else self.a(h)


def two_heads_data(rank: int) -> cr.Tensor:
    return cr.tensor(np.random.default_rng(50 + rank).normal(size=(6, 4)))


def main(out: Path) -> None:
    dist.init_process_group(backend="mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    assert world == 2, f"the tests expect mpiexec -n 2, got world size {world}"
    saved: dict[str, np.ndarray] = {}
    collectives(saved, rank)

    # ---- DDP parity: SGD and Adam; the models start different (seed = rank) and DDP copies
    # rank 0's weights, so the reference starts from seed 0
    for name in ("sgd", "adam"):
        model = DDP(make_model(seed=rank), bucket_cap_mb=TINY_BUCKET_MB)
        saved[f"buckets_{name}"] = np.array(len(model._reducer.flats))
        for i, p in enumerate(train(model, name, rank, world)):
            saved[f"{name}_{i}"] = p
    model = DDP(make_model(seed=rank), bucket_cap_mb=TINY_BUCKET_MB)
    for i, p in enumerate(train(model, "lbfgs", rank, world, steps=LBFGS_STEPS)):
        saved[f"lbfgs_{i}"] = p
    model = DDP(make_model(seed=rank), bucket_cap_mb=TINY_BUCKET_MB)
    for i, p in enumerate(train(model, "sgd", rank, world, steps=5, micro=MICRO)):
        saved[f"nosync_{i}"] = p

    # ---- buckets' all-reduces start while backward still runs: hooks registered after
    # DDP's count the all-reduces in flight as each parameter is finished
    model = DDP(make_model(seed=0), bucket_cap_mb=TINY_BUCKET_MB)
    started: list[int] = []
    finished_meanwhile: list[bool] = []

    def probe(grad: cr.Tensor) -> None:
        requests = model._reducer.requests
        started.append(len(requests))
        if requests and not finished_meanwhile:
            time.sleep(0.1)   # backward work that makes no MPI call
            finished_meanwhile.append(requests[0].Get_status())

    for p in model.parameters():
        p.register_hook(probe)
    x, y = batch(0, BATCH)
    F.mse_loss(model(x), y).backward()
    saved["overlap"] = np.array(started)
    saved["overlap_finished"] = np.array(finished_meanwhile)

    # ---- find_unused_parameters
    cr.manual_seed(0)
    heads = DDP(TwoHeads().double(), find_unused_parameters=True)
    heads(two_heads_data(rank), use_b=rank == 0).sum().backward()
    for name, p in heads.module.named_parameters():
        saved[f"unused_{name}"] = np.array(np.nan) if p.grad is None else p.grad.numpy()

    # ---- without find_unused_parameters, the next forward names what got no gradient
    heads = DDP(TwoHeads().double())
    heads(two_heads_data(rank), use_b=False).sum().backward()
    saved["unused_error"] = np.array(_error(lambda: heads(two_heads_data(rank), use_b=False)))

    # ---- buffers: rank 0's running statistics reach every rank at construction and forward
    cr.manual_seed(rank)
    bn = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).double()
    bn[1].running_mean.add_(float(rank + 1))
    bn = DDP(bn)
    saved["bn_init_mean"] = bn.module[1].running_mean.numpy().copy()
    saved["bn_init_weight"] = bn.module[0].weight.detach().numpy().copy()
    bn(cr.tensor(np.random.default_rng(rank).normal(size=(5, 3)))).sum().backward()
    saved["bn_after_mean"] = bn.module[1].running_mean.numpy().copy()
    bn(cr.tensor(np.zeros((5, 3)))).sum().backward()   # starts by copying rank 0's buffers
    saved["bn_second_mean"] = bn.module[1].running_mean.numpy().copy()

    # ---- DistributedSampler: process-group defaults, two epochs, through a DataLoader
    dataset = TensorDataset(cr.arange(10))
    sampler = DistributedSampler(dataset, shuffle=True, seed=3)
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        seen_here = [int(v) for (xb,) in DataLoader(dataset, batch_size=2, sampler=sampler)
                     for v in xb]
        saved[f"sampler_epoch{epoch}"] = np.array(seen_here)
    saved["sampler_padded"] = np.array(list(DistributedSampler(range(7), shuffle=False)))

    # ---- a model that differs between ranks is refused on every rank
    saved["mismatch_error"] = np.array(_error(lambda: DDP(nn.Linear(3, 3 + rank))))

    dist.barrier()
    dist.destroy_process_group()
    np.savez(out / f"rank{rank}.npz", **saved)


def collectives(saved: dict, rank: int) -> None:
    r = float(rank)
    t = cr.tensor([1.0 + r, 10.0 * r])
    dist.all_reduce(t)
    saved["sum"] = t.numpy()
    t = cr.tensor([1.0 + r, 10.0 * r], dtype=cr.float32)
    dist.all_reduce(t, op=dist.ReduceOp.AVG)
    saved["avg"] = t.numpy()
    t = cr.tensor([[5 - rank, rank]])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    saved["max_int"] = t.numpy()
    big = cr.arange(12, dtype=cr.float64).reshape(3, 4) * (rank + 1)
    column = big[:, 1]            # not contiguous: goes through a copy, written back
    work = dist.all_reduce(column, async_op=True)
    saved["async_type"] = np.array(type(work).__name__)
    saved["async_done"] = np.array(work.wait())
    saved["noncontiguous"] = big.numpy()
    t = cr.tensor([1.5 + r, -2.0], dtype=cr.float16)
    dist.all_reduce(t)
    saved["f16"] = t.numpy()

    t = cr.full((2, 2), float(rank * 7))
    dist.broadcast(t, src=1)
    saved["broadcast"] = t.numpy()
    t = cr.full((3,), float(rank + 5))
    dist.broadcast(t, src=0, async_op=True).wait()
    saved["broadcast_async"] = t.numpy()

    parts = [cr.zeros(2, 2) for _ in range(2)]
    dist.all_gather(parts, cr.full((2, 2), float(rank + 1)))
    saved["all_gather"] = np.stack([p.numpy() for p in parts])
    out = cr.zeros(4)
    dist.all_gather_into_tensor(out, cr.tensor([r, r + 0.5]), async_op=True).wait()
    saved["all_gather_into_tensor"] = out.numpy()

    out = cr.zeros(2)
    dist.reduce_scatter(out, [cr.tensor([1.0, 2.0]) * (rank + 1), cr.tensor([3.0, 4.0]) * (rank + 1)])
    saved["reduce_scatter"] = out.numpy()
    out = cr.zeros(2)
    dist.reduce_scatter_tensor(out, cr.arange(4, dtype=cr.float32) + r, op=dist.ReduceOp.AVG)
    saved["reduce_scatter_tensor"] = out.numpy()
    dist.barrier(async_op=True).wait()

    # async collectives move on while the caller does no MPI call (the progress thread)
    done = []
    for mb in (0.01, 8):
        t = cr.ones(int(mb * 2**20 / 4))
        dist.barrier()
        work = dist.all_reduce(t, async_op=True)
        time.sleep(0.15)
        done.append(work.is_completed())    # one MPI_Test alone would not finish either
        work.wait()
    saved["background"] = np.array(done)

    saved["bad_src"] = np.array(_error(lambda: dist.broadcast(cr.zeros(1), src=5)))
    saved["bad_list"] = np.array(_error(lambda: dist.all_gather([cr.zeros(1)], cr.zeros(1))))
    saved["bad_avg"] = np.array(_error(lambda: dist.all_reduce(cr.tensor([1]), op=dist.ReduceOp.AVG)))
    saved["twice"] = np.array(_error(lambda: dist.init_process_group("mpi")))


def _error(fn: object) -> str:
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - the test reads the message
        return f"{type(e).__name__}: {e}"
    return ""


def failure(mode: str, out: Path) -> None:
    """``raise``: rank 1 raises while rank 0 waits in all_reduce. ``hang``: rank 1 never
    joins the collective; rank 0 times out after 1 s. ``loop``: both train until killed
    (each writes its pid first)."""
    dist.init_process_group(backend="mpi", timeout=timedelta(seconds=1 if mode == "hang" else 60))
    rank = dist.get_rank()
    (out / f"pid{rank}").write_text(str(os.getpid()))
    if mode == "raise" and rank == 1:
        time.sleep(0.2)
        raise ValueError("rank 1 fails on purpose")
    if mode == "hang" and rank == 1:
        time.sleep(60)
    if mode == "loop":
        model = DDP(make_model(seed=0))
        opt = make_optimizer("sgd", list(model.parameters()))
        x, y = batch(0, BATCH)
        while True:
            opt.zero_grad()
            F.mse_loss(model(x), y).backward()
            opt.step()
    dist.all_reduce(cr.ones(3))
    print(f"rank {rank} got past the collective", flush=True)


if __name__ == "__main__":
    scenario, folder = sys.argv[1], Path(sys.argv[2])
    if scenario == "main":
        main(folder)
    else:
        failure(scenario, folder)
