"""Neural-network building blocks (``chainrule.nn``), with PyTorch's names.

>>> import chainrule.nn as nn
>>> net = nn.Sequential(nn.Linear(2, 4), nn.Sigmoid(), nn.Linear(4, 1))
"""

from . import functional, init
from .modules import (
    Bilinear,
    Identity,
    Linear,
    Module,
    ModuleDict,
    ModuleList,
    ParameterDict,
    ParameterList,
    Sequential,
)
from .parameter import Parameter

__all__ = [
    "functional", "init", "Parameter", "Module", "Sequential", "ModuleList", "ModuleDict",
    "ParameterList", "ParameterDict", "Identity", "Linear", "Bilinear",
]
