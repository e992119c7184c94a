"""Recurrent layers: RNN (tanh/relu), LSTM, GRU and their one-step cells, as PyTorch's.

Each layer and direction runs on an unrolled graph: the input projection ``x W_ih^T + b_ih``
of the whole sequence is one matmul, then every step adds ``h W_hh^T + b_hh`` (one matmul
for all gates) and applies the gate functions. Backpropagation through time is the
engine's ordinary backward through that graph; detaching the hidden state between
chunks gives truncated BPTT. An LSTM layer without projection is one primitive over the
whole sequence, its input projection included (ops/nn_kernels.py's lstm_layer: the same
math, one node, and each weight's gradient as one matmul over all steps).

Gate orders and parameter layouts are PyTorch's, so state dicts are interchangeable:
LSTM rows are (i, f, g, o), GRU rows (r, z, n), and GRU's candidate is
``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

from ...autograd import Function
from ...ops import creation, nn_kernels
from ...ops.math import relu, sigmoid, tanh
from ...ops.shape import cat, stack
from ...tensor import Tensor, _wrap
from .. import functional as F
from .. import init
from ..parameter import Parameter
from .module import Module

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


class _TimeSteps(Function):
    """(L, ...) -> its L slices along time, with a backward that stacks their gradients once.

    ``unbind`` (L getitems) would give each slice a full-size (L, ...) gradient for the
    engine to sum: O(L^2) work over a sequence. Written with chainrule ops, so
    differentiable again under create_graph.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> tuple:
        # plain tensors on x's memory, not views of x: x is this layer's own intermediate,
        # never written in place
        steps = x.detach()._data
        return tuple(_wrap(steps[t, ...]) for t in range(steps.shape[0]))

    @staticmethod
    def backward(ctx: Any, *grads: Tensor) -> Tensor:
        return stack(grads)

    @staticmethod
    def jvp(ctx: Any, tangent: Tensor) -> tuple:
        return tangent.unbind(0)


# ------------------------------------------------------------------ one step of each cell
def _rnn_step(activation: Any) -> Any:
    def step(projected: Tensor, h: Tensor, c: Any, w_hh: Tensor, b_hh: Tensor | None) -> tuple:
        # h' = act(W_ih x + b_ih + W_hh h + b_hh)
        return activation(projected + F.linear(h, w_hh, b_hh)), None

    return step


def _lstm_step(projected: Tensor, h: Tensor, c: Tensor, w_hh: Tensor,
               b_hh: Tensor | None) -> tuple:
    # gates = W_ih x + b_ih + W_hh h + b_hh, rows (i, f, g, o):
    # c' = f * c + i * g,  h' = o * tanh(c'),  with i, f, o sigmoids and g a tanh, all in
    # one fused primitive after the matmul; b_hh is already in ``projected`` when None here
    size = c.shape[-1]
    state = nn_kernels.lstm_cell(projected, F.linear(h, w_hh, b_hh), c)  # [h', c']
    return state[..., :size], state[..., size:]


def _gru_step(projected: tuple, h: Tensor, c: Any, w_hh: Tensor, b_hh: Tensor | None) -> tuple:
    # r, z = sigmoid(W_i{r,z} x + b_i{r,z} + W_h{r,z} h + b_h{r,z})
    # n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),  h' = (1 - z) * n + z * h = n + z (h - n)
    projected_rz, projected_n = projected  # split apart for the whole sequence (_time_steps)
    hidden = F.linear(h, w_hh, b_hh)
    size = h.shape[-1]
    reset_update = sigmoid(projected_rz + hidden[..., :2 * size])
    candidate = tanh(projected_n + reset_update[..., :size] * hidden[..., 2 * size:])
    return candidate + reset_update[..., size:] * (h - candidate), None


def _time_steps(mode: str, projected: Tensor) -> Any:
    """The input projection (L, N, gates*H) as one entry per step. GRU's is split into its
    (r, z) and n rows first, once for the whole sequence rather than at every step."""
    if mode != "GRU":
        return _TimeSteps.apply(projected)
    size = projected.shape[-1] // 3
    return tuple(zip(_TimeSteps.apply(projected[..., :2 * size]),
                     _TimeSteps.apply(projected[..., 2 * size:])))


_STEPS = {"RNN_TANH": _rnn_step(tanh), "RNN_RELU": _rnn_step(relu), "LSTM": _lstm_step,
          "GRU": _gru_step}


