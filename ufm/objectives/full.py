r"""The objective ``F(W, H, b)`` of :class:`~ufm.problem.UFMProblem`, its gradient, packing
of the variables and a shipped gradient checker.

.. math::

    F(W, H, b) = \frac1N \sum_i \ell(W h_i + b; y_i) + \frac{\lambda_W}2\|W\|_F^2
        + \frac{\lambda_H}2\|H\|_F^2 + \frac{\lambda_b}2\|b\|^2

With ``Z = W H + b 1^T`` and ``G = dL/dZ`` (see :mod:`ufm.losses`):
``dF/dW = G H^T + lam_W W``, ``dF/dH = W^T G + lam_H H``, ``dF/db = G 1 + lam_b b``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import numpy as np
from scipy.linalg.blas import dgemm

from ..designs import LabelDesign, as_rng
from ..exceptions import UFMError
from ..losses import LOSS_FUNCTIONS, hvp_logits, log_softmax_parts, pal_inplace, softmax_hvp
from ..problem import UFMProblem
from .layout import _check_shapes, random_point, unpack


def logits(W: np.ndarray, H: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``Z = W H + b 1^T``, shape (K, N)."""
    Z = W @ H
    Z += b[:, None]
    return Z


class _LabelIndex:
    """Label positions of a design, for the fast PAL kernel (:func:`ufm.losses.pal_inplace`).

    ``y_flat`` (nnz,): flat row-major positions of the ones of ``Y`` (K, N); ``m`` (N,);
    ``y_over_m`` (nnz,): ``1/m_i`` at each position (for normalised PAL). Built once per
    design (``nnz = sum_i m_i``, far fewer than ``K N``); exact for any design.
    """

    def __init__(self, design: LabelDesign) -> None:
        N = design.N
        rows, cols = [], []
        for S, sl in zip(design.sets, design.group_slices):
            i = np.arange(sl.start, sl.stop, dtype=np.int64)
            for k in S:
                rows.append(np.full(i.size, k, dtype=np.int64))
                cols.append(i)
        r, c = np.concatenate(rows), np.concatenate(cols)
        order = np.argsort(r * N + c, kind="stable")
        self.y_flat = (r * N + c)[order]
        self.m = design.m
        self.ones = np.ones(N)
        self.y_over_m = 1.0 / self.m[c[order]]
        # the kernel's gradient weights, precomputed (c / N, v / N)
        self.m_over_N, self.ones_over_N, self.y_over_mN = self.m / N, self.ones / N, self.y_over_m / N


_INDEX_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _label_index(design: LabelDesign) -> _LabelIndex:
    idx = _INDEX_CACHE.get(design)
    if idx is None:
        idx = _INDEX_CACHE[design] = _LabelIndex(design)
    return idx


def _loss_inplace(problem: UFMProblem, Z: np.ndarray) -> float:
    """Overwrite the logits ``Z`` (K, N) with ``G = dL/dZ`` and return ``L`` (any loss)."""
    if problem.loss == "pal":
        idx = _label_index(problem.design)
        return pal_inplace(Z, idx.y_flat, idx.m, 1.0, grad_col_weight=idx.m_over_N,
                           grad_y_weight=1.0 / Z.shape[1])
    if problem.loss == "pal-normalized":
        idx = _label_index(problem.design)
        return pal_inplace(Z, idx.y_flat, idx.ones, idx.y_over_m, grad_col_weight=idx.ones_over_N,
                           grad_y_weight=idx.y_over_mN)
    design = problem.design
    L, G = LOSS_FUNCTIONS[problem.loss](Z, design.Y, design.m)
    Z[...] = G
    return L


