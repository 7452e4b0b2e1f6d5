r"""The convex relaxation of the UFM with cvxpy (docs/theory.md section 5), factored back to ``(W, H, b)``.

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

Where the time goes (profiled on profile 1:5,2:2): cvxpy's part is ~1 s at K = 20 (build
0.3 s, canonicalisation 0.55 s with the CPP backend; the loss and the nuclear norm are
already vectorised atoms), the rest is the conic solve. Clarabel takes 15-20 iterations
at every K; each factors a KKT system holding, per label set, the dense NT scaling of a PSD
block of order ``svec(r+1) = K(K+1)/2`` -- about ``G svec(K)^3 ~ K^8/16`` flops: 0.65 s
per iteration at K = 20, 8.3 s at K = 30 (2 loaded cores, ~7 GFlop/s, near peak). Its
settings do not change that (K = 15: faer 3.8 s, qdldl 5.3 s, no equilibration slower,
tolerances 1e-7: 15 iterations instead of 20 at a 10x larger error in ``min C``).

No smaller decomposition of this kind exists: in the ``"nuc"`` LMI
``[[P, M], [M^T, Q]] >= 0`` (minimise ``(tr P + tr Q)/2``) only the diagonal of ``Q``
enters, so its off-diagonal entries are free; the specified entries form a chordal
pattern (``P`` block complete, ``Q`` block empty) whose maximal cliques are
``{rows of P} + {column g}``, and by Grone's completion theorem the LMI holds for some
``Q`` iff every clique block ``[[P, m_g], [m_g^T, t_g]] >= 0`` -- the variational form is
exactly this clique decomposition, with one block of order ``r + 1`` per label set.
Merging ``b`` label sets per block (``matrix_frac`` of a ``r x b`` block: exact, the trace
is additive) cuts the modelled flops ``(G/b) svec(r+b)^3`` by up to 2.4x at K = 30, but
was slower in Clarabel: K = 10, b = 2: 0.56 s against 0.38 s; K = 20, b = 5: 104 s against
24 s at the same load (b = 3 over 300 s) -- not used.
Hence the default ``solver="auto"`` (:func:`~ufm.solvers.convex_build.choose_solver`):
Clarabel while ``G svec(r+1)^3 <= 1e8`` (K <= 13 on that profile), SCS (with the nuc
form while ``r + G <= 1000``) above; the other solver stays the fallback.

Measured (``python -m benchmarks.convex_formulations``: wall time of ``solve(p, "convex")``
including build, factor-back and polish, median of 3; profile 1:5,2:2, lam = 1e-3, d = K;
2 shared cores at load ~2-3) at K = 10, 15, 20, 25, 30: Clarabel/variational 0.6, 2.8,
10.7, 35.5, 136 s (K = 30: one run; 145 s at load 3-4, over 400 s at load 8-10);
SCS/nuc 0.7, 1.5, 5.0, 14.6, 29-42 s; auto (Clarabel at K = 10, SCS/nuc above) 1.3, 2.8,
5.3, 18.9, 29.0 s at load 3-5. Relative error of ``min C`` against the theorem: Clarabel
<= 5.1e-9, SCS <= 6.3e-12; certified gap of the polished point <= 6e-16 in every run.

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
from ..objectives import full_objective, pack, unpack
from ..problem import UFMProblem
from ..result import Result, Status, status_message
from ._common import check_options
from .convex_build import (
    AUTO_CLARABEL_MAX_COST,
    FORMULATIONS,
    SOLVER_DEFAULTS,
    SOLVERS,
    _build,
    _run,
    choose_formulation,
    choose_solver,
    haar_basis,
    map_status,
)
from .lbfgs import lbfgs
from .polish import newton_polish

CONVEX_DEFAULTS: dict[str, Any] = {
    "formulation": "auto", "solver": "auto", "fallback": True, "verbose": False,
    "rank_tol": 1e-6, "solver_options": None, "polish": True, "project": None,
}
def convex(problem: UFMProblem, **options: Any) -> Result:
    r"""Solve the convex relaxation ``min C`` with cvxpy and factor it back at ``problem.d``.

    Options (keyword only; unknown names are rejected)
    -------------------------------------------------
    formulation : {"auto", "variational", "nuc"}
        Nuclear-norm formulation (see the module docstring); "auto" picks the cheaper.
    solver : {"auto", "CLARABEL", "SCS"}
        Clarabel (interior point) or SCS (first order; much faster from K ~ 15 on, see the
        timings above); "auto" (default): Clarabel for small problems, SCS for large ones
        (:func:`choose_solver`), the other one as the fallback.
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
        what the certificate sees; the polished point is certified to ~1e-12. When the
        Newton-CG steps stop above ``|grad F| = 1e-11`` (small lambdas), L-BFGS from the
        factored point finishes the job (``extra["refined_by_lbfgs"]``). ``extra``
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
    if solver not in SOLVERS + ("AUTO",):
        raise param_error("convex", "solver", f"one of {('auto',) + SOLVERS}", o["solver"])
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
    if solver == "AUTO":
        solver = choose_solver(problem.K - 1 if problem.loss != "bce" else problem.K, design.G)
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


