"""Find mpiexec and run a script under it, or say why the MPI tests are skipped."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("_worker.py")


def find_mpiexec() -> str | None:
    """mpiexec of the MPI that mpi4py uses: pip's mpich installs it next to python."""
    beside = Path(sys.executable).parent / "mpiexec"
    if beside.exists():
        return str(beside)
    return shutil.which("mpiexec")


def skip_reason() -> str | None:
    if importlib.util.find_spec("mpi4py") is None:
        return "MPI tests skipped: mpi4py is not installed (pip install 'chainrule[distributed]')"
    if find_mpiexec() is None:
        return (f"MPI tests skipped: no mpiexec next to {sys.executable} or on PATH "
                f"(pip install 'chainrule[distributed]' brings MPICH's)")
    return None


requires_mpi = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")
if skip_reason() is not None:
    # skips are listed only with -rs; a warning shows in every run's summary
    warnings.warn(skip_reason(), stacklevel=1)


def launch(scenario: str, out: Path, ranks: int = 2) -> subprocess.Popen:
    """Start ``mpiexec -n ranks python _worker.py scenario out`` in its own session."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.Popen(
        [find_mpiexec(), "-n", str(ranks), sys.executable, str(WORKER), scenario, str(out)],
        # separate pipes: mpiexec's own banner (stdout) must not split a rank's line (stderr)
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True,
    )


def finish(process: subprocess.Popen, timeout: float) -> tuple[int, str]:
    """Wait for the job; past ``timeout`` kill its whole session and fail the test."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"the MPI job did not end within {timeout} s; its output:\n{out}\n{err}")
    return process.returncode, f"{out}\n{err}"
