"""Solvers: each takes a :class:`~ufm.problem.UFMProblem` and options, returns a :class:`~ufm.result.Result`."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..exceptions import UFMError
from ..problem import UFMProblem
from ..result import Result
from .gradient import agd, gd
from .lbfgs import lbfgs
from .threads import blas_threads_for

METHODS: dict[str, Any] = {"gd": gd, "agd": agd, "lbfgs": lbfgs}


def solve(
    problem: UFMProblem, method: str = "lbfgs", x0: np.ndarray | tuple | None = None, *,
    rng: np.random.Generator | int | None = None, **options: Any,
) -> Result:
    """Solve ``problem`` with ``method`` in {"gd", "agd", "lbfgs", "convex"}.

    ``x0`` (packed vector or ``(W, H, b)``) and ``rng`` (seed of the random start) apply to
    the iterative methods; the convex relaxation is deterministic and takes neither
    (``rng`` is ignored there, ``x0`` is refused).

    Small problems (``K d N`` below :data:`ufm.solvers.threads.SMALL_WORK`) run on one BLAS
    thread (:mod:`ufm.solvers.threads`); large ones keep the BLAS library's setting.
    """
    if method == "convex" and "convex" not in METHODS:
        from .convex import convex  # optional heavy import (cvxpy)

        METHODS["convex"] = convex
    if method not in METHODS:
        raise UFMError(f"Unknown method {method!r}; choose one of {sorted(set(METHODS) | {'convex'})}.")
    with blas_threads_for(problem.K, problem.d, problem.N):  # one BLAS thread for small problems
        if method == "convex":
            if x0 is not None:
                raise UFMError("The convex relaxation takes no starting point; drop `x0` (or use 'lbfgs').")
            return METHODS[method](problem, **options)
        return METHODS[method](problem, x0, rng=rng, **options)


__all__ = ["solve", "gd", "agd", "lbfgs", "METHODS"]
