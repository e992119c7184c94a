"""Datasets, samplers and the DataLoader (``chainrule.utils.data``).

>>> from chainrule.utils.data import DataLoader, TensorDataset
>>> loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)
"""

from ._collate import default_collate, default_convert
from .dataloader import DataLoader
from .dataset import ConcatDataset, Dataset, IterableDataset, Subset, TensorDataset, random_split
from .distributed import DistributedSampler
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

__all__ = [
    "DataLoader", "Dataset", "IterableDataset", "TensorDataset", "ConcatDataset", "Subset",
    "random_split", "Sampler", "SequentialSampler", "RandomSampler", "BatchSampler",
    "DistributedSampler",
    "default_collate", "default_convert",
]