# ------------------------------------------------------------------ the layers
class RNNBase(Module):
    """The stacked, optionally bidirectional recurrence shared by RNN, LSTM and GRU.

    Parameters per layer k and direction (suffix '_reverse' for the backward one):
    ``weight_ih_l{k}`` (gates*H, input), ``weight_hh_l{k}`` (gates*H, H), ``bias_ih_l{k}``,
    ``bias_hh_l{k}``, and for an LSTM with ``proj_size`` ``weight_hr_l{k}`` (proj, H).
    All are drawn from U(-1/sqrt(H), 1/sqrt(H)), as PyTorch.
    """

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        name = type(self).__name__
        if not 0 <= dropout <= 1 or isinstance(dropout, bool):
            raise ValueError(f"{name}: dropout should be a number in [0, 1] representing the "
                             f"probability of an element being zeroed, got {dropout}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(f"{name}: dropout option adds dropout after all but last recurrent "
                          f"layer, so non-zero dropout expects num_layers greater than 1, but "
                          f"got dropout={dropout} and num_layers={num_layers}", stacklevel=2)
        if hidden_size <= 0 or num_layers <= 0:
            raise ValueError(f"{name}: hidden_size and num_layers must be positive, got "
                             f"{hidden_size} and {num_layers}")
        if not 0 <= proj_size < hidden_size:
            raise ValueError(f"{name}: proj_size must be in [0, hidden_size), got {proj_size}")
        if proj_size and mode != "LSTM":
            raise ValueError(f"{name}: proj_size is only supported by LSTM")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        directions = 2 if bidirectional else 1
        out_size = proj_size or hidden_size
        gate_size = _GATES[mode] * hidden_size
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else out_size * directions
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                shapes = {"weight_ih": (gate_size, layer_input), "weight_hh": (gate_size, out_size)}
                if bias:
                    shapes.update(bias_ih=(gate_size,), bias_hh=(gate_size,))
                if proj_size:
                    shapes["weight_hr"] = (proj_size, hidden_size)
                for kind, shape in shapes.items():
                    setattr(self, kind + suffix,
                            Parameter(creation.empty(shape, dtype=dtype, device=device)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw every weight and bias from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            init.uniform_(weight, -bound, bound)

    def flatten_parameters(self) -> None:
        """Nothing to do: PyTorch packs the weights into one buffer for cuDNN; code written
        for it calls this, so it is kept as a no-op."""

    @property
    def all_weights(self) -> list:
        """The parameters of each layer and direction, in PyTorch's order."""
        directions = 2 if self.bidirectional else 1
        return [[p for p in self._layer_parameters(layer, direction) if p is not None]
                for layer in range(self.num_layers) for direction in range(directions)]

    def _layer_parameters(self, layer: int, direction: int) -> tuple:
        suffix = f"_l{layer}" + ("_reverse" if direction else "")
        get = self._parameters.get
        return (get("weight_ih" + suffix), get("weight_hh" + suffix), get("bias_ih" + suffix),
                get("bias_hh" + suffix), get("weight_hr" + suffix))

    def _initial_state(self, hx: Tensor | None, batch: int, size: int, unbatched: bool,
                       like: Tensor, what: str) -> Tensor:
        """``hx`` checked against (layers * directions, N, size), or zeros."""
        expected = (self.num_layers * (2 if self.bidirectional else 1), batch, size)
        if hx is None:
            return creation.zeros(expected, dtype=like.dtype, device=like.device)
        if unbatched:
            if hx.ndim != 2:
                raise RuntimeError(f"{type(self).__name__}: for unbatched 2-D input, {what} "
                                   f"should also be 2-D but got {hx.ndim}-D tensor")
            hx = hx.unsqueeze(1)
        if tuple(hx.shape) != expected:
            raise RuntimeError(f"{type(self).__name__}: expected {what} of size {expected}, got "
                               f"{list(hx.shape)}")
        return hx

    def forward(self, input: Tensor, hx: Any = None) -> tuple:
        name = type(self).__name__
        weight = self.weight_ih_l0
        if input.dtype != weight.dtype:
            raise ValueError(f"{name}: input dtype ({input.dtype}) does not match weight dtype "
                             f"({weight.dtype}). Convert input: input.to({weight.dtype}), or "
                             f"convert model: model.to({input.dtype})")
        if input.ndim not in (2, 3):
            raise ValueError(f"{name}: expected input to be 2-D (unbatched) or 3-D, got "
                             f"{input.ndim}-D tensor of shape {tuple(input.shape)}")
        if input.shape[-1] != self.input_size:
            raise RuntimeError(f"{name}: input.size(-1) must be equal to input_size. Expected "
                               f"{self.input_size}, got {input.shape[-1]}")
        unbatched = input.ndim == 2
        x = input.unsqueeze(1) if unbatched else (input.transpose(0, 1) if self.batch_first
                                                  else input)
        batch = x.shape[1]
        out_size = self.proj_size or self.hidden_size
        if self.mode == "LSTM":
            h0, c0 = (None, None) if hx is None else hx
            h0 = self._initial_state(h0, batch, out_size, unbatched, x, "hidden[0]")
            c0 = self._initial_state(c0, batch, self.hidden_size, unbatched, x, "hidden[1]")
        else:
            h0 = self._initial_state(hx, batch, out_size, unbatched, x, "hidden")
            c0 = None
        output, h_n, c_n = self._run(x, h0, c0)
        if unbatched:
            output, h_n = output.squeeze(1), h_n.squeeze(1)
            c_n = None if c_n is None else c_n.squeeze(1)
        elif self.batch_first:
            output = output.transpose(0, 1)
        return output, (h_n if c_n is None else (h_n, c_n))

    def _run(self, x: Tensor, h0: Tensor, c0: Tensor | None) -> tuple:
        """All layers over time-major ``x`` (L, N, input): output, h_n, c_n (None unless LSTM)."""
        step = _STEPS[self.mode]
        directions = 2 if self.bidirectional else 1
        length, batch = x.shape[0], x.shape[1]
        finals_h, finals_c = [], []
        layer_input = x
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                w_ih, w_hh, b_ih, b_hh, w_hr = self._layer_parameters(layer, direction)
                index = layer * directions + direction
                h, c = h0[index], None if c0 is None else c0[index]
                if self.mode == "LSTM" and b_hh is not None:
                    # both biases join the input side, added once for the whole sequence
                    b_ih, b_hh = b_ih + b_hh, None
                if self.mode == "LSTM" and w_hr is None:
                    # the whole layer, input projection included, as one primitive: [h_t, c_t]
                    # for every step
                    if b_ih is None:
                        b_ih = creation.zeros(w_ih.shape[:1], dtype=x.dtype, device=x.device)
                    states = nn_kernels.lstm_layer(layer_input, h, c, w_ih, w_hh, b_ih,
                                                   reverse=bool(direction))
                    size = self.hidden_size
                    last = 0 if direction else length - 1
                    outputs.append(states[..., :size])
                    finals_h.append(states[last, :, :size])
                    finals_c.append(states[last, :, size:])
                    continue
                # the input side of every step in one matmul, over (L*N) rows: a 2-D
                # product is one BLAS call (3-D: one per time step, measured 2x slower)
                projected = F.linear(layer_input.reshape(length * batch, -1), w_ih, b_ih)
                projected = projected.reshape(length, batch, -1)
                projected = _time_steps(self.mode, projected)  # taken apart by time
                hs = [None] * length
                for t in (range(length - 1, -1, -1) if direction else range(length)):
                    h, c = step(projected[t], h, c, w_hh, b_hh)
                    if w_hr is not None:
                        h = F.linear(h, w_hr)  # LSTM projection: h' = W_hr (o * tanh(c'))
                    hs[t] = h
                outputs.append(stack(hs))
                finals_h.append(h)
                finals_c.append(c)
            layer_input = outputs[0] if directions == 1 else cat(outputs, 2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, True)
        c_n = None if c0 is None else stack(finals_c)
        return layer_input, stack(finals_h), c_n

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            text += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if self.bias is not True:
            text += f", bias={self.bias}"
        if self.batch_first is not False:
            text += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            text += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            text += f", bidirectional={self.bidirectional}"
        return text


class RNN(RNNBase):
    """Elman RNN: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` (or relu).

    Returns ``(output, h_n)``: output (L, N, D*H) (batch_first: (N, L, D*H)), h_n
    (D*num_layers, N, H).

    >>> rnn = chainrule.nn.RNN(10, 20, num_layers=2)
    >>> output, h_n = rnn(chainrule.randn(5, 3, 10))
    >>> output.shape, h_n.shape
    (chainrule.Size([5, 3, 20]), chainrule.Size([2, 3, 20]))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device: Any = None,
                 dtype: Any = None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: unknown nonlinearity '{nonlinearity}'; use 'tanh' or 'relu'")
        self.nonlinearity = nonlinearity
        super().__init__(f"RNN_{nonlinearity.upper()}", input_size, hidden_size, num_layers, bias,
                         batch_first, dropout, bidirectional, 0, device, dtype)


class LSTM(RNNBase):
    """Long short-term memory; ``forward(input, (h_0, c_0))`` returns
    ``(output, (h_n, c_n))``. With ``proj_size`` > 0, h is projected to that size.

    >>> lstm = chainrule.nn.LSTM(10, 20, batch_first=True, bidirectional=True)
    >>> output, (h_n, c_n) = lstm(chainrule.randn(3, 5, 10))
    >>> output.shape, c_n.shape
    (chainrule.Size([3, 5, 40]), chainrule.Size([2, 3, 20]))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device, dtype)


class GRU(RNNBase):
    """Gated recurrent unit; returns ``(output, h_n)`` like RNN.

    >>> output, h_n = chainrule.nn.GRU(10, 20)(chainrule.randn(5, 3, 10))
    >>> h_n.shape
    chainrule.Size([1, 3, 20])
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, device: Any = None, dtype: Any = None) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, device, dtype)


# ------------------------------------------------------------------ single-step cells
class RNNCellBase(Module):
    """One step of a recurrence, with parameters weight_ih, weight_hh, bias_ih, bias_hh."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, bias: bool,
                 device: Any, dtype: Any) -> None:
        super().__init__()
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        gate_size = _GATES[mode] * hidden_size
        self.weight_ih = Parameter(creation.empty((gate_size, input_size), dtype=dtype,
                                                  device=device))
        self.weight_hh = Parameter(creation.empty((gate_size, hidden_size), dtype=dtype,
                                                  device=device))
        if bias:
            self.bias_ih = Parameter(creation.empty((gate_size,), dtype=dtype, device=device))
            self.bias_hh = Parameter(creation.empty((gate_size,), dtype=dtype, device=device))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    reset_parameters = RNNBase.reset_parameters

    def _step(self, input: Tensor, h: Tensor | None, c: Tensor | None) -> tuple:
        name = type(self).__name__
        if input.ndim not in (1, 2) or input.shape[-1] != self.input_size:
            raise RuntimeError(f"{name}: expected input of shape (N, {self.input_size}) or "
                               f"({self.input_size},), got {tuple(input.shape)}")
        unbatched = input.ndim == 1
        x = input.unsqueeze(0) if unbatched else input
        state = []
        for value in (h, c):
            if value is None:
                value = creation.zeros((x.shape[0], self.hidden_size), dtype=x.dtype,
                                       device=x.device)
            elif unbatched:
                value = value.unsqueeze(0)
            state.append(value)
        projected = F.linear(x, self.weight_ih, self.bias_ih)
        if self.mode == "GRU":
            projected = (projected[..., :2 * self.hidden_size], projected[..., 2 * self.hidden_size:])
        h, c = _STEPS[self.mode](projected, state[0], state[1], self.weight_hh, self.bias_hh)
        if unbatched:
            h, c = h.squeeze(0), None if c is None else c.squeeze(0)
        return h, c

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            text += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            text += f", nonlinearity={self.nonlinearity}"
        return text


