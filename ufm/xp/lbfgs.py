"""A plain L-BFGS written once against :class:`~ufm.objectives.Objective` (any array library).

Two-loop recursion with ``m`` pairs, the first step scaled to unit length, backtracking on the
Armijo condition with safeguarded quadratic interpolation; once ``F`` no longer resolves the
decrease (a change below ``1e-12 |F|``) a step that lowers the gradient norm is accepted
instead (the approximate-Wolfe idea of Hager & Zhang 2005), so the run can reach gradient
norms far below what ``F``'s rounding shows. Scalars are Python floats; vectors stay in the
objective's namespace and device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..objectives import Objective

C1 = 1e-4
EPS_F = 1e-12
MAX_LS = 30


@dataclass
class Run:
    z: Any
    f: float
    g: Any
    nit: int
    converged: bool
    message: str


def _dot(xp: Any, a: Any, b: Any) -> float:
    return float(xp.sum(a * b))


def _norm(xp: Any, v: Any) -> float:
    return math.sqrt(_dot(xp, v, v))


def lbfgs(obj: Objective, z: Any, *, gtol: float = 1e-9, max_iter: int = 10_000, m: int = 10,
          noise_steps: bool = True, ftol: float = 0.0) -> Run:
    """Minimise ``obj`` from ``z`` until the gradient norm is at most ``gtol``.

    ``noise_steps=False``: no steps at the rounding level of ``F`` (the approximate-Wolfe
    acceptance is off), so the run ends with "line search failed" where ``F`` stops resolving
    decreases -- the end of a float32 bulk phase (:mod:`ufm.solvers.mixed`). ``ftol > 0``: stop
    after a step that lowers ``F`` by at most ``ftol max(|F|, 1)`` (message "ftol"). Ctrl-C
    returns the last accepted iterate (message "interrupted")."""
    f, g = obj.value_and_grad(z)
    last: list[Any] = [z, f, g, 0]
    try:
        return _iterate(obj, z, f, g, gtol, max_iter, m, noise_steps, ftol, last)
    except KeyboardInterrupt:
        return Run(last[0], last[1], last[2], last[3], False, "interrupted")


def _iterate(obj: Objective, z: Any, f: float, g: Any, gtol: float, max_iter: int, m: int, noise_steps: bool,
             ftol: float, last: list[Any]) -> Run:
    """The iterations of :func:`lbfgs`; ``last`` holds the last accepted ``(z, f, g, nit)``."""
    xp = obj.xp
    pairs: list[tuple[Any, Any, float]] = []  # (s, y, 1 / s'y), oldest first
    for it in range(max_iter):
        gn = obj.grad_norm(g)  # |grad F|: the stop means the same in every variant
        gz = gn if obj.euclidean else _norm(xp, g)  # |g| itself: the scale of the first step
        if gn <= gtol:
            return Run(z, f, g, it, True, "gradient norm below gtol")
        q, alphas = g, []
        for s, y, rho in reversed(pairs):
            a = rho * _dot(xp, s, q)
            q = q - a * y
            alphas.append(a)
        if pairs:
            s, y, rho = pairs[-1]
            q = q * (1.0 / (rho * _dot(xp, y, y)))  # gamma = s'y / y'y
        else:
            q = q * (1.0 / gz)
        for (s, y, rho), a in zip(pairs, reversed(alphas)):
            q = q + (a - rho * _dot(xp, y, q)) * s
        p = -q
        dg = _dot(xp, g, p)
        if not dg < 0:  # not a descent direction: forget the pairs, steepest descent
            pairs.clear()
            p, dg = g * (-1.0 / gz), -gz
        t, accepted = 1.0, False
        for _ in range(MAX_LS):
            z_new = z + t * p
            f_new, g_new = obj.value_and_grad(z_new)
            if f_new <= f + C1 * t * dg:
                accepted = True
                break
            if noise_steps and f_new <= f + EPS_F * abs(f) and obj.grad_norm(g_new) < gn:  # F no longer resolves the decrease
                accepted = True
                break
            denom = 2.0 * (f_new - f - t * dg)
            t_q = -dg * t * t / denom if denom > 0 else 0.5 * t
            t = min(max(t_q, 0.1 * t), 0.5 * t)
        if not accepted:
            return Run(z, f, g, it, False, "line search failed")
        s, y = z_new - z, g_new - g
        sy = _dot(xp, s, y)
        if sy > 1e-16 * _norm(xp, s) * _norm(xp, y):
            pairs.append((s, y, 1.0 / sy))
            if len(pairs) > m:
                pairs.pop(0)
        small = f - f_new <= ftol * max(abs(f), 1.0)
        z, f, g = z_new, f_new, g_new
        last[:] = [z, f, g, it + 1]
        if ftol > 0 and small:
            return Run(z, f, g, it + 1, False, "ftol")
    return Run(z, f, g, max_iter, obj.grad_norm(g) <= gtol, "max_iter reached")
