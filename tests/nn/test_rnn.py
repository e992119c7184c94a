"""RNN, LSTM, GRU and their cells against PyTorch from identical weights, in float64."""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.autograd import gradcheck, gradgradcheck

torch = pytest.importorskip("torch")

RTOL, ATOL = 1e-10, 1e-12


def twins(name: str, **kwargs):
    """Our module and PyTorch's, in float64 with the same weights; names and repr checked."""
    ours = getattr(nn, name)(**kwargs).double()
    theirs = getattr(torch.nn, name)(**kwargs).double()
    assert repr(ours) == repr(theirs)
    assert [(n, tuple(p.shape)) for n, p in ours.named_parameters()] == \
        [(n, tuple(p.shape)) for n, p in theirs.named_parameters()]
    with torch.no_grad():
        for n, p in ours.named_parameters():
            theirs.get_parameter(n).copy_(torch.tensor(p.detach().numpy()))
    return ours, theirs


def close(ours, theirs) -> None:
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), RTOL, ATOL)


def as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


def check_sequence(name: str, kwargs: dict, shape: tuple, with_state: bool, seed: int = 0) -> None:
    """Outputs, final states and every gradient (input, initial state, weights) agree."""
    rng = np.random.default_rng(seed)
    ours, theirs = twins(name, **kwargs)
    x = rng.standard_normal(shape)
    inputs = [(cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True))]
    if with_state:
        directions = 2 if kwargs.get("bidirectional") else 1
        stacked = directions * kwargs.get("num_layers", 1)
        hidden = kwargs["hidden_size"]
        batch = () if len(shape) == 2 else (shape[0] if kwargs.get("batch_first") else shape[1],)
        sizes = [kwargs.get("proj_size") or hidden] + ([hidden] if name == "LSTM" else [])
        for size in sizes:
            value = rng.standard_normal((stacked,) + batch + (size,))
            inputs.append((cr.tensor(value, requires_grad=True), torch.tensor(value, requires_grad=True)))
    ours_args = [inputs[0][0]]
    theirs_args = [inputs[0][1]]
    if with_state:
        states = [pair for pair in inputs[1:]]
        ours_args.append(tuple(s[0] for s in states) if name == "LSTM" else states[0][0])
        theirs_args.append(tuple(s[1] for s in states) if name == "LSTM" else states[0][1])
    out, state = ours(*ours_args)
    expected, expected_state = theirs(*theirs_args)
    close(out, expected)
    loss, expected_loss = (out * out).sum(), (expected * expected).sum()
    for s, e in zip(as_tuple(state), as_tuple(expected_state)):
        close(s, e)
        loss, expected_loss = loss + (s * s * s).sum(), expected_loss + (e * e * e).sum()
    loss.backward()
    expected_loss.backward()
    for a, b in inputs:
        close(a.grad, b.grad)
    for n, p in ours.named_parameters():
        close(p.grad, theirs.get_parameter(n).grad)


SEQUENCE_CASES = [
    ("RNN", {"input_size": 3, "hidden_size": 4}, (6, 2, 3), False),
    ("RNN", {"input_size": 3, "hidden_size": 4, "nonlinearity": "relu", "num_layers": 2,
             "bidirectional": True, "batch_first": True}, (2, 6, 3), True),
    ("LSTM", {"input_size": 3, "hidden_size": 4}, (7, 2, 3), True),
    ("LSTM", {"input_size": 3, "hidden_size": 4, "num_layers": 2, "bidirectional": True}, (6, 2, 3), True),
    ("LSTM", {"input_size": 3, "hidden_size": 5, "num_layers": 2, "proj_size": 2, "bias": False,
              "batch_first": True}, (2, 5, 3), True),
    # the fused layer without biases (zeros passed for them), its input a batch_first view
    ("LSTM", {"input_size": 3, "hidden_size": 4, "bias": False, "bidirectional": True,
              "batch_first": True}, (2, 5, 3), True),
    ("GRU", {"input_size": 3, "hidden_size": 4, "num_layers": 3, "bidirectional": True,
             "batch_first": True}, (2, 6, 3), True),
    ("GRU", {"input_size": 3, "hidden_size": 4, "bias": False}, (6, 2, 3), False),
    # unbatched (L, input) input and (layers*D, H) states
    ("LSTM", {"input_size": 3, "hidden_size": 4, "bidirectional": True}, (5, 3), True),
    ("GRU", {"input_size": 3, "hidden_size": 4, "num_layers": 2}, (5, 3), True),
]


