"""``chainrule.cuda``: the GPU through CuPy, with ``torch.cuda``'s names.

CuPy is optional (``pip install 'chainrule[cuda]'``). Without it chainrule runs on the
CPU, ``is_available()`` is False and moving a tensor to ``cuda`` raises an error saying
how to install it.

>>> import chainrule as torch
>>> device = "cuda" if torch.cuda.is_available() else "cpu"
>>> x = torch.ones(3, device=device)
"""

from __future__ import annotations

from typing import Any

from . import _backend
from .ops import creation


def is_available() -> bool:
    """Whether a CUDA device can be used (CuPy installed and at least one GPU found)."""
    return device_count() > 0


def device_count() -> int:
    """How many CUDA devices CuPy sees (0 without CuPy or without a GPU)."""
    try:
        return _backend.backend("cuda").device_count()
    except Exception:  # no CuPy, or CuPy without a driver: CUDA is simply not available
        return 0


def synchronize(device: Any = None) -> None:
    """Wait for the kernels queued on a CUDA device (the current one by default) to finish."""
    index = None if device is None else _backend.resolve(device).index
    _backend.backend("cuda").synchronize(index)


def current_device() -> int:
    """The index of the current CUDA device (0: chainrule puts tensors on ``cuda:0`` unless
    told otherwise)."""
    _backend.check_available(_backend.device("cuda", 0))
    return 0


def manual_seed(seed: int) -> None:
    """Seed the generator CUDA tensors draw from (``randn(..., device='cuda')``). Samples
    are drawn on the host and moved, so a seed gives the same numbers on every device."""
    creation.cuda_generator.manual_seed(seed)


def manual_seed_all(seed: int) -> None:
    """Seed the generator of every CUDA device (one generator serves them all)."""
    creation.cuda_generator.manual_seed(seed)


def initial_seed() -> int:
    return creation.cuda_generator.initial_seed()
