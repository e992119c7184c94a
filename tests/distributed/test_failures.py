"""A failing rank ends the whole job with an error within a timeout, never a hang."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from ._mpi import finish, launch, requires_mpi

pytestmark = requires_mpi

DEADLINE = 30.0  # seconds for the job to end; each case takes 1-3 s here


def _gone(pid: int, within: float = 5.0) -> bool:
    """Whether process ``pid`` has ended (waiting a little: a killed child may linger as a
    zombie until it is reaped)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def _pids(out: Path, timeout: float = DEADLINE) -> list[int]:
    deadline = time.monotonic() + timeout
    files = [out / "pid0", out / "pid1"]
    while not all(f.exists() and f.read_text() for f in files):
        if time.monotonic() > deadline:
            pytest.fail("the ranks did not start within the deadline")
        time.sleep(0.05)
    return [int(f.read_text()) for f in files]


def test_rank_that_raises_aborts_every_rank(tmp_path: Path) -> None:
    start = time.monotonic()
    code, output = finish(launch("raise", tmp_path), timeout=DEADLINE)
    assert code != 0
    assert "ValueError: rank 1 fails on purpose" in output
    assert "uncaught ValueError on rank 1; aborting all 2 ranks" in output
    assert "got past the collective" not in output
    assert time.monotonic() - start < DEADLINE
    assert all(_gone(pid) for pid in _pids(tmp_path))


def test_killed_rank_ends_the_job(tmp_path: Path) -> None:
    job = launch("loop", tmp_path)
    survivor, victim = _pids(tmp_path)
    time.sleep(0.3)                 # let them train a few steps
    os.kill(victim, signal.SIGKILL)
    code, output = finish(job, timeout=DEADLINE)
    assert code != 0, output
    assert _gone(survivor), "rank 0 outlived the job"


def test_collective_that_a_rank_never_joins_times_out(tmp_path: Path) -> None:
    start = time.monotonic()
    code, output = finish(launch("hang", tmp_path), timeout=DEADLINE)
    assert code != 0
    assert "all_reduce(SUM) of (3,) float32 timed out after 1 s on rank 0 of 2" in output
    assert "aborting all 2 ranks" in output
    assert time.monotonic() - start < 15     # rank 1 sleeps 60 s: the abort cut it short
