"""Data-parallel training across processes and machines over MPI (``torch.distributed``).

Launch one process per rank with ``mpiexec -n N python train.py``; each calls
``init_process_group(backend="mpi")``, wraps its model in ``DistributedDataParallel``
and reads its share of the data through ``chainrule.utils.data.DistributedSampler``.
Needs mpi4py and an MPI library: ``pip install 'chainrule[distributed]'``.

>>> import chainrule.distributed as dist
>>> dist.init_process_group(backend="mpi")
>>> t = chainrule.ones(3)
>>> dist.all_reduce(t)                 # tensor([2., 2., 2.]) on each of 2 ranks
"""

from .collectives import (
    ReduceOp,
    Work,
    all_gather,
    all_gather_into_tensor,
    all_reduce,
    barrier,
    broadcast,
    reduce_scatter,
    reduce_scatter_tensor,
)
from .data_parallel import DistributedDataParallel
from .process_group import (
    DistBackendError,
    DistError,
    default_pg_timeout,
    destroy_process_group,
    get_backend,
    get_rank,
    get_world_size,
    init_process_group,
    is_available,
    is_initialized,
    is_mpi_available,
)

__all__ = [
    "init_process_group", "destroy_process_group", "is_available", "is_mpi_available",
    "is_initialized", "get_rank", "get_world_size", "get_backend", "barrier", "all_reduce",
    "broadcast", "all_gather", "all_gather_into_tensor", "reduce_scatter",
    "reduce_scatter_tensor", "ReduceOp", "Work", "DistributedDataParallel", "DistError",
    "DistBackendError", "default_pg_timeout",
]
