"""Minority-collapse thresholds by certified bisection between two grid points of the
``minority`` sweep: the state of the minority rows (apart, merged, vanished, W = 0) is read
off certified optima at the geometric midpoint until the interval holding the change is
narrower than :data:`REL` (relative).

A local stand-in for the package's threshold command (issue 27, items 1-2): once
``ufm.thresholds`` exists, :func:`bisect` is the one function to replace by a call to it.
Every solve is certified (relative gap below :data:`CERT`), or the bisection stops with an
error; results are cached per call, so the table and the figure share them.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from functools import cache
from typing import Any

import numpy as np

from ..exceptions import UFMError

REL = 1e-4  # the bisection stops when hi / lo - 1 is below this
CERT = 1e-9  # every midpoint's optimum must be certified to this relative gap
ZERO = 1e-5  # a row (or a row difference) below ZERO x the largest row norm is 0
TRIVIAL = 1e-6  # ||W||_F below this: W = 0
STATES = ("separate", "merged", "zero", "trivial")


def state_of(W: np.ndarray) -> tuple[str, float, float]:
    """``(state, minority norm / max norm, ||w_2 - w_3|| / max norm)`` of classifier rows W (K, d)
    whose classes 2 and 3 are the minority."""
    n = np.linalg.norm(W, axis=1)
    top = float(n.max())
    if float(np.linalg.norm(W)) < TRIVIAL or top == 0:
        return "trivial", 0.0, 0.0
    rho = float(max(n[2], n[3]) / top)
    delta = float(np.linalg.norm(W[2] - W[3]) / top)
    if rho < ZERO:
        return "zero", rho, delta
    if delta < ZERO:
        return "merged", rho, delta
    return "separate", rho, delta


def bisect(problem: dict[str, Any], lo: float, hi: float, state: str, rel: float = REL) -> tuple[float, float, int]:
    """``(lo, hi, solves)``: the mu = sqrt(lam_W lam_H) at which the minority rows reach ``state``
    (or a later one) lies in (lo, hi], narrowed from the given grid interval (not reached at
    ``lo``, reached at ``hi``) to ``hi / lo - 1 <= rel`` by certified solves at lam_W/lam_H
    of ``problem``."""
    return _bisect(json.dumps(problem, sort_keys=True), float(lo), float(hi), state, float(rel))


@cache
def _bisect(problem_json: str, lo: float, hi: float, state: str, rel: float) -> tuple[float, float, int]:
    from ..problem import UFMProblem
    from ..solvers import solve

    p = UFMProblem.from_dict(json.loads(problem_json))
    ratio = math.sqrt(p.lam_W / p.lam_H)
    level = STATES.index(state)
    n = 0
    while hi / lo - 1 > rel:
        mid = math.sqrt(lo * hi)
        res = solve(replace(p, lam_W=mid * ratio, lam_H=mid / ratio), "lbfgs", rng=0)
        n += 1
        if not abs(res.rel_gap) <= CERT:
            raise UFMError(f"Minority threshold bisection: the optimum at mu = {mid:.6g} is not certified "
                           f"(relative gap {res.rel_gap:.2g} > {CERT:g}); tighten the solver tolerances.")
        if STATES.index(state_of(res.W)[0]) >= level:
            hi = mid
        else:
            lo = mid
    return lo, hi, n
