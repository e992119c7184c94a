"""The benchmark workloads, written once for every library that can express them.

chainrule and PyTorch share one API, so their workloads take the library module (``lib``)
as an argument. The peers with other APIs get their own versions of the per-op chain and
the MLP step: JAX (``jax.grad``, run eagerly op by op, and the same function under
``jax.jit`` as a separate column) and HIPS autograd (``autograd.grad`` over its NumPy).

Each ``*_step`` function builds its model and data and returns a callable that runs one
step; every library gets the same data, and the nn workloads the same initial weights
(chainrule's, loaded into the PyTorch model), so the work is the same.

Nothing here imports a library at module level: ``peak_rss.py`` imports this module in a
fresh process that must hold one library only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

CHAIN_LENGTH = 200
Step = Callable[[], Any]


# ------------------------------------------------------------------ per-op chain
def chain(lib: Any, x: Any, length: int, tanh: Callable | None = None) -> Any:
    """``length`` cheap elementwise ops in a row (mul, add, tanh, sub: values stay finite).
    ``tanh`` for libraries whose arrays have no ``.tanh()`` (jax.numpy.tanh, autograd's)."""
    h = x
    for i in range(length):
        k = i % 4
        if k == 0:
            h = h * 0.5
        elif k == 1:
            h = h + x
        elif k == 2:
            h = h.tanh() if tanh is None else tanh(h)
        else:
            h = h - 0.1
    return h


def write_json(path: str, data: Any) -> None:
    """Write a benchmark's results as JSON at ``path`` (folders made) and say where."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2))
    print(f"wrote {out}")


def chain_data() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((16, 16))


def chain_steps(lib: Any) -> tuple[Step, Step]:
    """(forward+backward, forward without a graph) of the chain on a 16x16 float64 tensor."""
    x = lib.tensor(chain_data(), dtype=lib.float64, requires_grad=True)

    def fwd_bwd() -> None:
        x.grad = None
        chain(lib, x, CHAIN_LENGTH).sum().backward()

    def fwd_no_grad() -> None:
        with lib.no_grad():
            chain(lib, x, CHAIN_LENGTH)

    return fwd_bwd, fwd_no_grad


def chain_steps_jax(jit: bool) -> tuple[Step, Step]:
    import jax
    import jax.numpy as jnp

    x = jnp.asarray(chain_data())

    def f(x: Any) -> Any:
        return chain(jnp, x, CHAIN_LENGTH, jnp.tanh).sum()

    grad, forward = jax.grad(f), f
    if jit:
        grad, forward = jax.jit(grad), jax.jit(forward)
    return (lambda: grad(x).block_until_ready()), (lambda: forward(x).block_until_ready())


def chain_steps_autograd() -> tuple[Step, Step]:
    import autograd.numpy as anp

    import autograd

    x = chain_data()

    def f(x: Any) -> Any:
        return chain(anp, x, CHAIN_LENGTH, anp.tanh).sum()

    grad = autograd.grad(f)
    return (lambda: grad(x)), (lambda: f(x))


# ------------------------------------------------------------------ MLP training step
def mlp_arrays(sizes: list[int], batch: int) -> tuple[list, np.ndarray, np.ndarray]:
    """Weights (out, in) and biases drawn as nn.Linear's, inputs and class labels."""
    rng = np.random.default_rng(2)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1 / np.sqrt(fan_in)
        params.append(rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32))
        params.append(rng.uniform(-bound, bound, fan_out).astype(np.float32))
    data = np.random.default_rng(1)
    x = data.standard_normal((batch, sizes[0])).astype(np.float32)
    y = data.integers(0, sizes[-1], batch)
    return params, x, y


def mlp_loss(lib: Any, params: list, x: Any, y: Any) -> Any:
    """Forward (linear-relu-linear-relu-linear) and cross-entropy."""
    h = x
    layers = len(params) // 2
    for i in range(layers):
        h = lib.nn.functional.linear(h, params[2 * i], params[2 * i + 1])
        if i < layers - 1:
            h = h.relu()
    return lib.nn.functional.cross_entropy(h, y)


def mlp_parts(lib: Any, sizes: list[int], batch: int, lr: float = 1e-3) -> dict[str, Step]:
    """The MLP's training ``step`` (forward, backward, SGD), its ``forward`` alone (graph
    recorded, then dropped) and ``forward_backward`` (no update)."""
    arrays, x_data, y_data = mlp_arrays(sizes, batch)
    params = [lib.tensor(a, requires_grad=True) for a in arrays]
    x, y = lib.tensor(x_data), lib.tensor(y_data)

    def forward() -> None:
        mlp_loss(lib, params, x, y)

    def forward_backward() -> None:
        for p in params:
            p.grad = None
        mlp_loss(lib, params, x, y).backward()

    def step() -> None:
        forward_backward()
        with lib.no_grad():
            for p in params:
                p.sub_(p.grad, alpha=lr)

    return {"step": step, "forward": forward, "forward_backward": forward_backward}


def _functional_mlp_loss(np_like: Any, logsumexp: Callable, params: list, x: Any,
                         y: Any) -> Any:
    """mlp_loss for NumPy-style peers: x W^T + b, relu, and the mean of logsumexp - picked."""
    h = x
    layers = len(params) // 2
    for i in range(layers):
        h = np_like.dot(h, params[2 * i].T) + params[2 * i + 1]
        if i < layers - 1:
            h = np_like.maximum(h, 0.0)
    picked = h[np_like.arange(h.shape[0]), y]
    return np_like.mean(logsumexp(h, axis=1) - picked)


