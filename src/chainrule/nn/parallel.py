"""``chainrule.nn.parallel``: PyTorch's path to DistributedDataParallel.

>>> from chainrule.nn.parallel import DistributedDataParallel as DDP
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # resolved on first use: chainrule.distributed builds on chainrule.nn
    if name == "DistributedDataParallel":
        from ..distributed import DistributedDataParallel

        return DistributedDataParallel
    raise AttributeError(f"module 'chainrule.nn.parallel' has no attribute {name!r}")
