"""Minority-collapse thresholds of the ``minority`` sweep's designs, from :mod:`ufm.thresholds`
(the package's one implementation; docs/thresholds.md), and the state of the minority rows of a
stored optimum (apart, merged, vanished, W = 0) for the phase table.

Per design (classes 2, 3 the minority; they are exchangeable in every design of the spec):

- ``merge``: the closed form ``mu_23 = sqrt((n_{2\\3} + n_{3\\2})/2) / N`` (proved in
  docs/thresholds.md section 4) with its certified bracket ``mu_23 (1 -+ RTOL/2)``;
- ``vanish``: row 2 (and with it row 3) becomes 0: a certified bracket by bisection;
- ``trivial``: ``W = 0, H = 0``: the closed form (section 2) with its certified bracket.

The thresholds depend only on the design and the bias setting; they are computed once per
process (:func:`thresholds` is cached), so the table, the findings and the figure share them.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import numpy as np

from ..exceptions import UFMError

RTOL = 1e-6  # relative width of every certified bracket (ufm.thresholds' default)
ZERO = 1e-5  # a row (or a row difference) below ZERO x the largest row norm is 0 (phase table only)
TRIVIAL = 1e-6  # ||W||_F below this: W = 0 (phase table only)
STATES = ("separate", "merged", "zero", "trivial")
MINORITY = (2, 3)


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


def thresholds(problem: dict[str, Any]) -> dict[str, Any]:
    """``{"merge", "vanish", "trivial"}`` of the design of ``problem`` (a record's problem dict):
    each ``{"mu", "bracket": (lo, hi), "closed_form": bool, "certified": bool}``, from
    :func:`ufm.thresholds.threshold` at the problem's ``lam_b`` and bias, ``rtol = RTOL``."""
    key = {k: problem[k] for k in ("K", "sets", "counts", "lam_b", "bias")}
    return _thresholds(json.dumps(key, sort_keys=True))


@cache
def _thresholds(key_json: str) -> dict[str, Any]:
    from ..designs import from_counts
    from ..theory import exchangeable
    from ..thresholds import threshold

    p = json.loads(key_json)
    design = from_counts(p["K"], {tuple(S): int(c) for S, c in zip(p["sets"], p["counts"])})
    if not exchangeable(design, *MINORITY):
        raise UFMError("minority report: classes 2 and 3 are not exchangeable in a design of the sweep "
                       "(the spec must keep the two minority classes symmetric).")
    out: dict[str, Any] = {}
    for kind, cls in (("merge", MINORITY), ("vanish", MINORITY[:1]), ("trivial", ())):
        res = threshold(kind, design, classes=cls, lam_b=float(p["lam_b"]), bias=bool(p["bias"]), rtol=RTOL)
        if not res.certified:
            raise UFMError(f"minority report: the {kind} bracket of {res.details['design']} is not certified "
                           f"({res.details['lo']['reason']}; {res.details['hi']['reason']}).")
        out[kind] = {"mu": res.mu, "bracket": tuple(res.bracket), "closed_form": res.method == "closed-form",
                     "certified": res.certified}
    return out
