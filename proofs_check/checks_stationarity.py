"""Stationarity of the structured point and convexity of ``phi`` (issue 4, item 5).

``F`` is built exactly as defined in docs/proofs.md (loss averaged over ``N``, ``lam/2``
penalties, ``||H||_F^2`` summed over all ``N`` samples), without bias (``b = 0``),
for a balanced design with profile ``{m: n_m}``. Samples sharing a label set share
their feature (NC1), so the per-sample objective equals the grouped objective
``(1/N) sum_S n_S l(W h_S) + lam_W/2 ||W||^2 + lam_H/2 sum_S n_S ||h_S||^2``; the
gradient in ``W`` is taken of it, the gradient in one sample's ``h_i`` (``i`` in ``S``)
is ``(1/N) dl(W h_i)/dh_i + lam_H h_i``.

Structure (the theorem's, ``d = K - 1``): ``W = w U`` with ``U`` an explicit
orthonormal basis of ``1``-perp, ``h_S = (s_m / w) U^T 1_S``; ``w > 0`` and ``s_m``
are free. ``F`` is differentiated in *generic* ``W`` and ``h_S`` first, and the
structure is substituted afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sympy as sp

from .algebra import exp_to_powers, helmert_basis, indicator, label_sets, log_normal, pal_loss
from .core import Ledger, register, wrong_variant

lam_W, lam_H, w = sp.symbols("lam_W lam_H w", positive=True)
mu = sp.sqrt(lam_W * lam_H)

CASES: tuple[tuple[int, tuple[int, ...]], ...] = ((3, (1, 2)), (4, (1, 2)), (4, (1, 2, 3)))


def phi_expr(k: int, ms: tuple[int, ...], n: dict[int, sp.Symbol], s: dict[int, sp.Symbol],
             norm_coef: sp.Expr | None = None) -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    """``(phi(s), sigma, N)`` transcribed from its definition (docs/proofs.md) for a concrete ``K``.

    ``norm_coef`` (default ``K - 1``) multiplies ``mu sigma``; it is a parameter only so
    that the tests can build a deliberately wrong ``phi`` with the same machinery.
    """
    norm_coef = k - 1 if norm_coef is None else norm_coef
    N = sum(n[m] * sp.binomial(k, m) for m in ms)
    sigma = sp.sqrt(sum(n[m] * sp.binomial(k - 2, m - 1) * s[m] ** 2 for m in ms))
    loss = sum(n[m] * sp.binomial(k, m) * m * sp.log(m + (k - m) * sp.exp(-s[m])) for m in ms) / N
    return loss + mu * norm_coef * sigma, sigma, N


def structured_gradient(k: int, ms: tuple[int, ...]) -> dict[str, Any]:
    """Build ``F``, differentiate in generic variables, substitute the structure."""
    d = k - 1
    n = {m: sp.Symbol(f"n_{m}", positive=True) for m in ms}
    s = {m: sp.Symbol(f"s_{m}", positive=True) for m in ms}
    N = sum(n[m] * sp.binomial(k, m) for m in ms)
    Wg = sp.Matrix(k, d, lambda i, j: sp.Symbol(f"W_{i}_{j}", real=True))
    sets = [(S, m) for m in ms for S in label_sets(k, m)]
    hg = {S: sp.Matrix(d, 1, lambda i, _j, S=S: sp.Symbol(f"h_{S}_{i}", real=True)) for S, _ in sets}
    # per-set loss terms; F = sum_S n_S loss_S / N + penalties
    loss = {S: pal_loss(Wg * hg[S], indicator(k, S)) for S, _ in sets}
    pen = lam_W / 2 * sum(e**2 for e in Wg) + lam_H / 2 * sum(
        n[m] * sum(e**2 for e in hg[S]) for S, m in sets)
    F = sum(n[m] * loss[S] for S, m in sets) / N + pen
    U = helmert_basis(k)  # (k, k-1)
    sub = {Wg[i, j]: w * U[i, j] for i in range(k) for j in range(d)}
    for S, m in sets:
        hS = (s[m] / w) * U.T * indicator(k, S)
        sub.update({hg[S][i]: hS[i] for i in range(d)})
    gW = sp.Matrix(k, d, lambda i, j: sp.diff(F, Wg[i, j]).xreplace(sub))
    # per-sample gradient in h_i, i in S: (1/N) dloss_S/dh + lam_H h_S
    gh = {S: sp.Matrix(d, 1, lambda i, _j, S=S: (sp.diff(loss[S], hg[S][i]) / N
                                                 + lam_H * hg[S][i]).xreplace(sub))
          for S, _ in sets}
    return {"F": F.xreplace(sub), "gW": gW, "gh": gh, "U": U, "n": n, "s": s, "N": N, "sets": sets}


def _simplifiers(
    k: int, s: dict[int, sp.Symbol]
) -> tuple[Callable[[sp.Expr], sp.Expr], Callable[[sp.Expr], sp.Expr]]:
    """Residual simplifiers: exponentials to powers of ``X_m = exp(s_m/K)`` then cancel;
    and, for values with logarithms, ``s_m = K log X_m`` with factored, expanded logs."""
    svars = {s[m]: sp.Symbol(f"X_{m}", positive=True) for m in s}

    def rational(e: sp.Expr) -> sp.Expr:
        return sp.cancel(sp.together(exp_to_powers(e, svars, k)))

    def logs(e: sp.Expr) -> sp.Expr:
        r = log_normal(e, svars, k)
        return r if r == 0 else sp.simplify(r)

    return rational, logs


def stationarity(led: Ledger, cases: tuple[tuple[int, tuple[int, ...]], ...] = CASES,
                 norm_coef: sp.Expr | None = None) -> None:
    """``grad F = 0`` at the structure  <=>  ``d phi/ds_m = 0`` for all m and norm balance."""
    for k, ms in cases:
        tag = f"K={k},M={ms}"
        g = structured_gradient(k, ms)
        U, n, s, sets = g["U"], g["n"], g["s"], g["sets"]
        phi, sigma, _ = phi_expr(k, ms, n, s, norm_coef)
        _simp, _logs = _simplifiers(k, s)
        # dF/dW = B U and dF/dh_S = A_m U^T 1_S: extract the coefficients, check the shape
        B = sum(g["gW"][i, j] * U[i, j] for i in range(k) for j in range(k - 1)) / (k - 1)
        led.zero(f"{tag}: dF/dW - B U", g["gW"] - B * U, simplifier=_simp)
        A: dict[int, sp.Expr] = {}
        for S, m in sets:
            v = U.T * indicator(k, S)
            a_S = (g["gh"][S].T * v)[0] / (v.T * v)[0]
            led.zero(f"{tag}: dF/dh_{S} - A U^T 1_S", g["gh"][S] - a_S * v, simplifier=_simp)
            if m in A:
                led.zero(f"{tag}: A_S equal within |S|={m}", a_S - A[m], simplifier=_simp)
            else:
                A[m] = a_S
        # (I1)  A_m - w phi_m / ((K-1) n_m C(K-2,m-1)) = s_m (lam_H sigma - mu w^2) / (w sigma)
        for m in ms:
            dphi = sp.diff(phi, s[m])
            cm = (k - 1) * n[m] * sp.binomial(k - 2, m - 1)
            led.zero(f"{tag}: identity I1 (m={m})",
                     A[m] - w * dphi / cm - s[m] * (lam_H * sigma - mu * w**2) / (w * sigma),
                     simplifier=_simp)
        # (I2)  B w - (1/w) sum_m n_m C(K-2,m-1) s_m A_m = (lam_W w^4 - lam_H sigma^2) / w^2
        comb = sum(n[m] * sp.binomial(k - 2, m - 1) * s[m] * A[m] for m in ms)
        led.zero(f"{tag}: identity I2",
                 B * w - comb / w - (lam_W * w**4 - lam_H * sigma**2) / w**2, simplifier=_simp)
        # balance w^2 = sqrt(lam_H/lam_W) sigma makes the I1 remainder vanish
        bal = {w: sp.sqrt(sp.sqrt(lam_H / lam_W) * sigma)}
        led.zero(f"{tag}: lam_H sigma - mu w^2 at balance", (lam_H * sigma - mu * w**2).subs(bal))
        # and F at the balanced structure equals phi(s)
        led.zero(f"{tag}: F(structure) - phi(s) at balance", g["F"].subs(bal) - phi,
                 simplifier=_logs)


def phi_convex(led: Ledger, loss_sign: int = 1) -> None:
    """Loss terms of ``phi`` strictly convex (symbolic K, m); norm term convex (|M| = 3; for
    every ``|M|`` the norm term ``mu (K-1) ||r o s||_2`` is a norm of ``s``, hence convex:
    docs/proofs.md). ``loss_sign = -1`` (a concave loss term) only in the wrong variant."""
    m, r, s = sp.symbols("m r s", positive=True)  # r = K - m > 0
    f = loss_sign * m * sp.log(m + r * sp.exp(-s))
    led.positive("d^2/ds^2 m log(m + (K-m) e^{-s})", sp.diff(f, s, 2))
    # norm term: sigma(s) = sqrt(sum c_i s_i^2); v^T Hess v * sigma^3 = Lagrange sum of squares
    cs = sp.symbols("c1:4", positive=True)
    ss = sp.symbols("s1:4", real=True)
    vs = sp.symbols("v1:4", real=True)
    sig = sp.sqrt(sum(ci * si**2 for ci, si in zip(cs, ss)))
    Hs = sp.hessian(sig, ss)
    quad = (sp.Matrix([vs]) * Hs * sp.Matrix(vs))[0] * sig**3
    sos = sum(cs[i] * cs[j] * (ss[i] * vs[j] - ss[j] * vs[i]) ** 2
              for i in range(3) for j in range(i + 1, 3))
    led.zero("sigma^3 v^T Hess(sigma) v - sum_{i<j} c_i c_j (s_i v_j - s_j v_i)^2", quad - sos)


def phi_coercive(led: Ledger, loss_floor: Callable[[sp.Expr], sp.Expr] = lambda m: sp.log(m)) -> None:
    """``phi`` is coercive, so it attains its minimum: every loss term is at least
    ``m log m >= 0`` (``m + (K-m) e^{-s} >= m >= 1``), and ``sigma = ||r o s||_2 >=
    r_min ||s||_2`` with ``r_min = min_m r_m > 0`` (``r_m^2 = n_m C(K-2, m-1) > 0`` for
    ``1 <= m <= K-1``); hence ``phi(s) >= mu (K-1) r_min ||s||_2 -> inf``. ``loss_floor`` (the claimed lower bound of
    ``log(m + (K-m) e^{-s})``) is a parameter only for the wrong variant."""
    m0, r, s, e = sp.symbols("m0 r s e", nonnegative=True)  # m = 1 + m0, K - m = r, e = e^{-s}
    m = 1 + m0
    # log is increasing: log(m + r e) - floor >= 0 iff (m + r e) / exp(floor) >= 1
    gap = sp.simplify((m + r * e) / sp.exp(loss_floor(m)) - 1)
    led.true("(m + (K-m) e^{-s}) / exp(floor) - 1 >= 0 (m >= 1, K-m, e^{-s} >= 0)",
             gap.is_nonnegative is True, sp.sstr(gap))
    led.true("floor(m) = log m >= 0 for m >= 1", sp.log(m).is_nonnegative is True)
    # r_m^2 = n_m C(K-2, m-1) > 0 for n_m >= 1 and 0 <= m-1 <= K-2 (Gamma form, symbolic sizes)
    j, k2 = sp.symbols("j k2", integer=True, nonnegative=True)  # m - 1 = j, K - 2 = j + k2
    gam = sp.binomial(j + k2, j).rewrite(sp.gamma)
    led.zero("C(K-2, m-1) - Gamma(K-1) / (Gamma(m) Gamma(K-m))", sp.binomial(j + k2, j) - gam,
             simplifier=lambda e: sp.simplify(sp.combsimp(e)))
    led.true("Gamma(K-1) / (Gamma(m) Gamma(K-m)) > 0 (Gamma > 0 on positive arguments)",
             gam.is_positive is True, sp.sstr(gam))
    ss = sp.symbols("s1:4", real=True)
    es = sp.symbols("e1:4", nonnegative=True)  # r_m^2 - r_min^2 >= 0
    rmin = sp.Symbol("r_min", positive=True)
    excess = sum((rmin**2 + ei) * si**2 for ei, si in zip(es, ss)) - rmin**2 * sum(si**2 for si in ss)
    led.true("sigma^2 - r_min^2 ||s||^2 = sum (r_m^2 - r_min^2) s_m^2 >= 0 (|M| = 3; termwise for any |M|)",
             sp.expand(excess).is_nonnegative is True, sp.sstr(sp.expand(excess)))


register(
    "stationarity_structure",
    "at ETF W = wU, h_S = (s_m/w) U^T 1_S, b = 0: grad F = 0 iff d phi/ds = 0 and "
    "w^2 = sqrt(lam_H/lam_W) sigma; there F = phi",
    "K=3 M={1,2}; K=4 M={1,2}; K=4 M={1,2,3}; d = K-1; n_m, s_m, w, lam_W, lam_H > 0 symbolic",
)(stationarity)

register(
    "phi_convex",
    "phi is convex: its loss terms have positive second derivative, its norm term a PSD Hessian "
    "(so phi is strictly convex, minimiser unique)",
    "K, m symbolic with 1 <= m <= K-1 (r = K-m > 0); norm term for |M| = 3 with weights c_i > 0",
)(phi_convex)


def gradient_formula(led: Ledger, with_multiplicity: bool = True) -> None:
    """The closed-form gradients against ``sympy.diff`` of ``F`` (with bias)."""
    k, d = 3, 2
    sets = [(0,), (1, 2), (0, 1, 2), (2,)]
    N = len(sets)
    lam_b = sp.Symbol("lam_b", nonnegative=True)
    W = sp.Matrix(k, d, lambda i, j: sp.Symbol(f"W_{i}_{j}", real=True))
    H = sp.Matrix(d, N, lambda i, j: sp.Symbol(f"H_{i}_{j}", real=True))
    b = sp.Matrix(sp.symbols(f"b0:{k}", real=True))
    Y = sp.Matrix.hstack(*[indicator(k, S) for S in sets])
    Z = W * H + b * sp.ones(1, N)
    F = sum(pal_loss(Z[:, i], Y[:, i]) for i in range(N)) / N
    F += lam_W / 2 * sum(e**2 for e in W) + lam_H / 2 * sum(e**2 for e in H)
    F += lam_b / 2 * sum(e**2 for e in b)
    # the closed form: P = softmax(Z) column-wise, G = (P * m - Y) / N
    Pm = sp.Matrix(k, N, lambda i, j: sp.exp(Z[i, j]) / sum(sp.exp(Z[r, j]) for r in range(k)))
    mult = [len(S) if with_multiplicity else 1 for S in sets]  # 1: only in the wrong variant
    G = sp.Matrix(k, N, lambda i, j: (Pm[i, j] * mult[j] - Y[i, j]) / N)
    canc = lambda e: sp.cancel(sp.together(e))  # noqa: E731
    led.zero("dF/dW - (G H^T + lam_W W)",
             sp.Matrix(k, d, lambda i, j: sp.diff(F, W[i, j])) - (G * H.T + lam_W * W), simplifier=canc)
    led.zero("dF/dH - (W^T G + lam_H H)",
             sp.Matrix(d, N, lambda i, j: sp.diff(F, H[i, j])) - (W.T * G + lam_H * H), simplifier=canc)
    led.zero("dF/db - (G 1 + lam_b b)",
             sp.Matrix([sp.diff(F, bi) for bi in b]) - (G * sp.ones(N, 1) + lam_b * b), simplifier=canc)
    led.zero("1^T G = 0 (shift invariance)", sp.ones(1, k) * G, simplifier=canc)


register(
    "phi_coercive",
    "phi(s) >= mu (K-1) min_m r_m ||s||_2 (loss terms >= m log m >= 0, r_m > 0): phi is coercive "
    "and attains its minimum",
    "K, m symbolic with 1 <= m <= K-1, n_m >= 1; the norm comparison termwise (shown for |M| = 3)",
)(phi_coercive)

register(
    "objective_gradient_formula",
    "closed-form gradients: dF/dW = G H^T + lam_W W, dF/dH = W^T G + lam_H H, "
    "dF/db = G 1 + lam_b b, 1^T G = 0",
    "K = 3, d = 2, N = 4 samples with sets {0},{1,2},{0,1,2},{2}; W, H, b symbolic; lam_b >= 0",
)(gradient_formula)


# ---------------------------------------------------------------- wrong variants (--mutants)
wrong_variant("stationarity_structure", "phi with mu K sigma in place of mu (K-1) sigma (K = 3, M = {1,2})")(
    lambda led: stationarity(led, ((3, (1, 2)),), norm_coef=3))
wrong_variant("phi_convex", "a concave loss term -m log(m + (K-m) e^{-s})")(
    lambda led: phi_convex(led, loss_sign=-1))
wrong_variant("phi_coercive", "loss terms bounded below by log(m + 1) (false at large s)")(
    lambda led: phi_coercive(led, loss_floor=lambda m: sp.log(m + 1)))
wrong_variant("objective_gradient_formula", "G = (P - Y)/N (without the multiplicity m_i)")(
    lambda led: gradient_formula(led, with_multiplicity=False))
