"""Diagnostics beyond PyTorch: what backward keeps in memory, how gradients flow through
the layers (vanishing, exploding) and what the activations look like (dead, saturated)."""

from .activations import ActivationMonitor, ActivationStats
from .gradient_flow import GradientFlag, GradientFlowTracker, GradStats, StepRecord
from .memory import (
    SavedEntry,
    SavedTensorsReport,
    saved_bytes_between,
    saved_tensors_report,
    track_modules,
    track_saved_memory,
)

__all__ = ["ActivationMonitor", "ActivationStats", "GradientFlag", "GradientFlowTracker", "GradStats",
           "StepRecord", "SavedEntry", "SavedTensorsReport", "saved_bytes_between", "saved_tensors_report",
           "track_modules", "track_saved_memory"]
