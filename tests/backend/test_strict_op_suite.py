"""The op suite (tests/ops: the op table's gradcheck, gradgradcheck, third order, PyTorch
parity and forward mode) run with array-api-strict arrays inside the tensors.

It runs in a child pytest with CHAINRULE_TEST_BACKEND=array_api_strict (tests/ops/conftest.py
puts every tensor on that device), so the default run's process keeps the CPU as its default
device. Cases that reach a kernel of ops/kernels.py's BACKEND_SPECIFIC list are reported as
skipped with the kernel's name; everything else must pass.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("array_api_strict")
ROOT = Path(__file__).resolve().parents[2]


def test_the_op_suite_passes_on_array_api_strict():
    env = {**os.environ, "CHAINRULE_TEST_BACKEND": "array_api_strict"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", "-W", "ignore",
         "tests/ops/test_op_table.py", "tests/ops/test_op_jvp.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    tail = run.stdout[-6000:] + run.stderr[-2000:]
    assert run.returncode == 0, f"the strict run failed:\n{tail}"
    passed = int(re.search(r"(\d+) passed", run.stdout).group(1))
    assert passed > 3000, f"only {passed} cases passed:\n{tail}"
    # every skip names a listed kernel, or is a skip of the default run too (no torch gradient)
    for reason in re.findall(r"^SKIPPED \[\d+\] [^:]+:\d+: (.*)$", run.stdout, re.M):
        assert "backend-specific kernel" in reason or "gradient not compared" in reason, reason
