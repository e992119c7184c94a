"""Backpropagation by hand, next to chainrule's autograd: a Linear-ReLU-Linear network with
mean squared error, its backward pass written out with NumPy line by line, and every
gradient compared with ``loss.backward()``: they agree to 1e-12 in float64.

Run: .venv/bin/python examples/manual_backward.py

The forward pass, for a batch X (n x d):
    Z1 = X W1^T + b1        A1 = relu(Z1)        Yhat = A1 W2^T + b2
    L  = mean((Yhat - Y)^2)   (over all n x k entries)
and the backward pass, each line the chain rule applied once:
    dYhat = 2 (Yhat - Y) / (n k)
    dW2 = dYhat^T A1        db2 = sum_rows(dYhat)        dA1 = dYhat W2
    dZ1 = dA1 * [Z1 > 0]    (relu'(0) = 0, as PyTorch)
    dW1 = dZ1^T X           db1 = sum_rows(dZ1)
"""

from __future__ import annotations

import numpy as np

import chainrule as torch


def manual_gradients(x: np.ndarray, y: np.ndarray, w1: np.ndarray, b1: np.ndarray, w2: np.ndarray,
                     b2: np.ndarray) -> tuple[float, dict]:
    """The loss and its gradients, by hand."""
    z1 = x @ w1.T + b1
    a1 = np.maximum(z1, 0.0)
    yhat = a1 @ w2.T + b2
    loss = float(np.mean((yhat - y) ** 2))
    d_yhat = 2.0 * (yhat - y) / yhat.size
    d_w2 = d_yhat.T @ a1
    d_b2 = d_yhat.sum(axis=0)
    d_a1 = d_yhat @ w2
    d_z1 = d_a1 * (z1 > 0)
    d_w1 = d_z1.T @ x
    d_b1 = d_z1.sum(axis=0)
    return loss, {"w1": d_w1, "b1": d_b1, "w2": d_w2, "b2": d_b2}


def autograd_gradients(x: np.ndarray, y: np.ndarray, **weights: np.ndarray) -> tuple[float, dict]:
    """The same loss through chainrule, and the gradients ``backward`` leaves in ``.grad``."""
    params = {name: torch.tensor(value, requires_grad=True) for name, value in weights.items()}
    hidden = torch.nn.functional.linear(torch.tensor(x), params["w1"], params["b1"]).relu()
    yhat = torch.nn.functional.linear(hidden, params["w2"], params["b2"])
    loss = torch.nn.functional.mse_loss(yhat, torch.tensor(y))
    loss.backward()
    return float(loss.item()), {name: p.grad.numpy() for name, p in params.items()}


def main(batch: int = 16, inputs: int = 5, hidden: int = 8, outputs: int = 3, seed: int = 0,
         verbose: bool = True) -> dict:
    """Both ways on random float64 data; returns the largest difference per gradient."""
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((batch, inputs)), rng.standard_normal((batch, outputs))
    weights = {"w1": rng.standard_normal((hidden, inputs)), "b1": rng.standard_normal(hidden),
               "w2": rng.standard_normal((outputs, hidden)), "b2": rng.standard_normal(outputs)}
    loss_by_hand, by_hand = manual_gradients(x, y, **weights)
    loss_auto, auto = autograd_gradients(x, y, **weights)
    differences = {name: float(np.max(np.abs(by_hand[name] - auto[name]))) for name in weights}
    if verbose:
        print(f"loss: by hand {loss_by_hand:.15f}, autograd {loss_auto:.15f}")
        for name, diff in differences.items():
            print(f"dL/d{name:2} {str(by_hand[name].shape):8}  max |by hand - autograd| = {diff:.1e}")
    return {"loss_difference": abs(loss_by_hand - loss_auto), "differences": differences}


if __name__ == "__main__":
    main()
