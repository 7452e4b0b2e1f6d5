"""Solvers: each takes a :class:`~ufm.problem.UFMProblem` and options, returns a :class:`~ufm.result.Result`."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..exceptions import UFMError
from ..networks.train import network  # trains with JAX, imported only when called
from ..problem import UFMProblem
from ..result import Result
from .gradient import agd, gd
from .lbfgs import lbfgs
from .minibatch import adam, sgd
from .threads import blas_threads_for

METHODS: dict[str, Any] = {"gd": gd, "agd": agd, "lbfgs": lbfgs, "sgd": sgd, "adam": adam,
                          "network": network}


def solve(
    problem: UFMProblem, method: str = "lbfgs", x0: np.ndarray | tuple | None = None, *,
    rng: np.random.Generator | int | None = None, fixed_W: Any = None, **options: Any,
) -> Result:
    """Solve ``problem`` with ``method`` in {"gd", "agd", "lbfgs", "convex"}.

    ``x0`` (packed vector or ``(W, H, b)``) and ``rng`` (seed of the random start) apply to
    the iterative methods; the convex relaxation is deterministic and takes neither
    (``rng`` is ignored there, ``x0`` is refused).

    ``fixed_W`` (an array (K, d) or ``"etf[:SCALE]"``) freezes the classifier: ``F`` is
    minimised over ``(H, b)`` only, a convex problem solved exactly by
    :func:`ufm.fixed.solve_fixed` whatever ``method`` says.

    Small problems (``K d N`` below :data:`ufm.solvers.threads.SMALL_WORK`) run on one BLAS
    thread (:mod:`ufm.solvers.threads`); large ones keep the BLAS library's setting.
    """
    if fixed_W is not None:
        from ..fixed import solve_fixed

        return solve_fixed(problem, fixed_W, x0, **options)
    if method == "convex" and "convex" not in METHODS:
        from .convex import convex  # optional heavy import (cvxpy)

        METHODS["convex"] = convex
    if method not in METHODS:
        raise UFMError(f"Unknown method {method!r}; choose one of {sorted(set(METHODS) | {'convex'})}.")
    with blas_threads_for(problem.K, problem.d, problem.N):  # one BLAS thread for small problems
        if method == "convex":
            if x0 is not None:
                raise UFMError("The convex relaxation takes no starting point; drop `x0` (or use 'lbfgs').")
            result = METHODS[method](problem, **options)
        else:
            result = METHODS[method](problem, x0, rng=rng, **options)
        return attach_certificate(problem, result)


def attach_certificate(problem: UFMProblem, result: Result) -> Result:
    """Fill ``result.lower_bound`` and ``result.rel_gap`` from :func:`ufm.certify` (PAL losses, finite points)."""
    from ..certificate import certify

    if problem.loss not in ("pal", "pal-normalized") or not np.all(np.isfinite(result.x)):
        return result
    try:
        cert = certify(problem, result.W, result.H, result.b if problem.bias else None)
    except (UFMError, np.linalg.LinAlgError, FloatingPointError, OverflowError):
        return result  # a point so large that F overflows (a diverged run): no certificate
    if np.isfinite(cert.lower_bound) and np.isfinite(cert.rel_gap):
        result.lower_bound, result.rel_gap = float(cert.lower_bound), float(cert.rel_gap)
    return result


__all__ = ["solve", "gd", "agd", "lbfgs", "sgd", "adam", "METHODS", "attach_certificate"]
