"""What a solver sees of an objective: :class:`Objective` (a :class:`typing.Protocol`)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Objective(Protocol):
    """``F`` in some coordinates ``z`` (a flat array of ``size`` entries of namespace ``xp``).

    ``value_and_grad(z)``: ``(F, grad F)``, ``F`` a Python float; ``hvp(z, v)``: the Hessian of
    ``F`` at ``z`` applied to ``v``; ``pack(W, H, b)`` / ``unpack(z)``: the blocks of ``z`` as
    arrays of ``xp`` (``b`` is zeros when the problem has no bias); ``embed(z)``: the full
    point ``(W, H, b)`` as numpy float64 arrays (``H`` with one column per sample, in the
    design's canonical order); ``nfev``: evaluations so far."""

    xp: Any
    size: int
    nfev: int

    def value_and_grad(self, z: Any) -> tuple[float, Any]: ...

    def hvp(self, z: Any, v: Any) -> Any: ...

    def pack(self, W: Any, H: Any, b: Any) -> Any: ...

    def unpack(self, z: Any) -> tuple[Any, Any, Any]: ...

    def embed(self, z: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
