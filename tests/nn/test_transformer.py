"""Attention (F.scaled_dot_product_attention, nn.MultiheadAttention) and the Transformer
encoder against PyTorch from identical weights, in float64."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn
from chainrule.autograd import gradcheck, gradgradcheck

torch = pytest.importorskip("torch")

RTOL, ATOL = 1e-10, 1e-12


def close(ours, theirs) -> None:
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), RTOL, ATOL)


def both(kwargs: dict) -> tuple[dict, dict]:
    """Keyword arguments with arrays as chainrule and as torch tensors."""
    def convert(module):
        return {k: module.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}

    return convert(cr), convert(torch)


def twins(ours, theirs):
    """Our module and PyTorch's in float64 with our weights; names and repr checked."""
    ours, theirs = ours.double(), theirs.double()
    assert repr(ours) == repr(theirs)
    assert [(n, tuple(p.shape)) for n, p in ours.named_parameters()] == \
        [(n, tuple(p.shape)) for n, p in theirs.named_parameters()]
    with torch.no_grad():
        for n, p in ours.named_parameters():
            theirs.get_parameter(n).copy_(torch.tensor(p.detach().numpy()))
    return ours, theirs


def check_gradients(ours, theirs, loss, expected_loss, inputs) -> None:
    loss.backward()
    expected_loss.backward()
    for a, b in inputs:
        close(a.grad, b.grad)
    for n, p in ours.named_parameters():
        close(p.grad, theirs.get_parameter(n).grad)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# ------------------------------------------------------------------ scaled dot-product attention
def _sdpa_cases(rng):
    allowed = rng.random((4, 6)) > 0.3
    allowed[1] = False  # a query with nothing to attend to: 0, as PyTorch
    return [{}, {"is_causal": True}, {"attn_mask": allowed},
            {"attn_mask": rng.standard_normal((2, 1, 4, 6))}, {"scale": 0.3}]


def test_scaled_dot_product_attention_matches_torch(rng):
    q, k, v = (rng.standard_normal(s) for s in ((2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 5)))
    for kwargs in _sdpa_cases(rng):
        ours_kwargs, theirs_kwargs = both(kwargs)
        xs = [cr.tensor(a, requires_grad=True) for a in (q, k, v)]
        ts = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
        out = F.scaled_dot_product_attention(*xs, **ours_kwargs)
        expected = torch.nn.functional.scaled_dot_product_attention(*ts, **theirs_kwargs)
        close(out, expected)
        g = rng.standard_normal(tuple(expected.shape))
        out.backward(cr.tensor(g))
        expected.backward(torch.tensor(g))
        for a, b in zip(xs, ts):
            close(a.grad, b.grad)


def test_scaled_dot_product_attention_grouped_query(rng):
    q, k, v = (rng.standard_normal(s) for s in ((1, 4, 3, 5), (1, 2, 6, 5), (1, 2, 6, 5)))
    out = F.scaled_dot_product_attention(cr.tensor(q), cr.tensor(k), cr.tensor(v), enable_gqa=True)
    expected = torch.nn.functional.scaled_dot_product_attention(
        torch.tensor(q), torch.tensor(k), torch.tensor(v), enable_gqa=True)
    close(out, expected)


def test_scaled_dot_product_attention_second_order(rng):
    q, k, v = (cr.tensor(rng.standard_normal((1, 3, 4)), requires_grad=True) for _ in range(3))
    mask = cr.tensor(np.tril(np.ones((3, 3), dtype=bool)))

    def attend(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)

    assert gradcheck(attend, (q, k, v))
    assert gradgradcheck(attend, (q, k, v))


# ------------------------------------------------------------------ multi-head attention
E = 8
PADDING = np.zeros((3, 5), dtype=bool)
PADDING[0, 3:] = True
PADDING[2, 1] = True
CAUSAL = np.triu(np.ones((5, 5), dtype=bool), 1)

MHA_CASES = [
    pytest.param({"num_heads": 2}, [(5, 3, E)], {}, id="self"),
    pytest.param({"num_heads": 2, "batch_first": True}, [(3, 5, E)], {"need_weights": False},
                 id="batch_first-no_weights"),
    pytest.param({"num_heads": 4}, [(5, 3, E)], {"key_padding_mask": PADDING, "attn_mask": CAUSAL},
                 id="bool_masks"),
    pytest.param({"num_heads": 4}, [(5, 3, E)], {"key_padding_mask": PADDING, "attn_mask": CAUSAL,
                                                 "need_weights": False}, id="bool_masks-no_weights"),
    pytest.param({"num_heads": 4}, [(5, 3, E)],
                 {"attn_mask": np.random.default_rng(5).standard_normal((12, 5, 5)),
                  "average_attn_weights": False}, id="float_mask_per_head-weights_per_head"),
    pytest.param({"num_heads": 2}, [(5, 3, E)],
                 {"attn_mask": CAUSAL, "is_causal": True, "need_weights": False}, id="is_causal"),
    # cross-attention with other key/value sizes, learned extra key/value, a zero key/value
    pytest.param({"num_heads": 2, "kdim": 3, "vdim": 6, "add_bias_kv": True, "add_zero_attn": True},
                 [(5, 3, E), (7, 3, 3), (7, 3, 6)], {"key_padding_mask": np.eye(3, 7, dtype=bool)},
                 id="cross-kdim-vdim-bias_kv-zero_attn"),
    pytest.param({"num_heads": 2, "bias": False}, [(4, E), (6, E), (6, E)], {}, id="unbatched-no_bias"),
]


