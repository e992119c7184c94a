"""Neural-network building blocks (``chainrule.nn``)."""

from . import functional

__all__ = ["functional"]
