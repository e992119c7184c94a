"""What a finished `chainrule train` run leaves: the weights, the loss/accuracy curves, the
gradient-flow picture, the HTML graph page, and the summary table on the terminal."""

from __future__ import annotations

import sys
from typing import Any

from . import models, run_dir

WIDTH = 15


def write_artifacts(trainer: Any) -> list[str]:
    """Write the run directory's final files; returns those it could not write, each with
    the reason. The checkpoint is already safe by then, so a picture that fails (a missing
    optional dependency, a graph the page cannot draw) is reported, not fatal."""
    run = trainer.run
    run.save_model(trainer.model.state_dict())
    writers = [(run_dir.CURVES, lambda path: plot_curves(trainer.history, path)),
               (run_dir.GRAD_FLOW, lambda path: _viz().plot_grad_flow(_flow_source(trainer), path)),
               (run_dir.GRAPH, lambda path: _viz().to_html(trainer.sample_loss(), path, params=trainer.model,
                                                           title=f"chainrule train: {run.path.name}"))]
    skipped = []
    for name, write in writers:
        try:
            write(str(run.file(name)))
        except Exception as error:  # noqa: BLE001 - any failure of a picture is reported alike
            skipped.append(f"{name} ({type(error).__name__}: {error})")
            print(f"chainrule train: not written: {skipped[-1]}", file=sys.stderr)
    return skipped


def _viz() -> Any:
    from .. import viz

    return viz


def _flow_source(trainer: Any) -> Any:
    """The tracker when it recorded steps (a run resumed at its last batch did not): else the
    model, whose gradients from the last step are still there."""
    tracker = trainer.tracker
    return tracker if tracker is not None and tracker.history else trainer.model


def plot_curves(history: list[dict[str, Any]], path: Any) -> None:
    """Loss and accuracy per epoch, train and test, side by side, as a PNG.

    >>> plot_curves([{"epoch": 1, "train_loss": 0.9, "test_loss": 1.0, "train_accuracy": 0.7,
    ...               "test_accuracy": 0.68}], "curves.png")
    """
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for split, style in (("train", "-"), ("test", "--")):
        left.plot(epochs, [r[f"{split}_loss"] for r in history], style, marker=".", label=split)
        right.plot(epochs, [100 * r[f"{split}_accuracy"] for r in history], style, marker=".",
                   label=split)
    left.set(title="cross-entropy loss", xlabel="epoch", yscale="log")
    right.set(title="accuracy", xlabel="epoch", ylabel="%")
    for axis in (left, right):
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def summary(trainer: Any) -> str:
    """The end-of-run table: data, model, test accuracy, time, where the files are."""
    config, data, history = trainer.config, trainer.data, trainer.history
    last = history[-1]
    best = max(history, key=lambda r: r["test_accuracy"])
    seen = len(data.train_y) * len(history)
    batch = config["batch_size"]
    if "world_size" in config:  # --distributed: each rank's batch, the global batch N times it
        batch = f"{config['world_size']} ranks x {batch}"
    rows = [
        ("dataset", f"{data.name}: {len(data.train_y)} train / {len(data.test_y)} test, "
                    f"{data.classes} classes"),
        ("model", f"{config['model']} ({_shape(trainer.model)})"),
        ("parameters", f"{models.count_parameters(trainer.model):,}"),
        ("optimizer", f"{config['optimizer']}, lr {trainer.lr:g}"
                      f", {config['schedule']} schedule, {config['epochs']} epochs of "
                      f"{batch}"),
        ("test accuracy", f"{100 * last['test_accuracy']:.2f}%  (best {100 * best['test_accuracy']:.2f}%"
                          f" at epoch {best['epoch']})"),
        ("test loss", f"{last['test_loss']:.4f}"),
        ("train loss", f"{last['train_loss']:.4f}"),
        ("time", f"{trainer.elapsed:.1f} s  ({seen / max(trainer.elapsed, 1e-9):,.0f} samples/s)"),
        ("run directory", str(trainer.run.path)),
    ]
    rule = "-" * (WIDTH + max(len(value) for _, value in rows) + 2)
    return "\n".join([rule, *(f"{name:<{WIDTH}}  {value}" for name, value in rows), rule])


def _shape(model: Any) -> str:
    """``64-128-64-10`` for an MLP; the layers with weights for the others."""
    layers = dict(model.named_children())
    linears = [m for m in layers.values() if type(m).__name__ == "Linear"]
    if all(type(m).__name__ in ("Linear", "ReLU") for m in layers.values()):
        return "-".join(str(n) for n in [linears[0].in_features, *(m.out_features for m in linears)])
    return ", ".join(name for name, m in layers.items() if any(True for _ in m.parameters()))
