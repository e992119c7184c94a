"""`chainrule train --distributed` under `mpiexec -n 2`: one run directory written by rank 0,
weights equal to one process stepping over the same global batches, exact resumption after
a rank is killed and after Ctrl-C, and one-line errors (also when only one rank fails).

The MPI jobs are skipped, with the reason shown, where mpi4py or mpiexec is missing.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import chainrule
import chainrule.distributed as dist
from chainrule import Tensor, from_numpy
from chainrule.cli import main
from chainrule.cli.run_dir import RunDir
from chainrule.cli.train import DEFAULTS, _load, default_dtype
from chainrule.cli.trainer import Trainer
from chainrule.utils.data import DistributedSampler

# tests/ is on sys.path (pytest's rootdir-based imports): share tests/distributed's launcher
from distributed._mpi import find_mpiexec, finish, requires_mpi  # noqa: I001

pytest.importorskip("sklearn")

RANKS = 2
RUN = ["--epochs", "2", "--dataset", "iris", "--dtype", "float64", "--no-progress"]
FILES = {"config.json", "checkpoint.safetensors", "model.safetensors", "metrics.jsonl", "curves.png",
         "grad_flow.png", "graph.html"}
DEADLINE = 60.0  # seconds for one job; each takes 2-3 s here

# runs `chainrule train` on each rank with a test's hooks in its training step: ACTION at
# (EPOCH, BATCH) is "kill" (rank 1 SIGKILLs itself), "pause" (rank 0 waits for Ctrl-C) or
# "none"; each rank writes its run directory's path and its final weights under DUMP
CHILD = textwrap.dedent("""
    import os, signal, sys, time
    import numpy as np
    import chainrule.distributed as dist
    from chainrule.cli import UsageError, main, train, trainer

    action, at, dump = sys.argv[1], (int(sys.argv[2]), int(sys.argv[3])), sys.argv[4]
    step, trainers = trainer.Trainer._step, []

    def hooked_step(self, *args, **kwargs):
        if not trainers:
            trainers.append(self)
            with open(os.path.join(dump, f"rank{self.rank}.path"), "w") as fh:
                fh.write(str(self.run.path))
        if (self.epoch, self.batch) == at and action == "kill" and self.rank == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        if (self.epoch, self.batch) == at and action == "pause" and self.rank == 0:
            # wait until the training loop's own Ctrl-C handler has seen the signal
            handler, got = signal.getsignal(signal.SIGINT), []
            def seen(signum, frame):
                got.append(signum)
                handler(signum, frame)
            signal.signal(signal.SIGINT, seen)
            print("PAUSED", os.getpid(), flush=True)
            while not got:
                time.sleep(0.01)
            signal.signal(signal.SIGINT, handler)
        return step(self, *args, **kwargs)

    def load_but_not_on_rank_1(config):
        if dist.get_rank() == 1:
            raise UsageError("no data here")
        return load(config)

    trainer.Trainer._step = hooked_step
    load = train._load
    if action == "fail-load":
        train._load = load_but_not_on_rank_1
    code = main(["train", *sys.argv[5:]])
    if trainers:
        weights = trainers[0].model.state_dict()
        np.savez(os.path.join(dump, f"rank{trainers[0].rank}.npz"),
                 **{k: v.numpy() for k, v in weights.items()})
    sys.exit(code)
