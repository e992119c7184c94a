"""Mixed precision, as ``torch.amp``: ``autocast`` runs the matrix products in bfloat16 or
float16 and keeps losses in float32; ``GradScaler`` scales the loss so that float16
gradients do not underflow, and skips the steps whose gradients overflowed.

>>> scaler = chainrule.amp.GradScaler("cpu")
>>> with chainrule.amp.autocast(device_type="cpu", dtype=chainrule.bfloat16):
...     loss = F.cross_entropy(model(x), y)
>>> scaler.scale(loss).backward()
>>> scaler.step(optimizer)
>>> scaler.update()
"""

from . import autocast_mode
from .autocast_mode import autocast, is_autocast_available
from .grad_scaler import GradScaler

__all__ = ["autocast", "GradScaler", "is_autocast_available", "autocast_mode"]
