"""Random programs: expression DAGs built from a seed, run in chainrule and in PyTorch.

A program is a list of steps over float64 leaves; step ``i`` makes value ``i`` (a leaf, or
an op of tests/fuzz/ops.py applied to earlier values; an in-place op's value is its target,
changed). Values are reused (diamonds, ``x op x``), broadcast, reduced, indexed, viewed and
changed in place. The program ends with a weighted sum of some values as the loss and
asks for gradients in one of four ways: ``autograd.grad``; ``backward``; ``backward`` twice
with ``retain_graph``; or a second-order product (the gradient of ``sum(grad * v)``).

The builder runs each step in PyTorch as it is drawn, so that shapes and values are known
when the next step is drawn, and keeps only steps PyTorch accepts: the programs are the
ones PyTorch users can write. An in-place step that makes PyTorch's backward refuse (it
changed a tensor a rule saved) is kept now and then, to check that chainrule refuses too.

``run`` executes a program with one library; ``compare`` lists every difference between
two runs: values, dtypes, shapes and requires_grad of every value, which values share
memory, the gradients (and which ones are None), and errors (one library refusing what the
other accepts). ``check`` runs both and gives the verdict: a match, a difference explained
by ``KNOWN`` (or by rounding, see ``_rounding_sensitive``), or a mismatch.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .ops import OPS

MODES = ("grad", "backward", "backward-twice", "second-order")
# the bound on a value's magnitude: steps that go past it are redrawn, so that the
# comparison stays about derivatives and not about overflow
LIMIT = 1e4


@dataclass
class Step:
    op: str  # "leaf" or a name in OPS
    args: list[int]
    kw: dict


@dataclass
class Program:
    seed: int | None
    leaves: list[np.ndarray] = field(default_factory=list)
    requires_grad: list[bool] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)
    weights: list[np.ndarray] = field(default_factory=list)  # one per output
    mode: str = "grad"
    tangents: list[np.ndarray] = field(default_factory=list)  # second order: one per leaf
    # values whose memory sharing is unspecified: reshape/flatten results and whatever shares
    # their memory (PyTorch documents that whether they view or copy must not be relied on)
    loose: list[int] = field(default_factory=list)

    def source(self) -> str:
        """The program as readable pseudo-Python (for reports and regression files)."""
        lines = []
        for i, step in enumerate(self.steps):
            if step.op == "leaf":
                k = step.kw["index"]
                a = self.leaves[k]
                lines.append(f"v{i} = leaf(shape={a.shape}, requires_grad={self.requires_grad[k]})")
            else:
                args = ", ".join(f"v{a}" for a in step.args)
                kw = ", ".join(f"{k}={_short(v)}" for k, v in step.kw.items())
                lines.append(f"v{i} = {step.op}({args}{', ' if args and kw else ''}{kw})")
        outs = " + ".join(f"(v{o} * w{j}).sum()" for j, o in enumerate(self.outputs))
        lines.append(f"loss = {outs}   # gradients by {self.mode}")
        return "\n".join(lines)


def _short(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array({value.tolist()})" if value.size <= 8 else f"array(shape={value.shape})"
    if isinstance(value, tuple):
        return "(" + ", ".join(_short(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


# ------------------------------------------------------------------ JSON round trip
def _encode(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"array": value.ravel().tolist(), "dtype": str(value.dtype),
                "shape": list(value.shape)}
    if isinstance(value, np.generic):
        return {"scalar": value.item(), "dtype": str(value.dtype)}
    if isinstance(value, slice):
        return {"slice": [value.start, value.stop, value.step]}
    if value is Ellipsis:
        return {"ellipsis": True}
    if isinstance(value, tuple):
        return {"tuple": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {"dict": {k: _encode(v) for k, v in value.items()}}
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": repr(value)}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "array" in value:
        return np.array(value["array"], dtype=value["dtype"]).reshape(value["shape"])
    if "scalar" in value:
        return np.dtype(value["dtype"]).type(value["scalar"])
    if "slice" in value:
        return slice(*value["slice"])
    if "ellipsis" in value:
        return Ellipsis
    if "tuple" in value:
        return tuple(_decode(v) for v in value["tuple"])
    if "float" in value:
        return float(value["float"])
    return {k: _decode(v) for k, v in value["dict"].items()}


def to_json(program: Program, **notes: Any) -> str:
    """The program as JSON, one key a line (``notes``, e.g. what it once found, are kept
    beside it, with the program's source to read)."""
    data = {**notes, "source": program.source().splitlines(),
        "seed": program.seed,
        "leaves": [_encode(a) for a in program.leaves],
        "requires_grad": program.requires_grad,
        "steps": [[s.op, s.args, _encode(s.kw)] for s in program.steps],
        "outputs": program.outputs,
        "weights": [_encode(w) for w in program.weights],
        "mode": program.mode,
        "tangents": [_encode(t) for t in program.tangents],
        "loose": program.loose,
    }
    return "{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in data.items()) + "\n}"


