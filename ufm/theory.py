r"""What the theorem predicts (docs/theory.md section 3): the simplex ETF, the scalar problem
``phi``, the predicted optimum, the scales ``c_m``, the phase transition, and one exact
predicted minimiser.

For a design balanced within multiplicity with profile ``{m: n_m}``, ``d >= K-1``:

.. math::

    \varphi(s) = \frac1N \sum_{m\in M} n_m \binom{K}{m} m \log\!\big(m + (K-m)e^{-s_m}\big)
        + \mu (K-1) \sqrt{\textstyle\sum_{m\in M} n_m \binom{K-2}{m-1} s_m^2}

where ``M`` are the multiplicities present with ``1 <= m <= K-1`` and
``mu = sqrt(lam_W lam_H)``. ``min F = min phi + n_K K log K / N``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import null_space

from .designs import LabelDesign, as_rng
from .exceptions import UFMError
from .problem import UFMProblem

COLLAPSE = "collapse"
TRIVIAL = "trivial"
NOT_APPLICABLE = "not-applicable"


def centering(K: int) -> np.ndarray:
    """``P = I - 1 1^T / K``, the projector onto the complement of ``1`` (K, K)."""
    return np.eye(K) - np.full((K, K), 1.0 / K)


def simplex_etf(K: int, d: int | None = None, *, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """A simplex ETF: K unit rows in R^d with pairwise cosines ``-1/(K-1)``.

    Parameters
    ----------
    K : int
    d : int, optional
        Dimension, ``d >= K-1`` (default ``K-1``).
    rng : numpy.random.Generator or int, optional
        With it the ETF is rotated by a random orthonormal ``R`` (d, K-1); without, it
        sits in the first ``K-1`` coordinates.

    Returns
    -------
    ndarray, shape (K, d)
        ``W`` with ``W W^T = K/(K-1) P``, ``P = I - 1 1^T / K``.

    Raises
    ------
    ValueError
        ``d < K-1``.

    Examples
    --------
    >>> import numpy as np
    >>> W = simplex_etf(4, 5, rng=0)
    >>> np.allclose(W @ W.T, np.eye(4) * 4 / 3 - 1 / 3)
    True
    """
    d = K - 1 if d is None else d
    if d < K - 1:
        raise ValueError(f"A simplex ETF of K={K} vectors needs d >= K-1={K - 1}; got d={d}.")
    U = null_space(np.ones((1, K)))  # (K, K-1) orthonormal basis of 1-perp
    R = _frame(d, K - 1, rng)
    return math.sqrt(K / (K - 1)) * U @ R.T


def _frame(d: int, r: int, rng: np.random.Generator | int | None) -> np.ndarray:
    """A (d, r) matrix with orthonormal columns: the first r coordinates, or random."""
    if rng is None:
        return np.eye(d, r)
    Q, _ = np.linalg.qr(as_rng(rng).standard_normal((d, r)))
    return Q


@dataclass(frozen=True)
class Prediction:
    """The theorem's prediction for one problem.

    Attributes
    ----------
    regime : {"collapse", "trivial", "not-applicable"}
    reason : str
        Why the regime was chosen (for "not-applicable": which assumption fails).
    value : float or None
        Predicted ``min F`` (None when not applicable).
    s : dict {m: s*_m}
        Minimiser of ``phi`` over the multiplicities ``M`` present in ``1..K-1``.
    sigma, kappa : float
        ``sqrt(sum_m n_m C(K-2,m-1) s_m^2)`` and ``sqrt(lam_W/lam_H) / sigma``.
    c : dict {m: c_m}
        Tag-wise scales ``m s_m / s_1`` (when single labels are present).
    mu, mu_crit : float
        ``sqrt(lam_W lam_H)`` and the phase-transition threshold ``||a/r||_2 / (K-1)``.
    const : float
        ``n_K K log K / N``, the contribution of the full label set (if present).
    """

    regime: str
    reason: str
    value: float | None = None
    s: dict[int, float] = field(default_factory=dict)
    sigma: float = 0.0
    kappa: float = float("nan")
    c: dict[int, float] = field(default_factory=dict)
    mu: float = float("nan")
    mu_crit: float = float("nan")
    const: float = 0.0
    phi_iterations: int = 0

    @property
    def applies(self) -> bool:
        return self.regime != NOT_APPLICABLE


@dataclass(frozen=True)
class PhiProblem:
    """The scalar problem ``phi`` in arrays over ``M`` (multiplicities in 1..K-1)."""

    K: int
    N: int
    mu: float
    ms: np.ndarray  # (|M|,) multiplicities
    A: np.ndarray  # (|M|,) n_m C(K,m) m / N
    r2: np.ndarray  # (|M|,) n_m C(K-2, m-1)

    @classmethod
    def from_profile(cls, K: int, profile: dict[int, int], mu: float) -> PhiProblem:
        N = sum(n * math.comb(K, m) for m, n in profile.items())
        ms = np.array([m for m in sorted(profile) if 1 <= m <= K - 1], dtype=np.float64)
        ns = np.array([profile[int(m)] for m in ms], dtype=np.float64)
        A = np.array([n * math.comb(K, int(m)) * m for m, n in zip(ms, ns)]) / N
        r2 = np.array([n * math.comb(K - 2, int(m) - 1) for m, n in zip(ms, ns)], dtype=np.float64)
        return cls(K=K, N=N, mu=mu, ms=ms, A=A, r2=r2)

    def value(self, s: np.ndarray) -> float:
        K, ms = self.K, self.ms
        loss = self.A @ np.logaddexp(np.log(ms), np.log(K - ms) - s)
        return float(loss + self.mu * (K - 1) * math.sqrt(self.r2 @ (s * s)))

    def grad_hess(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        K, ms = self.K, self.ms
        q = 1.0 / (1.0 + np.exp(s + np.log(ms / (K - ms))))  # (K-m)e^{-s} / (m + (K-m)e^{-s})
        sigma = math.sqrt(self.r2 @ (s * s))
        c = self.mu * (K - 1)
        Rs = self.r2 * s
        g = -self.A * q + c * Rs / sigma
        Hs = np.diag(self.A * q * (1 - q) + c * self.r2 / sigma) - c * np.outer(Rs, Rs) / sigma**3
        return g, Hs

    @property
    def a(self) -> np.ndarray:
        """``a_m = n_m C(K,m) m (K-m) / (N K)`` = minus the loss gradient at ``s = 0``."""
        return self.A * (self.K - self.ms) / self.K

    @property
    def mu_crit(self) -> float:
        return float(np.linalg.norm(self.a / np.sqrt(self.r2)) / (self.K - 1))

    def ray_start(self) -> np.ndarray:
        """The minimiser of ``phi`` on the steepest ray ``s = rho d``, ``d = a / r^2``.

        Along ``d`` the slope of ``phi`` at ``0+`` is ``-(a.d) + mu (K-1) ||r d||``, negative
        exactly below the transition; the 1-D convex problem is solved by bisection on its
        derivative. The point found has ``phi < phi(0)``.
        """
        d = self.a / self.r2
        c = self.mu * (self.K - 1) * float(np.sqrt(self.r2 @ (d * d)))
        ms, K = self.ms, self.K

        def slope(rho: float) -> float:  # d/drho phi(rho d), rho > 0
            q = 1.0 / (1.0 + np.exp(rho * d + np.log(ms / (K - ms))))
            return float(-(self.A * q) @ d + c)

        lo, hi = 0.0, 1.0
        while slope(hi) < 0 and hi < 1e6:
            lo, hi = hi, 2 * hi
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if mid in (lo, hi):
                break
            lo, hi = (mid, hi) if slope(mid) < 0 else (lo, mid)
        return hi * d

    def minimize(self, *, max_iter: int = 200, start: np.ndarray | None = None) -> tuple[np.ndarray, int]:
        """Damped Newton on ``phi`` (smooth and convex on ``s != 0``), from :meth:`ray_start`
        (or from ``start``, a point with every ``s_m > 0``; near the transition a start with
        ``phi(start) > phi(0)`` may end at the kink, see below).

        Only called below the transition, where the minimiser has ``s > 0``. The start
        has ``phi < phi(0)`` and every step decreases ``phi``, so the iterates stay in a
        compact level set away from the kink at ``s = 0``. (Starting at ``s = 1``, where
        ``phi`` may exceed ``phi(0)`` near the transition, the iterates converged to the
        kink instead: e.g. K = 8, profile {2: 1, 3: 1}, mu / mu_crit = 0.991 gave
        ``s ~ 1e-13`` and the trivial value 5.545177, while ``min phi = 5.544971`` at
        ``s ~ 0.026``.) Once the damped phase ends (full steps accepted), pure Newton
        steps continue while they reduce the gradient norm without increasing ``phi``
        beyond rounding: the minimiser ``s*`` is accurate to float64 precision, not only
        ``phi(s*)``.

        Each iteration tries the Newton step ``t = 1`` and halves ``t`` until ``s + t step > 0``
        and ``phi`` decreases by at least a quarter of ``t`` times the Newton decrement
        ``-g.step`` (or, at ``t = 1`` only, the gradient norm decreases while ``phi`` rises by
        at most ``4 eps |phi|``); it stops when ``t`` falls below ``1e-12``, when the decrement is
        below ``1e-20`` and the accepted step (full or halved) does not reduce the gradient norm,
        or at a zero gradient. Returns ``(s, iterations)``. (The stall test once required a full
        step: at ``s*`` a halved step, accepted because ``t dec2 / 4`` is below ``phi``'s
        resolution, then repeated until ``max_iter``: K = 5, profile ``{1: 2, 2: 1}``, mu / mu_crit
        = 0.5 took 200 iterations, now 6, to the same ``s*``.)
        """
        s = self.ray_start() if start is None else np.array(start, dtype=np.float64)
        f = self.value(s)
        g, Hs = self.grad_hess(s)
        gn = float(np.linalg.norm(g))
        for it in range(1, max_iter + 1):
            step = np.linalg.solve(Hs, -g)
            dec2 = float(-(g @ step))
            t = 1.0
            while True:
                s_new = s + t * step
                if np.all(s_new > 0):
                    f_new = self.value(s_new)
                    g_new, H_new = self.grad_hess(s_new)
                    gn_new = float(np.linalg.norm(g_new))
                    # sufficient decrease, or (at float64 resolution of phi) a smaller gradient
                    if f_new <= f - 0.25 * t * dec2 or (
                        t == 1.0 and gn_new < gn and f_new <= f + 4 * np.finfo(float).eps * abs(f)
                    ):
                        break
                if t < 1e-12:
                    return s, it
                t *= 0.5
            if gn_new >= gn and dec2 < 1e-20:
                return s, it
            s, f, g, Hs, gn = s_new, f_new, g_new, H_new, gn_new
            if gn == 0.0:
                return s, it
        return s, max_iter


def predict(problem: UFMProblem) -> Prediction:
    """The theorem's prediction for ``problem`` (regime, value, ``s*``, scales).

    ``regime`` is "not-applicable" (with the reason) when the loss is not PAL, the design
    is not balanced within multiplicity, or ``d < K-1`` below the phase transition.
    Symbols (``phi``, ``s*``, ``sigma``, ``kappa``, ``c_m``, ``mu_crit``): ``docs/theory.md``.

    Parameters
    ----------
    problem : UFMProblem

    Returns
    -------
    Prediction
        ``regime``, ``reason``, ``value`` (``min F``), ``s``, ``sigma``, ``kappa``, ``c``,
        ``mu``, ``mu_crit``, ``const``.

    Examples
    --------
    >>> import ufm
    >>> p = ufm.UFMProblem(ufm.balanced(4, {1: 2, 2: 1}), d=4, lam_W=5e-3, lam_H=5e-3, lam_b=1e-2)
    >>> pred = predict(p)
    >>> pred.regime, round(pred.c[2], 4), round(pred.mu_crit, 4)
    ('collapse', 1.7616, 0.1429)
    """
    K, d = problem.K, problem.d
    mu = problem.mu
    if problem.loss != "pal":
        return Prediction(NOT_APPLICABLE, f"the theorem is for the pick-all-label loss, not {problem.loss!r}", mu=mu)
    profile = problem.design.profile
    if profile is None:
        reason = problem.design.imbalance_reason()
        return Prediction(NOT_APPLICABLE, f"design not balanced within multiplicity: {reason}", mu=mu)
    N = problem.N
    const = profile.get(K, 0) * K * math.log(K) / N
    phi = PhiProblem.from_profile(K, profile, mu)
    if phi.ms.size == 0:
        return Prediction(
            TRIVIAL, "only the full label set occurs: the loss is minimised by constant logits",
            value=const, mu=mu, mu_crit=0.0, const=const,
        )
    mu_crit = phi.mu_crit
    trivial_value = sum(n * math.comb(K, m) * m * math.log(K) for m, n in profile.items()) / N
    if mu >= mu_crit:
        return Prediction(
            TRIVIAL,
            f"mu = {mu:.6g} >= mu_crit = {mu_crit:.6g}: the unique minimiser is W = 0, H = 0",
            value=trivial_value, s={int(m): 0.0 for m in phi.ms}, mu=mu, mu_crit=mu_crit, const=const,
        )
    if d < K - 1:
        return Prediction(
            NOT_APPLICABLE,
            f"d = {d} < K-1 = {K - 1}: no simplex ETF fits (below the transition mu_crit = {mu_crit:.6g})",
            mu=mu, mu_crit=mu_crit,
        )
    s, nit = phi.minimize()
    sigma = math.sqrt(phi.r2 @ (s * s))
    s_dict = {int(m): float(v) for m, v in zip(phi.ms, s)}
    c = {m: m * v / s_dict[1] for m, v in s_dict.items()} if 1 in s_dict else {}
    return Prediction(
        COLLAPSE,
        f"mu = {mu:.6g} < mu_crit = {mu_crit:.6g}, balanced design, d = {d} >= K-1: multi-label neural collapse",
        value=phi.value(s) + const, s=s_dict, sigma=sigma,
        kappa=math.sqrt(problem.lam_W / problem.lam_H) / sigma, c=c, mu=mu, mu_crit=mu_crit,
        const=const, phi_iterations=nit,
    )


def predicted_minimizer(
    problem: UFMProblem, prediction: Prediction | None = None, *, rng: np.random.Generator | int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One exact global minimiser ``(W, H, b)`` as the theorem describes it.

    ``W W^T = sqrt(lam_H/lam_W) sigma P``; ``h_S = kappa s_m sum_{k in S} w_k``; ``b = 0``.

    Parameters
    ----------
    problem : UFMProblem
    prediction : Prediction, optional
        ``predict(problem)`` if not given.
    rng : numpy.random.Generator or int, optional
        With it the ETF is randomly rotated in R^d.

    Returns
    -------
    W : ndarray, shape (K, d)
    H : ndarray, shape (d, N)
    b : ndarray, shape (K,)
        Zeros at the trivial regime's ``W = 0, H = 0``.

    Raises
    ------
    ValueError
        The theorem does not apply to ``problem``.

    Examples
    --------
    >>> import ufm
    >>> p = ufm.UFMProblem(ufm.balanced(4, {1: 2, 2: 1}), d=4, lam_W=5e-3, lam_H=5e-3, lam_b=1e-2)
    >>> W, H, b = predicted_minimizer(p, rng=0)
    >>> abs(ufm.objective(p, W, H, b) / predict(p).value - 1) < 1e-12
    True
    """
    pred = predict(problem) if prediction is None else prediction
    K, d, design = problem.K, problem.d, problem.design
    if pred.regime == NOT_APPLICABLE:
        raise ValueError(f"The theorem does not apply: {pred.reason}.")
    if pred.regime == TRIVIAL:
        return np.zeros((K, d)), np.zeros((d, problem.N)), np.zeros(K)
    alpha = math.sqrt(math.sqrt(problem.lam_H / problem.lam_W) * pred.sigma)
    U = null_space(np.ones((1, K)))  # (K, K-1)
    W = alpha * U @ _frame(d, K - 1, rng).T  # (K, d), W W^T = alpha^2 P
    scale = np.array([pred.kappa * pred.s.get(int(m), 0.0) for m in design.group_multiplicity])
    Hg = (W.T @ design.Yg) * scale  # (d, G)
    return W, Hg[:, design.group_index], np.zeros(K)


