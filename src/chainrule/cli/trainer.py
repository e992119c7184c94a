"""The training loop behind `chainrule train`, with its state in one checkpoint.

Resuming gives the same weights as a run that was never stopped: the checkpoint holds
the model, the optimizer, the schedule, chainrule's random state, and the data order's
generator state as it was at the start of the epoch in progress, with the number of
batches of that epoch already done. A checkpoint is written at each epoch's end; Ctrl-C
writes one after the batch in progress, mid-epoch. A run killed outright resumes from the
last epoch boundary and replays the epoch it lost from the same state.

A ``--distributed`` run (its config holds ``world_size``) runs this loop on every rank of
an MPI job: the model is wrapped in DistributedDataParallel, each rank reads its share of
the data through a DistributedSampler whose order depends only on the seed and the epoch,
and the ranks stop together after the same batch on Ctrl-C. Rank 0 alone writes the run
directory; every rank holds the same weights, optimizer state and history, so every rank
can resume from rank 0's checkpoint.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from collections.abc import Iterator
from typing import Any

from .. import distributed as dist
from .. import nn, optim
from .._dtype import float64, int64
from ..autograd import no_grad
from ..nn import functional as F
from ..ops.creation import Generator, from_numpy, get_rng_state, manual_seed, set_rng_state, tensor
from ..tensor import Tensor
from ..utils.checkpoint import checkpoint_sequential
from ..utils.data import DataLoader, DistributedSampler, TensorDataset
from . import models
from .data import Data
from .run_dir import RunDir

OPTIMIZERS = {"adam": optim.Adam, "adamw": optim.AdamW, "sgd": optim.SGD, "rmsprop": optim.RMSprop,
              "adagrad": optim.Adagrad}
DEFAULT_LR = {"adam": 3e-3, "adamw": 3e-3, "sgd": 0.05, "rmsprop": 1e-3, "adagrad": 0.05}
SCHEDULES = ("cosine", "step", "exponential", "onecycle", "none")
EVAL_BATCH = 2048
TRACKS_PER_EPOCH = 4


class Interrupted(Exception):
    """Ctrl-C arrived; the checkpoint holds the state after the last whole batch."""


class Trainer:
    """A model, its optimizer and schedule, the data, and where the run stands.

    >>> trainer = Trainer(config, data, RunDir.create("runs/x", config))
    >>> trainer.fit()
    """

    def __init__(self, config: dict[str, Any], data: Data, run: RunDir | None = None) -> None:
        self.config, self.data, self.run = config, data, run
        self.distributed = "world_size" in config
        self.rank = dist.get_rank() if self.distributed else 0
        self.world_size = config.get("world_size", 1)
        manual_seed(config["seed"])  # the weights' initialisation
        self.model = models.build(config["model"], data, config["hidden"], config["channels"],
                                  config["cell"])
        self.ddp: dist.DistributedDataParallel | None = None  # a distributed run's, from fit()
        self.lr = config["lr"] if config["lr"] is not None else DEFAULT_LR[config["optimizer"]]
        self.optimizer = _optimizer(config, self.model, self.lr)
        self.generator = Generator().manual_seed(config["seed"])
        dataset = TensorDataset(from_numpy(data.train_x), from_numpy(data.train_y))
        self.sampler: DistributedSampler | None = None
        if self.distributed:
            # the same permutation on every rank, drawn from seed + epoch alone (set_epoch), so
            # a resumed run replays the order without any saved generator state
            self.sampler = DistributedSampler(dataset, self.world_size, self.rank, shuffle=True,
                                              seed=config["seed"])
            self.loader = DataLoader(dataset, batch_size=config["batch_size"], sampler=self.sampler)
        else:
            self.loader = DataLoader(dataset, batch_size=config["batch_size"], shuffle=True,
                                     generator=self.generator)
        self.scheduler = _scheduler(config, self.optimizer, len(self.loader))
        # only rank 0 draws the gradient-flow picture
        self.tracker = _gradient_tracker(self.model) if self.rank == 0 else None
        # the tracker copies the weights at each record: a few records an epoch show the
        # flow without doubling the cost of a step
        self.track_every = max(1, len(self.loader) // TRACKS_PER_EPOCH)
        # where the run stands: epochs done, batches done in the epoch in progress and the
        # data order's generator state at that epoch's start
        self.epoch, self.batch = 0, 0
        self.epoch_start_state = self.generator.get_state()
        self.sums = _zero_sums()
        self.history: list[dict[str, Any]] = []
        self.elapsed = 0.0

    # ------------------------------------------------------------------ checkpoint
    def state(self) -> dict[str, Any]:
        """Everything a resumed run needs, as ``chainrule.save`` stores it.

        >>> chainrule.save(trainer.state(), "checkpoint.safetensors")
        """
        return {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "rng_state": get_rng_state(), "epoch_start_generator_state": self.epoch_start_state,
            "epoch": self.epoch, "batch": self.batch, "sums": dict(self.sums),
            "history": self.history, "elapsed": self.elapsed,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from ``state()``; metrics.jsonl is rewritten to the epochs it covers.

        >>> trainer.restore(chainrule.load("runs/x/checkpoint.safetensors"))
        """
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng_state"])
        self.epoch_start_state = state["epoch_start_generator_state"]
        self.epoch, self.batch = state["epoch"], state["batch"]
        self.sums, self.history, self.elapsed = state["sums"], state["history"], state["elapsed"]
        if self.rank == 0:
            self.run.rewrite_metrics(self.history)
        else:
            # a mid-epoch checkpoint holds the sums of every rank added up (see _epoch): rank 0
            # carries them on, the others start from zero, so the epoch's total counts each once
            self.sums = _zero_sums()

    def save(self) -> None:
        """Write the checkpoint (atomically: a crash leaves the previous one whole). In a
        distributed run rank 0 writes and every rank waits until it has: no rank goes on (or
        exits, which some launchers answer by ending the job) while the write is under way."""
        if self.rank == 0:
            self.run.save_checkpoint(self.state())
        if self.distributed:
            dist.barrier()

    # ------------------------------------------------------------------ training
    def fit(self, progress: bool = True) -> None:
        """Train up to the configured number of epochs, checkpointing each; raises
        Interrupted (after checkpointing) on Ctrl-C."""
        if self.distributed and self.ddp is None:
            # wrapped here, not in __init__: wrapping is a collective (it compares the ranks'
            # models and copies rank 0's weights), and until now a rank may still refuse the run
            self.ddp = dist.DistributedDataParallel(self.model)
        with _deferred_interrupt() as interrupted:
            while self.epoch < self.config["epochs"]:
                self._epoch(progress, interrupted)

    def _epoch(self, progress: bool, interrupted: list[bool]) -> None:
        started = time.perf_counter()
        seen_before = self.sums["seen"]
        self.generator.set_state(self.epoch_start_state)
        if self.sampler is not None:
            self.sampler.set_epoch(self.epoch)
        bar = _progress_bar(progress, len(self.loader), self.batch,
                            f"epoch {self.epoch + 1}/{self.config['epochs']}")
        self.model.train()
        try:
            for index, (xb, yb) in enumerate(self.loader):
                if index < self.batch:
                    continue  # done before the interruption: the same order, replayed
                self._step(xb, yb, track=index % self.track_every == 0)
                self.batch = index + 1
                if bar is not None:
                    # every rank's batches are as large as this one's: the job's rate is N times it
                    rate = (self.world_size * (self.sums["seen"] - seen_before)
                            / max(time.perf_counter() - started, 1e-9))
                    bar.set_postfix(loss=f"{self.sums['loss'] / self.sums['seen']:.4f}",
                                    samples_s=f"{rate:,.0f}", refresh=False)
                    bar.update()
                if self._stop_requested(interrupted):
                    self.elapsed += time.perf_counter() - started
                    self._add_up_sums()
                    self.save()
                    raise Interrupted
        finally:
            if bar is not None:
                bar.close()
        self._end_epoch(time.perf_counter() - started,
                        self.world_size * (self.sums["seen"] - seen_before))

    def _stop_requested(self, interrupted: list[bool]) -> bool:
        """Whether to stop after this batch: Ctrl-C came (on any rank)."""
        if not self.distributed:
            return interrupted[0]
        # mpiexec hands Ctrl-C to every rank, but each sees it between different batches:
        # agreeing after every batch makes all of them stop after the same one, with the same
        # weights, instead of one rank waiting forever in the next gradient all-reduce
        flag = tensor([int(interrupted[0])], dtype=int64)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def _add_up_sums(self) -> None:
        """The loss, hit and sample counts of every rank added up, on every rank: the metrics
        describe the whole job's data, not rank 0's share."""
        if not self.distributed:
            return
        sums = tensor([self.sums["loss"], self.sums["correct"], self.sums["seen"]], dtype=float64)
        dist.all_reduce(sums)
        loss, correct, seen = sums.tolist()
        self.sums = {"loss": loss, "correct": int(correct), "seen": int(seen)}

    def _step(self, xb: Tensor, yb: Tensor, track: bool) -> None:
        self.optimizer.zero_grad()
        logits = self.forward(xb)
        loss = F.cross_entropy(logits, yb)
        loss.backward()
        track = track and self.tracker is not None
        if track:
            self.tracker.record()
        if self.config["clip_grad"] is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config["clip_grad"])
        self.optimizer.step()
        if track:
            self.tracker.record_update()
        if self.config["schedule"] == "onecycle":
            self.scheduler.step()
        n = len(yb)
        self.sums["loss"] += float(loss.item()) * n
        self.sums["correct"] += int((logits.argmax(1) == yb).sum().item())
        self.sums["seen"] += n

    def forward(self, x: Tensor) -> Tensor:
        """The model's logits, in training through activation checkpointing when configured,
        or through DistributedDataParallel in a distributed run (which then averages the
        gradients of the coming backward)."""
        if self.config["checkpoint_activations"] and self.model.training:
            # segments by the sqrt(L) rule: activations are kept at segment boundaries only
            return checkpoint_sequential(self.model, None, x)
        if self.ddp is not None and self.model.training:
            return self.ddp(x)
        return self.model(x)

    def _end_epoch(self, seconds: float, samples: int) -> None:
        self._add_up_sums()
        # every rank evaluates (the others would only wait for rank 0), so every rank keeps
        # the same history and state
        test_loss, test_accuracy = self.evaluate()
        lr = self.optimizer.param_groups[0]["lr"]
        if self.scheduler is not None and self.config["schedule"] != "onecycle":
            self.scheduler.step()
        self.elapsed += seconds
        record = {
            "epoch": self.epoch + 1,
            "train_loss": self.sums["loss"] / max(self.sums["seen"], 1),
            "train_accuracy": self.sums["correct"] / max(self.sums["seen"], 1),
            "test_loss": test_loss, "test_accuracy": test_accuracy, "lr": lr,
            "seconds": seconds, "samples_per_s": samples / max(seconds, 1e-9),
        }
        self.history.append(record)
        self.epoch, self.batch = self.epoch + 1, 0
        self.epoch_start_state = self.generator.get_state()
        self.sums = _zero_sums()
        self.save()
        if self.rank == 0:
            self.run.append_metrics(record)

    def evaluate(self) -> tuple[float, float]:
        """Mean cross-entropy and accuracy on the test split."""
        x, y = self.data.test_x, self.data.test_y
        loss_sum, correct = 0.0, 0
        self.model.eval()
        with no_grad():
            for start in range(0, len(y), EVAL_BATCH):
                xb, yb = from_numpy(x[start:start + EVAL_BATCH]), from_numpy(y[start:start + EVAL_BATCH])
                logits = self.model(xb)
                loss_sum += float(F.cross_entropy(logits, yb, reduction="sum").item())
                correct += int((logits.argmax(1) == yb).sum().item())
        self.model.train()
        return loss_sum / len(y), correct / len(y)

    def sample_loss(self, size: int = 8) -> Tensor:
        """The loss of the trained model on a few training rows, with its graph recorded
        (for the HTML graph page)."""
        xb, yb = from_numpy(self.data.train_x[:size]), from_numpy(self.data.train_y[:size])
        self.model.eval()
        return F.cross_entropy(self.model(xb), yb)


