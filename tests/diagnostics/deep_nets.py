"""Small deep nets for the diagnostics tests: the classic vanishing-gradient line-up."""

from __future__ import annotations

import chainrule as cr
import chainrule.nn as nn


class Residual(nn.Module):
    """x + fc(relu(x)): a pre-activation residual block."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.act = nn.ReLU()
        self.fc = nn.Linear(width, width)

    def forward(self, x):
        return x + self.fc(self.act(x))


def deep_net(kind: str, depth: int = 50, width: int = 32) -> nn.Sequential:
    """``depth`` hidden layers of ``kind``: sigmoid, tanh, relu (default init), relu_he, residual."""
    layers = []
    for _ in range(depth):
        if kind == "residual":
            layers.append(Residual(width))
            continue
        linear = nn.Linear(width, width)
        if kind == "relu_he":
            nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
            nn.init.zeros_(linear.bias)
        layers += [linear, {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh}.get(kind, nn.ReLU)()]
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


def mse_backward(model: nn.Module, seed: int = 0, batch: int = 64, width: int = 32):
    gen = cr.Generator().manual_seed(seed)
    x = cr.randn(batch, width, generator=gen)
    y = cr.randn(batch, 1, generator=gen)
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    return loss
