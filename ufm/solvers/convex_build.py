"""The cvxpy model of the grouped convex relaxation, its formulations and solver choice.

Split from :mod:`ufm.solvers.convex` (which solves, factors back and certifies): the
problem built for cvxpy (:func:`_build`), the nuclear-norm formulations
(:func:`choose_formulation`), the solver for ``solver="auto"`` (:func:`choose_solver`),
the solvers' default tolerances and the status mapping.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..problem import UFMProblem
from ..result import Status

FORMULATIONS = ("auto", "variational", "nuc")
SOLVERS = ("CLARABEL", "SCS")
# solver="auto": Clarabel while its per-iteration cost G svec(r+1)^3 (variational form) is
# below this (K <= 13 on profile 1:5,2:2), SCS from there on (see choose_solver)
AUTO_CLARABEL_MAX_COST = 1e8
SOLVER_DEFAULTS: dict[str, dict[str, Any]] = {
    # Clarabel's own tolerances (1e-8) give min C to ~1e-9 relative; SCS's defaults (1e-4)
    # are far too loose for comparisons at 1e-6, 1e-7 gives ~1e-11 (K = 20: 375 iterations,
    # against 475 at 1e-8 and 325 at 1e-5 with only ~5e-9)
    "CLARABEL": {"tol_gap_abs": 1e-8, "tol_gap_rel": 1e-8, "tol_feas": 1e-8, "max_iter": 200},
    "SCS": {"eps_abs": 1e-7, "eps_rel": 1e-7, "max_iters": 100_000},
}


def map_status(cvxpy_status: str | None) -> Status:
    """The package's :class:`~ufm.result.Status` for a cvxpy status string.

    An inaccurate optimum stays ``OPTIMAL_INACCURATE`` (never reported as optimal); a
    solver stopped by its iteration or time limit is ``MAX_ITER``.
    """
    import cvxpy as cp

    table = {
        cp.OPTIMAL: Status.OPTIMAL,
        cp.OPTIMAL_INACCURATE: Status.OPTIMAL_INACCURATE,
        cp.INFEASIBLE: Status.INFEASIBLE,
        cp.INFEASIBLE_INACCURATE: Status.INFEASIBLE,
        cp.UNBOUNDED: Status.UNBOUNDED,
        cp.UNBOUNDED_INACCURATE: Status.UNBOUNDED,
        cp.USER_LIMIT: Status.MAX_ITER,
        cp.SOLVER_ERROR: Status.SOLVER_ERROR,
    }
    if cvxpy_status is None:
        return Status.SOLVER_ERROR
    return table.get(cvxpy_status, Status.SOLVER_ERROR)  # incl. infeasible_or_unbounded


def haar_basis(K: int) -> sp.csr_matrix:
    """A sparse orthonormal basis of the complement of ``1`` in R^K, shape (K, K-1).

    One column per internal node of a balanced binary tree on ``0..K-1``:
    ``(1_A/|A| - 1_B/|B|) / sqrt(1/|A| + 1/|B|)`` for the node's halves ``A``, ``B``;
    about ``K log2 K`` non-zeros.
    """
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    stack = [(0, K)]
    j = 0
    while stack:
        lo, hi = stack.pop()
        if hi - lo < 2:
            continue
        mid = (lo + hi) // 2
        a, b = mid - lo, hi - mid
        nrm = np.sqrt(1.0 / a + 1.0 / b)
        rows.extend(range(lo, hi))
        cols.extend([j] * (hi - lo))
        vals.extend([1.0 / a / nrm] * a + [-1.0 / b / nrm] * b)
        j += 1
        stack.extend([(lo, mid), (mid, hi)])
    return sp.csr_matrix((vals, (rows, cols)), shape=(K, K - 1))


def _svec(n: int) -> int:
    return n * (n + 1) // 2


def choose_formulation(r: int, G: int, solver: str = "CLARABEL") -> str:
    """``"nuc"`` or ``"variational"``: the cheaper for ``solver`` (``r`` rows, ``G`` label sets).

    Clarabel (interior point; cost of the dense PSD scaling blocks per iteration):
    ``svec(r+G)^3`` for nuc against ``G svec(r+1)^3`` for variational -- times
    ``(svec(r+1)/G)^2`` when ``G < svec(r+1)``, where the blocks' shared ``P`` makes the
    sparse factorisation fill in. SCS (first order; one eigendecomposition per PSD block
    and iteration): nuc while its one block has size ``r + G <= 1000`` (measured faster
    than the variational form there: 9 s against 23 s at K = 20, profile 1:5,2:2).
    """
    if solver == "SCS":
        return "nuc" if r + G <= 1000 else "variational"
    s = _svec(r + 1)
    var = G * float(s) ** 3 * max(1.0, s / G) ** 2
    nuc = float(_svec(r + G)) ** 3
    return "nuc" if nuc <= var else "variational"


def choose_solver(r: int, G: int) -> str:
    """The solver for ``solver="auto"``: ``"CLARABEL"`` or ``"SCS"`` (``r`` rows, ``G`` label sets).

    Clarabel's interior-point iterations (15-20 of them) each factor ``G`` dense blocks of
    order ``svec(r+1)`` -- ``G svec(r+1)^3`` flops, growing like ``K^8`` on a full profile --
    while SCS's cost per iteration is one eigendecomposition of order ``r + G`` (nuc) plus
    the exponential cones, at a few hundred iterations. Measured on profile 1:5,2:2
    (``python -m benchmarks.convex_formulations``): equal at K = 10 (1 s), SCS ahead from
    K = 15 on. Returns Clarabel while ``G svec(r+1)^3 <= AUTO_CLARABEL_MAX_COST``.
    """
    return "CLARABEL" if G * float(_svec(r + 1)) ** 3 <= AUTO_CLARABEL_MAX_COST else "SCS"


def _build(problem: UFMProblem, formulation: str, project: bool = True) -> tuple[Any, dict[str, Any]]:
    """The cvxpy problem and its variables."""
    import cvxpy as cp

    design = problem.design
    K, G, N = problem.K, design.G, problem.N
    n = design.group_counts.astype(np.float64)  # (G,)
    m = design.group_multiplicity.astype(np.float64)  # (G,)
    Yg = design.Yg  # (K, G)
    shift_invariant = project and problem.loss in ("pal", "pal-normalized")
    B = haar_basis(K) if shift_invariant else None  # (K, K-1)
    r = K - 1 if shift_invariant else K
    Zr = cp.Variable((r, G), name="Z")
    Z = B @ Zr if B is not None else Zr  # (K, G)
    br = cp.Variable(r, name="b") if problem.bias else None
    if br is not None:
        b = B @ br if B is not None else br
        X = Z + cp.reshape(b, (K, 1), order="F") @ np.ones((1, G))
    else:
        X = Z
    if problem.loss == "bce":
        loss = (cp.sum(cp.logistic(X), axis=0) @ n - cp.sum(cp.multiply(Yg * n, X))) / N
    else:
        w = np.ones(G) if problem.loss == "pal" else 1.0 / m
        loss = ((n * w * m) @ cp.log_sum_exp(X, axis=0) - cp.sum(cp.multiply(Yg * (n * w), X))) / N
    sq = np.sqrt(n)
    if formulation == "nuc":
        nuclear = cp.normNuc(cp.multiply(Zr, sq[None, :]))
    else:
        P = cp.Variable((r, r), symmetric=True, name="P")
        nuclear = 0.5 * (cp.trace(P) + sum(cp.matrix_frac(sq[g] * Zr[:, g], P) for g in range(G)))
    objective = loss + problem.mu * nuclear
    if br is not None and problem.lam_b > 0:
        objective = objective + 0.5 * problem.lam_b * cp.sum_squares(br)  # ||b|| = ||br||
    return cp.Problem(cp.Minimize(objective)), {"Zr": Zr, "br": br, "B": B}


def _run(prob: Any, solver: str, verbose: bool, options: dict[str, Any]) -> tuple[str, float, int, str]:
    """Solve once; returns (cvxpy status, wall time, iterations, error text)."""
    import cvxpy as cp

    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():  # cvxpy warns on inaccurate solves; we report a Status
            warnings.simplefilter("ignore")
            prob.solve(solver=solver, verbose=verbose, **options)
    except (cp.error.SolverError, np.linalg.LinAlgError) as exc:  # LinAlgError: cvxpy evaluating
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__  # a garbage point
        return cp.SOLVER_ERROR, time.perf_counter() - t0, 0, text
    stats = prob.solver_stats
    nit = int(stats.num_iters) if stats is not None and stats.num_iters is not None else 0
    return str(prob.status), time.perf_counter() - t0, nit, ""


__all__ = ["map_status", "haar_basis", "choose_formulation", "choose_solver", "FORMULATIONS", "SOLVERS",
           "SOLVER_DEFAULTS", "AUTO_CLARABEL_MAX_COST"]
