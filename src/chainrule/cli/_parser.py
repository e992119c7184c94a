"""argparse with the command's error contract: a usage mistake is one line on stderr and
exit status 2, never a traceback."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn


class UsageError(Exception):
    """A mistake in the command line that argparse cannot see (a missing file, a CSV
    without its target column): reported as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line: ``chainrule train: error: ...``.

    argparse prints the usage block before the message; the full usage is one
    ``--help`` away, and a single line is what scripts and people can read at a glance.

    >>> Parser(prog="chainrule demo").parse_args(["--nope"])   # exits with status 2
    """

    def error(self, message: str) -> NoReturn:
        fail(self.prog, message)


def fail(prog: str, message: str) -> NoReturn:
    """Print ``PROG: error: MESSAGE`` on one line and exit with status 2."""
    print(f"{prog}: error: {' '.join(str(message).split())}", file=sys.stderr)
    raise SystemExit(2)


def positive_float(text: str) -> float:
    """An argparse type: a float greater than 0 (learning rates, clipping norms)."""
    value = _float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def nonnegative_float(text: str) -> float:
    """An argparse type: a float of at least 0 (weight decay, momentum)."""
    value = _float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1 (epochs, batch size)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def sizes(text: str) -> list[int]:
    """An argparse type: comma-separated layer sizes, e.g. ``128,64``."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 128,64, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive sizes like 128,64, got {text!r}")
    return values


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
