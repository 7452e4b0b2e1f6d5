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
    E = np.exp(Z - zmax)  # (K, N)
    s = E.sum(axis=0)  # (N,)
    E /= s
    return np.log(s) + zmax, E


def pal(Z: np.ndarray, Y: np.ndarray, m: np.ndarray) -> tuple[float, np.ndarray]:
    r"""Pick-all-label cross-entropy :math:`\ell(z; y) = m\,\mathrm{LSE}(z) - \langle y, z\rangle`.

    Gradient: :math:`G = (P \odot m - Y)/N` with ``P`` the column-wise softmax.
    """
    N = Z.shape[1]
    lse, P = log_softmax_parts(Z)
    value = (m @ lse - np.vdot(Y, Z)) / N
    P *= m / N
    P -= Y / N
    return float(value), P


def pal_normalized(Z: np.ndarray, Y: np.ndarray, m: np.ndarray) -> tuple[float, np.ndarray]:
    r"""Normalised PAL, targets ``y/m``: :math:`\ell(z; y) = \mathrm{LSE}(z) - \langle y/m, z\rangle`."""
    N = Z.shape[1]
    lse, P = log_softmax_parts(Z)
    T = Y / m  # (K, N)
    value = (lse.sum() - np.vdot(T, Z)) / N
    P -= T
    P /= N
    return float(value), P


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
    dG = P * (dZ - (P * dZ).sum(axis=0))
    if loss == "pal":
        dG *= m
    return dG / N
