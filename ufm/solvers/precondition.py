r"""A block-diagonal Gauss-Newton preconditioner for L-BFGS (``precondition="gn"``).

With ``Z = W H + b 1^T``, ``P`` the softmax of ``Z`` and ``A_i = m_i (diag p_i - p_i p_i^T)``
the PAL Hessian of sample ``i`` in its logits (``F`` averages over the ``N`` samples), the
Gauss-Newton blocks of the Hessian are approximated by

- ``H``, column by column exactly: ``C_i = W^T A_i W / N + lam_H I`` (d x d, one per sample);
- ``W``: the Kronecker factorisation ``Abar (x) (H H^T / N) + lam_W I`` with
  ``Abar = sum_i A_i / N`` (K x K), inverted through the eigendecompositions of both factors;
- ``b``: ``Abar + lam_b I``.

The inverse of this block-diagonal matrix is symmetric positive definite (eigenvalues
floored), so it is a valid initial inverse Hessian ``H0 = gamma P`` of the L-BFGS two-loop
recursion. Why per column for ``H``: at a PAL optimum the Hessian's large eigenvalues live
in single columns of ``H`` (samples whose softmax is spread over several labels, e.g. the
multiplicity-2 samples), inside ``range(W^T)``; a preconditioner averaging ``A_i`` over the
samples (K-FAC style) misses them and was measured no better than ``gamma I``. Exact for any
design (only ``Z``, ``W``, ``H`` and the multiplicities are used); PAL only (normalised PAL
has ``m_i = 1``). Cost of a refresh: ``N d^3`` (the per-column inverses), of an application
``N d^2``.

Measured (issue #7, ladder size S: balanced(10, 1:20,2:4), d=16, lam=5e-4, seeds 0-7):
evaluations to a certified relative gap 1e-6 drop from 105.5 (numpy engine, ``gamma I``)
to 80.1 on average (seed 0: 92 -> 95), but an application costs about one evaluation
(~40 us) and a refresh ~9 ms (``numpy.linalg.inv`` on the N d x d blocks), so the run is
slower in time (seed 0: 0.26 s vs 0.065 s). At M (balanced(50, 1:10,2:1), d=64, 2 seeds)
evaluations drop from 112 to 64 and a run to the certified target (certificate every
5 iterations, side by side, loaded machine) took 23-24 s vs 26-30 s; a refresh there
costs ~3.5 evaluations (442 ms, the batched inverse), an application ~2% of one. Hence
opt-in, not the default, until the refresh is cheaper and L is measured.
"""

from __future__ import annotations

import numpy as np

from ..objectives import unpack
from ..problem import UFMProblem

_FLOOR = 1e-12  # relative eigenvalue floor (keeps the factors positive definite)


class GNPreconditioner:
    """``refresh(x)`` rebuilds the blocks at the packed point ``x``; ``apply(g, out)`` writes
    ``P g`` into ``out`` (packed layout, same as ``g``)."""

    def __init__(self, problem: UFMProblem) -> None:
        if problem.loss not in ("pal", "pal-normalized"):
            raise ValueError("precondition='gn' supports the PAL losses only")
        self.problem = problem
        K, d, N = problem.K, problem.d, problem.N
        self.nw, self.nh = K * d, d * N
        self.m = problem.design.m.astype(np.float64) if problem.loss == "pal" else np.ones(N)
        # identity until the first refresh
        self.U, self.V, self.DW = np.eye(K), np.eye(d), np.ones((K, d))
        self.Cinv: np.ndarray = np.broadcast_to(np.eye(d), (N, d, d)).copy()
        self.Binv: np.ndarray = np.eye(K)
        self._colbuf = np.empty((N, d, 1))

    def refresh(self, x: np.ndarray) -> None:
        p = self.problem
        K, d, N = p.K, p.d, p.N
        W, H, b = unpack(x, p)
        Pz = W @ H
        if p.bias:
            Pz += b[:, None]
        Pz -= Pz.max(axis=0)
        np.exp(Pz, out=Pz)
        Pz /= Pz.sum(axis=0)
        Pm = Pz * self.m
        Abar = (np.diag(Pm.sum(axis=1)) - Pm @ Pz.T) / N
        Abar = 0.5 * (Abar + Abar.T)
        a, U = np.linalg.eigh(Abar)
        beta, V = np.linalg.eigh(H @ H.T / N)
        a, beta = np.maximum(a, 0.0), np.maximum(beta, 0.0)
        kw = np.outer(a, beta) + p.lam_W
        self.U, self.V = U, V
        self.DW = 1.0 / np.maximum(kw, _FLOOR * max(float(kw.max()), 1.0))
        # per-column H blocks: C_i = (W^T diag(m_i p_i) W - (W^T p_i)(W^T p_i)^T m_i) / N + lam_H I
        WW = (W[:, :, None] * W[:, None, :]).reshape(K, d * d)
        C = (Pm.T @ WW).reshape(N, d, d)
        wp = (Pz.T @ W) * np.sqrt(self.m)[:, None]  # (N, d): sqrt(m_i) W^T p_i
        C -= wp[:, :, None] * wp[:, None, :]
        C /= N
        C += p.lam_H * np.eye(d)  # SPD: lam_H I plus a Gram matrix (lam_H > 0)
        Ci = np.linalg.inv(C)
        self.Cinv = 0.5 * (Ci + Ci.transpose(0, 2, 1))
        if p.bias:
            ab = a + p.lam_b
            ab = np.maximum(ab, _FLOOR * max(float(ab.max()), 1.0))
            self.Binv = (U / ab) @ U.T

    def apply(self, g: np.ndarray, out: np.ndarray) -> np.ndarray:
        p = self.problem
        K, d, N = p.K, p.d, p.N
        gW = g[: self.nw].reshape(K, d)
        gH = g[self.nw : self.nw + self.nh].reshape(d, N)
        oW = out[: self.nw].reshape(K, d)
        oH = out[self.nw : self.nw + self.nh].reshape(d, N)
        oW[...] = self.U @ ((self.U.T @ gW @ self.V) * self.DW) @ self.V.T
        np.matmul(self.Cinv, gH.T[:, :, None], out=self._colbuf)
        oH[...] = self._colbuf[:, :, 0].T
        if p.bias:
            out[self.nw + self.nh :] = self.Binv @ g[self.nw + self.nh :]
        return out
