"""Peak resident memory of 100 MLP training steps (784-1024-1024-10, batch 1024), for one
library in this fresh process: ``python benchmarks/peak_rss.py chainrule|torch``.

Prints one JSON object: ``peak_mb`` (the process's peak resident memory after the steps:
the import, the model, the data and the largest set of live arrays any step held) and
``import_mb`` (resident memory right after importing the library, the part no step can
change). run.py starts one such process per library, so neither library's memory counts
against the other.

The peak is VmHWM of /proc/self/status, not ``getrusage().ru_maxrss``: on Linux ru_maxrss
carries the parent's peak over fork and exec (the child starts as a copy of the parent's
memory map, and exec keeps the larger of the old map's peak and the new), so a child of
the benchmark, which has imported everything, would report the benchmark's own peak.
ru_maxrss is printed beside it (``ru_maxrss_mb``) for comparison.
"""

from __future__ import annotations

import importlib
import json
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workloads  # noqa: E402

STEPS = 100
SIZES = [784, 1024, 1024, 10]
BATCH = 1024


def status_mb(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS: now, VmHWM: the peak), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(library: str) -> dict:
    lib = importlib.import_module(library)
    if library == "torch":
        import os

        lib.set_num_threads(os.cpu_count() or 1)
    import_mb = status_mb("VmRSS")
    step = workloads.mlp_parts(lib, SIZES, BATCH)["step"]
    for _ in range(STEPS):
        step()
    # ru_maxrss is in kilobytes on Linux
    ru_maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"library": library, "steps": STEPS, "peak_mb": status_mb("VmHWM"),
            "import_mb": import_mb, "ru_maxrss_mb": ru_maxrss_mb}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
