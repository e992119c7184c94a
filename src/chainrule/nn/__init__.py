"""Neural-network building blocks (``chainrule.nn``), with PyTorch's names.

>>> import chainrule.nn as nn
>>> net = nn.Sequential(nn.Linear(2, 4), nn.Sigmoid(), nn.Linear(4, 1))
"""

from . import functional, init, utils
from .modules import *  # noqa: F403 - every layer, listed in modules.__all__
from .modules import __all__ as _modules_all
from .parameter import Parameter

__all__ = ["functional", "init", "Parameter", *_modules_all]

# convolution and pooling layers
from .modules.conv import Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d  # noqa: E402
from .modules.pooling import (  # noqa: E402
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AvgPool1d,
    AvgPool2d,
    MaxPool1d,
    MaxPool2d,
)

__all__ += [
    "Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d", "MaxPool1d", "MaxPool2d",
    "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d",
]

# recurrent layers
from .modules.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell  # noqa: E402

__all__ += ["RNNBase", "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"]

# attention and transformer layers
from .modules.attention import MultiheadAttention  # noqa: E402
from .modules.transformer import TransformerEncoder, TransformerEncoderLayer  # noqa: E402

__all__ += ["MultiheadAttention", "TransformerEncoderLayer", "TransformerEncoder"]

# torch.nn.parallel.DistributedDataParallel (resolved lazily: chainrule.distributed builds on nn)
from . import parallel  # noqa: E402