def from_json(text: str) -> Program:
    data = json.loads(text)
    return Program(
        seed=data["seed"],
        leaves=[_decode(a) for a in data["leaves"]],
        requires_grad=data["requires_grad"],
        steps=[Step(op, args, _decode(kw)) for op, args, kw in data["steps"]],
        outputs=data["outputs"],
        weights=[_decode(w) for w in data["weights"]],
        mode=data["mode"],
        tangents=[_decode(t) for t in data["tangents"]],
        loose=data.get("loose", []),
    )


# ------------------------------------------------------------------ running a program
def execute(program: Program, m: Any) -> tuple[list, list]:
    """The leaves and every value of ``program`` run with module ``m``."""
    leaves = [m.tensor(a.copy(), dtype=m.float64, requires_grad=rg)
              for a, rg in zip(program.leaves, program.requires_grad)]
    values: list = []
    for step in program.steps:
        if step.op == "leaf":
            values.append(leaves[step.kw["index"]])
            continue
        values.append(OPS[step.op].call(m, [values[i] for i in step.args], step.kw))
        if OPS[step.op].inplace and hasattr(m, "_C"):
            # PyTorch regenerates a view's history after its base changed in place only
            # when the view's grad_fn is read (until then an in-place op on the view is
            # refused as if it were a leaf): read them all, so that a program means the
            # same each time it runs (chainrule always uses the current history)
            for v in values:
                if v._is_view():
                    try:
                        v.grad_fn  # noqa: B018 - read for its effect
                    except RuntimeError:
                        pass  # a view PyTorch forbids using now (split's): using it refuses
    return leaves, values


@dataclass
class Outcome:
    values: list = field(default_factory=list)  # (array, dtype name, requires_grad) per value
    grads: list = field(default_factory=list)  # per leaf that requires grad: array or None
    second: list = field(default_factory=list)  # second order, per such leaf
    aliases: list = field(default_factory=list)  # pairs of values that share memory
    error: tuple[str, str] | None = None  # (stage, "Type: message")


def _array(t: Any) -> np.ndarray:
    if getattr(t, "_is_zerotensor", None) is not None and t._is_zerotensor():
        # PyTorch's second-order gradients may be ZeroTensors, which have no memory (reading
        # one through numpy(force=True) crashed PyTorch 2.13 here)
        return np.zeros(tuple(t.shape), dtype=str(t.dtype).split(".")[-1])
    return np.array(t.detach().numpy(), copy=True)


def _storage(t: Any) -> Any:
    """What owns ``t``'s memory: values with the same owner alias each other (None for an
    empty tensor, which aliases nothing)."""
    if t.numel() == 0:
        return None
    if hasattr(t, "untyped_storage"):
        return t.untyped_storage().data_ptr()
    owner = t._data
    while getattr(owner, "base", None) is not None:  # views of views, and as_strided
        owner = owner.base
    return id(owner)


def _aliasing(values: list) -> list[tuple[int, int]]:
    """The pairs of values (i < j) that share memory."""
    owners = [_storage(v) for v in values]
    return [(i, j) for j in range(len(values)) for i in range(j)
            if owners[i] is not None and owners[i] == owners[j]]


