r"""The convex relaxation of the UFM with cvxpy (SPEC section 3), factored back to ``(W, H, b)``.

For every ``d``, ``min F >= min C`` with

.. math::

    C(Z_g, b) = \frac1N \sum_{S} n_S\, w_S\, \ell(z_S + b;\, y_S)
        + \mu \,\| Z_g D^{1/2} \|_* + \frac{\lambda_b}{2}\|b\|^2,
    \qquad \mu = \sqrt{\lambda_W \lambda_H},\quad D = \mathrm{diag}(n_S)

where

- ``Z_g`` (K, G) holds one logit column ``z_S`` per label set ``S`` (an optimal ``Z`` has
  equal columns within a label set, so grouping is exact); ``Z = Z_g E`` with ``E`` the
  (G, N) 0/1 expansion, i.e. ``Z = Z_g[:, design.group_index]``;
- ``n_S`` samples carry label set ``S``, ``y_S`` (K,) is its indicator, ``w_S`` is 1 for
  PAL and ``1/|S|`` for normalised PAL, ``ell`` is the loss of ``problem.loss``;
- ``b`` (K,) is the bias (a free variable when ``lam_b = 0``; absent without bias).

``min F = min C`` whenever ``d >= rank`` of a minimiser of ``C`` (``d >= K-1`` for designs
balanced within multiplicity, ``d >= K`` always suffices).

Formulations of the nuclear norm (same value, different cost):

- ``"nuc"``: cvxpy's ``normNuc`` -- one PSD block of size ``r + G``;
- ``"variational"``: ``||M||_* = min_{P >= 0} (tr P + sum_S m_S^T P^{-1} m_S) / 2`` with one
  ``matrix_frac`` per label set -- ``G`` PSD blocks of size ``r + 1``;
- ``"auto"`` (default): the cheaper of the two for the solver (:func:`choose_formulation`):
  for Clarabel variational unless there are few label sets, for SCS nuc unless ``r + G``
  is large.

With Clarabel and the shift-invariant PAL losses, the columns of ``Z`` and ``b`` are taken
in the complement of ``1`` (exact: projecting them there keeps the loss and does not
increase the norms) through a sparse orthonormal Haar basis, so ``r = K-1``: PSD blocks
one smaller, and -- decisively -- a sparse factorisation without fill-in across blocks
(K = 15, profile 1:5,2:2: 6 s instead of 380 s). SCS converges in half the iterations
without it, so there ``r = K`` (option ``project``).

Wall times (profile 1:5,2:2, lam = 1e-3; 2 cores shared with other jobs, load 2-5, so
+-50%): Clarabel/variational 1 s at K = 10, 6-12 s at K = 15, 16-21 s at K = 20, 44 s at
K = 25, 154 s at K = 30; SCS/nuc 1 s, 1-4 s, 9-18 s, 15 s, 52 s; SCS/variational 2 s,
5-17 s, 20-23 s, 27 s, 80 s; Clarabel/nuc 4-8 s at K = 10, 140 s at K = 15.

The minimiser factors back through ``Z_g D^{1/2} = U S V^T`` (numerical rank ``r``):
``W = (lam_H/lam_W)^{1/4} U S^{1/2} R^T``, ``H_g = (lam_W/lam_H)^{1/4} R S^{1/2} V^T D^{-1/2}``,
``R`` the first ``r`` columns of ``I_d`` -- a UFM point with ``F(W, H, b) = C``.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..certificate import certify, convex_value, lower_bound_from_logits
from ..exceptions import ConvergenceWarning, SolverError, UFMError, param_error
from ..objective import fun_and_grad, pack, unpack
from ..problem import UFMProblem
from ..result import Result, Status, status_message
from ._common import check_options
from .polish import newton_polish

CONVEX_DEFAULTS: dict[str, Any] = {
    "formulation": "auto", "solver": "CLARABEL", "fallback": True, "verbose": False,
    "rank_tol": 1e-6, "solver_options": None, "polish": True, "project": None,
}
FORMULATIONS = ("auto", "variational", "nuc")
SOLVERS = ("CLARABEL", "SCS")
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


def convex(problem: UFMProblem, **options: Any) -> Result:
    r"""Solve the convex relaxation ``min C`` with cvxpy and factor it back at ``problem.d``.

    Options (keyword only; unknown names are rejected)
    -------------------------------------------------
    formulation : {"auto", "variational", "nuc"}
        Nuclear-norm formulation (see the module docstring); "auto" picks the cheaper.
    solver : {"CLARABEL", "SCS"}
        Clarabel (interior point, default) or SCS (first order; much faster from K ~ 15 on,
        see the timings above).
    fallback : bool
        True: if the solver fails or is inaccurate, try the other one and keep the better.
    verbose : bool
        Print the solver's log.
    rank_tol : float
        Singular values of ``Z`` below ``rank_tol`` times the largest -- or whose nuclear
        norm term ``mu sigma`` is below ``1e-7`` of ``|C|``, the interior-point solver's
        noise level -- count as zero (1e-6).
    solver_options : dict
        Passed to the solver, over the package's tolerances ``SOLVER_DEFAULTS``.
    project : bool or None
        Work in the complement of ``1`` (PAL losses only); None (default): for Clarabel only.
    polish : bool
        True (default): when factored, Newton-CG steps on ``F`` (:mod:`ufm.solvers.polish`)
        drive the factored point's gradient to float64 precision. An interior-point
        solution is accurate to ~1e-9 in value but only ~1e-5 in its gradient, which is
        what the certificate sees; the polished point is certified to ~1e-12. ``extra``
        keeps cvxpy's own numbers (``value``, ``Zg``) unchanged.

    Returns
    -------
    Result
        ``status``: ``OPTIMAL``; ``OPTIMAL_INACCURATE`` / ``MAX_ITER`` (with a
        :class:`~ufm.exceptions.ConvergenceWarning`); or ``RANK_EXCEEDS_D`` when the
        relaxation's minimiser has rank ``> d`` -- then ``(W, H, b)`` is its best rank-``d``
        truncation (not a minimiser; a starting point for a nonconvex solver) and
        ``success`` is False, while the bounds below stay valid.
        ``fun`` is ``F(W, H, b)`` at the factored point. ``extra`` holds:

        - ``value``: ``C`` at the solver's ``(Z, b)``, i.e. ``min C`` to solver accuracy;
        - ``lower_bound``: a certified ``D <= min C <= min F`` (every ``d``) from the dual
          point built on the solution's logits (:mod:`ufm.certificate`);
        - ``solver_value``: cvxpy's reported optimal value;
        - ``Zg`` (K, G) and ``b``; ``Z = Zg[:, problem.design.group_index]``;
        - ``singular_values`` (of ``Z``), ``rank``, ``factored`` (bool), ``note``;
        - ``polish_steps`` and ``fun_unpolished`` (``F`` at the factored point before polishing);
        - ``formulation``, ``solver``, ``cvxpy_status``, ``solve_time``, ``setup_time``,
          ``attempts`` (one entry per solver tried).

    Raises
    ------
    SolverError
        When no solver returned a solution (status in ``error.status``).
    """
    o = check_options("convex", options, CONVEX_DEFAULTS)
    if o["formulation"] not in FORMULATIONS:
        raise param_error("convex", "formulation", f"one of {FORMULATIONS}", o["formulation"])
    solver = str(o["solver"]).upper()
    if solver not in SOLVERS:
        raise param_error("convex", "solver", f"one of {SOLVERS}", o["solver"])
    if not (isinstance(o["rank_tol"], (int, float)) and 0 <= o["rank_tol"] < 1):
        raise param_error("convex", "rank_tol", "a float in [0, 1)", o["rank_tol"])
    user_opts = o["solver_options"] or {}
    if not isinstance(user_opts, dict):
        raise param_error("convex", "solver_options", "a dict of solver settings", user_opts)
    if problem.bias and problem.lam_b == 0 and problem.loss != "bce":
        absent = np.flatnonzero(problem.design.Yg.sum(axis=1) == 0)
        if absent.size:
            raise UFMError(
                f"Classes {absent.tolist()} occur in no label set and the bias is free (lam_b = 0): "
                "their logits can decrease without bound, so min C is not attained. Set lam_b > 0, "
                "use bias=False, or drop those classes."
            )
    t0 = time.perf_counter()
    design = problem.design
    built: dict[tuple[str, bool], tuple[Any, dict[str, Any]]] = {}
    setup_time = 0.0

    def build(name: str) -> tuple[str, Any, dict[str, Any]]:
        nonlocal setup_time
        project = (name == "CLARABEL") if o["project"] is None else bool(o["project"])
        r = problem.K - 1 if (project and problem.loss != "bce") else problem.K
        form = choose_formulation(r, design.G, name) if o["formulation"] == "auto" else o["formulation"]
        if (form, project) not in built:
            t1 = time.perf_counter()
            built[form, project] = _build(problem, form, project)
            setup_time += time.perf_counter() - t1
        return form, *built[form, project]

    order = [solver] + ([s for s in SOLVERS if s != solver] if o["fallback"] else [])
    attempts: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    for name in order:
        form, prob, var = build(name)
        opts = {**SOLVER_DEFAULTS[name], **(user_opts if name == solver else {})}
        status_text, dt, nit, err = _run(prob, name, bool(o["verbose"]), opts)
        status = map_status(status_text)
        have = var["Zr"].value is not None and (var["br"] is None or var["br"].value is not None)
        attempt = {"solver": name, "formulation": form, "projected": var["B"] is not None,
                   "cvxpy_status": status_text, "status": status.name, "time": dt, "iterations": nit,
                   "error": err}
        attempts.append(attempt)
        if have and status in (Status.OPTIMAL, Status.OPTIMAL_INACCURATE, Status.MAX_ITER):
            try:
                reported = float(prob.value)
            except (np.linalg.LinAlgError, TypeError, ValueError):  # cvxpy re-evaluates atoms
                reported = float("nan")
            cand = {**attempt, "Zr": np.array(var["Zr"].value), "value": reported, "B": var["B"],
                    "br": None if var["br"] is None else np.array(var["br"].value), "status_enum": status}
            if best is None or (best["status_enum"] != Status.OPTIMAL and status == Status.OPTIMAL):
                best = cand
        if best is not None and best["status_enum"] == Status.OPTIMAL:
            break
    if best is None:
        last = attempts[-1]
        raise SolverError(
            "convex: no solver returned a solution ("
            + "; ".join(f"{a['solver']}: {a['cvxpy_status']}{' - ' + a['error'] if a['error'] else ''}"
                        for a in attempts)
            + "). Try solver='SCS', loosen `solver_options`, or check the problem's scaling.",
            status=map_status(last["cvxpy_status"]),
        )
    status = best["status_enum"]
    if status != Status.OPTIMAL:
        warnings.warn(
            f"convex: {status_message(status)} ({best['solver']}: {best['cvxpy_status']}); the values are "
            "approximate -- the certified `lower_bound` in `extra` stays valid.",
            ConvergenceWarning, stacklevel=3,
        )
    return _factor(problem, best, attempts, best["formulation"], o["rank_tol"], best["B"], t0,
                   setup_time, bool(o["polish"]))


def _factor(
    problem: UFMProblem, best: dict[str, Any], attempts: list[dict[str, Any]], formulation: str,
    rank_tol: float, B: sp.csr_matrix | None, t0: float, setup_time: float, polish: bool,
) -> Result:
    """Certify the relaxation's solution and factor it back at ``problem.d``."""
    design = problem.design
    K, d = problem.K, problem.d
    Zg = B @ best["Zr"] if B is not None else best["Zr"]  # (K, G)
    Zg = np.asarray(Zg)
    if problem.bias:
        b = np.asarray(B @ best["br"] if B is not None else best["br"], dtype=np.float64)
    else:
        b = np.zeros(K)
    value = convex_value(problem, Zg, b)
    certifiable = problem.loss in ("pal", "pal-normalized")
    lower = lower_bound_from_logits(problem, Zg + b[:, None])[0] if certifiable else float("nan")
    sq = np.sqrt(design.group_counts.astype(np.float64))
    U, s, Vt = np.linalg.svd(Zg * sq, full_matrices=False)  # Zg D^{1/2} = U S V^T
    floor = 1e-7 * max(abs(value), 1e-300) / problem.mu  # mu sigma below 1e-7 |C|: solver noise
    rank = int(np.sum(s > max(rank_tol * (s[0] if s.size else 0.0), floor)))
    k = min(rank, d)
    cW = (problem.lam_H / problem.lam_W) ** 0.25
    W = np.zeros((K, d))
    Hg = np.zeros((d, design.G))
    root = np.sqrt(s[:k])
    W[:, :k] = cW * U[:, :k] * root  # R = first k columns of I_d
    Hg[:k] = (root[:, None] * Vt[:k]) / (cW * sq)
    H = Hg[:, design.group_index]  # (d, N)
    x = pack(W, H, b, problem.bias)
    F, g = fun_and_grad(x, problem)
    F_unpolished, nfev, polish_steps = F, 1, 0
    factored = rank <= d
    if factored and polish:
        x, F, g, polish_steps, n_pol = newton_polish(problem, x, gtol=1e-11)
        nfev += n_pol
        W, H, b = (a.copy() for a in unpack(x, problem))
        if certifiable:
            lower = max(lower, certify(problem, W, H, b).lower_bound)
    if factored:
        status = best["status_enum"]
        note = (f"factored at d = {d} >= rank = {rank}: (W, H, b) is a global minimiser of F "
                "to the solver's accuracy")
    else:
        status = Status.RANK_EXCEEDS_D
        note = (f"the relaxation's minimiser has rank {rank} > d = {d}: min C = {value:.12g} is a lower "
                f"bound on min F but no UFM point at d = {d} attains it (the nonconvex problem and its "
                f"relaxation part); (W, H, b) is the best rank-{d} truncation, F = {F:.12g}")
    extra = {
        "value": value, "lower_bound": lower, "solver_value": best["value"], "Zg": Zg, "b": b,
        "singular_values": s, "rank": rank, "factored": factored, "note": note,
        "polish_steps": polish_steps, "fun_unpolished": F_unpolished,
        "formulation": formulation, "solver": best["solver"], "cvxpy_status": best["cvxpy_status"],
        "solve_time": best["time"], "setup_time": setup_time, "attempts": attempts,
    }
    return Result(
        x=x, fun=float(F), W=W, H=H, b=b.copy(), status=status, nit=int(best["iterations"]), nfev=nfev,
        grad_norm=float(np.linalg.norm(g)), time=time.perf_counter() - t0, history={},
        method="convex", extra=extra,
    )


__all__ = ["convex", "map_status", "haar_basis", "choose_formulation", "CONVEX_DEFAULTS"]