@pytest.mark.parametrize("name, kwargs, shape, with_state", SEQUENCE_CASES, ids=str)
def test_sequence_layers_match_torch(name, kwargs, shape, with_state):
    check_sequence(name, kwargs, shape, with_state)


def test_lstm_in_float32_matches_torch():
    """float32 (BLAS's single-precision routines in the fused layer) at sizes where the
    per-step products are real matrices: values and gradients to float32 precision."""
    rng = np.random.default_rng(3)
    ours, theirs = twins("LSTM", input_size=16, hidden_size=32, num_layers=2,
                         bidirectional=True)
    ours.float()
    theirs.float()
    x = rng.standard_normal((6, 5, 16)).astype(np.float32)
    h0, c0 = rng.standard_normal((2, 4, 5, 32)).astype(np.float32)
    pairs = [(cr.tensor(v, requires_grad=True), torch.tensor(v, requires_grad=True))
             for v in (x, h0, c0)]
    out, (h_n, c_n) = ours(pairs[0][0], (pairs[1][0], pairs[2][0]))
    expected, (e_h, e_c) = theirs(pairs[0][1], (pairs[1][1], pairs[2][1]))
    for a, b in ((out, expected), (h_n, e_h), (c_n, e_c)):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), 1e-5, 1e-6)
    ((out * out).sum() + (c_n * h_n).sum()).backward()
    ((expected * expected).sum() + (e_c * e_h).sum()).backward()
    grads = [(a.grad, b.grad) for a, b in pairs] + [
        (p.grad, theirs.get_parameter(n).grad) for n, p in ours.named_parameters()]
    for a, b in grads:
        assert a.dtype == cr.float32
        np.testing.assert_allclose(a.numpy(), b.numpy(), 1e-4, 1e-5)


@pytest.mark.parametrize("name, kwargs", [
    ("RNNCell", {"input_size": 3, "hidden_size": 4, "nonlinearity": "relu"}),
    ("LSTMCell", {"input_size": 3, "hidden_size": 4}),
    ("GRUCell", {"input_size": 3, "hidden_size": 4, "bias": False}),
], ids=str)
def test_cells_match_torch(name, kwargs):
    rng = np.random.default_rng(1)
    ours, theirs = twins(name, **kwargs)
    x, h, c = rng.standard_normal((2, 3)), rng.standard_normal((2, 4)), rng.standard_normal((2, 4))
    state = (cr.tensor(h), cr.tensor(c)) if name == "LSTMCell" else cr.tensor(h)
    expected_state = (torch.tensor(h), torch.tensor(c)) if name == "LSTMCell" else torch.tensor(h)
    for s, e in zip(as_tuple(ours(cr.tensor(x), state)), as_tuple(theirs(torch.tensor(x), expected_state))):
        close(s, e)
    for s, e in zip(as_tuple(ours(cr.tensor(x[0]))), as_tuple(theirs(torch.tensor(x[0])))):
        close(s, e)  # unbatched, zero initial state


def test_truncated_bptt_by_detaching_the_state():
    """Two chunks with the state detached in between, as in language-model training: the
    weight gradients match PyTorch's, and the second chunk's loss leaves the first
    chunk's input without a gradient."""
    rng = np.random.default_rng(2)
    ours, theirs = twins("LSTM", input_size=3, hidden_size=4, num_layers=2)
    chunks = [rng.standard_normal((4, 2, 3)) for _ in range(2)]
    xs = [cr.tensor(c, requires_grad=True) for c in chunks]
    state, expected_state = None, None
    for x, chunk in zip(xs, chunks):
        ours.zero_grad()
        theirs.zero_grad()
        out, state = ours(x, state)
        expected, expected_state = theirs(torch.tensor(chunk), expected_state)
        (out * out).sum().backward()
        (expected * expected).sum().backward()
        state = tuple(s.detach() for s in state)
        expected_state = tuple(s.detach() for s in expected_state)
        for n, p in ours.named_parameters():
            close(p.grad, theirs.get_parameter(n).grad)
    assert xs[0].grad is not None
    first_grad = xs[0].grad.numpy().copy()
    out, _ = ours(xs[1], state)
    out.sum().backward()
    np.testing.assert_array_equal(xs[0].grad.numpy(), first_grad)  # nothing flowed back


