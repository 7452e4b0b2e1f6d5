"""The factorisation identity behind the convex reformulation (issue 4, item 4).

``min { (a ||W||_F^2 + c ||H||_F^2) / 2 : W H = Z } = sqrt(a c) ||Z||_*``.

Lower bound, in three computed steps:

1. *balance*: rescaling ``(t W, H / t)`` keeps ``W H`` and minimises the objective at
   ``sqrt(a c) ||W|| ||H||``; equivalently ``(a x^2 + c y^2)/2 - sqrt(ac) x y`` is a
   square (AM-GM);
2. *Cauchy-Schwarz*: with ``Z = U S V^T``, ``||Z||_* = tr(U^T Z V) = <W^T U, H V>``
   ``<= ||W^T U|| ||H V||``;
3. *contraction*: ``||W||^2 - ||W^T U||^2 = ||(I - U U^T) W||^2 >= 0`` for ``U`` with
   orthonormal columns.

Attainment: the SVD construction (docs/proofs.md) on an explicit exact ``Z``.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from .core import Ledger, register, wrong_variant

a, c = sp.symbols("a c", positive=True)  # a = lam_W, c = lam_H


def cayley(A: sp.Matrix) -> sp.Matrix:
    """``(I - A)(I + A)^{-1}``: a rational orthogonal matrix for a skew-symmetric ``A``."""
    n = A.rows
    return (sp.eye(n) - A) * (sp.eye(n) + A).inv()


def _skew(n: int, seed_vals: list[int]) -> sp.Matrix:
    A = sp.zeros(n, n)
    it = iter(seed_vals)
    for i in range(n):
        for j in range(i + 1, n):
            v = sp.Rational(next(it), 3)
            A[i, j], A[j, i] = v, -v
    return A


def balance_scalar(led: Ledger, c_power: int = 1) -> None:
    """Steps 1: optimal rescaling and AM-GM as an explicit square. ``c_power`` (the power
    of ``t`` dividing ``c ||H||^2``: 2 for ``H / t``) is halved only by the wrong variant."""
    t, A, B = sp.symbols("t A B", positive=True)  # A = ||W||^2, B = ||H||^2
    f = (a * t**2 * A + c * B / t ** (2 * c_power)) / 2
    crit = [r for r in sp.solve(sp.diff(f, t), t) if r.is_positive]
    led.true("exactly one positive critical scaling", len(crit) == 1, f"{crit}")
    t0 = crit[0]
    led.zero("f(t*) - sqrt(a c A B)", f.subs(t, t0) - sp.sqrt(a * c * A * B))
    led.positive("f''(t*) > 0 (a minimum)", sp.diff(f, t, 2).subs(t, t0))
    # AM-GM: with a = p^2, c = q^2 the gap factors as a square over 2
    p, q, x, y = sp.symbols("p q x y", positive=True)
    gap = sp.factor((p**2 * x**2 + q**2 * y**2) / 2 - p * q * x * y)
    base, expo = gap.as_independent(x, y)[1].as_base_exp()
    coeff = gap.as_independent(x, y)[0]
    led.true("AM-GM gap factors as coeff * (...)^2", expo == 2 and coeff.is_positive is True,
             sp.sstr(gap))
    led.zero("coeff * base^2 - gap", coeff * base**expo - ((p**2 * x**2 + q**2 * y**2) / 2 - p * q * x * y))


def cauchy_schwarz_contraction(led: Ledger, n: int = 6, u_scale: sp.Expr = sp.S.One) -> None:
    """Steps 2-3: Lagrange's identity (Cauchy-Schwarz) and ``||U^T W|| <= ||W||``."""
    xs = sp.symbols(f"x0:{n}", real=True)
    ys = sp.symbols(f"y0:{n}", real=True)
    lhs = sum(v**2 for v in xs) * sum(v**2 for v in ys) - sum(u * v for u, v in zip(xs, ys)) ** 2
    sos = sum((xs[i] * ys[j] - xs[j] * ys[i]) ** 2 for i in range(n) for j in range(i + 1, n))
    led.zero(f"Lagrange identity n={n}: |x|^2|y|^2 - <x,y>^2 - sum of squares", lhs - sos)
    # U: 3 x 2 with orthonormal columns (two columns of a rational orthogonal 3 x 3)
    Q = cayley(_skew(3, [1, 2, -1]))
    led.zero("Q^T Q - I (Cayley)", Q.T * Q - sp.eye(3))
    U = Q[:, :2] * u_scale  # u_scale != 1 only in the wrong variant
    W = sp.Matrix(3, 2, lambda i, j: sp.Symbol(f"w{i}{j}", real=True))
    fro2 = lambda M: sum(e**2 for e in M)  # noqa: E731
    led.zero("||W||^2 - ||U^T W||^2 - ||(I - UU^T) W||^2",
             fro2(W) - fro2(U.T * W) - fro2((sp.eye(3) - U * U.T) * W))


QUARTER = sp.Rational(1, 4)


