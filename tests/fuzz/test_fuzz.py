"""The random-program fuzzer in the test suite: 200 programs against PyTorch, and every
program that ever failed (tests/fuzz/regressions/). The long mode is a separate command:
``python -m tests.fuzz.run --programs 5000`` (``make fuzz``)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import chainrule

from .program import KNOWN, check, execute, from_json, generate, to_json

torch = pytest.importorskip("torch")

REGRESSIONS = sorted((Path(__file__).parent / "regressions").glob("*.json"))
CHUNKS = 4  # 200 programs in 4 tests of 50: a failure names its range of seeds


@pytest.mark.parametrize("chunk", range(CHUNKS), ids=lambda k: f"seeds-{50 * k}-{50 * k + 49}")
def test_random_programs_match_torch(chunk: int) -> None:
    failures = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate reductions warn in both libraries
        for seed in range(50 * chunk, 50 * chunk + 50):
            verdict = check(generate(seed, torch), chainrule, torch)
            if verdict.kind == "mismatch":
                failures.append(f"seed {seed}: " + "; ".join(verdict.problems[:3]))
    assert not failures, ("programs that differ from PyTorch (python -m tests.fuzz.run --show "
                          "SEED prints one):\n" + "\n".join(failures))


@pytest.mark.parametrize("path", REGRESSIONS, ids=[p.stem for p in REGRESSIONS])
def test_regression(path: Path) -> None:
    program = from_json(path.read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        verdict = check(program, chainrule, torch)
    assert verdict.kind != "mismatch", f"{path.name}:\n{program.source()}\n" + "\n".join(
        verdict.problems)


def test_programs_survive_json() -> None:
    """A kept regression is the program itself (leaves, constants, indices), not a seed that
    a changed generator would turn into another program."""
    for seed in range(20):
        program = generate(seed, torch)
        again = from_json(to_json(program))
        assert again.source() == program.source()
        _, ours = execute(program, torch)
        _, theirs = execute(again, torch)
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_generation_is_deterministic() -> None:
    assert to_json(generate(7, torch)) == to_json(generate(7, torch))


def test_known_differences_say_why() -> None:
    names = [name for name, _, _ in KNOWN]
    assert len(set(names)) == len(names)
    assert all(len(why) > 40 for _, _, why in KNOWN)
