"""Collectives on tensors over MPI: all_reduce, broadcast, all_gather, reduce_scatter, barrier.

Each one starts MPI's non-blocking form of the operation and returns a ``Work`` when
``async_op=True`` (``wait()`` finishes it), else waits itself. Results are written into
the given tensors in place, as in PyTorch, and bump their version counters.

MPI works on contiguous buffers: a non-contiguous tensor goes through a contiguous copy,
and data that is only moved (broadcast, gather) travels as bytes.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import numpy as np

from ..tensor import Tensor
from .process_group import _default_group, _Group, wait_all


class ReduceOp(enum.Enum):
    """How ``all_reduce`` and ``reduce_scatter`` combine the ranks' tensors.

    >>> dist.all_reduce(t, op=dist.ReduceOp.MAX)
    """

    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"
    BAND = "band"
    BOR = "bor"
    BXOR = "bxor"


_MPI_OPS = {ReduceOp.SUM: "SUM", ReduceOp.AVG: "SUM", ReduceOp.PRODUCT: "PROD",
            ReduceOp.MIN: "MIN", ReduceOp.MAX: "MAX", ReduceOp.BAND: "BAND",
            ReduceOp.BOR: "BOR", ReduceOp.BXOR: "BXOR"}


class Work:
    """A started collective: ``wait()`` blocks until it is done (or its timeout passes).

    >>> work = dist.all_reduce(t, async_op=True)
    >>> ...                                        # compute while the reduction runs
    >>> work.wait()
    True
    """

    __slots__ = ("_group", "_requests", "_finish", "_what", "_done", "_held")

    def __init__(self, group: _Group, requests: list, what: str,
                 finish: Callable[[], None] | None = None, background: bool = False) -> None:
        self._group = group
        self._requests = requests
        self._finish = finish
        self._what = what
        self._done = False
        # an async collective moves on in the background while the caller works
        self._held = background
        if background:
            group.progress.hold()

    def wait(self, timeout: timedelta | None = None) -> bool:
        """Block until the collective is done; raise DistBackendError past ``timeout``
        (the process group's timeout by default)."""
        if not self._done:
            wait_all(self._group, self._requests, self._what, timeout)
            self._complete()
        return True

    def is_completed(self) -> bool:
        """Whether the collective is done, without blocking (this call also moves it on:
        MPI makes progress only while it is called)."""
        if not self._done and self._group.mpi.Request.Testall(self._requests):
            self._complete()
        return self._done

    def is_success(self) -> bool:
        """Whether the collective has completed (a failed one aborts the job instead)."""
        return self.is_completed()

    def _complete(self) -> None:
        self._done = True
        if self._held:
            self._held = False
            self._group.progress.release()
        if self._finish is not None:
            self._finish()
            self._finish = None


# ------------------------------------------------------------------ buffers
def _as_buffer(tensor: Tensor, caller: str) -> tuple[np.ndarray, bool]:
    """A C-contiguous array over the tensor's data, and whether it is a copy to write back."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{caller}: expected a Tensor, got {type(tensor).__name__}")
    array = tensor._data
    if array.flags.c_contiguous:
        return array, False
    return np.ascontiguousarray(array), True


def _bytes(array: np.ndarray) -> np.ndarray:
    return array.reshape(-1).view(np.uint8)


def _bump(tensors: Sequence[Tensor]) -> None:
    for t in tensors:
        t._version[0] += 1


def _mpi_op(op: Any, array: np.ndarray, caller: str, mpi: Any) -> Any:
    if not isinstance(op, ReduceOp):
        raise TypeError(f"{caller}: op must be a chainrule.distributed.ReduceOp, got {op!r}")
    if op is ReduceOp.AVG and array.dtype.kind not in "fc":
        raise TypeError(
            f"{caller}: ReduceOp.AVG needs a floating-point tensor, got {array.dtype}; use "
            f"ReduceOp.SUM and divide, or convert the tensor with .float()"
        )
    return getattr(mpi, _MPI_OPS[op])


def _run(group: _Group, requests: list, what: str, finish: Callable[[], None] | None,
         async_op: bool) -> Work | None:
    work = Work(group, requests, what, finish, background=async_op)
    if async_op:
        return work
    work.wait()
    return None


def _check_group_size(items: Sequence, group: _Group, caller: str, name: str) -> None:
    if len(items) != group.size:
        raise ValueError(
            f"{caller}: {name} has {len(items)} tensors but the group has {group.size} ranks; "
            f"pass one tensor per rank"
        )


def _check_same(tensor: Tensor, like: np.ndarray, caller: str, name: str) -> None:
    if tuple(tensor._data.shape) != like.shape or tensor._data.dtype != like.dtype:
        raise ValueError(
            f"{caller}: {name} has shape {tuple(tensor._data.shape)} and dtype "
            f"{tensor._data.dtype}, expected shape {like.shape} and dtype {like.dtype}"
        )


# ------------------------------------------------------------------ collectives
def all_reduce(tensor: Tensor, op: ReduceOp = ReduceOp.SUM, group: Any = None,
               async_op: bool = False) -> Work | None:
    """Combine ``tensor`` across all ranks (sum, average, max, ...), in place on every rank.

    >>> t = chainrule.tensor([float(dist.get_rank())])
    >>> dist.all_reduce(t, op=dist.ReduceOp.SUM)    # tensor([1.]) on both of 2 ranks
    """
    pg = _default_group("all_reduce", group)
    buffer, _ = _as_buffer(tensor, "all_reduce")
    request = pg.comm.Iallreduce(pg.mpi.IN_PLACE, buffer, _mpi_op(op, buffer, "all_reduce", pg.mpi))
    _bump((tensor,))

    def finish() -> None:
        if op is ReduceOp.AVG:
            buffer[...] /= pg.size
        if buffer is not tensor._data:
            tensor._data[...] = buffer
    return _run(pg, [request], f"all_reduce({op.name}) of {buffer.shape} {buffer.dtype}", finish,
                async_op)


def broadcast(tensor: Tensor, src: int, group: Any = None, async_op: bool = False) -> Work | None:
    """Copy rank ``src``'s ``tensor`` into ``tensor`` on every other rank.

    >>> dist.broadcast(weights, src=0)              # every rank now holds rank 0's values
    """
    pg = _default_group("broadcast", group)
    if not isinstance(src, int) or not 0 <= src < pg.size:
        raise ValueError(f"broadcast: src={src!r} is not a rank of this group (0 to {pg.size - 1})")
    array, copied = _as_buffer(tensor, "broadcast")
    request = pg.comm.Ibcast(_bytes(array), root=src)
    if pg.rank != src:
        _bump((tensor,))

    def finish() -> None:
        tensor._data[...] = array
    return _run(pg, [request], f"broadcast of {tuple(array.shape)} {array.dtype} from rank {src}",
                finish if copied and pg.rank != src else None, async_op)


def all_gather(tensor_list: list[Tensor], tensor: Tensor, group: Any = None,
               async_op: bool = False) -> Work | None:
    """Fill ``tensor_list[r]`` with rank r's ``tensor``, on every rank.

    >>> parts = [chainrule.zeros(3) for _ in range(dist.get_world_size())]
    >>> dist.all_gather(parts, chainrule.full((3,), float(dist.get_rank())))
    """
    pg = _default_group("all_gather", group)
    _check_group_size(tensor_list, pg, "all_gather", "tensor_list")
    array, _ = _as_buffer(tensor, "all_gather")
    for i, out in enumerate(tensor_list):
        _check_same(out, array, "all_gather", f"tensor_list[{i}]")
    gathered = np.empty((pg.size,) + array.shape, dtype=array.dtype)
    request = pg.comm.Iallgather(_bytes(array), _bytes(gathered))
    _bump(tensor_list)

    def finish() -> None:
        for out, part in zip(tensor_list, gathered):
            out._data[...] = part
    return _run(pg, [request], f"all_gather of {array.shape} {array.dtype}", finish, async_op)


def all_gather_into_tensor(output_tensor: Tensor, input_tensor: Tensor, group: Any = None,
                           async_op: bool = False) -> Work | None:
    """Rank r's ``input_tensor`` goes to slice r of ``output_tensor`` (stacked along a new
    first dim, or concatenated along the first dim).

    >>> out = chainrule.empty(2 * 3)
    >>> dist.all_gather_into_tensor(out, chainrule.ones(3))
    """
    pg = _default_group("all_gather_into_tensor", group)
    array, _ = _as_buffer(input_tensor, "all_gather_into_tensor")
    out, copied = _as_buffer(output_tensor, "all_gather_into_tensor")
    _check_stacked(out, array, pg, "all_gather_into_tensor", "output_tensor", "input_tensor")
    request = pg.comm.Iallgather(_bytes(array), _bytes(out))
    _bump((output_tensor,))

    def finish() -> None:
        output_tensor._data[...] = out
    return _run(pg, [request], f"all_gather_into_tensor of {array.shape} {array.dtype}",
                finish if copied else None, async_op)


def reduce_scatter(output: Tensor, input_list: list[Tensor], op: ReduceOp = ReduceOp.SUM,
                   group: Any = None, async_op: bool = False) -> Work | None:
    """Reduce ``input_list[r]`` across ranks into ``output`` on rank r.

    >>> parts = [chainrule.ones(3) for _ in range(dist.get_world_size())]
    >>> out = chainrule.empty(3)
    >>> dist.reduce_scatter(out, parts)              # tensor([2., 2., 2.]) on 2 ranks
    """
    pg = _default_group("reduce_scatter", group)
    _check_group_size(input_list, pg, "reduce_scatter", "input_list")
    out, _ = _as_buffer(output, "reduce_scatter")
    for i, t in enumerate(input_list):
        _check_same(t, out, "reduce_scatter", f"input_list[{i}]")
    stacked = np.stack([t._data for t in input_list])
    return _run(pg, *_start_reduce_scatter(pg, output, out, stacked, op, "reduce_scatter"),
                async_op)


def reduce_scatter_tensor(output: Tensor, input: Tensor, op: ReduceOp = ReduceOp.SUM,
                          group: Any = None, async_op: bool = False) -> Work | None:
    """Reduce ``input`` across ranks and keep slice r (along the first dim) on rank r.

    >>> out = chainrule.empty(3)
    >>> dist.reduce_scatter_tensor(out, chainrule.ones(2 * 3))
    """
    pg = _default_group("reduce_scatter_tensor", group)
    out, _ = _as_buffer(output, "reduce_scatter_tensor")
    array, _ = _as_buffer(input, "reduce_scatter_tensor")
    _check_stacked(array, out, pg, "reduce_scatter_tensor", "input", "output")
    return _run(pg, *_start_reduce_scatter(pg, output, out, array, op, "reduce_scatter_tensor"),
                async_op)


def _start_reduce_scatter(pg: _Group, output: Tensor, out: np.ndarray, stacked: np.ndarray,
                          op: ReduceOp, caller: str) -> tuple[list, str, Any]:
    request = pg.comm.Ireduce_scatter_block(stacked, out, _mpi_op(op, out, caller, pg.mpi))
    _bump((output,))

    def finish() -> None:
        if op is ReduceOp.AVG:
            out[...] /= pg.size
        if out is not output._data:
            output._data[...] = out
    return [request], f"{caller}({op.name}) into {out.shape} {out.dtype}", finish


def _check_stacked(big: np.ndarray, small: np.ndarray, pg: _Group, caller: str, big_name: str,
                   small_name: str) -> None:
    stacked = (pg.size,) + small.shape
    concatenated = (pg.size * small.shape[0],) + small.shape[1:] if small.ndim else None
    if big.dtype != small.dtype or big.shape not in (stacked, concatenated):
        raise ValueError(
            f"{caller}: {big_name} has shape {big.shape} and dtype {big.dtype}; with "
            f"{small_name} of shape {small.shape} and dtype {small.dtype} on {pg.size} ranks it "
            f"must have shape {stacked}" + (f" or {concatenated}" if concatenated else "")
            + f" and dtype {small.dtype}"
        )


def barrier(group: Any = None, async_op: bool = False, device_ids: Any = None) -> Work | None:
    """Wait until every rank has called barrier.

    >>> dist.barrier()
    """
    pg = _default_group("barrier", group)
    return _run(pg, [pg.comm.Ibarrier()], "barrier", None, async_op)
