"""The backward graph's node: one per operation result that needs a gradient."""

from __future__ import annotations

from typing import Any


class Node:
    """What backward needs to push a gradient through one operation.

    ``edges[i]`` says where the gradient for input ``i`` goes: the Node that made that
    input, the input itself when it is a leaf that requires grad, or None when no
    gradient is needed (so ``needs_input_grad[i]`` is ``edges[i] is not None``).
    ``saved`` holds the arrays the rule needs (inputs, output or forward by-products);
    ``versions`` the version counters of saved tensors as they were when saved;
    ``tangents`` the forward-mode tangents of the saved tensors when the node was made
    inside a dual level (so that a backward pass recorded there carries them: forward over
    reverse).
    """

    __slots__ = (
        "prim", "edges", "saved", "versions", "params", "shapes", "needs",
        "hooks", "retained", "tangents", "__weakref__",
    )

    def __init__(
        self,
        prim: Any,
        edges: tuple,
        saved: tuple,
        versions: tuple,
        params: dict,
        shapes: tuple | None,
        needs: tuple,
    ) -> None:
        self.prim = prim
        self.edges = edges
        self.saved = saved
        self.versions = versions
        self.params = params
        self.shapes = shapes
        self.needs = needs
        self.hooks = None
        self.retained = None
        self.tangents = None

    def name(self) -> str:
        """PyTorch-style name, e.g. ``MulBackward0``.

        A rule's ``backward_name`` is a string, or a function of the node where PyTorch's
        name depends on the call (``sum()`` is ``SumBackward0``, ``sum(dim)``
        ``SumBackward1``): worked out here, so recording a node costs nothing for it.
        """
        name = self.prim.backward_name
        return name if type(name) is str else name(self)

    @property
    def next_functions(self) -> tuple:
        """The nodes (or leaves) this node sends gradients to, as in PyTorch."""
        return tuple((edge, 0) for edge in self.edges)

    @property
    def needs_input_grad(self) -> tuple:
        return self.needs

    def __repr__(self) -> str:
        return f"<{self.name()} object at {id(self):#x}>"
