"""examples/vanishing_gradients.py: its claims hold (sigmoid vanishes, the fixes do not)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "vanishing_gradients.py"


def test_vanishing_gradients_example(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    spec = importlib.util.spec_from_file_location("examples_vanishing_gradients", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = module.main(out=str(tmp_path / "flow.png"))
    sigmoid = results["sigmoid"]["norms"]
    assert len(sigmoid) == 50 and sigmoid[0] < 1e-30 * sigmoid[-1]
    assert len(results["sigmoid"]["vanishing"]) > 40
    assert results["relu_he"]["vanishing"] == [] and results["residual"]["vanishing"] == []
    assert open(tmp_path / "flow.png", "rb").read(4) == b"\x89PNG"
    assert "ReLU + He init" in capsys.readouterr().out
