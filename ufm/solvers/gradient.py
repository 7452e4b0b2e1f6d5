r"""Full-batch gradient descent on ``F(W, H, b)``.

- :func:`gd`: plain GD with a fixed step, the UFM literature's baseline.
- :func:`agd`: Nesterov-accelerated GD with a backtracking (Armijo) estimate of the
  Lipschitz constant and function-value restarts (O'Donoghue & Candes, 2015).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from ..objective import fun_and_grad
from ..problem import UFMProblem
from ..result import Result, Status
from ._common import History, check_options, finish, progress_bar, starting_point

GD_DEFAULTS: dict[str, Any] = {
    "step": 0.1, "max_iter": 100_000, "gtol": 1e-9, "ftol": 0.0, "history_every": 100,
    "history_metrics": True, "init_scale": 0.1, "progress": False, "callback": None,
}
AGD_DEFAULTS: dict[str, Any] = {
    "step": 1.0, "max_iter": 50_000, "gtol": 1e-10, "ftol": 0.0, "history_every": 50,
    "history_metrics": True, "init_scale": 0.1, "progress": False, "callback": None,
}


def _converged(gnorm: float, f: float, f_prev: float, gtol: float, ftol: float) -> Status | None:
    if gnorm <= gtol:
        return Status.CONVERGED_GTOL
    if ftol > 0 and abs(f_prev - f) <= ftol * max(abs(f), 1.0):
        return Status.CONVERGED_FTOL
    return None


def gd(
    problem: UFMProblem, x0: np.ndarray | tuple | None = None, *,
    rng: np.random.Generator | int | None = None, **options: Any,
) -> Result:
    """Plain gradient descent ``x <- x - step * grad F(x)`` with a fixed ``step``.

    Options: ``step`` (0.1), ``max_iter`` (100000), ``gtol`` (1e-9, on the gradient
    norm), ``ftol`` (0: off; relative objective change), ``history_every`` (100),
    ``history_metrics`` (True), ``init_scale`` (0.1), ``progress`` (False),
    ``callback(it, x, f) -> stop?``.
    """
    o = check_options("gd", options, GD_DEFAULTS)
    x = starting_point(problem, x0, o["init_scale"], rng)
    t0 = time.perf_counter()
    hist = History(problem, o["history_every"], o["history_metrics"])
    bar = progress_bar(o["progress"], o["max_iter"], "gd")
    step = float(o["step"])
    f, g = fun_and_grad(x, problem)
    nfev, it, status = 1, 0, Status.MAX_ITER
    f_prev = math.inf
    try:
        while True:
            gnorm = float(np.linalg.norm(g))
            hist.maybe_record(it, x, f, gnorm)
            if not (math.isfinite(f) and math.isfinite(gnorm)):
                status = Status.NUMERICAL_ERROR
                break
            done = _converged(gnorm, f, f_prev, o["gtol"], o["ftol"])
            if done is not None:
                status = done
                break
            if it >= o["max_iter"] or (o["callback"] and o["callback"](it, x, f)):
                break
            x = x - step * g
            f_prev = f
            f, g = fun_and_grad(x, problem)
            nfev += 1
            it += 1
            bar.update()
            if it % 1000 == 0:
                bar.set_postfix_str(f"F={f:.10g} |g|={gnorm:.2e}")
    except KeyboardInterrupt:
        status = Status.INTERRUPTED
    finally:
        bar.close()
    return finish(problem, "gd", x, status, nit=it, nfev=nfev, t0=t0, history=hist,
                  f=f if status != Status.INTERRUPTED else None,
                  g=g if status != Status.INTERRUPTED else None,
                  hint="increase `max_iter` or `step` (if it stays stable)")


def agd(
    problem: UFMProblem, x0: np.ndarray | tuple | None = None, *,
    rng: np.random.Generator | int | None = None, **options: Any,
) -> Result:
    """Accelerated gradient descent with backtracking and adaptive restart.

    Each iteration takes a gradient step from the extrapolated point ``y`` with step
    ``1/L``; ``L`` doubles until the sufficient-decrease condition
    ``F(y - g/L) <= F(y) - ||g||^2 / (2L)`` holds and shrinks by 0.9 after each
    iteration; momentum restarts when the objective increases. Options as :func:`gd`,
    with ``step`` the initial ``1/L`` (1.0).
    """
    o = check_options("agd", options, AGD_DEFAULTS)
    x = starting_point(problem, x0, o["init_scale"], rng)
    t0 = time.perf_counter()
    hist = History(problem, o["history_every"], o["history_metrics"])
    bar = progress_bar(o["progress"], o["max_iter"], "agd")
    L = 1.0 / float(o["step"])
    f, g = fun_and_grad(x, problem)
    nfev, it, status = 1, 0, Status.MAX_ITER
    y, fy, gy = x, f, g
    t = 1.0
    f_prev = math.inf
    try:
        while True:
            gnorm = float(np.linalg.norm(g))
            hist.maybe_record(it, x, f, gnorm)
            if not (math.isfinite(f) and math.isfinite(gnorm)):
                status = Status.NUMERICAL_ERROR
                break
            done = _converged(gnorm, f, f_prev, o["gtol"], o["ftol"])
            if done is not None:
                status = done
                break
            if it >= o["max_iter"] or (o["callback"] and o["callback"](it, x, f)):
                break
            gy2 = float(gy @ gy)
            slack = 4 * np.finfo(float).eps * max(abs(fy), 1.0)
            while True:
                x_new = y - gy / L
                f_new, g_new = fun_and_grad(x_new, problem)
                nfev += 1
                if f_new <= fy - 0.5 * gy2 / L + slack:
                    break
                L *= 2.0
                if L > 1e30:
                    status = Status.LINE_SEARCH_FAILED
                    raise StopIteration
            it += 1
            bar.update()
            f_prev = f
            if f_new > f:  # restart momentum
                t = 1.0
                y, fy, gy = x_new, f_new, g_new
            else:
                t_new = 0.5 * (1 + math.sqrt(1 + 4 * t * t))
                y = x_new + ((t - 1) / t_new) * (x_new - x)
                t = t_new
                fy, gy = fun_and_grad(y, problem)
                nfev += 1
            x, f, g = x_new, f_new, g_new
            L *= 0.9
    except StopIteration:
        pass
    except KeyboardInterrupt:
        status = Status.INTERRUPTED
    finally:
        bar.close()
    return finish(problem, "agd", x, status, nit=it, nfev=nfev, t0=t0, history=hist,
                  f=f if status != Status.INTERRUPTED else None,
                  g=g if status != Status.INTERRUPTED else None,
                  hint="increase `max_iter`")
