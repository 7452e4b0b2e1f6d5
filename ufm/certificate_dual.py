"""The dual point of the certificate: grouping, tilting, spectrum snapping and scaling.

Split from :mod:`ufm.certificate` (whose docstring states the bound and why every step
keeps it valid); :func:`dual_bound` turns the label sets' mean softmax into the best
lower bound ``D`` over a few exactly feasible candidates. The pieces that both the float64
and the rigorous certificate build on (:class:`Certificate`, the label sets' mean softmax
:func:`loss_and_group_softmax`) live here, so that :mod:`ufm.certificate_rigorous` needs
nothing from :mod:`ufm.certificate` (which dispatches to it) and the two form no cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import xlogy

from .exceptions import UFMError
from .losses import log_softmax_parts
from .problem import UFMProblem


def _group_weights(problem: UFMProblem) -> np.ndarray:
    """``w_S`` per label set (G,): 1 for PAL, ``1/m_S`` for normalised PAL."""
    m = problem.design.group_multiplicity.astype(np.float64)
    if problem.loss == "pal":
        return np.ones_like(m)
    if problem.loss == "pal-normalized":
        return 1.0 / m
    raise UFMError(
        f"The certificate is derived for the pick-all-label losses; loss={problem.loss!r} has "
        "no closed-form conjugate here. Use loss='pal' or 'pal-normalized'."
    )


@dataclass(frozen=True)
class Certificate:
    """A certified bracket ``lower_bound <= min F <= objective``.

    Attributes
    ----------
    lower_bound : float
        ``D(Gamma)``, a lower bound on the global minimum of ``F`` for every ``d`` (and on
        ``min C``).
    objective : float
        ``F`` at the candidate.
    gap : float
        ``objective - lower_bound >= 0`` (up to float64 rounding).
    rel_gap : float
        ``gap / max(|objective|, 1e-300)``.
    t : float
        The scaling of the dual direction used (1 near a minimiser).
    """

    lower_bound: float
    objective: float
    gap: float
    rel_gap: float
    t: float

    def to_dict(self) -> dict:
        return asdict(self)


# -- group statistics ------------------------------------------------------------------
def _group_starts(problem: UFMProblem) -> np.ndarray:
    counts = problem.design.group_counts
    return np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.intp)


def loss_and_group_softmax(problem: UFMProblem, X: np.ndarray) -> tuple[float, np.ndarray]:
    """The averaged loss ``L(X)`` and the mean softmax of each label set.

    Parameters
    ----------
    X : ndarray, shape (K, N) or (K, G)
        Logits of every sample (canonical sample order of ``problem.design``), or one
        logit column per label set (each standing for its ``n_S`` samples). When every
        ``n_S = 1`` the two coincide.

    Returns
    -------
    L : float
        ``(1/N) sum_i w_i (m_i LSE(x_i) - <y_i, x_i>)``.
    Pbar : ndarray, shape (K, G)
        ``mean_{i in S} softmax(x_i)`` for each label set ``S``.
    """
    design = problem.design
    w = _group_weights(problem)  # (G,)
    m = design.group_multiplicity.astype(np.float64)
    n = design.group_counts.astype(np.float64)
    X = np.asarray(X, dtype=np.float64)
    if X.shape == (problem.K, design.G):
        lse, P = log_softmax_parts(X)  # (G,), (K, G)
        xy = np.einsum("kg,kg->g", design.Yg, X)  # <y_S, x_S>
        L = float((n * w) @ (m * lse - xy)) / problem.N
        return L, P
    if X.shape != (problem.K, problem.N):
        raise UFMError(f"Logits must have shape (K, N) = ({problem.K}, {problem.N}) or (K, G) = "
                       f"({problem.K}, {design.G}); got {X.shape}.")
    starts = _group_starts(problem)
    lse, P = log_softmax_parts(X)  # (N,), (K, N)
    lse_sum = np.add.reduceat(lse, starts)  # (G,) sum of LSE over each label set
    x_sum = np.add.reduceat(X, starts, axis=1)  # (K, G) sum of logits over each label set
    xy = np.einsum("kg,kg->g", design.Yg, x_sum)
    L = float(w @ (m * lse_sum - xy)) / problem.N
    Pbar = np.add.reduceat(P, starts, axis=1)
    Pbar /= n
    return L, Pbar


# -- the dual bound --------------------------------------------------------------------
def _tilt(Pi: np.ndarray, c: np.ndarray, target: np.ndarray, *, max_iter: int = 100) -> np.ndarray | None:
    r"""Tilt each column of ``Pi`` (K, G) as ``pi_S propto Pi_S exp(beta)`` so that
    ``sum_S c_S pi_S = target`` (K,); classes with ``target = 0`` get ``pi = 0``.

    Newton's method on the convex ``phi(beta) = sum_S c_S log(sum_j Pi_Sj e^{beta_j}) -
    <target, beta>`` (whose gradient is the residual). Returns None if it fails.
    """
    present = target > 0
    A = Pi[present]  # (K', G)
    tgt = target[present]
    with np.errstate(divide="ignore"):
        logA = np.log(A)
    beta = np.zeros(A.shape[0])
    scale = float(c.sum())

    def tilted(beta: np.ndarray) -> tuple[float, np.ndarray]:
        Lg = logA + beta[:, None]
        mx = Lg.max(axis=0)
        E = np.exp(Lg - mx)
        s = E.sum(axis=0)
        return float(c @ (np.log(s) + mx) - tgt @ beta), E / s

    f, T = tilted(beta)
    for _ in range(max_iter):
        if not np.all(np.isfinite(T)):
            return None
        grad = T @ c - tgt  # (K',), sums to 0
        if np.abs(grad).sum() <= 1e-14 * scale:
            break
        Hs = np.diag(T @ c) - (T * c) @ T.T + np.full((tgt.size, tgt.size), scale / tgt.size)
        try:
            step = np.linalg.solve(Hs, -grad)
        except np.linalg.LinAlgError:  # a class with pi = 0 in every label set: unreachable
            return None
        if not np.all(np.isfinite(step)):
            return None
        dec = float(-(grad @ step))
        if dec <= 1e-30 * scale:
            break
        s = 1.0
        while True:
            f_new, T_new = tilted(beta + s * step)
            if f_new <= f - 0.25 * s * dec:
                break
            if s < 1e-6:  # at float64 precision: accept the full step if it reduces the residual
                f_new, T_new = tilted(beta + step)
                if np.abs(T_new @ c - tgt).sum() >= np.abs(grad).sum():
                    s = 0.0
                else:
                    s = 1.0
                break
            s *= 0.5
        if s == 0.0:
            break
        beta, f, T = beta + s * step, f_new, T_new
    out = np.zeros_like(Pi)
    out[present] = T
    if not np.all(np.isfinite(out)):
        return None
    residual = np.abs(out @ c - target).sum()
    return out if residual <= 1e-10 * scale else None


def _gram(M: np.ndarray) -> np.ndarray:
    """The smaller Gram matrix of ``M``: ``M M^T`` when ``M`` is wide, else ``M^T M``."""
    return M @ M.T if M.shape[0] <= M.shape[1] else M.T @ M


def _spectral_norm(M: np.ndarray) -> float:
    """``||M||_2`` as the square root of the largest eigenvalue of the smaller Gram matrix.

    For a wide ``K x G`` matrix this costs ``K^2 G`` flops (one ``syrk``) and a ``K x K``
    eigensolve instead of an SVD of ``M`` (about 10x faster at ``K = 200``, ``G = 20100``).
    The largest eigenvalue of the computed Gram matrix is accurate to a few units of
    rounding relative to ``||M||_2^2`` (small singular values lose accuracy in a Gram
    matrix, the largest does not): measured within 4.5e-15 relative of LAPACK's SVD at
    ``K = 200`` with a 199-fold top singular value (the SVD: 9e-16), so a bound using it
    may exceed the exact ``D`` by that order relative -- below the rounding of ``F`` itself.
    """
    if M.size == 0:
        return 0.0
    A = _gram(M)
    return float(np.sqrt(max(float(np.linalg.eigvalsh(A)[-1]), 0.0)))


def _maximise_concave(slope: Callable[[float], tuple[float, float]], t_cap: float, rtol: float = 1e-13,
                      max_iter: int = 60) -> tuple[float, float, float, int]:
    """The maximiser on ``[0, t_cap]`` of a concave function, from ``slope(t) = (f'(t), f''(t))``
    (``f'`` decreasing; ``-inf`` allowed where the function ends, e.g. at ``t_cap``).

    Returns ``(lo, hi, t, evaluations)``: ``t`` the maximiser, inside the bracket
    ``[lo, hi]`` that holds it (``f'(lo) > 0 >= f'(hi)``). ``t = t_cap`` after one
    evaluation when ``f'(t_cap) >= 0``. Otherwise a safeguarded Newton search from
    ``t_cap / 2``: a Newton step where the curvature is negative and finite and the step
    lands strictly inside the bracket, a bisection otherwise; it stops at ``f' = 0``, when
    the bracket is shorter than ``rtol t_cap``, after a Newton step shorter than that (the
    error is then second order in it), or after ``max_iter`` evaluations.
    """
    g, _ = slope(t_cap)
    if g >= 0:  # increasing up to the end
        return t_cap, t_cap, t_cap, 1
    lo, hi, t = 0.0, t_cap, 0.5 * t_cap
    it = 1
    while it < max_iter:
        g, h = slope(t)
        it += 1
        if g > 0:
            lo = t
        else:
            hi = t
        if g == 0 or hi - lo <= rtol * t_cap:
            return lo, hi, t, it
        step = t - g / h if (h < 0 and np.isfinite(h)) else None
        if step is not None and lo <= step <= hi and abs(step - t) <= rtol * t_cap:
            return lo, hi, step, it  # converged (the step may round onto an end of the bracket)
        t = step if (step is not None and lo < step < hi) else 0.5 * (lo + hi)
    return lo, hi, t, it


def _segment_cap(mu: float, Dir: np.ndarray, base: np.ndarray, c: np.ndarray, n: np.ndarray) -> float | None:
    """The largest ``t <= 1`` with ``||Gamma(t)||_2 <= mu`` and ``base + t Dir >= 0`` (every
    ``q`` in the simplex); None when ``Gamma`` is 0 along the whole segment."""
    s1 = _spectral_norm(Dir * (c / np.sqrt(n)))  # ||Gamma||_2 at t = 1
    if s1 == 0.0:
        return None
    # t <= 1: beyond it the rounding in 1^T Dir = 0 (and Gamma 1 = 0) would be amplified,
    # and the snapped candidates already sit on the spectral sphere
    t_cap = min(1.0, mu / s1)
    neg = Dir < 0
    if np.any(neg):  # q = base + t Dir >= 0
        t_cap = min(t_cap, float(np.min(base[neg] / -Dir[neg])))
    return t_cap


def _best_on_segment(
    problem: UFMProblem, Dir: np.ndarray, base: np.ndarray, c: np.ndarray, n: np.ndarray
) -> tuple[float, float]:
    """Best ``D`` along ``q = base + t Dir``, ``t`` in ``[0, t_cap]`` with ``t_cap`` keeping
    ``||Gamma||_2 <= mu`` and every ``q`` in the simplex. Returns ``(D, t)``."""
    t_cap = _segment_cap(problem.mu, Dir, base, c, n)
    if t_cap is None:
        return -float(c @ xlogy(base, base).sum(axis=0)), 0.0
    bias_pen = problem.bias and problem.lam_b > 0
    r2 = float(np.sum((Dir @ c) ** 2)) if bias_pen else 0.0  # ||Gamma 1||^2 at t = 1

    def value(t: float) -> float:
        Q = base + t * Dir
        np.clip(Q, 0.0, None, out=Q)  # rounding only: t <= t_cap keeps Q >= 0
        v = -float(c @ xlogy(Q, Q).sum(axis=0))
        if bias_pen:
            v -= t * t * r2 / (2.0 * problem.lam_b)
        return v

    nz = Dir != 0

    def slope(t: float) -> tuple[float, float]:  # dD/dt and d2D/dt2 (columns of Dir sum to 0)
        Q = np.clip(base + t * Dir, 0.0, None)
        with np.errstate(divide="ignore", invalid="ignore"):
            d1 = np.where(nz, Dir * np.log(Q), 0.0)
            d2 = np.where(nz, Dir * Dir / Q, 0.0)
        pen = r2 / problem.lam_b if bias_pen else 0.0
        return -float(c @ d1.sum(axis=0)) - t * pen, -float(c @ d2.sum(axis=0)) - pen

    t = t_cap
    if t_cap > 0:
        lo, hi, t, _ = _maximise_concave(slope, t_cap)
        # stopped by its budget: the best point seen (ties: t); each distinct point valued once
        vals = {s: value(s) for s in dict.fromkeys((t, lo, hi))}
        t = max(vals, key=vals.__getitem__)
        return vals[t], float(t)
    return value(t), float(t)


def _snap_spectrum(Dir: np.ndarray, c: np.ndarray, n: np.ndarray, mu: float) -> np.ndarray | None:
    """The direction whose ``Gamma`` has its singular values above ``mu/2`` set to ``mu``
    and the others kept (at most ``mu``); None when nothing changes.

    At a minimiser ``Gamma = -mu U V^T`` on the singular pairs of ``Z`` (docs/theory.md section 5);
    near one, those singular values are ``mu + O(delta)``, and snapping them back to
    ``mu`` makes the gap second order in ``delta`` instead of first. The result keeps
    ``1^T Gamma = 0`` and ``Gamma 1 = 0`` when they hold (null vectors of every singular
    pair with a positive singular value)."""
    scale = c / np.sqrt(n)  # (G,)
    M = Dir * scale
    wide = M.shape[0] <= M.shape[1]
    lam, V = np.linalg.eigh(_gram(M))  # M M^T = U S^2 U^T (wide) or M^T M = V S^2 V^T
    s = np.sqrt(np.clip(lam, 0.0, None))
    sel = (s >= 0.5 * mu) & (s != mu)
    if not np.any(sel):
        return None
    Vs = V[:, sel]
    f = mu / s[sel] - 1.0  # sigma -> mu on the selected pairs: M + U_k diag(mu - s_k) V_k^T
    if wide:  # V_k^T = S_k^{-1} U_k^T M
        M = M + (Vs * f) @ (Vs.T @ M)
    else:  # U_k = M V_k S_k^{-1}
        M = M + (M @ Vs * f) @ Vs.T
    return M / scale


def _project_simplex(V: np.ndarray) -> np.ndarray:
    """Euclidean projection of every column of ``V`` (K, G) onto the probability simplex.

    Columns already in it (non-negative, summing to 1 within 1e-12) are their own
    projection and are returned as they are; the others are projected by the sort-based
    algorithm, on a transposed copy so that each sort runs over contiguous memory.
    """
    out = np.array(V, dtype=np.float64, copy=True)
    bad = np.flatnonzero((out < 0).any(axis=0) | (np.abs(out.sum(axis=0) - 1.0) > 1e-12))
    if bad.size == 0:
        return out
    Vt = np.ascontiguousarray(out[:, bad].T)  # (G', K)
    U = -np.sort(-Vt, axis=1)  # descending
    css = np.cumsum(U, axis=1) - 1.0
    k = np.arange(1, Vt.shape[1] + 1)[None, :]
    rho = np.count_nonzero(U - css / k > 0, axis=1)  # >= 1
    theta = css[np.arange(Vt.shape[0]), rho - 1] / rho
    out[:, bad] = np.maximum(Vt - theta[:, None], 0.0).T
    return out


def dual_bound(problem: UFMProblem, Pbar: np.ndarray) -> tuple[float, float]:
    """The lower bound ``D`` built from the label sets' mean softmax ``Pbar`` (K, G).

    Returns ``(D, t)``; :func:`dual_point` also returns the direction used.
    """
    best, t_best, _ = dual_point(problem, Pbar)
    return best, t_best


def dual_point(problem: UFMProblem, Pbar: np.ndarray) -> tuple[float, float, np.ndarray]:
    """``(D, t, Dir)``: the best bound, its scaling and direction (``q = y/m + t Dir``;
    ``Dir = 0`` for the bound at ``Gamma = 0``). See :func:`dual_bound`.

    Candidate dual directions (``q = y/m + t Dir``): ``Pbar - y/m``; with a free bias and
    ``lam_b = 0`` instead its exponential tilt and its centring (both with ``Gamma 1 = 0``);
    and from each, a few rounds of: snap the singular values of ``Gamma`` above ``mu/2`` to
    ``mu`` (:func:`_snap_spectrum`), project the columns back onto the simplex (and re-tilt).
    Each candidate is scaled optimally; the best bound is returned with its ``t``.
    """
    design = problem.design
    N, mu = problem.N, problem.mu
    n = design.group_counts.astype(np.float64)
    m = design.group_multiplicity.astype(np.float64)
    w = _group_weights(problem)
    c = n * w * m / N  # (G,) weight of each label set's entropy term
    base = design.Yg / m  # (K, G) y_S / m_S: the point t = 0
    Dir = np.asarray(Pbar, dtype=np.float64) - base  # (K, G): Gamma_S = t (w_S m_S / N) Dir_S
    if problem.bias and problem.lam_b == 0:
        dirs = [Dir - np.outer(Dir @ c, 1.0 / (w * m))]  # centred: sum_S c_S Dir_S = 0
        tilted = _tilt(base + Dir, c, base @ c)
        if tilted is not None:
            dirs.append(tilted - base)
    else:
        dirs = [Dir]
    for d1 in list(dirs):  # alternate: snap the spectrum, back into the simplex (and Gamma 1 = 0)
        for _ in range(3):
            d2 = _snap_spectrum(d1, c, n, mu)
            if d2 is None:
                break
            pi = _project_simplex(base + d2)
            if problem.bias and problem.lam_b == 0:
                tilted = _tilt(pi, c, base @ c)
                if tilted is None:
                    break
                pi = tilted
            d1 = pi - base
            dirs.append(d1)
    best, t_best = -float(c @ xlogy(base, base).sum(axis=0)), 0.0  # Gamma = 0
    d_best = np.zeros_like(base)
    for d1 in dirs:
        val, t = _best_on_segment(problem, d1, base, c, n)
        if val > best:
            best, t_best, d_best = val, t, d1
    return best, t_best, d_best


__all__ = ["dual_bound", "dual_point"]
