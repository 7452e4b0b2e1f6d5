"""Phase transition of the scalar problem ``phi`` at ``s = 0`` (issue 4, item 6).

``phi(s) = L(s) + mu (K-1) ||r o s||`` with ``r_m = sqrt(n_m C(K-2,m-1))``. Being convex,
``phi`` is minimised at ``0`` iff every one-sided directional derivative
``phi'(0; v) = grad L(0) . v + mu (K-1) ||r o v||`` is ``>= 0``. The checks compute
``grad L(0) = -a`` from ``phi``, evaluate ``phi'(0; v)`` along ``v* = a / r^2`` (the
steepest direction) and bound every other direction by Cauchy-Schwarz, giving the
threshold ``mu_crit = ||a / r||_2 / (K-1)``.
"""

from __future__ import annotations

import sympy as sp

from .core import Ledger, patched, register, wrong_variant

mu = sp.Symbol("mu", positive=True)
t = sp.Symbol("t", positive=True)


def spec_a_r(k: sp.Expr, m: sp.Expr, n_m: sp.Expr, N: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """The closed forms ``a_m = n_m C(K,m) m (K-m) / (N K)`` and ``r_m = sqrt(n_m C(K-2,m-1))``."""
    return n_m * sp.binomial(k, m) * m * (k - m) / (N * k), sp.sqrt(n_m * sp.binomial(k - 2, m - 1))


def directional_derivative(phi: sp.Expr, s: list[sp.Symbol], v: list[sp.Expr]) -> sp.Expr:
    """``phi'(0; v) = lim_{t -> 0+} d/dt phi(t v)``."""
    g = sp.diff(phi.subs({si: t * vi for si, vi in zip(s, v)}, simultaneous=True), t)
    return sp.limit(sp.simplify(g), t, 0, "+")


def threshold_single_symbolic(led: Ledger) -> None:
    """Symbolic ``K, m``: ``d/ds`` of a loss term at 0 is ``-a_m``; Cauchy-Schwarz bound (|M| = 3)."""
    K, m, n, N, s = sp.symbols("K m n N s", positive=True)
    term = n * sp.binomial(K, m) * m * sp.log(m + (K - m) * sp.exp(-s)) / N
    a_m, _ = spec_a_r(K, m, n, N)
    led.zero("dL/ds_m(0) + a_m", sp.diff(term, s).subs(s, 0) + a_m)
    # generic weights: for all v, -a.v + ||a/r|| ||r o v|| >= 0 (Lagrange identity)
    a = sp.symbols("a1:4", positive=True)
    r = sp.symbols("r1:4", positive=True)
    v = sp.symbols("v1:4", real=True)
    x = [ai / ri for ai, ri in zip(a, r)]
    y = [ri * vi for ri, vi in zip(r, v)]
    gap = sum(xi**2 for xi in x) * sum(yi**2 for yi in y) - sum(xi * yi for xi, yi in zip(x, y)) ** 2
    sos = sum((x[i] * y[j] - x[j] * y[i]) ** 2 for i in range(3) for j in range(i + 1, 3))
    led.zero("||a/r||^2 ||r o v||^2 - (a.v)^2 - sum of squares", gap - sos)
    # steepest direction v* = a / r^2: phi'(0; v*) = ||r o v*|| (mu (K-1) - ||a/r||)
    ss = sp.symbols("s1:4", real=True)
    Kv = sp.Symbol("K", positive=True)
    # first-order model of phi at 0 (L smooth with grad L(0) = -a, as just computed)
    phi_lin = -sum(ai * si for ai, si in zip(a, ss)) + mu * (Kv - 1) * sp.sqrt(
        sum(ri**2 * si**2 for ri, si in zip(r, ss)))
    vstar = [ai / ri**2 for ai, ri in zip(a, r)]
    dd = directional_derivative(phi_lin, list(ss), vstar)
    norm_ar = sp.sqrt(sum(xi**2 for xi in x))
    led.zero("phi'(0; v*) - ||r o v*|| (mu (K-1) - ||a/r||)", dd - norm_ar * (mu * (Kv - 1) - norm_ar))


def threshold_exact(led: Ledger, ks: range = range(2, 11)) -> None:
    """``phi`` transcribed for ``K = 2..10``, all ``1 <= m <= K-1``, ``n_m = m + 1``:
    ``phi'(0; v*)`` changes sign exactly at ``mu_crit``; ``phi(0)`` is the trivial value."""
    for k in ks:
        ms = list(range(1, k))
        n = {mm: sp.Integer(mm + 1) for mm in ms}
        N = sum(n[mm] * sp.binomial(k, mm) for mm in ms)
        s = [sp.Symbol(f"s_{mm}", real=True) for mm in ms]
        sigma = sp.sqrt(sum(n[mm] * sp.binomial(k - 2, mm - 1) * si**2 for mm, si in zip(ms, s)))
        phi = sum(n[mm] * sp.binomial(k, mm) * mm * sp.log(mm + (k - mm) * sp.exp(-si))
                  for mm, si in zip(ms, s)) / N + mu * (k - 1) * sigma
        ar = [spec_a_r(sp.Integer(k), mm, n[mm], N) for mm in ms]
        loss = phi - mu * (k - 1) * sigma  # the smooth part L(s)
        grad0 = [sp.diff(loss, si).subs({sj: 0 for sj in s}) for si in s]
        led.zero(f"K={k}: grad L(0) + a", [g + a for g, (a, _) in zip(grad0, ar)])
        crit = sp.sqrt(sum((a / r) ** 2 for a, r in ar)) / (k - 1)
        vstar = [a / r**2 for a, r in ar]
        dd = directional_derivative(phi, s, vstar)
        vnorm = sp.sqrt(sum((r * v) ** 2 for (_, r), v in zip(ar, vstar)))
        led.zero(f"K={k}: phi'(0; v*) - (K-1) ||r o v*|| (mu - mu_crit)",
                 dd - (k - 1) * vnorm * (mu - crit))
        sol = sp.solve(dd, mu)
        led.true(f"K={k}: phi'(0; v*) = 0 has the single root mu_crit",
                 len(sol) == 1 and sp.simplify(sol[0] - crit) == 0, f"{sol} vs {crit}")
        trivial = sum(n[mm] * sp.binomial(k, mm) * mm for mm in ms) * sp.log(k) / N
        led.zero(f"K={k}: phi(0) - trivial value", phi.subs({si: 0 for si in s}) - trivial)


register(
    "phase_threshold_symbolic",
    "subgradient condition at s = 0: grad L(0) = -a and min_v phi'(0; v) >= 0 iff "
    "mu >= ||a/r||_2/(K-1)",
    "K, m, n_m, N > 0 symbolic for grad L(0); Cauchy-Schwarz and steepest direction for |M| = 3",
)(threshold_single_symbolic)

register(
    "phase_threshold_exact",
    "phi'(0; v*) = (K-1)||r o v*||(mu - mu_crit) with mu_crit = ||a/r||_2/(K-1); phi(0) is "
    "the trivial value",
    "K = 2..10, all multiplicities 1..K-1 with n_m = m+1 (imbalanced across m), mu > 0 symbolic",
    kind="exact-K",
)(threshold_exact)


# ---------------------------------------------------------------- wrong variants (--mutants)
_THIS = __import__("sys").modules[__name__]


def _a_times_K(k: sp.Expr, m: sp.Expr, n_m: sp.Expr, N: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    a_m, r_m = _spec_a_r_orig(k, m, n_m, N)
    return a_m * k, r_m


_spec_a_r_orig = spec_a_r


@wrong_variant("phase_threshold_symbolic", "a_m without the factor 1/K")
def _wrong_threshold_symbolic(led: Ledger) -> None:
    with patched(_THIS, "spec_a_r", _a_times_K):
        threshold_single_symbolic(led)


@wrong_variant("phase_threshold_exact", "a_m without the factor 1/K (K = 3..4)")
def _wrong_threshold_exact(led: Ledger) -> None:
    with patched(_THIS, "spec_a_r", _a_times_K):
        threshold_exact(led, range(3, 5))