def _grad_W(G: np.ndarray, H: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = G H^T`` (K, d), computed as ``(H G^T)^T``: both operands keep their long
    ``N`` axis contiguous, the layout multithreaded OpenBLAS handles best."""
    np.matmul(H, G.T, out=out.T)
    return out


def _grad_H(W: np.ndarray, G: np.ndarray, lam_H: float, H: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = W^T G + lam_H H`` (d, N) with one BLAS call accumulating onto ``lam_H H``
    (no (d, N) temporary), when the layouts allow; plain numpy otherwise."""
    if out.flags.c_contiguous and G.flags.c_contiguous and out.dtype == np.float64:
        np.multiply(H, lam_H, out=out)
        # Fortran view: out^T (N, d) = G^T (N, K) @ W (K, d) + out^T
        res = dgemm(1.0, G.T, W.T, beta=1.0, c=out.T, trans_b=1, overwrite_c=1)
        if np.shares_memory(res, out):
            return out
    np.matmul(W.T, G, out=out)  # pragma: no cover - unusual layouts only
    out += lam_H * H
    return out


def _value_and_grad_into(
    problem: UFMProblem, W: np.ndarray, H: np.ndarray, b: np.ndarray,
    dW: np.ndarray, dH: np.ndarray, db: np.ndarray | None, Z: np.ndarray | None = None,
) -> float:
    """``F`` with its gradient written into ``dW`` (K, d), ``dH`` (d, N), ``db`` (K,).

    One pass over the ``K x N`` logits (see :func:`ufm.losses.pal_inplace`) and three
    matrix products ``W H``, ``G H^T``, ``W^T G``; ``Z`` (K, N) is an optional workspace.
    """
    if Z is None:
        Z = np.empty((problem.K, problem.N))
    np.matmul(W, H, out=Z)
    if problem.bias:
        Z += b[:, None]
    L = _loss_inplace(problem, Z)  # Z now holds G
    F = (
        L
        + 0.5 * problem.lam_W * float(np.vdot(W, W))
        + 0.5 * problem.lam_H * float(np.vdot(H, H))
        + (0.5 * problem.lam_b * float(np.vdot(b, b)) if problem.bias else 0.0)
    )
    _grad_W(Z, H, dW)
    dW += problem.lam_W * W
    _grad_H(W, Z, problem.lam_H, H, dH)
    if db is not None:
        if problem.bias:
            Z.sum(axis=1, out=db)
            db += problem.lam_b * b
        else:
            db[...] = 0.0
    return F


def value_and_grad(
    problem: UFMProblem, W: np.ndarray, H: np.ndarray, b: np.ndarray | None = None
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """``F`` and its gradient ``(dW, dH, db)`` (``db = 0`` when the model has no bias).

    Parameters
    ----------
    problem : UFMProblem
    W : ndarray, shape (K, d)
    H : ndarray, shape (d, N)
        Columns in the canonical sample order of ``problem.design``.
    b : ndarray, shape (K,), optional
        None, or ignored, without bias.

    Returns
    -------
    F : float
    dW : ndarray, shape (K, d)
    dH : ndarray, shape (d, N)
    db : ndarray, shape (K,)

    Examples
    --------
    >>> import ufm
    >>> p = ufm.UFMProblem(ufm.balanced(3, {1: 1}), d=2, lam_W=1e-2, lam_H=1e-2, lam_b=0)
    >>> F, dW, dH, db = value_and_grad(p, *ufm.predicted_minimizer(p))
    >>> bool(max(abs(dW).max(), abs(dH).max(), abs(db).max()) < 1e-9)    # a critical point
    True
    """
    if b is None or not problem.bias:
        b = np.zeros(problem.K)
    dW = np.empty((problem.K, problem.d))
    dH = np.empty((problem.d, problem.N))
    db = np.empty(problem.K)
    F = _value_and_grad_into(problem, W, H, b, dW, dH, db)
    return float(F), dW, dH, db


def objective(problem: UFMProblem, W: np.ndarray, H: np.ndarray, b: np.ndarray | None = None) -> float:
    """``F(W, H, b)``: averaged loss plus ``lam_W/2 ||W||^2 + lam_H/2 ||H||^2 + lam_b/2 ||b||^2``.

    Definitions: ``docs/theory.md``, section 2 (the feature penalty is summed over samples).

    Parameters
    ----------
    problem : UFMProblem
    W : ndarray, shape (K, d)
    H : ndarray, shape (d, N)
        Columns in the canonical sample order of ``problem.design``.
    b : ndarray, shape (K,), optional
        None, or ignored, without bias.

    Returns
    -------
    float

    Raises
    ------
    UFMError
        An array of the wrong shape.

    Examples
    --------
    >>> import math, numpy as np, ufm
    >>> p = ufm.UFMProblem(ufm.balanced(3, {1: 2}), d=2, lam_W=1e-2, lam_H=1e-2, lam_b=0)
    >>> F0 = objective(p, np.zeros((3, 2)), np.zeros((2, 6)))   # uniform logits: PAL = log K
    >>> math.isclose(F0, math.log(3))
    True
    """
    W, H = np.asarray(W, dtype=np.float64), np.asarray(H, dtype=np.float64)
    b = None if b is None else np.asarray(b, dtype=np.float64)
    _check_shapes(problem, W, H, b)
    return value_and_grad(problem, W, H, b)[0]


def fun_and_grad(
    x: np.ndarray, problem: UFMProblem, *, out: np.ndarray | None = None,
    work: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """``F`` and its gradient on the packed vector (for scipy-style solvers).

    The gradient is written straight into its packed layout: ``out`` (n_vars,) if given
    (returned), else a new array. ``work`` is an optional (K, N) workspace for the logits.
    """
    W, H, b = unpack(x, problem)
    g = np.empty(problem.n_vars) if out is None else out
    dW, dH, db = unpack(g, problem)
    F = _value_and_grad_into(problem, W, H, b, dW, dH, db if problem.bias else None, work)
    return F, g


SMALL = 1 << 16
"""Variables below which an evaluation is dominated by the cost of numpy calls (a few
microseconds each, against arrays of thousands of entries): :class:`Packed` then keeps the
block views of each buffer and computes the ridge as one weighted inner product (three
calls instead of nine; ladder size S: 24.3 -> 20.8 us per grouped evaluation). Above it,
passes over memory cost more than calls, and the per-block ridge (folded into the ``H``
product) makes fewer."""


class Packed:
    """Views ``(W, H, b)`` of packed vectors with ``cols`` feature columns, cached per
    buffer, and the ridge ``sum lam/2 |block|^2`` with its gradient as one weighted inner
    product. For the small-problem paths of :class:`Evaluator` and
    :class:`ufm.objectives.grouped.GroupedObjective`."""

    def __init__(self, problem: UFMProblem, cols: int, d: int | None = None) -> None:
        K, d = problem.K, problem.d if d is None else d  # d: the width of W's rows (a solver's may be smaller)
        self.K, self.d, self.cols, self.kd = K, d, cols, K * d
        self.hend = K * d + d * cols
        nb = K if problem.bias else 0
        self.lam = np.concatenate([np.full(K * d, problem.lam_W), np.full(d * cols, problem.lam_H),
                                   np.full(nb, problem.lam_b)])
        self.buf = np.empty(self.lam.size)
        self._views: dict[int, tuple[np.ndarray, ...]] = {}

    def split(self, v: np.ndarray, cache: bool) -> tuple[np.ndarray, ...]:
        """``(W, H, b, v)``; with ``cache`` the views are kept per buffer (solvers reuse a
        few). A hit needs the very array object, which the cache keeps alive, so an
        address is never mistaken for another array's."""
        views = self._views.get(id(v)) if cache else None
        if views is None or views[3] is not v:
            views = (v[: self.kd].reshape(self.K, self.d), v[self.kd : self.hend].reshape(self.d, self.cols),
                     v[self.hend :], v)
            if cache:
                if len(self._views) >= 8:
                    self._views.clear()
                self._views[id(v)] = views
        return views

    def ridge(self, x: np.ndarray, g: np.ndarray) -> float:
        """``sum lam/2 |block|^2`` at ``x``; its gradient ``lam * x`` is added to ``g``."""
        lam_x = np.multiply(self.lam, x, out=self.buf)
        g += lam_x
        return 0.5 * float(x @ lam_x)


class Evaluator:
    """``F`` and its gradient on packed vectors with a reusable (K, N) workspace.

    ``ev(x)`` returns ``(F, g)`` with a new gradient array; ``ev(x, out=g)`` reuses ``g``.
    One instance per solver run (the workspace is not shared between threads). Below
    :data:`SMALL` variables the same operations go through :class:`Packed` (fewer numpy
    calls); above, through :func:`fun_and_grad`.
    """

    def __init__(self, problem: UFMProblem) -> None:
        self.problem = problem
        self.work = np.empty((problem.K, problem.N))
        self.nfev = 0
        self.packed = Packed(problem, problem.N) if problem.n_vars < SMALL else None

    def __call__(self, x: np.ndarray, out: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        self.nfev += 1
        pk = self.packed
        if pk is None:
            return fun_and_grad(x, self.problem, out=out, work=self.work)
        p = self.problem
        if x.shape != (p.n_vars,):
            raise UFMError(f"x must have shape ({p.n_vars},); got {x.shape}.")
        g = np.empty(p.n_vars) if out is None else out
        cache = out is not None  # a caller passing `out` reuses its buffers
        W, H, b, _ = pk.split(x, cache)
        dW, dH, db, _ = pk.split(g, cache)
        Z = np.matmul(W, H, out=self.work)
        if p.bias:
            Z += b[:, None]
        L = _loss_inplace(p, Z)  # Z now holds G
        _grad_W(Z, H, dW)
        np.matmul(W.T, Z, out=dH)
        if p.bias:
            Z.sum(axis=1, out=db)
        return L + pk.ridge(x, g), g


def hvp(x: np.ndarray, v: np.ndarray, problem: UFMProblem) -> np.ndarray:
    """Exact Hessian-vector product ``nabla^2 F(x) v`` on packed vectors.

    With ``Z = W H + b 1^T``, ``dZ = V_W H + W V_H + v_b 1^T`` and ``dG`` the loss
    Hessian applied to ``dZ`` (:func:`ufm.losses.hvp_logits`):
    ``(dG H^T + G V_H^T + lam_W V_W, V_W^T G + W^T dG + lam_H V_H, dG 1 + lam_b v_b)``.
    """
    return hessian_operator(x, problem)(v)


def hessian_operator(x: np.ndarray, problem: UFMProblem) -> Callable[[np.ndarray], np.ndarray]:
    """``v -> nabla^2 F(x) v`` (:func:`hvp`) with what depends on ``x`` alone (the logits'
    softmax ``P`` and the loss gradient ``G``) computed once: for the many products of one
    Newton-CG step, each then costs six matrix products and no exponential."""
    W, H, b = unpack(x, problem)
    Z = logits(W, H, b)
    P = None
    if problem.loss != "bce":
        _, P = log_softmax_parts(Z)
    Zc = Z.copy() if problem.loss == "bce" else None
    _loss_inplace(problem, Z)
    G = Z  # (K, N) loss gradient
    m = problem.design.m

    def apply(v: np.ndarray) -> np.ndarray:
        VW, VH, vb = unpack(v, problem)
        dZ = VW @ H
        dZ += W @ VH
        if problem.bias:
            dZ += vb[:, None]
        if Zc is not None:  # bce
            dG = hvp_logits(problem.loss, Zc, dZ, m)
        else:
            assert P is not None
            dG = softmax_hvp(P, dZ, m if problem.loss == "pal" else None)
        out = np.empty(problem.n_vars)
        hW, hH, hb = unpack(out, problem)
        _grad_W(dG, H, hW)
        hW += G @ VH.T
        hW += problem.lam_W * VW
        np.matmul(W.T, dG, out=hH)
        hH += VW.T @ G
        hH += problem.lam_H * VH
        if problem.bias:
            dG.sum(axis=1, out=hb)
            hb += problem.lam_b * vb
        return out

    return apply


def check_grad(
    problem: UFMProblem, x: np.ndarray | None = None, *, n_dirs: int = 5, eps: float = 1e-6,
    rng: np.random.Generator | int | None = None,
) -> float:
    """Largest relative error between directional derivatives and central differences.

    Along ``n_dirs`` random unit directions ``v``: ``|<g, v> - (F(x+eps v)-F(x-eps v))/(2 eps)|``
    divided by ``max(|<g, v>|, 1e-8)``. Returns the maximum (about 1e-7 or less when the
    gradient is right).

    Parameters
    ----------
    problem : UFMProblem
    x : ndarray, shape (K*d + d*N + K,), optional
        Packed point ``(W, H, b)``; default: a random point.
    n_dirs : int, default 5
    eps : float, default 1e-6
        Finite-difference step.
    rng : numpy.random.Generator or int, optional

    Returns
    -------
    float

    Examples
    --------
    >>> import ufm
    >>> p = ufm.UFMProblem(ufm.balanced(4, {1: 2, 2: 1}), d=3, lam_W=1e-2, lam_H=1e-2, lam_b=1e-2)
    >>> check_grad(p, rng=0) < 1e-6
    True
    """
    gen = as_rng(rng)
    if x is None:
        x = random_point(problem, rng=gen)
    _, g = fun_and_grad(x, problem)
    worst = 0.0
    for _ in range(n_dirs):
        v = gen.standard_normal(x.size)
        v /= np.linalg.norm(v)
        fp = fun_and_grad(x + eps * v, problem)[0]
        fm = fun_and_grad(x - eps * v, problem)[0]
        fd = (fp - fm) / (2 * eps)
        an = float(g @ v)
        worst = max(worst, abs(fd - an) / max(abs(an), 1e-8))
    return worst


def taylor_slope(
    problem: UFMProblem, x: np.ndarray | None = None, *, rng: np.random.Generator | int | None = None
) -> float:
    """pymanopt-style Taylor check: slope of ``log|F(x+tv) - F(x) - t<g,v>|`` against ``log t``.

    The least-squares slope over seven log-spaced ``t`` from 1e-4 to 1e-1, along one random
    unit direction ``v`` (``x`` default: a random point, from the same generator). A correct
    gradient gives a slope close to 2.
    """
    gen = as_rng(rng)
    if x is None:
        x = random_point(problem, rng=gen)
    f0, g = fun_and_grad(x, problem)
    v = gen.standard_normal(x.size)
    v /= np.linalg.norm(v)
    ts = np.logspace(-4, -1, 7)
    errs = np.array([abs(fun_and_grad(x + t * v, problem)[0] - f0 - t * (g @ v)) for t in ts])
    return float(np.polyfit(np.log(ts), np.log(errs), 1)[0])
