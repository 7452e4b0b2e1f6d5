"""``F`` with the classifier fixed: :class:`FixedClassifierObjective`, ``F_W(H, b) = F(W, H, b)``.

The objective of the fixed-classifier experiments (docs/fixed_classifier.md) as a variant of the
protocol: the grouped objective (:class:`~ufm.objectives.grouped.GroupedObjective`, one feature
column per label set, exact) with its ``W`` block frozen. Working coordinates ``z = (Ht, b)``;
the gradient is the grouped one's ``(Ht, b)`` blocks, the Hessian its ``(Ht, b)`` block, and the
full point carries the fixed ``W``. With this, any engine written against the protocol (the
L-BFGS engine, the Newton-CG polish) minimises over ``(H, b)`` for a fixed ``W``;
:func:`ufm.fixed.solve_fixed` keeps its own exact block-Newton engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..problem import UFMProblem
from .grouped import GroupedObjective
from .layout import numpy_namespace


class FixedClassifierObjective:
    """``F_W`` on ``z = (Ht, b)`` (grouped features, scaled as in the grouped objective; ``b``
    only with a bias). ``grad_to_x`` puts zeros in the ``W`` block (``W`` is not a variable)
    and ``grad_norm`` is the norm over ``(H, b)``."""

    euclidean = True  # the grouped coordinates are an isometry on the (H, b) blocks
    identity = False

    def __init__(self, problem: UFMProblem, W: np.ndarray) -> None:
        W = np.asarray(W, dtype=np.float64)
        if W.shape != (problem.K, problem.d):
            raise ValueError(f"W must be (K, d) = ({problem.K}, {problem.d}); got {W.shape}")
        self.problem, self.W = problem, W
        self.base = GroupedObjective(problem)
        self.kd = problem.K * problem.d
        self.size = self.base.n_vars - self.kd
        self._full = np.empty(self.base.n_vars)
        self._full[: self.kd] = W.ravel()
        self._g = np.empty(self.base.n_vars)

    @property
    def nfev(self) -> int:
        return self.base.nfev

    @property
    def xp(self) -> Any:
        return numpy_namespace()

    def _with_w(self, z: np.ndarray) -> np.ndarray:
        full = self._full.copy()
        full[self.kd :] = z
        return full

    def value_and_grad(self, z: np.ndarray, out: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        self._full[self.kd :] = z
        f, g = self.base.value_and_grad(self._full, out=self._g)
        gz = np.empty(self.size) if out is None else out
        np.copyto(gz, g[self.kd :])
        return f, gz

    def hessian_operator(self, z: np.ndarray, dtype: Any = None) -> Callable[[np.ndarray], np.ndarray]:
        """The ``(Ht, b)`` block of the grouped Hessian (``dtype`` as for the grouped objective)."""
        apply = self.base.hessian_operator(self._with_w(z), dtype)
        v_full = np.zeros(self.base.n_vars)

        def block(v: np.ndarray) -> np.ndarray:
            v_full[self.kd :] = v
            return apply(v_full)[self.kd :]

        return block

    def grad_norm(self, g: np.ndarray) -> float:
        return float(np.linalg.norm(g))

    def to_x(self, z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return self.base.to_x(self._with_w(z), out=out)

    def to_y(self, x: np.ndarray) -> np.ndarray:
        """The ``(Ht, b)`` of the set means of ``x``'s features (its ``W`` block is not read)."""
        return self.base.to_y(x)[self.kd :]

    def grad_to_x(self, g: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        full = np.zeros(self.base.n_vars)
        full[self.kd :] = g
        return self.base.grad_to_x(full, out=out)

    def embed(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.base.embed(self._with_w(z))
