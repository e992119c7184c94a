"""The error catalogue: each common mistake, and what its message must say. A message
names the op, the shapes (or dtypes) involved and what to do, and it is raised where the
mistake is made (DESIGN.md, Errors)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple

import pytest

import chainrule as cr
import chainrule.nn as nn
import chainrule.nn.functional as F


class Mistake(NamedTuple):
    name: str
    make: Callable[[], Any]
    error: type
    says: tuple[str, ...]  # regular expressions the message must contain: op, shapes, advice


def _backward_twice() -> None:
    x = cr.randn(3, requires_grad=True)
    y = (x * x).sum()
    y.backward()
    y.backward()


def _inplace_on_saved() -> None:
    x = cr.randn(3, requires_grad=True)
    h = x * 2
    y = h.sin()  # sin saves its input h
    h.add_(1)
    y.sum().backward()


def _inplace_on_leaf() -> None:
    w = cr.randn(3, requires_grad=True)
    w.sub_(0.1)


def _load(state: dict) -> None:
    nn.Linear(3, 4).load_state_dict(state)


MISTAKES = [
    Mistake("matmul shapes", lambda: cr.randn(2, 3) @ cr.randn(4, 5), RuntimeError,
            (r"matmul", r"\(2, 3\)", r"\(4, 5\)", r"must equal")),
    Mistake("matmul vectors", lambda: cr.matmul(cr.randn(3), cr.randn(4)), RuntimeError,
            (r"matmul", r"\(3,\)", r"\(4,\)", r"must equal")),
    Mistake("bmm batch", lambda: cr.bmm(cr.randn(2, 2, 3), cr.randn(3, 3, 5)), RuntimeError,
            (r"bmm", r"\(2, 2, 3\)", r"\(3, 3, 5\)", r"same batch size")),
    Mistake("Linear in_features", lambda: nn.Linear(3, 4)(cr.randn(2, 5)), RuntimeError,
            (r"linear", r"\(2, 5\)", r"\(4, 3\)", r"expected weight \(out_features, 5\)")),
    Mistake("Conv2d in_channels", lambda: nn.Conv2d(3, 8, 3)(cr.randn(1, 4, 8, 8)), RuntimeError,
            (r"conv2d", r"\(1, 4, 8, 8\)", r"\(8, 3, 3, 3\)", r"in_channels=4")),
    Mistake("Conv1d in_channels", lambda: nn.Conv1d(3, 8, 3)(cr.randn(1, 4, 8)), RuntimeError,
            (r"conv1d", r"\(1, 4, 8\)", r"\(8, 3, 3\)", r"in_channels=4")),
    Mistake("Conv2d input rank", lambda: nn.Conv2d(3, 8, 3)(cr.randn(3, 8)), RuntimeError,
            (r"conv2d", r"\(3, 8\)", r"3-D \(unbatched\) or 4-D")),
    Mistake("Conv2d input too small", lambda: nn.Conv2d(3, 8, 5)(cr.randn(1, 3, 2, 2)),
            RuntimeError, (r"conv2d", r"\(2, 2\)", r"\(5, 5\)", r"smaller kernel or more padding")),
    Mistake("BatchNorm num_features", lambda: nn.BatchNorm1d(3)(cr.randn(4, 5)), RuntimeError,
            (r"batch_norm", r"\(4, 5\)", r"3 elements", r"num_features=5")),
    Mistake("LayerNorm shape", lambda: nn.LayerNorm(4)(cr.randn(2, 3)), RuntimeError,
            (r"layer_norm", r"\[2, 3\]", r"\[4\]", r"expected input with shape \[\*, 4\]")),
    Mistake("mse_loss shapes", lambda: F.mse_loss(cr.randn(3), cr.randn(4)), RuntimeError,
            (r"mse_loss", r"\(3,\)", r"\(4,\)", r"give the target the input's shape")),
    Mistake("l1_loss shapes", lambda: F.l1_loss(cr.randn(2, 3), cr.randn(2, 4)), RuntimeError,
            (r"l1_loss", r"\(2, 3\)", r"\(2, 4\)", r"give the target the input's shape")),
    Mistake("cross_entropy batch", lambda: F.cross_entropy(cr.randn(4, 3), cr.tensor([0, 1])),
            ValueError, (r"cross_entropy", r"\(4, 3\)", r"\(2,\)", r"expected target of shape \(4,\)")),
    Mistake("cross_entropy float targets", lambda: F.cross_entropy(
        cr.randn(4, 3), cr.tensor([0.0, 1.0, 2.0, 1.0])), ValueError,
        (r"cross_entropy", r"\(4, 3\)", r"\(4,\)", r"target\.long\(\)")),
    Mistake("cross_entropy class out of range", lambda: F.cross_entropy(
        cr.randn(4, 3), cr.tensor([0, 1, 5, 1])), IndexError,
        (r"cross_entropy", r"Target 5", r"3 classes")),
    Mistake("nll_loss float targets", lambda: F.nll_loss(
        cr.randn(4, 3), cr.tensor([0.0, 1.0, 2.0, 1.0])), RuntimeError,
        (r"nll_loss", r"float32", r"\(4,\)", r"target\.long\(\)")),
    Mistake("binary_cross_entropy of logits", lambda: F.binary_cross_entropy(
        cr.randn(3) * 5, cr.rand(3)), RuntimeError,
        (r"binary_cross_entropy", r"between 0 and 1", r"binary_cross_entropy_with_logits")),
    Mistake("broadcasting", lambda: cr.randn(2, 3) + cr.randn(4), RuntimeError,
            (r"add", r"\(2, 3\)", r"\(4,\)", r"equal or 1")),
    Mistake("reshape size", lambda: cr.randn(2, 3).view(4, 2), RuntimeError,
            (r"reshape|view", r"\[4, 2\]", r"\(2, 3\)", r"size 6")),
    Mistake("cat sizes", lambda: cr.cat([cr.randn(2, 3), cr.randn(2, 4)]), RuntimeError,
            (r"cat", r"\(2, 3\)", r"\(2, 4\)", r"must match except in dimension 0")),
    Mistake("backward twice", _backward_twice, RuntimeError,
            (r"backward through the graph a second time", r"MulBackward0",
             r"retain_graph=True")),
    Mistake("non-scalar backward", lambda: (cr.randn(3, requires_grad=True) * 2).backward(),
            RuntimeError, (r"scalar outputs", r"\(3,\)", r"pass gradient=")),
    Mistake("backward of a constant", lambda: cr.randn(3).sum().backward(), RuntimeError,
            (r"does not require grad", r"no_grad or detach")),
    Mistake("grad of a non-leaf constant", lambda: cr.autograd.grad(
        (cr.randn(3, requires_grad=True) * 2).sum(), cr.randn(3)), RuntimeError,
        (r"grad", r"input 0", r"\(3,\)", r"requires_grad=True")),
    Mistake("in-place on a saved tensor", _inplace_on_saved, RuntimeError,
            (r"modified by an inplace operation", r"SinBackward0", r"\[3\]", r"version 1",
             r"Clone it")),
    Mistake("in-place on a leaf", _inplace_on_leaf, RuntimeError,
            (r"sub_", r"leaf Variable", r"\(3,\)", r"no_grad")),
    Mistake("in-place on an expanded tensor", lambda: cr.zeros(1, 3).expand(2, 3).add_(1),
            RuntimeError, (r"add_", r"\(2, 3\)", r"single memory location", r"clone\(\)")),
    Mistake("requires_grad on integers", lambda: cr.tensor([1, 2], requires_grad=True),
            RuntimeError, (r"floating point", r"int64", r"\(2,\)", r"\.float\(\)")),
    Mistake("numpy() of a tensor that requires grad",
            lambda: cr.randn(3, requires_grad=True).numpy(), RuntimeError,
            (r"numpy\(\)", r"requires grad", r"detach\(\)\.numpy\(\)")),
    Mistake("item() of many elements", lambda: cr.randn(3).item(), RuntimeError,
            (r"item\(\)", r"3 elements", r"\(3,\)")),
    Mistake("load_state_dict missing key", lambda: _load({"weight": cr.randn(4, 3)}),
            RuntimeError, (r"Linear", r"Missing key\(s\)", r'"bias"', r"strict=False")),
    Mistake("load_state_dict unexpected key", lambda: _load(
        {"weight": cr.randn(4, 3), "bias": cr.randn(4), "extra": cr.randn(1)}),
        RuntimeError, (r"Linear", r"Unexpected key\(s\)", r'"extra"', r"strict=False")),
    Mistake("load_state_dict shape", lambda: _load({"weight": cr.randn(4, 5), "bias": cr.randn(4)}),
            RuntimeError, (r"size mismatch for weight", r"\[4, 5\]", r"\[4, 3\]",
                           r"another model")),
    Mistake("a GPU tensor", lambda: cr.randn(3).to("cuda"), RuntimeError,
            (r"'cuda'", r"runs on the CPU", r"device='cpu'")),
    Mistake("tensor.cuda()", lambda: cr.randn(3).cuda(), RuntimeError,
            (r"'cuda'", r"runs on the CPU")),
    Mistake("module.cuda()", lambda: nn.Linear(2, 2).cuda(), RuntimeError,
            (r"'cuda'", r"runs on the CPU")),
    Mistake("a GPU factory", lambda: cr.randn(3, device="cuda:0"), RuntimeError,
            (r"'cuda:0'", r"runs on the CPU", r"device='cpu'")),
    Mistake("map_location to a GPU", lambda: cr.load("nowhere.safetensors", map_location="cuda"),
            RuntimeError, (r"chainrule\.load", r"map_location='cuda'", r"map_location='cpu'")),
]


@pytest.mark.parametrize("mistake", MISTAKES, ids=[m.name for m in MISTAKES])
def test_the_message_says_what_and_what_to_do(mistake: Mistake) -> None:
    with pytest.raises(mistake.error) as caught:
        mistake.make()
    # where the message itself is PyTorch's word for word, the advice is a note under it
    message = "\n".join([str(caught.value), *getattr(caught.value, "__notes__", [])])
    says = mistake.says
    if mistake.name.startswith("load_state_dict") and not hasattr(BaseException, "add_note"):
        says = says[:-1]  # notes need Python 3.11
    missing = [p for p in says if not re.search(p, message)]
    assert not missing, f"the message lacks {missing}:\n{message}"


def test_a_failed_load_leaves_the_model_unchanged() -> None:
    model = nn.Linear(3, 4)
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    with pytest.raises(RuntimeError):
        model.load_state_dict({"weight": cr.zeros(4, 3), "bias": cr.zeros(4), "extra": cr.ones(1)})
    for k, v in model.state_dict().items():
        assert (v.numpy() == before[k]).all()
