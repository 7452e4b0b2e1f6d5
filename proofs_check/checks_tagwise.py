"""Tag-wise logits and features (issue 4, item 3).

* PAL loss at the tag-wise logits ``z = s (1_S - (m/K) 1)`` equals
  ``m log(m + (K-m) e^{-s})``;
* ``W^T 1_S`` is the sum of the rows ``w_k``, ``k in S``;
* with the ETF ``W W^T = sqrt(lam_H/lam_W) sigma P`` and ``h_S = kappa s_m W^T 1_S``,
  the logits are ``s_m (1_S - (m/K) 1)``;
* the tag-wise average scale ``c_m = m s_m / s_1``.
"""

from __future__ import annotations

import sys

import sympy as sp

from .algebra import IJ, centring, helmert_basis, indicator, label_sets, ones, pal_loss
from .core import Ledger, exp_log_simplify, patched, register, wrong_variant

s = sp.Symbol("s", positive=True)
K_RANGE = range(2, 11)


def pal_claim(k: sp.Expr, mm: sp.Expr, ss: sp.Expr) -> sp.Expr:
    """The claimed value ``m log(m + (K - m) e^{-s})``."""
    return mm * sp.log(mm + (k - mm) * sp.exp(-ss))


def pal_tagwise_exact(led: Ledger, ks: range = K_RANGE) -> None:
    """PAL loss (built from its definition) at ``z = s (1_S - (m/K) 1)``, exact ``K``."""
    for k in ks:
        for mm in range(1, k + 1):
            # two label sets per (K, m): the first m classes and the last m classes
            for S in {tuple(range(mm)), tuple(range(k - mm, k))}:
                y = indicator(k, S)
                z = s * (y - sp.Rational(mm, k) * ones(k))
                led.zero(f"K={k},S={S}: l(z) - claim", pal_loss(z, y) - pal_claim(k, mm, s),
                         simplifier=exp_log_simplify)


def pal_tagwise_symbolic(led: Ledger, claim=None) -> None:
    """Symbolic ``K, m``: the logits take the value ``s(1 - m/K)`` m times, ``-s m/K`` K-m times."""
    K, m = sp.symbols("K m", positive=True)
    z_in, z_out = s * (1 - m / K), -s * m / K
    lse = sp.log(m * sp.exp(z_in) + (K - m) * sp.exp(z_out))
    loss = m * lse - m * z_in  # sum over k in S of (LSE - z_k)
    claim = pal_claim if claim is None else claim  # a parameter only for the wrong variant
    led.zero("l(z) - m log(m + (K-m) e^{-s})", loss - claim(K, m, s), simplifier=exp_log_simplify)
    # the gradient of the loss in s: used by phi (dl/ds = -m (K-m) e^{-s} / (m + (K-m) e^{-s}))
    grad = sp.diff(loss, s)
    led.zero("d l/ds - d claim/ds", grad - sp.diff(claim(K, m, s), s))


def row_sums(led: Ledger, ks: range = K_RANGE, d: int = 2) -> None:
    """``W^T 1_S = sum_{k in S} w_k`` for a generic symbolic ``W`` (``K x d``), all ``S``."""
    for k in ks:
        W = sp.Matrix(k, d, lambda i, j: sp.Symbol(f"w_{i}_{j}"))
        for mm in range(1, k + 1):
            for S in label_sets(k, mm):
                rows = sum((W[i, :] for i in S), sp.zeros(1, d))
                led.zero(f"K={k},S={S}", W.T * indicator(k, S) - rows.T)


def tagwise_logits_exact(led: Ledger, ks: range = K_RANGE) -> None:
    """With explicit ``W = sqrt(g) U`` (so ``W W^T = g P``, ``g = sqrt(lam_H/lam_W) sigma``),
    ``h_S = kappa s_m W^T 1_S``,
    ``kappa = sqrt(lam_W/lam_H)/sigma``: ``W h_S = s_m (1_S - (m/K) 1)`` for every ``S``."""
    lam_W, lam_H, sigma, s_m = sp.symbols("lam_W lam_H sigma s_m", positive=True)
    g = sp.sqrt(lam_H / lam_W) * sigma
    kappa = sp.sqrt(lam_W / lam_H) / sigma
    for k in ks:
        W = sp.sqrt(g) * helmert_basis(k)  # (k, k-1) explicit ETF at the NC2 scale
        WWt = W * W.T
        led.zero(f"K={k}: W W^T - sqrt(lam_H/lam_W) sigma P", WWt - g * centring(k))
        # W h_S = W (kappa s_m W^T 1_S) = kappa s_m (W W^T) 1_S
        for mm in range(1, k + 1):
            for S in label_sets(k, mm):
                y = indicator(k, S)
                logits = kappa * s_m * (WWt * y)
                led.zero(f"K={k},S={S}", logits - s_m * (y - sp.Rational(mm, k) * ones(k)))


