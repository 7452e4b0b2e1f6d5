"""Sums over label sets of one size (issue 4, item 2).

``Sigma_m = sum_{|S| = m} 1_S 1_S^T = C(K-2, m-1) I + C(K-2, m-2) 1 1^T`` and
``P Sigma_m P = C(K-2, m-1) P``.
"""

from __future__ import annotations

from collections.abc import Callable

import sympy as sp

from .algebra import IJ, centring, label_sets
from .core import Ledger, register

K, m = sp.symbols("K m", integer=True, positive=True)
K_RANGE = range(2, 11)

Coef = Callable[[sp.Expr, sp.Expr], sp.Expr]


def coef_I(k: sp.Expr, mm: sp.Expr) -> sp.Expr:
    """The claimed coefficient of ``I``: ``C(K-2, m-1)``."""
    return sp.binomial(k - 2, mm - 1)


def coef_J(k: sp.Expr, mm: sp.Expr) -> sp.Expr:
    """The claimed coefficient of ``1 1^T``: ``C(K-2, m-2)``."""
    return sp.binomial(k - 2, mm - 2)


def sigma_explicit(k: int, mm: int) -> sp.Matrix:
    """``sum_{|S| = mm} 1_S 1_S^T`` accumulated over ``itertools.combinations``."""
    acc = [[0] * k for _ in range(k)]
    for S in label_sets(k, mm):
        for i in S:
            for j in S:
                acc[i][j] += 1
    return sp.Matrix(acc)


def label_sets_exact(
    led: Ledger, ks: range = K_RANGE, cI: Coef = coef_I, cJ: Coef = coef_J
) -> None:
    """Explicit sums for every ``K`` in ``ks`` and ``1 <= m <= K``."""
    for k in ks:
        P = centring(k)
        for mm in range(1, k + 1):
            Sig = sigma_explicit(k, mm)
            a, b = cI(sp.Integer(k), sp.Integer(mm)), cJ(sp.Integer(k), sp.Integer(mm))
            led.zero(f"K={k},m={mm}: Sigma - (aI + bJ)", Sig - a * sp.eye(k) - b * sp.ones(k, k))
            led.zero(f"K={k},m={mm}: P Sigma P - a P", P * Sig * P - a * P)


def label_sets_symbolic(led: Ledger, cI: Coef = coef_I, cJ: Coef = coef_J) -> None:
    """Symbolic ``K, m`` (``2 <= m <= K-1``).

    ``Sigma_m`` commutes with every permutation matrix, hence lies in the
    ``alpha I + beta J`` algebra; its trace (``sum_S |S| = m C(K,m)``) and its total
    ``1^T Sigma 1`` (``sum_S |S|^2 = m^2 C(K,m)``) determine ``(alpha, beta)``
    (the 2x2 system has determinant ``K^2 (K-1) != 0``). The check solves that
    system and compares with the claimed binomials, then projects with ``P``.
    """
    alpha, beta = sp.symbols("alpha beta")
    Sig = IJ(alpha, beta, K)
    eqs = [Sig.trace() - m * sp.binomial(K, m), Sig.total() - m**2 * sp.binomial(K, m)]
    sol = sp.solve(eqs, [alpha, beta], dict=True)
    led.true("trace/total determine (alpha, beta)", len(sol) == 1)
    comb = lambda e: sp.simplify(sp.combsimp(e))  # noqa: E731
    led.zero("alpha - claimed I coefficient", sol[0][alpha] - cI(K, m), simplifier=comb)
    led.zero("beta - claimed J coefficient", sol[0][beta] - cJ(K, m), simplifier=comb)
    # diagonal entry = #{S containing i} = C(K-1, m-1): Pascal's rule links it to alpha + beta
    led.zero("C(K-1,m-1) - (alpha + beta)", sp.binomial(K - 1, m - 1) - cI(K, m) - cJ(K, m), simplifier=comb)
    P = IJ(sp.Integer(1), -1 / K, K)
    S_claim = IJ(cI(K, m), cJ(K, m), K)
    PSP = P * S_claim * P
    led.zero("P Sigma P - C(K-2,m-1) P (I part)", PSP.alpha - cI(K, m) * P.alpha)
    led.zero("P Sigma P - C(K-2,m-1) P (J part)", PSP.beta - cI(K, m) * P.beta)


register(
    "label_sets_exact",
    "sum_{|S|=m} 1_S 1_S^T = C(K-2,m-1) I + C(K-2,m-2) 11^T and P(...)P = C(K-2,m-1) P",
    "K = 2..10, every 1 <= m <= K; sums over itertools.combinations, exact integers",
    kind="exact-K",
)(label_sets_exact)

register(
    "label_sets_symbolic",
    "trace and total of sum_{|S|=m} 1_S 1_S^T force the coefficients C(K-2,m-1), C(K-2,m-2); "
    "P(...)P = C(K-2,m-1) P",
    "K, m symbolic integers, 2 <= m <= K-1; permutation invariance puts the sum in the IJ algebra",
)(label_sets_symbolic)