def _zero_sums() -> dict[str, Any]:
    return {"loss": 0.0, "correct": 0, "seen": 0}


def _optimizer(config: dict[str, Any], model: nn.Module, lr: float) -> optim.Optimizer:
    name, decay = config["optimizer"], config["weight_decay"]
    if name == "sgd":
        return optim.SGD(model.parameters(), lr=lr, momentum=config["momentum"], weight_decay=decay)
    if name == "rmsprop":
        return optim.RMSprop(model.parameters(), lr=lr, momentum=config["momentum"], weight_decay=decay)
    if name == "adamw" and decay == 0:
        decay = 0.01  # AdamW's own default; plain Adam is --optimizer adam
    return OPTIMIZERS[name](model.parameters(), lr=lr, weight_decay=decay)


def _scheduler(config: dict[str, Any], optimizer: optim.Optimizer, steps_per_epoch: int) -> Any:
    schedules = optim.lr_scheduler
    epochs, kind = config["epochs"], config["schedule"]
    if kind == "cosine":
        return schedules.CosineAnnealingLR(optimizer, T_max=epochs)
    if kind == "step":
        return schedules.StepLR(optimizer, step_size=max(1, math.ceil(epochs / 3)), gamma=0.1)
    if kind == "exponential":
        return schedules.ExponentialLR(optimizer, gamma=0.95)
    if kind == "onecycle":
        return schedules.OneCycleLR(optimizer, max_lr=optimizer.param_groups[0]["lr"],
                                    total_steps=epochs * steps_per_epoch)
    return None


def _gradient_tracker(model: nn.Module) -> Any:
    try:
        from ..diagnostics import GradientFlowTracker
    except ImportError:  # a chainrule without the diagnostics tools: train without them
        return None
    return GradientFlowTracker(model)


def _progress_bar(enabled: bool, total: int, initial: int, description: str) -> Any:
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=initial, desc=description, unit="batch", leave=True,
                dynamic_ncols=True)


@contextlib.contextmanager
def _deferred_interrupt() -> Iterator[list[bool]]:
    """While training, the first Ctrl-C only raises a flag, read after each whole batch (so
    a checkpoint never holds a half-applied optimizer step); a second one interrupts at
    once."""
    flag = [False]

    def handler(signum: int, frame: Any) -> None:
        if flag[0]:
            raise KeyboardInterrupt
        flag[0] = True

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: Ctrl-C stays Python's
        yield flag
        return
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)
