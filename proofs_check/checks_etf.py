"""Simplex ETF and the centring projector (issue 4, item 1).

Symbolic ``K`` through the ``alpha I + beta J`` algebra, and exactly with explicit
matrices for ``K = 2..10``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import sympy as sp

from .algebra import IJ, centring, helmert_basis, ones
from .core import Ledger, patched, register, wrong_variant

K = sp.Symbol("K", integer=True, positive=True)
K_RANGE = range(2, 11)


def projector_symbolic(led: Ledger, beta: Callable[[sp.Expr], sp.Expr] = lambda k: -1 / k) -> None:
    """``P = I - J/K``: ``P^2 = P``, ``P 1 = 0``, ``tr P = K - 1`` in the IJ algebra.

    ``beta`` (the claimed ``J`` coefficient) is a parameter only for the wrong variant."""
    P = IJ(sp.Integer(1), beta(K), K)
    P2 = P * P
    led.zero("P^2 - P (I coefficient)", P2.alpha - P.alpha)
    led.zero("P^2 - P (J coefficient)", P2.beta - P.beta)
    led.zero("P 1", P.on_ones())
    led.zero("tr P - (K-1)", P.trace() - (K - 1))
    # P - I must be a pure multiple of J; then (P - I) v = beta 1 (1^T v) = 0 on 1-perp
    led.zero("P - I has no I part", (P - IJ(sp.Integer(1), sp.Integer(0), K)).alpha)


def etf_gram_symbolic(
    led: Ledger, cosine: Callable[[sp.Expr], sp.Expr] = lambda k: -1 / (k - 1)
) -> None:
    """Gram of ``M = sqrt(K/(K-1)) P``; ``cosine`` is the claimed pairwise cosine."""
    P = IJ(sp.Integer(1), -1 / K, K)
    c = sp.sqrt(K / (K - 1))
    M = P * c
    G = M.T * M  # computed with J^2 = K J
    led.zero("equal unit norms: G_kk - 1", G.diag() - 1)
    led.zero("pairwise cosine G_kl/G_kk - claimed", G.offdiag() / G.diag() - cosine(K))
    led.zero("columns sum to zero: 1^T G 1", G.total())
    # rank: G = g P with P idempotent, so rank G = tr(P) = K - 1
    g = sp.simplify(G.alpha)
    led.zero("G - g P (J coefficient)", G.beta - g * P.beta)
    led.zero("rank G - (K-1) = tr(G/g) - (K-1)", (G * (1 / g)).trace() - (K - 1))
    # uniqueness: a Gram a I + b J with unit diagonal and zero row sums is this one
    a, b = sp.symbols("a b")
    sol = sp.solve([a + b - 1, a + K * b], [a, b], dict=True)
    led.true("unique solution of the ETF conditions", len(sol) == 1)
    led.zero("solved Gram - G (I)", sol[0][a] - G.alpha)
    led.zero("solved Gram - G (J)", sol[0][b] - G.beta)


def etf_exact(
    led: Ledger,
    ks: range = K_RANGE,
    cosine: Callable[[sp.Expr], sp.Expr] = lambda k: sp.Rational(-1, k - 1),
) -> None:
    """Explicit ETF ``W = sqrt(K/(K-1)) U`` (rows ``w_k``) with ``U`` the Helmert basis."""
    for k in ks:
        U = helmert_basis(k)  # (k, k-1)
        P = centring(k)
        led.zero(f"K={k}: U^T U - I", U.T * U - sp.eye(k - 1))
        led.zero(f"K={k}: U U^T - (I - 11^T/K)", U * U.T - P)
        W = sp.sqrt(sp.Rational(k, k - 1)) * U  # (k, k-1), rows are the class vectors
        G = W * W.T
        led.zero(f"K={k}: norms ||w_k||^2 - 1", [G[i, i] - 1 for i in range(k)])
        led.zero(
            f"K={k}: cosines - claimed",
            [G[i, j] / sp.sqrt(G[i, i] * G[j, j]) - cosine(k) for i in range(k) for j in range(k) if i != j],
        )
        led.zero(f"K={k}: sum of rows", W.T * ones(k))
        led.zero(f"K={k}: rank W - (K-1)", W.rank() - (k - 1))


def projector_exact(led: Ledger, ks: range = K_RANGE) -> None:
    """``P = I - 11^T/K`` explicitly: symmetric idempotent, kernel ``1``, identity on ``1``-perp."""
    for k in ks:
        P = centring(k)
        led.zero(f"K={k}: P^2 - P", P * P - P)
        led.zero(f"K={k}: P^T - P", P.T - P)
        led.zero(f"K={k}: P 1", P * ones(k))
        led.zero(f"K={k}: rank P - (K-1)", P.rank() - (k - 1))
        for i in range(k - 1):  # the basis e_i - e_{i+1} of 1-perp is fixed by P
            v = sp.zeros(k, 1)
            v[i], v[i + 1] = 1, -1
            led.zero(f"K={k}: P v - v, v = e_{i} - e_{i + 1}", P * v - v)


register(
    "etf_projector_symbolic",
    "P = I - 11^T/K is the orthogonal projector onto 1-perp (P^2 = P, P1 = 0, tr P = K-1)",
    "K symbolic positive integer >= 2; algebra alpha I + beta J with J^2 = K J",
)(projector_symbolic)

register(
    "etf_gram_symbolic",
    "M = sqrt(K/(K-1)) P has unit norms, cosines -1/(K-1), zero column sums, rank K-1; "
    "these conditions determine the Gram",
    "K symbolic positive integer >= 2; algebra alpha I + beta J with J^2 = K J",
)(etf_gram_symbolic)

register(
    "etf_exact",
    "explicit ETF W = sqrt(K/(K-1)) U (Helmert U): U U^T = P, unit norms, cosines -1/(K-1), "
    "rows sum to 0, rank K-1",
    "K = 2..10, exact arithmetic (sympy Matrix, surds)",
    kind="exact-K",
)(etf_exact)

register(
    "etf_projector_exact",
    "explicit P = I - 11^T/K is symmetric, idempotent, kills 1, fixes a basis of 1-perp, rank K-1",
    "K = 2..10, exact rational matrices",
    kind="exact-K",
)(projector_exact)


# ---------------------------------------------------------------- wrong variants (--mutants)
wrong_variant("etf_projector_symbolic", "P = I - J/(K+1)")(
    lambda led: projector_symbolic(led, beta=lambda k: -1 / (k + 1)))
wrong_variant("etf_gram_symbolic", "pairwise cosine -1/K")(
    lambda led: etf_gram_symbolic(led, cosine=lambda k: -1 / k))
wrong_variant("etf_exact", "pairwise cosine -1/K (K = 2..4)")(
    lambda led: etf_exact(led, range(2, 5), cosine=lambda k: sp.Rational(-1, k)))


@wrong_variant("etf_projector_exact", "centring built as I - 11^T/(K+1) (K = 2..4)")
def _wrong_projector_exact(led: Ledger) -> None:
    wrong = lambda k: sp.eye(k) - sp.ones(k, k) / (k + 1)  # noqa: E731
    with patched(sys.modules[__name__], "centring", wrong):
        projector_exact(led, range(2, 5))
