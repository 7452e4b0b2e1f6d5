"""``F(W, H, b)`` on any array library: one implementation of :class:`~ufm.objectives.protocol.Objective`.

:class:`ArrayObjective` computes ``F`` over weighted feature columns: the N samples (full), or
one column per label set ``S`` standing for its ``n_S`` samples (grouped, exact on the set of
points whose features are equal within each label set, where every critical point lies; see
:mod:`ufm.objectives.grouped`). With column weights ``c_j = n_j w_j / N`` (``w_j`` = 1 for "pal",
``1/m_j`` for "pal-normalized") and ridge weights ``n_j``::

    F = sum_j c_j (m_j LSE(z_j) - <y_j, z_j>) + lam_W/2 ||W||^2 + lam_H/2 sum_j n_j ||h_j||^2
        + lam_b/2 ||b||^2,   Z = W H + b 1^T.

Only array API standard functions are used (through ``array-api-compat``), so the same code
runs on numpy, ``array-api-strict``, JAX, CuPy and PyTorch arrays, in float64 (or float32 for the
bulk of a mixed-precision solve, :mod:`ufm.solvers.mixed`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..exceptions import UFMError
from ..problem import UFMProblem
from .layout import pack, unpack


def to_numpy(a: Any) -> np.ndarray:
    """A float64 numpy copy of an array of any supported library (a GPU array is copied to the host)."""
    from array_api_compat import is_cupy_array, is_torch_array

    if is_cupy_array(a):
        return np.asarray(a.get(), dtype=np.float64)
    if is_torch_array(a):
        return a.detach().cpu().numpy().astype(np.float64)
    try:
        return np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError, RuntimeError):  # array-api-strict: through DLPack
        return np.from_dlpack(a).astype(np.float64)


def _is_jax(xp: Any) -> bool:
    """JAX computes in float32 unless told otherwise (switched to float64 here) and runs op by op
    unless compiled (the evaluations are then jitted)."""
    from array_api_compat import is_jax_namespace

    if is_jax_namespace(xp):
        import jax

        jax.config.update("jax_enable_x64", True)
        return True
    return False


class ArrayObjective:
    """``F`` of ``problem`` in namespace ``xp`` (a module of the array API standard, e.g.
    ``array_api_compat.numpy``, ``array_api_strict``, ``jax.numpy``) on ``device``;
    ``grouped``: one feature column per label set (in the set's mean feature: the gradient of a
    column is the sum of its samples' gradients, so ``grad_norm`` weighs it by ``1/n_S``)."""

    identity = False

    def __init__(self, problem: UFMProblem, xp: Any, device: Any = None, *, grouped: bool = True,
                 dtype: str = "float64") -> None:
        if dtype not in ("float64", "float32"):
            raise UFMError(f"dtype must be 'float64' or 'float32'; got {dtype!r}.")
        if problem.loss not in ("pal", "pal-normalized"):
            raise UFMError(f"the array-API path computes the pick-all-label losses; loss={problem.loss!r} "
                           "runs on the default (numpy) path: drop `device`.")
        jit = _is_jax(xp)
        self.problem, self.xp, self.device, self.grouped = problem, xp, device, grouped
        self.euclidean = not grouped  # |grad_z| is |grad F| only in the full space
        self.dtype = getattr(xp, dtype)  # float32: the bulk of a mixed-precision solve (ufm.solvers.mixed)
        design = problem.design
        if grouped:
            Y, m, n = design.Yg, design.group_multiplicity, design.group_counts
        else:
            Y, m, n = design.Y, design.m, np.ones(problem.N)
        m = np.asarray(m, dtype=np.float64)
        w = np.ones_like(m) if problem.loss == "pal" else 1.0 / m
        self.K, self.d, self.C = problem.K, problem.d, int(np.asarray(Y).shape[1])
        self.counts = np.asarray(design.group_counts, dtype=np.intp)
        arr = self._arr
        self.Y, self.m = arr(Y), arr(m)
        self.c = arr(np.asarray(n, dtype=np.float64) * w / problem.N)
        self.r = arr(np.asarray(n, dtype=np.float64))
        self.lw, self.lh = float(problem.lam_W), float(problem.lam_H)
        self.bias = bool(problem.bias)
        self.lb = float(problem.lam_b) if self.bias else 0.0
        self.size = self.K * self.d + self.d * self.C + (self.K if self.bias else 0)
        self.nfev = 0
        self._vg, self._hv = self._value_and_grad, self._hvp
        if jit:
            import jax

            self._vg, self._hv = jax.jit(self._vg), jax.jit(self._hvp)

    def _arr(self, a: Any) -> Any:
        return self.xp.asarray(np.asarray(a, dtype=np.float64), dtype=self.dtype, device=self.device)

    # -- coordinates --------------------------------------------------------------------
    def pack(self, W: Any, H: Any, b: Any) -> Any:
        xp = self.xp
        parts = [xp.reshape(W, (-1,)), xp.reshape(H, (-1,))]
        if self.bias:
            parts.append(b)
        return xp.concat(parts)

    def unpack(self, z: Any) -> tuple[Any, Any, Any]:
        xp, K, d, C = self.xp, self.K, self.d, self.C
        W = xp.reshape(z[:K * d], (K, d))
        H = xp.reshape(z[K * d:K * d + d * C], (d, C))
        b = z[K * d + d * C:] if self.bias else xp.zeros((K,), dtype=self.dtype, device=self.device)
        return W, H, b

    def embed(self, z: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        W, H, b = (to_numpy(a) for a in self.unpack(z))
        if self.grouped:
            H = np.repeat(H, self.counts, axis=1)  # the canonical order: each label set's samples together
        return W, H, b

    def to_x(self, z: Any, out: np.ndarray | None = None) -> np.ndarray:
        x = pack(*self.embed(z), self.bias)
        if out is None:
            return x
        np.copyto(out, x)
        return out

    def to_y(self, x: np.ndarray) -> Any:
        return self.restrict(*unpack(x, self.problem))

    def grad_to_x(self, g: Any, out: np.ndarray | None = None) -> np.ndarray:
        """The full gradient at ``to_x(z)``: a grouped column's gradient shared by its ``n_S`` samples."""
        gW, gH, gb = (to_numpy(a) for a in self.unpack(g))
        if self.grouped:
            gH = np.repeat(gH / self.counts, self.counts, axis=1)
        x = pack(gW, gH, gb, self.bias)
        if out is None:
            return x
        np.copyto(out, x)
        return out

    def grad_norm(self, g: Any) -> float:
        """``|grad F|`` at the full point: ``sqrt(|g_W|^2 + sum_S |g_S|^2 / n_S + |g_b|^2)`` grouped."""
        if not self.grouped:
            return norm(self.xp, g)
        xp, K, d = self.xp, self.K, self.d
        gH = xp.reshape(g[K * d:K * d + d * self.C], (d, self.C))
        rest = float(xp.sum(g[:K * d] ** 2)) + float(xp.sum(g[K * d + d * self.C:] ** 2))
        return math.sqrt(rest + float(xp.sum(xp.sum(gH * gH, axis=0) / self.r)))

    def restrict(self, W: np.ndarray, H: np.ndarray, b: np.ndarray) -> Any:
        """A full point (numpy) in this objective's coordinates (grouped: each label set's mean feature)."""
        H = np.asarray(H, dtype=np.float64)
        if self.grouped:
            starts = np.concatenate(([0], np.cumsum(self.counts)[:-1]))
            H = np.add.reduceat(H, starts, axis=1) / self.counts
        b = np.zeros(self.K) if b is None else b
        return self.pack(self._arr(W), self._arr(H), self._arr(b))

    # -- F, its gradient and Hessian ----------------------------------------------------
    def _softmax(self, W: Any, H: Any, b: Any) -> tuple[Any, Any, Any]:
        xp = self.xp
        Z = W @ H + xp.reshape(b, (self.K, 1))
        top = xp.max(Z, axis=0, keepdims=True)
        E = xp.exp(Z - top)
        s = xp.sum(E, axis=0, keepdims=True)
        return Z, E / s, xp.reshape(top + xp.log(s), (-1,))

    def value_and_grad(self, z: Any, out: Any = None) -> tuple[float, Any]:
        """``(F, grad)``; ``out`` is ignored (the standard has no in-place output: a new array)."""
        self.nfev += 1
        f, g = self._vg(z)
        return float(f), g

    def hvp(self, z: Any, v: Any) -> Any:
        return self._hv(z, v)

    def hessian_operator(self, z: Any, dtype: Any = None) -> Any:
        """``v -> H v`` in this objective's dtype (``dtype`` is not used)."""
        return lambda v: self._hv(z, v)

    def _value_and_grad(self, z: Any) -> tuple[Any, Any]:
        xp = self.xp
        W, H, b = self.unpack(z)
        Z, P, lse = self._softmax(W, H, b)
        loss = xp.sum(self.c * (self.m * lse - xp.sum(self.Y * Z, axis=0)))
        ridge = self.lw * xp.sum(W * W) + self.lh * xp.sum(self.r * xp.sum(H * H, axis=0)) + self.lb * xp.sum(b * b)
        G = self.c * (self.m * P - self.Y)  # dL/dZ (K, C)
        gW = G @ H.T + self.lw * W
        gH = W.T @ G + self.lh * self.r * H
        gb = xp.sum(G, axis=1) + self.lb * b
        return loss + 0.5 * ridge, self.pack(gW, gH, gb)

    def _hvp(self, z: Any, v: Any) -> Any:
        xp = self.xp
        W, H, b = self.unpack(z)
        dW, dH, db = self.unpack(v)
        _, P, _ = self._softmax(W, H, b)
        G = self.c * (self.m * P - self.Y)
        dZ = dW @ H + W @ dH + xp.reshape(db, (self.K, 1))
        PdZ = P * dZ
        dG = self.c * self.m * (PdZ - P * xp.sum(PdZ, axis=0, keepdims=True))  # softmax Jacobian, weighted
        hW = dG @ H.T + G @ dH.T + self.lw * dW
        hH = W.T @ dG + dW.T @ G + self.lh * self.r * dH
        hb = xp.sum(dG, axis=1) + self.lb * db
        return self.pack(hW, hH, hb)


def norm(xp: Any, v: Any) -> float:
    return math.sqrt(float(xp.sum(v * v)))
