"""The ``ufm`` command: solve, certify, verify, sweep, report, metrics.

Each subcommand is a module of this package with ``add(subparsers)`` and ``run(args) -> int``,
registered in ``COMMANDS``. Bad input exits with status 2 and one line ``ufm: error: ...``,
no traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import import_module

from ..exceptions import SolverError, UFMError
from .common import Parser

COMMANDS = ("solve", "verify", "sweep", "report", "metrics", "certify", "train")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="ufm", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name in COMMANDS:
        import_module(f"{__name__}.{name}").add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(import_module(f"{__name__}.{args.command}").run(args))
    except (UFMError, SolverError, FileNotFoundError) as exc:
        print(f"ufm: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ufm: interrupted", file=sys.stderr)
        return 130