POLISH_GTOL = 1e-11  # gradient norm the polish aims at


def _refine(problem: UFMProblem, x: np.ndarray, F: float, g: np.ndarray) -> tuple[np.ndarray, float, np.ndarray, int, bool]:
    """L-BFGS (the default engine, which ends with its own Newton polish) from the
    factored point when the Newton-CG polish stopped above ``POLISH_GTOL``; its point is
    kept when its gradient is smaller and ``F`` no larger (to rounding).

    Why: at small lambdas the relaxation's solver leaves the factored point outside
    Newton's region of fast convergence (the Hessian's scale is ~lambda), so the polish
    accepts few or no steps. Found by the long property profile:
    ``balanced(4, {1: 4, 2: 3})``, ``d = 3``, ``lam = 1e-5``, no bias: ``|grad F| = 3e-6``
    after the polish; ``balanced(6, {5: 1, 6: 1})``, ``d = 5``, ``lam = 1e-5``, free bias
    with ``lam_b = 0``: no step accepted, ``|grad F| = 4e-4``.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = lbfgs(problem, x, gtol=POLISH_GTOL)
    F_new, g_new = full_objective(problem).value_and_grad(res.x)
    if float(np.linalg.norm(g_new)) < float(np.linalg.norm(g)) and F_new <= F + 1e-12 * max(abs(F), 1.0):
        return np.asarray(res.x, dtype=np.float64), float(F_new), g_new, int(res.nfev) + 1, True
    return x, F, g, int(res.nfev) + 1, False


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
    F, g = full_objective(problem).value_and_grad(x)
    F_unpolished, nfev, polish_steps = F, 1, 0
    factored = rank <= d
    refined = False
    if factored and polish:
        x, F, g, polish_steps, n_pol = newton_polish(problem, x, gtol=POLISH_GTOL)
        nfev += n_pol
        if float(np.linalg.norm(g)) > POLISH_GTOL:
            x, F, g, n_ref, refined = _refine(problem, x, F, g)
            nfev += n_ref
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
        "polish_steps": polish_steps, "fun_unpolished": F_unpolished, "refined_by_lbfgs": refined,
        "formulation": formulation, "solver": best["solver"], "cvxpy_status": best["cvxpy_status"],
        "solve_time": best["time"], "setup_time": setup_time, "attempts": attempts,
    }
    return Result(
        x=x, fun=float(F), W=W, H=H, b=b.copy(), status=status, nit=int(best["iterations"]), nfev=nfev,
        grad_norm=float(np.linalg.norm(g)), time=time.perf_counter() - t0, history={},
        method="convex", extra=extra,
    )


__all__ = ["convex", "map_status", "haar_basis", "choose_formulation", "choose_solver", "CONVEX_DEFAULTS",
           "AUTO_CLARABEL_MAX_COST", "FORMULATIONS", "SOLVERS", "SOLVER_DEFAULTS"]
