"""`chainrule train`: train a model on a dataset, evaluate it, and keep the run on disk.

    chainrule train                                   # an MLP on the handwritten digits
    chainrule train --model cnn --epochs 20 --lr 2e-3
    chainrule train --dataset data.csv --target label --model mlp --hidden 32
    chainrule train --dataset train-images-idx3-ubyte.gz --labels train-labels-idx1-ubyte.gz
    chainrule train --resume runs/digits-mlp-20250101-120000
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from .. import _dtype
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
# options that change how a run is shown, not what it computes: allowed beside --resume
DISPLAY = {"progress"}


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
    p.set_defaults(run=run_command)


def run_command(args: argparse.Namespace) -> int:
    given = {k: v for k, v in vars(args).items() if k not in ("command", "run")}
    progress = given.get("progress", True)
    if "resume" in given:
        extra = sorted(set(given) - DISPLAY - {"resume"})
        if extra:
            names = ", ".join("--" + name.replace("_", "-") for name in extra)
            raise UsageError(f"--resume continues a run with its saved options; drop {names}")
        run = RunDir.open(given["resume"])
        config = run.config()
        with default_dtype(config["dtype"]):
            trainer = Trainer(config, _load(config))
            trainer.run = run
            if run.has_checkpoint():
                trainer.restore(run.load_checkpoint())
            return _fit(trainer, progress)
    config = {**DEFAULTS, **{k: v for k, v in given.items() if k in DEFAULTS}}
    if config["model"] != "rnn" and "cell" in given:
        raise UsageError("--cell applies to --model rnn")
    if config["model"] != "cnn" and "channels" in given:
        raise UsageError("--channels applies to --model cnn")
    with default_dtype(config["dtype"]):
        data = _load(config)
        trainer = Trainer(config, data)  # a model that cannot fit the data fails before any file
        trainer.run = RunDir.create(config["out"], config)
        return _fit(trainer, progress)


def _load(config: dict[str, Any]) -> datasets.Data:
    return datasets.load(config["dataset"], labels=config["labels"], target=config["target"],
                         test_fraction=config["test_fraction"], seed=config["seed"],
                         dtype=_dtype.get_default_dtype().np)


def _fit(trainer: Trainer, progress: bool) -> int:
    if trainer.epoch >= trainer.config["epochs"]:
        print(f"{trainer.run.path}: all {trainer.config['epochs']} epochs are done; nothing to resume",
              file=sys.stderr)
        print(report.summary(trainer))
        return 0
    try:
        trainer.fit(progress)
    except Interrupted:
        path = trainer.run.path
        print(f"interrupted: saved a checkpoint in {path} (epoch {trainer.epoch + 1}, batch "
              f"{trainer.batch}); continue with: chainrule train --resume {path}", file=sys.stderr)
        return 130
    report.write_artifacts(trainer)
    print(report.summary(trainer))
    if trainer.tracker is not None and trainer.tracker.history:
        print(trainer.tracker.report())
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
