"""Best of several random starts, each recorded: for landscapes that are not benign
(``d < K-1``, imbalanced designs), where one start may end at a local minimum."""

from __future__ import annotations

import math
from typing import Any

from ..exceptions import UFMError
from ..problem import UFMProblem
from ..result import Result, Status


def solve_starts(problem: UFMProblem, method: str = "lbfgs", starts: int = 1, seed: int = 0,
                 **options: Any) -> Result:
    """Run ``method`` from the random starts with seeds ``seed, ..., seed + starts - 1``.

    Returns the result of lowest ``F`` among the finite ones (the first on ties), with
    ``extra["starts"]``: one entry per start (seed, F, status, iterations, certified
    gap) and ``extra["best_start"]``, its index. Stops early, keeping what it has, when
    a start is interrupted (Ctrl-C).
    """
    from . import solve

    if not isinstance(starts, int) or isinstance(starts, bool) or starts < 1:
        raise UFMError(f"The 'starts' parameter must be an int >= 1; got {starts!r}.")
    if method == "convex" and starts > 1:
        raise UFMError("--starts applies to the iterative methods; the convex relaxation is deterministic.")
    best: Result | None = None
    best_i = 0
    record: list[dict[str, Any]] = []
    for i in range(starts):
        res = solve(problem, method, rng=seed + i, **options)
        record.append({"seed": seed + i, "fun": res.fun, "status": res.status.name, "nit": res.nit,
                       "rel_gap": res.rel_gap})
        if math.isfinite(res.fun) and (best is None or not math.isfinite(best.fun) or res.fun < best.fun):
            best, best_i = res, i
        elif best is None:
            best, best_i = res, i
        if res.status == Status.INTERRUPTED:
            break
    assert best is not None
    best.extra = {**best.extra, "starts": record, "best_start": best_i}
    return best
