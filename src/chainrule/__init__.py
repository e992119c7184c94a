"""chainrule: backpropagation made into a library.

A reverse-mode automatic differentiation engine over NumPy arrays with PyTorch's API:

>>> import chainrule as torch
>>> x = torch.tensor(2.0, requires_grad=True)
>>> y = x * x + 3 * x
>>> y.backward()
>>> x.grad
tensor(7.)
"""

from . import _allocator, _tensor_methods, amp, autograd, cuda, distributed, func, nn, optim, utils
from ._backend import device, get_default_device, set_default_device
from ._dtype import (
    bfloat16,
    bool,
    can_cast,
    double,
    dtype,
    finfo,
    float,
    float16,
    float32,
    float64,
    get_default_dtype,
    half,
    iinfo,
    int,
    int8,
    int16,
    int32,
    int64,
    long,
    promote_types,
    set_default_dtype,
    short,
    uint8,
)
from ._tensor_methods import addcdiv, addcmul, clamp_max, clamp_min, lerp, square, unflatten
from .amp import autocast
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .ops._convert import result_type
from .ops.creation import (
    Generator,
    arange,
    as_tensor,
    asarray,
    bernoulli,
    default_generator,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    get_rng_state,
    initial_seed,
    linspace,
    manual_seed,
    normal,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
    seed,
    set_rng_state,
    tensor,
    zeros,
    zeros_like,
)
from .ops.math import (
    abs,
    absolute,
    add,
    allclose,
    amax,
    amin,
    argmax,
    argmin,
    bitwise_and,
    bitwise_not,
    bitwise_or,
    bitwise_xor,
    bmm,
    ceil,
    clamp,
    clip,
    cos,
    cumsum,
    div,
    divide,
    dot,
    einsum,
    eq,
    equal,
    erf,
    exp,
    exp2,
    expm1,
    floor,
    ge,
    ger,
    greater,
    greater_equal,
    gt,
    inner,
    isclose,
    isfinite,
    isinf,
    isnan,
    le,
    less,
    less_equal,
    linear,
    log,
    log1p,
    log2,
    log_softmax,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    logsumexp,
    lt,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mm,
    mul,
    multiply,
    ne,
    neg,
    negative,
    norm,
    not_equal,
    outer,
    pow,
    prod,
    reciprocal,
    relu,
    round,
    rsqrt,
    sigmoid,
    sign,
    sin,
    softmax,
    sqrt,
    std,
    std_mean,
    sub,
    subtract,
    sum,
    tan,
    tanh,
    true_divide,
    trunc,
    var,
    var_mean,
    where,
)
from .ops.shape import (
    broadcast_tensors,
    broadcast_to,
    cat,
    chunk,
    concat,
    concatenate,
    expand,
    flatten,
    flip,
    gather,
    hstack,
    index_select,
    masked_fill,
    moveaxis,
    movedim,
    narrow,
    permute,
    repeat,
    reshape,
    roll,
    scatter,
    scatter_add,
    select,
    split,
    squeeze,
    stack,
    swapaxes,
    swapdims,
    t,
    take_along_dim,
    tile,
    transpose,
    tril,
    triu,
    unbind,
    unsqueeze,
    vstack,
)
from .serialization import load, save
from .tensor import Size, Tensor, is_tensor

_tensor_methods.bind()
# large temporaries reuse freed memory instead of faulting in fresh pages (_allocator.py)
_allocator.keep_freed_memory()

__version__ = "0.1.0"


def numel(input: Tensor) -> int:
    """Number of elements of ``input``."""
    return input.numel()


def clone(input: Tensor) -> Tensor:
    """A copy of ``input`` with its own storage; gradients flow back to the original."""
    return input.clone()


def detach(input: Tensor) -> Tensor:
    return input.detach()


def is_floating_point(input: Tensor) -> bool:
    return input.is_floating_point()