def run(program: Program, m: Any) -> Outcome:
    """Run ``program`` with ``m`` (chainrule or torch) and collect what is compared."""
    outcome = Outcome()
    try:
        leaves, values = execute(program, m)
    except Exception as error:  # noqa: BLE001 - any refusal is an outcome to compare
        outcome.error = ("forward", f"{type(error).__name__}: {error}")
        return outcome
    outcome.values = [(_array(v), str(v.dtype).split(".")[-1], bool(v.requires_grad),
                       hasattr(v, "_is_view") and v._is_view()) for v in values]
    loose = set(program.loose)
    outcome.aliases = [(i, j) for i, j in _aliasing(values) if i not in loose and j not in loose]
    # the leaves made with requires_grad (an in-place op may have given another one a history)
    wanted = [leaf for leaf, rg in zip(leaves, program.requires_grad) if rg]
    try:
        loss = sum((values[o] * m.tensor(w)).sum() for o, w in zip(program.outputs,
                                                                     program.weights))
        if program.mode == "grad":
            grads = m.autograd.grad(loss, wanted, allow_unused=True)
        elif program.mode in ("backward", "backward-twice"):
            if program.mode == "backward-twice":
                loss.backward(retain_graph=True)
            loss.backward()
            grads = [leaf.grad for leaf in wanted]
        else:
            grads = m.autograd.grad(loss, wanted, create_graph=True, allow_unused=True)
            tangents = [t for rg, t in zip(program.requires_grad, program.tangents) if rg]
            inner = sum((g * m.tensor(t)).sum() for g, t in zip(grads, tangents) if g is not None)
            if isinstance(inner, int) or not inner.requires_grad:
                second: Any = [None] * len(wanted)  # the gradient is constant: no second order
            else:
                second = m.autograd.grad(inner, wanted, allow_unused=True)
            outcome.second = [None if g is None else _array(g) for g in second]
        outcome.grads = [None if g is None else _array(g) for g in grads]
    except Exception as error:  # noqa: BLE001
        outcome.error = ("backward", f"{type(error).__name__}: {error}")
    return outcome


# ------------------------------------------------------------------ comparing two runs
RTOL = 1e-7  # float64 programs; the libraries may sum in different orders
ATOL = 1e-9  # relative to the largest magnitude of the array compared


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind != "f":
        return bool(np.array_equal(a, b))
    finite = np.isfinite(b)
    if not np.array_equal(np.isfinite(a), finite) or not np.array_equal(a[~finite], b[~finite],
                                                                        equal_nan=True):
        return False
    scale = float(np.abs(b[finite]).max()) if finite.any() else 0.0
    return bool(np.allclose(a[finite], b[finite], rtol=RTOL, atol=ATOL * max(1.0, scale)))


def compare(ours: Outcome, theirs: Outcome) -> list[str]:
    """Every difference between chainrule's run (``ours``) and PyTorch's (``theirs``)."""
    problems: list[str] = []
    if theirs.error and not ours.error:
        problems.append(f"PyTorch refused at {theirs.error[0]} ({theirs.error[1][:200]}) but "
                        f"chainrule did not")
    if ours.error and (not theirs.error or ours.error[0] != theirs.error[0]):
        where = f"at {theirs.error[0]}" if theirs.error else "nowhere"
        problems.append(f"chainrule refused at {ours.error[0]} ({ours.error[1][:300]}); PyTorch "
                        f"refused {where}")
    if problems or (ours.error and ours.error[0] == "forward"):
        return problems
    for i, ((a, da, ra, _), (b, db, rb, view)) in enumerate(zip(ours.values, theirs.values)):
        if da != db or a.shape != b.shape:
            problems.append(f"v{i}: dtype/shape {da}{a.shape} vs PyTorch's {db}{b.shape}")
        elif not _close(a, b):
            problems.append(f"v{i}: values differ (max |diff| {_diff(a, b)})")
        if ra != rb and not view:
            # PyTorch reports a view's requires_grad from its base, history or not
            problems.append(f"v{i}: requires_grad {ra} vs PyTorch's {rb}")
    for pair in sorted(set(ours.aliases) ^ set(theirs.aliases)):
        problems.append(f"v{pair[0]} and v{pair[1]}: "
                        f"{'share' if pair in ours.aliases else 'do not share'} memory, "
                        f"PyTorch's {'do not' if pair in ours.aliases else 'do'}")
    if ours.error:
        return problems
    for label, mine, other, strict in (("grad", ours.grads, theirs.grads, True),
                                       ("second-order grad", ours.second, theirs.second, False)):
        for k, (a, b) in enumerate(zip(mine, other)):
            if a is None or b is None:
                if strict and (a is None) != (b is None):
                    problems.append(f"{label} of leaf {k}: {'None' if a is None else 'a tensor'} "
                                    f"vs PyTorch's {'None' if b is None else 'a tensor'}")
                    continue
                # a second-order gradient that is None is a zero one
                a = np.zeros_like(b) if a is None and b is not None else a
                b = np.zeros_like(a) if b is None and a is not None else b
                if a is None:
                    continue
            if not _close(a, b):
                problems.append(f"{label} of leaf {k} differs (shapes {a.shape} {b.shape}, "
                                f"max |diff| {_diff(a, b)})")
    return problems


def _diff(a: np.ndarray, b: np.ndarray) -> str:
    if a.shape != b.shape:
        return "n/a"
    with np.errstate(invalid="ignore"):
        d = np.abs(a - b)
    return f"{np.nanmax(d):.3g}" if d.size and not np.isnan(d).all() else "nan"


