"""Compare a solution with the theorem and the certificate, claim by claim (docs/theory.md section 3).

Each :class:`Claim` holds a measured deviation, a tolerance and PASS/FAIL; a
:class:`Verdict` collects them for one problem and renders a readable table.
Deviations are relative (Frobenius norms divided by the norm of the prediction) unless
the prediction is zero, where they are absolute.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .certificate import Certificate, certify
from .exceptions import UFMError
from .metrics import Groups, tagwise
from .objectives.full import value_and_grad
from .problem import UFMProblem, check_problem, real_array
from .theory import (
    COLLAPSE,
    NOT_APPLICABLE,
    TRIVIAL,
    Prediction,
    centering,
    predict,
    predicted_logits,
)

TOL_VALUE = 1e-9  # relative gap of F to the predicted min F
TOL_STRUCTURE = 1e-6  # relative deviation of each structural claim
TOL_CERTIFICATE = 1e-6  # certified relative gap (F - D) / |F|


@dataclass(frozen=True)
class Claim:
    """One claim: a measured deviation against a tolerance."""

    name: str
    statement: str
    measured: float
    tol: float

    @property
    def passed(self) -> bool:
        return bool(math.isfinite(self.measured) and self.measured <= self.tol)

    def to_dict(self) -> dict:
        return {"name": self.name, "statement": self.statement, "measured": self.measured,
                "tol": self.tol, "passed": self.passed}


@dataclass
class Verdict:
    """Every claim checked for one problem and one solution."""

    problem: str
    regime: str
    reason: str
    claims: list[Claim] = field(default_factory=list)
    certificate: Certificate | None = None

    @property
    def passed(self) -> bool:
        """True only when claims were checked and every one holds (see :attr:`verified`)."""
        return self.verified is True

    @property
    def verified(self) -> bool | None:
        """``True``: claims were checked and all hold; ``False``: one fails; ``None``: none to check."""
        if not self.claims:
            return None
        return all(c.passed for c in self.claims)

    @property
    def why(self) -> str:
        """One sentence: what was verified, or why not (the failing claims, the certified gap)."""
        return self.explain()

    def explain(self, converged: bool = True, *, status: Any = None, method: str | None = None,
                starts: int = 1, schedule: str | None = None) -> str:
        """:attr:`why`, for a point a solver returned; ``converged=False``: it stopped early,
        so a gap is first of all an unfinished run (not a local minimum). ``status``,
        ``method``, ``starts`` and the minibatch ``schedule`` (of the :class:`~ufm.result.Result`) pick the hint that fits:
        epochs for a fixed schedule, a nonconvex method for a relaxation of too high rank,
        more starts than were already tried."""
        if not self.claims:
            return (f"nothing to claim: {self.reason}; no certificate exists for this loss"
                    if self.certificate is None else f"nothing to claim: {self.reason}")
        failed = [c for c in self.claims if not c.passed]
        gap = "" if self.certificate is None else f"certified gap {self.certificate.rel_gap:.2g}"
        if not failed:
            what = "the theorem's claims hold" if self.regime != NOT_APPLICABLE else "certified globally optimal"
            return f"{what} ({len(self.claims)} claims)" + (f"; {gap}" if gap else "")
        names = ", ".join(c.name for c in failed)
        hint = ""
        if not converged:
            hint = "; " + _rerun_hint(status, method, schedule)
        elif self.certificate is not None and self.certificate.rel_gap > 1e-3:
            more = ("try several starts (--starts N)" if starts <= 1 else
                    f"the best of {starts} starts did not close it: try more (--starts {2 * starts})")
            hint = ("; possibly a local minimum or a saddle, or (below d = K) a relaxation that is not "
                    f"tight: {more}")
        elif any(not math.isfinite(c.measured) for c in failed):
            hint = "; the candidate has non-finite values"
        elif (self.certificate is not None and "certificate" not in names.split(", ")
              and self.certificate.rel_gap <= next((c.tol for c in self.claims if c.name == "certificate"), 1e-6)):
            hint = ("; the point is certified optimal, but its structure is resolved only as far as the solver "
                    "converged: a method that converges further (--method lbfgs) resolves it")
        return f"failed: {names}" + (f" ({gap})" if gap else "") + hint

    def as_flags(self) -> dict[str, bool]:
        return {c.name: c.passed for c in self.claims}

    def to_dict(self) -> dict:
        return {"problem": self.problem, "regime": self.regime, "reason": self.reason,
                "passed": self.passed, "verified": self.verified, "why": self.why,
                "claims": [c.to_dict() for c in self.claims]}

    def table(self, converged: bool = True, **why: Any) -> str:
        lines = [f"{self.problem}", f"  regime: {self.regime} -- {self.reason}"]
        for c in self.claims:
            mark = "PASS" if c.passed else "FAIL"
            lines.append(f"  {mark}  {c.name:<16} {c.measured:10.3e} <= {c.tol:.0e}   {c.statement}")
        state = {True: "true", False: "false", None: "null"}[self.verified]
        lines.append(f"  verified: {state} -- {self.explain(converged, **why)}")
        return "\n".join(lines)


SCHEDULED = ("sgd", "adam", "network")  # fixed schedules: they stop after their epochs


def _rerun_hint(status: Any, method: str | None, schedule: str | None = None) -> str:
    """What to change when a solver stopped before converging, for its status, method and
    (minibatch) learning-rate schedule."""
    name = getattr(status, "name", status)
    if name == "RANK_EXCEEDS_D":
        return ("the convex relaxation's minimiser has rank > d, so no point at this d attains it (its "
                "certified bound still holds): solve with a nonconvex method (--method lbfgs)")
    if method in SCHEDULED:
        if schedule in (None, "constant"):
            return ("the fixed schedule ended before converging: raise the epochs (--epochs) or decay the "
                    "learning rate (--lr-schedule cosine)")
        return ("the fixed schedule ended before converging: raise the epochs (--epochs) or lower the "
                "learning rate (--lr)")
    if name == "NUMERICAL_ERROR":
        return "the run diverged: reduce the step (--step)"
    if name == "INTERRUPTED":
        return "the run was interrupted: run it to the end"
    return "the solver stopped before converging: raise the iteration limit (--max-iter) or change the step"


def _rel(diff: np.ndarray, ref: np.ndarray) -> float:
    nr = float(np.linalg.norm(ref))
    nd = float(np.linalg.norm(diff))
    return nd / nr if nr > 0 else nd


def verify(
    problem: UFMProblem, W: np.ndarray, H: np.ndarray, b: np.ndarray | None = None, *,
    prediction: Prediction | None = None, tol_value: float = TOL_VALUE,
    tol_structure: float = TOL_STRUCTURE, tol_certificate: float = TOL_CERTIFICATE,
    certifier: Callable[..., Certificate] = certify,
) -> Verdict:
    """Check the candidate ``(W, H, b)`` against docs/theory.md section 3 and the certificate.

    Claims in the collapse regime: ``value``, ``bias``, ``nc1`` (within-set collapse),
    ``etf`` (``W W^T = sqrt(lam_H/lam_W) sigma P``), ``self_duality``
    (``h_k = kappa s_1 w_k``, when single labels are present), ``tagwise``
    (``h_S = kappa s_m sum_{k in S} w_k``), ``tagwise_angle`` (radians) and
    ``tagwise_scale`` (``c_m``), ``logits`` and ``certificate``. In the trivial regime:
    ``value``, ``trivial`` (``W = 0, H = 0``), ``bias``, ``certificate``. When the
    theorem does not apply only the ``certificate`` claim is made. ``certifier(problem, W,
    H, b)`` gives the certificate (:func:`ufm.fixed.certify_fixed` for a fixed classifier).

    Parameters
    ----------
    problem : UFMProblem
    W : ndarray, shape (K, d)
    H : ndarray, shape (d, N)
    b : ndarray, shape (K,), optional
    prediction : Prediction, optional
        ``predict(problem)`` if not given.
    tol_value : float, default 1e-9
        Relative tolerance of ``F = min phi``.
    tol_structure : float, default 1e-6
        Relative tolerance of the structural claims.
    tol_certificate : float, default 1e-6
        Largest certified relative gap ``(F - D)/|F|`` accepted.
    certifier : callable, default :func:`ufm.certify`
        ``certifier(problem, W, H, b) -> Certificate``.

    Returns
    -------
    Verdict
        ``claims`` (name, measured deviation, tolerance, passed), ``passed``, ``table()``.

    Raises
    ------
    UFMError
        Arrays of the wrong shape.

    Examples
    --------
    >>> import ufm
    >>> p = ufm.UFMProblem(ufm.balanced(4, {1: 2, 2: 1}), d=4, lam_W=5e-3, lam_H=5e-3, lam_b=1e-2)
    >>> v = verify(p, *ufm.predicted_minimizer(p))
    >>> v.passed, sorted(v.as_flags())[:3]
    (True, ['bias', 'certificate', 'etf'])
    """
    from .objectives.layout import _check_shapes

    check_problem(problem, "verify")
    W = real_array("W", W, "verify")
    H = real_array("H", H, "verify")
    b = np.zeros(problem.K) if (b is None or not problem.bias) else real_array("b", b, "verify")
    _check_shapes(problem, W, H, b)
    if prediction is not None and not isinstance(prediction, Prediction):
        raise TypeError(f"The 'prediction' argument of ufm.verify must be a ufm.Prediction (ufm.predict(problem)) "
                        f"or None; got {type(prediction).__name__}.")
    for name, tol in (("tol_value", tol_value), ("tol_structure", tol_structure),
                      ("tol_certificate", tol_certificate)):
        if not (isinstance(tol, (int, float)) and not isinstance(tol, bool) and 0 <= tol < math.inf):
            raise UFMError(f"The '{name}' parameter of verify must be a finite float >= 0; got {tol!r}.")
    pred = predict(problem) if prediction is None else prediction
    verdict = Verdict(problem.describe(), pred.regime, pred.reason)
    add = verdict.claims.append
    if not (np.all(np.isfinite(W)) and np.all(np.isfinite(H)) and np.all(np.isfinite(b))):
        add(Claim("finite", "W, H and b are finite (a solver that diverged gives nan or inf)",
                  math.inf, 0.0))
        return verdict
    F = value_and_grad(problem, W, H, b)[0]
    if pred.regime != NOT_APPLICABLE:
        assert pred.value is not None
        add(Claim("value", "F equals the predicted min F (min phi + const)",
                  abs(F - pred.value) / max(abs(pred.value), 1e-300), tol_value))
        if problem.bias and problem.lam_b == 0:
            add(Claim("bias", "b = beta 1 (lam_b = 0): ||b - mean(b) 1||", float(np.linalg.norm(b - b.mean())), tol_structure))
        else:
            add(Claim("bias", "b = 0", float(np.linalg.norm(b)), tol_structure))
    if pred.regime == TRIVIAL:
        add(Claim("trivial", "W = 0 and H = 0: ||W||_F + ||H||_F", float(np.linalg.norm(W) + np.linalg.norm(H)), tol_structure))
    elif pred.regime == COLLAPSE:
        design = problem.design
        groups = Groups.from_arrays(H, design.Y)
        Hg = groups.means  # (d, G) in canonical order = design.sets
        spread = H - Hg[:, groups.index]
        add(Claim("nc1", "h_i = h_S within every label set (max deviation / max ||h_S||)",
                  float(np.max(np.linalg.norm(spread, axis=0)) / max(np.max(np.linalg.norm(Hg, axis=0)), 1e-300)),
                  tol_structure))
        target = math.sqrt(problem.lam_H / problem.lam_W) * pred.sigma * centering(problem.K)
        add(Claim("etf", "W W^T = sqrt(lam_H/lam_W) sigma P", _rel(W @ W.T - target, target), tol_structure))
        scale = np.array([pred.kappa * pred.s.get(len(S), 0.0) for S in groups.sets])
        H_pred = (W.T @ design.Yg) * scale  # (d, G): kappa s_m sum_{k in S} w_k
        if 1 in pred.s:
            single = groups.multiplicity == 1
            add(Claim("self_duality", "h_k = kappa s_1 w_k", _rel(Hg[:, single] - H_pred[:, single], H_pred[:, single]), tol_structure))
        add(Claim("tagwise", "h_S = kappa s_m sum_{k in S} w_k for every label set", _rel(Hg - H_pred, H_pred), tol_structure))
        tw = tagwise(H, design.Y, W, pred.c, ratio=False)  # angles and scales; not the all-pairs ratio
        if tw:
            angles = [v["angle_deg_max"] for mm, v in tw.items() if mm < problem.K]
            if angles:
                add(Claim("tagwise_angle", "angle(h_S, sum_{k in S} h_k) = 0 (max, radians)", math.radians(max(angles)), tol_structure))
            if pred.c:
                errs = [max(abs(v["scale_min"] - pred.c[mm]), abs(v["scale_max"] - pred.c[mm])) / pred.c[mm]
                        for mm, v in tw.items() if mm in pred.c]
                if errs:
                    add(Claim("tagwise_scale", "||h_S|| / ||mean_{k in S} h_k|| = c_m = m s_m / s_1", max(errs), tol_structure))
        Zg = W @ Hg + (b - b.mean())[:, None]
        Zp = predicted_logits(problem, pred)
        add(Claim("logits", "W h_S + b - mean(b) 1 = s_m (1_S - (m/K) 1)", _rel(Zg - Zp, Zp), tol_structure))
    if problem.loss in ("pal", "pal-normalized"):
        try:
            cert = certifier(problem, W, H, b)
        except UFMError as exc:  # a point so large that F overflows: nothing is certified
            add(Claim("certificate", f"certified gap of the dual bound: {exc}", math.inf, tol_certificate))
            return verdict
        verdict.certificate = cert
        if pred.regime == NOT_APPLICABLE and problem.d < problem.K:
            # below d = K the relaxation may be strictly lower than min F (docs/theory.md section 5):
            # the bound must hold, but a small gap cannot be demanded
            add(Claim("certificate_valid", "dual bound D <= F (relative violation beyond rounding)",
                      max(-cert.rel_gap, 0.0), tol_certificate))
            # ... and nothing is verified unless the gap closes (a local minimum keeps it open)
            add(Claim("certificate", "certified gap (F - D) / |F| closes (below d = K it may not, even "
                      "at the global minimum)", cert.rel_gap, tol_certificate))
        else:
            add(Claim("certificate", "certified gap |F - D| / |F| of the dual bound (a negative gap beyond rounding fails)", abs(cert.rel_gap), tol_certificate))
    return verdict
