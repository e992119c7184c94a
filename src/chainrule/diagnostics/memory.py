"""What backward keeps: the arrays each node saved, and the peak of saved bytes in a step.

Backprop's memory cost is the activations the forward pass keeps for the backward pass.
``saved_tensors_report(loss)`` lists them node by node (grouped by op, and by module
inside ``track_modules``); ``track_saved_memory()`` counts saved bytes as nodes are made
and released and keeps the peak. An array shared by several nodes, or several views of
one array, is counted once, by the memory that holds it.

>>> report = chainrule.diagnostics.saved_tensors_report(loss)
>>> print(report)                      # table by op, total bytes
>>> with chainrule.diagnostics.track_saved_memory() as memory:
...     loss = model(x).sum(); loss.backward()
>>> memory.peak_bytes
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..autograd import engine
from ..autograd.function import Function
from ..autograd.graph import Node
from ..ops import _primitive
from ..tensor import Tensor

__all__ = ["saved_tensors_report", "SavedTensorsReport", "SavedEntry", "track_saved_memory",
           "track_modules", "saved_bytes_between"]


def _owner(array: Any) -> Any:
    """The array whose memory ``array`` uses (a view's base, followed to the end)."""
    while getattr(array, "base", None) is not None and hasattr(array.base, "nbytes"):
        array = array.base
    return array


def _saved_arrays(node: Node) -> list:
    """The arrays ``node`` holds for its backward rule."""
    saved = node.saved
    if not saved:
        return []
    arrays = []
    for item in saved:
        if isinstance(item, tuple):  # a custom Function's entry: (tensor or array, ...)
            item = item[0]
        if isinstance(item, Tensor):
            item = item._data
        if hasattr(item, "nbytes"):
            arrays.append(item)
    return arrays


def _nodes(output: Tensor, stop: Any = None) -> list:
    """Every node of the graph behind ``output`` (each once), not going past ``stop``."""
    start = output.grad_fn
    if start is None:
        return []
    order, seen, stack = [], {id(start)}, [start]
    while stack:
        node = stack.pop()
        order.append(node)
        for edge in node.edges:
            if type(edge) is Node and id(edge) not in seen and edge is not stop:
                seen.add(id(edge))
                stack.append(edge)
    return order


@dataclass(frozen=True)
class SavedEntry:
    """One node and what it saved."""

    op: str
    shapes: tuple
    dtypes: tuple
    nbytes: int  # bytes of memory first counted at this node (shared arrays count once)
    module: str | None


@dataclass
class SavedTensorsReport:
    """The saved arrays of a graph: per node, per op, per module, and the total."""

    entries: list = field(default_factory=list)
    total_bytes: int = 0

    @property
    def by_op(self) -> dict:
        totals: dict = defaultdict(int)
        for entry in self.entries:
            totals[entry.op] += entry.nbytes
        return dict(totals)

    @property
    def by_module(self) -> dict:
        totals: dict = defaultdict(int)
        for entry in self.entries:
            totals[entry.module or "(outside modules)"] += entry.nbytes
        return dict(totals)

    def __str__(self) -> str:
        lines = [f"{'op':24} {'module':20} {'saved shapes':36} {'bytes':>12}"]
        for entry in self.entries:
            shapes = ", ".join(f"{list(s)}:{d}" for s, d in zip(entry.shapes, entry.dtypes))
            lines.append(f"{entry.op:24} {entry.module or '-':20} {shapes:36} {entry.nbytes:12,d}")
        lines.append("")
        for op, nbytes in sorted(self.by_op.items(), key=lambda kv: -kv[1]):
            lines.append(f"{op:24} {nbytes:12,d}")
        lines.append(f"{'total':24} {self.total_bytes:12,d}")
        return "\n".join(lines)


def saved_tensors_report(output: Tensor) -> SavedTensorsReport:
    """The arrays the graph behind ``output`` keeps for backward, node by node."""
    report = SavedTensorsReport()
    counted: set = set()
    for node in _nodes(output):
        arrays = _saved_arrays(node)
        if not arrays:
            continue
        fresh = 0
        for array in arrays:
            owner = _owner(array)
            if id(owner) not in counted:
                counted.add(id(owner))
                fresh += owner.nbytes
        report.entries.append(SavedEntry(
            op=node.name(), shapes=tuple(tuple(a.shape) for a in arrays),
            dtypes=tuple(str(a.dtype) for a in arrays), nbytes=fresh,
            module=_module_of.get(node),
        ))
        report.total_bytes += fresh
    return report


def saved_bytes_between(output: Tensor, input: Tensor, activations_only: bool = True) -> int:
    """Bytes saved by the nodes between ``input`` and ``output`` (shared memory once);
    ``activations_only`` leaves out the leaves' own arrays (parameters), which stay alive
    whatever backward keeps."""
    counted: set = set()
    total = 0
    for node in _nodes(output, stop=input.grad_fn):
        leaves = {id(e._data) for e in node.edges if isinstance(e, Tensor)} if activations_only else ()
        for array in _saved_arrays(node):
            if id(array) in leaves:
                continue
            owner = _owner(array)
            if id(owner) not in counted:
                counted.add(id(owner))
                total += owner.nbytes
    return total


# ------------------------------------------------------------------ modules
# node -> qualified name of the module whose forward made it, filled inside track_modules
_module_of: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@contextmanager
def track_modules(model: Any) -> Iterator[None]:
    """Attribute the nodes made inside each submodule's forward to that module (by name)
    for ``saved_tensors_report``. Forward hooks do the bookkeeping; nothing is left behind."""
    handles = []
    names = {id(m): name or type(m).__name__ for name, m in model.named_modules()}

    def record(module: Any, inputs: tuple, output: Any) -> None:
        stops = {id(t.grad_fn) for t in inputs if isinstance(t, Tensor) and t.grad_fn is not None}
        outputs = output if isinstance(output, tuple) else (output,)
        for out in outputs:
            if not isinstance(out, Tensor):
                continue
            for node in _nodes(out):
                if id(node) in stops:
                    continue
                # the innermost module claims a node first (hooks fire inside out)
                _module_of.setdefault(node, names[id(module)])

    for module in model.modules():
        handles.append(module.register_forward_hook(record))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


# ------------------------------------------------------------------ live saved bytes
class SavedMemory:
    """Saved bytes alive now and the most seen at once, while tracking."""

    def __init__(self, activations_only: bool) -> None:
        self.activations_only = activations_only
        self.current_bytes = 0
        self.peak_bytes = 0
        self._owners: dict = {}  # id(owner array) -> [users, nbytes, weakref to owner]
        self._nodes: dict = {}  # id(node) -> ids of the owners it holds

    def _hold(self, node: Node) -> None:
        arrays = _saved_arrays(node)
        if not arrays or id(node) in self._nodes:
            return
        if self.activations_only:
            leaves = {id(e._data) for e in node.edges if isinstance(e, Tensor)}
            arrays = [a for a in arrays if id(a) not in leaves]
        keys = []
        for array in arrays:
            owner = _owner(array)
            key = id(owner)
            entry = self._owners.get(key)
            if entry is None or entry[2]() is not owner:
                self._owners[key] = [1, owner.nbytes, weakref.ref(owner)]
                self.current_bytes += owner.nbytes
            else:
                entry[0] += 1
            keys.append(key)
        self._nodes[id(node)] = keys
        self.peak_bytes = max(self.peak_bytes, self.current_bytes)
        weakref.finalize(node, self._release_id, id(node))

    def _release(self, node: Node) -> None:
        self._release_id(id(node))

    def _release_id(self, node_id: int) -> None:
        for key in self._nodes.pop(node_id, ()):
            entry = self._owners.get(key)
            if entry is None:
                continue
            entry[0] -= 1
            if entry[0] == 0:
                self.current_bytes -= entry[1]
                del self._owners[key]


@contextmanager
def track_saved_memory(activations_only: bool = False) -> Iterator[SavedMemory]:
    """Count the bytes of arrays saved for backward while inside; ``peak_bytes`` is the most
    held at once. ``activations_only`` leaves out the leaves' own arrays (parameters, which
    stay alive anyway). Off, it costs nothing: it swaps in a counting call only while active."""
    memory = SavedMemory(activations_only)
    plain_call = _primitive.Primitive.__call__

    def counting_call(prim: Any, *inputs: Tensor, **params: Any) -> Tensor:
        result = plain_call(prim, *inputs, **params)
        if result.grad_fn is not None:
            memory._hold(result.grad_fn)
        return result

    # custom Functions (checkpoint among them) save through ctx, not through a primitive
    plain_apply = Function.apply.__func__

    def counting_apply(cls: type, *args: Any, **kwargs: Any) -> Any:
        result = plain_apply(cls, *args, **kwargs)
        for out in (result if isinstance(result, tuple) else (result,)):
            node = out.grad_fn if isinstance(out, Tensor) else None
            if node is not None and node.prim.save == () and node.edges:
                node = node.edges[0]  # one output of several: the Function's own node
            if node is not None:
                memory._hold(node)
        return result

    _primitive.Primitive.__call__ = counting_call
    Function.apply = classmethod(counting_apply)
    engine.release_hook = memory._release
    try:
        yield memory
    finally:
        _primitive.Primitive.__call__ = plain_call
        Function.apply = classmethod(plain_apply)
        engine.release_hook = None
