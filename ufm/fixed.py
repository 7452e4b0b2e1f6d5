r"""The UFM with a fixed (frozen) classifier ``W``: solve, predict, certify, verify.

With ``W`` given, ``F(W, H, b)`` is minimised over ``(H, b)`` only:

.. math::

    F_W(H, b) = \frac1N\sum_i \ell(W h_i + b; y_i) + \frac{\lambda_H}2\|H\|_F^2
        + \frac{\lambda_b}2\|b\|^2 + \frac{\lambda_W}2\|W\|_F^2 ,

the last term a constant kept so that values compare with the learned classifier's
``min F``. ``F_W`` is strictly convex in ``H`` (the ridge) and convex in ``b``.

**Grouping is exact.** Averaging the features of the samples of one label set does not
increase ``F_W`` (Jensen) and the minimiser in ``H`` is unique, so every minimiser has one
feature ``h_S`` per label set. The solver (:func:`solve_fixed`) is Newton's method on
``(h_S)_S`` and ``b``: the Hessian is block-arrowhead (one ``d x d`` block per label set,
coupled only through ``b``) and each step is solved through the Schur complement on
``b`` -- ``G`` small solves and one ``K x K`` one. Exact for any design and any ``W``.

**The ETF classifier** (:func:`etf_classifier`): rows of norm ``a`` forming a simplex
ETF, ``W W^T = gamma P`` with ``gamma = a^2 K/(K-1)`` and ``P = I - 1 1^T/K``. On a design
balanced within multiplicity every permutation of the classes is a symmetry of
``F_W`` (a permutation of the rows of an ETF is an orthogonal map of its span), so the
unique minimiser is invariant: ``b = beta 1`` (``beta = 0`` when ``lam_b > 0``), ``h_S``
lies in the row space of ``W``, and ``h_S = t_m sum_{k in S} w_k``. With ``s_m = gamma t_m``
the logits are ``s_m (1_S - (m/K) 1) + beta 1`` and what is left separates per
multiplicity ``m`` (``1 <= m <= K-1``) into the 1-D strictly convex problems

.. math::

    \min_{s}\; \frac{m}{N}\log\big(m + (K-m) e^{-s}\big)
        + \frac{\lambda_H}{2}\,\frac{m(K-m)}{K\gamma}\, s^2
    \quad\Longleftrightarrow\quad
    s\,\big(m e^{s} + K - m\big) = \frac{K\gamma}{N\lambda_H},

whose left side increases from 0: one root ``s_m > 0`` for every ``gamma > 0`` (no
trivial phase: a frozen classifier never lets the features vanish), found by bisection
and Newton to float64 precision (:func:`etf_scalars`). ``n_m`` does not enter.
``min F_W = sum_m n_m C(K,m) [m log(m + (K-m)e^{-s_m})/N + lam_H m(K-m) s_m^2/(2 K gamma)]
+ n_K K log K / N + lam_W K a^2 / 2``. In the learned classifier's notation
(:class:`ufm.theory.Prediction`): ``sigma = gamma sqrt(lam_W/lam_H)``, ``kappa = 1/gamma``,
``c_m = m s_m / s_1``; at the row norm ``a* = sqrt(sqrt(lam_H/lam_W) sigma* (K-1)/K)`` of the
learned optimum the two optima coincide (the learned ``s*`` solves the same equations).

**Dual bound** (:func:`certify_fixed`). With ``Lambda`` (K, N) and ``L^*`` the conjugate of
the averaged loss (as in :mod:`ufm.certificate`), for every ``Lambda``

.. math::

    D(\Lambda) = \frac{\lambda_W}2\|W\|^2 - L^*(\Lambda) - \frac{\|W^T\Lambda\|_F^2}{2\lambda_H}
        - \frac{\|\Lambda 1\|^2}{2\lambda_b} \;\le\; \min F_W

(Fenchel: ``Z = W H + b 1^T`` dualised with ``Lambda``; minimising over ``H`` gives
``-||W^T Lambda||^2/(2 lam_H)``, over ``b`` the last term -- absent without a bias, the
constraint ``Lambda 1 = 0`` when ``lam_b = 0``). At the minimiser ``Lambda = grad L(Z)``
makes it tight. From a candidate we take the label-set mean of ``grad L`` (Jensen: not
worse), tilted to ``Lambda 1 = 0`` when ``lam_b = 0``.
"""

