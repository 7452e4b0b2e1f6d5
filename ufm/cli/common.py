"""What every subcommand shares: the one-line-error parser, number parsing, problem flags, JSON output."""

from __future__ import annotations

import argparse
import json
from typing import Any, NoReturn


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, no usage dump
        self.exit(2, f"ufm: error: {message} (see `{self.prog} --help`)\n")


def parse_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def add_problem_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--K", type=int, required=True, help="number of classes (>= 2)")
    p.add_argument("--d", type=int, required=True, help="feature dimension (>= 1)")
    p.add_argument("--profile", required=True,
                   help="balanced design 'm:n_m,...', e.g. 1:3,2:2 (every label set of size m occurs n_m times)")
    p.add_argument("--lam-W", type=parse_float, required=True, dest="lam_W", help="weight decay of W (> 0)")
    p.add_argument("--lam-H", type=parse_float, required=True, dest="lam_H", help="weight decay of H (> 0)")
    p.add_argument("--lam-b", type=parse_float, default=0.0, dest="lam_b", help="bias decay (>= 0; default 0)")
    p.add_argument("--no-bias", action="store_true", help="fix b = 0 (no bias variable)")
    p.add_argument("--loss", default="pal", choices=["pal", "pal-normalized", "bce"])


def problem_from_args(args: argparse.Namespace) -> Any:
    from ..designs import balanced
    from ..problem import UFMProblem

    return UFMProblem(balanced(args.K, args.profile), args.d, args.lam_W, args.lam_H, args.lam_b,
                      bias=not args.no_bias, loss=args.loss)


def print_json(obj: Any) -> None:
    from ..summary import jsonable

    print(json.dumps(jsonable(obj), indent=2, allow_nan=False))