def svd_attains(led: Ledger, power: sp.Expr = QUARTER) -> None:
    """Attainment: the balanced factors ``W = (c/a)^{1/4} U S^{1/2} R^T``, ``H = (a/c)^{1/4} R S^{1/2} V^T``."""
    s1, s2, s3 = sig = sp.symbols("sigma1:4", positive=True)
    U = cayley(_skew(3, [1, -2, 1]))             # 3 x 3 orthogonal
    V = cayley(_skew(4, [1, 2, 0, -1, 1, 2]))[:, :3]   # 4 x 3, orthonormal columns
    R = cayley(_skew(5, [2, -1, 1, 0, 1, 1, -2, 1, 0, 1]))[:, :3]  # d = 5, r = 3
    for name, M in (("U", U), ("V", V), ("R", R)):
        led.zero(f"{name}^T {name} - I", M.T * M - sp.eye(M.cols))
    S = sp.diag(*sig)
    Z = U * S * V.T  # 3 x 4
    # singular values of Z are sigma_i: char. polynomial of Z Z^T has roots sigma_i^2
    x = sp.Symbol("x")
    led.zero("det(x I - Z Z^T) - prod(x - sigma_i^2)",
             sp.expand((x * sp.eye(3) - Z * Z.T).det() - sp.prod([x - v**2 for v in sig])))
    led.zero("tr(U^T Z V) - sum sigma (nuclear norm)", (U.T * Z * V).trace() - (s1 + s2 + s3))
    Sh = sp.diag(*[sp.sqrt(v) for v in sig])
    W = (c / a) ** power * U * Sh * R.T  # K x d (power = 1/4; another only in the wrong variant)
    H = (a / c) ** power * R * Sh * V.T  # d x N
    led.zero("W H - Z", W * H - Z)
    val = (a * sum(e**2 for e in W) + c * sum(e**2 for e in H)) / 2
    led.zero("(a||W||^2 + c||H||^2)/2 - sqrt(ac) ||Z||_*", val - sp.sqrt(a * c) * (s1 + s2 + s3))


def factorisation_numeric(led: Ledger, trials: int = 200, seed: int = 20240, bound_factor: float = 1.0) -> None:
    """Numeric evidence: random factorisations never beat ``sqrt(ac)||WH||_*``; SVD attains it."""
    rng = np.random.default_rng(seed)
    worst = np.inf
    for _ in range(trials):
        k, d, n = rng.integers(2, 6), rng.integers(1, 6), rng.integers(2, 7)
        av, cv = np.exp(rng.normal(size=2))
        W, H = rng.normal(size=(k, d)), rng.normal(size=(d, n))
        Z = W @ H
        nuc = np.linalg.svd(Z, compute_uv=False).sum()
        val = (av * np.sum(W**2) + cv * np.sum(H**2)) / 2
        worst = min(worst, val - bound_factor * np.sqrt(av * cv) * nuc)
        Uz, sz, Vt = np.linalg.svd(Z, full_matrices=False)
        W2 = (cv / av) ** 0.25 * Uz * np.sqrt(sz)
        H2 = (av / cv) ** 0.25 * (np.sqrt(sz)[:, None] * Vt)
        val2 = (av * np.sum(W2**2) + cv * np.sum(H2**2)) / 2
        led.true("SVD factor reproduces Z", np.allclose(W2 @ H2, Z, rtol=1e-10, atol=1e-10))
        led.true("SVD factor attains sqrt(ac)||Z||_*",
                 abs(val2 - bound_factor * np.sqrt(av * cv) * nuc) <= 1e-10 * max(1.0, nuc))
    led.true("objective >= sqrt(ac)||WH||_* on all trials", worst >= -1e-10, f"worst gap {worst}")


register(
    "factorisation_balance_amgm",
    "rescaling (tW, H/t) minimises (a||W||^2 + c||H||^2)/2 at sqrt(ac)||W|| ||H|| (AM-GM as a square)",
    "a, c, ||W||^2, ||H||^2 > 0 symbolic",
)(balance_scalar)

register(
    "factorisation_cauchy_schwarz",
    "||WH||_* = <W^T U, H V> <= ||W^T U|| ||H V|| <= ||W|| ||H||: Lagrange identity and contraction",
    "Lagrange identity for vectors of length 6; U = 2 columns of an exact Cayley orthogonal 3x3",
)(cauchy_schwarz_contraction)

register(
    "factorisation_svd_attains",
    "the SVD construction W = (c/a)^{1/4} U S^{1/2} R^T, H = (a/c)^{1/4} R S^{1/2} V^T "
    "gives WH = Z and value sqrt(ac)||Z||_*",
    "exact rational orthogonal U (3x3), V (4x3), R (5x3); sigma_i, a, c > 0 symbolic",
)(svd_attains)

register(
    "factorisation_numeric",
    "NUMERIC: random (W, H) satisfy (a||W||^2 + c||H||^2)/2 >= sqrt(ac)||WH||_*, the SVD attains it",
    "200 seeded random draws (rng seed 20240), K <= 5, d <= 5, N <= 6, float64 tol 1e-10",
    kind="numeric",
)(factorisation_numeric)


# ---------------------------------------------------------------- wrong variants (--mutants)
wrong_variant("factorisation_balance_amgm", "rescaling (tW, H/sqrt(t)): c ||H||^2 / t in place of / t^2")(
    lambda led: balance_scalar(led, c_power=sp.Rational(1, 2)))
wrong_variant("factorisation_cauchy_schwarz", "U with columns of norm 2 (not orthonormal)")(
    lambda led: cauchy_schwarz_contraction(led, n=3, u_scale=sp.Integer(2)))
wrong_variant("factorisation_svd_attains", "balanced factors with (c/a)^{1/2} in place of (c/a)^{1/4}")(
    lambda led: svd_attains(led, power=sp.Rational(1, 2)))
wrong_variant("factorisation_numeric", "the bound 1.5 sqrt(ac) ||WH||_* (20 draws)")(
    lambda led: factorisation_numeric(led, trials=20, bound_factor=1.5))
