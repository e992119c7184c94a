"""`chainrule train`: train a model on a dataset, evaluate it, and keep the run on disk.

    chainrule train                                   # an MLP on the handwritten digits
    chainrule train --model cnn --epochs 20 --lr 2e-3
    chainrule train --dataset data.csv --target label --model mlp --hidden 32
    chainrule train --dataset train-images-idx3-ubyte.gz --labels train-labels-idx1-ubyte.gz
    chainrule train --resume runs/digits-mlp-20250101-120000
    mpiexec -n 2 chainrule train --distributed          # data-parallel: 2 ranks, each --batch-size
    mpiexec -n 2 chainrule train --distributed --resume runs/digits-mlp-20250101-120000
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from .. import _dtype
from .. import distributed as dist
from ..ops.creation import from_numpy, tensor, zeros
from . import data as datasets
from . import models, report
from ._parser import UsageError, nonnegative_float, positive_float, positive_int, sizes
from .run_dir import RunDir
from .trainer import DEFAULT_LR, OPTIMIZERS, SCHEDULES, Interrupted, Trainer

DEFAULTS: dict[str, Any] = {
    "dataset": "digits", "labels": None, "target": "target", "test_fraction": 0.2,
    "model": "mlp", "hidden": None, "channels": None, "cell": "gru",
    "optimizer": "adam", "lr": None, "momentum": 0.9, "weight_decay": 0.0, "schedule": "cosine",
    "epochs": 30, "batch_size": 32, "clip_grad": None, "checkpoint_activations": False,
    "seed": 0, "dtype": "float32", "out": None,
}
# options that change how a run is shown or launched, not what it computes: allowed beside --resume
DISPLAY = {"progress", "distributed"}
# the rank that mpiexec gives a process, in its environment (MPICH and Intel MPI, Open MPI,
# Slurm): read only to keep an error that comes before MPI starts to one line per job
LAUNCHER_RANK = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID")
T = TypeVar("T")


def add_parser(commands: Any) -> None:
    """Register ``train`` on the ``chainrule`` command's subparsers."""
    p = commands.add_parser(
        "train", help="train a model on a dataset and evaluate it", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        # options not given stay absent: the run's config is DEFAULTS updated with them, and
        # --resume can tell which options were passed beside it
        argument_default=argparse.SUPPRESS,
    )
    data = p.add_argument_group("data")
    data.add_argument("--dataset", metavar="NAME|FILE",
                      help=f"{', '.join(datasets.BUILTIN)}, a .csv file, or an IDX image file with "
                           f"--labels (default: digits)")
    data.add_argument("--labels", metavar="FILE", help="the IDX label file for an IDX image file")
    data.add_argument("--target", metavar="COLUMN", help="a CSV file's label column (default: target)")
    data.add_argument("--test-fraction", type=_fraction, metavar="F",
                      help="the share of samples held out for testing (default: 0.2)")
    model = p.add_argument_group("model")
    model.add_argument("--model", choices=models.KINDS, help="mlp, a small cnn, or an rnn reading an "
                       "image row by row (a table feature by feature) (default: mlp)")
    model.add_argument("--hidden", type=sizes, metavar="SIZES",
                       help="hidden sizes: the MLP's layers (default 128,64), the CNN's fully "
                            "connected layers (64), the RNN's stacked layers (64)")
    model.add_argument("--channels", type=sizes, metavar="SIZES",
                       help="the CNN's convolution channels (default: 16,32)")
    model.add_argument("--cell", choices=sorted(models.CELLS), help="the RNN's cell (default: gru)")
    opt = p.add_argument_group("optimization")
    opt.add_argument("--optimizer", choices=sorted(OPTIMIZERS), help="(default: adam)")
    opt.add_argument("--lr", type=positive_float,
                     help="learning rate (default: " +
                          ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items()) + ")")
    opt.add_argument("--momentum", type=nonnegative_float, help="for sgd and rmsprop (default: 0.9)")
    opt.add_argument("--weight-decay", type=nonnegative_float, metavar="WD", help="(default: 0)")
    opt.add_argument("--schedule", choices=SCHEDULES,
                     help="learning-rate schedule: per epoch, or onecycle per batch (default: cosine)")
    opt.add_argument("--epochs", type=positive_int, help="(default: 30)")
    opt.add_argument("--batch-size", type=positive_int, help="(default: 32)")
    opt.add_argument("--clip-grad", type=positive_float, metavar="NORM",
                     help="clip the gradients' joint L2 norm to NORM before each step")
    opt.add_argument("--checkpoint-activations", action="store_true",
                     help="activation checkpointing: keep fewer activations, recompute them in "
                          "backward")
    run = p.add_argument_group("run")
    run.add_argument("--seed", type=int, help="seeds the split, the initial weights and the data "
                                              "order (default: 0)")
    run.add_argument("--dtype", choices=("float32", "float64"), help="(default: float32)")
    run.add_argument("--out", metavar="DIR", help="the run directory (default: runs/DATASET-MODEL-TIME)")
    run.add_argument("--resume", metavar="RUN_DIR",
                     help="continue that run from its last checkpoint, with its saved options")
    run.add_argument("--no-progress", dest="progress", action="store_false",
                     help="no progress bars")
    run.add_argument("--distributed", action="store_true",
                     help="data-parallel over MPI, launched as 'mpiexec -n N chainrule train "
                          "--distributed': each rank takes --batch-size samples a step (the global "
                          "batch is N times it); rank 0 writes the run directory")
    p.set_defaults(run=run_command)


