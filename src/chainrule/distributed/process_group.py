"""The default process group: MPI's world, its rank and size, the timeout, abort-on-error.

MPI is reached through mpi4py, imported only by ``init_process_group`` (importing mpi4py's
``MPI`` module starts MPI), so ``import chainrule.distributed`` stays cheap and works
where MPI is not installed. The group works on a duplicate of ``MPI.COMM_WORLD`` so that
its collectives never match messages of the program's own MPI calls.

MPI moves a non-blocking collective along only while some MPI call runs on its rank. So
that bucket all-reduces really overlap the backward pass (and an ``async_op`` collective
the caller's work), a daemon thread calls into MPI about every millisecond while any of
them is in flight (MPI is started with ``MPI_THREAD_MULTIPLE``, mpi4py's default; with a
lower thread level progress happens only when this rank tests or waits).

Two rules keep a failed job from hanging: every wait polls its requests against a
deadline (the group's ``timeout``), and an exception that nobody catches on any rank
prints its traceback and calls ``MPI_Abort``, which ends every rank of the job.
"""

from __future__ import annotations

import atexit
import importlib.util
import sys
import threading
import time
from datetime import timedelta
from typing import Any

# PyTorch's default for the gloo and MPI backends
default_pg_timeout = timedelta(minutes=30)

# Waits first spin on MPI_Test (most collectives finish within microseconds to a few
# milliseconds, and MPI only makes progress while it is called), then sleep between
# tests so that a rank waiting on a slow peer does not hold a core.
_SPIN_SECONDS = 0.002
_MAX_SLEEP_SECONDS = 0.001
# How often the progress thread calls into MPI while collectives are in flight: shorter
# moves them faster but takes more time from the compute they overlap. Two ranks on a
# 2-core machine, a 7 MB all-reduce under ~40 ms of NumPy work: polling every 0.1 ms made
# that work 2-3x slower; every 0.5 to 2 ms cost nothing measurable and hid the all-reduce.
_PROGRESS_INTERVAL_SECONDS = 0.001
# Between printing an uncaught error and MPI_Abort: the launcher forwards a rank's output
# through its proxies and drops what is still in transit when the job is killed (under
# load, tracebacks were cut short without this pause).
_ABORT_GRACE_SECONDS = 1.0


class DistError(RuntimeError):
    """Base class of the errors chainrule.distributed raises (as ``torch.distributed``)."""


class DistBackendError(DistError):
    """A collective failed or timed out in the communication backend."""


class _Progress:
    """A daemon thread that calls into MPI while anyone holds it (``hold``/``release``)."""

    def __init__(self, mpi: Any, comm: Any) -> None:
        self._probe = lambda: comm.Iprobe(mpi.ANY_SOURCE, mpi.ANY_TAG)
        self._holders = 0
        self._lock = threading.Lock()
        self._active = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="chainrule-mpi-progress",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            self._active.wait()
            if self._closed:
                return
            self._probe()  # any MPI call drives the progress engine; nothing can match this probe
            time.sleep(_PROGRESS_INTERVAL_SECONDS)

    def hold(self) -> None:
        with self._lock:
            self._holders += 1
            self._active.set()

    def release(self) -> None:
        with self._lock:
            self._holders -= 1
            if self._holders == 0:
                self._active.clear()

    def close(self) -> None:
        self._closed = True
        self._active.set()
        self._thread.join(timeout=5)


class _NoProgress:
    """Stands in for _Progress when MPI was started without MPI_THREAD_MULTIPLE."""

    def hold(self) -> None:
        pass

    def release(self) -> None:
        pass

    def close(self) -> None:
        pass


class _Group:
    __slots__ = ("mpi", "comm", "rank", "size", "timeout", "previous_excepthook", "progress")

    def __init__(self, mpi: Any, comm: Any, timeout: timedelta) -> None:
        self.mpi = mpi
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.timeout = timeout
        self.previous_excepthook = None
        threaded = mpi.Query_thread() == mpi.THREAD_MULTIPLE
        self.progress = _Progress(mpi, comm) if threaded and self.size > 1 else _NoProgress()


_group: _Group | None = None


def is_available() -> bool:
    """Whether the distributed package is there (it always is; MPI may still be missing).

    >>> chainrule.distributed.is_available()
    True
    """
    return True


def is_mpi_available() -> bool:
    """Whether mpi4py can be imported, so that ``backend="mpi"`` can start.

    >>> chainrule.distributed.is_mpi_available()    # pip install 'chainrule[distributed]'
    """
    return importlib.util.find_spec("mpi4py") is not None


def is_initialized() -> bool:
    """Whether ``init_process_group`` has run (and ``destroy_process_group`` has not).

    >>> chainrule.distributed.is_initialized()
    False
    """
    return _group is not None


