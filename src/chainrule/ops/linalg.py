"""Linear algebra primitives: matmul (every vector/matrix/batched case), linear, einsum."""

from __future__ import annotations

import math

from . import kernels
from ._primitive import ALL_INPUTS, OTHER_INPUTS, primitive


def _mT(xp, a):
    return xp.swapaxes(a, -1, -2)


def _matmul_name(node):
    """PyTorch's matmul picks a kernel by the operands' ranks and the node is the last op it
    runs: dot, mv, mm, an unsqueezed mm squeezed back (vector @ matrix), and for batches a
    bmm or folded mm whose result is reshaped (UnsafeViewBackward0; PyTorch names a matrix
    @ batch product CloneBackward0 or TransposeBackward0 instead when it folds that one,
    which depends on which operand requires grad and on memory layout)."""
    ranks = tuple(len(shape) for shape in node.shapes)
    return _MATMUL_NAMES.get(ranks, "UnsafeViewBackward0")


_MATMUL_NAMES = {(1, 1): "DotBackward0", (2, 1): "MvBackward0", (1, 2): "SqueezeBackward4",
                 (2, 2): "MmBackward0"}


@primitive("matmul", save=(0, 1), broadcasts=True, backward_name=_matmul_name,
           uses=((1,), (0,)))  # A is read only for dB, B only for dA (their shapes always)
def matmul(xp, a, b):
    out = xp.matmul(a, b)
    # NumPy multiplies bfloat16 matrices into float32; PyTorch rounds that back to bfloat16
    return out if out.dtype is a.dtype else xp.astype(out, a.dtype)


@matmul.defvjp
def _(xp, g, saved, p, needs):
    # C = A B  =>  dA = G B^T, dB = A^T G. A 1-D operand is treated as a row (A) or a
    # column (B) matrix and the added axis dropped again; the engine sums batch axes.
    a, b = saved
    a_vector, b_vector = a.ndim == 1, b.ndim == 1
    # b first: for vector . vector, g is 0-d and becomes (1,) then (1, 1)
    if b_vector:
        b = xp.reshape(b, (b.shape[0], 1))
        g = xp.expand_dims(g, -1)
    if a_vector:
        a = xp.reshape(a, (1, a.shape[0]))
        g = xp.expand_dims(g, -2)
    ga = gb = None
    if needs[0]:
        ga = xp.matmul(g, _mT(xp, b))
        if a_vector:
            ga = ga[..., 0, :]
    if needs[1]:
        gb = xp.matmul(_mT(xp, a), g)
        if b_vector:
            gb = gb[..., 0]
    return (ga, gb)


@matmul.defjvp
def _(xp, tangents, inputs, out, p):
    # d(AB) = dA B + A dB
    (ta, tb), (a, b) = tangents, inputs
    total = None if ta is None else xp.matmul(ta, b)
    if tb is not None:
        term = xp.matmul(a, tb)
        total = term if total is None else total + term
    return total


bmm = matmul.renamed("bmm", "BmmBackward0")  # torch.bmm: a batch of mm, by its own name


@primitive("linear", save=(0, 1), backward_name="AddmmBackward0", uses=((1,), (0,)))
def linear(xp, x, weight, bias=None):
    lead = x.shape[:-1]
    if x.ndim != 2:
        # (..., in) as one matrix of rows: a 3-D by 2-D matmul is one BLAS call per leading
        # index (measured 15.2 vs 11.5 ms for (16, 64, 256) by (256, 2048), one thread)
        x = _rows(xp, x)
    if x.shape[0] <= 256:
        # few rows: W x^T reads both operands in BLAS's preferred order (measured 2x faster
        # than x W^T at 16 rows, even at 128, slower from ~1000); the result is its transpose
        out = xp.matmul(weight, x.mT).mT
    else:
        out = xp.matmul(x, weight.mT)
    if bias is not None:
        kernels.add_to_rows(out, bias)
    if len(lead) != 1:
        out = xp.reshape(out, (*lead, weight.shape[0]))
    return out


