"""``ufm solve``: solve one problem, compare with the theorem, verify claim by claim."""

from __future__ import annotations

import argparse
from typing import Any

from ..exceptions import UFMError
from .common import add_problem_args, parse_float, print_json, problem_from_args


def add(sub: Any) -> None:
    p = sub.add_parser("solve", help="solve one problem and compare with the theorem")
    add_problem_args(p)
    p.add_argument("--method", default="lbfgs", choices=["gd", "agd", "lbfgs", "convex"])
    p.add_argument("--seed", type=int, default=0, help="seed of the random start")
    p.add_argument("--max-iter", type=int, default=None, dest="max_iter")
    p.add_argument("--step", type=parse_float, default=None, help="fixed step (gd) / initial step (agd)")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.add_argument("--group", action="store_true",
                   help="lbfgs: solve F restricted to one feature column per label set (exact on any "
                        "design: every critical point has one feature per set; see ufm.grouped)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--save", metavar="OUT.npz", help="save W (K x d), H (d x N), b (K), Y (K x N)")
    p.add_argument("--formulation", choices=["auto", "variational", "nuc"], default=None,
                   help="convex: nuclear-norm formulation (default auto: the cheaper for the solver)")
    p.add_argument("--cvx-solver", choices=["auto", "CLARABEL", "SCS"], default=None, dest="cvx_solver",
                   help="convex: auto (default: Clarabel for small problems, SCS from K ~ 14 on "
                        "profile 1:5,2:2), CLARABEL (interior point) or SCS (first order)")


def run(args: argparse.Namespace) -> int:
    from ..solvers.threads import blas_threads_for

    problem = problem_from_args(args)
    with blas_threads_for(problem.K, problem.d, problem.N):  # solve, certificate and verify alike
        return _run(args, problem)


def _run(args: argparse.Namespace, problem: Any) -> int:
    import numpy as np

    from ..solvers import solve
    from ..summary import summarize

    opts: dict[str, Any] = {}
    if args.group:
        if args.method != "lbfgs":
            raise UFMError(f"--group applies to --method lbfgs only (got {args.method}).")
        opts["group"] = True
    if args.method != "convex":
        if args.max_iter is not None:
            opts["max_iter"] = args.max_iter
        if args.step is not None:
            opts["step"] = args.step
        opts["progress"] = args.progress
    else:
        if args.formulation is not None:
            opts["formulation"] = args.formulation
        if args.cvx_solver is not None:
            opts["solver"] = args.cvx_solver
    result = solve(problem, args.method, rng=args.seed, **opts)
    summary = summarize(problem, result)
    if args.save:
        np.savez(args.save, W=result.W, H=result.H, b=result.b, Y=problem.design.Y,
                 lam_W=problem.lam_W, lam_H=problem.lam_H, lam_b=problem.lam_b, bias=problem.bias)
    if args.json:
        print_json(summary)
        return 0
    th = summary["theory"]
    print(problem.describe())
    print(f"  solver   {result.method}: {result.status.name} after {result.nit} iterations "
          f"({result.time:.3f} s), |grad| = {result.grad_norm:.2e}")
    print(f"  F        {result.fun:.15g}")
    if th["value"] is not None:
        print(f"  theory   {th['value']:.15g}   (relative gap {summary['gap_to_theory']:.2e})")
    if "certificate" in summary:
        print(f"  bound    {summary['certificate']['lower_bound']:.15g}   (certified gap "
              f"{summary['certificate']['gap']:.2e})")
    if "convex" in summary:
        cv = summary["convex"]
        print(f"  min C    {cv['value']:.15g}   ({cv['solver']}/{cv['formulation']}, {cv['solve_time']:.2f} s, "
              f"rank {cv['rank']}; certified lower bound {cv['lower_bound']:.15g})")
        print(f"  note     {cv['note']}")
    from ..verify import verify

    print(verify(problem, result.W, result.H, result.b).table())
    return 0