def mlp_step_jax(sizes: list[int], batch: int, jit: bool, lr: float = 1e-3) -> Step:
    import jax
    import jax.numpy as jnp
    from jax.scipy.special import logsumexp

    arrays, x_data, y_data = mlp_arrays(sizes, batch)
    state = {"params": [jnp.asarray(a) for a in arrays]}
    x, y = jnp.asarray(x_data), jnp.asarray(y_data)

    def update(params: list) -> list:
        grads = jax.grad(lambda p: _functional_mlp_loss(jnp, logsumexp, p, x, y))(params)
        return [p - lr * g for p, g in zip(params, grads)]

    if jit:
        update = jax.jit(update)

    def step() -> None:
        state["params"] = update(state["params"])
        state["params"][0].block_until_ready()

    return step


def mlp_step_autograd(sizes: list[int], batch: int, lr: float = 1e-3) -> Step:
    import autograd.numpy as anp
    from autograd.scipy.special import logsumexp

    import autograd

    arrays, x, y = mlp_arrays(sizes, batch)
    state = {"params": arrays}
    grad = autograd.grad(lambda p: _functional_mlp_loss(anp, logsumexp, p, x, y))

    def step() -> None:
        params = state["params"]
        state["params"] = [p - np.float32(lr) * g for p, g in zip(params, grad(params))]

    return step


# ------------------------------------------------------------------ nn workloads
def _same_weights(lib: Any, module: Any, reference: Any) -> None:
    """Load chainrule ``reference``'s weights into ``module`` (a no-op for chainrule itself)."""
    if module is reference:
        return
    state = {name: lib.tensor(np.array(value.detach().numpy()))
             for name, value in reference.state_dict().items()}
    module.load_state_dict(state)


def _training_step(lib: Any, model: Any, loss_of: Callable[[], Any], lr: float) -> Step:
    optimizer = lib.optim.SGD(model.parameters(), lr=lr)

    def step() -> None:
        optimizer.zero_grad()
        loss_of().backward()
        optimizer.step()

    return step


def cnn_model(lib: Any) -> Any:
    """PyTorch's MNIST example's convolutions: conv 3x3 1->32, ReLU, conv 3x3 32->64, ReLU
    (no padding: 28 -> 26 -> 24), 2x2 max-pool (-> 12), then one linear layer 9216 -> 10."""
    nn = lib.nn
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 12 * 12, 10))


def cnn_step(lib: Any, reference: Any, batch: int = 64) -> Step:
    """One SGD step of cnn_model on (batch, 1, 28, 28) inputs with cross-entropy."""
    model = cnn_model(lib)
    _same_weights(lib, model, reference)
    rng = np.random.default_rng(4)
    x = lib.tensor(rng.standard_normal((batch, 1, 28, 28)).astype(np.float32))
    y = lib.tensor(rng.integers(0, 10, batch))
    return _training_step(lib, model, lambda: lib.nn.functional.cross_entropy(model(x), y), 0.01)


class LSTM_SIZES:  # noqa: N801 (a namespace of constants)
    input, hidden, length, batch, classes = 128, 256, 32, 32, 10


def lstm_model(lib: Any) -> Any:
    """nn.LSTM(128, 256) (time-major input) and a linear head 256 -> 10 on its last step."""
    return lib.nn.ModuleDict({"lstm": lib.nn.LSTM(LSTM_SIZES.input, LSTM_SIZES.hidden),
                              "head": lib.nn.Linear(LSTM_SIZES.hidden, LSTM_SIZES.classes)})


def lstm_step(lib: Any, reference: Any) -> Step:
    """One SGD step: the LSTM over (32, 32, 128), cross-entropy of the head on the last step."""
    model = lstm_model(lib)
    _same_weights(lib, model, reference)
    rng = np.random.default_rng(5)
    s = LSTM_SIZES
    x = lib.tensor(rng.standard_normal((s.length, s.batch, s.input)).astype(np.float32))
    y = lib.tensor(rng.integers(0, s.classes, s.batch))

    def loss() -> Any:
        output, _ = model["lstm"](x)
        return lib.nn.functional.cross_entropy(model["head"](output[-1]), y)

    return _training_step(lib, model, loss, 0.01)


def transformer_model(lib: Any) -> Any:
    """nn.TransformerEncoderLayer(d_model=256, nhead=4), PyTorch's defaults otherwise
    (dim_feedforward=2048, ReLU, post-norm) but dropout=0.0, so both libraries do the same
    arithmetic; batch_first."""
    return lib.nn.TransformerEncoderLayer(256, 4, dropout=0.0, batch_first=True)


def transformer_step(lib: Any, reference: Any) -> Step:
    """One SGD step on (16, 64, 256) inputs, loss = mean of the output squared."""
    model = transformer_model(lib)
    _same_weights(lib, model, reference)
    x = lib.tensor(np.random.default_rng(6).standard_normal((16, 64, 256)).astype(np.float32))
    return _training_step(lib, model, lambda: (model(x) ** 2).mean(), 0.01)
