r"""Rigorous certificates: the bracket ``D <= min F <= F`` as a mathematical statement.

:func:`certify_rigorous` evaluates the same dual bound as :func:`ufm.certificate.certify`
(``D(Gamma) = -L^*(Gamma) - ||Gamma 1||^2/(2 lam_b)`` for a feasible ``Gamma``, see
``ufm/certificate.py`` and ``docs/proofs.md``) and the objective ``F`` at the float
candidate, but with every rounding error bounded, so that the returned ``lower_bound`` is
``<= min F`` and ``objective`` is ``>= F(W, H, b) >= min F`` for the *exact* real numbers,
not up to float64 rounding.

How it is made rigorous (all in vectorised numpy; no multiple precision)
--------------------------------------------------------------------------
*Error model.* IEEE 754 binary64 arithmetic with round-to-nearest: ``+ - * / sqrt`` return
the correctly rounded result, so the exact value lies within one ulp of it, i.e. in
``[nextafter(r, -inf), nextafter(r, +inf)]`` (also in the subnormal range). Everything else
is bounded from that, with unit roundoff ``u = 2^-53`` and ``gamma_n = n u / (1 - n u)``:

* *Sums* of ``n`` terms in any order (numpy's pairwise summation included):
  ``|fl(sum x) - sum x| <= gamma_{n-1} sum |x_i|`` (Higham, *Accuracy and Stability of
  Numerical Algorithms*, 2nd ed., eq. 4.4, which holds for every summation order); we use
  ``1.01 n u fl(sum |x_i|)`` plus ``1e-300``.
* *Matrix products* ``A @ B`` (BLAS ``dgemm``: ordinary dot products, with or without fused
  multiply-adds, no Strassen): ``|fl(AB) - AB| <= gamma_n |A| |B|`` entrywise (Higham
  eq. 3.13); we use ``1.01 (n+2) u (|A| @ |B|)`` plus ``n * 1e-320`` for underflow.
* *exp* (no libm is trusted): ``x = k ln2 + r`` with ``k = floor(x / ln2)`` and ``ln2`` split
  into a 32-bit head (``k * head`` is exact for ``|k| < 2^21``) and a tail; ``r`` is
  enclosed with an absolute error ``4 u (|x| + |k| + 1)``. ``exp(r)`` for ``0 <= r < 0.7``
  is the Taylor polynomial of degree 17 by Horner (positive terms: relative rounding error
  ``<= gamma_{52} < 60 u``) plus the remainder ``r^18/18! e^r < 1e-18``; for ``-tiny < r < 0``
  we use ``1 + r <= exp(r) <= 1``. Then ``ldexp`` by ``2^k`` (exact, widened by one ulp for
  underflow).
* *log* (no libm): ``x = 2^e f`` with ``f`` in ``[1/sqrt 2, sqrt 2)`` (``frexp``, exact);
  ``log f = 2 atanh(y) = y sum_{k=0}^{13} 2 z^k/(2k+1) + rem``, ``y = (f-1)/(f+1)``,
  ``z = y^2 <= 0.0295`` (``f - 1`` is exact by Sterbenz' lemma; relative error of the
  computed ``y Q(z)`` below ``64 u``; ``rem <= 2 |y| z^14 / (29 (1 - z)) < 1e-23 |y|``); plus
  ``e ln2`` (``ln2`` the double nearest to it: relative error ``<= u``).
* *x log x* on ``[lo, hi]``, ``lo >= 0``: from both endpoints, including the minimum
  ``-1/e`` when ``1/e`` lies inside (the function decreases then increases).

*Spectral norm.* ``||Gamma||_2 <= mu`` is proved, not computed: ``Gamma``'s grouped matrix
``M`` is enclosed as midpoint ``Mc`` plus radius ``Mr``, ``||M||_2 <= ||Mc||_2 + ||Mr||_F``;
``||Mc||_2^2 = lambda_max(Mc Mc^T)`` with the ``K x K`` Gram matrix ``A`` computed with the
product bound above, in chunks of 512 columns summed with the sum bound
(``lambda_max(A) <= lambda_max(A_hat) + ||A - A_hat||_F``, Weyl); and
for the exactly symmetric float matrix ``A_hat`` with an approximate eigendecomposition
``V diag(lam) V^T`` (LAPACK, not trusted): ``A_hat = V diag(lam) V^T + E`` gives
``lambda_max(A_hat) <= max(lam, 0) ||V||_2^2 + ||E||_2`` (Weyl; ``V diag(lam) V^T <=
max(lam, 0) V V^T``), with ``||V||_2^2 <= 1 + ||V^T V - I||_F`` and ``||E||_2 <= ||E||_F``,
both bounded with the product bound. The scaling is then ``t <= mu_lo / ||M||_2`` rounded
down, so the bound is valid whatever LAPACK returned (a bad eigendecomposition only makes
it weaker).

*Feasibility.* The float direction ``Dir`` (``q = y/m + t Dir``) of the float certificate
is corrected *in exact arithmetic* (enclosed by intervals): each column's sum is removed
from its largest entry (so ``1^T q_S = 1`` exactly), and with a free bias at ``lam_b = 0``
the weighted row sum ``r = sum_S c_S Dir_S`` is removed as ``Dir_S - r / sum_S c_S`` (so
``Gamma 1 = 0`` exactly; column sums stay 0 because ``1^T r = 0``). ``t`` is then capped so
that ``q >= 0`` is proved entrywise. If ``q >= 0`` cannot be proved for any ``t > 0`` the
bound is ``D(0) = sum_S c_S log m_S`` (``Gamma = 0`` is always feasible): the certificate
then certifies nothing beyond the trivial bound -- it never claims more than it proved.

What is trusted: the IEEE arithmetic of the machine (numpy's ``+ - * / sqrt``, ``floor``,
``frexp``, ``ldexp``, ``nextafter``) and BLAS computing ordinary dot products; the
mathematics (weak duality, the conjugate) is the float certificate's.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from .certificate_dual import Certificate, _group_weights, dual_point, loss_and_group_softmax
from .exceptions import UFMError
from .objectives.layout import _check_shapes
from .problem import UFMProblem

U = 2.0**-53
_INF = np.inf
Interval = tuple[np.ndarray, np.ndarray]


def _dn(x: np.ndarray | float) -> np.ndarray:
    return np.nextafter(x, -_INF)


def _up(x: np.ndarray | float) -> np.ndarray:
    return np.nextafter(x, _INF)


def _point(x: np.ndarray | float) -> Interval:
    x = np.asarray(x, dtype=np.float64)
    return x, x


# -- interval arithmetic (outward rounding by one ulp per operation) --------------------
def iadd(a: Interval, b: Interval) -> Interval:
    return _dn(a[0] + b[0]), _up(a[1] + b[1])


def isub(a: Interval, b: Interval) -> Interval:
    return _dn(a[0] - b[1]), _up(a[1] - b[0])


def imul(a: Interval, b: Interval) -> Interval:
    p = (a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1])
    return _dn(np.minimum(np.minimum(p[0], p[1]), np.minimum(p[2], p[3]))), _up(
        np.maximum(np.maximum(p[0], p[1]), np.maximum(p[2], p[3])))


def idiv_pos(a: Interval, b: Interval) -> Interval:
    """``a / b`` for ``b > 0``."""
    if np.any(b[0] <= 0):
        raise ValueError("idiv_pos needs a positive divisor")
    q = (a[0] / b[0], a[0] / b[1], a[1] / b[0], a[1] / b[1])
    return _dn(np.minimum(np.minimum(q[0], q[1]), np.minimum(q[2], q[3]))), _up(
        np.maximum(np.maximum(q[0], q[1]), np.maximum(q[2], q[3])))


def irow(a: Interval) -> Interval:
    """A vector interval (n,) as one row (1, n), to broadcast down the rows of a matrix."""
    return a[0][None, :], a[1][None, :]


def icol(a: Interval) -> Interval:
    """A vector interval (n,) as one column (n, 1), to broadcast along the rows of a matrix."""
    return a[0][:, None], a[1][:, None]


def inonneg(a: Interval) -> Interval:
    """``a`` with its lower end raised to 0: for a quantity proved ``>= 0`` by other means."""
    return np.maximum(a[0], 0.0), a[1]


def isqrt(a: Interval) -> Interval:
    return _dn(np.sqrt(np.maximum(a[0], 0.0))).clip(0.0), _up(np.sqrt(a[1]))


_BLOCK = 512


def _isum_last(lo: np.ndarray, hi: np.ndarray) -> Interval:
    """Enclosure of the sums along the last axis: blocks of ``_BLOCK`` terms summed with the
    bound ``1.01 n u sum |x|`` (``n <= _BLOCK``), then the block sums the same way, so the
    bound grows like ``_BLOCK u`` per level instead of ``n u`` for the whole sum."""
    while lo.shape[-1] > _BLOCK:
        n = lo.shape[-1]
        pad = (-n) % _BLOCK
        if pad:
            widths = [(0, 0)] * (lo.ndim - 1) + [(0, pad)]
            lo, hi = np.pad(lo, widths), np.pad(hi, widths)
        shape = lo.shape[:-1] + (-1, _BLOCK)
        lo, hi = _isum_last(lo.reshape(shape), hi.reshape(shape))
    n = max(lo.shape[-1], 1)
    e_lo = _up(1.01 * n * U * np.abs(lo).sum(axis=-1) + 1e-300)
    e_hi = _up(1.01 * n * U * np.abs(hi).sum(axis=-1) + 1e-300)
    return _dn(lo.sum(axis=-1) - e_lo), _up(hi.sum(axis=-1) + e_hi)


def isum(a: Interval, axis: int | None = None) -> Interval:
    """Enclosure of the exact sum of every element of ``[lo, hi]`` along ``axis`` (all
    elements when ``None``). Each float sum of ``n`` terms, in any order, is within
    ``gamma_{n-1} sum |x_i| <= 1.01 n u fl(sum |x_i|)`` of the exact one (``n u << 1``)."""
    lo, hi = np.asarray(a[0], dtype=np.float64), np.asarray(a[1], dtype=np.float64)
    if axis is None:
        lo, hi = lo.reshape(-1), hi.reshape(-1)
    else:
        lo, hi = np.moveaxis(lo, axis, -1), np.moveaxis(hi, axis, -1)
    return _isum_last(lo, hi)


def matmul_enclose(A: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(C, R)`` with ``|C - A B| <= R`` entrywise for float matrices ``A``, ``B``."""
    n = A.shape[1]
    C = A @ B
    R = _up(1.01 * (n + 2) * U * (np.abs(A) @ np.abs(B)) + n * 1e-320)
    return C, R


