"""Training on the second device (array_api_strict): Module.to, every optimizer with state,
gradient clipping, state dicts and checkpoints give what the CPU gives."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim

STRICT = "array_api_strict"
OPTIMIZERS = {
    "SGD momentum": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-3),
    "SGD nesterov maximize": lambda p: optim.SGD(p, lr=0.05, momentum=0.5, nesterov=True,
                                                 maximize=True),
    "Adam": lambda p: optim.Adam(p, lr=0.01, weight_decay=1e-3),
    "Adam amsgrad": lambda p: optim.Adam(p, lr=0.01, amsgrad=True),
    "AdamW": lambda p: optim.AdamW(p, lr=0.01),
    "RMSprop centered momentum": lambda p: optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True),
    "Adagrad": lambda p: optim.Adagrad(p, lr=0.1),
}


def _model() -> nn.Module:
    cr.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))


def _train(device: str, make_optimizer, steps: int = 5) -> tuple:
    net = _model().to(device)
    opt = make_optimizer(net.parameters())
    x = cr.randn(16, 4, device=device)
    y = cr.randn(16, 1, device=device)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.mse_loss(net(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    return net, opt, losses


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_training_on_the_second_device_matches_the_cpu(name):
    cpu_net, _, cpu_losses = _train("cpu", OPTIMIZERS[name])
    net, _, losses = _train(STRICT, OPTIMIZERS[name])
    np.testing.assert_allclose(losses, cpu_losses, rtol=1e-6)
    for p, q in zip(net.parameters(), cpu_net.parameters()):
        assert p.device == cr.device(STRICT) and p.grad.device == cr.device(STRICT)
        np.testing.assert_allclose(p.detach().cpu().numpy(), q.detach().numpy(), rtol=1e-5,
                                   atol=1e-7)


def test_module_to_keeps_the_parameter_objects():
    net = _model()
    weight = net[0].weight
    assert net.to(STRICT) is net and net[0].weight is weight
    assert weight.device == cr.device(STRICT) and weight.is_leaf and weight.requires_grad
    net.to(STRICT, cr.float64)
    assert weight.dtype == cr.float64
    assert net.cpu()[0].weight.device == cr.device("cpu")


def test_state_dicts_and_checkpoints_cross_devices(tmp_path):
    net, opt, _ = _train(STRICT, OPTIMIZERS["Adam"])
    path = tmp_path / "model.safetensors"
    cr.save({"model": net.state_dict(), "optim": opt.state_dict()}, path)
    on_host = cr.load(path)
    assert all(t.device == cr.device("cpu") for t in on_host["model"].values())  # files hold host arrays
    placed = cr.load(path, map_location=STRICT)
    assert all(t.device == cr.device(STRICT) for t in placed["model"].values())

    fresh = _model().to(STRICT)
    fresh.load_state_dict(on_host["model"])  # copied onto the parameters' device
    for p, q in zip(fresh.parameters(), net.parameters()):
        assert p.device == cr.device(STRICT)
        np.testing.assert_array_equal(p.detach().cpu().numpy(), q.detach().cpu().numpy())
    resumed = optim.Adam(fresh.parameters(), lr=0.01)
    resumed.load_state_dict(on_host["optim"])
    state = resumed.state[next(iter(fresh.parameters()))]
    assert state["exp_avg"].device == cr.device(STRICT) and state["step"].device == cr.device("cpu")


def test_clip_grad_value_on_the_second_device():
    x = cr.zeros(3, device=STRICT, requires_grad=True)
    (x * cr.tensor([5.0, -0.2, -3.0], device=STRICT)).sum().backward()
    nn.utils.clip_grad_value_([x], 1.0)
    assert x.grad.tolist() == [1.0, pytest.approx(-0.2), -1.0]
