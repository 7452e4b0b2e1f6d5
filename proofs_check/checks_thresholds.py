"""The trivial threshold of any design (docs/thresholds.md section 2).

At ``W = 0, H = 0`` every sample's logits are the bias ``b``. The checks build the
averaged PAL loss of an explicit design with symbolic counts ``n_S`` on every non-empty
label set of ``K = 3`` (and every single label and pair of ``K = 4``) and verify:

- the best constant logits with a free bias are ``b0 = log(f / M)`` (``f_k`` the fraction
  of samples carrying label ``k``, ``M`` the mean multiplicity): ``grad_b L(b 1^T) = 0`` there;
- with ``lam_b > 0`` the condition is ``M softmax(b) + lam_b b = f`` (what
  ``ufm.theory.trivial_bias`` solves), from the derivative of the explicit loss;
- column ``S`` of ``grad_X L`` at ``X = b 1^T`` is ``n_S (m_S softmax(b) - y_S) / N`` per
  group (the matrix whose spectral norm is the threshold, ``ufm.theory.trivial_gradient``);
- with a free bias the rows of that gradient sum to zero (``Gamma0 1 = 0``: the bias part
  of the optimality condition), and a rank-one ``Z = -t u v^T`` is met by ``F`` with
  penalty ``mu t`` (``W = sqrt(t) c u e^T``, ``H = -sqrt(t)/c e v^T``, ``c^4 = lam_H/lam_W``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import sympy as sp

from .core import Ledger, register, wrong_variant


def _design(K: int, max_m: int) -> tuple[list[tuple[int, ...]], dict]:
    sets = [S for m in range(1, max_m + 1) for S in itertools.combinations(range(K), m)]
    n = {S: sp.Symbol("n_" + "".join(map(str, S)), positive=True) for S in sets}
    return sets, n


def _rational(e: sp.Expr) -> sp.Expr:
    """Residuals here are rational in the counts and in ``exp(b_k)``: cancel them as such."""
    es = {a: sp.Symbol(f"E{i}", positive=True) for i, a in enumerate(sorted(e.atoms(sp.exp), key=str))}
    return sp.cancel(sp.together(e.subs(es)))


def free_bias(f: list, M: sp.Expr, K: int) -> list:
    """The claimed best constant logits with a free bias: ``log(f_k / M)``."""
    return [sp.log(fk / M) for fk in f]


def trivial_point_exact(led: Ledger, cases: tuple = ((3, 3), (4, 2)),
                        bias: Callable[[list, sp.Expr, int], list] = free_bias) -> None:
    """Explicit loss with symbolic counts; ``b0``, the gradient columns and the bias equation."""
    for K, max_m in cases:
        sets, n = _design(K, max_m)
        N = sum(n.values())
        b = sp.symbols(f"b0:{K}", real=True)
        lse = sp.log(sum(sp.exp(bk) for bk in b))
        L = sum(n[S] * (len(S) * lse - sum(b[k] for k in S)) for S in sets) / N
        f = [sum(n[S] for S in sets if k in S) / N for k in range(K)]
        M = sum(n[S] * len(S) for S in sets) / N
        led.zero(f"K={K}: sum_k f_k - M", sum(f) - M)
        softmax = [sp.exp(bk) / sum(sp.exp(bj) for bj in b) for bk in b]
        lam_b = sp.Symbol("lam_b", positive=True)
        grad_b = [sp.diff(L + lam_b * sum(bk**2 for bk in b) / 2, bk) for bk in b]
        led.zero(f"K={K}: grad_b [L + lam_b/2 |b|^2] - (M softmax(b) + lam_b b - f)",
                 [g - (M * p + lam_b * bk - fk) for g, p, bk, fk in zip(grad_b, softmax, b, f)],
                 simplifier=_rational)
        b0 = bias(f, M, K)
        at0 = {bk: v for bk, v in zip(b, b0)}
        led.zero(f"K={K}: grad_b L(b0 1^T) (free bias)", [sp.diff(L, bk).subs(at0) for bk in b],
                 simplifier=_rational)
        # the gradient w.r.t. the logits of each label set, at constant logits b
        for S in sets[:: max(1, len(sets) // 4)]:
            x = sp.symbols(f"x0:{K}", real=True)
            lse_x = sp.log(sum(sp.exp(xk) for xk in x))
            term = n[S] * (len(S) * lse_x - sum(x[k] for k in S)) / N
            col = [sp.diff(term, xk).subs(dict(zip(x, b))) for xk in x]
            y = [1 if k in S else 0 for k in range(K)]
            led.zero(f"K={K}: column {S} of grad_X L at b 1^T - n_S (m_S softmax(b) - y_S)/N",
                     [c - n[S] * (len(S) * p - yk) / N for c, p, yk in zip(col, softmax, y)],
                     simplifier=_rational)
        # free bias: the rows of Gamma0 sum to 0 (sum over samples of m_i p0 - y_i)
        p0 = [fk / M for fk in f]
        rows = [sum(n[S] * (len(S) * p0[k] - (1 if k in S else 0)) for S in sets) / N for k in range(K)]
        led.zero(f"K={K}: Gamma0 1 = 0 at the free-bias b0", rows, simplifier=_rational)


QUARTER = sp.Rational(1, 4)


def rank_one_penalty(led: Ledger, power: sp.Expr = QUARTER) -> None:
    """``W = sqrt(t) c u e^T, H = -sqrt(t)/c e v^T`` gives ``W H = -t u v^T`` and penalty ``mu t``
    with the balancing scale ``c = (lam_H/lam_W)^power``, ``power = 1/4``."""
    t, lw, lh = sp.symbols("t lam_W lam_H", positive=True)
    c = (lh / lw) ** power
    pen = lw / 2 * t * c**2 + lh / 2 * t / c**2  # |u| = |v| = |e| = 1
    led.zero("penalty of the balanced rank-one factorisation - sqrt(lam_W lam_H) t",
             pen - sp.sqrt(lw * lh) * t)


register(
    "threshold_trivial_point_exact",
    "at W = H = 0 the best free bias is log(f/M), the bias equation is M softmax(b) + lam_b b = f, "
    "and grad_X L has columns n_S (m_S softmax(b) - y_S)/N summing to 0 over samples",
    "K = 3 (all 7 label sets) and K = 4 (singles and pairs), every count n_S a positive symbol",
    kind="exact-K",
)(trivial_point_exact)

register(
    "threshold_rank_one_penalty",
    "a rank-one Z = -t u v^T is met by F with penalty mu t (so F and C agree along the escape "
    "direction, for every d >= 1)",
    "lam_W, lam_H, t > 0 symbolic; unit u, v, e",
)(rank_one_penalty)


# ---------------------------------------------------------------- wrong variants (--mutants)
wrong_variant("threshold_trivial_point_exact", "the uniform bias b0 = 0 (right only for balanced frequencies)")(
    lambda led: trivial_point_exact(led, cases=((3, 3),), bias=lambda f, M, K: [sp.Integer(0)] * K))
wrong_variant("threshold_rank_one_penalty", "balancing scale (lam_H/lam_W)^(1/2) instead of ^(1/4)")(
    lambda led: rank_one_penalty(led, power=sp.Rational(1, 2)))
