"""Jacobians row by row (reverse mode) or column by column (forward mode), shared by
``chainrule.autograd.functional`` and ``chainrule.func``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..tensor import Tensor, _wrap
from . import engine, forward_ad


def zeros_like(t: Tensor) -> Tensor:
    return _wrap(np.zeros_like(t._data))


def reverse_jacobian(outputs: Sequence[Tensor], inputs: Sequence[Tensor], create_graph: bool,
                     strict: bool = False) -> list[list[Tensor]]:
    """``J[i][j]`` = d outputs[i] / d inputs[j], shaped ``out_i.shape + in_j.shape``, one
    vector-Jacobian product per output element."""
    jac: list[list[Any]] = []
    for i, out in enumerate(outputs):
        rows: list[list[Tensor]] = [[] for _ in inputs]
        flat_size = out._data.size
        for k in range(flat_size):
            if not out._rg:
                grads = (None,) * len(inputs)
            else:
                seed = np.zeros(out._data.shape, dtype=out._data.dtype)
                seed.reshape(-1)[k] = 1
                grads = engine.grad(out, inputs, _wrap(seed), retain_graph=True,
                                    create_graph=create_graph, allow_unused=True)
            for j, g in enumerate(grads):
                if g is None:
                    if strict:
                        raise RuntimeError(
                            f"The output {i} of the user-provided function is independent of "
                            f"input {j}. This is not allowed in strict mode."
                        )
                    g = zeros_like(inputs[j])
                rows[j].append(g)
        jac.append([_stack_rows(row, out, inp) for row, inp in zip(rows, inputs)])
    return jac


def _stack_rows(rows: list, out: Tensor, inp: Tensor) -> Tensor:
    from ..ops.shape import reshape, stack

    shape = tuple(out._data.shape) + tuple(inp._data.shape)
    if not rows:
        return _wrap(np.zeros(shape, dtype=inp._data.dtype))
    return reshape(stack(rows), shape)


def forward_jacobian(func: Callable, inputs: Sequence[Tensor]) -> tuple[bool, list[list[Tensor]]]:
    """``J[i][j]`` by forward mode, one JVP per input element (columns); also whether
    ``func`` returned a tuple."""
    from ..ops.shape import reshape, stack

    columns: list[list[list[Tensor]]] = []
    outputs = None
    tuple_out = False
    for j, x in enumerate(inputs):
        per_output: list[list[Tensor]] = []
        for k in range(x._data.size):
            direction = np.zeros(x._data.shape, dtype=x._data.dtype)
            direction.reshape(-1)[k] = 1
            with forward_ad.dual_level():
                duals = [forward_ad.make_dual(t, _wrap(direction)) if i == j else t
                         for i, t in enumerate(inputs)]
                result = func(*duals)
                tuple_out = not isinstance(result, Tensor)
                outs = (result,) if isinstance(result, Tensor) else tuple(result)
                tangents = [forward_ad.unpack_dual(o).tangent for o in outs]
                outputs = [forward_ad.unpack_dual(o).primal for o in outs]
            for i, (o, t) in enumerate(zip(outs, tangents)):
                if len(per_output) <= i:
                    per_output.append([])
                per_output[i].append(t if t is not None else zeros_like(o))
        columns.append(per_output)
    jac = []
    for i, out in enumerate(outputs or []):
        row = []
        for j, x in enumerate(inputs):
            cols = columns[j][i] if columns[j] else []
            shape = tuple(out._data.shape) + tuple(x._data.shape)
            if not cols:
                row.append(_wrap(np.zeros(shape, dtype=x._data.dtype)))
                continue
            stacked = stack(cols, dim=-1)  # out.shape + (x.numel,)
            row.append(reshape(stacked, shape))
        jac.append(row)
    return tuple_out, jac
