r"""The exact reduction of ``F`` to one feature column per label set (``group=True``).

**Lemma.** Let ``lam_H > 0``. At every critical point of ``F`` (docs/theory.md section 2), samples
with the same label set have the same feature vector.

*Proof.* For fixed ``(W, b)`` the terms of ``F`` in one column ``h_i`` are
``phi_S(h) = ell(W h + b; S) / N + lam_H/2 |h|^2`` with ``S`` the sample's label set: the
loss depends on the sample only through ``S`` (PAL, normalised PAL and BCE all do), and
``phi_S`` is ``lam_H``-strongly convex (a convex function of an affine map plus the ridge).
A critical point of ``F`` has ``grad phi_S(h_i) = 0``, and a strongly convex function has
one critical point, so ``h_i`` depends only on ``(W, b, S)``. QED.

So the critical points of ``F`` lie in the subspace ``V`` where ``h_i = h_S`` within each
set. ``V`` is invariant under the gradient (at a point of ``V`` the columns of
``grad_H F`` of one set are equal: same ``h``, same ``S``), hence the critical points of
``F`` restricted to ``V`` are exactly the critical points of ``F``, with the same values.
Moreover the Hessian at a point of ``V`` is block diagonal between ``V`` and its complement
(within-set differences ``delta_i`` with ``sum_{i in S} delta_i = 0``: every mixed term
sums ``delta_i`` over a set against a factor equal for the set), and on the complement it
is ``sum_i delta_i^T (W^T A_S W / N + lam_H I) delta_i > 0``. So local minimisers and
saddles of the restriction are those of ``F`` (indices preserved), the global minimum
is the same, and the restriction is an exact problem with ``G`` columns instead of ``N``.
This is proved for any design and any weights; nothing of the theorem (ETF, tag-wise
average, values) is assumed. Its consequence, within-set collapse at every critical
point, is a claim ``ufm verify`` checks -- so the verification runs on the full problem,
and ``group=True`` is a solver option for speed.

**Width.** Let ``r = min(K, G) < w < d``. Two further facts make the solver's problem
smaller, again for any design, loss and weights:

1. *Invariance.* For an orthonormal ``Q`` (d, w), the points ``W = W' Q^T``, ``H = Q H'``
   form a subspace the gradient maps into itself (``grad_W = G_Z H'^T Q^T + lam_W W' Q^T``,
   ``grad_H = Q (W'^T G_Z + lam_H H')``), so the restriction's critical points are
   critical points of ``F``, with the same values, and ``Q`` is an isometry.
2. *Its local minima are global.* At a critical point ``lam_W W^T W = lam_H H H^T``
   (subtract ``(grad_H F) H^T`` from ``W^T grad_W F``), so ``W`` and ``H^T`` share their null
   space; in ``w`` dimensions ``W'`` has rank at most ``r < w``, so there is a unit
   ``v`` with ``W' v = 0`` and ``H'^T v = 0``. Moving ``(W', H')`` along ``(eps a v^T,
   eps v c^T)`` changes the logits by ``eps^2 a c^T`` only, so at a local minimum
   ``<grad l(M), a c^T> + (lam_W |a|^2 + lam_H |c|^2)/2 >= 0`` for all ``a, c``, with
   ``l(M)`` the loss as a (convex) function of ``M = W' H'``: the spectral norm of
   ``grad l(M)`` is at most ``mu = sqrt(lam_W lam_H)``. With the first-order conditions this
   is the optimality condition of the convex ``min_{M, b} l(M) + mu ||M||_* + ridge(b)``,
   which is the relaxation ``C`` on grouped logits (``M = Z_g D^{1/2}``, docs/theory.md
   section 5) whose minimum is ``min F``: a local minimum of the restriction is a global
   minimum of ``F`` (the Burer-Monteiro argument for factorised problems).

So ``group=True`` also solves in ``w = r + 1 + ceil(r / 4)`` dimensions when that is at most
``3 d / 4`` (:func:`solver_width` says why that many and when; :func:`width_basis` picks ``Q`` so that the start
keeps its logits and loses ridge only) and returns the embedded point: each evaluation
costs ``w / d`` of the matrix products -- 14 of 512 dimensions for ``K = 10``. The
certificate of the returned point checks the conclusion.

Coordinates: ``z = (W, Ht, b)`` with ``Ht`` (d, G) and ``h_S = Ht[:, S] / sqrt(n_S)``, an
isometry onto ``V`` (``|x| = |z|`` for ``x = embed(z)``), so the restricted gradient has
the norm of the full one, the ridge on ``Ht`` is ``lam_H/2 |Ht|^2`` and a solver's
tolerances mean the same on both. ``restrict`` is the orthogonal projection onto ``V``
(set means, scaled by ``sqrt(n_S)``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import expit

from ..losses import log_softmax_parts, pal_inplace
from ..problem import UFMProblem
from .full import SMALL, Packed
from .layout import numpy_namespace, unpack


class GroupedObjective:
    """``F`` restricted to the collapsed subspace (in ``basis``'s span when given): an
    :class:`~ufm.objectives.protocol.Objective` on packed ``z = (W, Ht, b)``; ``to_x`` embeds,
    ``to_y`` restricts (the orthogonal projection). ``fg(z, out=g)`` is ``fg.value_and_grad(z, out=g)``.
    """

    euclidean = True  # |grad_z| = |grad F| at the embedded point
    identity = False

    def __init__(self, problem: UFMProblem, basis: np.ndarray | None = None, dtype: type = np.float64) -> None:
        self.problem = problem
        self.dtype = np.dtype(dtype)  # float32: the bulk of a mixed-precision solve (ufm.solvers.mixed)
        design = problem.design
        if basis is not None and (basis.ndim != 2 or basis.shape[0] != problem.d
                                  or basis.shape[1] > problem.d):
            raise ValueError(f"basis must be (d, w) with w <= d = {problem.d}; got shape {basis.shape}")
        self.basis = basis  # Q (d, w): the solver's classifier and features are W' Q^T, Q H' (see the module)
        K, G, N = problem.K, design.G, problem.N
        d = problem.d if basis is None else basis.shape[1]  # the width the solver works in
        self.K, self.d, self.G, self.N = K, d, G, N
        self.n_vars = K * d + d * G + (K if problem.bias else 0)
        n = design.group_counts.astype(np.float64)
        self.r = 1.0 / np.sqrt(n)  # h_S = Ht[:, S] * r_S
        self.starts = _set_starts(problem)
        mg = design.group_multiplicity.astype(np.float64)
        rows, cols = np.nonzero(design.Yg)  # row-major order: ascending flat positions
        self.y_flat = rows * G + cols
        # pal_inplace averages over the columns it sees (G): weights carry n_S G / N
        c = n * (G / N)
        self.y_weight: np.ndarray | None
        if problem.loss == "pal":
            self.col_weight, self.y_weight = c * mg, c[cols]
        elif problem.loss == "pal-normalized":
            self.col_weight, self.y_weight = c, c[cols] / mg[cols]
        else:  # bce
            self.col_weight, self.y_weight = n, None
        # the gradient in the logits comes out times r (its weights carry r): then
        # grad_W = G' Ht^T, grad_Ht = W^T G' and grad_b = G' sqrt(n), with G' = (dL/dZ) diag(r)
        self.grad_col_weight = self.col_weight * self.r / (N if self.y_weight is None else G)
        self.grad_y_weight = None if self.y_weight is None else self.y_weight * self.r[cols] / G
        self.sqrt_n = np.sqrt(n)
        self.Yg = design.Yg
        if self.dtype != np.float64:  # the arrays the evaluation multiplies with, in its precision
            self.r, self.sqrt_n = self.r.astype(self.dtype), self.sqrt_n.astype(self.dtype)
        self.work = np.empty((K, G), dtype=self.dtype)
        self.HG = np.empty((d, G), dtype=self.dtype)
        self.nfev = 0
        self.h = slice(K * d, K * d + d * G)
        D = problem.d
        self.h_full = slice(K * D, K * D + D * N)
        self.counts = design.group_counts
        self.packed = Packed(problem, G, d) if self.n_vars < SMALL and self.dtype == np.float64 else None
        self.packed_x = Packed(problem, N) if self.packed is not None and basis is None else None
        self.emb = np.empty((d, G))

    # -- coordinates -----------------------------------------------------------------
    def to_x(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The full packed point ``x = embed(z)`` (each set's column repeated)."""
        x = np.empty(self.problem.n_vars) if out is None else out
        if self.basis is not None:
            return self._to_x_rotated(z, x)
        if self.packed is not None and self.packed_x is not None:  # small: cached block views
            W, Ht, b, _ = self.packed.split(z, out is not None)
            XW, XH, xb, _ = self.packed_x.split(x, out is not None)
            np.copyto(XW, W)
            np.copyto(XH, np.multiply(Ht, self.r, out=self.emb).repeat(self.counts, axis=1))
            np.copyto(xb, b)
            return x
        kd, hx = self.K * self.d, self.h_full
        x[:kd] = z[:kd]
        Ht = z[self.h].reshape(self.d, self.G)
        _spread(np.multiply(Ht, self.r, out=self.emb), self.problem, x[hx].reshape(self.d, self.N))
        x[hx.stop :] = z[self.h.stop :]
        return x

    def _to_x_rotated(self, z: np.ndarray, x: np.ndarray) -> np.ndarray:
        """``to_x`` with a basis: ``W = W' Q^T``, ``H = Q Ht' diag(r)`` repeated per set."""
        Q, K, w, D, N, kd = self.basis, self.K, self.d, self.problem.d, self.N, self.K * self.d
        assert Q is not None
        np.matmul(z[:kd].reshape(K, w), Q.T, out=x[: K * D].reshape(K, D))
        Hs = Q @ np.multiply(z[self.h].reshape(w, self.G), self.r, out=self.emb)
        _spread(Hs, self.problem, x[self.h_full].reshape(D, N))
        x[self.h_full.stop :] = z[self.h.stop :]
        return x

    grad_to_x = to_x  # the full gradient at embed(z) is embed(grad_z) (same column scaling)

    def to_y(self, x: np.ndarray) -> np.ndarray:
        """``z`` of the orthogonal projection of ``x`` onto the collapsed subspace."""
        z = np.empty(self.n_vars)
        kd, D, Q = self.K * self.d, self.problem.d, self.basis
        H = x[self.h_full].reshape(D, self.N)
        sums = np.add.reduceat(H, self.starts, axis=1)  # (D, G): column sums per set
        sums *= self.r
        if Q is None:
            z[:kd] = x[:kd]
            z[self.h] = sums.ravel()
        else:
            np.matmul(x[: self.K * D].reshape(self.K, D), Q, out=z[:kd].reshape(self.K, self.d))
            np.matmul(Q.T, sums, out=z[self.h].reshape(self.d, self.G))
        z[self.h.stop :] = x[self.h_full.stop :]
        return z

    def grad_norm(self, g: np.ndarray) -> float:
        return float(np.linalg.norm(g))

    @property
    def size(self) -> int:
        return self.n_vars

    @property
    def xp(self) -> Any:
        """numpy, as an array API namespace (for the engines written against the standard)."""
        return numpy_namespace()

    def embed(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        W, H, b = unpack(self.to_x(z), self.problem)
        return W, H, b

    # -- value and gradient ----------------------------------------------------------
    def value_and_grad(self, z: np.ndarray, out: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        self.nfev += 1
        p, pk = self.problem, self.packed
        g = np.empty(self.n_vars, dtype=self.dtype) if out is None else out
        if pk is not None:
            cache = out is not None  # a caller passing `out` reuses its buffers
            W, Ht, b, _ = pk.split(z, cache)
            dW, dH, db, _ = pk.split(g, cache)
        else:
            kd = self.K * self.d
            W, Ht, b = z[:kd].reshape(self.K, self.d), z[self.h].reshape(self.d, self.G), z[self.h.stop :]
            dW, dH, db = g[:kd].reshape(self.K, self.d), g[self.h].reshape(self.d, self.G), g[self.h.stop :]
        HG = np.multiply(Ht, self.r, out=self.HG)
        Z = np.matmul(W, HG, out=self.work)
        if p.bias:
            Z += b[:, None]
        if self.y_weight is not None:  # Z now holds G' = (dL/dZ) diag(r)
            L = pal_inplace(Z, self.y_flat, self.col_weight, self.y_weight,
                            grad_col_weight=self.grad_col_weight, grad_y_weight=self.grad_y_weight)
        else:
            Yg = self.Yg
            L = float((np.logaddexp(0.0, Z).sum(axis=0) - (Yg * Z).sum(axis=0)) @ self.col_weight) / self.N
            Z[...] = (expit(Z) - Yg) * self.grad_col_weight
        np.matmul(Ht, Z.T, out=dW.T)
        np.matmul(W.T, Z, out=dH)
        if p.bias:
            np.matmul(Z, self.sqrt_n, out=db)
        if pk is not None:
            return L + pk.ridge(z, g), g
        dW += p.lam_W * W
        dH += p.lam_H * Ht
        F = L + 0.5 * (p.lam_W * float(np.vdot(W, W)) + p.lam_H * float(np.vdot(Ht, Ht)))
        if p.bias:
            db += p.lam_b * b
            F += 0.5 * p.lam_b * float(np.vdot(b, b))
        return F, g


    # -- Hessian ---------------------------------------------------------------------
    def hessian_operator(self, z: np.ndarray, dtype: Any = None) -> Callable[[np.ndarray], np.ndarray]:
        r"""``v -> nabla^2 f(z) v`` for ``f(z) = F(embed(z))``: exact, ``embed^T nabla^2 F embed``.

        ``dtype`` float32 (default: the objective's): the products in float32 -- the pieces that
        depend on ``z`` are computed in float64 and rounded once, ``v`` is rounded, the result is
        float64 -- about half the time of the six matrix products, for Newton-CG steps whose
        linear solves are inexact anyway (a relative error ~1e-7 |H| |v| per product).

        With ``Hs = Ht diag(r)``, ``Z = W Hs + b 1^T`` and ``G_Z = dL/dZ`` (column ``S``
        weighted ``n_S / N``): ``dZ = V_W Hs + W V_Ht diag(r) + v_b 1^T``, ``dG_Z`` the loss
        Hessian along ``dZ`` (per column ``n_S/N`` times ``m_S (diag p - p p^T)`` for PAL,
        ``diag p - p p^T`` for normalised PAL, ``diag sigma'`` for BCE), and with
        ``G' = G_Z diag(r)``, ``dG' = dG_Z diag(r)``:
        ``(dG' Ht^T + G' V_Ht^T + lam_W V_W, W^T dG' + V_W^T G' + lam_H V_Ht, dG_Z 1 + lam_b v_b)``.
        What depends on ``z`` alone (softmax, ``G'``) is computed once; each product then
        costs six matrix products on ``G`` columns.
        """
        p = self.problem
        K, d, G, N = self.K, self.d, self.G, self.N
        kd, h = K * d, self.h
        W, Ht, b = z[:kd].reshape(K, d), z[h].reshape(d, G), z[h.stop :]
        r = self.r
        Hs = Ht * r
        Z = W @ Hs
        if p.bias:
            Z += b[:, None]
        n = self.counts.astype(np.float64)
        Yg = self.Yg
        curv: np.ndarray | None = None
        P: np.ndarray | None = None
        if p.loss == "bce":
            S = expit(Z)
            colw = n / N
            curv = S * (1.0 - S) * colw
            Gz = (S - Yg) * colw
        else:
            _, P = log_softmax_parts(Z)
            m = self.problem.design.group_multiplicity.astype(np.float64)
            colw = n * m / N if p.loss == "pal" else n / N
            Gz = P * colw - Yg * (n / N if p.loss == "pal" else n / (N * m))
        Gp = Gz * r
        colw_r = colw * r  # dG' = (loss Hessian along dZ) diag(r): the weights folded together
        curv_r = curv * r if curv is not None else None
        sqrt_n = self.sqrt_n  # hb = dG_Z 1 = dG' sqrt(n)
        lo = self.dtype if dtype is None else np.dtype(dtype)
        rounded = lo != np.float64  # float32: v in and the product out through float32 buffers
        if rounded:  # the z-dependent pieces (computed in float64 where their weights are), rounded once
            W, Ht, Hs, Gp, r, colw_r, sqrt_n = (np.asarray(a, dtype=lo) for a in (W, Ht, Hs, Gp, r, colw_r, sqrt_n))
            P = None if P is None else P.astype(lo)
            curv_r = None if curv_r is None else curv_r.astype(lo)
        bZ, bG, bT, bW = (np.empty((K, G), dtype=lo), np.empty((K, G), dtype=lo), np.empty((d, G), dtype=lo),
                          np.empty((K, d), dtype=lo))
        colsum = np.empty(G, dtype=lo)
        vlo = np.empty(self.n_vars, dtype=lo) if rounded else None

        def apply(v: np.ndarray) -> np.ndarray:
            # no (K, G) or (d, G) temporaries: fresh ones cost page faults (3.1 -> 1.85 ms at M).
            # (dgemm accumulating onto Fortran views saved 0.2 ms at M but cost 150 ms at L.)
            if vlo is not None:
                np.copyto(vlo, v)
                v = vlo
            VW, VHt, vb = v[:kd].reshape(K, d), v[h].reshape(d, G), v[h.stop :]
            dZ = np.matmul(VW, Hs, out=bZ)
            # dZ = V_W Hs + W V_Ht diag(r)
            dZ += np.matmul(W, np.multiply(VHt, r, out=bT), out=bG)
            if p.bias:
                dZ += vb[:, None]
            if curv_r is not None:
                dGp = np.multiply(dZ, curv_r, out=dZ)
            else:
                assert P is not None  # (diag p - p p^T) dz = p * (dz - p'dz), per column
                np.einsum("ij,ij->j", P, dZ, out=colsum)
                dZ -= colsum
                dZ *= P
                dZ *= colw_r
                dGp = dZ
            out = np.empty(self.n_vars, dtype=lo)
            hW, hH, hb = out[:kd].reshape(K, d), out[h].reshape(d, G), out[h.stop :]
            np.matmul(dGp, Ht.T, out=hW)
            hW += np.matmul(Gp, VHt.T, out=bW)
            hW += p.lam_W * VW
            np.matmul(W.T, dGp, out=hH)
            hH += np.matmul(VW.T, Gp, out=bT)
            hH += np.multiply(VHt, p.lam_H, out=bT)
            if p.bias:
                np.matmul(dGp, sqrt_n, out=hb)
                hb += p.lam_b * vb
            return out.astype(np.float64) if rounded else out

        return apply


def _set_starts(problem: UFMProblem) -> np.ndarray:
    """The first sample of each label set (sets are contiguous): ``reduceat`` offsets."""
    return np.asarray([sl.start for sl in problem.design.group_slices], dtype=np.intp)


def _spread(Hs: np.ndarray, problem: UFMProblem, out: np.ndarray) -> np.ndarray:
    """Each set's column of ``Hs`` (d, G) into the columns of its samples, ``out`` (d, N): one
    pass, no (d, N) temporary (``np.repeat`` and a copy took twice as long at N = 50,450)."""
    return np.take(Hs, problem.design.group_index, axis=1, out=out, mode="clip")  # indices valid: no buffer


def solver_width(problem: UFMProblem) -> int:
    """The width the grouped solver works in: ``w = r + 1 + ceil(r / 4)``, ``r = min(K, G)``,
    when that is at most ``3 d / 4``; else ``d`` itself.

    Any ``w > r`` keeps every local minimum global (the module docstring); the extra quarter
    is for speed: the narrowest width costs L-BFGS iterations. A reduction saving less than a
    quarter of the products does not pay for the rotations at the start and the end: at the
    bench's L (K = 200, d = 256, w = 251), seeds 1 and 2, 38.9 and 41.7 s with it against 35.6
    and 40.3 s without (the same evaluations, six more Hessian products). Default solves, medians over
    seeds (evaluations, time): K = 50 (profile 1:10,2:1) at d = 51, 56, 64, 80, 100: 147,
    123, 109, 108, 92 evaluations, 0.32, 0.29, 0.29, 0.34, 0.38 s; K = 100 (1:4,2:1) at
    d = 101, 126, 151, 200: 141, 103, 91, 90 evaluations, 8.6, 7.1, 7.0, 9.3 s; K = 20
    (1:10,2:2) at d = 21, 26, 31, 41, 64: 0.023, 0.023, 0.024, 0.025, 0.032 s."""
    r = min(problem.K, problem.design.G)
    w = r + 1 + -(-r // 4)
    return w if 4 * w <= 3 * problem.d else problem.d


def width_basis(problem: UFMProblem, x: np.ndarray) -> np.ndarray | None:
    """An orthonormal ``Q`` (d, w), ``w`` = :func:`solver_width`, for the start ``x`` (packed,
    full space), or None when ``w = d`` (no reduction).

    ``Q``'s span contains the row space of ``W`` when ``K <= G`` (else the span of the
    per-set feature sums), plus ``w - r`` directions of the other factor, so the projected start
    ``(W Q, Q^T H)`` has the same logits ``W H`` (after the within-set means) and no more
    ridge: ``F`` does not rise. Householder QR: orthonormal columns even when the start is
    degenerate (zero, rank-deficient)."""
    K, D, w = problem.K, problem.d, solver_width(problem)
    if w >= D:
        return None
    W = x[: K * D].reshape(K, D)
    H = x[K * D : K * D + D * problem.N].reshape(D, problem.N)
    sums = np.add.reduceat(H, _set_starts(problem), axis=1)  # (D, G): the span of the within-set means
    kept, other = (W.T, sums) if K <= problem.design.G else (sums, W.T)
    e = w - kept.shape[1]  # any completion would do; sums of strided columns keep some of the other factor
    S = np.zeros((other.shape[1], e))
    S[np.arange(other.shape[1]), np.arange(other.shape[1]) % e] = 1.0
    Q, _ = np.linalg.qr(np.hstack([kept, other @ S]))
    return np.ascontiguousarray(Q)


def random_start(problem: UFMProblem, *, scale: float, rng: np.random.Generator) -> np.ndarray:
    """The grouped solver's random start, embedded (packed, full space): ``W``, ``b`` and each
    set's feature ``h_S`` Gaussian, the entries of ``W`` and ``b`` of standard deviation
    ``scale / sqrt(d)`` and those of ``h_S`` of ``scale / sqrt(d n_S)``.

    That is the distribution of the within-set means of :func:`ufm.objectives.layout.random_point`
    (the full draw the solver would project), drawn with ``K d + d G + K`` numbers instead of
    ``K d + d N + K``: at ``d = 512`` and ``N = 5450`` the full draw took half of a default solve."""
    K, D, G, N = problem.K, problem.d, problem.design.G, problem.N
    s = scale / np.sqrt(D)
    nb = K if problem.bias else 0
    z = rng.standard_normal(K * D + D * G + nb) * s
    x = np.empty(problem.n_vars)
    x[: K * D] = z[: K * D]
    Hs = z[K * D : K * D + D * G].reshape(D, G) / np.sqrt(problem.design.group_counts)
    _spread(Hs, problem, x[K * D : K * D + D * N].reshape(D, N))
    x[K * D + D * N :] = z[K * D + D * G :]
    return x