def run_command(args: argparse.Namespace) -> int:
    given = {k: v for k, v in vars(args).items() if k not in ("command", "run")}
    progress = given.get("progress", True)
    distributed = given.get("distributed", False)
    if distributed:
        _join_process_group()
        progress = progress and dist.get_rank() == 0
    if "resume" in given:
        run, config = _agreed(distributed, lambda: _open_run(given, distributed))
        with default_dtype(config["dtype"]):
            trainer = _agreed(distributed, lambda: _resumed_trainer(run, config))
            return _fit(trainer, progress)
    config = _agreed(distributed, lambda: _new_config(given, distributed))
    with default_dtype(config["dtype"]):
        # a model that cannot fit the data fails before any file
        trainer = _agreed(distributed, lambda: Trainer(config, _load(config)))
        trainer.run = _create_run_dir(config, distributed)
        return _fit(trainer, progress)


def _open_run(given: dict[str, Any], distributed: bool) -> tuple[RunDir, dict[str, Any]]:
    extra = sorted(set(given) - DISPLAY - {"resume"})
    if extra:
        names = ", ".join("--" + name.replace("_", "-") for name in extra)
        raise UsageError(f"--resume continues a run with its saved options; drop {names}")
    path = given["resume"]
    run = RunDir.open(path)
    config = run.config()
    # a distributed run's data order depends on its number of ranks: only the same number
    # replays it exactly
    saved = config.get("world_size")
    if saved is None and distributed:
        raise UsageError(f"--resume {path}: that run was not --distributed; resume it without "
                         f"--distributed")
    if saved is not None and saved != (dist.get_world_size() if distributed else None):
        raise UsageError(f"--resume {path}: that run was trained on {saved} rank(s); continue it "
                         f"with: mpiexec -n {saved} chainrule train --distributed --resume {path}")
    return run, config


def _resumed_trainer(run: RunDir, config: dict[str, Any]) -> Trainer:
    trainer = Trainer(config, _load(config), run)
    if run.has_checkpoint():
        # every rank reads the one checkpoint; rank 0 writes the next one only after all
        # ranks have agreed that they are ready (_agreed), so no rank can read it half new
        trainer.restore(run.load_checkpoint())
    return trainer


def _new_config(given: dict[str, Any], distributed: bool) -> dict[str, Any]:
    config = {**DEFAULTS, **{k: v for k, v in given.items() if k in DEFAULTS}}
    if config["model"] != "rnn" and "cell" in given:
        raise UsageError("--cell applies to --model rnn")
    if config["model"] != "cnn" and "channels" in given:
        raise UsageError("--channels applies to --model cnn")
    if distributed and config["checkpoint_activations"]:
        # the recomputation hands each parameter its gradient twice (once to the checkpoint's
        # own backward, once to the model's), which DDP's gradient hooks refuse, as PyTorch's do
        # with its reentrant checkpoint
        raise UsageError("--checkpoint-activations does not combine with --distributed")
    if distributed:
        # saved with the run: it makes the trainer data-parallel, and --resume checks it
        config["world_size"] = dist.get_world_size()
    return config


