"""The ``ufm`` command: solve, verify (and more subcommands as they are added).

Each subcommand is a pair ``_add_<name>(subparsers)`` / ``_cmd_<name>(args) -> int``
registered in ``COMMANDS``. Bad input exits with status 2 and one line
``ufm: error: ...``, no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import numpy as np

from .exceptions import SolverError, UFMError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, no usage dump
        self.exit(2, f"ufm: error: {message} (see `{self.prog} --help`)\n")


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _add_problem_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--K", type=int, required=True, help="number of classes (>= 2)")
    p.add_argument("--d", type=int, required=True, help="feature dimension (>= 1)")
    p.add_argument("--profile", required=True,
                   help="balanced design 'm:n_m,...', e.g. 1:3,2:2 (every label set of size m occurs n_m times)")
    p.add_argument("--lam-W", type=_float, required=True, dest="lam_W", help="weight decay of W (> 0)")
    p.add_argument("--lam-H", type=_float, required=True, dest="lam_H", help="weight decay of H (> 0)")
    p.add_argument("--lam-b", type=_float, default=0.0, dest="lam_b", help="bias decay (>= 0; default 0)")
    p.add_argument("--no-bias", action="store_true", help="fix b = 0 (no bias variable)")
    p.add_argument("--loss", default="pal", choices=["pal", "pal-normalized", "bce"])


def _problem_from_args(args: argparse.Namespace) -> Any:
    from .designs import balanced
    from .problem import UFMProblem

    return UFMProblem(balanced(args.K, args.profile), args.d, args.lam_W, args.lam_H, args.lam_b,
                      bias=not args.no_bias, loss=args.loss)


def _print_json(obj: Any) -> None:
    from .summary import jsonable

    print(json.dumps(jsonable(obj), indent=2, allow_nan=False))


# -- solve --------------------------------------------------------------------------
def _add_solve(sub: Any) -> None:
    p = sub.add_parser("solve", help="solve one problem and compare with the theorem")
    _add_problem_args(p)
    p.add_argument("--method", default="lbfgs", choices=["gd", "agd", "lbfgs", "convex"])
    p.add_argument("--seed", type=int, default=0, help="seed of the random start")
    p.add_argument("--max-iter", type=int, default=None, dest="max_iter")
    p.add_argument("--step", type=_float, default=None, help="fixed step (gd) / initial step (agd)")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--save", metavar="OUT.npz", help="save W (K x d), H (d x N), b (K), Y (K x N)")


def _cmd_solve(args: argparse.Namespace) -> int:
    from .solvers import solve
    from .summary import summarize

    problem = _problem_from_args(args)
    opts: dict[str, Any] = {}
    if args.method != "convex":
        if args.max_iter is not None:
            opts["max_iter"] = args.max_iter
        if args.step is not None:
            opts["step"] = args.step
        opts["progress"] = args.progress
    result = solve(problem, args.method, rng=args.seed, **opts)
    summary = summarize(problem, result)
    if args.save:
        np.savez(args.save, W=result.W, H=result.H, b=result.b, Y=problem.design.Y,
                 lam_W=problem.lam_W, lam_H=problem.lam_H, lam_b=problem.lam_b, bias=problem.bias)
    if args.json:
        _print_json(summary)
        return 0
    th = summary["theory"]
    print(problem.describe())
    print(f"  solver   {result.method}: {result.status.name} after {result.nit} iterations "
          f"({result.time:.3f} s), |grad| = {result.grad_norm:.2e}")
    print(f"  F        {result.fun:.15g}")
    if th["value"] is not None:
        print(f"  theory   {th['value']:.15g}   (relative gap {summary['gap_to_theory']:.2e})")
    if "certificate" in summary:
        print(f"  bound    {summary['certificate']['lower_bound']:.15g}   (certified gap "
              f"{summary['certificate']['gap']:.2e})")
    from .verify import verify

    print(verify(problem, result.W, result.H, result.b).table())
    return 0


# -- verify -------------------------------------------------------------------------
VERIFY_HOOKS: list[Callable[..., Any]] = []  # extra per-problem claims (e.g. the convex relaxation)


def _add_verify(sub: Any) -> None:
    p = sub.add_parser("verify", help="confirm the theorem on the default suite (the main job)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--seed", type=int, default=0)


def _cmd_verify(args: argparse.Namespace) -> int:
    from .suite import run_suite

    t0 = time.perf_counter()
    say = None if args.json else (lambda s: print(s, flush=True))
    outcomes = run_suite(seed=args.seed, hooks=tuple(VERIFY_HOOKS), progress=say)
    passed = all(o.verdict.passed for o in outcomes)
    elapsed = time.perf_counter() - t0
    if args.json:
        _print_json({"passed": passed, "time": elapsed, "problems": [
            {"name": o.case.name, "solver": o.solver, **o.verdict.to_dict()} for o in outcomes]})
    else:
        print()
        for o in outcomes:
            print(f"== {o.case.name}: {o.solver['status']}, {o.solver['nit']} it, {o.solver['time']:.2f} s")
            print(o.verdict.table())
        n_claims = sum(len(o.verdict.claims) for o in outcomes)
        n_ok = sum(c.passed for o in outcomes for c in o.verdict.claims)
        print(f"\nufm verify: {n_ok}/{n_claims} claims hold on {len(outcomes)} problems "
              f"in {elapsed:.1f} s -- {'THEOREM CONFIRMED' if passed else 'FAILED'}")
    return 0 if passed else 1


COMMANDS: dict[str, tuple[Callable[[Any], None], Callable[[argparse.Namespace], int]]] = {
    "solve": (_add_solve, _cmd_solve),
    "verify": (_add_verify, _cmd_verify),
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ufm", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add, _ in COMMANDS.values():
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command][1](args)
    except (UFMError, SolverError, FileNotFoundError) as exc:
        print(f"ufm: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ufm: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
