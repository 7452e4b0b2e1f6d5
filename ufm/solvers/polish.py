"""Newton-CG polishing: drive the gradient norm to float64 precision near a minimiser.

Near the optimum the objective ``F`` changes by less than its rounding error, so
line searches on ``F`` (L-BFGS's) stall with a gradient norm around 1e-8. Newton steps
judged by the *gradient norm* keep converging (quadratically) from there. The Hessian is
applied exactly (the objective's ``hessian_operator``, :class:`ufm.objectives.Objective`, its
``x``-dependent parts computed once per step); no structure of the solution is assumed. L-BFGS hands over to
it early (``polish_from`` 1e-4): Newton-CG gains a decade of the gradient norm for about
five Hessian products where L-BFGS (m = 1) spends about twenty evaluations.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.linalg.blas import daxpy

from ..objectives import full_objective
from ..problem import UFMProblem


def _cg(apply, g: np.ndarray, maxiter: int, rtol: float, scale: float) -> np.ndarray:
    """Truncated CG for ``A p = -g``; stops on negative curvature (Steihaug) or once the
    residual is at most ``rtol |g|``.

    Curvature ``d'Ad`` within the rounding of the Hessian-vector product
    (``<= 64 eps * scale * |d|^2``, ``scale`` a lower estimate of ``||A||``) counts as none:
    along an exactly flat direction (a free bias with ``lam_b = 0`` on the full label set)
    the computed ``d'Ad`` is rounding noise, and dividing by it overflowed (long property
    profile: ``balanced(3, {3: 1})``, ``d = 2``, ``lam_b = 0``, ``|g| = 2e-16``).
    Vector updates are in place (BLAS axpy): fresh ``(n,)`` temporaries cost page faults
    on every iteration. (A Jacobi preconditioner, the Hessian's exact diagonal in grouped
    coordinates, tripled the products at the bench's S and M sizes: not used.)
    """
    p = np.zeros_like(g)
    r = -g
    d = r.copy()
    rr = float(r @ r)
    stop = (rtol**2) * rr
    for _ in range(maxiter):
        Ad = apply(d)
        dAd = float(d @ Ad)
        dd = float(d @ d)
        scale = max(scale, float(np.sqrt(Ad @ Ad / dd)) if dd > 0 else 0.0)
        if dAd <= 64 * np.finfo(np.float64).eps * scale * dd:
            return p if p.any() else d
        alpha = rr / dAd
        daxpy(d, p, a=alpha)
        daxpy(Ad, r, a=-alpha)
        rr_new = float(r @ r)
        if rr_new <= stop:
            break
        d *= rr_new / rr
        d += r
        rr = rr_new
    return p


def newton_polish(
    problem: UFMProblem, x: np.ndarray, *, gtol: float, max_steps: int = 20,
    cg_maxiter: int = 200, cg_rtol: float | None = 1e-4, **options: Any,
) -> tuple[np.ndarray, float, np.ndarray, int, int]:
    """Newton-CG steps on ``F`` accepted while they reduce the gradient norm
    (:func:`newton_steps` on the full objective; ``options``: its ``slow``, ``tight``, ``xtol``).

    Returns ``(x, f, g, steps, nfev)``; the gradient norm of the returned point is never
    larger than that of the input.
    """
    obj = full_objective(problem)
    return newton_steps(obj.value_and_grad, obj.hessian_operator, x, gtol=gtol,
                        scale=max(problem.lam_W, problem.lam_H), max_steps=max_steps,
                        cg_maxiter=cg_maxiter, cg_rtol=cg_rtol, **options)[:5]


def forcing(gnorm: float, target: float) -> float:
    """The adaptive CG tolerance of a Newton step from gradient norm ``gnorm``:
    ``min(0.1, sqrt(gnorm))`` -- loose far out, where a Newton step is only a better
    direction, tightening as the steps converge (superlinearly, order 1.5) -- but never
    tighter than ``target / (2 gnorm)``, which is all the last step needs. Measured on the
    bench's S and M sizes from hand-overs at 3e-5..3e-4: 20-30% fewer Hessian products
    than a fixed 1e-4."""
    return max(0.5 * target / gnorm, min(0.1, math.sqrt(gnorm)))


def newton_steps(
    fg: Callable[[np.ndarray], tuple[float, np.ndarray]],
    hessian: Callable[[np.ndarray], Callable[[np.ndarray], np.ndarray]], x: np.ndarray, *,
    gtol: float, scale: float, max_steps: int = 20, cg_maxiter: int = 200, cg_rtol: float | None = 1e-4,
    slow: float | None = None, tight: float | None = None, xtol: float = 0.0,
    on_step: Callable[[np.ndarray, float, float, float], bool] | None = None,
) -> tuple[np.ndarray, float, np.ndarray, int, int, bool]:
    """The polish on any smooth objective: ``fg(x) -> (f, g)`` (fresh arrays), ``hessian(x)``
    the operator ``v -> nabla^2 f(x) v``, ``scale`` a lower estimate of the Hessian's norm
    (the ridge's curvature).

    A step is accepted (tried at 1, 1/2, 1/4) when it lowers the gradient norm without
    raising ``f`` beyond rounding. The polish ends at a refused step, after ``max_steps``,
    when ``on_step(x, f, gnorm, t)`` (called after each accepted step) returns True, with
    ``slow`` after an accepted step that left the gradient norm above ``slow`` times its
    value (not yet Newton's region of fast convergence: the caller's cheaper method should
    go on), and once the gradient norm is at most ``gtol`` -- unless ``tight`` is given and
    the point may still be far from the critical point on a flat landscape: then it goes on
    towards ``tight`` while the distance estimated from the last step's curvature,
    ``|g| |p| / |g_prev|`` (``p`` the Newton step from gradient ``g_prev``), exceeds
    ``xtol |x|``. ``cg_rtol``: CG's relative tolerance, or None for :func:`forcing`.

    Returns ``(x, f, g, steps, nfev, stopped)``, ``stopped`` True when ``on_step`` ended it.
    """
    f, g = fg(x)
    nfev, steps = 1, 0
    gn = float(np.linalg.norm(g))
    inv_curv = math.nan  # |p| / |g| of the last accepted Newton step
    target = gtol
    for _ in range(max_steps):
        if gn <= gtol:
            if tight is None or gn <= tight or not steps:
                break
            if gn * inv_curv <= xtol * float(np.linalg.norm(x)):
                break
            target = tight
        rtol = forcing(gn, target) if cg_rtol is None else cg_rtol
        p = _cg(hessian(x), g, cg_maxiter, rtol, scale)
        accepted = False
        gn_old = gn
        for t in (1.0, 0.5, 0.25):
            x_new = x + t * p
            f_new, g_new = fg(x_new)
            nfev += 1
            gn_new = float(np.linalg.norm(g_new))
            if gn_new < gn and f_new <= f + 1e-12 * max(abs(f), 1.0):
                x, f, g, gn = x_new, f_new, g_new, gn_new
                accepted = True
                break
        if not accepted:
            break
        steps += 1
        inv_curv = float(np.linalg.norm(p)) / gn_old
        if on_step is not None and on_step(x, f, gn, t):
            return x, f, g, steps, nfev, True
        if slow is not None and gn > slow * gn_old:
            break
    return x, f, g, steps, nfev, False