def test_dropout_between_layers():
    ours, theirs = twins("GRU", input_size=3, hidden_size=4, num_layers=2, dropout=1.0)
    x = np.random.default_rng(3).standard_normal((5, 2, 3))
    # p = 1 drops every output of layer 0, so the run is deterministic even in training
    close(ours(cr.tensor(x))[0], theirs(torch.tensor(x))[0])
    layer_two_only = ours(cr.tensor(x))[0]
    np.testing.assert_allclose(layer_two_only.detach().numpy()[:, 0], layer_two_only.detach().numpy()[:, 1])
    ours.eval()
    theirs.eval()
    close(ours(cr.tensor(x))[0], theirs(torch.tensor(x))[0])  # no dropout in eval mode


def test_dropout_with_one_layer_warns():
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        nn.LSTM(3, 4, dropout=0.5)


def test_lstm_second_order():
    lstm = nn.LSTM(2, 3, bidirectional=True).double()
    x = cr.tensor(np.random.default_rng(4).standard_normal((3, 1, 2)), requires_grad=True)
    assert gradcheck(lambda x: lstm(x)[0], (x,))
    assert gradgradcheck(lambda x: lstm(x)[0], (x,))


def test_default_init_and_dtype():
    gru = nn.GRU(8, 16, num_layers=2)
    bound = 1 / math.sqrt(16)
    for p in gru.parameters():
        assert p.dtype == cr.float32
        assert np.abs(p.detach().numpy()).max() <= bound
    out, h = gru(cr.randn(5, 3, 8))
    assert out.dtype == cr.float32 and tuple(h.shape) == (2, 3, 16)


def test_errors_name_the_layer_and_shapes():
    lstm = nn.LSTM(3, 4)
    with pytest.raises(RuntimeError, match="LSTM: input.size\\(-1\\) must be equal to input_size"):
        lstm(cr.randn(5, 2, 6))
    with pytest.raises(RuntimeError, match=r"LSTM: expected hidden\[0\] of size \(1, 2, 4\), got \[1, 3"):
        lstm(cr.randn(5, 2, 3), (cr.zeros(1, 3, 4), cr.zeros(1, 2, 4)))
    with pytest.raises(ValueError, match="input dtype .*float64.* does not match weight dtype"):
        lstm(cr.randn(5, 2, 3, dtype=cr.float64))
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="sigmoid")


def test_all_weights_and_flatten_parameters_like_torch():
    kwargs = {"input_size": 3, "hidden_size": 4, "num_layers": 2, "bidirectional": True, "proj_size": 2}
    ours, theirs = nn.LSTM(**kwargs), torch.nn.LSTM(**kwargs)
    ours.flatten_parameters()  # a no-op kept for code written for cuDNN
    assert [[tuple(p.shape) for p in group] for group in ours.all_weights] == \
        [[tuple(p.shape) for p in group] for group in theirs.all_weights]


def test_gru_learns_digits_row_by_row():
    """End to end: a GRU reads each 8x8 digit as 8 rows of 8 pixels, over 85% held out."""
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    images, labels = (digits.images / 16.0).astype(np.float32), digits.target
    order = np.random.default_rng(0).permutation(len(images))
    train, test = order[:1400], order[1400:]
    cr.manual_seed(0)
    gru, head = nn.GRU(8, 32, batch_first=True), nn.Linear(32, 10)
    optimizer = cr.optim.Adam(list(gru.parameters()) + list(head.parameters()), lr=0.01)

    def classify(x):
        return head(gru(x)[1][-1])  # the last layer's final hidden state

    x, y = cr.tensor(images[train]), cr.tensor(labels[train])
    shuffle = np.random.default_rng(1)
    for _ in range(6):
        perm = shuffle.permutation(len(train))
        for start in range(0, len(train), 64):
            batch = perm[start:start + 64]
            loss = cr.nn.functional.cross_entropy(classify(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with cr.no_grad():
        predicted = classify(cr.tensor(images[test])).argmax(1).numpy()
    assert (predicted == labels[test]).mean() > 0.85
