"""The certificate's expensive pass -- the logits of all ``N`` samples, their softmax and loss --
on any array library (``ufm.certify(..., device="cuda")``, :func:`ufm.certificate.certify_xp`).

:func:`loss_and_group_softmax_xp` computes what
:func:`ufm.certificate_dual.loss_and_group_softmax` computes of ``X = W H + b 1^T`` -- the
averaged loss ``L(X)`` and the mean softmax ``Pbar`` (K, G) of each label set -- with the
``K x N`` work in namespace ``xp`` on ``device`` (array API standard functions only, float64),
and brings back only the per-label-set sums: ``(K, G)`` softmax and logit sums and the ``(G,)``
sums of ``LSE``. The dual point built from ``Pbar`` (:func:`ufm.certificate_dual.dual_bound`)
is ``O(K G)`` numpy work, as on the default path.

The array API has no segment sum (numpy's ``add.reduceat``): the samples of a label set are
contiguous (canonical order), so the sets of each count ``c`` are gathered as one
``(K, G_c, c)`` block (a slice when they are contiguous too, as in balanced designs) and summed
over the last axis. There are at most ``sqrt(2 N)`` distinct counts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..certificate_dual import _group_weights
from ..objectives.array_api import _is_jax, to_numpy
from ..problem import UFMProblem


def _count_blocks(counts: np.ndarray) -> list[tuple[np.ndarray, int, np.ndarray]]:
    """For each distinct count ``c``: the label sets with it (G_c,), ``c``, and their samples'
    indices (G_c * c,), set by set (increasing)."""
    starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.intp)
    blocks = []
    for c in np.unique(counts):
        g = np.flatnonzero(counts == c)
        blocks.append((g, int(c), (starts[g][:, None] + np.arange(c, dtype=np.intp)).reshape(-1)))
    return blocks


def loss_and_group_softmax_xp(problem: UFMProblem, xp: Any, W: np.ndarray, H: np.ndarray, b: np.ndarray,
                              device: Any = None) -> tuple[float, np.ndarray]:
    """``(L, Pbar)`` of :func:`ufm.certificate_dual.loss_and_group_softmax` at ``X = W H + b 1^T``
    (``W`` (K, d), ``H`` (d, N) in the canonical sample order, ``b`` (K,): float64 numpy), the
    ``K x N`` pass in namespace ``xp`` on ``device``; ``Pbar`` comes back as float64 numpy."""
    _is_jax(xp)  # JAX: float64, not its float32 default
    design = problem.design
    K, G = problem.K, design.G
    w = _group_weights(problem)  # (G,); a clear error for a loss without a conjugate

    def arr(a: np.ndarray) -> Any:
        return xp.asarray(np.asarray(a, dtype=np.float64), dtype=xp.float64, device=device)

    X = arr(W) @ arr(H) + xp.reshape(arr(b), (K, 1))  # (K, N) logits
    top = xp.max(X, axis=0, keepdims=True)
    E = xp.exp(X - top)
    s = xp.sum(E, axis=0, keepdims=True)
    P = E / s  # (K, N) softmax
    del E
    lse = xp.reshape(top + xp.log(s), (-1,))  # (N,)
    P_sum, X_sum, lse_sum = np.empty((K, G)), np.empty((K, G)), np.empty(G)
    for g, c, idx in _count_blocks(design.group_counts):
        lo, hi = int(idx[0]), int(idx[-1]) + 1
        if hi - lo == idx.size:  # these sets' samples are one contiguous range: a slice
            Pc, Xc, lc = P[:, lo:hi], X[:, lo:hi], lse[lo:hi]
        else:
            ii = xp.asarray(idx, device=device)
            Pc, Xc, lc = xp.take(P, ii, axis=1), xp.take(X, ii, axis=1), xp.take(lse, ii, axis=0)
        P_sum[:, g] = to_numpy(xp.sum(xp.reshape(Pc, (K, g.size, c)), axis=2))
        X_sum[:, g] = to_numpy(xp.sum(xp.reshape(Xc, (K, g.size, c)), axis=2))
        lse_sum[g] = to_numpy(xp.sum(xp.reshape(lc, (g.size, c)), axis=1))
    m = design.group_multiplicity.astype(np.float64)
    xy = np.einsum("kg,kg->g", design.Yg, X_sum)  # <y_S, sum of the set's logits>
    L = float(w @ (m * lse_sum - xy)) / problem.N
    return L, P_sum / design.group_counts.astype(np.float64)
