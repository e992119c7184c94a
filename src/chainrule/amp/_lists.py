"""Which ops autocast runs in which precision: PyTorch's CPU autocast op lists, mapped onto
chainrule's primitives (by name) and onto the ``nn.functional`` composites that PyTorch
runs as single kernels.

Three policies, each a rule for the op's floating-point inputs (float64 ones are left
alone, as PyTorch's autocast leaves them):

- ``LOWER``: PyTorch's ``lower_precision_fp`` list (matmul, linear, convolution,
  attention). Inputs are rounded to the autocast dtype and the result is in it. NumPy has
  no bfloat16 BLAS (and its float16 matmul is ~100x slower than float32), so the kernel
  multiplies the rounded values in float32, which is what bfloat16 hardware does: round
  the operands, accumulate in float32, round the result.
- ``FLOAT32``: PyTorch's CPU ``fp32`` list (the losses, ``prod``): inputs are cast to
  float32 and the result stays float32.
- ``WIDEN``: ops that PyTorch's CPU autocast leaves in their input's dtype but whose
  bfloat16 kernels accumulate in float32 (reductions, softmax, the norms). NumPy's
  bfloat16 reductions accumulate in bfloat16 (a thousand ones sum to 256), so a 16-bit
  input is computed in float32 and the result cast back to the input's dtype: PyTorch's
  output dtype and its accumulation precision. Composites that reach matmul or einsum
  where PyTorch does not autocast (bilinear, adaptive average pooling) are here too, so
  that their result keeps the input's dtype as in PyTorch.

Every other op runs in the dtype of its inputs, as in PyTorch.
"""

from __future__ import annotations

LOWER = "lower"
FLOAT32 = "float32"
WIDEN = "widen"

# primitive name -> policy (ops/*.py, nn/_loss_kernels.py)
PRIMITIVES = {
    # mm, bmm, matmul, addmm, baddbmm, linear; einsum reaches bmm in PyTorch
    "matmul": LOWER,
    "bmm": LOWER,
    "linear": LOWER,
    "einsum": LOWER,
    # on PyTorch's CPU fp32 list
    "prod": FLOAT32,
    "cross_entropy": FLOAT32,
    "binary_cross_entropy": FLOAT32,
    # accumulate in float32, result in the input's dtype
    "sum": WIDEN,
    "mean": WIDEN,
    "norm": WIDEN,
    "var": WIDEN,
    "std": WIDEN,
    "logsumexp": WIDEN,
    "softmax": WIDEN,
    "log_softmax": WIDEN,
    "cumsum": WIDEN,
}

# nn.functional name -> policy. These composites are swapped whole: the casts happen once
# at their boundary, as PyTorch casts the arguments of the one kernel it runs for them,
# and their insides run in float32 with autocast paused (no cast of a cast, and no mixed
# dtypes inside, such as a bfloat16 product plus a float32 bias).
FUNCTIONS = {
    "linear": LOWER,
    "conv1d": LOWER,
    "conv2d": LOWER,
    "conv_transpose1d": LOWER,
    "conv_transpose2d": LOWER,
    "prelu": LOWER,
    "scaled_dot_product_attention": LOWER,
    "binary_cross_entropy": FLOAT32,
    "binary_cross_entropy_with_logits": FLOAT32,
    "cosine_embedding_loss": FLOAT32,
    "cross_entropy": FLOAT32,
    "hinge_embedding_loss": FLOAT32,
    "huber_loss": FLOAT32,
    "kl_div": FLOAT32,
    "l1_loss": FLOAT32,
    "margin_ranking_loss": FLOAT32,
    "mse_loss": FLOAT32,
    "nll_loss": FLOAT32,
    "poisson_nll_loss": FLOAT32,
    "smooth_l1_loss": FLOAT32,
    "soft_margin_loss": FLOAT32,
    "triplet_margin_loss": FLOAT32,
    "batch_norm": WIDEN,
    "group_norm": WIDEN,
    "instance_norm": WIDEN,
    "layer_norm": WIDEN,
    "bilinear": WIDEN,
    "adaptive_avg_pool1d": WIDEN,
    "adaptive_avg_pool2d": WIDEN,
}
