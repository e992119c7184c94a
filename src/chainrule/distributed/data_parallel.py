"""DistributedDataParallel: one model per process, gradients averaged across processes.

Gradients travel in buckets (flat arrays of several parameters' gradients, about
``bucket_cap_mb`` each, the first one 1 MB so that communication starts early), filled
in reverse registration order because that is roughly the order in which backward
produces them. A hook on every parameter copies its gradient into its bucket when the
engine finishes that parameter; a full bucket's all-reduce starts at once, without
blocking, and the process group's progress thread moves it on while the rest of the
backward pass runs (MPI advances non-blocking collectives only inside MPI calls). Buckets
start in index order on every rank, whatever order their gradients arrive in, because
MPI matches collectives by the order in which ranks call them.

The hook of the last parameter to be finished waits for all buckets and writes the
averages into ``.grad``: into the other parameters' gradients, which the engine has
already accumulated, and into its own by returning the average as its replacement
gradient. So ``.grad`` holds the averaged gradient when ``backward()`` returns, and any
optimizer works unchanged.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..autograd.grad_mode import is_grad_enabled
from ..autograd.graph import Node
from ..nn.modules.module import Module
from ..tensor import Tensor, _wrap
from .process_group import _default_group, _Group, wait_all

_FIRST_BUCKET_BYTES = 1024 * 1024  # PyTorch's dist._DEFAULT_FIRST_BUCKET_BYTES
_DEFAULT_BUCKET_MB = 25.0


class DistributedDataParallel(Module):
    """Wrap ``module`` so that ``backward()`` leaves every rank with the gradient averaged
    over all ranks, as ``torch.nn.parallel.DistributedDataParallel``.

    At construction rank 0's parameters and buffers are copied to every rank. Each rank
    then runs forward and backward on its own batch; when backward returns, ``.grad`` of
    every parameter is the mean of the ranks' gradients, so the same optimizer step keeps
    the replicas equal. Forwards run inside ``no_sync()`` skip the averaging and only
    accumulate locally (gradient accumulation); the first synchronised backward after
    them averages the accumulated gradients. With ``broadcast_buffers`` rank 0's buffers
    (BatchNorm's running statistics) are copied to every rank before each forward.

    ``find_unused_parameters=True`` walks the graph after each forward and counts the
    parameters it does not reach as ready, so that a model whose forward skips some
    parameters does not stall; a parameter no rank used keeps its ``.grad``.
    ``gradient_as_bucket_view`` and ``static_graph`` are accepted for PyTorch code and
    change nothing here (gradients are always copied out of the buckets).

    >>> dist.init_process_group(backend="mpi")
    >>> model = DistributedDataParallel(Net(), bucket_cap_mb=25)
    >>> opt = chainrule.optim.SGD(model.parameters(), lr=0.1)
    >>> loss_fn(model(x), y).backward()    # .grad averaged over the ranks
    >>> opt.step()
    """

    def __init__(self, module: Module, device_ids: Any = None, output_device: Any = None,
                 dim: int = 0, broadcast_buffers: bool = True, init_sync: bool = True,
                 process_group: Any = None, bucket_cap_mb: float | None = None,
                 find_unused_parameters: bool = False, check_reduction: bool = False,
                 gradient_as_bucket_view: bool = False, static_graph: bool = False) -> None:
        super().__init__()
        group = _default_group("DistributedDataParallel", process_group)
        if not isinstance(module, Module):
            raise TypeError(
                f"DistributedDataParallel: expected an nn.Module, got {type(module).__name__}"
            )
        if device_ids or output_device is not None:
            raise ValueError(
                "DistributedDataParallel: device_ids and output_device place a CUDA module; "
                "this module lives on the CPU, so leave them unset"
            )
        if bucket_cap_mb is not None and not bucket_cap_mb > 0:
            raise ValueError(
                f"DistributedDataParallel: bucket_cap_mb must be positive, got {bucket_cap_mb}"
            )
        named = [(name, p) for name, p in module.named_parameters() if p.requires_grad]
        if not named:
            raise RuntimeError(
                "DistributedDataParallel is not needed when a module doesn't have any parameter "
                "that requires a gradient."
            )
        self.module = module
        self.dim = dim
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.gradient_as_bucket_view = gradient_as_bucket_view
        self.static_graph = static_graph
        self.bucket_bytes_cap = int((bucket_cap_mb or _DEFAULT_BUCKET_MB) * 1024 * 1024)
        self.require_backward_grad_sync = True
        self.require_forward_param_sync = True
        self._group = group
        _check_same_model(group, module)
        if init_sync:
            _broadcast_from_rank0(group, [*module.parameters(), *module.buffers()],
                                  "DistributedDataParallel: copying rank 0's parameters and buffers")
        self._reducer = _Reducer(group, [p for _, p in named], [n for n, _ in named],
                                 self.bucket_bytes_cap, find_unused_parameters)

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        """Run the wrapped module; arm the gradient averaging for the coming backward."""
        reducer = self._reducer
        reducer.check_prior_reduction_finished()
        if self.require_forward_param_sync and self.broadcast_buffers and self._group.size > 1:
            buffers = list(self.module.buffers())
            if buffers:
                _broadcast_from_rank0(self._group, buffers,
                                      "DistributedDataParallel: copying rank 0's buffers")
        output = self.module(*inputs, **kwargs)
        sync = is_grad_enabled() and self.require_backward_grad_sync
        # as PyTorch: buffers are synchronised before a forward that follows a synchronised one
        self.require_forward_param_sync = sync
        if sync:
            reducer.prepare(output)
        else:
            reducer.disarm()
        return output

    @contextmanager
    def no_sync(self) -> Iterator[None]:
        """Within this context, backward accumulates gradients locally without averaging;
        the first synchronised backward after it averages what has accumulated.

        >>> with model.no_sync():
        ...     for x, y in micro_batches[:-1]:
        ...         loss_fn(model(x), y).backward()
        >>> loss_fn(model(micro_batches[-1][0]), micro_batches[-1][1]).backward()
        """
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous


class _Reducer:
    """Buckets, the gradient hooks, and the state of one reduction (forward to backward)."""

    def __init__(self, group: _Group, params: list[Tensor], names: list[str], cap_bytes: int,
                 find_unused: bool) -> None:
        self.group = group
        self.params = params
        self.names = names
        self.find_unused = find_unused
        self.members = _assign_buckets(params, cap_bytes)
        self.bucket_of = [0] * len(params)
        self.views: list[np.ndarray] = [np.empty(0)] * len(params)
        self.flats = []
        for b, members in enumerate(self.members):
            flat = np.empty(sum(params[i]._data.size for i in members),
                            dtype=params[members[0]]._data.dtype)
            offset = 0
            for i in members:
                p = params[i]._data
                self.bucket_of[i] = b
                self.views[i] = flat[offset:offset + p.size].reshape(p.shape)
                offset += p.size
            self.flats.append(flat)
        self.armed = False
        self.requests: list = []
        self._reset_counters()
        this = weakref.ref(self)
        handles = [p.register_hook(_gradient_hook(this, i)) for i, p in enumerate(params)]
        # the hooks hold the reducer weakly; drop them from the parameters when it goes
        weakref.finalize(self, _remove_hooks, handles)

    def _reset_counters(self) -> None:
        self.ready = [False] * len(self.params)
        self.pending = [len(m) for m in self.members]
        self.full = [False] * len(self.members)
        self.remaining = len(self.params)
        self.next_bucket = 0
        self.fired = False
        self.used: np.ndarray | None = None

    def _drain(self) -> None:
        # all-reduces still in flight (started for buckets of unused parameters by a forward
        # that no backward followed) must end before their buffers are reused
        if self.requests:
            self.group.progress.release()
            wait_all(self.group, self.requests, "DistributedDataParallel: earlier bucket all-reduce")
            self.requests = []

    def disarm(self) -> None:
        self._drain()
        self.armed = False
        self._reset_counters()

    def check_prior_reduction_finished(self) -> None:
        if not (self.armed and self.fired):
            return
        missing = [name for name, ready in zip(self.names, self.ready) if not ready]
        raise RuntimeError(
            "DistributedDataParallel: Expected to have finished reduction in the prior iteration "
            "before starting a new one: the last backward gave no gradient to parameter(s) "
            f"{', '.join(missing)} on rank {self.group.rank}. Pass find_unused_parameters=True "
            "to DistributedDataParallel if forward does not use every parameter, and make sure "
            "every output of forward takes part in the loss."
        )

    def prepare(self, output: Any) -> None:
        self.disarm()
        self.armed = True
        if not self.find_unused:
            return
        reached = _reachable_leaves(output)
        self.used = np.array([id(p) in reached for p in self.params], dtype=np.uint8)
        for i in np.flatnonzero(self.used == 0):
            p = self.params[i]
            if p.grad is None:
                self.views[i][...] = 0
            else:
                self.views[i][...] = p.grad._data
            self._mark_ready(int(i))
        if self.remaining == 0:
            self._finish(None)

    def on_gradient(self, i: int, grad: Tensor) -> Tensor | None:
        """Hook body: copy the finished gradient of parameter ``i`` into its bucket."""
        if self.ready[i]:
            raise RuntimeError(
                f"DistributedDataParallel: parameter {self.names[i]} received a gradient twice "
                f"in one reduction (Expected to mark a variable ready only once). Run forward "
                f"before each backward; backward twice through one forward's graph is not "
                f"supported, nor reusing a parameter across separate backward calls."
            )
        self.fired = True
        p = self.params[i]
        view = self.views[i]
        if grad._data.dtype != view.dtype or grad._data.shape != view.shape:
            raise RuntimeError(
                f"DistributedDataParallel: parameter {self.names[i]} is now {grad._data.dtype} "
                f"of shape {grad._data.shape}, but was {view.dtype} of shape {view.shape} when "
                f"it was wrapped; convert or resize the module (.double(), .to(...)) before "
                f"wrapping it"
            )
        view[...] = grad._data
        if p.grad is not None:  # accumulated locally (no_sync): average the total
            view += p.grad._data
        self._mark_ready(i)
        if self.remaining == 0:
            return self._finish(i)
        if self.requests:
            # MPI moves collectives only inside MPI calls: one here too, for when the
            # progress thread is off (MPI started without MPI_THREAD_MULTIPLE)
            self.group.mpi.Request.Testall(self.requests)
        return None

    def _mark_ready(self, i: int) -> None:
        self.ready[i] = True
        self.remaining -= 1
        b = self.bucket_of[i]
        self.pending[b] -= 1
        if self.pending[b]:
            return
        self.full[b] = True
        comm, mpi = self.group.comm, self.group.mpi
        while self.next_bucket < len(self.flats) and self.full[self.next_bucket]:
            if not self.requests:  # the first bucket in flight: move them on while backward runs
                self.group.progress.hold()
            flat = self.flats[self.next_bucket]
            self.requests.append(comm.Iallreduce(mpi.IN_PLACE, flat, mpi.SUM))
            self.next_bucket += 1

    def _finish(self, current: int | None) -> Tensor | None:
        """All buckets are started: wait, average, write ``.grad``; the gradient for
        parameter ``current`` (whose hook is running) is returned to the engine instead."""
        group = self.group
        group.progress.release()  # backward is over: this thread now waits, spinning
        wait_all(group, self.requests, f"DistributedDataParallel: gradient all-reduce of "
                                       f"{len(self.flats)} bucket(s)")
        self.requests = []
        used = None
        if self.used is not None:
            used = self.used.copy()
            wait_all(group, [group.comm.Iallreduce(group.mpi.IN_PLACE, used, group.mpi.MAX)],
                     "DistributedDataParallel: exchanging which parameters were used")
        replacement = None
        size = group.size
        for i, p in enumerate(self.params):
            if used is not None and not used[i]:
                continue  # no rank used it: leave .grad as it was, as PyTorch
            total = self.views[i]
            if i == current:
                p.grad = None
                replacement = _wrap(total / size)
            elif p.grad is None or p.grad._rg:
                p.grad = _wrap(total / size)
            else:  # the division writes the average straight into .grad: one pass
                np.divide(total, size, out=p.grad._data)
                p.grad._version[0] += 1
        self.armed = False
        self._reset_counters()
        return replacement


def _gradient_hook(reducer: weakref.ref, i: int) -> Any:
    def hook(grad: Tensor) -> Tensor | None:
        this = reducer()
        if this is None or not this.armed:
            return None
        return this.on_gradient(i, grad)
    return hook


def _remove_hooks(handles: list) -> None:
    for handle in handles:
        handle.remove()


def _assign_buckets(params: list[Tensor], cap_bytes: int) -> list[list[int]]:
    """Parameter indices per bucket: reverse registration order, one dtype per bucket, each
    bucket closed once it reaches its cap (1 MB for a dtype's first bucket)."""
    open_buckets: dict = {}
    seen: set = set()
    closed = []
    for i in reversed(range(len(params))):
        array = params[i]._data
        dtype = array.dtype
        members, size = open_buckets.pop(dtype, ([], 0))
        members.append(i)
        size += array.nbytes
        if size >= (cap_bytes if dtype in seen else min(cap_bytes, _FIRST_BUCKET_BYTES)):
            closed.append(members)
            seen.add(dtype)
        else:
            open_buckets[dtype] = (members, size)
    closed.extend(members for members, _ in open_buckets.values())
    closed.sort(key=lambda members: -members[0])
    return closed


def _reachable_leaves(output: Any) -> set:
    """ids of the leaf tensors that the graph of ``output``'s tensors reaches."""
    leaves: set = set()
    stack = []
    for t in _tensors(output):
        if t.grad_fn is not None:
            stack.append(t.grad_fn)
        elif t._rg:
            leaves.add(id(t))
    seen: set = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for edge in node.edges:
            if isinstance(edge, Node):
                stack.append(edge)
            elif edge is not None:
                leaves.add(id(edge))
    return leaves


def _tensors(value: Any) -> Iterator[Tensor]:
    if isinstance(value, Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)


def _broadcast_from_rank0(group: _Group, tensors: list[Tensor], what: str) -> None:
    """Copy rank 0's values of ``tensors`` into them on every rank: one message per dtype."""
    by_dtype: dict = {}
    for t in tensors:
        by_dtype.setdefault(t._data.dtype, []).append(t)
    for dtype, same in by_dtype.items():
        flat = np.concatenate([t._data.reshape(-1) for t in same]) if group.rank == 0 else \
            np.empty(sum(t._data.size for t in same), dtype=dtype)
        wait_all(group, [group.comm.Ibcast(flat.view(np.uint8), root=0)], what)
        if group.rank == 0:
            continue
        offset = 0
        for t in same:
            t._data[...] = flat[offset:offset + t._data.size].reshape(t._data.shape)
            t._version[0] += 1
            offset += t._data.size


def _check_same_model(group: _Group, module: Module) -> None:
    """Refuse to start when the ranks built different models (names, shapes, dtypes)."""
    entries = [(name, tuple(t.shape), str(t._data.dtype))
               for name, t in [*module.named_parameters(), *module.named_buffers()]]
    digest = hashlib.blake2b(repr(entries).encode(), digest_size=8).digest()
    mine = np.array([int.from_bytes(digest, "little", signed=True), len(entries),
                     sum(int(np.prod(shape)) for _, shape, _ in entries)], dtype=np.int64)
    everyone = np.empty((group.size, 3), dtype=np.int64)
    wait_all(group, [group.comm.Iallgather(mine, everyone)],
             "DistributedDataParallel: comparing the ranks' models")
    for rank, theirs in enumerate(everyone):
        if (theirs != everyone[0]).any():
            raise ValueError(
                f"DistributedDataParallel: the model on rank {rank} differs from rank 0's "
                f"({theirs[1]} parameters and buffers with {theirs[2]} elements, against "
                f"{everyone[0][1]} with {everyone[0][2]}, or other names, shapes or dtypes); "
                f"build the same model on every rank before wrapping it"
            )
