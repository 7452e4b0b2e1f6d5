r"""Multi-label losses on logits: value (averaged over samples) and gradient in the logits.

All functions take logits ``Z`` (K, N), the 0/1 label matrix ``Y`` (K, N) and the
multiplicities ``m`` (N,), and return ``(L, G)`` with

.. math::  L(Z) = \frac1N \sum_i \ell(z_i; y_i), \qquad G = \partial L / \partial Z  \;(K, N).

The log-sum-exp is computed with the max shift in float64.
"""

from __future__ import annotations

import numpy as np


def log_softmax_parts(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(LSE(z_i) for each column, softmax P)`` with the max shift; shapes (N,), (K, N)."""
    zmax = Z.max(axis=0)  # (N,)
    E = Z - zmax  # (K, N)
    np.exp(E, out=E)
    s = E.sum(axis=0)  # (N,)
    E *= 1.0 / s
    return np.log(s) + zmax, E


def pal(Z: np.ndarray, Y: np.ndarray, m: np.ndarray) -> tuple[float, np.ndarray]:
    r"""Pick-all-label cross-entropy :math:`\ell(z; y) = m\,\mathrm{LSE}(z) - \langle y, z\rangle`.

    Gradient: :math:`G = (P \odot m - Y)/N` with ``P`` the column-wise softmax.
    """
    N = Z.shape[1]
    lse, P = log_softmax_parts(Z)
    value = (m @ lse - np.vdot(Y, Z)) / N
    P *= m  # in place: no (K, N) temporaries beyond P itself
    P -= Y
    P *= 1.0 / N
    return float(value), P


def pal_normalized(Z: np.ndarray, Y: np.ndarray, m: np.ndarray) -> tuple[float, np.ndarray]:
    r"""Normalised PAL, targets ``y/m``: :math:`\ell(z; y) = \mathrm{LSE}(z) - \langle y/m, z\rangle`."""
    N = Z.shape[1]
    lse, P = log_softmax_parts(Z)
    value = (lse.sum() - (Y * Z).sum(axis=0) @ (1.0 / m)) / N
    P *= m
    P -= Y
    P *= 1.0 / (N * m)
    return float(value), P


def pal_inplace(
    Z: np.ndarray, y_flat: np.ndarray, col_weight: np.ndarray, y_weight: np.ndarray | float, *,
    grad_col_weight: np.ndarray | None = None, grad_y_weight: np.ndarray | float | None = None,
) -> float:
    r"""Fast PAL kernel on the label *positions*: overwrite ``Z`` with the gradient, return ``L``.

    .. math::

        L = \frac1N \sum_i \Big(c_i\,\mathrm{LSE}(z_i) - \sum_{k \in S_i} v_{ki} z_{ki}\Big),
        \qquad G = P \operatorname{diag}(c') - V'

    where

    - ``Z`` (K, N) C-contiguous logits, overwritten by ``G`` (K, N);
    - ``y_flat`` (nnz,) the flat (row-major) positions of the ones of ``Y``;
    - ``col_weight`` (N,) is ``c = m`` for PAL, ``1`` for normalised PAL;
    - ``y_weight`` (nnz,) or scalar: the entries ``v`` of ``V`` at ``y_flat`` (``1`` for PAL,
      ``1/m_i`` for normalised PAL);
    - ``grad_col_weight`` ``c'`` (N,) and ``grad_y_weight`` ``V'`` (at ``y_flat``): the
      gradient's weights, ``c / N`` and ``v / N`` when omitted (so ``G = dL/dZ``). Callers
      evaluating many times pass them precomputed; :mod:`ufm.objectives.grouped` passes them times its
      column scaling, to get ``dL/dZ`` times that scaling at no extra pass.

    One pass for the column max, one for the shift, one ``exp``, one column sum and one
    column scaling over the ``K x N`` array; ``<Y, Z>`` and ``- Y`` touch only the
    ``nnz(Y) = sum_i m_i`` label positions. Log-sum-exp with the max shift, float64.
    """
    N = Z.shape[1]
    flat = Z.reshape(-1)  # a view (Z is C-contiguous)
    yz = flat[y_flat]  # (nnz,) gathered before Z is overwritten
    yz_term = float(yz @ y_weight) if isinstance(y_weight, np.ndarray) else float(y_weight) * float(yz.sum())
    zmax = np.maximum.reduce(Z, axis=0)  # (N,); the ufunc reductions skip numpy's Python wrappers
    np.subtract(Z, zmax, out=Z)
    np.exp(Z, out=Z)
    s = np.add.reduce(Z, axis=0)  # (N,), >= 1
    lse = np.log(s)
    lse += zmax
    value = (float(col_weight @ lse) - yz_term) / N
    if grad_col_weight is None:
        np.multiply(s, N, out=s)
        scale = np.divide(col_weight, s, out=s)
    else:
        scale = np.divide(grad_col_weight, s, out=s)
    np.multiply(Z, scale, out=Z)
    if grad_y_weight is None:
        grad_y_weight = y_weight / N if isinstance(y_weight, np.ndarray) else float(y_weight) / N
    np.subtract.at(flat, y_flat, grad_y_weight)  # positions are distinct: flat[y_flat] -= ...
    return value


def bce(Z: np.ndarray, Y: np.ndarray, m: np.ndarray) -> tuple[float, np.ndarray]:
    r"""Binary cross-entropy per class: :math:`\sum_k \mathrm{softplus}(z_k) - y_k z_k`."""
    del m
    N = Z.shape[1]
    value = (np.logaddexp(0.0, Z).sum() - np.vdot(Y, Z)) / N
    G = (0.5 * (1.0 + np.tanh(0.5 * Z)) - Y) / N  # sigmoid, overflow-free
    return float(value), G


LOSS_FUNCTIONS = {"pal": pal, "pal-normalized": pal_normalized, "bce": bce}


def pal_per_sample(Z: np.ndarray, Y: np.ndarray, m: np.ndarray) -> np.ndarray:
    """PAL loss of each column, shape (N,) (for metrics and checks)."""
    lse, _ = log_softmax_parts(Z)
    return m * lse - (Y * Z).sum(axis=0)


def hvp_logits(loss: str, Z: np.ndarray, dZ: np.ndarray, m: np.ndarray) -> np.ndarray:
    r"""Directional derivative of the gradient ``G(Z)`` along ``dZ`` (second-order term).

    For PAL, column-wise ``dG_i = m_i (diag(p_i) - p_i p_i^T) dz_i / N``; normalised PAL
    drops ``m_i``; BCE gives ``sigmoid'(z) * dz / N``. Shapes (K, N).
    """
    N = Z.shape[1]
    if loss == "bce":
        s = 0.5 * (1.0 + np.tanh(0.5 * Z))
        return s * (1 - s) * dZ / N
    _, P = log_softmax_parts(Z)
    return softmax_hvp(P, dZ, m if loss == "pal" else None)


def softmax_hvp(P: np.ndarray, dZ: np.ndarray, m: np.ndarray | None) -> np.ndarray:
    r"""``dG = diag(c) (P \odot dZ - P \odot (1^T (P \odot dZ))) / N`` column-wise, ``c = m`` or 1.

    ``P`` (K, N) is the column-wise softmax (left unchanged), ``dZ`` (K, N) the direction.
    """
    N = P.shape[1]
    dG = P * dZ  # (K, N)
    c = dG.sum(axis=0)  # (N,)
    T = P * c
    dG -= T
    col = (m / N) if m is not None else np.full(N, 1.0 / N)
    dG *= col
    return dG