""")


def mpiexec(*args: str, cwd: Path, child: tuple[str, ...] | None = None) -> subprocess.Popen:
    """``mpiexec -n 2 python -m chainrule train ARGS``, or CHILD with ``child`` before ARGS."""
    program = ["-c", CHILD, *child] if child else ["-m", "chainrule", "train"]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.Popen([find_mpiexec(), "-n", str(RANKS), sys.executable, *program, *args],
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)


def weights(path: Path) -> dict[str, np.ndarray]:
    if path.suffix == ".npz":
        return dict(np.load(path))
    return {k: v.numpy() for k, v in chainrule.load(path).items()}


def assert_same_weights(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == np.float64 and np.array_equal(a[key], b[key]), key


def metrics(run: Path) -> list[dict]:
    keep = ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "lr")
    return [{k: json.loads(line)[k] for k in keep} for line in (run / "metrics.jsonl").open()]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """``mpiexec -n 2 python -m chainrule train --distributed ... --out run``: its directory,
    stdout and stderr."""
    where = tmp_path_factory.mktemp("uninterrupted")
    job = mpiexec("--distributed", *RUN, "--out", "run", cwd=where)
    try:
        out, err = job.communicate(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        os.killpg(job.pid, signal.SIGKILL)
        pytest.fail(f"the MPI job did not end within {DEADLINE} s")
    assert job.returncode == 0, f"{out}\n{err}"
    return where, out, err


# ------------------------------------------------------------------ the run and its weights
@requires_mpi
def test_rank_0_alone_writes_the_run_and_speaks(uninterrupted: tuple[Path, str, str]) -> None:
    where, out, err = uninterrupted
    assert [p.name for p in where.iterdir()] == ["run"]
    run = where / "run"
    assert {p.name for p in run.iterdir()} == FILES
    assert json.loads((run / "config.json").read_text())["world_size"] == RANKS
    assert [r["epoch"] for r in metrics(run)] == [1, 2]
    assert chainrule.load(run / "checkpoint.safetensors")["epoch"] == 2
    assert out.count("test accuracy") == 1 and "2 epochs of 2 ranks x 32" in out
    assert out.count("gradient flow") == 1
    assert err == ""


class GlobalBatches:
    """What the ranks read at each step, joined: step k's rows of every rank's share."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer, self.size = trainer, trainer.config["batch_size"]
        n = len(trainer.data.train_y)
        self.samplers = [DistributedSampler(range(n), RANKS, rank, seed=trainer.config["seed"])
                         for rank in range(RANKS)]

    def __len__(self) -> int:
        return math.ceil(len(self.samplers[0]) / self.size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        for sampler in self.samplers:
            sampler.set_epoch(self.trainer.epoch)
        shares = [list(sampler) for sampler in self.samplers]
        x, y = self.trainer.data.train_x, self.trainer.data.train_y
        for start in range(0, len(shares[0]), self.size):
            rows = [i for share in shares for i in share[start:start + self.size]]
            yield from_numpy(x[rows]), from_numpy(y[rows])


@requires_mpi
def test_weights_equal_one_process_over_the_same_global_batches(
        uninterrupted: tuple[Path, str, str], tmp_path: Path) -> None:
    # every rank's batch has the same size (the sampler pads the shares to equal length), so
    # the mean of the ranks' mean gradients is the mean gradient of the joined batch
    config = {**DEFAULTS, "dataset": "iris", "epochs": 2, "dtype": "float64"}
    with default_dtype("float64"):
        trainer = Trainer(config, _load(config), RunDir.create(str(tmp_path / "one"), config))
        trainer.loader = GlobalBatches(trainer)
        trainer.fit(progress=False)
    expected = {k: v.numpy() for k, v in trainer.model.state_dict().items()}
    ours = weights(uninterrupted[0] / "run" / "model.safetensors")
    assert ours.keys() == expected.keys()
    for key in ours:
        scale = np.abs(expected[key]).max()
        assert np.abs(ours[key] - expected[key]).max() <= 1e-12 * scale, key
    assert metrics(uninterrupted[0] / "run")[-1]["test_accuracy"] == trainer.history[-1]["test_accuracy"]


# ------------------------------------------------------------------ stopping and resuming
def resume(run: Path, cwd: Path, dump: Path) -> None:
    dump.mkdir()
    job = mpiexec("--resume", str(run), "--distributed", "--no-progress", cwd=cwd,
                  child=("none", "-1", "-1", str(dump)))
    code, output = finish(job, timeout=DEADLINE)
    assert code == 0, output
    assert output.count("test accuracy") == 1


@requires_mpi
def test_rank_killed_mid_epoch_resumes_to_the_same_weights(uninterrupted: tuple[Path, str, str],
                                                           tmp_path: Path) -> None:
    # no --out: rank 0 names the run directory (with its clock time) and tells rank 1
    dump = tmp_path / "killed"
    dump.mkdir()
    job = mpiexec("--distributed", *RUN, cwd=tmp_path, child=("kill", "1", "1", str(dump)))
    code, output = finish(job, timeout=DEADLINE)
    assert code != 0, output
    [run] = (tmp_path / "runs").iterdir()
    assert {(dump / f"rank{r}.path").read_text() for r in range(RANKS)} == {f"runs/{run.name}"}
    checkpoint = chainrule.load(run / "checkpoint.safetensors")
    assert (checkpoint["epoch"], checkpoint["batch"]) == (1, 0)  # the last epoch boundary
    assert not (run / "model.safetensors").exists()

    resume(run, tmp_path, tmp_path / "resumed")
    reference = uninterrupted[0] / "run"
    assert_same_weights(weights(run / "model.safetensors"), weights(reference / "model.safetensors"))
    for rank in range(RANKS):
        assert_same_weights(weights(tmp_path / "resumed" / f"rank{rank}.npz"),
                            weights(reference / "model.safetensors"))
    assert metrics(run) == metrics(reference)
    assert {p.name for p in run.iterdir()} == FILES


@requires_mpi
@pytest.mark.skipif(os.name != "posix", reason="needs POSIX signals")
def test_ctrl_c_stops_every_rank_after_the_same_batch(uninterrupted: tuple[Path, str, str],
                                                      tmp_path: Path) -> None:
    dump = tmp_path / "stopped"
    dump.mkdir()
    job = mpiexec("--distributed", *RUN, "--out", "run", cwd=tmp_path,
                  child=("pause", "1", "0", str(dump)))
    try:
        paused, pid = job.stdout.readline().split()
        assert paused == "PAUSED"
        # at a terminal mpiexec hands Ctrl-C to every rank, each between different batches; the
        # extreme case: rank 0 alone gets it, while rank 1 waits in the next gradient all-reduce
        os.kill(int(pid), signal.SIGINT)
    finally:
        code, output = finish(job, timeout=DEADLINE)
    assert code == 130, output
    run = tmp_path / "run"
    message = ("interrupted: saved a checkpoint in run (epoch 2, batch 1); continue with: "
               "mpiexec -n 2 chainrule train --distributed --resume run")
    assert output.count(message) == 1, output
    assert "Traceback" not in output
    checkpoint = chainrule.load(run / "checkpoint.safetensors")
    assert (checkpoint["epoch"], checkpoint["batch"]) == (1, 1)  # after the batch that had begun

    resume(run, tmp_path, tmp_path / "resumed")
    reference = uninterrupted[0] / "run"
    assert_same_weights(weights(run / "model.safetensors"), weights(reference / "model.safetensors"))
    ours, theirs = metrics(run), metrics(reference)
    # the epoch's training loss was added up in another order (rank 0's first part held both
    # ranks' sums): equal to rounding
    assert [r["train_loss"] for r in ours] == pytest.approx([r["train_loss"] for r in theirs],
                                                            rel=1e-12)
    for record in (*ours, *theirs):
        del record["train_loss"]
    assert ours == theirs


# ------------------------------------------------------------------ errors
@requires_mpi
def test_a_usage_error_on_one_rank_ends_every_rank(tmp_path: Path) -> None:
    job = mpiexec("--distributed", *RUN, "--out", "run", cwd=tmp_path,
                  child=("fail-load", "-1", "-1", str(tmp_path)))
    code, output = finish(job, timeout=DEADLINE)
    assert code == 2, output
    assert output.strip() == "chainrule train: error: rank 1: no data here"
    assert not (tmp_path / "run").exists()


def two_rank_run(tmp_path: Path) -> Path:
    """A run directory as ``mpiexec -n 2 chainrule train --distributed`` leaves it at the start."""
    RunDir.create(str(tmp_path / "two"), {**DEFAULTS, "dataset": "iris", "world_size": 2})
    return tmp_path / "two"


def chainrule_train(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chainrule", "train", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=DEADLINE)


@requires_mpi
def test_without_mpiexec_it_is_one_rank(tmp_path: Path) -> None:
    one = chainrule_train("--distributed", "--epochs", "1", "--dataset", "iris", "--no-progress",
                          "--out", "one", cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    assert json.loads((tmp_path / "one" / "config.json").read_text())["world_size"] == 1
    assert {p.name for p in (tmp_path / "one").iterdir()} == FILES


@requires_mpi
@pytest.mark.parametrize("case", ["other rank count", "checkpointing"])
def test_one_line_errors_that_need_mpi(tmp_path: Path, case: str) -> None:
    if case == "other rank count":
        two_rank_run(tmp_path)
        result = chainrule_train("--distributed", "--resume", "two", cwd=tmp_path)
        message = ("--resume two: that run was trained on 2 rank(s); continue it with: "
                   "mpiexec -n 2 chainrule train --distributed --resume two")
    else:
        result = chainrule_train("--distributed", "--checkpoint-activations", "--out", "run",
                                 cwd=tmp_path)
        message = "--checkpoint-activations does not combine with --distributed"
    assert (result.returncode, result.stdout, result.stderr) == (
        2, "", f"chainrule train: error: {message}\n")
    assert not (tmp_path / "run").exists()


def test_resume_of_a_distributed_run_needs_distributed(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    two = two_rank_run(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--resume", str(two)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        f"chainrule train: error: --resume {two}: that run was trained on 2 rank(s); continue it "
        f"with: mpiexec -n 2 chainrule train --distributed --resume {two}\n")


@pytest.mark.parametrize("launcher_rank", [None, "0", "1"])
def test_distributed_without_mpi4py_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture,
                                                launcher_rank: str | None) -> None:
    monkeypatch.setattr(dist, "is_mpi_available", lambda: False)
    for name in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    if launcher_rank is not None:
        monkeypatch.setenv("PMI_RANK", launcher_rank)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--distributed", "--out", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    if launcher_rank == "1":
        assert err == ""  # rank 0 of the same job says it
    else:
        assert err == ("chainrule train: error: --distributed needs mpi4py and an MPI library: pip "
                       "install 'chainrule[distributed]', then launch with: mpiexec -n N chainrule "
                       "train --distributed\n")
    assert not (tmp_path / "run").exists()
