"""End to end: a 2-4-1 sigmoid network trained on XOR with MSE and plain gradient descent."""

from __future__ import annotations

import chainrule as cr
from chainrule import nn


def test_xor_is_learned():
    cr.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 4), nn.Sigmoid(), nn.Linear(4, 1), nn.Sigmoid())
    inputs = cr.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    targets = cr.tensor([[0.0], [1.0], [1.0], [0.0]])
    loss_fn = nn.MSELoss()
    for _ in range(3000):
        net.zero_grad()
        loss = loss_fn(net(inputs), targets)
        loss.backward()
        with cr.no_grad():
            for p in net.parameters():
                p -= 2.0 * p.grad
    outputs = net(inputs).detach().numpy().ravel()
    assert loss.item() < 0.05, loss.item()
    assert (outputs[[1, 2]] > 0.5).all() and (outputs[[0, 3]] < 0.5).all(), outputs
