"""Primitives (forward kernel + derivative rules) and the public ops built on them."""

from ..autograd import engine, forward_ad
from . import movement
from .creation import *  # noqa: F403
from .creation import Generator, default_generator
from .math import *  # noqa: F403
from .namespace import array_namespace, tensor_namespace
from .shape import *  # noqa: F403

engine.set_namespaces(array_namespace, tensor_namespace)
forward_ad.set_graph_alias(lambda t: movement.reshape(t, shape=t._data.shape, in_shape=t._data.shape))

__all__ = ["Generator", "default_generator"]