def tagwise_scale(led: Ledger, ks: range = range(2, 7), d: int = 3, cm_claim=None) -> None:
    """``h_S = c_m mean_{k in S} h_{k}`` with ``c_m = m s_m / s_1`` (generic ``W``), and the
    norm ratio ``||h_S|| / ||mean h_k|| = c_m`` at the ETF (symbolic ``K, m`` via IJ)."""
    kappa, s_1, s_m = sp.symbols("kappa s_1 s_m", positive=True)
    cm_claim = (lambda mm, sm, s1: mm * sm / s1) if cm_claim is None else cm_claim  # wrong variant only
    for k in ks:
        W = sp.Matrix(k, d, lambda i, j: sp.Symbol(f"w_{i}_{j}"))
        h_single = [kappa * s_1 * W[i, :].T for i in range(k)]  # h_{k} = kappa s_1 w_k
        for mm in range(1, k + 1):
            c_m = cm_claim(mm, s_m, s_1)
            for S in label_sets(k, mm):
                h_S = kappa * s_m * W.T * indicator(k, S)
                mean = sum((h_single[i] for i in S), sp.zeros(d, 1)) / mm
                led.zero(f"K={k},S={S}: h_S - c_m mean", h_S - c_m * mean)
    # norm ratio at the ETF, symbolic K and m: ||W^T 1_S||^2 = g 1_S^T P 1_S = g (m - m^2/K)
    K, m, g = sp.symbols("K m g", positive=True)
    quad = g * (m - m**2 / K)  # 1_S^T (g P) 1_S, via P 1_S = 1_S - (m/K) 1
    PS = IJ(sp.Integer(1), -1 / K, K)
    led.zero("1_S^T P 1_S from the IJ action", (PS.alpha * m + PS.beta * m**2) - (m - m**2 / K))
    ratio = sp.sqrt((kappa * s_m) ** 2 * quad) / sp.sqrt((kappa * s_1 / m) ** 2 * quad)
    led.zero("||h_S|| / ||mean h_k|| - m s_m / s_1", ratio - cm_claim(m, s_m, s_1))


register(
    "tagwise_pal_loss_exact",
    "the PAL loss at z = s(1_S - (m/K)1) equals m log(m + (K-m) e^{-s})",
    "K = 2..10, every 1 <= m <= K (two sets S each), s > 0 symbolic; loss built from its definition",
    kind="exact-K",
)(pal_tagwise_exact)

register(
    "tagwise_pal_loss_symbolic",
    "same identity for symbolic K, m (and its s-derivative)",
    "K, m, s > 0 symbolic, z two-valued (m entries s(1-m/K), K-m entries -sm/K)",
)(pal_tagwise_symbolic)

register(
    "tagwise_row_sums",
    "W^T 1_S is the sum of the rows w_k, k in S",
    "K = 2..10, every non-empty S, generic symbolic W (K x 2)",
    kind="exact-K",
)(row_sums)

register(
    "tagwise_logits_exact",
    "explicit ETF W with W W^T = sqrt(lam_H/lam_W) sigma P and h_S = kappa s_m W^T 1_S give "
    "logits s_m(1_S - (m/K)1)",
    "K = 2..10, every non-empty S; lam_W, lam_H, sigma, s_m > 0 symbolic",
    kind="exact-K",
)(tagwise_logits_exact)

register(
    "tagwise_scale_cm",
    "h_S = c_m mean_{k in S} h_k with c_m = m s_m/s_1, and ||h_S||/||mean h_k|| = c_m at the ETF",
    "generic symbolic W for K = 2..6 (all S); norm ratio for symbolic K, m, s_1, s_m > 0",
)(tagwise_scale)


# ---------------------------------------------------------------- wrong variants (--mutants)
_THIS = sys.modules[__name__]


@wrong_variant("tagwise_pal_loss_exact", "claimed value m log(m + (K-m) e^{-2s}) (K = 2)")
def _wrong_pal_exact(led: Ledger) -> None:
    with patched(_THIS, "pal_claim", lambda k, mm, ss: mm * sp.log(mm + (k - mm) * sp.exp(-2 * ss))):
        pal_tagwise_exact(led, range(2, 3))


wrong_variant("tagwise_pal_loss_symbolic", "claimed value log(m + (K-m) e^{-s}) (no factor m)")(
    lambda led: pal_tagwise_symbolic(led, claim=lambda k, mm, ss: sp.log(mm + (k - mm) * sp.exp(-ss))))


@wrong_variant("tagwise_row_sums", "1_S with the first class always included (K = 2..3)")
def _wrong_row_sums(led: Ledger) -> None:
    def wrong(k: int, S: tuple[int, ...]) -> sp.Matrix:
        return sp.Matrix([1 if (j in S or j == 0) else 0 for j in range(k)])

    with patched(_THIS, "indicator", wrong):
        row_sums(led, range(2, 4))


@wrong_variant("tagwise_logits_exact", "an unnormalised Helmert basis (columns scaled by 2; K = 2..3)")
def _wrong_logits(led: Ledger) -> None:
    orig = helmert_basis
    with patched(_THIS, "helmert_basis", lambda k: 2 * orig(k)):
        tagwise_logits_exact(led, range(2, 4))


wrong_variant("tagwise_scale_cm", "c_m = s_m / s_1 (without the factor m; K = 2..3)")(
    lambda led: tagwise_scale(led, range(2, 4), cm_claim=lambda mm, sm, s1: sm / s1))