def _create_run_dir(config: dict[str, Any], distributed: bool) -> RunDir:
    """The new run's directory, created by rank 0 alone; the others learn its path (a default
    name holds rank 0's clock time, which the other ranks could not guess)."""
    if not distributed:
        return RunDir.create(config["out"], config)
    rank = dist.get_rank()
    run = _agreed(True, lambda: RunDir.create(config["out"], config) if rank == 0 else None)
    path = str(run.path).encode() if run is not None else b""
    size = tensor([len(path)])
    dist.broadcast(size, src=0)
    data = from_numpy(np.frombuffer(path, dtype=np.uint8).copy()) if rank == 0 else \
        zeros(int(size.item()), dtype=_dtype.uint8)
    dist.broadcast(data, src=0)
    return RunDir(Path(bytes(data.numpy()).decode()))


def _join_process_group() -> None:
    """Start MPI for --distributed; without mpi4py, a one-line error (exit status 2)."""
    if not dist.is_mpi_available():
        if next((os.environ[name] for name in LAUNCHER_RANK if name in os.environ), "0") != "0":
            # every rank fails alike here, and without MPI they cannot agree on it: rank 0 says why
            raise SystemExit(2)
        raise UsageError("--distributed needs mpi4py and an MPI library: pip install "
                         "'chainrule[distributed]', then launch with: mpiexec -n N chainrule train "
                         "--distributed")
    dist.init_process_group(backend="mpi")


def _agreed(distributed: bool, step: Callable[[], T]) -> T:
    """``step()``'s result, once every rank has done its part without a usage error.

    In a distributed run a rank that refuses the run (a missing file, a run directory that
    exists) must not leave the others waiting in the next collective: the ranks exchange
    whether they failed; the lowest failing rank reports its error (one line, exit status
    2) and the others exit with status 2 silently.
    """
    if not distributed:
        return step()
    try:
        result, error = step(), None
    except UsageError as failure:
        result, error = None, failure
    rank, size = dist.get_rank(), dist.get_world_size()
    first = tensor([rank if error is not None else size])
    dist.all_reduce(first, op=dist.ReduceOp.MIN)
    if int(first.item()) == size:
        return result
    if error is None or int(first.item()) != rank:
        raise SystemExit(2)
    raise UsageError(f"rank {rank}: {error}" if rank else str(error))


def _load(config: dict[str, Any]) -> datasets.Data:
    return datasets.load(config["dataset"], labels=config["labels"], target=config["target"],
                         test_fraction=config["test_fraction"], seed=config["seed"],
                         dtype=_dtype.get_default_dtype().np)


def _fit(trainer: Trainer, progress: bool) -> int:
    # rank 0 speaks for a distributed run; the other ranks print nothing unless they fail
    speaks = trainer.rank == 0
    if trainer.epoch >= trainer.config["epochs"]:
        if speaks:
            print(f"{trainer.run.path}: all {trainer.config['epochs']} epochs are done; nothing to "
                  f"resume", file=sys.stderr)
            print(report.summary(trainer))
        return 0
    try:
        trainer.fit(progress)
    except Interrupted:
        path = trainer.run.path
        launch = (f"mpiexec -n {trainer.world_size} chainrule train --distributed"
                  if trainer.distributed else "chainrule train")
        if speaks:
            print(f"interrupted: saved a checkpoint in {path} (epoch {trainer.epoch + 1}, batch "
                  f"{trainer.batch}); continue with: {launch} --resume {path}", file=sys.stderr)
        return 130
    if speaks:
        report.write_artifacts(trainer)
        print(report.summary(trainer))
        if trainer.tracker is not None and trainer.tracker.history:
            print(trainer.tracker.report())
    if trainer.distributed:
        dist.barrier()  # the job ends when rank 0's files are written, on every rank alike
    return 0


@contextlib.contextmanager
def default_dtype(name: str) -> Iterator[None]:
    """chainrule's default float dtype set to ``name`` for the run, then restored."""
    previous = _dtype.get_default_dtype()
    _dtype.set_default_dtype(getattr(_dtype, name))
    try:
        yield
    finally:
        _dtype.set_default_dtype(previous)


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value