# ------------------------------------------------------------------ verdicts
def _errors(ours: Outcome, theirs: Outcome) -> tuple[str | None, str | None]:
    return (ours.error[1] if ours.error else None, theirs.error[1] if theirs.error else None)


def _only_theirs_refused(text: str) -> Callable:
    def applies(program: Program, ours: Outcome, theirs: Outcome) -> bool:
        mine, other = _errors(ours, theirs)
        return mine is None and other is not None and text in other

    return applies


def _only_ours_refused(*texts: str) -> Callable:
    def applies(program: Program, ours: Outcome, theirs: Outcome) -> bool:
        mine, other = _errors(ours, theirs)
        return other is None and mine is not None and all(t in mine for t in texts)

    return applies


def _refused_writing_into_expanded(program: Program, ours: Outcome, theirs: Outcome) -> bool:
    """chainrule refused a write into an expanded tensor where PyTorch wrote (and maybe
    refused later, at backward)."""
    mine, other = _errors(ours, theirs)
    return (mine is not None and "expanded tensor or a view of one" in mine
            and (other is None or theirs.error[0] == "backward"))


_NORMS = {"norm", "norm[p=1]", "norm[p=3]", "norm[inf]", "normalize", "cosine_similarity", "std"}


def _only_second_order_differs(program: Program, ours: Outcome, theirs: Outcome,
                               ops: set) -> bool:
    """Nothing but second-order gradients differs, in a program using one of ``ops``."""
    if ours.error or theirs.error or not any(s.op in ops for s in program.steps):
        return False
    return not compare(Outcome(ours.values, ours.grads, [], ours.aliases),
                       Outcome(theirs.values, theirs.grads, [], theirs.aliases))


def _bce_second_order(program: Program, ours: Outcome, theirs: Outcome) -> bool:
    return _only_second_order_differs(program, ours, theirs, {"bce"})


def _norm_second_order_at_zero(program: Program, ours: Outcome, theirs: Outcome) -> bool:
    """Only second-order gradients differ, each where PyTorch's is NaN and chainrule's is
    finite, in a program with a norm (or std, the norm of the deviations)."""
    if not _only_second_order_differs(program, ours, theirs, _NORMS):
        return False
    for a, b in zip(ours.second, theirs.second):
        if a is not None and b is not None and not _close(a, b):
            bad = ~np.isclose(a, b, rtol=RTOL, atol=ATOL, equal_nan=True)
            if not (np.isnan(b[bad]).all() and np.isfinite(a[bad]).all()):
                return False
    return True


def _linear_layout(program: Program, ours: Outcome, theirs: Outcome) -> bool:
    """Only memory sharing differs, and only where PyTorch's values share and chainrule's
    do not (never the other way, which would let a write reach another tensor), in a
    program with F.linear."""
    problems = compare(ours, theirs)
    return (any(s.op == "linear" for s in program.steps) and bool(problems)
            and all("do not share memory, PyTorch's do" in p for p in problems))


# Where the two libraries may rightly differ: (name, test, why). A difference that passes a
# test is explained, not a failure; where chainrule ran and PyTorch refused, chainrule's
# gradients are then checked against central differences of chainrule's own forward pass.
KNOWN: list[tuple[str, Callable, str]] = [
    ("torch-no-double-backward", _only_theirs_refused("not implemented"),
     "PyTorch has no derivative for this op's backward: chainrule's second order is checked "
     "by finite differences"),
    ("torch-saved-tensor-changed", _only_theirs_refused("modified by an inplace"),
     "PyTorch refuses because an in-place op changed a tensor its rule saved; chainrule's "
     "rule saved another tensor (its in-place ops compute out of place, then copy in), so "
     "it runs: its gradient is checked by finite differences"),
    ("cross-entropy-saves-logits", _only_ours_refused("NllLossBackward0", "modified by an inplace"),
     "chainrule's fused cross_entropy saves its logits for the second-order rule (PyTorch's "
     "log_softmax saves its output), so changing the logits in place after the loss is "
     "refused, with the usual clear error"),
    ("einsum-repeated-index", _only_ours_refused("repeated index"),
     "chainrule's einsum refuses a repeated index within one operand ('ii->i') of a tensor "
     "that requires grad, with a NotImplementedError that says so (a documented gap)"),
    ("write-into-expanded", _refused_writing_into_expanded,
     "chainrule refuses any in-place write into an expanded tensor or a view of one (its "
     "elements share memory: NumPy keeps it read-only); PyTorch refuses only writes that "
     "touch an element twice and accepts fill_, a row of it, or an empty selection"),
    ("linear-column-major", _linear_layout,
     "F.linear's result is column-major (the faster BLAS order for few rows, "
     "ops/linalg.py), so a reshape of it, or of an elementwise result of it, copies where "
     "PyTorch's is a view: the values are the same, writing into one does not change the "
     "other (docs/numerics.md)"),
    ("norm-second-order-at-zero", _norm_second_order_at_zero,
     "the second derivative of a norm (or std) at 0, where the Hessian of ||x|| does not "
     "exist: PyTorch gives NaN, chainrule 0 (docs/numerics.md)"),
    ("bce-second-order", _bce_second_order,
     "binary cross-entropy's second order: PyTorch's double backward divides by "
     "(p + eps)^2 (1 - p + eps)^2, not the derivative of its own first-order formula; "
     "chainrule's is that derivative, so they part by about eps / (p (1 - p)) relative "
     "(docs/numerics.md)"),
    ("torch-multi-output-view", _only_theirs_refused("returns multiple views"),
     "PyTorch refuses to use a view from split/chunk/unbind after its base or another view "
     "changed in place; chainrule re-reads it from the base and runs: its gradient is "
     "checked by finite differences"),
]


