"""Diagnostics beyond PyTorch: what backward keeps in memory (and, later, gradient flow)."""

from .memory import (
    SavedEntry,
    SavedTensorsReport,
    saved_bytes_between,
    saved_tensors_report,
    track_modules,
    track_saved_memory,
)

__all__ = ["SavedEntry", "SavedTensorsReport", "saved_bytes_between", "saved_tensors_report",
           "track_modules", "track_saved_memory"]
