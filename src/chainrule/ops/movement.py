"""Shape and layout primitives. They move elements without arithmetic, so each VJP moves
the gradient back the opposite way. Those marked ``view`` share storage with their input.
"""

from __future__ import annotations

import math

from .. import _backend
from ..autograd import engine
from . import kernels
from ._primitive import LINEAR, primitive


@primitive("reshape", view=True, backward_name="ViewBackward0", jvp=LINEAR)
def reshape(xp, x, shape, in_shape):
    return xp.reshape(x, shape)


def _reshape_vjp(xp, g, saved, p, needs):
    return (xp.reshape(g, p["in_shape"]),)


reshape.defvjp(_reshape_vjp)


# reshape of a tensor whose strides allow no view (PyTorch's reshape copies then): a new
# tensor, not a view, so that writing into it neither changes nor versions the input
@primitive("reshape_copy", backward_name="UnsafeViewBackward0", jvp=LINEAR)
def reshape_copy(xp, x, shape, in_shape):
    return xp.reshape(kernels.copy(xp, x), shape)  # called only where NumPy must copy


reshape_copy.defvjp(_reshape_vjp)

# reshapes that PyTorch names after the public op: unsqueeze, and squeeze's overloads
# (every size-1 dim, one dim, a tuple of dims)
unsqueeze = reshape.renamed("unsqueeze", "UnsqueezeBackward0")
squeeze = reshape.renamed("squeeze", "SqueezeBackward0")
squeeze_dim = reshape.renamed("squeeze_dim", "SqueezeBackward1")
squeeze_dims = reshape.renamed("squeeze_dims", "SqueezeBackward2")


@primitive("permute", view=True, backward_name="PermuteBackward0", jvp=LINEAR)
def permute(xp, x, dims):
    return xp.permute_dims(x, dims)


@permute.defvjp
def _(xp, g, saved, p, needs):
    dims = p["dims"]
    inverse = tuple(sorted(range(len(dims)), key=dims.__getitem__))
    return (xp.permute_dims(g, inverse),)


# permutes that PyTorch names after the public op (x.T and movedim are PermuteBackward0)
transpose = permute.renamed("transpose", "TransposeBackward0")
t = permute.renamed("t", "TBackward0")


@primitive("expand", view=True, broadcasts=True, backward_name="ExpandBackward0", jvp=LINEAR)
def expand(xp, x, shape):
    if math.prod(x.shape) == math.prod(shape):
        return xp.reshape(x, shape)  # only size-1 dims added: a view that can be written, as PyTorch's
    return xp.broadcast_to(x, shape)


@expand.defvjp
def _(xp, g, saved, p, needs):
    return (g,)  # the engine sums the expanded axes back


# ``sizes``: each input's extent along ``axis``, None for a 1-D empty input that PyTorch's
# cat skips (legacy behaviour) while still giving it an empty gradient
@primitive("cat", backward_name="CatBackward0", jvp=LINEAR)
def cat(xp, *xs, axis, sizes):
    return xp.concat([x for x, size in zip(xs, sizes) if size is not None], axis=axis)


@cat.defvjp
def _(xp, g, saved, p, needs):
    axis = p["axis"]
    grads, start = [], 0
    for size, need in zip(p["sizes"], needs):
        if size is None:
            grads.append(xp.zeros((0,), dtype=g.dtype, device=g.device) if need else None)
            continue
        if need:
            index = (slice(None),) * axis + (slice(start, start + size), Ellipsis)
            grads.append(g[index])
        else:
            grads.append(None)
        start += size
    return tuple(grads)


@primitive("stack", jvp=LINEAR)
def stack(xp, *xs, axis):
    return xp.stack(xs, axis=axis)


@stack.defvjp
def _(xp, g, saved, p, needs):
    # input i is the slice i of the result along the new axis
    lead = (slice(None),) * p["axis"]
    return tuple(g[(*lead, i, Ellipsis)] if need else None for i, need in enumerate(needs))


# torch.Tensor.repeat: ``reps`` has at least as many entries as x has dims (x is taken
# with size-1 dims in front to match); the result owns its memory, in C order
@primitive("repeat", jvp=LINEAR)
def repeat(xp, x, reps, shape):
    return kernels.contiguous(xp, xp.tile(x, reps))


@repeat.defvjp
def _(xp, g, saved, p, needs):
    # every copy of an element sends its gradient back to it: split each axis of g into
    # (copies, extent) and sum over the copies
    reps, shape = p["reps"], p["shape"]
    padded = (1,) * (len(reps) - len(shape)) + tuple(shape)
    split = tuple(v for r, n in zip(reps, padded) for v in (r, n))
    summed = xp.sum(xp.reshape(g, split), axis=tuple(range(0, 2 * len(reps), 2)))
    return (xp.reshape(summed, shape),)


@primitive("flip", jvp=LINEAR)
def flip(xp, x, axis):
    return kernels.copy(xp, xp.flip(x, axis=axis))  # NumPy's flip is a view; PyTorch's copies


@flip.defvjp
def _(xp, g, saved, p, needs):
    return (xp.flip(g, axis=p["axis"]),)


@primitive("roll", jvp=LINEAR)
def roll(xp, x, shift, axis):
    # NumPy may keep the input's layout (a broadcast input comes back column-major);
    # PyTorch's result is contiguous, and later views depend on that
    return kernels.contiguous(xp, xp.roll(x, shift, axis=axis))


@roll.defvjp
def _(xp, g, saved, p, needs):
    shift = p["shift"]
    back = tuple(-s for s in shift) if isinstance(shift, tuple) else -shift
    return (xp.roll(g, back, axis=p["axis"]),)


@primitive("pad", backward_name="ConstantPadNdBackward0")
def pad(xp, x, widths, value):
    return kernels.pad(xp, x, widths, value)


@pad.defvjp
def _(xp, g, saved, p, needs):
    # negative widths crop; the gradient crops what was padded and pads what was cropped
    return (xp.pad(g, tuple((-lo, -hi) for lo, hi in p["widths"]), 0.0),)


@pad.defjvp
def _(xp, tangents, inputs, out, p):
    return xp.pad(tangents[0], p["widths"], 0.0)  # the padding value is a constant


@primitive("tril", jvp=LINEAR)
def tril(xp, x, k):
    return xp.tril(x, k=k)


@tril.defvjp
def _(xp, g, saved, p, needs):
    return (xp.tril(g, p["k"]),)


@primitive("triu", jvp=LINEAR)
def triu(xp, x, k):
    return xp.triu(x, k=k)


@triu.defvjp
def _(xp, g, saved, p, needs):
    return (xp.triu(g, p["k"]),)


# ------------------------------------------------------------------ devices
@primitive("to_device", backward_name="ToCopyBackward0", jvp=LINEAR)
def to_device(xp, x, device, src):
    engine.devices_crossed = True  # from now on a graph may span devices (engine._run)
    return _backend.to_device(x, device)


@to_device.defvjp
def _(xp, g, saved, p, needs):
    return (xp.to_device(g, p["src"]),)  # the gradient goes back to the source device
