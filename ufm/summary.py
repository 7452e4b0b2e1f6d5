"""One JSON-able summary of a solved problem: solver outcome, theory, metrics, verdict,
certificate. Used by ``ufm solve --json``, ``ufm verify`` and the sweeps."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .metrics import all_metrics
from .problem import UFMProblem
from .result import Result
from .theory import Prediction, predict
from .verify import Verdict, verify


def jsonable(obj: Any) -> Any:
    """Recursively convert numpy scalars/arrays and non-finite floats (to None) for JSON."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    return obj


def theory_dict(pred: Prediction) -> dict:
    return {
        "value": pred.value, "regime": pred.regime, "reason": pred.reason,
        "s": {int(k): v for k, v in pred.s.items()}, "c": {int(k): v for k, v in pred.c.items()},
        "sigma": pred.sigma, "kappa": pred.kappa, "mu": pred.mu, "mu_crit": pred.mu_crit,
    }


def summarize(problem: UFMProblem, result: Result, prediction: Prediction | None = None,
              verdict: Verdict | None = None, *, metrics: bool = True) -> dict:
    """Everything a user wants to know about ``result`` on ``problem``, JSON-able.

    ``verdict``: the result's :func:`ufm.verify` verdict when the caller has it already (it
    is not computed twice); it must come with the ``prediction`` it was checked against.
    ``metrics=False`` leaves ``"metrics"`` None (the NC metrics cost seconds at large K and
    only the JSON output shows them).
    """
    verdict_in = verdict
    if result.extra.get("fixed_W"):  # a frozen classifier: its own prediction and certificate
        from .fixed import predict_fixed, verify_fixed

        pred = predict_fixed(problem, result.W) if prediction is None else prediction
        verdict = verdict_in or verify_fixed(problem, result.W, result.H, result.b, prediction=pred)
    else:
        pred = predict(problem) if prediction is None else prediction
        verdict = verdict_in or verify(problem, result.W, result.H, result.b, prediction=pred)
    metrics_out: dict | None = None
    if metrics and np.all(np.isfinite(result.x)):
        try:
            with np.errstate(all="ignore"):
                metrics_out = all_metrics(result.W, result.H, result.b if problem.bias else None,
                                          problem.design.Y, pred.c)
        except np.linalg.LinAlgError:  # a point so large that the eigensolvers fail (diverged)
            metrics_out = None
    gap = None
    if pred.value is not None:
        gap = (result.fun - pred.value) / max(abs(pred.value), 1e-300)
    out: dict[str, Any] = {
        "problem": problem.to_dict() | {"description": problem.describe(), "N": problem.N},
        "method": result.method,
        "objective": result.fun,
        "status": result.status.name,
        "success": result.success,
        "message": result.message,
        "nit": result.nit,
        "nfev": result.nfev,
        "grad_norm": result.grad_norm,
        "time": result.time,
        # solved on one feature column per label set (ufm.objectives.grouped): nc1 holds by construction
        "grouped": bool(result.extra.get("group", False)),
        # the feature dimension the solver worked in (ufm.objectives.grouped.solver_width, or d)
        "solver_width": int(result.extra.get("width", problem.d)),
        # "mixed": the bulk ran in float32 (ufm.solvers.mixed), what it did in "float32"; the answer is float64
        "precision": result.extra.get("precision", "float64"),
        "theory": theory_dict(pred),
        "gap_to_theory": gap,
        "metrics": metrics_out,
        "verdict": verdict.as_flags(),
        "claims": [c.to_dict() for c in verdict.claims],
        # tri-state: True (claims checked, all hold), False (one fails), None (nothing to claim)
        "verified": verdict.verified,
        "verified_reason": verdict.explain(converged=result.success, **why_args(result)),
    }
    if "float32" in result.extra:
        out["float32"] = result.extra["float32"]
    if result.extra.get("fixed_W"):
        out["fixed_classifier"] = {"row_norms": np.linalg.norm(result.W, axis=1)}
    if verdict.certificate is not None:
        cr = verdict.certificate
        out["certificate"] = {"lower_bound": cr.lower_bound, "gap": cr.gap, "rel_gap": cr.rel_gap}
    if result.method == "convex":  # the relaxation's own numbers (ufm.solvers.convex)
        e = result.extra
        out["convex"] = {k: e.get(k) for k in (
            "value", "lower_bound", "solver_value", "rank", "factored", "note", "formulation", "solver",
            "cvxpy_status", "solve_time", "setup_time", "singular_values", "polish_steps")}
    return jsonable(out)


def why_args(result: Any) -> dict[str, Any]:
    """What :meth:`ufm.verify.Verdict.explain` needs of a result to pick its hint."""
    return {"status": result.status, "method": result.method, "starts": len(result.extra.get("starts") or [1]),
            "schedule": result.extra.get("lr_schedule")}
