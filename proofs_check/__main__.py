"""Command line: ``python -m proofs_check [--list] [--mutants] [-k NAME ...]``.

Prints one aligned line per check, ``PASS  name  (0.12 s)  statement`` (a FAIL line
is followed by the residual), then ``proofs_check: P passed, F failed (T s)``.
Exit status 0 iff every selected check passed, 1 otherwise, 2 on bad usage.
The checks are independent: ``-j N`` runs them in N processes (default: one per CPU);
the lines still come in the registry's order.

``--mutants`` runs instead each check's registered wrong variant (``core.MUTANTS``), one
line ``REJECTS name (s) what`` (or ``BLIND``), then ``N/N checks reject their wrong
variant``; exit 0 iff every selected check has one and rejects it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator, Sequence

from .core import REGISTRY, CheckResult, run_check, run_mutant, selected


def _run_named(name: str) -> CheckResult:
    """Run the registered check ``name`` (in a worker process: checks travel by name)."""
    if name not in REGISTRY:  # a worker started by "spawn" has not imported the checks yet
        selected()
    return run_check(REGISTRY[name])


def _results(names: list[str], jobs: int) -> Iterator[CheckResult]:
    """The checks' results in the order of ``names``, computed in ``jobs`` processes."""
    if jobs <= 1 or len(names) <= 1:
        yield from map(_run_named, names)
        return
    import multiprocessing

    with multiprocessing.Pool(min(jobs, len(names))) as pool:
        yield from pool.imap(_run_named, names)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m proofs_check",
        description="Symbolic (sympy) checks of the identities and theorem steps of the multi-label UFM theorem (docs/proofs.md).",
    )
    p.add_argument("--list", action="store_true", help="list the checks and exit")
    p.add_argument("-k", dest="names", action="append", metavar="NAME",
                   help="run only checks whose name equals or contains NAME (repeatable)")
    p.add_argument("-j", "--jobs", type=int, default=0, metavar="N",
                   help="worker processes (default 0: one per CPU, at most one per check; 1: in this process)")
    p.add_argument("--mutants", action="store_true",
                   help="run every check's wrong variant instead; each must be rejected")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="also print each check's assumptions and kind")
    return p


def format_line(r: CheckResult, width: int) -> str:
    """``PASS  name  (0.12 s)  statement`` with ``name`` padded to ``width``."""
    status = "PASS" if r.passed else "FAIL"
    return f"{status}  {r.name:<{width}}  ({r.seconds:6.2f} s)  {r.statement}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        checks = selected(args.names)
    except KeyError as exc:
        print(f"proofs_check: {exc.args[0]}", file=sys.stderr)
        return 2
    width = max(len(c.name) for c in checks)
    if args.list:
        for c in checks:
            print(f"{c.name:<{width}}  {'[' + c.kind + ']':<10}  {c.statement}")
            print(f"{'':<{width}}    assumes: {c.assumptions}")
        return 0
    if args.mutants:
        return _mutants(checks, width)
    t0 = time.perf_counter()
    if args.jobs < 0:
        print("proofs_check: -j must be >= 0", file=sys.stderr)
        return 2
    jobs = args.jobs or (os.cpu_count() or 1)
    results = []
    for r in _results([c.name for c in checks], jobs):
        results.append(r)
        print(format_line(r, width), flush=True)
        if args.verbose:
            print(f"      [{r.kind}] assumes: {r.assumptions}")
        if not r.passed:
            print(f"      residual: {r.residual}", flush=True)
    n_fail = sum(not r.passed for r in results)
    total = time.perf_counter() - t0
    print(f"proofs_check: {len(results) - n_fail} passed, {n_fail} failed ({total:.1f} s)")
    return 1 if n_fail else 0


def _mutants(checks: Sequence, width: int) -> int:
    """Run the wrong variants; 0 iff every check rejects its own."""
    t0 = time.perf_counter()
    n_ok = 0
    for c in checks:
        r = run_mutant(c)
        n_ok += r.rejected
        print(f"{'REJECTS' if r.rejected else 'BLIND  '}  {r.name:<{width}}  ({r.seconds:6.2f} s)  {r.what}",
              flush=True)
        if not r.rejected:
            print(f"      residual: {r.residual}", flush=True)
    total = time.perf_counter() - t0
    print(f"proofs_check --mutants: {n_ok}/{len(checks)} checks reject their wrong variant ({total:.1f} s)")
    return 0 if n_ok == len(checks) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # e.g. `python -m proofs_check --list | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
