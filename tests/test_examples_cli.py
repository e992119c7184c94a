"""Smoke tests for the examples of the `chainrule train` issue: each example's main() runs
with small sizes and what its docstring claims holds."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TESTED = {"xor", "manual_backward", "gradient_checking", "custom_function", "exploding_rnn_clipping",
          "checkpointing_memory", "char_lstm", "lbfgs"}


def load(name: str) -> ModuleType:
    """Import examples/NAME.py (examples/ is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"examples_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_example_here_exists_and_has_a_docstring() -> None:
    for name in TESTED:
        module = load(name)
        assert module.__doc__ and len(module.__doc__.split()) > 30, name


def test_xor() -> None:
    results = load("xor").main(epochs=1500, verbose=False)
    assert results["loss"] < 0.01
    assert [round(v) for v in results["outputs"]] == [0, 1, 1, 0]


def test_manual_backward_equals_autograd(capsys: pytest.CaptureFixture) -> None:
    results = load("manual_backward").main(batch=4, inputs=3, hidden=5, outputs=2)
    assert max(results["differences"].values()) < 1e-12
    assert results["loss_difference"] < 1e-12
    assert "dL/dw1" in capsys.readouterr().out


def test_gradient_checking() -> None:
    results = load("gradient_checking").main(batch=2, classes=3, verbose=False)
    errors = results["errors"]
    assert errors[1e-5] < 1e-8  # the sweet spot
    assert errors[1e-1] > 100 * errors[1e-5] and errors[1e-11] > 100 * errors[1e-5]  # the U
    assert results["gradcheck"] is True
    assert "Jacobian mismatch" in results["caught"]


def test_custom_function() -> None:
    results = load("custom_function").main(verbose=False)
    assert results["matches"] and results["gradcheck"] and results["gradgradcheck"]
    assert results["plain"] == 0.0  # round() passes no gradient: the weight never moves
    assert results["straight_through"] == 3.0


def test_exploding_rnn_clipping() -> None:
    results = load("exploding_rnn_clipping").main(steps=30, iterations=80, lrs=(1e-1,),
                                                  lengths=(5, 20), verbose=False)
    assert results["norms"][20] > 100 * results["norms"][5]
    assert math.isnan(results["plain"][1e-1])  # blew up
    assert results["clipped"][1e-1] < 0.01  # from a first loss of ~150


def test_checkpointing_memory() -> None:
    results = load("checkpointing_memory").main(depth=16, width=16, batch=256, repeats=1,
                                                verbose=False)
    plain = results["plain"]["bytes"]
    assert results["k = 4"]["bytes"] < 0.7 * plain
    assert all(row["grad_diff"] == 0.0 for row in results.values())


def test_char_lstm() -> None:
    results = load("char_lstm").main(epochs=8, hidden=32, streams=4, bptt=16, verbose=False)
    bits = results["bits"]
    assert bits[0] > 4.5 and bits[-1] < 0.8 * bits[0]
    assert results["sample"].startswith("Beautiful is") and len(results["sample"]) == 212


def test_lbfgs_beats_first_order_methods() -> None:
    results = load("lbfgs").main(n=4, evaluations=200, verbose=False)
    loss, distance, used = results["L-BFGS (strong Wolfe)"]
    assert loss < 1e-10 and distance < 1e-4 and used <= 200
    assert all(other[0] > 1e-3 for name, other in results.items() if not name.startswith("L-BFGS"))