from __future__ import annotations

import math
import re
import time
from typing import Any

import numpy as np
from scipy.optimize import brentq
from scipy.special import xlogy

from .certificate import Certificate, loss_and_group_softmax
from .certificate_dual import _group_weights, _tilt
from .exceptions import UFMError
from .metrics import Groups
from .objectives.full import value_and_grad
from .objectives.layout import pack
from .problem import UFMProblem
from .result import Result, Status
from .theory import COLLAPSE, NOT_APPLICABLE, PhiProblem, Prediction, simplex_etf

IGNORED_OPTIONS = {"progress", "history_every", "history_metrics"}
FIXED_OPTIONS = {"fixed_W", "max_iter", "gtol", *IGNORED_OPTIONS}  # what a sweep cell may pass
ETF_RTOL = 1e-12  # relative deviation of W W^T from gamma P accepted as a simplex ETF


# -- the classifier ------------------------------------------------------------------------
SCALE_RANGE = (1e-100, 1e100)  # ETF row norms whose products stay far inside float64


def etf_classifier(K: int, d: int, scale: float = 1.0) -> np.ndarray:
    """A simplex ETF with rows of norm ``scale`` in R^d (``d >= K-1``).

    At ``d = K`` it is the official code's ``scale sqrt(K/(K-1)) (I - 1 1^T / K)``; otherwise
    the ETF of :func:`ufm.theory.simplex_etf` in the first ``K-1`` coordinates.
    """
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise UFMError(f"The ETF row norm must be a float > 0; got {scale!r}.")
    if not SCALE_RANGE[0] <= scale <= SCALE_RANGE[1]:  # its squares and the logits' must stay in float64
        raise UFMError(f"The ETF row norm {scale!r} is outside [{SCALE_RANGE[0]:g}, {SCALE_RANGE[1]:g}]: "
                       "W W^T and the certificate would overflow or underflow float64.")
    if d < K - 1:
        raise UFMError(f"A simplex ETF of K={K} rows needs d >= K-1={K - 1}; got d={d}. Raise --d.")
    if d == K:
        return scale * math.sqrt(K / (K - 1)) * (np.eye(K) - np.full((K, K), 1.0 / K))
    return scale * simplex_etf(K, d)


def parse_fixed(spec: str, K: int, d: int) -> np.ndarray:
    """``W`` from ``"etf"`` or ``"etf:SCALE"`` (rows of norm SCALE, default 1)."""
    m = re.fullmatch(r"\s*etf\s*(?::\s*([^\s]+)\s*)?", str(spec))
    if not m:
        raise UFMError(f"A fixed classifier is given as 'etf' or 'etf:SCALE' (e.g. etf:0.5); got {spec!r}.")
    try:
        scale = float(m.group(1)) if m.group(1) is not None else 1.0
    except ValueError:
        raise UFMError(f"The SCALE of 'etf:SCALE' must be a number; got {m.group(1)!r}.") from None
    return etf_classifier(K, d, scale)


def as_fixed_W(problem: UFMProblem, fixed_W: Any) -> np.ndarray:
    """``fixed_W`` (an array (K, d) or an ``"etf[:SCALE]"`` string) as a float64 array."""
    if isinstance(fixed_W, str):
        return parse_fixed(fixed_W, problem.K, problem.d)
    W = np.array(fixed_W, dtype=np.float64)
    if W.shape != (problem.K, problem.d):
        raise UFMError(f"fixed_W must have shape (K, d) = ({problem.K}, {problem.d}); got {W.shape}.")
    if not np.all(np.isfinite(W)):
        raise UFMError("fixed_W contains non-finite values.")
    return W


def etf_gamma(W: np.ndarray) -> float | None:
    """``gamma`` if ``W W^T = gamma (I - 1 1^T/K)`` with ``gamma > 0`` (to ``ETF_RTOL``), else None."""
    K = W.shape[0]
    G = W @ W.T
    P = np.eye(K) - np.full((K, K), 1.0 / K)
    gamma = float(np.trace(G)) / (K - 1)
    if not gamma > 0:
        return None
    # relative to gamma before squaring: ||G - gamma P||_F itself over/underflows at the ends of SCALE_RANGE
    return gamma if np.linalg.norm(G / gamma - P) <= ETF_RTOL * math.sqrt(K - 1) else None


