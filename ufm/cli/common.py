"""What every subcommand shares: the one-line-error parser, number parsing, problem flags, JSON output."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any, NoReturn


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, no usage dump
        self.exit(2, f"ufm: error: {message} (see `{self.prog} --help`)\n")


def parse_float(text: str) -> float:
    """A finite number (nan and inf are refused: no option of ufm means them)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def pos_int(text: str) -> int:
    value = nonneg_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def rel_tol(text: str) -> float:
    """A relative tolerance in [0, 1): a gap of 100% or more certifies nothing."""
    value = parse_float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a relative tolerance in [0, 1), got {text!r}")
    return value


def add_memory_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-memory", type=parse_float, default=None, dest="max_memory", metavar="GIB",
                   help="refuse problems whose estimated memory exceeds this many GiB (default: half "
                        "the available memory, or UFM_MAX_MEMORY)")


def apply_memory_arg(args: argparse.Namespace) -> None:
    from ..memory import set_limit

    if getattr(args, "max_memory", None) is not None:
        set_limit(args.max_memory)


DESIGN_HELP = ("any design as LABELS=COUNT items, labels 0-based joined by '+', e.g. "
               "'0=10,1=10,2=2,3=2,0+1=3,2+3=1' (K = largest label + 1 unless --K says more)")
DESIGN_FILE_HELP = "a design from a file: CSV rows LABELS,COUNT (as --design) or an .npz with Y (K x N)"


def add_design_args(p: argparse.ArgumentParser, *, profile: bool = True) -> None:
    """``--K``, ``--profile`` (optional), ``--design`` and ``--design-file``: one design source."""
    p.add_argument("--K", type=pos_int, default=None,
                   help="number of classes (>= 2; required with --profile)")
    if profile:
        p.add_argument("--profile", default=None,
                       help="balanced design 'm:n_m,...', e.g. 1:3,2:2 (every label set of size m occurs n_m times)")
    p.add_argument("--design", default=None, metavar="ITEMS", help=DESIGN_HELP)
    p.add_argument("--design-file", default=None, dest="design_file", metavar="FILE", help=DESIGN_FILE_HELP)


def design_from_args(args: argparse.Namespace, *, required: bool = True) -> Any:
    """The design of ``--profile`` (with ``--K``), ``--design`` or ``--design-file``; exactly one."""
    from ..designs import balanced, parse_design, read_design_file
    from ..exceptions import UFMError

    given = [flag for flag, name in (("--profile", "profile"), ("--design", "design"),
                                     ("--design-file", "design_file"))
             if getattr(args, name, None) is not None]
    if len(given) > 1:
        raise UFMError(f"{' and '.join(given)} both give the design; use one of them.")
    if not given:
        if not required:
            return None
        raise UFMError("give the design: --profile (with --K), --design or --design-file.")
    if given[0] == "--profile":
        if args.K is None:
            raise UFMError("--profile needs --K (the number of classes).")
        return balanced(args.K, args.profile)
    if given[0] == "--design":
        return parse_design(args.design, args.K)
    return read_design_file(args.design_file, args.K)


def add_problem_args(p: argparse.ArgumentParser) -> None:
    add_design_args(p)
    p.add_argument("--d", type=pos_int, required=True, help="feature dimension (>= 1)")
    p.add_argument("--lam-W", type=parse_float, required=True, dest="lam_W", help="weight decay of W (> 0)")
    p.add_argument("--lam-H", type=parse_float, required=True, dest="lam_H", help="weight decay of H (> 0)")
    p.add_argument("--lam-b", type=parse_float, default=0.0, dest="lam_b", help="bias decay (>= 0; default 0)")
    p.add_argument("--no-bias", action="store_true", help="fix b = 0 (no bias variable)")
    p.add_argument("--loss", default="pal", choices=["pal", "pal-normalized", "bce"])
    add_memory_arg(p)


def problem_from_args(args: argparse.Namespace) -> Any:
    from ..problem import UFMProblem

    apply_memory_arg(args)
    return UFMProblem(design_from_args(args), args.d, args.lam_W, args.lam_H, args.lam_b,
                      bias=not args.no_bias, loss=args.loss)


def print_json(obj: Any) -> None:
    from ..summary import jsonable

    print(json.dumps(jsonable(obj), indent=2, allow_nan=False))


GAP_FLOOR = 1e-15  # certified gaps below this are rounding: shown as "<= 1e-15"


def gap_text(rel_gap: float | None) -> str:
    """The certified relative gap as printed: ``<= 1e-15`` at the rounding level (a gap of
    -1e-16 is rounding, not a bound above F), ``-`` when there is no certificate."""
    if rel_gap is None:
        return "-"
    if abs(rel_gap) <= GAP_FLOOR:
        return f"<= {GAP_FLOOR:.0e}"
    return f"{rel_gap:.1e}"
