"""``nn.Parameter``: a tensor that a Module registers as one of its learnable weights."""

from __future__ import annotations

import numpy as np

from .. import _dtype
from ..tensor import Tensor, _wrap

_new = object.__new__


class Parameter(Tensor):
    """A Tensor that is a module parameter: assigning one to a Module attribute registers it.

    It shares ``data``'s storage and requires grad by default, as ``torch.nn.Parameter``.

    >>> w = chainrule.nn.Parameter(chainrule.zeros(2))
    >>> w
    Parameter containing:
    tensor([0., 0.], requires_grad=True)
    """

    __slots__ = ()

    def __new__(cls, data: Tensor | None = None, requires_grad: bool = True) -> Parameter:
        if data is None:
            array = np.empty((0,), dtype=_dtype.get_default_dtype().np)
            version = [0]
        elif isinstance(data, Tensor):
            array, version = data._data, data._version
        else:
            raise TypeError(
                f"Parameter(): expected a Tensor as data, got {type(data).__name__}; wrap it "
                f"with chainrule.tensor(...) first"
            )
        param = _new(cls)
        param._data = array
        param._version = version
        param._rg = False
        param.grad = param.grad_fn = param._base = param._extra = None
        if requires_grad:
            param.requires_grad_(True)
        return param

    def __init__(self, data: Tensor | None = None, requires_grad: bool = True) -> None:
        pass  # everything happens in __new__; Tensor.__init__ would rebuild the array

    def __repr__(self) -> str:
        shown = _wrap(self._data)
        shown._rg = self._rg
        return "Parameter containing:\n" + repr(shown)
