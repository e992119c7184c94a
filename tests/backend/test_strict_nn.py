"""The nn layers and losses on the array_api_strict device (standing in for a GPU): values
and gradients (of the input and of every parameter) equal the CPU's, and what reaches a
backend-specific kernel stops with that kernel's name."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn as nn
import chainrule.nn.functional as F
from chainrule.ops.kernels import MissingKernel

STRICT = "array_api_strict"

LAYERS: dict[str, tuple[Callable[[], nn.Module], tuple]] = {
    "Linear": (lambda: nn.Linear(4, 3), (2, 4)),
    "Conv1d": (lambda: nn.Conv1d(2, 3, 3, padding=1), (2, 2, 8)),
    "Conv2d": (lambda: nn.Conv2d(2, 3, 3, stride=2, padding=1), (2, 2, 8, 8)),
    "ConvTranspose2d": (lambda: nn.ConvTranspose2d(2, 3, 3, stride=2), (2, 2, 5, 5)),
    "MaxPool2d": (lambda: nn.MaxPool2d(2), (2, 2, 8, 8)),
    "MaxPool2d-overlapping": (lambda: nn.MaxPool2d(3, stride=1, padding=1), (2, 2, 8, 8)),
    "AvgPool2d": (lambda: nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
                  (2, 2, 8, 8)),
    "AdaptiveAvgPool2d": (lambda: nn.AdaptiveAvgPool2d(3), (2, 2, 8, 8)),
    "BatchNorm2d": (lambda: nn.BatchNorm2d(2), (3, 2, 4, 4)),
    "LayerNorm": (lambda: nn.LayerNorm(4), (3, 4)),
    "GroupNorm": (lambda: nn.GroupNorm(2, 4), (3, 4, 5)),
    "RNN": (lambda: nn.RNN(4, 5, batch_first=True), (2, 3, 4)),
    "LSTM": (lambda: nn.LSTM(4, 5, num_layers=2, batch_first=True), (2, 3, 4)),
    "GRU": (lambda: nn.GRU(4, 5, bidirectional=True), (3, 2, 4)),
    "LSTMCell": (lambda: nn.LSTMCell(4, 5), (2, 4)),
    "TransformerEncoderLayer": (lambda: nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0,
                                                                   batch_first=True), (2, 3, 8)),
    "Softmax": (lambda: nn.Softmax(-1), (3, 4)),
}


def _first(out: object) -> cr.Tensor:
    return out[0] if isinstance(out, tuple) else out


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_on_strict_device_matches_cpu(name: str) -> None:
    make, shape = LAYERS[name]
    cr.manual_seed(0)
    on_cpu = make().double()
    on_strict = make().double()
    on_strict.load_state_dict(on_cpu.state_dict())
    on_strict.to(STRICT)
    data = np.random.default_rng(0).standard_normal(shape)
    x_cpu = cr.tensor(data, requires_grad=True)
    x_strict = cr.tensor(data, device=STRICT, requires_grad=True)
    out_cpu, out_strict = _first(on_cpu(x_cpu)), _first(on_strict(x_strict))
    assert out_strict.device == cr.device(STRICT)
    (out_cpu * out_cpu).sum().backward()
    (out_strict * out_strict).sum().backward()
    np.testing.assert_allclose(out_strict.detach().cpu().numpy(), out_cpu.detach().numpy(),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(x_strict.grad.cpu().numpy(), x_cpu.grad.numpy(), rtol=1e-10,
                               atol=1e-12)
    for (label, p_cpu), (_, p_strict) in zip(on_cpu.named_parameters(),
                                             on_strict.named_parameters()):
        assert p_strict.grad.device == cr.device(STRICT), label
        np.testing.assert_allclose(p_strict.grad.cpu().numpy(), p_cpu.grad.numpy(), rtol=1e-10,
                                   atol=1e-12, err_msg=label)


def test_attention_masks_on_strict_device_match_cpu() -> None:
    data = np.random.default_rng(1).standard_normal((2, 4, 3, 8))
    causal = np.triu(np.ones((3, 3), dtype=bool), 1)
    results = []
    for device in ("cpu", STRICT):
        q = cr.tensor(data, device=device, requires_grad=True)
        by_flag = F.scaled_dot_product_attention(q, q, q, is_causal=True)
        by_mask = F.scaled_dot_product_attention(q, q, q, attn_mask=cr.tensor(~causal, device=device))
        (by_flag + by_mask).sum().backward()
        results.append((by_flag.detach().cpu().numpy(), q.grad.cpu().numpy()))
    for ours, reference in zip(*results):
        np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-12)


LOSSES = {
    "mse_loss": lambda x, t: F.mse_loss(x, x.detach() * 0 + 1),
    "binary_cross_entropy_with_logits": lambda x, t: F.binary_cross_entropy_with_logits(
        x, x.detach() * 0 + 0.5),
    "smooth_l1_loss": lambda x, t: F.smooth_l1_loss(x, x.detach() * 0),
    "kl_div": lambda x, t: F.kl_div(F.log_softmax(x, -1), F.softmax(x.detach(), -1),
                                    reduction="batchmean"),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_on_strict_device_matches_cpu(name: str) -> None:
    data = np.random.default_rng(2).standard_normal((3, 4))
    grads = []
    for device in ("cpu", STRICT):
        x = cr.tensor(data, device=device, requires_grad=True)
        LOSSES[name](x, None).backward()
        grads.append(x.grad.cpu().numpy())
    np.testing.assert_allclose(*grads, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("loss, kernel", [
    (lambda x, t: F.cross_entropy(x, t), "scatter_add"),
    (lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1), "scatter_add"),
    (lambda x, t: F.nll_loss(F.log_softmax(x, -1), t), "scatter_add"),
    (lambda x, t: F.embedding(t, x).sum(), "advanced_index"),
    (lambda x, t: F.gelu(x).sum(), "erf"),
])
def test_what_reaches_a_backend_specific_kernel_names_it(loss: Callable, kernel: str) -> None:
    x = cr.tensor(np.random.default_rng(3).standard_normal((3, 4)), device=STRICT,
                  requires_grad=True)
    target = cr.tensor([0, 2, 1], device=STRICT)
    with pytest.raises(MissingKernel) as caught:
        loss(x, target).backward()
    assert caught.value.kernel == kernel