# -- the solver ----------------------------------------------------------------------------
class _Grouped:
    """``F_W`` on one feature per label set: value, gradient and the Newton step."""

    def __init__(self, problem: UFMProblem, W: np.ndarray) -> None:
        design = problem.design
        self.p, self.W = problem, W
        self.n = design.group_counts.astype(np.float64)  # (G,)
        if problem.loss == "bce":
            raise UFMError("The fixed-classifier solver handles loss 'pal' and 'pal-normalized'; got 'bce'.")
        self.w = _group_weights(problem)
        self.m = design.group_multiplicity.astype(np.float64)
        self.Yg = design.Yg
        self.const = 0.5 * problem.lam_W * float(np.vdot(W, W))
        self.free_b = problem.bias and problem.lam_b == 0.0

    def logits(self, Hg: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self.W @ Hg + b[:, None]

    def value_grad(self, Hg: np.ndarray, b: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        p = self.p
        L, P = loss_and_group_softmax(p, self.logits(Hg, b))
        cw = self.n * self.w / p.N  # per-set weight of the loss gradient
        Gz = (P * self.m - self.Yg) * cw  # (K, G): n_S/N * w_S (m p - y)
        f = L + 0.5 * p.lam_H * float(self.n @ (Hg * Hg).sum(axis=0)) + self.const
        gH = self.W.T @ Gz + p.lam_H * Hg * self.n
        gb = np.zeros(p.K)
        if p.bias:
            f += 0.5 * p.lam_b * float(b @ b)
            gb = Gz.sum(axis=1) + p.lam_b * b
        return f, gH, gb, P

    def newton_step(self, P: np.ndarray, gH: np.ndarray, gb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Solve the block-arrowhead Newton system by the Schur complement on ``b``."""
        p, W = self.p, self.W
        K, d = p.K, p.d
        c = self.n * self.w * self.m / p.N  # (G,)
        # A_S = c_S (diag(p_S) - p_S p_S^T)  (K, K) per set
        A = c[:, None, None] * (np.einsum("kg,kl->gkl", P, np.eye(K)) - np.einsum("kg,lg->gkl", P, P))
        WA = np.einsum("kd,gkl->gdl", W, A)  # (G, d, K): W^T A_S
        D = np.einsum("gdl,le->gde", WA, W) + (p.lam_H * self.n)[:, None, None] * np.eye(d)
        rH = -gH.T[:, :, None]  # (G, d, 1)
        if not p.bias:
            return np.linalg.solve(D, rH)[:, :, 0].T, np.zeros(K)
        DinvC = np.linalg.solve(D, WA)  # (G, d, K)
        Dinvr = np.linalg.solve(D, rH)  # (G, d, 1)
        S = A.sum(axis=0) + p.lam_b * np.eye(K) - np.einsum("gdk,gdl->kl", WA, DinvC)
        rb = -gb - np.einsum("gdk,gd->k", WA, Dinvr[:, :, 0])
        if self.free_b:  # b is determined up to beta 1: take the step with 1^T db = 0
            S = S + np.full((K, K), 1.0 / K)
        db = np.linalg.solve(S, rb)
        dH = (Dinvr[:, :, 0] - np.einsum("gdk,k->gd", DinvC, db)).T
        return dH, db


def _gradient_step(gr: _Grouped, Hg: np.ndarray, b: np.ndarray, f: float, gH: np.ndarray, gb: np.ndarray,
                   gn: float) -> tuple | None:
    """A steepest-descent step with Armijo backtracking (from a unit step, at most 200 halvings):
    the new ``(Hg, b, f, gH, gb, P, gn)``, or None when no step lowers ``F`` by more than its
    rounding."""
    t, noise = 1.0, 64 * np.finfo(float).eps * abs(f)
    for _ in range(200):
        f1, gH1, gb1, P1 = gr.value_grad(Hg - t * gH, b - t * gb)
        if f1 <= f - 0.25 * t * gn * gn and f - f1 > noise:  # a decrease F resolves, not rounding
            gn1 = math.hypot(float(np.linalg.norm(gH1)), float(np.linalg.norm(gb1)))
            return Hg - t * gH, b - t * gb, f1, gH1, gb1, P1, gn1
        t *= 0.5
    return None


def solve_fixed(
    problem: UFMProblem, fixed_W: Any, x0: np.ndarray | tuple | None = None, *,
    max_iter: int = 1000, gtol: float = 0.0, **options: Any,
) -> Result:
    """Minimise ``F(W, H, b)`` over ``(H, b)`` with ``W = fixed_W`` fixed (any design, any W).

    ``fixed_W``: an array (K, d) or ``"etf[:SCALE]"``. Damped Newton on one feature per
    label set (exact: see the module docstring) from ``H = 0, b = 0`` (or the group means
    of ``x0``), run until a step no longer reduces the gradient norm (float64 precision)
    or ``||grad|| <= gtol``. Where Newton's step fails (a saturated softmax far from the
    minimiser: its curvature vanishes), a gradient step is taken instead; from such starts
    the run may need a few hundred iterations (``max_iter``, default 1000; from the default
    start 10-30). The options of the iterative solvers that only shape their
    output (``progress``, ``history_every``, ``history_metrics``) are accepted and have no
    effect; any other option is an error. ``Result.lower_bound`` / ``rel_gap`` hold the
    fixed-``W`` certificate (:func:`certify_fixed`).
    """
    unknown = sorted(set(options) - IGNORED_OPTIONS)
    if unknown:
        raise UFMError(f"Option(s) {unknown} do not apply to the fixed-classifier solver; it takes max_iter "
                       "and gtol.")
    t0 = time.perf_counter()
    W = as_fixed_W(problem, fixed_W)
    gr = _Grouped(problem, W)
    design = problem.design
    if x0 is None:
        Hg, b = np.zeros((problem.d, design.G)), np.zeros(problem.K)
    else:
        from .objectives.layout import given_point, unpack

        _, H0, b0 = unpack(given_point(problem, x0), problem)
        Hg, b = Groups.from_arrays(H0, design.Y).means, np.array(b0)
    f, gH, gb, P = gr.value_grad(Hg, b)
    gn = math.hypot(float(np.linalg.norm(gH)), float(np.linalg.norm(gb)))
    status, nit = Status.MAX_ITER, 0
    while nit < max_iter:
        nit += 1
        if gn <= gtol:
            status = Status.CONVERGED_GTOL
            break
        try:
            dH, db = gr.newton_step(P, gH, gb)
            dec = -float(np.vdot(gH, dH) + gb @ db)
        except np.linalg.LinAlgError:  # a saturated softmax with a free bias: a singular system
            dH, db, dec = gH, gb, math.nan
        t = 1.0
        noise = 64 * np.finfo(float).eps * abs(f)
        flat = 0.25 * dec <= noise  # the decrease Armijo asks for is below what F resolves
        if dec > 0 and math.isfinite(dec):
            while True:
                f1, gH1, gb1, P1 = gr.value_grad(Hg + t * dH, b + t * db)
                gn1 = math.hypot(float(np.linalg.norm(gH1)), float(np.linalg.norm(gb1)))
                # (at float64 noise a full step that lowers |g| is taken: F no longer shows progress.
                # Not above it: a full step that fails Armijo but lowers F and |g| can, taken
                # again and again, bounce across a valley to a point that is not stationary)
                if f1 <= f - 0.25 * t * dec or (flat and t == 1.0 and gn1 < gn and f1 <= f + noise):
                    break
                t *= 0.5
                if t < 1e-10:
                    break
        else:
            t = 0.0
        if t < 1e-10:
            # Newton's step failed: where the softmax saturates its curvature vanishes and the step is
            # useless (or the system singular), so a far start could stop here with a large gradient
            # and call it converged. A gradient step decides: if it lowers F, take it and go on; if
            # not even that does, F no longer resolves any decrease (float64 noise): converged.
            step = _gradient_step(gr, Hg, b, f, gH, gb, gn)
            if step is None:
                status = Status.CONVERGED_FTOL
                break
            Hg, b, f, gH, gb, P, gn = step
            continue
        if gn1 >= gn and f1 >= f:
            status = Status.CONVERGED_FTOL
            break
        stalled = flat and abs(f1 - f) <= noise and (t < 1.0 or gn1 > 0.5 * gn)
        Hg, b, f, gH, gb, P, gn = Hg + t * dH, b + t * db, f1, gH1, gb1, P1, gn1
        if stalled:  # at float64 noise a step that is damped or no longer halves the gradient: done
            status = Status.CONVERGED_FTOL
            break
    if gr.free_b:
        b = b - b.mean()
    H = np.ascontiguousarray(Hg[:, design.group_index])
    F, _, dH_full, db_full = value_and_grad(problem, W, H, b)
    gnorm = math.hypot(float(np.linalg.norm(dH_full)), float(np.linalg.norm(db_full)) if problem.bias else 0.0)
    result = Result(
        x=pack(W, H, b, problem.bias), fun=float(F), W=W.copy(), H=H, b=b.copy(), status=status,
        nit=nit, nfev=nit, grad_norm=gnorm, time=time.perf_counter() - t0, method="fixed-newton",
        extra={"fixed_W": True, "grouped_value": f},
    )
    cert = certify_fixed(problem, W, H, b)
    if math.isfinite(cert.lower_bound):
        result.lower_bound, result.rel_gap = float(cert.lower_bound), float(cert.rel_gap)
    return result


# -- the ETF prediction -------------------------------------------------------------------
def etf_scalars(K: int, N: int, lam_H: float, gamma: float, ms: list[int]) -> dict[int, float]:
    """``s_m``: the root of ``s (m e^s + K - m) = K gamma / (N lam_H)`` for each ``m`` (1..K-1)."""
    rhs = K * gamma / (N * lam_H)
    out = {}
    for m in ms:
        def g(s: float, m: int = m) -> float:
            return s * (m * math.exp(s) + K - m) - rhs

        hi = min(rhs / K, math.log(max(rhs / m, 1.0)) + 1.0)  # g(hi) >= 0: s K <= lhs, lhs >= m s e^s
        while g(hi) < 0:
            hi *= 2
        s = brentq(g, 0.0, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)
        for _ in range(3):  # Newton polish on the smooth increasing g
            ds = g(s) / (m * math.exp(s) * (1 + s) + K - m)
            if not math.isfinite(ds) or ds == 0:
                break
            s -= ds
        out[m] = s
    return out


def predict_fixed(problem: UFMProblem, W: np.ndarray) -> Prediction:
    """The exact minimiser of ``F_W`` when ``W`` is a simplex ETF and the design is balanced.

    Returned in the learned classifier's :class:`~ufm.theory.Prediction` form (see the
    module docstring): regime "collapse" with ``value``, ``s``, ``c``, ``sigma``,
    ``kappa``; ``mu_crit`` is the learned classifier's threshold (for comparison).
    "not-applicable" (with the reason) otherwise.
    """
    K, mu = problem.K, problem.mu
    W = as_fixed_W(problem, W)
    if problem.loss != "pal":
        return Prediction(NOT_APPLICABLE, f"the fixed-ETF prediction is for the pick-all-label loss, not {problem.loss!r}", mu=mu)
    profile = problem.design.profile
    if profile is None:
        return Prediction(NOT_APPLICABLE, "design not balanced within multiplicity: "
                          f"{problem.design.imbalance_reason()}", mu=mu)
    gamma = etf_gamma(W)
    if gamma is None:
        return Prediction(NOT_APPLICABLE, "the fixed W is not a scaled simplex ETF (W W^T != gamma P)", mu=mu)
    N = problem.N
    ms = sorted(m for m in profile if 1 <= m <= K - 1)
    s = etf_scalars(K, N, problem.lam_H, gamma, ms)
    const = profile.get(K, 0) * K * math.log(K) / N  # the full label sets (Prediction.const)
    value = 0.5 * problem.lam_W * float(np.vdot(W, W)) + const
    for m in ms:
        nS = profile[m] * math.comb(K, m)
        value += nS * (m * math.log(m + (K - m) * math.exp(-s[m])) / N
                       + 0.5 * problem.lam_H * m * (K - m) * s[m] ** 2 / (K * gamma))
    c = {m: m * s[m] / s[1] for m in ms} if 1 in s else {}
    mu_crit = PhiProblem.from_profile(K, profile, 1.0).mu_crit if ms else 0.0
    a = math.sqrt(gamma * (K - 1) / K)
    return Prediction(
        COLLAPSE, f"fixed simplex-ETF classifier (row norm {a:.6g}), balanced design: the unique minimiser "
        "over (H, b) has h_S = (s_m / gamma) sum_{k in S} w_k", value=value, s=s,
        sigma=gamma * math.sqrt(problem.lam_W / problem.lam_H), kappa=1.0 / gamma, c=c, mu=mu,
        mu_crit=mu_crit, const=const, phi_iterations=0,
    )


def coinciding_scale(problem: UFMProblem) -> float:
    """The ETF row norm at which the fixed optimum is the learned one (0 in the trivial regime)."""
    from .theory import predict

    pred = predict(problem)
    if pred.regime != COLLAPSE:
        return 0.0
    return math.sqrt(math.sqrt(problem.lam_H / problem.lam_W) * pred.sigma * (problem.K - 1) / problem.K)


# -- the dual bound -----------------------------------------------------------------------
def dual_bound_fixed(problem: UFMProblem, W: np.ndarray, Pbar: np.ndarray) -> float:
    """``D(Lambda)`` for ``Lambda`` with columns ``(w_S m_S/N)(pi_S - y_S/m_S)`` from the group
    softmax means ``Pbar`` (K, G) (tilted to ``Lambda 1 = 0`` for a free bias at ``lam_b = 0``)."""
    design = problem.design
    w = _group_weights(problem)
    m = design.group_multiplicity.astype(np.float64)
    n = design.group_counts.astype(np.float64)
    Pi: np.ndarray | None = Pbar
    if problem.bias and problem.lam_b == 0.0:
        Pi = _tilt(Pbar, n * w * m, design.Yg @ (n * w))
    if Pi is None:
        return -math.inf
    Lam = (Pi - design.Yg / m) * (w * m / problem.N)  # (K, G): one column per label set
    conj = float((n * w * m) @ xlogy(Pi, Pi).sum(axis=0)) / problem.N  # L*(Lambda)
    WL = W.T @ Lam
    D = 0.5 * problem.lam_W * float(np.vdot(W, W)) - conj - float(n @ (WL * WL).sum(axis=0)) / (2 * problem.lam_H)
    if problem.bias and problem.lam_b > 0:
        r = Lam @ n
        D -= float(r @ r) / (2 * problem.lam_b)
    return D


def certify_fixed(problem: UFMProblem, W: np.ndarray, H: np.ndarray, b: np.ndarray | None = None) -> Certificate:
    """Certified bracket ``D <= min_{H,b} F(W, H, b) <= F(W, H, b)`` for the fixed ``W``."""
    W, H = np.asarray(W, dtype=np.float64), np.asarray(H, dtype=np.float64)
    b = np.zeros(problem.K) if (b is None or not problem.bias) else np.asarray(b, dtype=np.float64)
    F = value_and_grad(problem, W, H, b)[0]
    _, Pbar = loss_and_group_softmax(problem, W @ H + b[:, None])
    D = dual_bound_fixed(problem, W, Pbar)
    return Certificate(lower_bound=D, objective=F, gap=F - D, rel_gap=(F - D) / max(abs(F), 1e-300), t=1.0)


# -- verification -------------------------------------------------------------------------
def verify_fixed(problem: UFMProblem, W: np.ndarray, H: np.ndarray, b: np.ndarray | None = None, *,
                 prediction: Prediction | None = None, **tols: float) -> Any:
    """:func:`ufm.verify.verify` against :func:`predict_fixed` with the fixed-``W`` certificate.

    Claims (ETF ``W``, balanced design): ``value``, ``bias``, ``nc1``, ``etf`` (``W W^T =
    gamma P``, true by construction), ``self_duality``, ``tagwise`` (``h_S = (s_m/gamma)
    sum_{k in S} w_k``), ``tagwise_angle``, ``tagwise_scale`` (``c_m``), ``logits`` and
    ``certificate`` (the dual bound of :func:`certify_fixed`, tight at every ``d``).
    """
    from .verify import TOL_CERTIFICATE, Claim, verify

    pred = predict_fixed(problem, W) if prediction is None else prediction
    verdict = verify(problem, W, H, b, prediction=pred, certifier=certify_fixed, **tols)
    tol = tols.get("tol_certificate", TOL_CERTIFICATE)
    cert = verdict.certificate
    if cert is not None:  # verify's claims assume the learned W (signed gap below d = K): replace them
        verdict.claims = [c for c in verdict.claims if c.name not in ("certificate_valid", "certificate")]
        verdict.claims.append(Claim("certificate", "certified gap |F - D| / |F| of the fixed-W dual bound",
                                    abs(cert.rel_gap), tol))
    verdict.reason = "fixed classifier: " + verdict.reason
    return verdict
