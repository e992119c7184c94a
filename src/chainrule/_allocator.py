"""Keep freed array memory in the process for the next array, on glibc's malloc.

A training step allocates and frees the same large temporaries (activations, gradients,
im2col columns) every step. glibc serves a block above its mmap threshold with fresh pages
and gives the top of its heap back to the system once more than the trim threshold is
free there, so every step pays a page fault (and the kernel zeroing the page) per 4 KiB
of those arrays: 5,700 faults and 24 ms of system time in the CNN step of
benchmarks/workloads.py, 3,300 faults and 9 ms in the LSTM step (benchmarks/NOTES.md).
Raising both thresholds keeps freed blocks in the heap for reuse, as PyTorch's caching
allocators do for their own memory. The cost: memory freed after a peak stays with the
process (its peak resident size does not grow).

It is process-wide, so chainrule asks for it once, at import, where the C library is
glibc; ``CHAINRULE_KEEP_FREED_MEMORY=0`` in the environment leaves malloc as it is.
"""

from __future__ import annotations

import ctypes
import os
import sys

# mallopt's parameter numbers (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# glibc refuses an mmap threshold above half its largest heap (32 MiB on 64-bit builds
# that check it): ask for 1 GiB, then for that
_THRESHOLDS = (1 << 30, 32 << 20)
ENVIRONMENT_SWITCH = "CHAINRULE_KEEP_FREED_MEMORY"


def keep_freed_memory() -> bool:
    """Raise glibc malloc's mmap and trim thresholds (see the module's docstring); returns
    whether they were set: False off glibc or when the environment switch is "0".

    >>> keep_freed_memory()  # on Linux with glibc
    True
    """
    if os.environ.get(ENVIRONMENT_SWITCH, "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 (present on glibc only: musl has no such call)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    for threshold in _THRESHOLDS:
        if mallopt(_M_MMAP_THRESHOLD, threshold):
            # the trim threshold: at least the mmap one, or freed blocks go back at once
            return bool(mallopt(_M_TRIM_THRESHOLD, threshold))
    return False
