"""`chainrule explain`, `gradcheck` and `bench`, and `--help` on every subcommand."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
from pathlib import Path

import pytest

import chainrule
from chainrule.autograd import Function
from chainrule.cli import build_parser, gradcheck_cmd, main


def _numbers(text: str, name: str) -> list[float]:
    """Every ``name = value`` in the explain text, as floats."""
    return [float(v) for v in re.findall(re.escape(name) + r" = (-?[\d.]+(?:e-?\d+)?)\s*$", text, re.M)]


def test_explain_small_net(capsys: pytest.CaptureFixture) -> None:
    assert main(["explain"]) == 0
    text = capsys.readouterr().out
    # the worked example: delta2 = dL/dyhat, delta1 = dL/dz1
    assert _numbers(text, "upstream dL/dyhat")[-1] == pytest.approx(-0.42)
    assert _numbers(text, "dL/dw2")[-1] == pytest.approx(-0.462)
    assert _numbers(text, "upstream dL/dz1")[-1] == pytest.approx(-0.336)
    assert _numbers(text, "dL/dw1")[-1] == pytest.approx(-0.672)
    assert "delta2 = -0.42" in text and "delta1 = -0.336" in text
    assert "a1 = relu(z1)" in text


def test_explain_expression(capsys: pytest.CaptureFixture) -> None:
    assert main(["explain", "(x+y)*z", "x=2", "y=3", "z=4"]) == 0
    text = capsys.readouterr().out
    assert _numbers(text, "f = t1 * z")[-1] == 20
    assert [_numbers(text, f"df/d{name}")[-1] for name in "xyz"] == [4, 4, 5]


@pytest.mark.parametrize("argv, message", [
    (["(x+y)*q", "x=2", "y=3"], "no value given for 'q'"),
    (["(x+", "x=2"], "is not an expression"),
    (["x*2", "x=two"], "not a number"),
    (["x*2", "2=x"], "expected NAME=VALUE"),
])
def test_explain_bad_input_is_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["explain", *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and message in err


def test_gradcheck_table(capsys: pytest.CaptureFixture) -> None:
    assert main(["gradcheck"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = lines[1:-1]
    assert len(rows) == len(gradcheck_cmd._ops()) >= 70
    assert all(row.endswith("ok") for row in rows)
    assert re.match(r"\d+ ops in .* all within 1e-05$", lines[-1])
    for op in ("softmax", "conv2d", "cross_entropy", "matmul", "gather"):
        assert any(row.startswith(op + " ") for row in rows)


def test_gradcheck_filter_and_unknown_op(capsys: pytest.CaptureFixture) -> None:
    assert main(["gradcheck", "--op", "softmax"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4  # header, softmax, log_softmax, footer
    with pytest.raises(SystemExit) as exit_info:
        main(["gradcheck", "--op", "no-such-op"])
    assert exit_info.value.code == 2


class _WrongSquare(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x  # should be 2 x


def test_gradcheck_catches_a_wrong_gradient() -> None:
    result = gradcheck_cmd.check(gradcheck_cmd.Op("wrong", lambda m, x: _WrongSquare.apply(x), ((4,),)))
    assert not result.ok and result.error > 0.1
    good = gradcheck_cmd.check(gradcheck_cmd.Op("square", lambda m, x: x * x, ((4,),)))
    assert good.ok and good.error < 1e-8


def test_bench_builtin(capsys: pytest.CaptureFixture) -> None:
    assert main(["bench", "--builtin", "--quick"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("benchmark") and "MLP step" in out
    try:
        import torch  # noqa: F401
    except ImportError:
        return
    assert "torch" in out.splitlines()[0] and "ratio" in out.splitlines()[0]


def _distribution_installed(name: str) -> bool:
    # by the installed distributions, not by import: tests/autograd would pass for autograd
    try:
        importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def test_bench_builtin_writes_json_with_a_column_per_installed_peer(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out_file = tmp_path / "results" / "bench.json"
    assert main(["bench", "--builtin", "--quick", "--out", str(out_file)]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    results = json.loads(out_file.read_text())
    installed = [name for name in ("torch", "jax", "autograd") if _distribution_installed(name)]
    assert results["libraries"] == ["chainrule", *installed]
    assert header.split()[1:1 + len(results["libraries"])] == results["libraries"]
    assert [row["name"] for row in results["rows"]] == [
        "200-op chain fwd+bwd, 16x16 (ms)", "MLP step 128x512x512x10 (ms)"]
    for row in results["rows"]:
        assert set(row["ms"]) == set(results["libraries"])
        assert all(ms > 0 for ms in row["ms"].values())
        if "torch" in installed:
            assert row["ratio_to_torch"] == pytest.approx(row["ms"]["chainrule"] / row["ms"]["torch"])
        else:
            assert row["ratio_to_torch"] is None


@pytest.mark.parametrize("command", ["train", "explain", "gradcheck", "bench"])
def test_help_on_every_subcommand(command: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: chainrule {command}")


def test_top_level_help_lists_the_commands() -> None:
    text = build_parser().format_help()
    for command in ("train", "explain", "gradcheck", "bench"):
        assert command in text
    assert chainrule.cli.main is main


def _suite_module():
    """benchmarks/run.py of this checkout, imported as a module (it is not a package)."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "run.py"
    spec = importlib.util.spec_from_file_location("benchmarks_run", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_suite_rows_check_their_targets() -> None:
    suite = _suite_module()
    cnn = suite.make_row("CNN step b=64 (ms)", {"chainrule": 65.0, "torch": 50.0, "jax": 40.0})
    assert cnn["ratio"] == pytest.approx(1.3) and cnn["met"] is True
    assert cnn["target"] == {"kind": "ratio", "limit": 1.3}
    slow = suite.make_row("LSTM step (ms)", {"chainrule": 21.0, "torch": 20.0})
    assert slow["ratio"] == pytest.approx(1.05) and slow["met"] is False
    backward = suite.make_row("MLP b=1024 w=1024 backward/forward", {"chainrule": 2.4, "torch": 1.5})
    assert backward["target"]["kind"] == "value" and backward["met"] is False
    floor = suite.make_row("MLP b=1024 w=1024 fraction of FLOP floor", {"chainrule": 0.71, "torch": 0.9})
    assert floor["target"]["kind"] == "at least" and floor["met"] is True
    untargeted = suite.make_row("MLP step b=128 w=512 (ms)", {"chainrule": 3.0, "torch": 3.3})
    assert untargeted["target"] is None and untargeted["met"] is None
    lines = suite.format_table([cnn, slow], ["chainrule", "torch", "jax"]).splitlines()
    assert lines[0].split() == ["benchmark", "chainrule", "torch", "jax", "ratio", "target"]
    assert lines[1].split()[4:] == ["65.000", "50.000", "40.000", "1.30", "ratio", "<=", "1.3:",
                                    "met"]
    # no jax figure for the LSTM: a dash in its column
    assert lines[2].split()[3:] == ["21.000", "20.000", "-", "1.05", "ratio", "<=", "1:", "NOT",
                                    "met"]
