"""The op suite's backend: NumPy by default; ``CHAINRULE_TEST_BACKEND=array_api_strict`` runs
it with array-api-strict arrays inside the tensors (tests/backend/test_strict_op_suite.py
does, so that code assuming NumPy is caught without a GPU).

In that run every tensor the tests make is put on the ``array_api_strict`` device (the
default device), and a case that reaches one of the backend-specific kernels listed in
``chainrule.ops.kernels.BACKEND_SPECIFIC`` is reported as skipped, naming the kernel: those
kernels have no Array API version and are tested on NumPy by the default run.
"""

from __future__ import annotations

import os

import pytest

import chainrule
from chainrule.ops.kernels import BACKEND_SPECIFIC, MissingKernel

BACKEND = os.environ.get("CHAINRULE_TEST_BACKEND", "cpu")


def pytest_configure(config: pytest.Config) -> None:
    if BACKEND != "cpu":
        chainrule.set_default_device(BACKEND)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> None:
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is None or not call.excinfo.errisinstance(MissingKernel):
        return
    kernel = call.excinfo.value.kernel
    assert kernel in BACKEND_SPECIFIC, f"{kernel} is not listed in kernels.BACKEND_SPECIFIC"
    report.outcome = "skipped"
    report.longrepr = (str(item.path), item.location[1] or 0,
                       f"backend-specific kernel {kernel} (no {BACKEND} version): tested on NumPy")
