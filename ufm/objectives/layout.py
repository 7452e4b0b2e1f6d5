"""The layout of the variables: ``(W, H, b)`` packed into one float64 vector, and the starting
points given to or drawn for a solver. The solvers see these through :mod:`ufm.objectives`."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..designs import as_rng
from ..exceptions import UFMError
from ..problem import UFMProblem, real_array


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
        parts.append(np.zeros(W.shape[0]) if b is None else np.ravel(b))
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


def random_point(
    problem: UFMProblem, *, scale: float = 1.0, rng: np.random.Generator | int | None = None
) -> np.ndarray:
    """A packed Gaussian point with entries of standard deviation ``scale / sqrt(d)``."""
    gen = as_rng(rng)
    return gen.standard_normal(problem.n_vars) * (scale / np.sqrt(problem.d))


def given_point(problem: UFMProblem, x0: np.ndarray | tuple) -> np.ndarray:
    """A start given as a packed vector or as ``(W, H, b)`` (``b`` may be None): a fresh
    packed float64 copy, its length checked (shared by the solvers and :mod:`ufm.fixed`)."""
    if isinstance(x0, tuple):
        W, H, b = x0
        b = np.zeros(problem.K) if b is None else b
        x = pack(real_array("W", W, "x0"), real_array("H", H, "x0"), real_array("b", b, "x0"), problem.bias)
    else:
        x = np.array(real_array("x0", x0, "solve"), dtype=np.float64)
    if x.shape != (problem.n_vars,):
        raise UFMError(f"x0 must have {problem.n_vars} entries (packed W, H, b); got shape {x.shape}.")
    return x.copy()


def numpy_namespace() -> Any:
    """numpy as an array API namespace: ``array_api_compat.numpy`` where installed (the
    ``device`` extra), else numpy itself (numpy 2 follows the standard in what the engines use)."""
    try:
        import array_api_compat.numpy as xnp
    except ImportError:  # pragma: no cover - the extra is part of every test environment
        return np
    return xnp
