"""Optimizers (``chainrule.optim``) and learning-rate schedules (``chainrule.optim.lr_scheduler``).

>>> opt = chainrule.optim.Adam(model.parameters(), lr=1e-3)
>>> sched = chainrule.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
"""

from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .lbfgs import LBFGS
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "Adagrad", "RMSprop", "LBFGS", "lr_scheduler"]
