r"""A closed-form dual lower bound on ``min F`` and the certified gap of any candidate
(SPEC section 3).

For every ``d``, ``F(W, H, b) >= C(W H, b)`` with the convex function

.. math::

    C(Z, b) = L(Z + b 1^T) + \mu \|Z\|_* + \frac{\lambda_b}{2}\|b\|^2,
    \qquad L(X) = \frac1N \sum_i w_i\,\ell(x_i; y_i), \quad \mu = \sqrt{\lambda_W\lambda_H},

and for every ``Gamma`` (K, N) with spectral norm ``||Gamma||_2 <= mu``

.. math::

    D(\Gamma) = -L^*(\Gamma) - \frac{\|\Gamma 1\|^2}{2\lambda_b} \;\le\; \min C \;\le\; \min F,
    \qquad L^*(\Gamma) = \frac1N \sum_i w_i m_i \sum_j q_{ij}\log q_{ij},
    \quad q_i = \frac{N \gamma_i / w_i + y_i}{m_i}

where

- ``w_i = 1`` for PAL and ``1/m_i`` for normalised PAL; ``m_i = |S_i|``, ``y_i`` (K,) 0/1;
- ``L*`` is finite only when every ``q_i`` lies in the probability simplex;
- without a bias the term in ``lam_b`` is absent; with a free bias and ``lam_b = 0`` it is
  replaced by the constraint ``Gamma 1 = 0``.

(SPEC writes ``-L*(-Gamma)`` with the opposite sign of ``Gamma``; norms are unchanged.)

**The dual point.** Every feasible ``Gamma`` has the form ``gamma_i = (w_i m_i / N)(pi_i - y_i/m_i)``
with ``pi_i`` in the simplex (then ``q_i = pi_i``). From a candidate's logits
``X = W H + b 1^T`` we take ``pi_i = softmax(x_i)`` -- i.e. ``Gamma = grad L(X)``, the
optimal dual point at a global minimiser -- and improve it three ways, each of which can
only raise the bound:

1. *Grouping.* ``pi_i`` is replaced by its mean over the samples of the same label set.
   The conjugate terms of a label set are one convex function, so by Jensen ``-L*`` does
   not decrease; averaging is an orthogonal projection, so ``||Gamma||_2`` does not grow;
   ``Gamma 1`` is unchanged. Everything after one pass over the logits is on ``K x G``
   arrays (``G`` label sets): the spectral norm is the largest singular value of
   ``Gamma_g D^{1/2}``, ``D = diag(n_S)`` (through its ``K x K`` Gram matrix).
2. *Free bias, ``lam_b = 0``.* The group means are exponentially tilted,
   ``pi_S propto pibar_S * exp(beta)``, with ``beta`` (K,) found by Newton's method so that
   ``Gamma 1 = 0`` (to float64 rounding; classes in no label set get ``pi = 0``). At a
   minimiser ``beta = 0``.
3. *Spectrum.* At a minimiser ``Gamma = -mu U V^T`` on the singular pairs of ``Z``. Near
   one, scaling alone leaves a gap of first order in the distance; snapping the large
   singular values of ``Gamma`` to ``mu`` and projecting back onto the simplex (a few
   alternations) makes it second order.
4. *Scaling.* ``q = y/m + t (pi - y/m)`` with the largest ``t <= 1`` keeping
   ``||Gamma||_2 <= mu`` and ``q`` in the simplex, or the maximiser of the concave ``D``
   below it.

Every candidate is exactly feasible (up to float64 rounding), so the best of them is a
valid bound.

The certified gap ``F - D >= 0`` vanishes at a global minimiser, whatever ``d``; it is
small exactly when the candidate is globally optimal *and* the convex relaxation is tight
at this ``d`` (``d >= rank`` of a minimiser of ``C``). Cost: one product ``W H``, one
softmax pass over the ``K x N`` logits, then ``O(K G)`` work and a few products with the
``K x K`` Gram matrix of ``Gamma_g D^{1/2}`` (its eigendecomposition gives the spectral
norm and the snapped spectrum; a full SVD of the ``K x G`` matrix cost 0.54 s each at
``K = 200``, ``G = 20100``, the Gram route 0.05 s). Measured (``python -m
benchmarks.certificate_cost``, medians side by side, one BLAS thread): 11x one
objective-and-gradient evaluation at K = 200, N = 21900, G = 20100 (was 30x with SVDs);
1-3x at K = 50, N = 21225.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import xlogy

from .exceptions import UFMError
from .losses import log_softmax_parts
from .objective import _check_shapes
from .problem import UFMProblem


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


def _best_on_segment(
    problem: UFMProblem, Dir: np.ndarray, base: np.ndarray, c: np.ndarray, n: np.ndarray
) -> tuple[float, float]:
    """Best ``D`` along ``q = base + t Dir``, ``t`` in ``[0, t_cap]`` with ``t_cap`` keeping
    ``||Gamma||_2 <= mu`` and every ``q`` in the simplex. Returns ``(D, t)``."""
    mu = problem.mu
    s1 = _spectral_norm(Dir * (c / np.sqrt(n)))  # ||Gamma||_2 at t = 1
    if s1 == 0.0:
        return -float(c @ xlogy(base, base).sum(axis=0)), 0.0
    # t <= 1: beyond it the rounding in 1^T Dir = 0 (and Gamma 1 = 0) would be amplified,
    # and the snapped candidates already sit on the spectral sphere
    t_cap = min(1.0, mu / s1)
    neg = Dir < 0
    if np.any(neg):  # q = base + t Dir >= 0
        t_cap = min(t_cap, float(np.min(base[neg] / -Dir[neg])))
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
    if t_cap > 0 and not slope(t_cap)[0] >= 0:  # concave D peaks inside (0, t_cap): slope(0+) >= 0
        lo, hi = 0.0, t_cap  # safeguarded Newton on the decreasing slope (-inf allowed at t_cap)
        t = 0.5 * t_cap
        for _ in range(60):
            g, h = slope(t)
            if g > 0:
                lo = t
            else:
                hi = t
            if hi - lo <= 1e-13 * t_cap or g == 0:
                break
            step = t - g / h if (h < 0 and np.isfinite(h)) else None
            t = step if (step is not None and lo < step < hi) else 0.5 * (lo + hi)
        t = max((lo, hi, t), key=value)
    return value(t), float(t)


def _snap_spectrum(Dir: np.ndarray, c: np.ndarray, n: np.ndarray, mu: float) -> np.ndarray | None:
    """The direction whose ``Gamma`` has its singular values above ``mu/2`` set to ``mu``
    and the others kept (at most ``mu``); None when nothing changes.

    At a minimiser ``Gamma = -mu U V^T`` on the singular pairs of ``Z`` (SPEC section 3);
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
    for d1 in dirs:
        val, t = _best_on_segment(problem, d1, base, c, n)
        if val > best:
            best, t_best = val, t
    return best, t_best


