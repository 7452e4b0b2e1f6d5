"""Sums over label sets of one size (issue 4, item 2).

``Sigma_m = sum_{|S| = m} 1_S 1_S^T = C(K-2, m-1) I + C(K-2, m-2) 1 1^T`` and
``P Sigma_m P = C(K-2, m-1) P``.
"""

from __future__ import annotations

from collections.abc import Callable

import sympy as sp

from .algebra import IJ, centring, label_sets
from .core import Ledger, register, wrong_variant

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


def count_equations(K_: sp.Expr, m_: sp.Expr, per_class: sp.Expr, per_pair: sp.Expr) -> list[sp.Expr]:
    """The two double-counting identities over the ``C(K, m)`` sets of size ``m``.

    ``per_class``: sets containing a given class (the same for every class: a permutation
    of the classes maps the sets containing ``i`` one-to-one onto those containing ``j``);
    ``per_pair``: sets containing two given distinct classes (likewise). Counting the pairs
    ``(class, set)`` with the class in the set: ``K per_class = m C(K, m)``; counting the
    triples ``(i, j, S)`` with ``i != j`` both in ``S``: ``K (K-1) per_pair = m (m-1) C(K, m)``.
    Returns the two residuals."""
    total = sp.binomial(K_, m_)
    return [K_ * per_class - m_ * total, K_ * (K_ - 1) * per_pair - m_ * (m_ - 1) * total]


def sigma_coefficients(K_: sp.Expr = K, m_: sp.Expr = m) -> tuple[sp.Expr, sp.Expr]:
    """``(alpha, beta)`` of ``Sigma_m = sum_{|S|=m} 1_S 1_S^T = alpha I + beta J``, *computed*:
    the entries of ``Sigma_m`` are the counts (diagonal: ``per_class``; off-diagonal:
    ``per_pair``), solved from :func:`count_equations`; ``alpha = per_class - per_pair``,
    ``beta = per_pair``. Used by the global chain instead of typed-in binomials."""
    pc, pp = sp.symbols("per_class per_pair")
    sol = sp.solve(count_equations(K_, m_, pc, pp), [pc, pp], dict=True)[0]
    return sp.simplify(sp.combsimp(sol[pc] - sol[pp])), sp.simplify(sp.combsimp(sol[pp]))


def label_sets_symbolic(led: Ledger, cI: Coef = coef_I, cJ: Coef = coef_J,
                        per_class: Coef = lambda k, mm: sp.binomial(k - 1, mm - 1),
                        per_pair: Coef = lambda k, mm: sp.binomial(k - 2, mm - 2)) -> None:
    """Symbolic ``K, m`` (``2 <= m <= K-1``): the coefficients by double counting.

    The entries of ``Sigma_m`` count sets: ``(Sigma_m)_ii`` the sets containing ``i``,
    ``(Sigma_m)_ij`` (``i != j``) those containing both. The claimed counts
    ``C(K-1, m-1)`` and ``C(K-2, m-2)`` must satisfy the two double-counting identities of
    :func:`count_equations` (which also determine them: the system is triangular with
    nonzero diagonal); then ``alpha = per_class - per_pair`` and ``beta = per_pair`` must be
    the claimed ``C(K-2, m-1)``, ``C(K-2, m-2)``, and ``P Sigma_m P = alpha P``.
    ``cI``, ``cJ``, ``per_class``, ``per_pair`` are parameters only for the wrong variants.
    """
    comb = lambda e: sp.simplify(sp.combsimp(sp.expand_func(e)))  # noqa: E731
    pc, pp = per_class(K, m), per_pair(K, m)
    r1, r2 = count_equations(K, m, pc, pp)
    led.zero("K #{S: i in S} - m C(K,m) (incidences counted twice)", r1, simplifier=comb)
    led.zero("K(K-1) #{S: i, j in S} - m(m-1) C(K,m) (ordered pairs counted twice)", r2, simplifier=comb)
    alpha, beta = sigma_coefficients()
    led.zero("computed alpha - claimed I coefficient C(K-2,m-1)", alpha - cI(K, m), simplifier=comb)
    led.zero("computed beta - claimed J coefficient C(K-2,m-2)", beta - cJ(K, m), simplifier=comb)
    led.zero("per_class - per_pair - computed alpha", pc - pp - alpha, simplifier=comb)
    P = IJ(sp.Integer(1), -1 / K, K)
    PSP = P * IJ(alpha, beta, K) * P
    led.zero("P Sigma P - C(K-2,m-1) P (I part)", PSP.alpha - cI(K, m) * P.alpha, simplifier=comb)
    led.zero("P Sigma P - C(K-2,m-1) P (J part)", PSP.beta - cI(K, m) * P.beta, simplifier=comb)


register(
    "label_sets_exact",
    "sum_{|S|=m} 1_S 1_S^T = C(K-2,m-1) I + C(K-2,m-2) 11^T and P(...)P = C(K-2,m-1) P",
    "K = 2..10, every 1 <= m <= K; sums over itertools.combinations, exact integers",
    kind="exact-K",
)(label_sets_exact)

register(
    "label_sets_symbolic",
    "double counting (incidences, ordered pairs) computes the counts of sum_{|S|=m} 1_S 1_S^T, "
    "hence its coefficients C(K-2,m-1) I + C(K-2,m-2) 11^T; P(...)P = C(K-2,m-1) P",
    "K, m symbolic integers, 2 <= m <= K-1; every class (pair) lies in equally many sets "
    "(a permutation of the classes maps them one-to-one)",
)(label_sets_symbolic)


# ---------------------------------------------------------------- wrong variants (--mutants)
wrong_variant("label_sets_exact", "I coefficient C(K-2, m) (K = 2..5)")(
    lambda led: label_sets_exact(led, range(2, 6), cI=lambda k, mm: sp.binomial(k - 2, mm)))
wrong_variant("label_sets_symbolic", "I coefficient C(K-1, m-1) (the count of sets containing a class)")(
    lambda led: label_sets_symbolic(led, cI=lambda k, mm: sp.binomial(k - 1, mm - 1)))
