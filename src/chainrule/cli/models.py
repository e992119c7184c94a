"""The models `chainrule train` builds: an MLP, a small CNN, and an RNN that reads an image
row by row (a table feature by feature). Each is an ``nn.Sequential`` that takes the flat
feature rows, so one training loop (and ``checkpoint_sequential``) serves all three."""

from __future__ import annotations

from collections import OrderedDict

from .. import nn
from ..tensor import Tensor
from ._parser import UsageError
from .data import Data

KINDS = ("mlp", "cnn", "rnn")
CELLS = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}
DEFAULT_HIDDEN = {"mlp": [128, 64], "cnn": [64], "rnn": [64]}


class LastStep(nn.Module):
    """Run a recurrent layer over a (batch, steps, features) input and keep its output at
    the last step: a sequence classifier's summary of what it read.

    >>> LastStep(nn.GRU(8, 16, batch_first=True))(chainrule.zeros(4, 8, 8)).shape
    chainrule.Size([4, 16])
    """

    def __init__(self, rnn: nn.RNNBase) -> None:
        super().__init__()
        self.rnn = rnn

    def forward(self, x: Tensor) -> Tensor:
        output, _ = self.rnn(x)
        return output[:, -1]


def build(kind: str, data: Data, hidden: list[int] | None = None, channels: list[int] | None = None,
          cell: str = "gru") -> nn.Sequential:
    """The model ``kind`` for ``data``'s features and classes, its layers named (``fc1``,
    ``conv1``, ``rnn``, ``out``) so that the state dict and the gradient-flow plot read well.

    >>> build("mlp", data, hidden=[128, 64])
    """
    hidden = hidden or DEFAULT_HIDDEN[kind]
    if kind == "mlp":
        layers = _mlp(data.features, hidden, data.classes)
    elif kind == "cnn":
        layers = _cnn(data, channels or [16, 32], hidden)
    elif kind == "rnn":
        steps, width = _sequence_shape(data)
        rnn = CELLS[cell](width, hidden[0], num_layers=len(hidden), batch_first=True)
        layers = [("rows", nn.Unflatten(1, (steps, width))), ("rnn", LastStep(rnn)),
                  ("out", nn.Linear(hidden[0], data.classes))]
    else:
        raise UsageError(f"unknown model {kind!r}: choose one of {', '.join(KINDS)}")
    return nn.Sequential(OrderedDict(layers))


def _mlp(inputs: int, hidden: list[int], classes: int) -> list[tuple[str, nn.Module]]:
    layers: list[tuple[str, nn.Module]] = []
    for i, width in enumerate(hidden, start=1):
        layers += [(f"fc{i}", nn.Linear(inputs, width)), (f"relu{i}", nn.ReLU())]
        inputs = width
    return [*layers, ("out", nn.Linear(inputs, classes))]


def _cnn(data: Data, channels: list[int], hidden: list[int]) -> list[tuple[str, nn.Module]]:
    if data.image is None:
        raise UsageError(f"--model cnn needs image data; {data.name!r} is a table (use mlp or rnn)")
    depth, rows, cols = data.image
    if rows < 2 or cols < 2:
        raise UsageError(f"--model cnn needs images of at least 2x2, got {rows}x{cols}")
    # 3x3 convolutions that keep the size, then one 2x2 max pool
    layers: list[tuple[str, nn.Module]] = [("image", nn.Unflatten(1, data.image))]
    for i, width in enumerate(channels, start=1):
        layers += [(f"conv{i}", nn.Conv2d(depth, width, 3, padding=1)), (f"relu_c{i}", nn.ReLU())]
        depth = width
    layers += [("pool", nn.MaxPool2d(2)), ("flatten", nn.Flatten())]
    return layers + _mlp(depth * (rows // 2) * (cols // 2), hidden, data.classes)


def _sequence_shape(data: Data) -> tuple[int, int]:
    if data.image is None:
        return data.features, 1  # a table is read one feature per step
    depth, rows, cols = data.image
    if depth != 1:
        raise UsageError(f"--model rnn reads single-channel images row by row; {data.name!r} has "
                         f"{depth} channels (use cnn)")
    return rows, cols


def count_parameters(model: nn.Module) -> int:
    """The number of trainable scalars.

    >>> count_parameters(nn.Linear(64, 10))
    650
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
