"""``ufm verify``: the theorem confirmed claim by claim on the default suite (the main job)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from ..exceptions import UFMError
from .common import nonneg_int, pos_int, print_json

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
    say = None if args.json else (lambda s: print(s, flush=True))
    outcomes = run_suite(seed=args.seed, hooks=tuple(VERIFY_HOOKS), progress=say,
                         rigorous=getattr(args, "rigorous", False))
    passed = all(o.verdict.passed for o in outcomes)
    elapsed = time.perf_counter() - t0
    if args.json:
        print_json({"passed": passed, "time": elapsed, "problems": [
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
