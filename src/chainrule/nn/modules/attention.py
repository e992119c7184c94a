"""nn.MultiheadAttention, with PyTorch's parameters (in_proj_weight, in_proj_bias,
out_proj, bias_k/bias_v), initialisation and masks; the work is in
F.multi_head_attention_forward (nn/conv_functional.py)."""

from __future__ import annotations

from typing import Any

from ...ops import creation, math
from ...tensor import Tensor
from .. import conv_functional as F
from .. import init
from ..parameter import Parameter
from .linear import Linear
from .module import Module


class NonDynamicallyQuantizableLinear(Linear):
    """The output projection's class in PyTorch (a plain Linear), kept for state dicts and repr."""


class MultiheadAttention(Module):
    """Attention from ``num_heads`` heads of size embed_dim / num_heads, concatenated and
    projected: ``forward(query, key, value)`` returns ``(output, weights)``.

    Inputs are (L, N, E) (``batch_first``: (N, L, E)) or unbatched (L, E). Masks:
    ``key_padding_mask`` (N, S) and ``attn_mask`` (L, S) or (N*num_heads, L, S); True in a
    bool mask means "may not attend"; a float mask is added to the scores. The weights are
    averaged over heads unless ``average_attn_weights=False``; None without ``need_weights``.

    >>> mha = chainrule.nn.MultiheadAttention(16, 4, batch_first=True)
    >>> x = chainrule.randn(2, 5, 16)
    >>> out, weights = mha(x, x, x)
    >>> out.shape, weights.shape
    (chainrule.Size([2, 5, 16]), chainrule.Size([2, 5, 5]))
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, device: Any = None,
                 dtype: Any = None) -> None:
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"MultiheadAttention: embed_dim and num_heads must be greater than "
                             f"0, got embed_dim={embed_dim} and num_heads={num_heads}")
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) must be divisible by "
                             f"num_heads ({num_heads})")
        super().__init__()
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads

        def parameter(*shape: int) -> Parameter:
            return Parameter(creation.empty(shape, dtype=dtype, device=device))

        if self._qkv_same_embed_dim:
            self.in_proj_weight = parameter(3 * embed_dim, embed_dim)
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.q_proj_weight = parameter(embed_dim, embed_dim)
            self.k_proj_weight = parameter(embed_dim, self.kdim)
            self.v_proj_weight = parameter(embed_dim, self.vdim)
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = parameter(3 * embed_dim)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias,
                                                        device=device, dtype=dtype)
        if add_bias_kv:
            self.bias_k = parameter(1, 1, embed_dim)
            self.bias_v = parameter(1, 1, embed_dim)
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        # PyTorch's scheme: Xavier-uniform projections, zero biases, Xavier-normal bias_k/v
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            for weight in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        for extra in (self.bias_k, self.bias_v):
            if extra is not None:
                init.xavier_normal_(extra)

    def forward(self, query: Tensor, key: Tensor, value: Tensor,
                key_padding_mask: Tensor | None = None, need_weights: bool = True,
                attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple:
        if (self.batch_first and query.ndim == 3 and query is key and key is value
                and not need_weights and attn_mask is None and key_padding_mask is None
                and not is_causal and self._qkv_same_embed_dim and self.bias_k is None
                and not self.add_zero_attn):
            return self._batch_first_self_attention(query), None
        if self.batch_first and query.ndim == 3:
            # transposed once when shared, so that self-attention keeps its packed projection
            if key is value:
                if query is key:
                    query = key = value = query.transpose(0, 1)
                else:
                    query, key = query.transpose(0, 1), key.transpose(0, 1)
                    value = key
            else:
                query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        out, weights = F.multi_head_attention_forward(
            query, key, value, self.embed_dim, self.num_heads, self.in_proj_weight,
            self.in_proj_bias, self.bias_k, self.bias_v, self.add_zero_attn, self.dropout,
            self.out_proj.weight, self.out_proj.bias, training=self.training,
            key_padding_mask=key_padding_mask, need_weights=need_weights, attn_mask=attn_mask,
            use_separate_proj_weight=not self._qkv_same_embed_dim,
            q_proj_weight=self.q_proj_weight, k_proj_weight=self.k_proj_weight,
            v_proj_weight=self.v_proj_weight, average_attn_weights=average_attn_weights,
            is_causal=is_causal)
        if self.batch_first and query.ndim == 3:
            out = out.transpose(0, 1)
        return out, weights

    def _batch_first_self_attention(self, x: Tensor) -> Tensor:
        """Unmasked self-attention of batch-first (N, L, E) without the weights, the same
        math as F.multi_head_attention_forward with heads taken apart by views: the general
        path works sequence-first and copies q, k, v and the output to reorder them (five
        copies; here one, before the output projection)."""
        n, length, embed_dim = x.shape
        heads, head_dim = self.num_heads, self.head_dim
        packed = math.linear(x.reshape(n * length, embed_dim), self.in_proj_weight,
                             self.in_proj_bias)
        # (N*L, 3E) -> (3, N, heads, L, head_dim) views
        q, k, v = packed.reshape(n, length, 3, heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training
                                             else 0.0)
        out = out.permute(0, 2, 1, 3).reshape(n * length, embed_dim)
        out = math.linear(out, self.out_proj.weight, self.out_proj.bias)
        return out.reshape(n, length, embed_dim)