@dataclass
class Verdict:
    kind: str  # "match", "both-refused", a KNOWN name, or "mismatch"
    problems: list[str] = field(default_factory=list)


def check(program: Program, chainrule: Any, torch: Any) -> Verdict:
    """Run ``program`` in both libraries and judge the difference."""
    ours, theirs = run(program, chainrule), run(program, torch)
    problems = compare(ours, theirs)
    if not problems:
        return Verdict("both-refused" if ours.error else "match")
    if _rounding_sensitive(program, torch, theirs, problems):
        return Verdict("rounding-sensitive")
    for name, applies, _ in KNOWN:
        if applies(program, ours, theirs):
            if not ours.error and theirs.error:  # chainrule ran where PyTorch refused
                if any(step.op == "detach" for step in program.steps):
                    # finite differences see through detach; autograd does not
                    return Verdict(name + " (unchecked: the program detaches)")
                try:
                    numeric = numeric_check(program, chainrule, ours)
                except Exception as error:  # noqa: BLE001 - chainrule ran once; not twice?
                    numeric = [f"finite differences could not run: {type(error).__name__}: "
                               f"{error}"]
                if numeric:
                    return Verdict("mismatch", [f"{name}, but: {p}" for p in numeric])
            return Verdict(name)
    return Verdict("mismatch", problems)


def _location(problem: str) -> str | None:
    found = re.match(r"(v\d+|(?:second-order )?grad of leaf \d+)[: ]", problem)
    return found.group(1) if found else None


def _rounding_sensitive(program: Program, torch: Any, theirs: Outcome,
                        problems: list[str]) -> bool:
    """Whether PyTorch's own results move at the same places when the leaves move by a few
    rounding errors: a jump (sign, floor, a comparison) or a kink (relu, a tie) met a value
    computed to within rounding of it, or rounding noise was magnified (a difference of
    equal terms divided by a clamped norm), where the two libraries may round apart."""
    places = {_location(p) for p in problems}
    if None in places or theirs.error:
        return False
    moved: set = set()
    for k in range(6):
        # steps of 1e-11 and 1e-9, relative: smooth results move by less than RTOL
        rng = np.random.default_rng(k)
        size = 1e-11 if k < 3 else 1e-9
        shaken = Program(program.seed, [a * (1 + size * rng.choice([-1.0, 1.0], np.shape(a)))
                                        for a in program.leaves],
                         program.requires_grad, program.steps, program.outputs, program.weights,
                         program.mode, program.tangents, program.loose)
        moved |= {_location(p) for p in compare(run(shaken, torch), theirs)}
    return places <= moved


def _loss_value(program: Program, m: Any, leaves_values: list[np.ndarray]) -> float:
    shifted = Program(program.seed, leaves_values, [False] * len(leaves_values), program.steps,
                      program.outputs, program.weights)
    with m.no_grad():
        _, values = execute(shifted, m)
        return float(sum((values[o] * m.tensor(w)).sum() for o, w in zip(program.outputs,
                                                                         program.weights)))


def _inner_value(program: Program, m: Any, leaves_values: list[np.ndarray]) -> float:
    """sum(grad * tangent): the function whose gradient is the second-order one."""
    shifted = Program(program.seed, leaves_values, program.requires_grad, program.steps,
                      program.outputs, program.weights)
    leaves, values = execute(shifted, m)
    # the leaves made with requires_grad (an in-place op may have given another one a history)
    wanted = [leaf for leaf, rg in zip(leaves, program.requires_grad) if rg]
    loss = sum((values[o] * m.tensor(w)).sum() for o, w in zip(program.outputs, program.weights))
    grads = m.autograd.grad(loss, wanted, allow_unused=True)
    tangents = [t for rg, t in zip(program.requires_grad, program.tangents) if rg]
    return float(sum((g * m.tensor(t)).sum() for g, t in zip(grads, tangents) if g is not None))