class RNNCell(RNNCellBase):
    """``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (or relu) for one step.

    >>> chainrule.nn.RNNCell(10, 20)(chainrule.randn(3, 10)).shape
    chainrule.Size([3, 20])
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device: Any = None, dtype: Any = None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: unknown nonlinearity '{nonlinearity}'; use 'tanh' or "
                             f"'relu'")
        self.nonlinearity = nonlinearity
        super().__init__(f"RNN_{nonlinearity.upper()}", input_size, hidden_size, bias, device,
                         dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        return self._step(input, hx, None)[0]


class LSTMCell(RNNCellBase):
    """One LSTM step: ``forward(input, (h, c))`` returns ``(h', c')``.

    >>> h, c = chainrule.nn.LSTMCell(10, 20)(chainrule.randn(3, 10))
    >>> c.shape
    chainrule.Size([3, 20])
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__("LSTM", input_size, hidden_size, bias, device, dtype)

    def forward(self, input: Tensor, hx: tuple | None = None) -> tuple:
        h, c = (None, None) if hx is None else hx
        return self._step(input, h, c)


class GRUCell(RNNCellBase):
    """One GRU step: ``forward(input, h)`` returns ``h'``.

    >>> chainrule.nn.GRUCell(10, 20)(chainrule.randn(3, 10)).shape
    chainrule.Size([3, 20])
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__("GRU", input_size, hidden_size, bias, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        return self._step(input, hx, None)[0]
