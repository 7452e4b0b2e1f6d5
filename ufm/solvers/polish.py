"""Newton-CG polishing: drive the gradient norm to float64 precision near a minimiser.

Near the optimum the objective ``F`` changes by less than its rounding error, so
line searches on ``F`` (L-BFGS's) stall with a gradient norm around 1e-8. Newton steps
judged by the *gradient norm* keep converging (quadratically) from there. The Hessian is
applied exactly (:func:`ufm.objective.hessian_operator`, its ``x``-dependent parts
computed once per step); no structure of the solution is assumed.
"""

from __future__ import annotations

import numpy as np

from ..objective import fun_and_grad, hessian_operator
from ..problem import UFMProblem


def _cg(apply, g: np.ndarray, maxiter: int, rtol: float, scale: float) -> np.ndarray:
    """Truncated CG for ``A p = -g``; stops on negative curvature (Steihaug).

    Curvature ``d'Ad`` within the rounding of the Hessian-vector product
    (``<= 64 eps * scale * |d|^2``, ``scale`` a lower estimate of ``||A||``) counts as none:
    along an exactly flat direction (a free bias with ``lam_b = 0`` on the full label set)
    the computed ``d'Ad`` is rounding noise, and dividing by it overflowed (long property
    profile: ``balanced(3, {3: 1})``, ``d = 2``, ``lam_b = 0``, ``|g| = 2e-16``).
    """
    p = np.zeros_like(g)
    r = -g.copy()
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
        p += alpha * d
        r -= alpha * Ad
        rr_new = float(r @ r)
        if rr_new <= stop:
            break
        d = r + (rr_new / rr) * d
        rr = rr_new
    return p


def newton_polish(
    problem: UFMProblem, x: np.ndarray, *, gtol: float, max_steps: int = 20,
    cg_maxiter: int = 200, cg_rtol: float = 1e-4,
) -> tuple[np.ndarray, float, np.ndarray, int, int]:
    """Newton-CG steps accepted while they reduce the gradient norm.

    Returns ``(x, f, g, steps, nfev)``; the gradient norm of the returned point is never
    larger than that of the input.
    """
    f, g = fun_and_grad(x, problem)
    nfev, steps = 1, 0
    gn = float(np.linalg.norm(g))
    scale = max(problem.lam_W, problem.lam_H)  # ||Hessian|| >= the regularisation's curvature
    for _ in range(max_steps):
        if gn <= gtol:
            break
        p = _cg(hessian_operator(x, problem), g, cg_maxiter, cg_rtol, scale)
        accepted = False
        for t in (1.0, 0.5, 0.25):
            x_new = x + t * p
            f_new, g_new = fun_and_grad(x_new, problem)
            nfev += 1
            gn_new = float(np.linalg.norm(g_new))
            if gn_new < gn and f_new <= f + 1e-12 * max(abs(f), 1.0):
                x, f, g, gn = x_new, f_new, g_new, gn_new
                accepted = True
                break
        if not accepted:
            break
        steps += 1
    return x, f, g, steps, nfev