def numeric_check(program: Program, m: Any, outcome: Outcome, eps: float = 1e-6) -> list[str]:
    """Differences between ``outcome``'s gradients and central differences of ``m``'s
    forward pass (float64, step ``eps``). Elements at a kink (where the one-sided
    differences disagree: relu at 0, a tie in max) have no derivative to check and are
    skipped."""
    problems = []
    orders = [("grad", _loss_value, outcome.grads)]
    if program.mode == "second-order":
        orders.append(("second-order grad", _inner_value, outcome.second))
    if program.mode == "backward-twice":
        orders[0] = ("grad", _loss_value, [None if g is None else g / 2 for g in outcome.grads])
    wanted = [k for k, rg in enumerate(program.requires_grad) if rg]
    for label, f, grads in orders:
        at = f(program, m, list(program.leaves))
        for k, g in zip(wanted, grads):
            base = program.leaves[k]
            numeric = np.zeros_like(base)
            smooth = np.ones(base.shape, dtype=bool)
            for i in np.ndindex(base.shape):
                moved = []
                for step in (eps, -eps, 2 * eps, -2 * eps):
                    leaf = base.copy()
                    leaf[i] += step
                    values = list(program.leaves)
                    values[k] = leaf
                    moved.append(f(program, m, values))
                ahead, behind = (moved[0] - at) / eps, (at - moved[1]) / eps
                numeric[i] = (moved[0] - moved[1]) / (2 * eps)
                wider = (moved[2] - moved[3]) / (4 * eps)
                # a kink: the one-sided differences disagree; a jump: the central difference
                # grows as the step shrinks (sign(x) at x = 0)
                scale_i = max(1.0, abs(ahead), abs(behind))
                smooth[i] = (abs(ahead - behind) <= 1e-4 * scale_i
                             and abs(numeric[i] - wider) <= 1e-4 * scale_i)
            analytic = np.zeros_like(base) if g is None else g
            scale = max(1.0, float(np.abs(numeric[smooth]).max(initial=0.0)))
            if not np.allclose(analytic[smooth], numeric[smooth], rtol=1e-5, atol=1e-5 * scale):
                problems.append(f"{label} of leaf {wanted.index(k)}: finite differences give "
                                f"{numeric.ravel()[:6]}, chainrule {analytic.ravel()[:6]}")
    return problems


