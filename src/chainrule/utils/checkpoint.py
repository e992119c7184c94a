"""Activation checkpointing: trade compute for memory (``chainrule.utils.checkpoint``).

``checkpoint(fn, *args)`` runs ``fn`` without recording its inside, so none of its
intermediate activations are kept; backward runs ``fn`` again (with the random state
it had, so dropout draws the same masks) and differentiates that recomputation. The
gradients equal the plain run's; the memory of ``fn``'s activations is only held while
its own backward runs.

>>> from chainrule.utils.checkpoint import checkpoint, checkpoint_sequential
>>> y = checkpoint(block, x)                      # block's activations are not saved
>>> y = checkpoint_sequential(model, 4, x)        # 4 segments of a Sequential
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..autograd import engine, grad_mode
from ..autograd.function import Function, FunctionCtx
from ..ops import _primitive, creation
from ..tensor import Tensor

__all__ = ["checkpoint", "checkpoint_sequential", "plan_segments", "SegmentPlan",
           "is_recomputing"]


is_recomputing = grad_mode.is_recomputing


class _Checkpoint(Function):
    """The node that stands for a checkpointed call: its backward recomputes and
    differentiates. Its inputs are the call's tensor arguments and every tensor requiring
    grad that the call read from elsewhere (module parameters, closures)."""

    @staticmethod
    def forward(ctx: FunctionCtx, run: Callable, rng_state: Any, box: list, args: list,
                *tensors: Tensor) -> Any:
        ctx.run, ctx.rng_state, ctx.args = run, rng_state, args
        ctx.positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        ctx.save_for_backward(*tensors)
        return box[0]

    @staticmethod
    def backward(ctx: FunctionCtx, *grad_outputs: Tensor) -> tuple:
        create_graph = grad_mode.is_grad_enabled()
        saved = ctx.saved_tensors
        count = len(ctx.positions)
        args = list(ctx.args)
        for position, tensor in zip(ctx.positions, saved[:count]):
            # under create_graph the recomputation hangs off the original inputs, so the
            # gradients it yields can be differentiated with respect to them
            keep = create_graph or not tensor.requires_grad
            args[position] = tensor if keep else tensor.detach().requires_grad_()
        targets = [args[p] for p in ctx.positions] + list(saved[count:])
        outer_state = creation.get_rng_state() if ctx.rng_state is not None else None
        if ctx.rng_state is not None:
            creation.set_rng_state(ctx.rng_state)
        grad_mode.state.recomputing += 1
        try:
            with grad_mode.enable_grad():
                outputs = ctx.run(*args)
        finally:
            grad_mode.state.recomputing -= 1
            if outer_state is not None:
                creation.set_rng_state(outer_state)
        outputs = (outputs,) if isinstance(outputs, Tensor) else tuple(outputs)
        live = [(o, g) for o, g in zip(outputs, grad_outputs)
                if isinstance(o, Tensor) and o.requires_grad and g is not None]
        wanted = [i for i, t in enumerate(targets) if t.requires_grad]
        grads: list = [None] * len(targets)
        if live and wanted:
            found = engine.grad([o for o, _ in live], [targets[i] for i in wanted],
                                [g for _, g in live], create_graph=create_graph, allow_unused=True)
            for i, g in zip(wanted, found):
                grads[i] = g
        return (None, None, None, None, *grads)


def checkpoint(function: Callable, *args: Any, use_reentrant: bool | None = None,
               preserve_rng_state: bool = True, **kwargs: Any) -> Any:
    """Run ``function(*args, **kwargs)`` without saving its intermediates; recompute them
    in backward. Gradients (also under ``create_graph=True``) equal the plain run's,
    including those of parameters the function reads from modules or closures."""
    if kwargs:
        def run(*inner: Any) -> Any:
            return function(*inner, **kwargs)
    else:
        run = function
    if not grad_mode.is_grad_enabled():
        return run(*args)
    rng_state = creation.get_rng_state() if preserve_rng_state else None
    outputs, read = _run_recording_reads(run, args)
    arg_tensors = [a for a in args if isinstance(a, Tensor)]
    explicit = {id(t) for t in arg_tensors}
    external = [t for t in read if id(t) not in explicit]
    if not any(t.requires_grad for t in arg_tensors) and not external:
        return outputs
    return _Checkpoint.apply(run, rng_state, [outputs], list(args), *arg_tensors, *external)


def _run_recording_reads(run: Callable, args: tuple) -> tuple[Any, list]:
    """``run(*args)`` under no_grad, and the tensors requiring grad its ops read: under
    no_grad every tensor made inside does not require grad, so those came from outside."""
    read: dict = {}
    plain_call = _primitive.Primitive.__call__

    def recording_call(prim: Any, *inputs: Tensor, **params: Any) -> Tensor:
        for t in inputs:
            if t._rg:
                read.setdefault(id(t), t)
        return plain_call(prim, *inputs, **params)

    _primitive.Primitive.__call__ = recording_call
    try:
        with grad_mode.no_grad():
            outputs = run(*args)
    finally:
        _primitive.Primitive.__call__ = plain_call
    return outputs, list(read.values())


# ------------------------------------------------------------------ sequences of layers
@dataclass(frozen=True)
class SegmentPlan:
    """Where to cut a sequence of L layers: ``bounds`` are the first layer of each segment.

    The last segment runs plainly (its activations are needed at once by backward); the
    others are checkpointed. ``peak_bytes`` and ``recompute`` are the planner's estimates:
    saved bytes at the peak of backward, and the share of the forward run twice.
    """

    bounds: tuple
    peak_bytes: int
    recompute: float

    @property
    def segments(self) -> int:
        return len(self.bounds)


def plan_segments(saved_bytes: Sequence[int], output_bytes: Sequence[int], budget: int | None = None,
                  costs: Sequence[float] | None = None, input_bytes: int = 0) -> SegmentPlan:
    """Choose segment boundaries for layers that save ``saved_bytes[i]`` for backward and
    output ``output_bytes[i]`` (a boundary that is kept when a segment starts after it);
    ``input_bytes``, the first layer's input, is kept too once the first segment is
    checkpointed.

    Without a budget: the sqrt(L) rule (segments of about sqrt(L) layers). With one: the plan
    with the least recomputation whose estimated peak fits, where the peak is the kept
    segment inputs plus the largest segment's own saved bytes (what backward of that segment
    holds). Raises ValueError if no plan fits.
    """
    count = len(saved_bytes)
    if count == 0:
        return SegmentPlan((), 0, 0.0)
    costs = list(costs) if costs is not None else [float(b) or 1.0 for b in saved_bytes]
    if budget is None:
        size = max(1, round(math.sqrt(count)))
        return _evaluate(tuple(range(0, count, size)), saved_bytes, output_bytes, costs, input_bytes)
    best = None
    caps = sorted({sum(saved_bytes[i:j]) for i in range(count) for j in range(i + 1, count + 1)})
    for cap in caps:
        bounds = _pack(saved_bytes, cap)
        if bounds is None:
            continue
        plan = _evaluate(bounds, saved_bytes, output_bytes, costs, input_bytes)
        if plan.peak_bytes <= budget and (best is None or plan.recompute < best.recompute or (
                plan.recompute == best.recompute and plan.peak_bytes < best.peak_bytes)):
            best = plan
    if best is None:
        smallest = min(_evaluate(tuple(range(count)), saved_bytes, output_bytes, costs,
                                 input_bytes).peak_bytes,
                       sum(saved_bytes))
        raise ValueError(
            f"plan_segments: no segmentation keeps saved activations under {budget} bytes; "
            f"the smallest estimated peak is {smallest} bytes"
        )
    return best


def _pack(saved_bytes: Sequence[int], cap: int) -> tuple | None:
    """Segments of at most ``cap`` saved bytes: the last as long as fits, the rest packed
    greedily from the front (fewest boundaries)."""
    count = len(saved_bytes)
    if max(saved_bytes) > cap:
        return None
    start = count
    total = 0
    while start > 0 and total + saved_bytes[start - 1] <= cap:
        start -= 1
        total += saved_bytes[start]
    bounds = []
    i = 0
    while i < start:
        bounds.append(i)
        total = 0
        while i < start and total + saved_bytes[i] <= cap:
            total += saved_bytes[i]
            i += 1
    bounds.append(start)
    return tuple(b for b in bounds if b < count) or (0,)


def _evaluate(bounds: tuple, saved_bytes: Sequence[int], output_bytes: Sequence[int],
              costs: Sequence[float], input_bytes: int) -> SegmentPlan:
    count = len(saved_bytes)
    edges = list(bounds) + [count]
    segments = [(edges[k], edges[k + 1]) for k in range(len(bounds))]
    kept_inputs = sum(output_bytes[start - 1] for start, _ in segments[1:])
    if len(segments) > 1:
        kept_inputs += input_bytes  # the first segment is checkpointed: its input is saved
    largest = max(sum(saved_bytes[a:b]) for a, b in segments)
    recomputed = sum(sum(costs[a:b]) for a, b in segments[:-1])
    return SegmentPlan(tuple(bounds), int(kept_inputs + largest), recomputed / sum(costs))


def checkpoint_sequential(functions: Any, segments: int | None = None, input: Any = None, *,
                          use_reentrant: bool | None = None, preserve_rng_state: bool = True,
                          memory_budget: int | None = None, plan: SegmentPlan | None = None) -> Any:
    """Run a sequence of layers (a Sequential or a list) in checkpointed segments.

    ``segments`` as PyTorch (the last segment runs plainly); when it is None the sqrt(L)
    rule picks it, or ``memory_budget`` (bytes) asks the planner for the cheapest segments
    that keep saved activations under the budget (measured on this input first).
    """
    layers = list(functions.children()) if hasattr(functions, "children") else list(functions)
    if input is None:
        raise TypeError("checkpoint_sequential() missing the input")
    if plan is None:
        if segments is not None:
            size = math.ceil(len(layers) / segments)
            bounds = tuple(range(0, len(layers), size))
            plan = SegmentPlan(bounds, 0, 0.0)
        elif memory_budget is not None:
            plan = plan_segments(*measure_layers(layers, input), budget=memory_budget,
                                 input_bytes=int(input._data.nbytes))
        else:
            plan = plan_segments([1] * len(layers), [1] * len(layers))
    edges = list(plan.bounds) + [len(layers)]
    out = input
    for k in range(len(plan.bounds)):
        block = layers[edges[k]:edges[k + 1]]
        run = _run_block(block)
        last = k == len(plan.bounds) - 1
        out = run(out) if last else checkpoint(run, out, preserve_rng_state=preserve_rng_state)
    return out


def _run_block(block: list) -> Callable:
    def run(x: Any) -> Any:
        for layer in block:
            x = layer(x)
        return x

    return run


def measure_layers(layers: Sequence[Callable], input: Tensor) -> tuple[list, list]:
    """Bytes each layer saves for backward and bytes of each layer's output, measured by
    running the layers once on ``input`` (random state restored afterwards)."""
    from ..diagnostics.memory import saved_bytes_between

    state = creation.get_rng_state()
    saved, outputs = [], []
    x = input.detach().requires_grad_(input.dtype.is_floating_point)
    try:
        with grad_mode.enable_grad():
            for layer in layers:
                y = layer(x)
                saved.append(saved_bytes_between(y, x))
                outputs.append(int(y._data.nbytes))
                x = y.detach().requires_grad_()
    finally:
        creation.set_rng_state(state)
    return saved, outputs
