"""``ufm verify``: the theorem confirmed claim by claim on the default suite (the main job)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from ..exceptions import UFMError
from .common import gap_text, nonneg_int, pos_int, print_json

VERIFY_HOOKS: list[Callable[..., Any]] = []  # extra per-problem claims (e.g. the convex relaxation)


def add(sub: Any) -> None:
    p = sub.add_parser("verify", help="confirm the theorem on the default suite (the main job)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed of the random starts (>= 0)")
    p.add_argument("--thorough", action="store_true",
                   help="run the property-based tests with the long hypothesis profile (hundreds of "
                        "random problems per property; needs the source tree and .[dev]) and "
                        "summarise examples tried and the largest deviation per claim")
    p.add_argument("--rigorous", action="store_true",
                   help="also prove each certificate's bracket D <= min F <= F with bounded rounding "
                        "errors (ufm/certificate_rigorous.py): claims rigorous_gap, rigorous_value")
    p.add_argument("--details", action="store_true",
                   help="after the one-line summaries, every claim of every problem with its "
                        "measured deviation, tolerance and statement")
    p.add_argument("--examples", type=pos_int, default=None, metavar="N",
                   help="with --thorough: examples per property (default: the long profile's 300)")


def run(args: argparse.Namespace) -> int:
    if args.thorough and args.rigorous:
        raise UFMError("--rigorous applies to the default suite, not with --thorough.")
    if args.thorough:
        from ..thorough import run_thorough

        out = run_thorough(seed=args.seed, max_examples=args.examples,
                           say=None if args.json else (lambda s: print(s, flush=True)))
        if args.json:
            print_json(out)
        return 0 if out["passed"] else 1
    if args.examples is not None:
        raise UFMError("--examples only applies with --thorough.")
    from ..suite import run_suite

    t0 = time.perf_counter()
    if not args.json:
        print(f"ufm verify: each problem solved by L-BFGS from a random start (seed {args.seed}), then "
              "checked claim by claim\nagainst the theorem, cvxpy's convex relaxation and the dual "
              "certificate (docs/theory.md)", flush=True)
        print(f"      {'problem':<{NAME_WIDTH}}  {'regime':<14}  claims  {'certified gap':>13}  "
              f"{'time':>6}", flush=True)
    outcomes = run_suite(seed=args.seed, hooks=tuple(VERIFY_HOOKS),
                         progress=None if args.json else (lambda o, i, n: print(row(o), flush=True)),
                         rigorous=getattr(args, "rigorous", False))
    passed = all(o.verdict.passed for o in outcomes)
    elapsed = time.perf_counter() - t0
    if args.json:
        print_json({"passed": passed, "time": elapsed, "problems": [
            {"name": o.case.name, "solver": o.solver, **o.verdict.to_dict()} for o in outcomes]})
        return 0 if passed else 1
    if args.details:
        for o in outcomes:
            print(f"\n== {o.case.name}: {o.solver['status']}, {o.solver['nit']} it, {o.solver['time']:.2f} s")
            print(o.verdict.table())
    n_claims = sum(len(o.verdict.claims) for o in outcomes)
    n_ok = sum(c.passed for o in outcomes for c in o.verdict.claims)
    print(f"ufm verify: {n_ok}/{n_claims} claims hold on {len(outcomes)} problems "
          f"in {elapsed:.1f} s -- {'THEOREM CONFIRMED' if passed else 'FAILED'}")
    if not args.details:
        print("(every claim with its measured deviation and tolerance: ufm verify --details)")
    return 0 if passed else 1


NAME_WIDTH = 40
def row(o: Any) -> str:
    """One line per problem: verdict, name, regime, claims held, certified gap, time."""
    v = o.verdict
    held = sum(c.passed for c in v.claims)
    gap = gap_text(None if v.certificate is None else float(v.certificate.rel_gap))
    name = o.case.name if len(o.case.name) <= NAME_WIDTH else o.case.name[:NAME_WIDTH - 3] + "..."
    return (f"{'PASS' if v.passed else 'FAIL'}  {name:<{NAME_WIDTH}}  {v.regime:<14}  "
            f"{held:>2}/{len(v.claims):<3}  {gap:>13}  {o.solver['time']:>4.2f} s")
