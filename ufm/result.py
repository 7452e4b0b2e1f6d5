"""The one result type returned by every solver, its status enum and message table."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class Status(enum.IntEnum):
    """Outcome of a solver run (scipy-like integer codes; ``success`` iff ``>= 0``).

    ``str(status)`` is its name (``"CONVERGED_GTOL"``), ``int(status)`` its code.
    """

    CONVERGED_GTOL = 0
    CONVERGED_FTOL = 1
    OPTIMAL = 2
    MAX_ITER = -1
    OPTIMAL_INACCURATE = -2
    LINE_SEARCH_FAILED = -3
    NUMERICAL_ERROR = -4
    INFEASIBLE = -5
    UNBOUNDED = -6
    SOLVER_ERROR = -7
    INTERRUPTED = -8
    RANK_EXCEEDS_D = -9

    def __str__(self) -> str:  # IntEnum prints the number since Python 3.11
        return self.name

    def __format__(self, spec: str) -> str:  # f"{status}" as str(status), not the integer
        return format(self.name, spec)


MESSAGES: dict[Status, str] = {
    Status.CONVERGED_GTOL: "Converged: the gradient norm fell below `gtol`.",
    Status.CONVERGED_FTOL: "Converged: the relative objective change fell below `ftol`.",
    Status.OPTIMAL: "Optimal: the convex solver reports an optimal solution.",
    Status.MAX_ITER: "Stopped: `max_iter` reached before the tolerance; increase `max_iter`.",
    Status.OPTIMAL_INACCURATE: (
        "Inaccurate: the convex solver reports an inaccurate optimum; "
        "tighten the solver's tolerances or try another solver."
    ),
    Status.LINE_SEARCH_FAILED: (
        "Stopped: the line search could not decrease the objective (at machine precision); "
        "the point is usually as accurate as float64 allows."
    ),
    Status.NUMERICAL_ERROR: "Failed: a non-finite value appeared; reduce `step`.",
    Status.INFEASIBLE: "Failed: the convex solver reports the problem infeasible.",
    Status.UNBOUNDED: "Failed: the convex solver reports the problem unbounded.",
    Status.SOLVER_ERROR: "Failed: the solver raised an error.",
    Status.INTERRUPTED: "Interrupted by the user; the last iterate is returned.",
    Status.RANK_EXCEEDS_D: (
        "Not factored: the convex relaxation's minimiser has rank > d, so no UFM point at this d "
        "attains min C. extra['lower_bound'] (certified) and extra['value'] (min C) still bound "
        "min F from below; (W, H, b) is the best rank-d truncation -- a starting point for a "
        "nonconvex solver, not a minimiser."
    ),
}


def status_message(status: Status) -> str:
    """The one human-readable message for ``status``."""
    return MESSAGES[Status(status)]


CERTIFIED_GAP = 1e-6  # relative gap (F - D)/|F| accepted as a certified global minimum


@dataclass
class Result:
    """Outcome of any solver on a :class:`~ufm.problem.UFMProblem`.

    Field names follow :class:`scipy.optimize.OptimizeResult` where they fit.

    Attributes
    ----------
    x : ndarray
        Packed variables ``(W, H, b)`` (see :func:`ufm.objectives.full.pack`).
    fun : float
        Objective ``F(W, H, b)`` at the returned point (the convention of docs/theory.md).
    W : ndarray, shape (K, d)
    H : ndarray, shape (d, N)
    b : ndarray, shape (K,)
    status : Status
    message : str
    nit, nfev : int
        Iterations and objective(-and-gradient) evaluations.
    grad_norm : float
        Euclidean norm of the full gradient at the returned point (for convex solves: at
        the factored point).
    time : float
        Wall time in seconds.
    history : dict of lists
        One row every ``history_every`` iterations (default 1) and at the returned point:
        ``"iter"``, ``"fun"``, ``"grad_norm"``, ``"step"`` (the step that reached the
        iterate; ``nan`` where the solver has none) and ``"time"`` -- values the solver has
        anyway. NC metrics (``"nc1"``, ``"nc2_w"``, ``"nc2_h"``, ``"nc3"``) only with the
        option ``history_metrics`` (True: every row; "log": iterations 0, 1, 2, 4, ... and
        the last, ``nan`` elsewhere); see :class:`ufm.solvers._common.History`.
    method : str
    extra : dict
        Solver-specific output (e.g. ``Z``, ``lower_bound`` of the convex relaxation).
    lower_bound, rel_gap : float or None
        The dual certificate of the returned point (:func:`ufm.certify`): a lower bound
        ``D <= min F`` and the certified relative gap ``(F - D) / |F|``, filled in by
        :func:`ufm.solve` (None for losses without a certificate, or non-finite points).
        ``success`` says the solver converged; only a small ``rel_gap`` says the point is
        a global minimum -- a saddle such as ``W = H = 0`` converges too (see ``certified``).
    certificate : ufm.certificate.Certificate or None
        The certificate object behind ``lower_bound`` and ``rel_gap`` (reused by ``ufm solve``
        rather than computed twice).
    """

    x: np.ndarray
    fun: float
    W: np.ndarray
    H: np.ndarray
    b: np.ndarray
    status: Status
    nit: int = 0
    nfev: int = 0
    grad_norm: float = float("nan")
    time: float = 0.0
    history: dict[str, list[Any]] = field(default_factory=dict)
    method: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    lower_bound: float | None = None
    rel_gap: float | None = None
    certificate: Any = field(default=None, repr=False)

    @property
    def certified(self) -> bool | None:
        """True when the certified gap is at most :data:`CERTIFIED_GAP`; None without a certificate."""
        if self.rel_gap is None:
            return None
        return bool(self.rel_gap <= CERTIFIED_GAP)

    @property
    def success(self) -> bool:
        """True iff ``(W, H, b)`` is the solver's answer to the problem as posed, at its
        tolerance (status ``>= 0``). False on failures, early stops, inaccurate convex solves
        and ``RANK_EXCEEDS_D`` (a relaxation whose bound is valid but whose minimiser does
        not fit in dimension ``d``)."""
        return int(self.status) >= 0

    @property
    def message(self) -> str:
        if self.status == Status.MAX_ITER and "lr_schedule" in self.extra:  # minibatch: epochs, not max_iter
            return ("Stopped: the fixed schedule's epochs ended before the tolerance; raise `epochs` "
                    "or change the learning rate.")
        return status_message(self.status)

    def __repr__(self) -> str:  # short: arrays are large
        return (
            f"Result(method={self.method!r}, fun={self.fun:.15g}, status={self.status.name}, "
            f"nit={self.nit}, nfev={self.nfev}, grad_norm={self.grad_norm:.3g}, "
            f"time={self.time:.3f}s"
            + ("" if self.rel_gap is None else f", certified gap={self.rel_gap:.3g}") + ")"
        )