def predicted_logits(problem: UFMProblem, prediction: Prediction | None = None) -> np.ndarray:
    """``s_m (1_S - (m/K) 1)`` for each group, shape (K, G) (zero in the trivial regime)."""
    pred = predict(problem) if prediction is None else prediction
    design = problem.design
    sm = np.array([pred.s.get(int(m), 0.0) for m in design.group_multiplicity])
    return (design.Yg - design.group_multiplicity[None, :] / problem.K) * sm


# -- the trivial threshold of any design (docs/thresholds.md section 2) -------------------
NEWTON_BIAS_STEPS = 2000  # a class in no label set needs about |log lam_b| steps (~690 at 1e-300)


def trivial_bias(design: LabelDesign, lam_b: float = 0.0, bias: bool = True) -> np.ndarray:
    r"""The bias ``b0`` of the best constant logits: the minimiser over ``b`` of
    ``L(b 1^T) + (lam_b/2) ||b||^2`` (PAL loss, ``W = 0, H = 0``).

    ``L(b 1^T) = M LSE(b) - <f, b>`` with ``M = sum_i m_i / N`` and ``f_k`` the fraction
    of samples carrying label ``k``, so the condition is ``M softmax(b) + lam_b b = f``:

    - no bias: ``b0 = 0``;
    - free bias (``lam_b = 0``): ``softmax(b0) = f / M`` (the label frequencies), ``b0 =
      log(f / M)`` up to a constant (``-inf`` for a class in no label set: the infimum is
      approached, not attained);
    - ``lam_b > 0``: the unique root, by Newton's method on the strictly convex
      ``M LSE(b) - <f, b> + lam_b/2 ||b||^2`` (``sum_k b0_k = 0``).

    Returns
    -------
    ndarray, shape (K,)
    """
    K = design.K
    if not bias:
        return np.zeros(K)
    n = design.group_counts.astype(np.float64)
    f = design.Yg @ n / design.N  # (K,) label frequencies
    M = float(f.sum())  # mean multiplicity
    if lam_b == 0:
        with np.errstate(divide="ignore"):
            b = np.log(f / M)
        return b - np.mean(b[np.isfinite(b)])
    b = np.zeros(K)
    ones = np.full((K, K), M / K)  # M/K 1 1^T: the root has sum(b) = 0 (sum the condition: sum f = M)
    for _ in range(NEWTON_BIAS_STEPS):
        p = np.exp(b - b.max())
        p /= p.sum()
        g = M * p - f + lam_b * b
        if np.max(np.abs(g)) <= 1e-15 * max(M, 1.0):
            return b
        # full Newton steps (the objective is smooth, its Hessian >= lam_b I). Along 1 the Hessian
        # is lam_b only (singular to float64 for lam_b < ~1e-17) and g has no component there, so
        # the step is taken with M/K 1 1^T added: the same step on sum(b) = 0, a regular matrix
        Hm = M * (np.diag(p) - np.outer(p, p)) + lam_b * np.eye(K) + ones
        b = b - np.linalg.solve(Hm, g)
    raise UFMError(f"trivial_bias: Newton's method did not reach the root in {NEWTON_BIAS_STEPS} steps "
                   f"(lam_b = {lam_b:g}); a class in no label set pulls its bias to about log(lam_b): "
                   "use lam_b = 0 for the free-bias limit")