def init_process_group(backend: str | None = None, init_method: str | None = None,
                       timeout: timedelta | None = None, world_size: int = -1, rank: int = -1,
                       store: Any = None, group_name: str = "", pg_options: Any = None,
                       device_id: Any = None) -> None:
    """Join the job's process group: every process started by ``mpiexec -n N``.

    Rank and world size come from MPI; ``world_size`` and ``rank``, when given, are
    checked against them. ``timeout`` bounds every collective's wait (30 minutes by
    default, as PyTorch); past it the collective raises instead of hanging. From here on
    an uncaught exception on any rank aborts the whole job.

    >>> import chainrule.distributed as dist
    >>> dist.init_process_group(backend="mpi")      # under: mpiexec -n 2 python train.py
    >>> dist.get_rank(), dist.get_world_size()
    (0, 2)
    """
    global _group
    if _group is not None:
        raise RuntimeError("trying to initialize the default process group twice!")
    if backend is not None and str(backend).lower() != "mpi":
        raise ValueError(
            f"init_process_group: backend {backend!r} is not supported; chainrule.distributed "
            f"runs over MPI: pass backend='mpi' and launch with 'mpiexec -n N python script.py'"
        )
    if init_method not in (None, "env://") or store is not None:
        raise ValueError(
            "init_process_group: MPI finds its peers through mpiexec, so init_method and store "
            "must be left unset"
        )
    if timeout is not None and not isinstance(timeout, timedelta):
        raise TypeError(f"init_process_group: timeout must be a datetime.timedelta, got {timeout!r}")
    if not is_mpi_available():
        raise RuntimeError(
            "init_process_group(backend='mpi') needs mpi4py and an MPI library: "
            "pip install 'chainrule[distributed]' (mpi4py and MPICH), or mpi4py built against "
            "your cluster's MPI"
        )
    from mpi4py import MPI

    world = MPI.COMM_WORLD
    if world_size not in (-1, None) and world_size != world.Get_size():
        raise ValueError(
            f"init_process_group: world_size={world_size} but mpiexec started "
            f"{world.Get_size()} processes; leave world_size unset or launch with "
            f"'mpiexec -n {world_size}'"
        )
    if rank not in (-1, None) and rank != world.Get_rank():
        raise ValueError(
            f"init_process_group: rank={rank} but MPI gave this process rank "
            f"{world.Get_rank()}; leave rank unset (MPI assigns ranks)"
        )
    group = _Group(MPI, world.Dup(), timeout or default_pg_timeout)
    # registered after mpi4py's MPI_Finalize hook, so it runs first: no MPI call from the
    # progress thread may overlap finalization
    atexit.register(group.progress.close)
    group.previous_excepthook = sys.excepthook
    sys.excepthook = _abort_on_uncaught_exception
    _group = group


def destroy_process_group(group: Any = None) -> None:
    """Leave the process group: free its communicator and stop aborting on uncaught errors.

    MPI itself stays up (it cannot restart in the same process) and is finalized at exit,
    so ``init_process_group`` may be called again.

    >>> chainrule.distributed.destroy_process_group()
    """
    global _group
    current = _default_group("destroy_process_group", group)
    _group = None
    if sys.excepthook is _abort_on_uncaught_exception:
        sys.excepthook = current.previous_excepthook
    current.progress.close()
    atexit.unregister(current.progress.close)
    current.comm.Free()


def get_rank(group: Any = None) -> int:
    """This process's rank, 0 to world size - 1.

    >>> chainrule.distributed.get_rank()
    0
    """
    return _default_group("get_rank", group).rank


def get_world_size(group: Any = None) -> int:
    """The number of processes in the group.

    >>> chainrule.distributed.get_world_size()
    2
    """
    return _default_group("get_world_size", group).size


def get_backend(group: Any = None) -> str:
    """The group's backend: always ``"mpi"``.

    >>> chainrule.distributed.get_backend()
    'mpi'
    """
    _default_group("get_backend", group)
    return "mpi"


def _default_group(caller: str, group: Any = None) -> _Group:
    if group is not None and group is not _group:
        raise NotImplementedError(
            f"{caller}: only the default group (group=None) is supported; new_group is not "
            f"implemented"
        )
    if _group is None:
        raise ValueError(
            f"{caller}: Default process group has not been initialized, please make sure to "
            f"call init_process_group."
        )
    return _group


def wait_all(group: _Group, requests: list, what: str, timeout: timedelta | None = None) -> None:
    """Wait for MPI requests, polling, and raise DistBackendError past the deadline."""
    test_all = group.mpi.Request.Testall
    if test_all(requests):
        return
    limit = (timeout or group.timeout).total_seconds()
    start = time.perf_counter()
    delay = 1e-5
    while not test_all(requests):
        elapsed = time.perf_counter() - start
        if elapsed > limit:
            raise DistBackendError(
                f"{what} timed out after {limit:g} s on rank {group.rank} of {group.size}: "
                f"another rank has not reached the same collective (it may have failed, hung, "
                f"or called a different collective). This rank's uncaught error aborts the job; "
                f"pass a longer timeout= to init_process_group if the ranks are only slow."
            )
        if elapsed > _SPIN_SECONDS:
            time.sleep(delay)
            delay = min(delay * 2, _MAX_SLEEP_SECONDS)


def _abort_on_uncaught_exception(exc_type: type, exc: BaseException, tb: Any) -> None:
    # Other ranks may be blocked in a collective that this rank will never reach: print
    # the traceback, then end every process of the job rather than let them wait.
    group = _group
    previous = group.previous_excepthook if group is not None else sys.__excepthook__
    previous(exc_type, exc, tb)
    if group is not None:
        print(f"chainrule.distributed: uncaught {exc_type.__name__} on rank {group.rank}; "
              f"aborting all {group.size} ranks", file=sys.stderr)
        sys.stderr.flush()
        sys.stdout.flush()
        time.sleep(_ABORT_GRACE_SECONDS)
        group.mpi.COMM_WORLD.Abort(1)