# ------------------------------------------------------------------ building a program
class Builder:
    """Draws a program from a seed, running each step in PyTorch as it goes."""

    def __init__(self, seed: int, torch: Any) -> None:
        self.rng = np.random.default_rng(seed)
        self.torch = torch
        self.program = Program(seed=seed)
        self.leaves: list = []
        self.values: list = []
        self.refused = False  # an in-place step that PyTorch's backward will refuse was kept
        self.reshaped: set = set()  # ids of reshape/flatten results and of their inputs

    # ---------------------------------------------------------------- values
    def leaf(self, shape: tuple, requires_grad: bool | None = None) -> int:
        values = self.rng.uniform(-2.0, 2.0, shape)
        if self.rng.random() < 0.2 and self.program.mode != "second-order":
            # a grid: ties for max/min, zeros at kinks. Not for second order: at a kink the
            # second derivative is a convention PyTorch does not keep consistent with the
            # first (elu's first derivative at 0 takes the left branch, its second the right)
            values = np.asarray(np.round(values * 2) / 2)
        if requires_grad is None:
            requires_grad = bool(self.rng.random() < 0.8)
        self.program.leaves.append(values)
        self.program.requires_grad.append(requires_grad)
        tensor = self.torch.tensor(values, requires_grad=requires_grad)
        self.leaves.append(tensor)
        return self._push(Step("leaf", [], {"index": len(self.program.leaves) - 1}), tensor)

    def _push(self, step: Step, value: Any) -> int:
        self.program.steps.append(step)
        self.values.append(value)
        return len(self.values) - 1

    def shape(self) -> tuple:
        ndim = int(self.rng.choice(5, p=[0.12, 0.25, 0.33, 0.2, 0.1]))
        sides = []
        for _ in range(ndim):
            r = self.rng.random()
            sides.append(0 if r < 0.03 else 1 if r < 0.25 else int(self.rng.integers(2, 5)))
        return tuple(sides)

    def is_in(self, x: int, domain: str) -> bool:
        v = self.values[x].detach()
        if domain == "real" or v.numel() == 0:
            return True
        if domain == "positive":
            return bool((v >= 0.2).all())
        if domain == "nonzero":
            return bool((v.abs() >= 0.2).all())
        return bool((v.abs() <= 3.0).all())  # bounded

    def domain(self, x: int, domain: str) -> int:
        """``x`` if its values lie in ``domain``, else ``x`` mapped there by a step or two."""
        if self.is_in(x, domain):
            return x
        if domain == "bounded":
            chain = [("tanh", {}), ("x*c", {"c": 2.0})] if self.rng.random() < 0.5 else [
                ("clamp", {"min": -2.5, "max": 2.5})]
        else:
            chain = [
                [("softplus", {}), ("x+c", {"c": 0.2})],
                [("x*x", {}), ("x+c", {"c": 0.5})],
                [("abs", {}), ("x+c", {"c": 0.3})],
                [("clamp", {"min": -3.0, "max": 3.0}), ("exp", {})],
                [("sigmoid", {}), ("x+c", {"c": 0.2})],
            ][int(self.rng.integers(0, 5))]
            if domain == "nonzero" and self.rng.random() < 0.5:
                chain = chain + [("neg", {})]
        for op, kw in chain:
            y = self.apply(op, [x], kw)
            if y is None:
                return x
            x = y
        return x

    def _with_shape(self, shape: tuple) -> int | None:
        matches = [i for i, v in enumerate(self.values) if tuple(v.shape) == shape
                   and v.dtype == self.torch.float64]
        return int(self.rng.choice(matches)) if matches and self.rng.random() < 0.45 else None

    def same_shape(self, shape: tuple, domain: str = "real") -> int:
        """A value of exactly ``shape``: an existing one (reuse) or a new leaf."""
        x = self._with_shape(tuple(shape))
        return self.domain(self.leaf(tuple(shape)) if x is None else x, domain)

    def partner(self, shape: tuple, domain: str, into: bool = False) -> int:
        """A value broadcastable with ``shape`` (``into``: to exactly ``shape``)."""
        other = []
        for n in shape:
            if n == 1:
                other.append(1 if into or self.rng.random() < 0.6 else int(self.rng.integers(2, 4)))
            else:
                other.append(n if self.rng.random() < 0.75 else 1)
        if self.rng.random() < 0.3:
            other = other[int(self.rng.integers(0, len(other) + 1)):]
        if not into and self.rng.random() < 0.15:
            other = [int(self.rng.integers(1, 4))] + other
        return self.same_shape(tuple(other), domain)

    # ---------------------------------------------------------------- steps
    def apply(self, op: str, args: list[int], kw: dict) -> int | None:
        """Run ``op`` in PyTorch; keep it as a step when PyTorch accepts it and the result
        stays finite and bounded, else restore the state before it and return None."""
        spec = OPS[op]
        if spec.inplace and (self._overlaps(args) or _storage(self.values[args[0]]) in self.tainted()):
            # writing into memory a reshape may or may not share: PyTorch leaves the result
            # unspecified (and the libraries' layouts, hence their choices, differ)
            return None
        try:
            out = spec.call(self.torch, [self.values[i] for i in args], kw)
            ok = (out.dtype == self.torch.float64 and bool(self.torch.isfinite(out).all())
                  and (out.numel() == 0 or float(out.detach().abs().max()) <= LIMIT))
            if ok and spec.inplace:
                ok = self._inplace_ok(out)
        except Exception:  # noqa: BLE001 - PyTorch refuses: not a program to draw
            ok = False
        if not ok:
            self._replay()
            return None
        if op in ("reshape", "flatten"):
            self.reshaped |= {len(self.values), args[0]}
        return self._push(Step(op, list(args), kw), out)

    def tainted(self) -> set:
        """The memory of reshape/flatten results and of their inputs (ids, not pointers:
        a replay makes new tensors)."""
        return {_storage(self.values[i]) for i in self.reshaped} - {None}

    def _overlaps(self, args: list[int]) -> bool:
        """Whether an operand of an in-place op shares memory with its target without being
        it: PyTorch then reads elements it has already written (x.mul_(x[:, :1]) gives
        x[1, 1] * x[1, 0] after x[1, 0] changed), a result that depends on its loop order."""
        target = self.values[args[0]]
        owner = _storage(target)
        for i in args[1:]:
            other = self.values[i]
            same = (other.data_ptr() == target.data_ptr() and other.shape == target.shape
                    and other.stride() == target.stride())
            if owner is not None and _storage(other) == owner and not same:
                return True
        return False

    def _inplace_ok(self, out: Any) -> bool:
        """Whether PyTorch's backward still runs after an in-place step; a step that breaks
        it is kept now and then (the program then checks that both libraries refuse)."""
        targets = [v for v in self.values + [out] if v.requires_grad]
        if not targets:
            return True
        wanted = [leaf for leaf, rg in zip(self.leaves, self.program.requires_grad) if rg]
        try:
            loss = sum(v.sum() for v in targets)
            self.torch.autograd.grad(loss, wanted, retain_graph=True, allow_unused=True)
        except RuntimeError:
            if self.rng.random() < 0.15 and not self.refused:
                self.refused = True
                return True
            return False
        return True

    def _replay(self) -> None:
        self.leaves, self.values = execute(self.program, self.torch)

    def pick(self) -> int:
        """A value to build on, recent ones more likely."""
        n = len(self.values)
        weights = np.arange(1, n + 1, dtype=float) ** 1.5
        return int(self.rng.choice(n, p=weights / weights.sum()))


