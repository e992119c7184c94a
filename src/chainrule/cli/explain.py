"""`chainrule explain`: the backward pass worked out as a teacher writes it on the board.

    chainrule explain                          # the small net: z1 = w1 x + b1, a1 = relu(z1),
                                               # yhat = w2 a1 + b2, L = (yhat - y)^2 / 2
    chainrule explain "(x+y)*z" x=2 y=3 z=4    # any expression in named scalars
"""

from __future__ import annotations

import argparse
from typing import Any

from ._parser import UsageError

# the worked example of the diagnostics docs: w1=0.5, b1=0.1, w2=0.8, b2=0.2, x=2, y=1.5
SMALL_NET = {"w1": 0.5, "b1": 0.1, "w2": 0.8, "b2": 0.2, "x": 2.0, "y": 1.5}


def add_parser(commands: Any) -> None:
    """Register ``explain`` on the ``chainrule`` command's subparsers."""
    p = commands.add_parser("explain", help="print a worked backward pass", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("expression", nargs="?",
                   help="an expression in named scalars, e.g. \"(x+y)*z\" (default: the small net)")
    p.add_argument("values", nargs="*", metavar="NAME=VALUE", help="the value of each name")
    p.set_defaults(run=run_command)


def run_command(args: argparse.Namespace) -> int:
    # both print their text as they return it
    if args.expression is None:
        if args.values:
            raise UsageError("NAME=VALUE pairs need an expression before them")
        small_net()
        return 0
    values = parse_values(args.values)
    from .. import viz

    try:
        viz.explain_expression(args.expression, **values)
    except (NameError, TypeError, ValueError) as error:
        raise UsageError(str(error)) from None
    return 0


def small_net(**values: float) -> str:
    """Print and return the worked backward pass of z1 = w1 x + b1, a1 = relu(z1),
    yhat = w2 a1 + b2, L = (yhat - y)^2 / 2 at ``SMALL_NET`` (or the given values).

    >>> text = small_net()     # ... delta2 = -0.42 ... dL/dw1 = -0.672
    """
    from .. import float64, tensor, viz
    from ..nn import functional as F

    v = {**SMALL_NET, **values}
    w1, b1, w2, b2 = (tensor(v[name], dtype=float64, requires_grad=True)
                      for name in ("w1", "b1", "w2", "b2"))
    x, y = tensor(v["x"], dtype=float64), tensor(v["y"], dtype=float64)
    z1 = w1 * x + b1
    a1 = F.relu(z1)
    yhat = w2 * a1 + b2
    L = 0.5 * (yhat - y) ** 2  # named as on the board: the lines read dL/dw1, ...
    return viz.explain(L)


def parse_values(pairs: list[str]) -> dict[str, float]:
    """``["x=2", "y=3"]`` -> ``{"x": 2.0, "y": 3.0}``; a malformed pair is a usage error."""
    values = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.isidentifier():
            raise UsageError(f"expected NAME=VALUE, got {pair!r}")
        try:
            values[name] = float(text)
        except ValueError:
            raise UsageError(f"the value of {name} is not a number: {text!r}") from None
    return values
