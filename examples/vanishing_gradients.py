"""The classic experiment: gradients vanish through 50 sigmoid layers, and what fixes it.

Five networks of 50 hidden layers (width 32) take one backward pass of a regression loss
on the same batch: sigmoid, tanh and ReLU with PyTorch's default initialisation, ReLU with
He initialisation, and pre-activation residual blocks (x + W relu(x)). Each hidden
layer's gradient norm is recorded by ``GradientFlowTracker`` and drawn side by side on a
log scale. sigmoid' <= 1/4, so each sigmoid layer shrinks the gradient by about that much:
after 50 layers the first layer's gradient is ~1e-40 of the last one's. He init keeps
ReLU's gradient norm level (variance 2/fan_in makes up for the half of the units that are
off), and the identity path of a residual block carries the gradient past every layer.

Run: ``python examples/vanishing_gradients.py [out.png]``
"""

from __future__ import annotations

import math
import sys

import chainrule as torch
import chainrule.nn as nn
from chainrule.diagnostics import GradientFlowTracker
from chainrule.viz.plots import pyplot

KINDS = ("sigmoid", "tanh", "relu", "relu_he", "residual")
LABELS = {"sigmoid": "sigmoid", "tanh": "tanh", "relu": "ReLU (default init)",
          "relu_he": "ReLU + He init", "residual": "residual (x + W relu(x))"}


class Residual(nn.Module):
    """A pre-activation residual block: the identity carries the gradient straight through."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.act = nn.ReLU()
        self.fc = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc(self.act(x))


def build(kind: str, depth: int, width: int) -> nn.Sequential:
    layers: list = []
    for _ in range(depth):
        if kind == "residual":
            layers.append(Residual(width))
            continue
        linear = nn.Linear(width, width)
        if kind == "relu_he":
            nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
            nn.init.zeros_(linear.bias)
        layers += [linear, {"sigmoid": nn.Sigmoid(), "tanh": nn.Tanh()}.get(kind, nn.ReLU())]
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


def main(depth: int = 50, width: int = 32, batch: int = 64, out: str | None = "vanishing_gradients.png",
         seed: int = 0) -> dict:
    """Run the five networks; return per kind the hidden layers' gradient norms (input side
    first) and the layers the vanishing detector flags; write the plot to ``out``."""
    results = {}
    for kind in KINDS:
        torch.manual_seed(seed)
        model = build(kind, depth, width)
        x, y = torch.randn(batch, width), torch.randn(batch, 1)
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        tracker = GradientFlowTracker(model)
        record = tracker.record()
        norms = [stats.grad_norm for stats in record.layers.values()][:-1]  # hidden layers
        results[kind] = {"norms": norms, "vanishing": [f.layer for f in tracker.vanishing()]}

    print(f"{depth} hidden layers of width {width}: gradient norm per layer")
    print(f"{'network':28} {'first layer':>12} {'middle':>12} {'last hidden':>12}  vanishing layers")
    for kind, result in results.items():
        n = result["norms"]
        print(f"{LABELS[kind]:28} {n[0]:12.3g} {n[len(n) // 2]:12.3g} {n[-1]:12.3g}  "
              f"{len(result['vanishing'])} of {len(n) + 1}")

    if out is not None:
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(9, 5), dpi=100)
        for kind, result in results.items():
            floor = [max(v, 1e-300) for v in result["norms"]]  # log scale: draw 0 at the floor
            ax.plot(range(1, len(floor) + 1), floor, marker="o", markersize=3, label=LABELS[kind])
        ax.set_yscale("log")
        ax.set_xlabel("hidden layer (1 = nearest the input)")
        ax.set_ylabel("gradient L2 norm (weight and bias)")
        ax.set_title(f"Gradient flow through {depth} layers, one backward pass")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out)
        plt.close(fig)
        print(f"wrote {out}")
    return results


if __name__ == "__main__":
    result = main(out=sys.argv[1] if len(sys.argv) > 1 else "vanishing_gradients.png")
    ratio = result["sigmoid"]["norms"][0] / result["sigmoid"]["norms"][-1]
    print(f"sigmoid: the first layer gets 10^{math.log10(ratio):.0f} of the last hidden layer's gradient")