_NAMES = sorted(OPS)
_WEIGHTS = np.array([OPS[name].weight for name in _NAMES])
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


def generate(seed: int, torch: Any) -> Program:
    """The program of ``seed`` (the same on every machine: NumPy's PCG64 and PyTorch's CPU
    kernels are deterministic)."""
    b = Builder(seed, torch)
    b.program.mode = MODES[int(b.rng.choice(4, p=[0.35, 0.2, 0.1, 0.35]))]
    for _ in range(int(b.rng.integers(1, 4))):
        b.leaf(b.shape(), requires_grad=True if not b.values else None)
    target = int(b.rng.integers(4, 25))
    attempts = 0
    while len(b.program.steps) < target and attempts < 4 * target:
        attempts += 1
        name = _NAMES[int(b.rng.choice(len(_NAMES), p=_WEIGHTS))]
        if name == "x-x" and b.program.mode == "second-order":
            continue  # exact zeros: kinks again (see Builder.leaf)
        x = b.pick()
        try:
            drawn = OPS[name].make(b, x)
        except Exception:  # noqa: BLE001 - the op cannot take this value (PyTorch refused)
            b._replay()
            continue
        if drawn is not None:
            b.apply(name, *drawn)
    program = b.program
    tainted = b.tainted()
    program.loose = [i for i, v in enumerate(b.values) if _storage(v) in tainted]
    live = [i for i, v in enumerate(b.values) if v.requires_grad]
    chosen = {len(b.values) - 1} if not live else {live[-1]}
    for _ in range(int(b.rng.integers(0, 3))):
        chosen.add(int(b.rng.choice(live)) if live else b.pick())
    program.outputs = sorted(chosen)
    program.weights = [b.rng.standard_normal(tuple(b.values[o].shape)) for o in program.outputs]
    program.tangents = [b.rng.standard_normal(a.shape) for a in program.leaves]
    return program


# ------------------------------------------------------------------ shrinking a failure
def without(program: Program, drop: int) -> Program | None:
    """``program`` without step ``drop`` and the steps that use its value (None when
    nothing would be left to differentiate)."""
    gone = {drop}
    for i, step in enumerate(program.steps):
        if i > drop and any(a in gone for a in step.args):
            gone.add(i)
    # an in-place step's target keeps the change: removing the step that made the target
    # removes the in-place step too (it uses it); removing an in-place step is allowed
    renumber = {}
    steps = []
    for i, step in enumerate(program.steps):
        if i in gone:
            continue
        renumber[i] = len(steps)
        steps.append(Step(step.op, [renumber[a] for a in step.args], step.kw))
    kept = [(renumber[o], w) for o, w in zip(program.outputs, program.weights) if o in renumber]
    if not kept:
        return None
    return Program(program.seed, program.leaves, program.requires_grad, steps,
                   [o for o, _ in kept], [w for _, w in kept], program.mode, program.tangents,
                   [renumber[i] for i in program.loose if i in renumber])


def shrink(program: Program, fails: Any) -> Program:
    """A smaller program for which ``fails(program)`` still holds (greedy, one step at a time,
    last steps first)."""
    changed = True
    while changed:
        changed = False
        for drop in range(len(program.steps) - 1, -1, -1):
            if drop >= len(program.steps) or program.steps[drop].op == "leaf":
                continue
            smaller = without(program, drop)
            if smaller is not None and fails(smaller):
                program, changed = smaller, True
    return program
