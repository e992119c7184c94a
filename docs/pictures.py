"""Draw the pictures of the docs pages into docs/images/ (reproducible: fixed seeds).

Run from the repository root: .venv/bin/python docs/pictures.py

- curves.png, grad_flow.png, graph.html: a `chainrule train` run with its defaults
- vanishing_gradients.png: examples/vanishing_gradients.py (50 layers, five networks)
- activations.png: ActivationMonitor on a digits MLP with one layer's biases pushed down
- small_net.html: the graph page of `chainrule explain`'s small net
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import shutil
import sys
import tempfile
from pathlib import Path

import chainrule as torch
import chainrule.nn as nn
from chainrule.cli import main as chainrule_command
from chainrule.diagnostics import ActivationMonitor

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"


def training_run() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        with contextlib.redirect_stdout(io.StringIO()):
            chainrule_command(["train", "--out", str(run), "--no-progress"])
        for name in ("curves.png", "grad_flow.png", "graph.html"):
            shutil.copy(run / name, IMAGES / name)


def vanishing_gradients() -> None:
    spec = importlib.util.spec_from_file_location("vanishing", ROOT / "examples" / "vanishing_gradients.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with contextlib.redirect_stdout(io.StringIO()):
        module.main(out=str(IMAGES / "vanishing_gradients.png"))


def activations() -> None:
    torch.manual_seed(0)
    features, _ = torch.datasets.load_digits()
    x = features / 16
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 32), nn.Tanh(),
                          nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 10))
    with torch.no_grad():
        model[0].bias[:8] = -100.0  # eight units of the first ReLU can never fire
        model[2].weight.mul_(40.0)  # a tanh layer driven into saturation
    with ActivationMonitor(model) as monitor:
        with torch.no_grad():
            for start in range(0, len(x), 256):
                model(x[start:start + 256])
    torch.viz.plot_activation_histograms(monitor, IMAGES / "activations.png")
    print(monitor.report())


def small_net_page() -> None:
    w1, b1, w2, b2 = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (0.5, 0.1, 0.8, 0.2))
    x, y = torch.tensor(2.0, dtype=torch.float64), torch.tensor(1.5, dtype=torch.float64)
    z1 = w1 * x + b1
    a1 = torch.relu(z1)
    yhat = w2 * a1 + b2
    loss = 0.5 * (yhat - y) ** 2
    torch.viz.to_html(loss, IMAGES / "small_net.html", title="the small net of chainrule explain")


if __name__ == "__main__":
    IMAGES.mkdir(parents=True, exist_ok=True)
    import chainrule.datasets  # noqa: F401 - torch.datasets above
    import chainrule.viz  # noqa: F401 - torch.viz above

    for draw in (training_run, vanishing_gradients, activations, small_net_page):
        draw()
        print(f"drew: {draw.__name__}", file=sys.stderr)
