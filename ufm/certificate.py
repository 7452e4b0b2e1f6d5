r"""A closed-form dual lower bound on ``min F`` and the certified gap of any candidate
(SPEC section 3).

For any ``Gamma`` (K, N) with spectral norm ``||Gamma||_2 <= mu = sqrt(lam_W lam_H)``,

.. math::

    D(\Gamma) = -L^*(-\Gamma) - \frac{\|\Gamma 1\|^2}{2\lambda_b}
        \;\le\; \min C \;\le\; \min F,
    \qquad L^*(V) = \frac1N \sum_i w_i m_i \sum_j q_{ij}\log q_{ij},
    \quad q_i = \frac{N v_i / w_i + y_i}{m_i}

where ``L`` is the averaged loss, ``w_i = 1`` for PAL and ``1/m_i`` for normalised PAL,
and ``L*`` is finite only when every ``q_i`` lies in the simplex. Without a bias the
second term is absent; with a free bias and ``lam_b = 0`` the dual needs ``Gamma 1 = 0``.
From a candidate's logits ``X = W H + b 1^T`` we take ``Gamma = -t grad L(X)`` (centred
across samples when ``lam_b = 0``), with ``t`` the largest value in [0, 1] keeping
``||Gamma||_2 <= mu`` and every ``q_i`` in the simplex. The certified gap ``F - D >= 0``
vanishes at the global optimum, whatever ``d``; it costs one ``K x K`` eigenproblem.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import xlogy

from .exceptions import UFMError
from .losses import log_softmax_parts
from .objective import _check_shapes, value_and_grad
from .problem import UFMProblem


@dataclass(frozen=True)
class Certificate:
    """A certified bracket ``lower_bound <= min F <= objective``.

    Attributes
    ----------
    lower_bound : float
        ``D(Gamma)``, a lower bound on the global minimum of ``F`` for every ``d``.
    objective : float
        ``F`` at the candidate.
    gap : float
        ``objective - lower_bound >= 0`` (up to float64 rounding).
    rel_gap : float
        ``gap / max(|objective|, 1e-300)``.
    t : float
        The scaling of ``-grad L`` used as dual point.
    """

    lower_bound: float
    objective: float
    gap: float
    rel_gap: float
    t: float

    def to_dict(self) -> dict:
        return asdict(self)


def _weights(problem: UFMProblem) -> np.ndarray:
    if problem.loss == "pal":
        return np.ones(problem.N)
    if problem.loss == "pal-normalized":
        return 1.0 / problem.design.m
    raise UFMError(
        f"The certificate is derived for the pick-all-label losses; loss={problem.loss!r} has "
        "no closed-form conjugate here. Use loss='pal' or 'pal-normalized'."
    )


def conjugate_loss(problem: UFMProblem, Q: np.ndarray) -> float:
    """``L*`` expressed through the distributions ``Q`` (K, N): ``(1/N) sum_i w_i m_i sum_j q log q``."""
    m = problem.design.m
    w = _weights(problem)
    return float(((w * m) @ xlogy(Q, Q).sum(axis=0)) / problem.N)


def certify(
    problem: UFMProblem, W: np.ndarray, H: np.ndarray, b: np.ndarray | None = None
) -> Certificate:
    """Certified lower bound and gap for the candidate ``(W, H, b)`` of ``problem``.

    Works for a candidate from any source (a solver, a file, a trained network's last
    layer and features), any ``d``, with ``lam_b > 0``, without bias, and with a free
    bias at ``lam_b = 0`` (then ``Gamma`` is centred so that ``Gamma 1 = 0``; far from
    the optimum the bound may then be weak, never wrong).
    """
    W = np.asarray(W, dtype=np.float64)
    H = np.asarray(H, dtype=np.float64)
    b = np.zeros(problem.K) if (b is None or not problem.bias) else np.asarray(b, dtype=np.float64)
    _check_shapes(problem, W, H, b)
    w = _weights(problem)
    design = problem.design
    Y, m, N = design.Y, design.m, problem.N
    F = value_and_grad(problem, W, H, b)[0]

    X = W @ H
    X += b[:, None]
    _, P = log_softmax_parts(X)  # (K, N) softmax
    # grad L(X) = (w/N) (m p - y); the dual point is -t times it (centred if lam_b = 0)
    D = P * m - Y  # (K, N): N/w times the loss gradient
    free_bias_no_decay = problem.bias and problem.lam_b == 0
    if free_bias_no_decay:
        r = (D * w).sum(axis=1) / N  # (K,) = N/N * grad_b L / ... : row means of w-weighted D
        # centred dual direction Gamma_dir = (w/N)(D) - (1/N) r 1^T, written as N/w scale:
        Dc = D - r[:, None] / w[None, :]
    else:
        Dc = D
    Gdir = Dc * (w / N)  # (K, N): the dual direction (minus Gamma / t)
    spec = math.sqrt(max(float(np.linalg.eigvalsh(Gdir @ Gdir.T)[-1]), 0.0))
    t = 1.0 if spec <= problem.mu else problem.mu / spec
    # q_i = y_i/m_i + t * Dc_i / m_i must stay in the simplex (always true without centring)
    if free_bias_no_decay:
        base = Y / m
        step = Dc / m
        neg = step < 0
        if np.any(neg):
            t = min(t, float(np.min(base[neg] / -step[neg])))
        t = max(t, 0.0)
    Q = (Y + t * Dc) / m
    Q = np.clip(Q, 0.0, None)  # remove -0.0 / 1e-17 rounding; the sum stays 1 within eps
    lower = -conjugate_loss(problem, Q)
    if problem.bias and problem.lam_b > 0:
        Gamma1 = -t * Gdir.sum(axis=1)
        lower -= float(Gamma1 @ Gamma1) / (2 * problem.lam_b)
    gap = F - lower
    return Certificate(lower_bound=lower, objective=F, gap=gap, rel_gap=gap / max(abs(F), 1e-300), t=t)
