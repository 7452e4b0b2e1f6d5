"""L-BFGS on ``F(W, H, b)``: a wrapper of :func:`scipy.optimize.minimize` (L-BFGS-B, no bounds)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from scipy.optimize import minimize

from ..objective import fun_and_grad
from ..problem import UFMProblem
from ..result import Result, Status
from ._common import History, check_options, finish, progress_bar, starting_point
from .polish import newton_polish

LBFGS_DEFAULTS: dict[str, Any] = {
    "max_iter": 20_000, "gtol": 1e-11, "ftol": 0.0, "maxcor": 20, "history_every": 10,
    "history_metrics": True, "init_scale": 0.1, "progress": False, "callback": None,
    "polish": True,
}


class _Stop(Exception):
    pass


def lbfgs(
    problem: UFMProblem, x0: np.ndarray | tuple | None = None, *,
    rng: np.random.Generator | int | None = None, **options: Any,
) -> Result:
    """Minimise ``F`` with scipy's L-BFGS-B (no bounds).

    Options: ``max_iter`` (20000), ``gtol`` (1e-11; on the Euclidean gradient norm --
    scipy's own test on the largest component is set to ``gtol / sqrt(n)`` so both hold),
    ``ftol`` (0: off; scipy's relative reduction), ``maxcor`` (20 correction pairs),
    ``history_every`` (10), ``history_metrics``, ``init_scale`` (0.1), ``progress``,
    ``callback(it, x, f) -> stop?``, ``polish`` (True: when L-BFGS stops above ``gtol``,
    Newton-CG steps on the exact Hessian, accepted while they reduce the gradient norm,
    finish the job; see :mod:`ufm.solvers.polish`).

    Status: converged on ``gtol``/``ftol``, ``MAX_ITER``, or ``LINE_SEARCH_FAILED`` when
    scipy's line search can no longer decrease ``F`` -- which at these tolerances usually
    means float64 precision was reached; the gradient norm in the Result says how close.
    """
    o = check_options("lbfgs", options, LBFGS_DEFAULTS)
    x = starting_point(problem, x0, o["init_scale"], rng)
    t0 = time.perf_counter()
    hist = History(problem, o["history_every"], o["history_metrics"])
    bar = progress_bar(o["progress"], o["max_iter"], "lbfgs")
    state = {"nfev": 0, "it": 0, "x": x, "f": np.inf, "g": None}

    def fg(z: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = fun_and_grad(z, problem)
        state["nfev"] += 1
        return f, g

    def cb(intermediate_result: Any) -> None:
        state["it"] += 1
        z = intermediate_result.x
        state["x"] = z
        bar.update()
        if hist.every and state["it"] % hist.every == 0:
            f, g = fun_and_grad(z, problem)
            hist.maybe_record(state["it"], z, f, float(np.linalg.norm(g)))
        if o["callback"] and o["callback"](state["it"], z, intermediate_result.fun):
            raise StopIteration

    f0, g0 = fg(x)
    hist.maybe_record(0, x, f0, float(np.linalg.norm(g0)))
    status = Status.MAX_ITER
    try:
        res = minimize(
            fg, x, jac=True, method="L-BFGS-B", callback=cb,
            options={
                "maxiter": int(o["max_iter"]), "maxfun": 10 * int(o["max_iter"]) + 100,
                "gtol": float(o["gtol"]) / np.sqrt(x.size), "ftol": float(o["ftol"]),
                "maxcor": int(o["maxcor"]),
            },
        )
        x, f, g = res.x, float(res.fun), res.jac
        gnorm = float(np.linalg.norm(g))
        polish_steps = 0
        if o["polish"] and gnorm > o["gtol"] and res.status != 1:
            x, f, g, polish_steps, n_pol = newton_polish(problem, x, gtol=float(o["gtol"]))
            state["nfev"] += n_pol
            gnorm = float(np.linalg.norm(g))
        if gnorm <= o["gtol"]:
            status = Status.CONVERGED_GTOL
        elif res.status == 0:  # scipy's relative reduction of F reached ftol (or float64 eps)
            status = Status.CONVERGED_FTOL
        elif res.status == 1:
            status = Status.MAX_ITER
        else:
            status = Status.LINE_SEARCH_FAILED
        scipy_message = str(res.message)
    except KeyboardInterrupt:
        x, f, g, status, scipy_message = state["x"], None, None, Status.INTERRUPTED, "interrupted"
        polish_steps = 0
    finally:
        bar.close()
    return finish(problem, "lbfgs", x, status, nit=state["it"], nfev=state["nfev"], t0=t0,
                  history=hist, f=f, g=g, hint="increase `max_iter`",
                  extra={"scipy_message": scipy_message, "polish_steps": polish_steps})
