"""Shape and layout primitives. They move elements without arithmetic, so each VJP moves
the gradient back the opposite way. Those marked ``view`` share storage with their input.
"""

from __future__ import annotations

import numpy as np

from . import kernels
from ._primitive import LINEAR, primitive


@primitive("reshape", view=True, backward_name="ViewBackward0", jvp=LINEAR)
def reshape(x, shape, in_shape):
    return x.reshape(shape)


def _reshape_vjp(xp, g, saved, p, needs):
    return (g.reshape(p["in_shape"]),)


reshape.defvjp(_reshape_vjp)


# reshape of a tensor whose strides allow no view (PyTorch's reshape copies then): a new
# tensor, not a view, so that writing into it neither changes nor versions the input
@primitive("reshape_copy", backward_name="UnsafeViewBackward0", jvp=LINEAR)
def reshape_copy(x, shape, in_shape):
    return np.reshape(x, shape)  # called only where NumPy must copy


reshape_copy.defvjp(_reshape_vjp)


@primitive("permute", view=True, backward_name="PermuteBackward0", jvp=LINEAR)
def permute(x, dims):
    return x.transpose(dims)


@permute.defvjp
def _(xp, g, saved, p, needs):
    inverse = tuple(np.argsort(p["dims"]))
    return (xp.permute_dims(g, inverse),)


@primitive("expand", view=True, broadcasts=True, backward_name="ExpandBackward0", jvp=LINEAR)
def expand(x, shape):
    if x.size == int(np.prod(shape)):
        return x.reshape(shape)  # only size-1 dims added: a view that can be written, as PyTorch's
    return np.broadcast_to(x, shape)


@expand.defvjp
def _(xp, g, saved, p, needs):
    return (g,)  # the engine sums the expanded axes back


# ``sizes``: each input's extent along ``axis``, None for a 1-D empty input that PyTorch's
# cat skips (legacy behaviour) while still giving it an empty gradient
@primitive("cat", backward_name="CatBackward0", jvp=LINEAR)
def cat(*xs, axis, sizes):
    return np.concatenate([x for x, size in zip(xs, sizes) if size is not None], axis=axis)


@cat.defvjp
def _(xp, g, saved, p, needs):
    axis = p["axis"]
    grads, start = [], 0
    for size, need in zip(p["sizes"], needs):
        if size is None:
            grads.append(xp.zeros((0,), dtype=g.dtype) if need else None)
            continue
        if need:
            index = (slice(None),) * axis + (slice(start, start + size),)
            grads.append(g[index])
        else:
            grads.append(None)
        start += size
    return tuple(grads)


@primitive("flip", jvp=LINEAR)
def flip(x, axis):
    return np.flip(x, axis=axis).copy()  # NumPy's flip is a view; PyTorch's flip copies


@flip.defvjp
def _(xp, g, saved, p, needs):
    return (xp.flip(g, axis=p["axis"]),)


@primitive("roll", jvp=LINEAR)
def roll(x, shift, axis):
    # NumPy may keep the input's layout (a broadcast input comes back column-major);
    # PyTorch's result is contiguous, and later views depend on that
    out = np.roll(x, shift, axis=axis)
    return out if out.flags.c_contiguous else out.copy()  # copy(): C order (0-d stays 0-d)


@roll.defvjp
def _(xp, g, saved, p, needs):
    shift = p["shift"]
    back = tuple(-s for s in shift) if isinstance(shift, tuple) else -shift
    return (xp.roll(g, back, axis=p["axis"]),)


@primitive("pad", backward_name="ConstantPadNdBackward0")
def pad(x, widths, value):
    return kernels.pad(x, widths, value)


@pad.defvjp
def _(xp, g, saved, p, needs):
    # negative widths crop; the gradient crops what was padded and pads what was cropped
    return (xp.pad(g, tuple((-lo, -hi) for lo, hi in p["widths"]), 0.0),)


@pad.defjvp
def _(xp, tangents, inputs, out, p):
    return xp.pad(tangents[0], p["widths"], 0.0)  # the padding value is a constant


@primitive("tril", jvp=LINEAR)
def tril(x, k):
    return np.tril(x, k)


@tril.defvjp
def _(xp, g, saved, p, needs):
    return (xp.tril(g, p["k"]),)


@primitive("triu", jvp=LINEAR)
def triu(x, k):
    return np.triu(x, k)


@triu.defvjp
def _(xp, g, saved, p, needs):
    return (xp.triu(g, p["k"]),)
