"""The fuzzer's long mode: ``python -m tests.fuzz.run --programs 5000`` (``make fuzz``).

Draws programs from consecutive seeds, runs each in chainrule and in PyTorch and prints
the verdicts' counts; a mismatch is shrunk to fewer steps and, with ``--save``, kept in
tests/fuzz/regressions/ (where the test suite runs it from then on). ``--show SEED`` prints
one program and its verdict.
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

REGRESSIONS = Path(__file__).parent / "regressions"


def _libraries() -> tuple[Any, Any]:
    import torch

    import chainrule

    return chainrule, torch


def judge(seeds: list[int]) -> list[tuple[int, str, list[str], int, list[str]]]:
    """(seed, verdict, problems, steps, ops) for each seed."""
    from .program import check, generate

    warnings.simplefilter("ignore")  # both libraries warn about degenerate reductions
    chainrule, torch = _libraries()
    results = []
    for seed in seeds:
        try:
            program = generate(seed, torch)
        except Exception as error:  # noqa: BLE001 - a fuzzer bug must not stop the run
            results.append((seed, "generator-error", [f"{type(error).__name__}: {error}"], 0, []))
            continue
        verdict = check(program, chainrule, torch)
        ops = [s.op for s in program.steps if s.op != "leaf"]
        results.append((seed, verdict.kind, verdict.problems, len(ops), ops))
    return results


def shrunk(seed: int) -> Any:
    """The program of ``seed`` with as few steps as still mismatch."""
    from .program import check, generate, shrink

    chainrule, torch = _libraries()

    def fails(program: Any) -> bool:
        try:
            return check(program, chainrule, torch).kind == "mismatch"
        except Exception:  # noqa: BLE001 - a broken candidate is not the failure we keep
            return False

    return shrink(generate(seed, torch), fails)


def save(seed: int, problems: list[str]) -> Path:
    from .program import to_json

    REGRESSIONS.mkdir(exist_ok=True)
    path = REGRESSIONS / f"seed-{seed}.json"
    path.write_text(to_json(shrunk(seed), found=problems[:3]) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=5000)
    parser.add_argument("--start", type=int, default=0, help="first seed")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--save", action="store_true", help="keep mismatches as regressions")
    parser.add_argument("--show", type=int, metavar="SEED", help="print one program and exit")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")

    if args.show is not None:
        from .program import check, generate

        chainrule, torch = _libraries()
        program = generate(args.show, torch)
        print(program.source())
        verdict = check(program, chainrule, torch)
        print(verdict.kind, *verdict.problems, sep="\n  ")
        return 0

    seeds = list(range(args.start, args.start + args.programs))
    chunks = [seeds[i:i + 50] for i in range(0, len(seeds), 50)]
    began = time.perf_counter()
    results = []
    if args.jobs > 1:
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            for part in pool.imap_unordered(judge, chunks):
                results += part
                print(f"\r{len(results)}/{len(seeds)} programs", end="", file=sys.stderr)
    else:
        for chunk in chunks:
            results += judge(chunk)
            print(f"\r{len(results)}/{len(seeds)} programs", end="", file=sys.stderr)
    print(file=sys.stderr)
    elapsed = time.perf_counter() - began

    verdicts = collections.Counter(kind for _, kind, _, _, _ in results)
    ops = collections.Counter(op for *_, used in results for op in used)
    steps = sum(n for _, _, _, n, _ in results)
    print(f"{len(results)} programs ({args.start}..{args.start + len(results) - 1}), {steps} "
          f"steps, {len(ops)} distinct ops, {elapsed:.0f} s")
    for kind, count in verdicts.most_common():
        print(f"  {kind:45s} {count}")
    rare = [op for op, n in sorted(ops.items(), key=lambda kv: kv[1])[:8]]
    print("least used ops:", ", ".join(f"{op} ({ops[op]})" for op in rare))
    failures = sorted((seed, problems) for seed, kind, problems, _, _ in results
                      if kind in ("mismatch", "generator-error"))
    for seed, problems in failures:
        print(f"MISMATCH seed {seed}:", *problems[:3], sep="\n  ")
        if args.save:
            print("  kept as", save(seed, problems))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
