"""The ``chainrule`` command: ``train``, ``explain``, ``gradcheck`` and ``bench``.

Installed as a console script and runnable as ``python -m chainrule``. Each subcommand is
a module here with ``add_parser(commands)``; a usage mistake is one line on stderr and
exit status 2.

>>> from chainrule.cli import main
>>> main(["explain", "(x+y)*z", "x=2", "y=3", "z=4"])
0
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from . import bench, explain, gradcheck_cmd, train
from ._parser import Parser, UsageError, fail


def build_parser() -> Parser:
    """The ``chainrule`` parser with every subcommand."""
    parser = Parser(prog="chainrule", description="chainrule: backpropagation made into a library.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True
    for command in (train, explain, gradcheck_cmd, bench):
        command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``chainrule`` command line; returns the exit status.

    >>> main(["train", "--epochs", "1", "--out", "runs/smoke", "--no-progress"])
    0
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except UsageError as error:
        fail(f"chainrule {args.command}", str(error))
    except BrokenPipeError:  # `chainrule gradcheck | head`: the reader left, not an error
        # point stdout at /dev/null so that the interpreter's final flush does not fail too
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:  # outside training's own handling (which saves a checkpoint)
        print(f"chainrule {args.command}: interrupted", file=sys.stderr)
        return 130
