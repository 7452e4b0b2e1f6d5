r"""``F`` in the full space, optionally in scaled coordinates: :class:`ScaledObjective`."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..problem import UFMProblem
from .full import Evaluator, hessian_operator
from .layout import numpy_namespace, unpack


class ScaledObjective:
    r"""``F`` and its derivatives in scaled coordinates ``y = D^{-1} x``, exact for any design:
    an :class:`~ufm.objectives.protocol.Objective`.

    .. math::  D = \mathrm{diag}(1_W,\; s\,1_H,\; 1_b), \qquad
        \tilde F(y) = F(D y), \qquad \nabla \tilde F(y) = D\, \nabla F(D y), \qquad
        \nabla^2 \tilde F(y) = D\, \nabla^2 F(D y)\, D

    where ``s = h_scale``: the solver works on ``(W, H/s, b)`` and a plain gradient step on
    ``y`` moves ``H`` by ``s^2`` times the step it gives ``W`` (a block-diagonal
    preconditioner). Minimisers correspond one to one (``x* = D y*``); ``s = 1`` is the
    identity -- the plain full-space objective -- and costs nothing. Each evaluation counts in
    ``nfev``; the (K, N) workspace is reused.
    """

    def __init__(self, problem: UFMProblem, h_scale: float = 1.0) -> None:
        self.problem, self.s = problem, float(h_scale)
        self.identity = self.s == 1.0  # y is x (no conversion needed)
        self.euclidean = self.identity  # |grad_y| is |grad F|
        K, d, N = problem.K, problem.d, problem.N
        self.h = slice(K * d, K * d + d * N)
        self.size = problem.n_vars
        self.ev = Evaluator(problem)
        self._x = None if self.s == 1.0 else np.empty(problem.n_vars)

    @property
    def nfev(self) -> int:
        return self.ev.nfev

    @property
    def xp(self) -> Any:
        return numpy_namespace()

    def to_x(self, y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``x = D y`` (returns ``y`` itself when unscaled and ``out`` is None)."""
        if self.s == 1.0:
            if out is None:
                return y
            np.copyto(out, y)
            return out
        x = np.empty_like(y) if out is None else out
        np.copyto(x, y)
        x[self.h] *= self.s
        return x

    def to_y(self, x: np.ndarray) -> np.ndarray:
        """``y = D^{-1} x`` (a new array)."""
        y = np.array(x, dtype=np.float64)
        if self.s != 1.0:
            y[self.h] /= self.s
        return y

    def grad_to_x(self, g: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``grad F`` (in ``x``) from the scaled gradient ``g = D grad F`` (a new array by default)."""
        gx = np.array(g, dtype=np.float64) if out is None else out
        if out is not None:
            np.copyto(gx, g)
        if self.s != 1.0:
            gx[self.h] /= self.s
        return gx

    def grad_norm(self, g: np.ndarray) -> float:
        """Euclidean norm of ``grad F`` (in ``x``) from the scaled gradient ``g = D grad F``."""
        if self.s == 1.0:
            return float(np.linalg.norm(g))
        gh = float(np.linalg.norm(g[self.h])) / self.s
        rest = float(np.linalg.norm(g[: self.h.start])) ** 2 + float(np.linalg.norm(g[self.h.stop :])) ** 2
        return math.sqrt(rest + gh * gh)

    def embed(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        W, H, b = unpack(self.to_x(y, out=np.empty(self.problem.n_vars)), self.problem)
        return W, H, b

    def value_and_grad(self, y: np.ndarray, out: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        if self.s == 1.0:
            return self.ev(y, out=out)
        x = self.to_x(y, out=self._x)
        f, g = self.ev(x, out=out)
        g[self.h] *= self.s
        return f, g


    def hessian_operator(self, y: np.ndarray, dtype: Any = None) -> Callable[[np.ndarray], np.ndarray]:
        """``v -> D nabla^2 F(D y) D v`` (:func:`ufm.objectives.full.hessian_operator`; float64
        whatever ``dtype``)."""
        apply = hessian_operator(self.to_x(y, out=np.empty(self.problem.n_vars)), self.problem)
        if self.s == 1.0:
            return apply

        def scaled(v: np.ndarray) -> np.ndarray:
            w = self.to_x(v)
            hv = apply(w)
            hv[self.h] *= self.s
            return hv

        return scaled
