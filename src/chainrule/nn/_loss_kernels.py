"""Fused loss primitives: cross-entropy over class indices, and binary cross-entropy.

Both are primitives rather than compositions for the reasons DESIGN.md gives:
cross-entropy with class indices is the hot path of every classifier (one pass for the
log-softmax, the target logit picked without a one-hot, the reduction folded in), and
binary cross-entropy needs PyTorch's clamped gradient ``(x - t) / max(x (1 - x), 1e-12)``,
which no composition of clamped logs reproduces at x = 0 or 1. Their VJPs are written
with ``xp`` functions, so they are differentiable again under ``create_graph``.
"""

from __future__ import annotations

import numpy as np

from .. import _backend
from ..ops._primitive import ELEMENTWISE, primitive

# ------------------------------------------------------------------ cross-entropy
# Parameters (computed by nn.functional.cross_entropy from the target, all constants):
#   target   (M,) class index per row, ignored rows set to 0 so that it can index
#   row_w    (M,) the weight of each row's target class, 0 for ignored rows
#            (None: every row counts with weight 1)
#   valid    (M,) 1 for counted rows, 0 for ignored ones (None: all count)
#   weight   (C,) class weights (None: all 1), in the input's dtype
#   smoothing the label-smoothing epsilon
#   scale    what each row's loss is multiplied by in the reduction: 1/denominator for
#            'mean', 1 for 'sum'; None for 'none' (one loss per row)


@primitive("cross_entropy", save=(0,), extras=True, backward_name="NllLossBackward0")
def cross_entropy(xp, x, target, row_w, valid, weight, smoothing, scale):
    # loss_i = (1 - eps) w_{t_i} (lse_i - x_{i t_i}) + eps/C sum_c w_c (lse_i - x_{ic})
    rows = xp.arange(x.shape[0])
    peak = xp.max(x, axis=1, keepdims=True)
    shifted = x - peak
    e = xp.exp(shifted)
    total = xp.sum(e, axis=1)
    lse = xp.log(total)
    loss = lse - shifted[rows, target]
    if row_w is not None:
        loss *= row_w
    if smoothing:
        classes = x.shape[1]
        total_w = classes if weight is None else xp.sum(weight)
        spread = lse * total_w - (xp.sum(shifted, axis=1) if weight is None else shifted @ weight)
        if valid is not None:
            spread *= valid
        loss = (1 - smoothing) * loss + (smoothing / classes) * spread
    if scale is not None:
        loss = xp.asarray(xp.sum(loss) * scale, dtype=x.dtype)
    # kept for the backward: lse (the softmax's shift) and e / total, the softmax itself
    return loss, (lse + peak[:, 0], e, total)


@cross_entropy.defvjp
def _(xp, g, saved, p, needs):
    # d loss_i/d x_ic = (1 - eps) w_{t_i} (p_ic - [c = t_i]) + eps/C (W p_ic - w_c),
    # p = softmax(x_i), W = sum_c w_c; rows scaled by g (and the reduction's scale)
    x, lse, e, total = saved
    return (_cross_entropy_grad(xp, g, x, lse, p, e, total),)


def _cross_entropy_grad(xp, g, x, lse, p, e=None, total=None):
    target, row_w, valid, weight = p["target"], p["row_w"], p["valid"], p["weight"]
    eps, scale = p["smoothing"], p["scale"]
    rows, classes = x.shape
    g_rows = g if scale is None else g * scale  # (M,) or a scalar
    hit = g_rows if row_w is None else g_rows * row_w  # gradient reaching each target logit
    if eps:
        spread = g_rows if valid is None else g_rows * valid
        total_w = classes if weight is None else float(_backend.namespace_of(weight).sum(weight))
        coef = (1 - eps) * hit + (eps / classes) * total_w * spread
    else:
        coef = hit
    if isinstance(x, np.ndarray):
        # plain backward: the forward's exponentials scaled by coef / total in one pass, the
        # target column updated in place; the same math as the branch below
        grad = e * (coef / total)[:, None]
        grad[np.arange(rows), target] -= (1 - eps) * hit
        if eps:
            w = 1.0 if weight is None else weight[None, :]
            grad -= (eps / classes) * (spread[:, None] if np.ndim(spread) else spread) * w
        return grad
    # recorded backward: lse is a constant here, so softmax is normalised explicitly
    # (exp(x - c) / sum exp(x - c) for any constant c) to keep its derivative in x
    e = xp.exp(x - xp.reshape(lse, (rows, 1)))
    probs = e / xp.sum(e, axis=1, keepdims=True)
    grad = probs * xp.reshape(xp.broadcast_to(coef, (rows,)), (rows, 1))
    picked = xp.reshape(-(1 - eps) * xp.broadcast_to(hit, (rows,)), (rows, 1))
    # target and weight are arrays (parameters of the op) also when xp records tensors
    arrays = _backend.namespace_of(target)
    grad = xp.scatter_add(grad, 1, arrays.reshape(target, (rows, 1)), picked)
    if eps:
        spread = xp.reshape(xp.broadcast_to(spread, (rows,)), (rows, 1))
        w = 1.0 if weight is None else arrays.reshape(weight, (1, classes))
        grad = grad - (eps / classes) * spread * w
    return grad


@cross_entropy.defjvp
def _(xp, tangents, inputs, out, p):
    # the loss is a sum over classes (and rows, when reduced) of terms in x: J t is the
    # gradient of ones contracted with t
    x = inputs[0]
    lse = x.logsumexp(dim=1).detach()
    slope = _cross_entropy_grad(xp, xp.ones_like(out), x, lse, p)
    contracted = tangents[0] * slope
    return contracted.sum(axis=1) if p["scale"] is None else contracted.sum()


# ------------------------------------------------------------------ binary cross-entropy
_LOG_FLOOR = -100.0  # PyTorch clamps log(x) and log(1 - x) here so that the loss is finite
# and floors x (1 - x) here in the gradient: 1e-12 rounded to float32, as PyTorch's kernel
# stores it even for float64 (so the gradient at x = 0 or 1 is PyTorch's, -1.000000004e12)
_EPSILON = float(np.float32(1e-12))


@primitive("binary_cross_entropy", save=(0, 1), jvp=ELEMENTWISE,
           backward_name="BinaryCrossEntropyBackward0")
def binary_cross_entropy(xp, x, t, weight):
    # -w (t log x + (1 - t) log(1 - x)), each log clamped at -100
    with np.errstate(divide="ignore"):
        log_x = xp.maximum(xp.log(x), _LOG_FLOOR)
        log_1mx = xp.maximum(xp.log1p(-x), _LOG_FLOOR)
    loss = -(t * log_x + (1 - t) * log_1mx)
    return loss if weight is None else loss * weight


@binary_cross_entropy.defvjp
def _(xp, g, saved, p, needs):
    # dL/dx = w (x - t) / max(x (1 - x), 1e-12); dL/dt = -w logit(x), unclamped as PyTorch
    x, t = saved
    if p["weight"] is not None:
        g = g * p["weight"]
    gx = gt = None
    if needs[0]:
        spread = x * (1 - x)
        gx = g * (x - t) / xp.where(spread > _EPSILON, spread, _EPSILON)
    if needs[1]:
        with np.errstate(divide="ignore"):  # +-inf at x = 0 or 1, as PyTorch
            gt = g * (xp.log(1 - x) - xp.log(x))
    return (gx, gt)