def trivial_gradient(design: LabelDesign, lam_b: float = 0.0, bias: bool = True) -> np.ndarray:
    r"""``Gamma0 D^{1/2}`` (K, G): the gradient of the averaged PAL loss at the constant
    logits ``b0 1^T`` (:func:`trivial_bias`), one column per label set scaled by ``sqrt(n_S)``,
    so that its spectral norm is that of the K x N gradient. Column ``S``:
    ``sqrt(n_S) (m_S p0 - y_S) / N`` with ``p0 = softmax(b0)``.
    """
    b0 = trivial_bias(design, lam_b, bias)
    finite = np.isfinite(b0)
    p0 = np.zeros(design.K)
    p0[finite] = np.exp(b0[finite] - b0[finite].max())
    p0 /= p0.sum()
    m = design.group_multiplicity.astype(np.float64)
    n = design.group_counts.astype(np.float64)
    return (np.outer(p0, m) - design.Yg) * np.sqrt(n) / design.N


def trivial_threshold(design: LabelDesign, lam_b: float = 0.0, bias: bool = True) -> float:
    r"""The smallest ``mu = sqrt(lam_W lam_H)`` at which ``W = 0, H = 0`` (with ``b = b0``)
    is a global minimiser of ``F``, for ANY design and every ``d >= 1`` (PAL loss):

    .. math::  \mu_0 = \| \nabla L(b_0 1^T) \|_2

    the spectral norm of the loss gradient at the best constant logits
    (:func:`trivial_gradient`). Proof: docs/thresholds.md, section 2. On a design balanced
    within multiplicity ``b0 = 0`` and ``mu_0`` equals ``mu_crit = ||a/r||_2/(K-1)``.

    Examples
    --------
    >>> import ufm
    >>> from ufm.designs import parse_design
    >>> d = ufm.balanced(4, {1: 2, 2: 1})
    >>> p = ufm.UFMProblem(d, d=4, lam_W=1e-2, lam_H=1e-2)
    >>> abs(trivial_threshold(d) / predict(p).mu_crit - 1) < 1e-14
    True
    >>> round(trivial_threshold(parse_design("0=12,1=12,2=12,3=1,4=1")), 6)
    0.091161
    """
    G0 = trivial_gradient(design, lam_b, bias)
    A = G0 @ G0.T
    return float(np.sqrt(max(float(np.linalg.eigvalsh(A)[-1]), 0.0)))