def lower_bound_from_logits(problem: UFMProblem, X: np.ndarray) -> tuple[float, float]:
    """Certified lower bound ``D <= min C <= min F`` from logits ``X`` (K, N) or grouped (K, G).

    Returns ``(D, t)``. Used for the convex relaxation's solution, whose logits
    ``Z + b 1^T`` come one column per label set.
    """
    _group_weights(problem)  # clear error for losses without a conjugate
    _, Pbar = loss_and_group_softmax(problem, X)
    return dual_bound(problem, Pbar)


def convex_value(problem: UFMProblem, Z: np.ndarray, b: np.ndarray | None = None) -> float:
    r"""The convex function ``C(Z, b)`` (SPEC section 3) at ``Z`` (K, N) or grouped (K, G).

    With grouped columns ``Z_g`` the nuclear norm is ``||Z_g D^{1/2}||_*``, ``D = diag(n_S)``
    (the nuclear norm of ``Z_g`` with each column repeated ``n_S`` times).
    """
    design = problem.design
    Z = np.asarray(Z, dtype=np.float64)
    b = np.zeros(problem.K) if (b is None or not problem.bias) else np.asarray(b, dtype=np.float64)
    X = Z + b[:, None]
    if problem.loss == "bce":
        from .losses import bce

        grouped = Z.shape == (problem.K, design.G)
        Yx = design.Yg if grouped else design.Y
        L, _ = bce(X, Yx, design.group_multiplicity if grouped else design.m)  # mean over columns
        if grouped:  # weight each column by n_S
            n = design.group_counts.astype(np.float64)
            L = float((n @ (np.logaddexp(0.0, X).sum(axis=0) - (design.Yg * X).sum(axis=0))) / problem.N)
    else:
        L, _ = loss_and_group_softmax(problem, X)
    if Z.shape == (problem.K, design.G):
        nuc = float(np.linalg.svd(Z * np.sqrt(design.group_counts), compute_uv=False).sum())
    else:
        nuc = float(np.sqrt(np.clip(np.linalg.eigvalsh(Z @ Z.T), 0.0, None)).sum())
    return L + problem.mu * nuc + 0.5 * problem.lam_b * float(b @ b)


def certify(
    problem: UFMProblem, W: np.ndarray, H: np.ndarray, b: np.ndarray | None = None
) -> Certificate:
    """Certified lower bound and gap for the candidate ``(W, H, b)`` of ``problem``.

    Works for a candidate from any source (a solver, a file, a trained network's last
    layer and features in the canonical sample order of ``problem.design``), any ``d``,
    with ``lam_b > 0``, without bias, and with a free bias at ``lam_b = 0``.

    Parameters
    ----------
    problem : UFMProblem
        With ``loss`` "pal" or "pal-normalized".
    W : ndarray, shape (K, d)
    H : ndarray, shape (d, N)
    b : ndarray, shape (K,), optional
        Ignored (``b = 0``) when ``problem.bias`` is False.
    """
    _group_weights(problem)
    W = np.asarray(W, dtype=np.float64)
    H = np.asarray(H, dtype=np.float64)
    b = np.zeros(problem.K) if (b is None or not problem.bias) else np.asarray(b, dtype=np.float64)
    _check_shapes(problem, W, H, b)
    for name, arr in (("W", W), ("H", H), ("b", b)):
        if not np.all(np.isfinite(arr)):
            raise UFMError(f"'{name}' contains non-finite values; no bound can be certified.")
    X = W @ H  # (K, N)
    X += b[:, None]
    L, Pbar = loss_and_group_softmax(problem, X)
    F = (L + 0.5 * problem.lam_W * float(np.vdot(W, W)) + 0.5 * problem.lam_H * float(np.vdot(H, H))
         + (0.5 * problem.lam_b * float(b @ b) if problem.bias else 0.0))
    lower, t = dual_bound(problem, Pbar)
    gap = F - lower
    return Certificate(lower_bound=lower, objective=F, gap=gap, rel_gap=gap / max(abs(F), 1e-300), t=t)


__all__ = ["Certificate", "certify", "convex_value", "dual_bound", "lower_bound_from_logits",
           "loss_and_group_softmax"]
