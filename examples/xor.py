"""XOR, the problem a single layer cannot solve: a 2-4-1 network with sigmoid units learns
it by backpropagation, with mean squared error and plain gradient descent.

Run: .venv/bin/python examples/xor.py

Prints the loss as it falls and the network's outputs on the four inputs, which end near
0, 1, 1, 0. XOR is not linearly separable, so the hidden layer has to find features
(roughly "x1 OR x2" and "x1 AND x2") whose difference is the answer.
"""

from __future__ import annotations

import chainrule as torch
import chainrule.nn as nn


def main(epochs: int = 4000, lr: float = 2.0, seed: int = 0, verbose: bool = True) -> dict:
    """Train on the four XOR cases; returns the final loss and outputs."""
    torch.manual_seed(seed)
    x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = torch.tensor([[0.0], [1.0], [1.0], [0.0]])
    model = nn.Sequential(nn.Linear(2, 4), nn.Sigmoid(), nn.Linear(4, 1), nn.Sigmoid())
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)  # full batch: plain gradient descent
    for epoch in range(epochs):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        if verbose and epoch % (epochs // 8) == 0:
            print(f"epoch {epoch:5d}  loss {loss.item():.5f}")
    with torch.no_grad():
        out = model(x).reshape(-1)
    if verbose:
        for inputs, target, value in zip(x.tolist(), y.reshape(-1).tolist(), out.tolist()):
            print(f"{inputs} -> {value:.3f}  (target {target:.0f})")
    return {"loss": float(loss.item()), "outputs": out.tolist()}


if __name__ == "__main__":
    main()