@pytest.mark.parametrize("module_kwargs, shapes, call_kwargs", MHA_CASES)
def test_multihead_attention_matches_torch(rng, module_kwargs, shapes, call_kwargs):
    ours, theirs = twins(nn.MultiheadAttention(E, **module_kwargs),
                         torch.nn.MultiheadAttention(E, **module_kwargs))
    arrays = [rng.standard_normal(s) for s in shapes]
    inputs = [(cr.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)) for a in arrays]
    if len(inputs) == 1:  # self-attention: one tensor as query, key and value
        inputs = inputs * 3
    ours_kwargs, theirs_kwargs = both(call_kwargs)
    out, weights = ours(*(a for a, _ in inputs), **ours_kwargs)
    expected, expected_weights = theirs(*(b for _, b in inputs), **theirs_kwargs)
    close(out, expected)
    loss, expected_loss = (out * out).sum(), (expected * expected).sum()
    if expected_weights is None:
        assert weights is None
    else:
        close(weights, expected_weights)
        loss, expected_loss = loss + (weights ** 3).sum(), expected_loss + (expected_weights ** 3).sum()
    check_gradients(ours, theirs, loss, expected_loss, inputs[:len(arrays)])


def test_multihead_attention_init_and_errors():
    mha = nn.MultiheadAttention(16, 4, add_bias_kv=True)
    assert mha.in_proj_weight.dtype == cr.float32
    assert not mha.in_proj_bias.detach().numpy().any() and not mha.out_proj.bias.detach().numpy().any()
    bound = np.sqrt(6 / (16 + 48))  # xavier_uniform_ of the packed (3E, E) weight, as PyTorch
    assert np.abs(mha.in_proj_weight.detach().numpy()).max() <= bound
    with pytest.raises(ValueError, match="divisible by num_heads"):
        nn.MultiheadAttention(10, 4)
    x = cr.randn(5, 2, 16)
    with pytest.raises(RuntimeError, match=r"attn_mask of shape \(4, 5\), expected \(5, 5\)"):
        mha(x, x, x, attn_mask=cr.zeros(4, 5))
    with pytest.raises(RuntimeError, match="need attn_mask if specifying the is_causal hint"):
        mha(x, x, x, is_causal=True)


# ------------------------------------------------------------------ transformer encoder
LAYER = {"d_model": 8, "nhead": 2, "dim_feedforward": 16, "dropout": 0.0}
CAUSAL_FLOAT = np.triu(np.full((5, 5), -np.inf), 1)
ENCODER_CASES = [
    pytest.param(LAYER, 0, (5, 3, 8), {}, id="layer"),
    pytest.param(dict(LAYER, activation="gelu", norm_first=True, batch_first=True, layer_norm_eps=1e-3),
                 0, (3, 5, 8), {}, id="layer-gelu-norm_first-batch_first"),
    pytest.param(dict(LAYER, nhead=4), 2, (5, 3, 8),
                 {"src_key_padding_mask": PADDING, "mask": CAUSAL_FLOAT}, id="encoder-masks"),
    pytest.param(dict(LAYER, batch_first=True), 2, (3, 5, 8), {"mask": CAUSAL_FLOAT, "is_causal": True},
                 id="encoder-is_causal"),
    pytest.param(dict(LAYER, bias=False), 1, (5, 8), {}, id="encoder-unbatched-no_bias"),
]


@pytest.mark.filterwarnings("ignore:Support for mismatched src_key_padding_mask")
@pytest.mark.parametrize("layer_kwargs, num_layers, shape, call_kwargs", ENCODER_CASES)
def test_transformer_encoder_matches_torch(rng, layer_kwargs, num_layers, shape, call_kwargs):
    ours = nn.TransformerEncoderLayer(**layer_kwargs)
    theirs = torch.nn.TransformerEncoderLayer(**layer_kwargs)
    if num_layers:
        norm = layer_kwargs["d_model"]
        ours = nn.TransformerEncoder(ours, num_layers, norm=nn.LayerNorm(norm))
        # without nested tensors PyTorch computes padded positions instead of zeroing them
        theirs = torch.nn.TransformerEncoder(theirs, num_layers, norm=torch.nn.LayerNorm(norm),
                                             enable_nested_tensor=False)
    ours, theirs = twins(ours, theirs)
    x = rng.standard_normal(shape)
    inputs = [(cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True))]
    ours_kwargs, theirs_kwargs = both(call_kwargs)
    out, expected = ours(inputs[0][0], **ours_kwargs), theirs(inputs[0][1], **theirs_kwargs)
    close(out, expected)
    check_gradients(ours, theirs, (out * out).sum(), (expected * expected).sum(), inputs)


def test_encoder_layers_are_independent_copies():
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), num_layers=3)
    weights = [layer.linear1.weight for layer in encoder.layers]
    assert len({id(w) for w in weights}) == 3
    assert len(list(encoder.parameters())) == 3 * len(list(encoder.layers[0].parameters()))


def test_encoder_layer_dropout_only_in_training():
    cr.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.5)
    x = cr.randn(4, 2, 8)
    assert not np.allclose(layer(x).detach().numpy(), layer(x).detach().numpy())
    layer.eval()
    np.testing.assert_array_equal(layer(x).detach().numpy(), layer(x).detach().numpy())
    with pytest.raises(RuntimeError, match="activation should be relu/gelu"):
        nn.TransformerEncoderLayer(8, 2, activation="swish")
