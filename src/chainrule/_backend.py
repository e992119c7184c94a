"""The array namespace behind every Tensor.

Everything above this module asks here for the namespace of an array instead of
importing NumPy directly, so that a CuPy array (or any Array-API namespace) can
stand in later without touching the ops.
"""

from __future__ import annotations

from typing import Any

import numpy as np

xp = np
ndarray = np.ndarray


def namespace_of(array: Any) -> Any:
    """The array module that owns ``array`` (NumPy for now)."""
    return np


def is_array(value: Any) -> bool:
    return isinstance(value, (np.ndarray, np.generic))