# -- elementary functions ---------------------------------------------------------------
_LN2 = 0.6931471805599453  # the double nearest ln 2 (|error| < u ln 2)
_LN2_HEAD = float(np.array([_LN2]).view(np.uint64)[0] & np.uint64(0xFFFFFFFF00000000)).__class__(
    np.array([np.array([_LN2]).view(np.uint64)[0] & np.uint64(0xFFFFFFFF00000000)]).view(np.float64)[0])
_LN2_TAIL = _LN2 - _LN2_HEAD  # exact (Sterbenz)
_EXP_COEF = [1.0 / math.factorial(i) for i in range(18)]  # fl(1/i!)
_LOG_COEF = [2.0 / (2 * k + 1) for k in range(14)]


def _horner_pos(coef: list[float], x: np.ndarray) -> np.ndarray:
    p = np.full_like(x, coef[-1])
    for c in reversed(coef[:-1]):
        p *= x
        p += c
    return p


def _exp_reduce(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(tiny, k, r_lo, r_hi)``: ``x = k ln2 + r`` with ``r`` in ``[r_lo, r_hi]`` (see module doc)."""
    x = np.asarray(x, dtype=np.float64)
    if np.any(x > 709.0) or not np.all(np.isfinite(x)):
        raise ValueError("exp_enclose needs finite x <= 709")
    tiny = x < -746.0  # exp(x) < 2^-1074: enclosed by [0, 2^-1074]
    x = np.where(tiny, 0.0, x)
    k = np.floor(x * (1.0 / _LN2))
    r = (x - k * _LN2_HEAD) - k * _LN2_TAIL
    err = 4.0 * U * (np.abs(x) + np.abs(k) + 1.0)
    r_lo, r_hi = _dn(r - err), _up(r + err)
    if np.any(r_hi >= 0.7):
        raise ValueError("exp_enclose: argument reduction out of range")
    return tiny, k, r_lo, r_hi


_G_EXP = 60.0 * U  # relative rounding error of the positive Horner sum (< gamma_52)


def exp_lower(x: np.ndarray) -> np.ndarray:
    """A lower bound on ``exp(x)`` (float array, entries ``<= 709``)."""
    tiny, k, r_lo, _ = _exp_reduce(x)
    lo = np.where(r_lo >= 0, _horner_pos(_EXP_COEF, np.maximum(r_lo, 0.0)) * (1.0 - 2 * _G_EXP),
                  _dn(1.0 + np.minimum(r_lo, 0.0)))
    lo = np.maximum(_dn(np.ldexp(_dn(lo), k.astype(np.int64))), 0.0)
    return np.where(tiny, 0.0, lo)


def exp_upper(x: np.ndarray) -> np.ndarray:
    """An upper bound on ``exp(x)`` (float array, entries ``<= 709``)."""
    tiny, k, _, r_hi = _exp_reduce(x)
    hi = np.where(r_hi > 0, _horner_pos(_EXP_COEF, np.maximum(r_hi, 0.0)) * (1.0 + 2 * _G_EXP) + 1e-18, 1.0)
    hi = _up(np.ldexp(_up(hi), k.astype(np.int64)))
    return np.where(tiny, 5e-324, hi)


def exp_enclose(x: np.ndarray) -> Interval:
    """Enclosure of ``exp(x)`` for a float array ``x`` (each entry ``<= 709``)."""
    return exp_lower(x), exp_upper(x)


def log_enclose(x: np.ndarray) -> Interval:
    """Enclosure of ``log(x)`` for a float array ``x > 0`` (finite)."""
    x = np.asarray(x, dtype=np.float64)
    if np.any(x <= 0) or not np.all(np.isfinite(x)):
        raise ValueError("log_enclose needs finite x > 0")
    f, e = np.frexp(x)
    small = f < 0.7071067811865476
    f = np.where(small, 2.0 * f, f)
    e = np.where(small, e - 1, e).astype(np.float64)
    y = (f - 1.0) / (f + 1.0)  # f - 1 exact
    z = y * y
    lf = y * _horner_pos(_LOG_COEF, z)
    eln2 = e * _LN2
    res = eln2 + lf
    err = (64.0 * U + 1e-22) * np.abs(lf) + 2.01 * U * np.abs(eln2) + U * np.abs(res)
    err = _up(1.01 * err + 1e-320)
    return _dn(res - err), _up(res + err)


def ilog(a: Interval) -> Interval:
    """``log`` is increasing: ``[log lo, log hi]`` (``lo > 0``)."""
    return log_enclose(a[0])[0], log_enclose(a[1])[1]


def iexp(a: Interval) -> Interval:
    return exp_lower(a[0]), exp_upper(a[1])


def xlogx_enclose(a: Interval) -> Interval:
    """Enclosure of ``{x log x : lo <= x <= hi}`` for ``0 <= lo <= hi`` (``0 log 0 = 0``)."""
    lo, hi = a
    if np.any(lo < 0):
        raise ValueError("xlogx_enclose needs lo >= 0")

    def at(x: np.ndarray) -> Interval:
        pos = x > 0
        xs = np.where(pos, x, 1.0)
        L = log_enclose(xs)
        v = imul(_point(xs), L)
        return np.where(pos, v[0], 0.0), np.where(pos, v[1], 0.0)

    a_lo, a_hi = at(lo)
    b_lo, b_hi = at(hi)
    out_lo = np.minimum(a_lo, b_lo)
    inside = (lo <= 0.36787944117144245) & (hi >= 0.3678794411714422)
    out_lo = np.where(inside, np.minimum(out_lo, -0.3678794411714424), out_lo)  # < -1/e
    return out_lo, np.maximum(a_hi, b_hi)


# -- the objective ----------------------------------------------------------------------
def objective_enclosure(problem: UFMProblem, W: np.ndarray, H: np.ndarray,
                        b: np.ndarray) -> tuple[float, float]:
    """Enclosure ``[lo, hi]`` of ``F(W, H, b)`` for the float arrays given (exact reals)."""
    design = problem.design
    X, R = matmul_enclose(W, H)  # (K, N)
    Xi = (_dn(_dn(X - R) + b[:, None]), _up(_up(X + R) + b[:, None]))
    mx = X.max(axis=0)  # any real shift: LSE(x) = mx + log sum exp(x - mx)
    E = iexp((_dn(Xi[0] - mx), _up(Xi[1] - mx)))
    lse = iadd(ilog(isum(E, axis=0)), _point(mx))  # (N,)
    Y = design.Y.astype(np.float64)
    xy = isum((Y * Xi[0], Y * Xi[1]), axis=0)  # sum_{k in S_i} x_ik
    m = design.m.astype(np.float64)
    per = isub(imul(_point(m), lse), xy)
    if problem.loss == "pal-normalized":
        per = idiv_pos(per, _point(m))
    elif problem.loss != "pal":
        raise UFMError(f"The rigorous certificate covers the pick-all-label losses, not {problem.loss!r}.")
    L = idiv_pos(isum(per), _point(float(problem.N)))
    total = L
    for lam, A in ((problem.lam_W, W), (problem.lam_H, H)) + (((problem.lam_b, b),) if problem.bias else ()):
        sq = isum((_dn(A * A).clip(0.0), _up(A * A)), axis=None)
        total = iadd(total, imul(_point(0.5 * lam), sq))  # 0.5 * lam is exact
    return float(total[0]), float(total[1])


# -- the dual bound -----------------------------------------------------------------------
def _gram_enclose(M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(A, R)``: an exactly symmetric float ``A`` and ``R`` with ``|A - M M^T| <= R``.

    The inner dimension is cut into chunks of ``_BLOCK`` columns, each chunk's product
    bounded by :func:`matmul_enclose`, and the chunk results summed by :func:`isum`: the
    bound is ``~(_BLOCK + chunks) u |M| |M|^T`` instead of ``n u |M| |M|^T`` (at ``K = 200``,
    ``G = 20100`` that is 36 times tighter)."""
    n = M.shape[1]
    parts = [matmul_enclose(M[:, j:j + _BLOCK], M[:, j:j + _BLOCK].T) for j in range(0, max(n, 1), _BLOCK)]
    lo = np.stack([_dn(C - R) for C, R in parts])
    hi = np.stack([_up(C + R) for C, R in parts])
    lo, hi = isum((lo, hi), axis=0)
    lo, hi = np.minimum(lo, lo.T), np.maximum(hi, hi.T)  # M M^T is symmetric
    A = 0.5 * lo + 0.5 * hi
    A = np.triu(A) + np.triu(A, 1).T  # exactly symmetric
    R = _up(np.maximum(hi - A, A - lo))
    return A, R


def _spectral_upper(M: Interval) -> float:
    """A proven upper bound on ``||A||_2`` for every ``A`` in the interval matrix ``M``."""
    Mlo, Mhi = M
    Mc = 0.5 * (Mlo + Mhi)
    Mr = _up(np.maximum(Mhi - Mc, Mc - Mlo))
    rad = float(isqrt(isum(_point(_up(Mr * Mr))))[1])  # ||Mr||_F
    A, RA = _gram_enclose(Mc if Mc.shape[0] <= Mc.shape[1] else Mc.T)

    def fro_up(Z: np.ndarray) -> float:
        return float(isqrt(isum(_point(_up(Z * Z))))[1])

    lam, V = np.linalg.eigh(A)
    k = A.shape[0]
    VtV, RV = matmul_enclose(V.T, V)
    dev = np.abs(VtV - np.eye(k))
    vnorm2 = _up(1.0 + _up(fro_up(_up(dev + _up(U * dev))) + fro_up(RV)))  # ||V||_2^2
    VL = V * lam
    Y, RY = matmul_enclose(VL, V.T)
    RY = _up(RY + _up(2.0 * U * (np.abs(VL) @ np.abs(V.T))))  # rounding of V * lam
    Dm = A - Y
    E = _up(fro_up(_up(np.abs(Dm) * (1.0 + 2 * U))) + fro_up(RY))  # ||A - V diag(lam) V^T||_F
    lmax = _up(_up(max(float(lam.max()), 0.0) * vnorm2) + _up(E + fro_up(RA)))
    return float(_up(_up(math.sqrt(lmax)) + rad))


def direction_enclosure(problem: UFMProblem, Dir: np.ndarray, c: Interval) -> Interval:
    """The direction :func:`dual_lower` certifies, enclosed entry by entry: ``Dir`` (K, G) with
    each column's sum removed from its largest entry of ``y/m + Dir`` (so that every ``q =
    y/m + t Dir`` sums to 1 exactly) and, with a free bias and ``lam_b = 0``, ``Gamma 1 =
    sum_S c_S Dir_S`` removed as ``r / sum_S c_S`` from every column. ``c`` encloses
    ``c_S``. Without the free-bias shift the entries not corrected are exact points."""
    m = problem.design.group_multiplicity.astype(np.float64)
    Yg = problem.design.Yg.astype(np.float64)
    col = isum(_point(Dir), axis=0)  # (G,)
    jstar = np.argmax(Yg / m + Dir, axis=0)
    onehot = np.zeros_like(Dir)
    onehot[jstar, np.arange(Dir.shape[1])] = 1.0
    Dl = np.where(onehot > 0, _dn(Dir - onehot * col[1]), Dir)
    Dh = np.where(onehot > 0, _up(Dir - onehot * col[0]), Dir)
    Dv: Interval = (Dl, Dh)
    if problem.bias and problem.lam_b == 0:
        r = isum(imul(Dv, irow(c)), axis=1)  # (K,)
        Dv = isub(Dv, icol(idiv_pos(r, isum(c))))
    return Dv


def dual_lower(problem: UFMProblem, Dir: np.ndarray, t: float) -> tuple[float, float, bool]:
    """A proven lower bound on ``min F`` from the float dual direction ``Dir`` (K, G).

    Returns ``(D_lo, t_used, feasible)``: ``feasible`` is False when ``q >= 0`` could not be
    proved for any ``t > 0`` (then ``D_lo`` is the bound at ``Gamma = 0``).
    """
    design = problem.design
    n = design.group_counts.astype(np.float64)
    m = design.group_multiplicity.astype(np.float64)
    N = float(problem.N)
    Yg = design.Yg.astype(np.float64)
    # c_S = n_S w_S m_S / N: n m / N (PAL) or n / N (normalised)
    num = n * m if problem.loss == "pal" else n
    c = idiv_pos(_point(num), _point(N))
    inv_m = idiv_pos(_point(np.ones_like(m)), _point(m))
    base = (Yg * inv_m[0], Yg * inv_m[1])  # y_S / m_S
    # Gamma = 0: D(0) = -sum_S c_S sum_j base log base = sum_S c_S log m_S
    D0 = isum(imul(c, ilog(_point(m))))
    Dir = np.asarray(Dir, dtype=np.float64)
    if t <= 0 or not np.any(Dir) or not np.all(np.isfinite(Dir)):
        return float(D0[0]), 0.0, True
    Dv = direction_enclosure(problem, Dir, c)
    # ||Gamma||_2 at t = 1: Gamma_g D^{1/2} = Dir_S c_S / sqrt(n_S)
    scale = idiv_pos(c, isqrt(_point(n)))
    s_up = _spectral_upper(imul(Dv, irow(scale)))
    mu_lo = float(_dn(math.sqrt(float(_dn(problem.lam_W * problem.lam_H)))))
    t_r = min(float(t), float(_dn(mu_lo / s_up))) if s_up > 0 else float(t)
    neg = Dv[0] < 0  # q = base + t Dir >= 0 needs t <= base_lo / (-Dir_lo) there
    if np.any(neg):
        with np.errstate(divide="ignore"):
            cap = _dn(base[0][neg] / -Dv[0][neg])
        t_r = min(t_r, float(np.min(cap)))
    if not t_r > 0:
        return float(D0[0]), 0.0, False
    tt = _point(t_r)
    q = iadd(base, imul(tt, Dv))
    q = inonneg(q)  # proved >= 0 by the cap on t
    H = isum(imul(c, isum(xlogx_enclose(q), axis=0)))  # sum_S c_S sum_j q log q
    D = (-H[1], -H[0])
    if problem.bias and problem.lam_b > 0:  # - t^2 ||sum_S c_S Dir_S||^2 / (2 lam_b)
        g1 = isum(imul(Dv, irow(c)), axis=1)
        sq = inonneg(imul(g1, g1))
        pen = idiv_pos(imul(imul(tt, tt), isum(sq)), _point(2.0 * problem.lam_b))
        D = isub(D, pen)
    lower = max(float(D[0]), float(D0[0]))
    return lower, t_r, True


@dataclass(frozen=True)
class RigorousCertificate(Certificate):
    """A :class:`Certificate` whose bracket is proved: ``lower_bound <= min F <= objective``.

    ``lower_bound`` is a proven lower bound on ``min F`` (and ``min C``); ``objective`` a
    proven upper bound on ``F`` at the candidate (so on ``min F``); ``gap`` and ``rel_gap``
    are rounded up. Extra attributes: ``objective_lower`` (proven lower end of ``F`` at the
    candidate), the float certificate's ``float_lower_bound`` and ``float_objective``,
    ``feasible`` (False: the dual point could not be proved feasible, only ``D(0)`` is
    certified), and ``seconds``.
    """

    objective_lower: float = float("nan")
    float_lower_bound: float = float("nan")
    float_objective: float = float("nan")
    feasible: bool = True
    seconds: float = 0.0
    rigorous: bool = True


def certify_rigorous(problem: UFMProblem, W: np.ndarray, H: np.ndarray,
                     b: np.ndarray | None = None) -> RigorousCertificate:
    """The certificate of :func:`ufm.certificate.certify`, with a proved bracket.

    Same inputs and errors as :func:`ufm.certificate.certify` (PAL and normalised PAL).
    """
    t0 = time.perf_counter()
    _group_weights(problem)
    W = np.asarray(W, dtype=np.float64)
    H = np.asarray(H, dtype=np.float64)
    b = np.zeros(problem.K) if (b is None or not problem.bias) else np.asarray(b, dtype=np.float64)
    _check_shapes(problem, W, H, b)
    for name, arr in (("W", W), ("H", H), ("b", b)):
        if not np.all(np.isfinite(arr)):
            raise UFMError(f"'{name}' contains non-finite values; no bound can be certified.")
    X = W @ H
    X += b[:, None]
    L, Pbar = loss_and_group_softmax(problem, X)
    F = (L + 0.5 * problem.lam_W * float(np.vdot(W, W)) + 0.5 * problem.lam_H * float(np.vdot(H, H))
         + (0.5 * problem.lam_b * float(b @ b) if problem.bias else 0.0))
    D_float, t, Dir = dual_point(problem, Pbar)
    lower, t_r, feasible = dual_lower(problem, Dir, t)
    F_lo, F_hi = objective_enclosure(problem, W, H, b)
    gap = float(_up(F_hi - lower))
    denom = min(abs(F_lo), abs(F_hi)) if F_lo * F_hi > 0 else 0.0
    rel = float(_up(gap / max(denom, 1e-300)))
    return RigorousCertificate(
        lower_bound=lower, objective=F_hi, gap=gap, rel_gap=rel, t=t_r, objective_lower=F_lo,
        float_lower_bound=D_float, float_objective=F, feasible=feasible,
        seconds=time.perf_counter() - t0)


__all__ = ["RigorousCertificate", "certify_rigorous", "direction_enclosure", "dual_lower", "exp_enclose", "log_enclose",
           "matmul_enclose", "objective_enclosure", "xlogx_enclose"]
