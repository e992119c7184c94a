"""chainrule keeps freed array memory for reuse (glibc), unless the environment says not to."""

import os
import subprocess
import sys

import pytest

from chainrule import _allocator

glibc_only = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
    reason="the thresholds are glibc malloc's")

# a fresh process: import chainrule, then count the page faults of ten rounds of allocating,
# writing and freeing twenty 3 MiB arrays (after two warm-up rounds). By default glibc gives
# the heap's free top (60 MiB, above its trim threshold) back to the system after each
# round, and the next round faults every page in again (3 MiB: below the size for which
# NumPy asks for huge pages, so 4 KiB faults).
FAULTS_OF_REUSE = """
import resource
import numpy as np
import chainrule

def round_of_blocks():
    blocks = [np.empty(3 << 18, dtype=np.float32) for _ in range(20)]
    for block in blocks:
        block.fill(1.0)

round_of_blocks()
round_of_blocks()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    round_of_blocks()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults_of_reuse(switch: str | None) -> int:
    env = dict(os.environ)
    env.pop(_allocator.ENVIRONMENT_SWITCH, None)
    if switch is not None:
        env[_allocator.ENVIRONMENT_SWITCH] = switch
    done = subprocess.run([sys.executable, "-c", FAULTS_OF_REUSE], env=env, check=True,
                          capture_output=True, text=True)
    return int(done.stdout.strip())


@glibc_only
def test_a_freed_block_is_reused_without_page_faults():
    # a round is 60 MiB, 15,360 pages
    assert faults_of_reuse(None) < 200
    assert faults_of_reuse("0") > 10 * 15000


def test_environment_switch_leaves_malloc_alone(monkeypatch):
    monkeypatch.setenv(_allocator.ENVIRONMENT_SWITCH, "0")
    assert _allocator.keep_freed_memory() is False


@glibc_only
def test_set_on_glibc(monkeypatch):
    monkeypatch.delenv(_allocator.ENVIRONMENT_SWITCH, raising=False)
    assert _allocator.keep_freed_memory() is True
