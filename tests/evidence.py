"""Evidence of the property tests: examples tried and the largest deviation per claim.

Every property test calls :func:`example` once per hypothesis example and
:func:`claim` for each measured deviation. ``claim`` asserts ``measured <= tol`` with
the problem in the message, and records the largest deviation seen per
``(property, claim)``. ``tests/conftest.py`` prints a summary at the end of the run and
writes everything as JSON to ``$UFM_EVIDENCE`` when that variable is set (``ufm verify
--thorough`` reads it).
"""

from __future__ import annotations

import math
import os
from typing import Any

RECORDS: dict[str, dict[str, Any]] = {}


def _current_test() -> str:
    name = os.environ.get("PYTEST_CURRENT_TEST", "unknown::unknown")
    return name.split(" ")[0].split("::")[-1].split("[")[0]


def _entry(test: str) -> dict[str, Any]:
    return RECORDS.setdefault(test, {"examples": 0, "claims": {}})


def example(description: str = "") -> None:
    """Count one hypothesis example of the current property (and, for ``ufm verify
    --thorough``, mark it in the progress file ``$UFM_PROGRESS``)."""
    _entry(_current_test())["examples"] += 1
    progress(".")


def progress(mark: str) -> None:
    """Append ``mark`` to ``$UFM_PROGRESS`` when set (read by ``ufm verify --thorough``)."""
    path = os.environ.get("UFM_PROGRESS")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(mark)


def claim(name: str, measured: float, tol: float, problem: Any, *, detail: str = "") -> None:
    """Record ``measured`` for claim ``name`` and assert ``measured <= tol``.

    ``problem`` (a UFMProblem or a string) is printed in the failure message; a nan
    measurement fails.
    """
    measured = float(measured)
    rec = _entry(_current_test())["claims"].setdefault(
        name, {"max": 0.0, "tol": float(tol), "n": 0, "worst": ""}
    )
    rec["n"] += 1
    desc = problem.describe() if hasattr(problem, "describe") else str(problem)
    if detail:
        desc = f"{desc} [{detail}]"
    if not math.isfinite(measured) or measured > rec["max"]:
        rec["max"] = measured if math.isfinite(measured) else float("inf")
        rec["worst"] = desc
    assert math.isfinite(measured) and measured <= tol, (
        f"claim {name!r}: measured {measured:.3e} > tol {tol:.1e} on {desc}"
    )


def check(name: str, condition: bool, problem: Any, message: str = "") -> None:
    """Record and assert a yes/no claim (stored as deviation 0 or 1, tolerance 0)."""
    desc = problem.describe() if hasattr(problem, "describe") else str(problem)
    rec = _entry(_current_test())["claims"].setdefault(
        name, {"max": 0.0, "tol": 0.0, "n": 0, "worst": ""}
    )
    rec["n"] += 1
    if not condition:
        rec["max"] = 1.0
        rec["worst"] = desc
    assert condition, f"claim {name!r} fails on {desc}: {message}"


def summary_lines(full: bool = False) -> list[str]:
    """The evidence in a few lines: totals and the claims closest to their tolerance;
    ``full``: a table of every property and, per claim, the largest deviation / tolerance."""
    lines = []
    if full:
        for test, rec in sorted(RECORDS.items()):
            lines.append(f"{test}: {rec['examples']} examples")
            for name, c in sorted(rec["claims"].items()):
                lines.append(f"    {name:<24} max {c['max']:.2e}  (tol {c['tol']:.0e}, {c['n']} checks)")
        return lines
    rows = [(_ratio(c), test, name, c) for test, rec in RECORDS.items() for name, c in rec["claims"].items()]
    n_examples = sum(rec["examples"] for rec in RECORDS.values())
    n_checks = sum(c["n"] for *_, c in rows)
    lines.append(f"{len(RECORDS)} properties, {n_examples} examples, {len(rows)} claims checked "
                 f"{n_checks} times; the closest to their tolerance (largest deviation / tolerance):")
    for ratio, test, name, c in sorted(rows, key=lambda r: (-r[0], r[1], r[2]))[:3]:
        lines.append(f"    {ratio:.2g}  {name} in {test} (max {c['max']:.2e}, tol {c['tol']:.0e})")
    lines.append("(every property and claim: UFM_EVIDENCE_FULL=1)")
    return lines


def _ratio(c: dict[str, Any]) -> float:
    if c["tol"] > 0:
        return float(c["max"]) / float(c["tol"])
    return 0.0 if c["max"] == 0 else float("inf")
