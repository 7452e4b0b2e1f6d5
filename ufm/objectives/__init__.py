"""The objective ``F(W, H, b)`` and its variants, behind one protocol.

What the solvers see -- and all they may import (an import-linter contract checks it):

- :class:`Objective` (:mod:`.protocol`): value and gradient, Hessian operator, gradient norm,
  coordinates to and from the full point;
- :func:`make_objective`: the variant a solve asks for -- full space (optionally with ``H``
  scaled), one feature column per label set (optionally in fewer dimensions, float64 or
  float32), the classifier fixed, or the array-API one on any array library;
  :func:`full_objective`, :func:`batch_objective`: the plain full space and minibatches;
- the layout of the full point (:func:`pack`, :func:`unpack`) and the starting points
  (:func:`given_point`, :func:`random_point`, :func:`random_start`), :func:`solver_width`.

The implementations: :mod:`.full` (the kernels of ``F``, its gradient and Hessian in the full
space, and the public ``objective``/``value_and_grad``/``check_grad``), :mod:`.scaled`,
:mod:`.grouped` (the exact reduction to one column per label set and its proofs),
:mod:`.fixed`, :mod:`.array_api`, :mod:`.batch`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..problem import UFMProblem
from .grouped import random_start, solver_width
from .layout import given_point, pack, random_point, unpack
from .protocol import Objective

__all__ = [
    "Objective", "make_objective", "full_objective", "batch_objective", "pack", "unpack", "given_point",
    "random_point", "random_start", "solver_width",
]


def make_objective(problem: UFMProblem, x: np.ndarray | None = None, *, group: bool = False,
                   reduce_width: bool = True, h_scale: float = 1.0, dtype: Any = np.float64,
                   xp: Any = None, device: Any = None, fixed_W: np.ndarray | None = None) -> Objective:
    """The objective a solver works on.

    ``fixed_W`` (K, d): ``F`` over ``(H, b)`` with the classifier fixed
    (:class:`~.fixed.FixedClassifierObjective`: grouped, the other options unused).

    ``xp`` None (numpy, the default path): with ``group``, ``F`` on one feature column per label
    set (:class:`~.grouped.GroupedObjective`, exact), in :func:`solver_width` dimensions when
    ``reduce_width`` and that is narrower than ``d`` -- the basis chosen for the start ``x``
    (packed, full space) so that its projection keeps its logits --, in ``dtype`` (float64, or
    float32 for the bulk of a mixed-precision solve); without ``group``, the full space in
    coordinates ``(W, H / h_scale, b)`` (:class:`~.scaled.ScaledObjective`).
    ``xp`` an array namespace: :class:`~.array_api.ArrayObjective` on ``device`` (``group``
    as above, full width; ``dtype`` "float64" or "float32").
    """
    if fixed_W is not None:
        from .fixed import FixedClassifierObjective

        return FixedClassifierObjective(problem, fixed_W)
    if xp is not None:
        from .array_api import ArrayObjective

        name = dtype if isinstance(dtype, str) else np.dtype(dtype).name
        return ArrayObjective(problem, xp, device, grouped=group, dtype=name)
    if group:
        from .grouped import GroupedObjective, width_basis

        basis = width_basis(problem, x) if reduce_width and x is not None else None
        return GroupedObjective(problem, basis, dtype=dtype)
    from .scaled import ScaledObjective

    return ScaledObjective(problem, h_scale)


def full_objective(problem: UFMProblem) -> Objective:
    """``F`` in the full space, unscaled (``z`` is the packed point ``x``)."""
    return make_objective(problem)


def batch_objective(problem: UFMProblem) -> Any:
    """``F_B`` of minibatches (:class:`~.batch.MinibatchObjective`)."""
    from .batch import MinibatchObjective

    return MinibatchObjective(problem)
