"""Data-parallel scaling on this machine, and a paper estimate for a cluster.

Runs the same training step (an MLP 784-1024-1024-10, float32, batch 64 per rank, SGD
with momentum) under ``mpiexec -n 1`` and ``mpiexec -n 2`` with one BLAS thread per rank,
and once on one rank with two BLAS threads for comparison. In each job the ranks
alternate steps of the plain model (compute only, no communication) and steps of the
DistributedDataParallel model; a step's time is the slowest rank's. The two-rank job
also times ``all_reduce`` of 0.25 to 64 MB.

Then it estimates data-parallel efficiency at 8 and 64 nodes, each node computing as one
rank does here, with ring all-reduce over two stated networks::

    T_allreduce(N) = 2 (N - 1) / N * S / bandwidth + 2 (N - 1) * latency
    efficiency      = T_compute / (T_compute + T_ddp_overhead + T_exposed)

where S is the gradient size, T_ddp_overhead the per-step cost DDP adds on one rank
(hooks, copies into buckets) and T_exposed the all-reduce time not hidden behind the
backward pass: all of it without overlap (lower bound), max(0, T_allreduce - T_backward)
with full overlap (upper bound).

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/distributed_scaling.py
(JSON to benchmarks/results/distributed_scaling.json). Needs the ``distributed`` extra.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BATCH = 64
WIDTHS = (784, 1024, 1024, 10)
WARMUP, STEPS = 5, 40
ALLREDUCE_MB = (0.25, 1, 4, 16, 64)
# stated networks for the paper estimate: (name, bandwidth bytes/s, per-message latency s)
NETWORKS = (("10 Gb/s Ethernet", 1.25e9, 30e-6), ("100 Gb/s InfiniBand EDR", 12.5e9, 2e-6))
NODES = (8, 64)


# ------------------------------------------------------------------ one MPI job
def worker(out: Path) -> None:
    import chainrule as cr
    import chainrule.distributed as dist
    import chainrule.nn.functional as F
    from chainrule import nn
    from chainrule.distributed import DistributedDataParallel

    dist.init_process_group(backend="mpi")
    rank, world = dist.get_rank(), dist.get_world_size()

    def mlp() -> nn.Module:
        cr.manual_seed(0)
        layers: list = []
        for a, b in zip(WIDTHS, WIDTHS[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        return nn.Sequential(*layers[:-1])

    models = {"plain": mlp(), "ddp": DistributedDataParallel(mlp()),
              "ddp_1mb": DistributedDataParallel(mlp(), bucket_cap_mb=1)}
    optimizers = {name: cr.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
                  for name, m in models.items()}
    cr.manual_seed(rank)
    x, y = cr.randn(BATCH, WIDTHS[0]), cr.randint(0, WIDTHS[-1], (BATCH,))
    times: dict[str, list] = {name: [] for name in [*models, "plain_forward", "plain_backward"]}
    for step in range(WARMUP + STEPS):
        for name in models:     # alternate, so that load changes hit all alike
            dist.barrier()
            start = time.perf_counter()
            optimizers[name].zero_grad()
            loss = F.cross_entropy(models[name](x), y)
            forward = time.perf_counter()
            loss.backward()
            backward = time.perf_counter()
            optimizers[name].step()
            if step >= WARMUP:
                times[name].append(time.perf_counter() - start)
                if name == "plain":
                    times["plain_forward"].append(forward - start)
                    times["plain_backward"].append(backward - forward)
    result = {"world_size": world,
              "grad_bytes": sum(p.nbytes for p in models["plain"].parameters())}
    for name, values in times.items():
        slowest = cr.tensor(values, dtype=cr.float64)
        dist.all_reduce(slowest, op=dist.ReduceOp.MAX)   # a step lasts as long as its slowest rank
        result[f"{name}_s"] = statistics.median(slowest.tolist())

    if world > 1:
        allreduce = {}
        for mb in ALLREDUCE_MB:
            t = cr.ones(int(mb * 2**20 / 4))
            samples = []
            for _ in range(12):
                dist.barrier()
                start = time.perf_counter()
                dist.all_reduce(t)
                samples.append(time.perf_counter() - start)
            allreduce[str(mb)] = statistics.median(samples[2:])
        result["allreduce_s"] = allreduce
    if rank == 0:
        (out / "result.json").write_text(json.dumps(result))
    dist.destroy_process_group()


# ------------------------------------------------------------------ driver
def run_job(ranks: int, threads: int) -> dict:
    mpiexec = Path(sys.executable).parent / "mpiexec"
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env.update(OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([str(mpiexec) if mpiexec.exists() else "mpiexec", "-n", str(ranks),
                        sys.executable, __file__, "--worker", folder],
                       env=env, check=True, timeout=600)
        return json.loads((Path(folder) / "result.json").read_text())


def ring_allreduce_s(nodes: int, size: float, bandwidth: float, latency: float) -> float:
    return 2 * (nodes - 1) / nodes * size / bandwidth + 2 * (nodes - 1) * latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", metavar="FOLDER", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" /
                                             "distributed_scaling.json"))
    args = parser.parse_args()
    if args.worker:
        worker(Path(args.worker))
        return

    runs = {"1 rank x 1 thread": run_job(1, 1), "2 ranks x 1 thread": run_job(2, 1),
            "1 rank x 2 threads": run_job(1, 2)}
    one = runs["1 rank x 1 thread"]
    grad_mb = one["grad_bytes"] / 2**20
    print(f"MLP {'-'.join(map(str, WIDTHS))}, float32, batch {BATCH} per rank, "
          f"{grad_mb:.2f} MB of gradients; load average {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} cores\n")
    print(f"{'run':<22}{'plain step':>12}{'DDP step':>11}{'DDP, 1 MB':>11}{'samples/s':>11}"
          f"{'vs 1 rank':>11}")
    rows = {}
    for name, r in runs.items():
        throughput = r["world_size"] * BATCH / r["ddp_s"]
        rows[name] = {"plain_step_ms": 1e3 * r["plain_s"], "ddp_step_ms": 1e3 * r["ddp_s"],
                      "ddp_1mb_buckets_step_ms": 1e3 * r["ddp_1mb_s"], "samples_per_s": throughput,
                      "speedup": throughput / (BATCH / one["ddp_s"])}
        print(f"{name:<22}{1e3 * r['plain_s']:>9.2f} ms{1e3 * r['ddp_s']:>8.2f} ms"
              f"{1e3 * r['ddp_1mb_s']:>8.2f} ms{throughput:>11.0f}{rows[name]['speedup']:>10.2f}x")
    print("(plain: the model alone, no communication; DDP: 25 MB buckets, the default; "
          "samples/s and speedup from DDP steps)")
    two = runs["2 ranks x 1 thread"]
    efficiency_2 = rows["2 ranks x 1 thread"]["speedup"] / 2
    print(f"\nweak-scaling efficiency at 2 ranks: {efficiency_2:.0%}")

    print("\nall_reduce (sum, float32) between the 2 ranks:")
    per_mb = {}
    for mb, seconds in two["allreduce_s"].items():
        per_mb[mb] = 1e3 * seconds / float(mb)
        print(f"  {float(mb):>6g} MB: {1e3 * seconds:8.3f} ms  = {per_mb[mb]:.3f} ms/MB")

    compute = one["plain_s"]
    backward = one["plain_backward_s"]
    overhead = max(0.0, one["ddp_s"] - one["plain_s"])
    size = one["grad_bytes"]
    print(f"\npaper estimate: compute {1e3 * compute:.2f} ms per step (backward "
          f"{1e3 * backward:.2f} ms), DDP overhead on one rank {1e3 * overhead:.2f} ms, "
          f"gradients {grad_mb:.2f} MB, ring all-reduce")
    estimates = []
    for network, bandwidth, latency in NETWORKS:
        for nodes in NODES:
            comm = ring_allreduce_s(nodes, size, bandwidth, latency)
            low = compute / (compute + overhead + comm)
            high = compute / (compute + overhead + max(0.0, comm - backward))
            estimates.append({"network": network, "bandwidth_GBps": bandwidth / 1e9,
                              "latency_us": latency * 1e6, "nodes": nodes,
                              "allreduce_ms": 1e3 * comm, "efficiency_no_overlap": low,
                              "efficiency_full_overlap": high})
            print(f"  {network:<25}{nodes:>3} nodes: all-reduce {1e3 * comm:6.2f} ms, efficiency "
                  f"{low:.0%} (no overlap) to {high:.0%} (hidden behind backward)")

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_average": os.getloadavg()[0]},
        "model": {"widths": WIDTHS, "batch_per_rank": BATCH, "grad_bytes": size},
        "runs": runs, "summary": rows, "efficiency_2_ranks": efficiency_2,
        "allreduce_ms_per_mb": per_mb, "estimates": estimates,
    }, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
