"""What a solver sees of an objective: :class:`Objective` (a :class:`typing.Protocol`).

Every variant of ``F`` implements it -- the full space (:class:`~ufm.objectives.scaled.ScaledObjective`,
with or without the scaling of ``H``), one feature column per label set in ``d`` or fewer
dimensions (:class:`~ufm.objectives.grouped.GroupedObjective`, float64 or float32), the
classifier fixed (:class:`~ufm.objectives.fixed.FixedClassifierObjective`) and the
array-API one (:class:`~ufm.objectives.array_api.ArrayObjective`, any array library) -- and every
solver is written against it alone: :func:`ufm.objectives.make_objective` picks the variant, the
solver never knows which it got.

Two coordinate systems meet here. ``z``: the solver's working vector (``size`` entries of the
namespace ``xp``). ``x``: the packed full point ``(W, H, b)`` of :mod:`ufm.objectives.layout`
(numpy float64, ``problem.n_vars`` entries), which results, callbacks and histories show.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Objective(Protocol):
    """``F`` in working coordinates ``z``.

    - ``value_and_grad(z, out=None)``: ``(F, grad_z)``, ``F`` a Python float; the gradient is
      written into ``out`` where the array library allows it (numpy), else a new array;
    - ``hessian_operator(z, dtype=None)``: ``v -> nabla^2_z F(z) v``, what depends on ``z`` alone
      computed once (a Newton-CG step applies it many times); ``dtype`` float32 allows the
      products in float32 (the result is float64 all the same; a variant without a float32
      kernel ignores it);
    - ``grad_norm(g)``: ``|grad F|`` at the full point from the working gradient ``g`` (so a
      tolerance means the same in every variant); ``euclidean``: it is ``|g|`` itself;
    - ``to_x(z, out=None)`` / ``to_y(x)``: the full packed point from ``z`` and back (``to_y``
      projects onto the variant's subspace; neither raises ``F``); ``grad_to_x(g, out=None)``: the
      full gradient at ``to_x(z)`` from ``g`` (exact on the variant's subspace, where every
      critical point of ``F`` lies); ``identity``: ``z`` is ``x`` (no conversion needed);
    - ``embed(z)``: ``(W, H, b)`` as numpy float64 arrays;
    - ``size``, ``nfev`` (evaluations so far), ``xp`` (the array namespace of ``z``).
    """

    @property
    def xp(self) -> Any: ...

    @property
    def size(self) -> int: ...

    @property
    def nfev(self) -> int: ...

    @property
    def euclidean(self) -> bool: ...

    @property
    def identity(self) -> bool: ...

    def value_and_grad(self, z: Any, out: Any = None) -> tuple[float, Any]: ...

    def hessian_operator(self, z: Any, dtype: Any = None) -> Callable[[Any], Any]: ...

    def grad_norm(self, g: Any) -> float: ...

    def to_x(self, z: Any, out: np.ndarray | None = None) -> np.ndarray: ...

    def to_y(self, x: np.ndarray) -> Any: ...

    def grad_to_x(self, g: Any, out: np.ndarray | None = None) -> np.ndarray: ...

    def embed(self, z: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
