"""Single-label limit (issue 4, item 8): the multi-label formulas reduce to Zhu et al.

With only single labels (profile ``{1: n}``, ``N = n K``) the objective is the UFM of
Zhu et al. (NeurIPS 2021), whose global minimisers satisfy
``h_{k,i} = sqrt(lam_W / (n lam_H)) w_k`` with an ETF ``W``. Zhu et al.'s problem is
reduced independently here to one scalar (the common row norm ``rho`` of an ETF ``W``
with ``h_k = c w_k``, ``c = sqrt(lam_W/(n lam_H))``) and compared with the multi-label
``phi`` (docs/proofs.md) and its predicted ``W``, ``H``.
"""

from __future__ import annotations

import sympy as sp

from .algebra import IJ, centring, helmert_basis, indicator, pal_loss
from .core import Ledger, exp_log_simplify, patched, register, wrong_variant

K = sp.Symbol("K", positive=True)
n, lam_W, lam_H, s, rho = sp.symbols("n lam_W lam_H s rho", positive=True)
mu = sp.sqrt(lam_W * lam_H)
c_zhu = sp.sqrt(lam_W / (n * lam_H))  # Zhu et al.: h_k = c w_k


def single_label_zhu(led: Ledger) -> None:
    """The theorem's predictions with ``M = {1}`` versus Zhu et al.'s closed form."""
    N = n * K
    sigma = sp.sqrt(n * sp.binomial(K - 2, 0) * s**2)
    kappa = sp.sqrt(lam_W / lam_H) / sigma
    # NC3 (h_k = kappa s_1 w_k) is Zhu's h_k = sqrt(lam_W/(n lam_H)) w_k
    led.zero("kappa s_1 - sqrt(lam_W/(n lam_H))", kappa * s - c_zhu)
    # Zhu's problem restricted to ETF W with row norm rho and h_k = c w_k (symbolic K, IJ):
    # W W^T = rho^2 K/(K-1) P, logits of class k: c (W W^T)_k = c rho^2 K/(K-1) (e_k - 1/K)
    P = IJ(sp.Integer(1), -1 / K, K)
    G = P * (rho**2 * K / (K - 1))
    led.zero("row norm^2 of the ETF Gram - rho^2", G.diag() - rho**2)
    logit_true, logit_other = c_zhu * G.diag(), c_zhu * G.offdiag()
    ce = sp.log(sp.exp(logit_true) + (K - 1) * sp.exp(logit_other)) - logit_true
    F_zhu = ce + lam_W / 2 * K * rho**2 + lam_H / 2 * N * c_zhu**2 * rho**2  # (1/N) sum of N equal CE
    # multi-label phi with profile {1: n}
    phi = n * K * 1 * sp.log(1 + (K - 1) * sp.exp(-s)) / N + mu * (K - 1) * sigma
    # the logit margin s of Zhu's point: s = c rho^2 K/(K-1), i.e. rho^2 = s (K-1)/(K c)
    margin = sp.simplify(logit_true - logit_other)
    rho2 = sp.solve(sp.Eq(margin, s), rho**2)
    led.true("unique rho^2 for a given margin s", len(rho2) == 1, f"{rho2}")
    F_on_s = F_zhu.subs(rho, sp.sqrt(rho2[0]))
    led.zero("Zhu's reduced objective - phi(s)", F_on_s - phi, simplifier=exp_log_simplify)
    # the predicted NC2 scale sqrt(lam_H/lam_W) sigma P has the same row norm as Zhu's point
    g_spec = sp.sqrt(lam_H / lam_W) * sigma
    led.zero("predicted row norm^2 - Zhu rho^2(s)", (P * g_spec).diag() - rho2[0])
    # stationarity: Zhu's d/ds and phi's d/ds coincide, and the threshold mu = 1/(K sqrt(n))
    led.zero("d/ds (Zhu - phi)", sp.diff(F_on_s - phi, s), simplifier=exp_log_simplify)
    slope0 = sp.limit(sp.diff(phi, s), s, 0, "+")
    mu_c = sp.Symbol("mu_c", positive=True)
    sol = sp.solve(sp.Eq(slope0.subs(lam_H, mu_c**2 / lam_W), 0), mu_c)
    led.true("single root of phi'(0+) = 0", len(sol) == 1, f"{sol}")
    crit_spec = (n * K * 1 * (K - 1) / (N * K)) / sp.sqrt(n) / (K - 1)  # ||a/r||/(K-1), M = {1}
    led.zero("mu at phi'(0+) = 0 - stated mu_crit", sol[0] - crit_spec)


def single_label_exact(led: Ledger, ks: range = range(2, 11)) -> None:
    """``K = 2..10``: The predicted ``W`` (Helmert ETF at the NC2 scale) and ``h_k`` give
    ``h_k = sqrt(lam_W/(n lam_H)) w_k`` and, per sample, the CE loss of Zhu's point."""
    for k in ks:
        sigma = sp.sqrt(n) * s
        g = sp.sqrt(lam_H / lam_W) * sigma
        W = sp.sqrt(g) * helmert_basis(k)  # (k, k-1): rows w_k; W W^T = g P is checked
        led.zero(f"K={k}: W W^T - g P", W * W.T - g * centring(k))
        kappa = sp.sqrt(lam_W / lam_H) / sigma
        for j in range(k):
            e = indicator(k, (j,))
            h = kappa * s * W.T * e  # tag-wise feature h_S = kappa s_m W^T 1_S with S = {j}
            led.zero(f"K={k}: h_{j} - sqrt(lam_W/(n lam_H)) w_{j}", h - c_zhu * W[j, :].T)
            ce = pal_loss(W * h, e)
            led.zero(f"K={k}: CE(W h_{j}) - log(1 + (K-1) e^-s)",
                     ce - sp.log(1 + (k - 1) * sp.exp(-s)), simplifier=exp_log_simplify)


register(
    "single_label_zhu",
    "with single labels, phi equals Zhu et al.'s reduced objective and the predicted h_k = kappa s_1 w_k "
    "is h_k = sqrt(lam_W/(n lam_H)) w_k",
    "profile {1: n}, N = nK; K, n, lam_W, lam_H, s, rho > 0 symbolic; Zhu's point: ETF W, h_k = c w_k",
)(single_label_zhu)

register(
    "single_label_exact",
    "explicit predicted W, H for single labels: W W^T = g P, h_k = sqrt(lam_W/(n lam_H)) w_k, "
    "CE = log(1 + (K-1)e^{-s})",
    "K = 2..10; n, lam_W, lam_H, s > 0 symbolic",
    kind="exact-K",
)(single_label_exact)


# ---------------------------------------------------------------- wrong variants (--mutants)
_THIS = __import__("sys").modules[__name__]
_C_WRONG = sp.sqrt(lam_W / lam_H)  # Zhu's ratio without the 1/n


@wrong_variant("single_label_zhu", "Zhu's h_k = sqrt(lam_W/lam_H) w_k (without 1/n)")
def _wrong_zhu(led: Ledger) -> None:
    with patched(_THIS, "c_zhu", _C_WRONG):
        single_label_zhu(led)


@wrong_variant("single_label_exact", "Zhu's h_k = sqrt(lam_W/lam_H) w_k (without 1/n; K = 2..3)")
def _wrong_single_exact(led: Ledger) -> None:
    with patched(_THIS, "c_zhu", _C_WRONG):
        single_label_exact(led, range(2, 4))
