r"""The objective ``F(W, H, b)`` of :class:`~ufm.problem.UFMProblem`, its gradient, packing
of the variables and a shipped gradient checker.

.. math::

    F(W, H, b) = \frac1N \sum_i \ell(W h_i + b; y_i) + \frac{\lambda_W}2\|W\|_F^2
        + \frac{\lambda_H}2\|H\|_F^2 + \frac{\lambda_b}2\|b\|^2

With ``Z = W H + b 1^T`` and ``G = dL/dZ`` (see :mod:`ufm.losses`):
``dF/dW = G H^T + lam_W W``, ``dF/dH = W^T G + lam_H H``, ``dF/db = G 1 + lam_b b``.
"""

from __future__ import annotations

import numpy as np

from .designs import as_rng
from .exceptions import UFMError
from .losses import LOSS_FUNCTIONS, hvp_logits
from .problem import UFMProblem


def _check_shapes(problem: UFMProblem, W: np.ndarray, H: np.ndarray, b: np.ndarray | None) -> None:
    K, d, N = problem.K, problem.d, problem.N
    if W.shape != (K, d):
        raise UFMError(f"W must have shape (K, d) = ({K}, {d}); got {W.shape}.")
    if H.shape != (d, N):
        raise UFMError(f"H must have shape (d, N) = ({d}, {N}); got {H.shape}.")
    if b is not None and b.shape != (K,):
        raise UFMError(f"b must have shape (K,) = ({K},); got {b.shape}.")


def pack(W: np.ndarray, H: np.ndarray, b: np.ndarray | None, bias: bool = True) -> np.ndarray:
    """Flatten ``(W, H, b)`` into one float64 vector (``b`` omitted when ``bias`` is False)."""
    parts = [np.ravel(W), np.ravel(H)]
    if bias:
        parts.append(np.ravel(b))
    return np.concatenate(parts).astype(np.float64, copy=False)


def unpack(x: np.ndarray, problem: UFMProblem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of :func:`pack`; returns views ``W`` (K, d), ``H`` (d, N), ``b`` (K,)."""
    K, d, N = problem.K, problem.d, problem.N
    if x.shape != (problem.n_vars,):
        raise UFMError(f"x must have shape ({problem.n_vars},); got {x.shape}.")
    W = x[: K * d].reshape(K, d)
    H = x[K * d : K * d + d * N].reshape(d, N)
    b = x[K * d + d * N :] if problem.bias else np.zeros(K)
    return W, H, b


def logits(W: np.ndarray, H: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``Z = W H + b 1^T``, shape (K, N)."""
    Z = W @ H
    Z += b[:, None]
    return Z


def value_and_grad(
    problem: UFMProblem, W: np.ndarray, H: np.ndarray, b: np.ndarray | None = None
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """``F`` and its gradient ``(dW, dH, db)`` (``db = 0`` when the model has no bias)."""
    if b is None or not problem.bias:
        b = np.zeros(problem.K)
    design = problem.design
    L, G = LOSS_FUNCTIONS[problem.loss](logits(W, H, b), design.Y, design.m)
    F = (
        L
        + 0.5 * problem.lam_W * np.vdot(W, W)
        + 0.5 * problem.lam_H * np.vdot(H, H)
        + 0.5 * problem.lam_b * np.vdot(b, b)
    )
    dW = G @ H.T
    dW += problem.lam_W * W
    dH = W.T @ G
    dH += problem.lam_H * H
    if problem.bias:
        db = G.sum(axis=1) + problem.lam_b * b
    else:
        db = np.zeros(problem.K)
    return float(F), dW, dH, db


def objective(problem: UFMProblem, W: np.ndarray, H: np.ndarray, b: np.ndarray | None = None) -> float:
    """``F(W, H, b)`` (SPEC section 2); validates shapes."""
    W, H = np.asarray(W, dtype=np.float64), np.asarray(H, dtype=np.float64)
    b = None if b is None else np.asarray(b, dtype=np.float64)
    _check_shapes(problem, W, H, b)
    return value_and_grad(problem, W, H, b)[0]


def fun_and_grad(x: np.ndarray, problem: UFMProblem) -> tuple[float, np.ndarray]:
    """``F`` and its gradient on the packed vector (for scipy-style solvers)."""
    W, H, b = unpack(x, problem)
    F, dW, dH, db = value_and_grad(problem, W, H, b)
    return F, pack(dW, dH, db, problem.bias)


def hvp(x: np.ndarray, v: np.ndarray, problem: UFMProblem) -> np.ndarray:
    """Exact Hessian-vector product ``nabla^2 F(x) v`` on packed vectors.

    With ``Z = W H + b 1^T``, ``dZ = V_W H + W V_H + v_b 1^T`` and ``dG`` the loss
    Hessian applied to ``dZ`` (:func:`ufm.losses.hvp_logits`):
    ``(dG H^T + G V_H^T + lam_W V_W, V_W^T G + W^T dG + lam_H V_H, dG 1 + lam_b v_b)``.
    """
    W, H, b = unpack(x, problem)
    VW, VH, vb = unpack(v, problem)
    design = problem.design
    Z = logits(W, H, b)
    _, G = LOSS_FUNCTIONS[problem.loss](Z, design.Y, design.m)
    dZ = VW @ H + W @ VH
    if problem.bias:
        dZ += vb[:, None]
    dG = hvp_logits(problem.loss, Z, dZ, design.m)
    hW = dG @ H.T + G @ VH.T + problem.lam_W * VW
    hH = VW.T @ G + W.T @ dG + problem.lam_H * VH
    hb = dG.sum(axis=1) + problem.lam_b * vb if problem.bias else None
    return pack(hW, hH, hb, problem.bias)


def random_point(
    problem: UFMProblem, *, scale: float = 1.0, rng: np.random.Generator | int | None = None
) -> np.ndarray:
    """A packed Gaussian point with entries of standard deviation ``scale / sqrt(d)``."""
    gen = as_rng(rng)
    return gen.standard_normal(problem.n_vars) * (scale / np.sqrt(problem.d))


def check_grad(
    problem: UFMProblem, x: np.ndarray | None = None, *, n_dirs: int = 5, eps: float = 1e-6,
    rng: np.random.Generator | int | None = None,
) -> float:
    """Largest relative error between directional derivatives and central differences.

    Along ``n_dirs`` random unit directions ``v``: ``|<g, v> - (F(x+eps v)-F(x-eps v))/(2 eps)|``
    divided by ``max(|<g, v>|, 1e-8)``. Returns the maximum (about 1e-7 or less when the
    gradient is right).
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

    A correct gradient gives a slope close to 2.
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