@linear.defvjp
def _(xp, g, saved, p, needs):
    # y = x W^T + b  =>  dx = g W,  dW = g^T x (summed over batch axes),  db = sum of g
    x, weight = saved
    gx = None
    if needs[0]:
        # rows for a batched g, as in the forward (11.5 vs 10.9 ms at (16, 64, 2048))
        gx = xp.matmul(g, weight) if g.ndim == 2 else xp.reshape(
            xp.matmul(_rows(xp, g), weight), x.shape)
    gw = gb = None
    if needs[1] or (len(needs) > 2 and needs[2]):
        g2 = _rows(xp, g)
        if needs[1]:
            gw = xp.matmul(_mT(xp, g2), _rows(xp, x))
        if len(needs) > 2 and needs[2]:
            gb = kernels.column_sums(xp, g2)
    return (gx, gw, gb) if len(needs) > 2 else (gx, gw)


def _rows(xp, a):
    """``a`` as a matrix of its last dim (not ``reshape(-1, n)``: that is ambiguous when a
    dim is 0)."""
    shape = tuple(a.shape)
    return xp.reshape(a, (math.prod(shape[:-1]), shape[-1]))


@linear.defjvp
def _(xp, tangents, inputs, out, p):
    # d(x W^T + b) = dx W^T + x dW^T + db
    x, weight = inputs[0], inputs[1]
    parts = []
    if tangents[0] is not None:
        parts.append(xp.matmul(tangents[0], _mT(xp, weight)))
    if tangents[1] is not None:
        parts.append(xp.matmul(x, _mT(xp, tangents[1])))
    if len(tangents) > 2 and tangents[2] is not None:
        parts.append(xp.broadcast_to(tangents[2], out.shape))
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


# einsum is linear in each operand: an operand is read only for the others' gradients
@primitive("einsum", save=ALL_INPUTS, backward_name="EinsumBackward0", uses=OTHER_INPUTS)
def einsum(xp, *operands, spec):
    return kernels.einsum(xp, spec, *operands)


@einsum.defvjp
def _(xp, g, saved, p, needs):
    # d/dA_i of sum over products: contract g with every other operand, ending with A_i's
    # letters. Letters only A_i has (summed away in the forward) come back by broadcasting.
    inputs, output = p["spec"].split("->")
    subscripts = inputs.split(",")
    grads = []
    for i, letters in enumerate(subscripts):
        if not needs[i]:
            grads.append(None)
            continue
        others = [s for j, s in enumerate(subscripts) if j != i]
        available = set(output).union(*others)
        kept = "".join(dict.fromkeys(c for c in letters if c in available))
        operand_letters = ",".join([output] + others)
        partial = xp.einsum(f"{operand_letters}->{kept}", g,
                            *[s for j, s in enumerate(saved) if j != i])
        sizes = dict(zip(letters, saved[i].shape))
        order = [c for c in letters if c in kept]
        partial = xp.permute_dims(partial, tuple(kept.index(c) for c in order))
        # size-1 dims broadcast in the forward: where A_i had the 1, sum the gradient back;
        # where another operand had it, the partial has a 1 that broadcasts out below
        spread = tuple(k for k, c in enumerate(order) if sizes[c] == 1 and partial.shape[k] != 1)
        if spread:
            partial = xp.sum(partial, axis=spread, keepdims=True)
        kept_shape = tuple(partial.shape[order.index(c)] if c in kept else 1 for c in letters)
        grads.append(xp.broadcast_to(xp.reshape(partial, kept_shape), saved[i].shape))
    return tuple(grads)


@einsum.defjvp
def _(xp, tangents, inputs, out, p):
    # multilinear: the tangent is the sum over operands of the product with that one replaced
    total = None
    for i, t in enumerate(tangents):
        if t is None:
            continue
        operands = list(inputs)
        operands[i] = t
        term = xp.einsum(p["spec"], *operands)
        total = term if total is None else total + term
    return total
