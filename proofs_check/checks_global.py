r"""Global optimality for every ``K``: the convex-duality chain, with ``K`` a symbol.

Setting (see ``docs/proofs.md`` for the symbols): a design balanced within
multiplicity with profile ``{m: n_m}``, ``N = sum_m n_m C(K,m)``, PAL loss
``l(z; S) = sum_{k in S} (LSE(z) - z_k)``, ``L(X) = (1/N) sum_i l(x_i; S_i)``,
``mu = sqrt(lam_W lam_H)``, and

* ``F(W, H, b) = L(W H + b 1^T) + lam_W/2 ||W||^2 + lam_H/2 ||H||^2 (+ lam_b/2 ||b||^2)``,
* ``C(Z, b) = L(Z + b 1^T) + mu ||Z||_* (+ lam_b/2 ||b||^2)``, convex in ``(Z, b)``.

The chain, one check per step:

(a) ``F(W, H, b) >= C(W H, b)`` for every ``d`` (the ``factorisation_*`` checks), with
    equality at the predicted point: ``global_factorisation_at_prediction``.
(b) KKT of ``C`` at ``Z*`` (columns ``z_S = s_m P 1_S``), ``b* = 0``:
    ``global_pal_gradient`` computes ``grad l`` at ``z_S`` from the definition of ``l``;
    ``global_kkt_nuclear`` shows ``Z* Z*^T = sigma^2 P``, that ``Y = Z*/sigma`` is a
    subgradient of ``||.||_*`` at ``Z*`` (``||Y||_2 = 1``, ``<Y, Z*> = ||Z*||_*``), and
    ``-grad L(Z*)/mu - Y = -(d phi/d s_m) / (mu (K-1) n_m C(K-2,m-1)) P 1_S`` column by
    column, so the KKT condition holds iff ``grad phi(s) = 0``;
    ``global_bias_condition``: ``grad L(Z*) 1 = 0`` (the bias block of the KKT system);
    ``global_min_value``: ``C(Z*, 0) = phi(s) + n_K K log K / N``.
    Hence ``min F >= min C = C(Z*, 0) = F(predicted point)`` and all are equal.
(c) ``global_phase_kkt_zero``: the same KKT condition at ``Z = 0`` reads
    ``||grad L(0)||_2 <= mu`` and ``||grad L(0)||_2 = mu_crit``.
(d) ``global_uniqueness_ingredients``: the facts the uniqueness argument uses
    (``l`` is shift invariant and strictly convex across ``1``-perp).

Vectors indexed by classes are represented, for symbolic ``K``, by their value on a label
set ``S`` (``m`` entries) and off it (``K - m`` entries); a partial derivative is taken by
perturbing *one* coordinate inside (or outside) ``S``, which is the definition of the
gradient entry (``l`` is invariant under permutations within ``S`` and within its
complement, so every entry inside, resp. outside, ``S`` is the same).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp

from .algebra import IJ
from .checks_label_sets import coef_I, coef_J, count_equations, sigma_coefficients
from .core import Ledger, exp_log_simplify, patched, register, wrong_variant

K, m = sp.symbols("K m", positive=True)  # 1 <= m <= K-1 unless stated
s, n, N, R = sp.symbols("s n_m N R", positive=True)  # R: the other multiplicities' part of sigma^2
lam_W, lam_H = sp.symbols("lam_W lam_H", positive=True)
mu = sp.sqrt(lam_W * lam_H)
t = sp.Symbol("t", real=True)


@dataclass(frozen=True)
class Block:
    """A vector of length ``K`` equal to ``inside`` on a label set ``S`` (``|S| = size``)
    and ``outside`` on its complement."""

    inside: sp.Expr
    outside: sp.Expr
    size: sp.Expr = m

    def total(self) -> sp.Expr:
        """``1^T x``."""
        return self.size * self.inside + (K - self.size) * self.outside

    def dot(self, other: Block) -> sp.Expr:
        """``x^T y`` for two vectors on the same ``S``."""
        return self.size * self.inside * other.inside + (K - self.size) * self.outside * other.outside

    def scaled(self, c: sp.Expr) -> Block:
        return Block(c * self.inside, c * self.outside, self.size)

    def minus(self, other: Block) -> Block:
        return Block(self.inside - other.inside, self.outside - other.outside, self.size)

    def apply(self, A: IJ) -> Block:
        """``(alpha I + beta J) x``."""
        return Block(A.alpha * self.inside + A.beta * self.total(),
                     A.alpha * self.outside + A.beta * self.total(), self.size)


def P() -> IJ:
    """The centring projector ``I - J/K``."""
    return IJ(sp.Integer(1), -1 / K, K)


def one_S(size: sp.Expr = m) -> Block:
    """The indicator ``1_S``."""
    return Block(sp.Integer(1), sp.Integer(0), size)


def pal_value(z: Block) -> sp.Expr:
    """``l(z; S) = m LSE(z) - sum_{k in S} z_k`` for a two-valued ``z``."""
    lse = sp.log(z.size * sp.exp(z.inside) + (K - z.size) * sp.exp(z.outside))
    return z.size * lse - z.size * z.inside


def pal_gradient(z: Block) -> Block:
    """``grad l(z; S)`` by its definition: perturb one coordinate inside ``S`` by ``t``
    (then one outside) in ``l = m LSE - sum_{k in S} z_k`` and differentiate at ``t = 0``."""
    a, b, mm = z.inside, z.outside, z.size
    lse_in = sp.log((mm - 1) * sp.exp(a) + sp.exp(a + t) + (K - mm) * sp.exp(b))
    l_in = mm * lse_in - ((mm - 1) * a + a + t)
    lse_out = sp.log(mm * sp.exp(a) + (K - mm - 1) * sp.exp(b) + sp.exp(b + t))
    l_out = mm * lse_out - mm * a
    return Block(sp.diff(l_in, t).subs(t, 0), sp.diff(l_out, t).subs(t, 0), mm)


def tagwise_logits(ss: sp.Expr = s, size: sp.Expr = m) -> Block:
    """``z_S = s (1_S - (m/K) 1) = s P 1_S``."""
    return one_S(size).apply(P()).scaled(ss)


def g_claim(ss: sp.Expr = s, mm: sp.Expr = m) -> sp.Expr:
    """The claimed ``g_m``: ``grad l(z_S) = -g_m P 1_S`` with ``g_m = K e^{-s} / (m + (K-m) e^{-s})``."""
    return K * sp.exp(-ss) / (mm + (K - mm) * sp.exp(-ss))


def phi_symbolic(norm_coef: sp.Expr = K - 1,
                 r2: Callable[[sp.Expr, sp.Expr], sp.Expr] = coef_I) -> tuple[sp.Expr, sp.Expr]:
    """``phi`` transcribed (docs/proofs.md) as a function of one ``s_m = s``: the ``m`` loss
    term plus ``mu (K-1) sigma`` with ``sigma^2 = n_m C(K-2,m-1) s^2 + R`` (``R`` collects
    the other multiplicities). Returns ``(phi, sigma)``. ``norm_coef`` and ``r2`` (the
    coefficient ``r_m^2 / n_m = C(K-2, m-1)``) are parameters only for the wrong variants."""
    sigma = sp.sqrt(n * r2(K, m) * s**2 + R)
    loss = n * sp.binomial(K, m) * m * sp.log(m + (K - m) * sp.exp(-s)) / N
    return loss + mu * norm_coef * sigma, sigma


def _comb(e: sp.Expr) -> sp.Expr:
    """Simplify a residual with binomials of symbolic arguments (combsimp, then simplify)."""
    r = sp.simplify(sp.combsimp(sp.expand_func(e)))
    return r if r == 0 else sp.simplify(sp.gammasimp(r))


def _exp(e: sp.Expr) -> sp.Expr:
    """Simplify a rational function of exponentials."""
    r = sp.cancel(sp.together(sp.powsimp(sp.expand(e), combine="exp")))
    return r if r == 0 else sp.simplify(r)


# ---------------------------------------------------------------- (a) factorisation
def factorisation_at_prediction(led: Ledger, kappa: sp.Expr | None = None) -> None:
    """At ``W W^T = alpha^2 P`` (``alpha^2 = sqrt(lam_H/lam_W) sigma``), ``h_S = kappa s_m W^T 1_S``
    (``kappa = sqrt(lam_W/lam_H)/sigma``): ``W h_S = z_S``, and the penalties equal
    ``mu ||Z*||_* = mu (K-1) sigma`` (equality in ``F >= C``). ``kappa`` is a parameter only
    so that the tests can feed a wrong one."""
    sig = sp.Symbol("sigma", positive=True)
    alpha2 = sp.sqrt(lam_H / lam_W) * sig
    kap = sp.sqrt(lam_W / lam_H) / sig if kappa is None else kappa
    WWt = P() * alpha2  # W W^T
    # W h_S = kappa s W W^T 1_S must be the tag-wise logits s P 1_S
    Wh = one_S().apply(WWt).scaled(kap * s)
    z = tagwise_logits()
    led.zero("W h_S - s P 1_S (inside S)", Wh.inside - z.inside)
    led.zero("W h_S - s P 1_S (outside S)", Wh.outside - z.outside)
    # ||h_S||^2 = kappa^2 s^2 1_S^T W W^T 1_S; summed over the n_m C(K,m) samples of size m
    hS2 = kap**2 * s**2 * one_S().dot(one_S().apply(WWt))
    per_m = n * sp.binomial(K, m) * hS2
    # claimed: kappa^2 alpha^2 (K-1) n_m C(K-2,m-1) s^2, so ||H||^2 = kappa^2 alpha^2 (K-1) sigma^2
    led.zero("sum_{|S|=m} ||h_S||^2 - kappa^2 alpha^2 (K-1) n_m C(K-2,m-1) s_m^2",
             per_m - kap**2 * alpha2 * (K - 1) * n * coef_I(K, m) * s**2, simplifier=_comb)
    W2 = WWt.trace()
    H2 = kap**2 * alpha2 * (K - 1) * sig**2
    led.zero("lam_W/2 ||W||^2 + lam_H/2 ||H||^2 - mu (K-1) sigma",
             lam_W / 2 * W2 + lam_H / 2 * H2 - mu * (K - 1) * sig)
    led.zero("AM-GM balance: lam_W ||W||^2 - lam_H ||H||^2", lam_W * W2 - lam_H * H2)


# ---------------------------------------------------------------- (b) KKT at Z*
def pal_gradient_check(led: Ledger, claim: Callable[[sp.Expr, sp.Expr], sp.Expr] = g_claim) -> None:
    """``grad l(z_S) = -g_m P 1_S`` (from the definition of ``l``, symbolic ``K, m, s``),
    and at the full label set (``m = K``, ``z = 0``) the gradient vanishes."""
    grad = pal_gradient(tagwise_logits())
    target = one_S().apply(P()).scaled(-claim(s, m))
    led.zero("dl/dz_j - (-g P 1_S)_j, j in S", grad.inside - target.inside, simplifier=_exp)
    led.zero("dl/dz_j - (-g P 1_S)_j, j not in S", grad.outside - target.outside, simplifier=_exp)
    # sum of the gradient entries: shift invariance (1^T grad l = 0)
    led.zero("1^T grad l(z_S)", grad.total(), simplifier=_exp)
    full = pal_gradient(Block(sp.Integer(0), sp.Integer(0), K))  # m = K: no entry outside S
    led.zero("grad l(0; [K]) inside", full.inside, simplifier=_exp)


def gram_of_Zstar() -> sp.Expr:
    """``sigma^2`` of ``Z* Z*^T = sigma^2 P``, *computed*: the size-``m`` columns contribute
    ``n_m s_m^2 P Sigma_m P`` with ``Sigma_m``'s coefficients from the double counting of
    :func:`checks_label_sets.sigma_coefficients`; ``R`` the other sizes. Returns the
    ``I`` coefficient of that sum (its ``J`` part is checked to be ``-1/K`` of it)."""
    alpha, beta = sigma_coefficients(K, m)
    term = P() * IJ(alpha, beta, K) * P() * (n * s**2)
    return term.alpha + R, term


def nuclear_from_spectrum(Gram: IJ) -> sp.Expr:
    """``||Z||_*`` from ``Z Z^T = alpha I + beta J``: its eigenvalue on ``1``-perp (dimension
    ``K - 1``) is ``alpha``, on ``1`` it is ``alpha + K beta``; the singular values of ``Z``
    are their square roots, so ``||Z||_* = (K-1) sqrt(alpha) + sqrt(alpha + K beta)``."""
    return (K - 1) * sp.sqrt(Gram.alpha) + sp.sqrt(sp.simplify(Gram.on_ones()))


def kkt_nuclear(led: Ledger, subgradient_scale: sp.Expr | None = None,
                norm_coef: sp.Expr = K - 1, r2: Callable[[sp.Expr, sp.Expr], sp.Expr] = coef_I) -> None:
    """``Z* Z*^T = sigma^2 P``; ``Y = Z*/sigma`` is a subgradient of ``||.||_*`` at ``Z*``;
    and ``-grad L(Z*)/mu - Y = -(d phi/d s_m)/(mu (K-1) n_m C(K-2,m-1)) P 1_S``.

    ``sigma^2`` is computed from the label sets (:func:`gram_of_Zstar`) and compared with
    the ``sigma`` of ``phi`` (docs/proofs.md: ``r_m^2 = n_m C(K-2,m-1)``); ``||Z*||_*`` is
    computed from the spectrum of ``Z* Z*^T``. ``subgradient_scale`` (default ``1/sigma``),
    ``norm_coef`` (default ``K-1``) and ``r2`` are parameters only for the wrong variants."""
    sig = sp.Symbol("sigma", positive=True)
    phi, sigma_s = phi_symbolic(norm_coef, r2)
    sig2_computed, term = gram_of_Zstar()
    led.zero("sigma^2 of the label sets' Gram - sigma^2 of phi", sig2_computed - sigma_s**2, simplifier=_comb)
    led.zero("Gram: J part = -(I part)/K (so Z* Z*^T = sigma^2 P)", term.beta + term.alpha / K, simplifier=_comb)
    Gram = P() * sig**2
    # ||Z*||_* from the spectrum, against the norm term of phi: norm_coef sigma
    led.zero("||Z*||_* (spectrum of Z* Z*^T) - (norm coefficient of phi) sigma",
             nuclear_from_spectrum(Gram) - norm_coef * sig)
    v = Block(sp.Integer(1), -m / (K - m))  # a vector of 1-perp (total 0)
    led.zero("1^T v", v.total())
    led.zero("Z* Z*^T v - sigma^2 v (eigenvalue on 1-perp)", [v.apply(Gram).inside - sig**2 * v.inside,
                                                              v.apply(Gram).outside - sig**2 * v.outside])
    led.zero("P^2 - P", (P() * P() - P()).alpha + (P() * P() - P()).beta)
    scale = 1 / sig if subgradient_scale is None else subgradient_scale
    YYt = Gram * scale**2  # Y = scale Z*
    # Y Y^T = P, an orthogonal projector != 0, so ||Y||_2 = 1 (eigenvalues of P: 0 and 1)
    led.zero("Y Y^T - P", [YYt.alpha - P().alpha, YYt.beta - P().beta])
    led.zero("<Y, Z*> - ||Z*||_*", (Gram * scale).trace() - nuclear_from_spectrum(Gram))
    # the KKT residual column by column: -grad L(Z*)_S / mu - Y_S, with grad L = grad l / N
    z = tagwise_logits()
    G_S = pal_gradient(z).scaled(1 / N)
    Y_S = z.scaled(scale)
    res = G_S.scaled(-1 / mu).minus(Y_S)
    dphi = sp.diff(phi, s)
    coef = -dphi / (mu * (K - 1) * n * coef_I(K, m))
    claim = one_S().apply(P()).scaled(coef)
    # binomials to one symbol B = C(K-2,m-1) through C(K,m) m (K-m) = K (K-1) C(K-2,m-1)
    # (checked here), after which every residual is a rational function of e^{s} and sqrt(.)
    B = sp.Symbol("B", positive=True)
    led.zero("C(K,m) m (K-m) - K (K-1) C(K-2,m-1)",
             sp.binomial(K, m) * m * (K - m) - K * (K - 1) * coef_I(K, m), simplifier=_comb)
    to_B = {sp.binomial(K, m): K * (K - 1) * B / (m * (K - m)), coef_I(K, m): B}
    for part in ("inside", "outside"):
        r = getattr(res, part) - getattr(claim, part)
        led.zero(f"KKT residual - coef P 1_S ({part} S)", r.xreplace({sig: sigma_s}).xreplace(to_B), simplifier=_exp)


def bias_condition(led: Ledger,
                   count: Callable[[sp.Expr, sp.Expr], sp.Expr] = lambda k, mm: sp.binomial(k - 1, mm - 1)) -> None:
    """``grad L(Z*) 1 = 0``: every class lies in ``C(K-1,m-1)`` sets of size ``m``, so
    ``sum_{|S|=m} grad l(z_S)`` is a multiple of ``1`` that must vanish (``1^T grad l = 0``).

    ``count`` (tests only) is the claimed number of sets of size ``m`` containing a class."""
    # each class lies in the same number of sets of size m (permutation invariance); the
    # total number of (class, set) incidences is m C(K,m)
    per_class = count(K, m)
    led.zero("K #{S : |S| = m, j in S} - m C(K,m) (double counting)",
             count_equations(K, m, per_class, sp.Integer(0))[0], simplifier=_comb)
    grad = pal_gradient(tagwise_logits())  # = -g P 1_S
    # sum_{|S|=m} grad l(z_S), entry j: (#sets containing j) grad_in + (#sets not containing j) grad_out
    c = per_class * grad.inside + (sp.binomial(K, m) - per_class) * grad.outside
    led.zero("sum_{|S|=m} grad l(z_S) (every entry)", c, simplifier=lambda e: _comb(_exp(e)))
    led.zero("P 1 = 0", P().on_ones())


def min_value(led: Ledger, norm_coef: sp.Expr = K - 1,
              r2: Callable[[sp.Expr, sp.Expr], sp.Expr] = coef_I) -> None:
    """``C(Z*, 0) = L(Z*) + mu ||Z*||_* = phi(s) + n_K K log K / N``: the loss of one sample
    of size ``m`` at ``z_S`` from the definition of ``l``, and at the full set ``log K`` each;
    ``||Z*||_*`` from the spectrum of the Gram computed over the label sets (not from
    ``phi``'s own ``sigma``). ``norm_coef``, ``r2``: parameters only for the wrong variants."""
    val = pal_value(tagwise_logits())
    led.zero("l(z_S) - m log(m + (K-m) e^{-s})", val - m * sp.log(m + (K - m) * sp.exp(-s)),
             simplifier=exp_log_simplify)
    full = pal_value(Block(sp.Integer(0), sp.Integer(0), K))
    led.zero("l(0; [K]) - K log K", full - K * sp.log(K), simplifier=sp.expand_log)
    # C at Z*: its loss term plus mu ||Z*||_*, with Z* Z*^T = sigma_G^2 P computed over the
    # label sets and the nuclear norm from that spectrum; phi is the transcription under test
    phi, _ = phi_symbolic(norm_coef, r2)
    sig2_G, _ = gram_of_Zstar()
    nuc = nuclear_from_spectrum(P() * sig2_G)
    loss_part = n * sp.binomial(K, m) * val / N
    led.zero("phi - (L-term of C at Z* + mu ||Z*||_*)", phi - loss_part - mu * nuc,
             simplifier=lambda e: exp_log_simplify(_comb(e)))


# ---------------------------------------------------------------- (c) the phase transition
def phase_kkt_zero(led: Ledger, a_scale: sp.Expr = sp.S.One) -> None:
    """At ``Z = 0``: ``grad L(0)_S = -(1/N) P 1_S``; ``grad L(0) grad L(0)^T = (1/N^2)
    sum_m n_m C(K-2,m-1) P``, so ``||grad L(0)||_2^2 = sum_m n_m C(K-2,m-1) / N^2``, which is
    ``mu_crit^2 = ||a/r||^2/(K-1)^2`` term by term (``a_m = n_m C(K,m) m (K-m)/(N K)``,
    ``r_m^2 = n_m C(K-2,m-1)``). ``a_scale`` (tests only) rescales ``a_m``."""
    grad0 = pal_gradient(Block(sp.Integer(0), sp.Integer(0), m)).scaled(1 / N)
    claim = one_S().apply(P()).scaled(-1 / N)
    led.zero("grad L(0)_S + P 1_S / N (inside)", grad0.inside - claim.inside, simplifier=_exp)
    led.zero("grad L(0)_S + P 1_S / N (outside)", grad0.outside - claim.outside, simplifier=_exp)
    Sigma_m = IJ(coef_I(K, m), coef_J(K, m), K)
    GGt = P() * Sigma_m * P() * (n / N**2)  # the size-m columns' share of grad L(0) grad L(0)^T
    share = n * coef_I(K, m) / N**2  # claimed: share * P
    led.zero("share of G0 G0^T - n C(K-2,m-1)/N^2 P", (GGt.alpha - share) + (GGt.beta + share / K),
             simplifier=_comb)
    a_m = a_scale * n * sp.binomial(K, m) * m * (K - m) / (N * K)
    r2 = n * coef_I(K, m)
    led.zero("(a_m / r_m)^2 / (K-1)^2 - n C(K-2,m-1) / N^2", a_m**2 / r2 / (K - 1) ** 2 - share,
             simplifier=_comb)


# ---------------------------------------------------------------- (d) uniqueness ingredients
def uniqueness_ingredients(led: Ledger, lse_coef: sp.Expr = m) -> None:
    """``l(z + c 1) = l(z)``; and the Hessian form of ``LSE`` is
    ``v^T (diag p - p p^T) v = sum_j p_j (v_j - p.v)^2`` (zero iff ``v`` is constant, as
    ``p = softmax(z) > 0``): ``l`` is strictly convex across ``1``-perp.

    ``lse_coef`` (tests only) replaces the multiplicity ``m`` in front of ``LSE``."""
    a, b, c = sp.symbols("a b c", real=True)

    def loss(z: Block) -> sp.Expr:  # lse_coef LSE(z) - sum_{k in S} z_k (= l when lse_coef = m)
        return lse_coef * sp.log(z.size * sp.exp(z.inside) + (K - z.size) * sp.exp(z.outside)) - z.size * z.inside

    led.zero("l(z + c 1) - l(z)", loss(Block(a + c, b + c)) - loss(Block(a, b)), simplifier=exp_log_simplify)
    # sums over classes written with their moments: S0 = sum p_j = 1, S1 = sum p_j v_j,
    # S2 = sum p_j v_j^2; the identity is linear in these, so it holds for every K
    S1, S2 = sp.symbols("S1 S2", real=True)
    S0 = sp.Integer(1)
    quad = S2 - S1**2  # v^T diag(p) v - (p^T v)^2
    sos = S2 - 2 * S1 * S1 + S1**2 * S0  # sum_j p_j (v_j^2 - 2 v_j S1 + S1^2)
    led.zero("v^T (diag p - p p^T) v - sum_j p_j (v_j - p.v)^2", quad - sos)


register(
    "global_factorisation_at_prediction",
    "predicted point: W H = Z* and lam_W/2||W||^2 + lam_H/2||H||^2 = mu ||Z*||_* = mu (K-1) sigma "
    "(equality in F >= C)",
    "K, m, n_m, s_m, sigma, lam_W, lam_H > 0 symbolic; W W^T = sqrt(lam_H/lam_W) sigma P (needs d >= K-1)",
)(factorisation_at_prediction)

register(
    "global_pal_gradient",
    "grad l at z = s(1_S - (m/K)1) is -K e^{-s}/(m + (K-m)e^{-s}) P 1_S (built from l's definition); "
    "0 at the full set",
    "K, m, s > 0 symbolic; one coordinate perturbed inside / outside S",
)(pal_gradient_check)

register(
    "global_kkt_nuclear",
    "Z* Z*^T = sigma^2 P; Y = Z*/sigma is in the subdifferential of ||.||_* at Z*; "
    "-grad L(Z*)/mu - Y = -(dphi/ds_m)/(mu (K-1) n_m C(K-2,m-1)) P 1_S, so KKT <=> grad phi = 0",
    "K, m, n_m, N, s, lam_W, lam_H > 0 symbolic, 1 <= m <= K-1; sigma^2 = n_m C(K-2,m-1) s^2 + R",
)(kkt_nuclear)

register(
    "global_bias_condition",
    "grad L(Z*) 1 = 0: the bias block of the KKT system holds at b* = 0 (every lam_b >= 0)",
    "K, m, s > 0 symbolic; sum_{|S|=m} 1_S = C(K-1,m-1) 1 by counting",
)(bias_condition)

register(
    "global_min_value",
    "C(Z*, 0) = L(Z*) + mu (K-1) sigma = phi(s) + n_K K log K / N",
    "K, m, n_m, N, s > 0 symbolic; loss from l's definition",
)(min_value)

register(
    "global_phase_kkt_zero",
    "at Z = 0: grad L(0)_S = -P 1_S / N and ||grad L(0)||_2 = mu_crit, so (0, 0) minimises C "
    "iff mu >= mu_crit",
    "K, m, n_m, N > 0 symbolic; per-multiplicity shares of grad L(0) grad L(0)^T",
)(phase_kkt_zero)

register(
    "global_uniqueness_ingredients",
    "l(z + c1) = l(z); v^T Hess LSE v = sum_j p_j (v_j - p.v)^2, so l is strictly convex across 1-perp",
    "K symbolic (two-valued z for the shift); moments S0 = 1, S1, S2 for the Hessian form",
)(uniqueness_ingredients)


# ---------------------------------------------------------------- wrong variants (--mutants)
_THIS = __import__("sys").modules[__name__]
_sig = sp.Symbol("sigma", positive=True)
wrong_variant("global_factorisation_at_prediction", "kappa = 1/sigma (without sqrt(lam_W/lam_H))")(
    lambda led: factorisation_at_prediction(led, kappa=1 / _sig))
wrong_variant("global_pal_gradient", "g_m without the factor K")(
    lambda led: pal_gradient_check(led, claim=lambda s_, m_: sp.exp(-s_) / (m_ + (K - m_) * sp.exp(-s_))))
wrong_variant("global_kkt_nuclear", "phi's sigma^2 with C(K-1, m-1) in place of C(K-2, m-1)")(
    lambda led: kkt_nuclear(led, r2=lambda k, mm: sp.binomial(k - 1, mm - 1)))
wrong_variant("global_min_value", "phi with mu K sigma in place of mu (K-1) sigma")(
    lambda led: min_value(led, norm_coef=K))
wrong_variant("global_phase_kkt_zero", "a_m without the factor 1/K")(
    lambda led: phase_kkt_zero(led, a_scale=K))
wrong_variant("global_uniqueness_ingredients", "LSE without the multiplicity m")(
    lambda led: uniqueness_ingredients(led, lse_coef=sp.Integer(1)))


@wrong_variant("global_bias_condition", "the gradient of LSE - sum_{k in S} z_k (no multiplicity)")
def _wrong_bias(led: Ledger) -> None:
    def wrong_gradient(z: Block) -> Block:
        g = pal_gradient_orig(z)
        # l' = LSE - sum_S z_k: (1/m) of the m LSE part, same linear part
        return Block((g.inside + 1) / z.size - 1, g.outside / z.size, z.size)

    pal_gradient_orig = pal_gradient
    with patched(_THIS, "pal_gradient", wrong_gradient):
        bias_condition(led)