# -- the merge threshold of two exchangeable classes (docs/thresholds.md section 4) -------
def exchangeable(design: LabelDesign, i: int, j: int) -> bool:
    """True when swapping labels ``i`` and ``j`` maps the design to itself (``n_S = n_{tau S}``)."""
    swap = {i: j, j: i}
    counts = design.counts_by_set()
    return all(counts.get(tuple(sorted(swap.get(k, k) for k in S)), 0) == n for S, n in counts.items())


def merge_threshold(design: LabelDesign, i: int, j: int) -> float:
    r"""The ``mu`` from which rows ``i`` and ``j`` of ``W`` are equal at the global minimiser,
    for two *exchangeable* classes (:func:`exchangeable`), any bias setting and every ``d >= K``:

    .. math::  \mu_{ij} = \frac{\sqrt{n_{i \setminus j} + n_{j \setminus i}}}{\sqrt 2\, N}

    with ``n_{i \ j}`` the number of samples carrying ``i`` but not ``j``. Proof:
    docs/thresholds.md section 4 (at the merged minimiser ``p_i = p_j`` in every sample, so
    the loss gradient's component along ``(e_i - e_j)/sqrt 2`` is the constant row
    ``(y_j - y_i)/(sqrt 2 N)``, orthogonal to everything else in the optimality condition).

    Raises
    ------
    UFMError
        ``i``, ``j`` not distinct classes of the design, or not exchangeable (no closed form).

    Examples
    --------
    >>> from ufm.designs import parse_design
    >>> d = parse_design("0=12,1=12,2=12,3=1,4=1")
    >>> merge_threshold(d, 3, 4) * d.N     # 1/N: one sample of each minority class
    1.0
    """
    from .exceptions import UFMError

    if not (0 <= i < design.K and 0 <= j < design.K and i != j):
        raise UFMError(f"merge_threshold needs two distinct classes in 0..{design.K - 1}; got {i}, {j}.")
    if not exchangeable(design, i, j):
        raise UFMError(f"classes {i} and {j} are not exchangeable in this design (swapping them changes "
                       "some count): the merge threshold has no closed form here; use the bisection.")
    alone = sum(n for S, n in design.counts_by_set().items() if (i in S) != (j in S))
    return math.sqrt(alone / 2) / design.N
