"""``ufm solve``: solve one problem, compare with the theorem, verify claim by claim."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..exceptions import UFMError
from .common import (
    add_problem_args,
    nonneg_int,
    parse_float,
    pos_int,
    print_json,
    problem_from_args,
)


def add(sub: Any) -> None:
    p = sub.add_parser("solve", help="solve one problem and compare with the theorem")
    add_problem_args(p)
    p.add_argument("--method", default=None, choices=["gd", "agd", "lbfgs", "convex", "sgd", "adam"],
                   help="solver (default lbfgs; with --fixed-classifier the exact Newton method of ufm.fixed)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed of the random start (>= 0)")
    p.add_argument("--starts", type=pos_int, default=1,
                   help="best of N random starts (seeds SEED..SEED+N-1), each recorded in --json; "
                        "for landscapes that are not benign (d < K-1, imbalance)")
    p.add_argument("--max-iter", type=nonneg_int, default=None, dest="max_iter")
    p.add_argument("--step", type=parse_float, default=None,
                   help="fixed step (gd) / initial step (agd) / learning rate (sgd, adam), > 0")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.add_argument("--epochs", type=pos_int, default=None, help="sgd/adam: epochs (default 200)")
    p.add_argument("--batch-size", type=pos_int, default=None, dest="batch_size", help="sgd/adam: batch size (64)")
    p.add_argument("--lr-schedule", choices=["constant", "cosine", "step"], default=None, dest="lr_schedule",
                   help="sgd/adam: learning-rate schedule (constant); --step sets the learning rate")
    grouping = p.add_mutually_exclusive_group()
    grouping.add_argument("--group", action="store_const", const=True, default=None,
                          help="lbfgs: solve F restricted to one feature column per label set (exact on "
                               "any design: every critical point has one feature per set; see ufm.objectives.grouped). "
                               "The default (neither flag): grouped")
    grouping.add_argument("--no-group", action="store_const", const=False, dest="group",
                          help="lbfgs: solve F on all N feature columns (nc1 is then measured, not imposed)")
    p.add_argument("--fixed-classifier", metavar="etf[:SCALE]", default=None, dest="fixed_classifier",
                   help="freeze W to a simplex ETF with rows of norm SCALE (default 1; needs d >= K-1) and "
                        "minimise over (H, b) only (exact Newton; see ufm.fixed)")
    p.add_argument("--device", choices=["cpu", "cuda"], default=None,
                   help="lbfgs: cuda runs L-BFGS on the grouped objective in a GPU array library (CuPy, "
                        "PyTorch or JAX); cpu (the default) the numpy path")
    p.add_argument("--precision", choices=["auto", "float64", "mixed"], default=None,
                   help="lbfgs: mixed runs the bulk in float32 L-BFGS (one feature per label set), then "
                        "the float64 solve from its point (the answer is float64); float64 never; auto (the "
                        "default) mixed where measured to pay: pal losses, grouped, no width reduction, K d G >= 2e8 "
                        "(docs/performance.md)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--save", metavar="OUT.npz",
                   help="save W (K x d), H (d x N), b (K), Y (K x N) and the lambdas (checked before solving; "
                        "a file ufm did not write is never overwritten)")
    p.add_argument("--formulation", choices=["auto", "variational", "nuc"], default=None,
                   help="convex: nuclear-norm formulation (default auto: the cheaper for the solver)")
    p.add_argument("--cvx-solver", choices=["auto", "CLARABEL", "SCS"], default=None, dest="cvx_solver",
                   help="convex: auto (default: Clarabel for small problems, SCS from K ~ 14 on "
                        "profile 1:5,2:2), CLARABEL (interior point) or SCS (first order)")


# options that apply to each method: anything else given is an error, never ignored
MINIBATCH = ("sgd", "adam")
APPLIES = {"step": ("gd", "agd", *MINIBATCH), "max_iter": ("gd", "agd", "lbfgs"),
           "progress": ("gd", "agd", "lbfgs", *MINIBATCH), "group": ("lbfgs",), "formulation": ("convex",),
           "cvx_solver": ("convex",), "starts": ("gd", "agd", "lbfgs", *MINIBATCH),
           "epochs": MINIBATCH, "batch_size": MINIBATCH, "lr_schedule": MINIBATCH, "device": ("lbfgs",),
           "precision": ("lbfgs",)}
FLAG = {"max_iter": "--max-iter", "cvx_solver": "--cvx-solver", "batch_size": "--batch-size",
        "lr_schedule": "--lr-schedule"}
UNSET: dict[str, Any] = {"step": None, "max_iter": None, "progress": False, "group": None,
                         "formulation": None, "cvx_solver": None, "starts": 1, "epochs": None,
                         "batch_size": None, "lr_schedule": None, "device": None,
                         "precision": None}


def _options(args: argparse.Namespace) -> dict[str, Any]:
    if args.fixed_classifier is not None and args.method is not None:
        raise UFMError(f"--fixed-classifier runs its own solver (exact Newton on H, b); it conflicts with "
                       f"--method {args.method}: drop one of them.")
    if args.method is None:
        args.method = "lbfgs"
    for name, methods in APPLIES.items():
        if getattr(args, name) != UNSET[name] and args.method not in methods:
            flag = "--no-group" if name == "group" and args.group is False else FLAG.get(name, f"--{name}")
            raise UFMError(f"{flag} does not apply to --method {args.method} (it applies to "
                           f"{', '.join(methods)}); drop it or change the method.")
    if args.step is not None and not args.step > 0:
        raise UFMError(f"--step must be > 0; got {args.step!r}.")
    _check_precision(args)
    opts: dict[str, Any] = {}
    if args.group is not None:
        opts["group"] = args.group
    for name in ("max_iter", "step", "epochs", "batch_size", "lr_schedule", "precision"):
        if getattr(args, name) is not None:
            opts["lr" if (name == "step" and args.method in MINIBATCH) else name] = getattr(args, name)
    if args.device == "cuda":
        from ..xp.devices import namespace

        namespace("cuda")  # no GPU library or device: one line, exit 2, before any work
        if args.progress:
            raise UFMError("--progress does not apply to --device cuda; drop it.")
        opts["device"] = "cuda"
    elif args.method != "convex":
        opts["progress"] = args.progress
    if args.formulation is not None:
        opts["formulation"] = args.formulation
    if args.cvx_solver is not None:
        opts["solver"] = args.cvx_solver
    return opts


def _check_precision(args: argparse.Namespace) -> None:
    """--precision with the options of another solver path (the fixed classifier, the device):
    one line, exit 2, before any work."""
    if args.precision is None:
        return
    if args.fixed_classifier is not None:
        raise UFMError("--precision does not apply to --fixed-classifier (exact Newton in float64); drop it.")
    if args.device == "cuda":
        raise UFMError("--precision does not apply to --device cuda (the device path runs in float64); "
                       "drop one of them.")
    # --precision mixed with --loss bce or --no-group: ufm.solve refuses it itself, before any work


def _fmt(v: float | None, spec: str = ".15g") -> str:
    return "n/a" if v is None else format(v, spec)


def run(args: argparse.Namespace) -> int:
    from ..solvers.threads import blas_threads_for

    problem = problem_from_args(args)
    with blas_threads_for(problem.K, problem.d, problem.N):  # solve, certificate and verify alike
        return _run(args, problem)


def _verified(problem: Any, result: Any, json: bool) -> tuple[dict, Any]:
    """The summary of ``result`` and its verdict (the theorem's claims, or a frozen classifier's)."""
    from ..summary import summarize

    if result.extra.get("fixed_W"):
        from ..fixed import predict_fixed, verify_fixed

        pred = predict_fixed(problem, result.W)
        verdict = verify_fixed(problem, result.W, result.H, result.b, prediction=pred)
    else:
        from ..theory import predict
        from ..verify import verify

        pred = predict(problem)
        from ..certificate import certify

        cert = result.certificate  # ufm.solve certified this very point already (a second certify: 1.2 s at L)
        verdict = verify(problem, result.W, result.H, result.b, prediction=pred,
                         certifier=certify if cert is None else (lambda *_: cert))
    # the metrics only for --json: the table does not show them (7.7 of the CLI's 64 s at L)
    return summarize(problem, result, pred, verdict=verdict, metrics=json), verdict  # verified once


def _save(path: str, problem: Any, result: Any) -> None:
    from ..files import save_npz_atomic

    save_npz_atomic(path, W=result.W, H=result.H, b=result.b, Y=problem.design.Y,
                    lam_W=problem.lam_W, lam_H=problem.lam_H, lam_b=problem.lam_b, bias=problem.bias)


def _run(args: argparse.Namespace, problem: Any) -> int:
    import numpy as np

    from ..files import check_output_file
    from ..result import Status
    from ..solvers.multistart import solve_starts

    opts = _options(args)
    if args.fixed_classifier is not None:
        opts["fixed_W"] = args.fixed_classifier
    if args.save:
        check_output_file(args.save, "--save")  # before the work, not after it
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging run says NUMERICAL_ERROR instead
        result = solve_starts(problem, args.method, args.starts, args.seed, **opts)
        try:
            summary, verdict = _verified(problem, result, bool(args.json))
        except KeyboardInterrupt:  # Ctrl-C after the solve: keep what it found
            if args.save:
                _save(args.save, problem, result)
            print(f"ufm: interrupted while verifying; the solver had finished: {result.status.name}, "
                  f"F = {result.fun:.15g}, |grad| = {result.grad_norm:.2e}"
                  + (f"; saved to {args.save}" if args.save else ""), file=sys.stderr)
            return 130
    if "starts" in result.extra:
        summary["starts"] = result.extra["starts"]
    if args.save:
        _save(args.save, problem, result)
    code = 0 if (result.success and summary["verified"] is True) else 1
    if result.status == Status.INTERRUPTED:
        code = 130
    if args.json:
        print_json(summary)
        return code
    th = summary["theory"]
    print(problem.describe())
    unit = "epochs" if args.method in MINIBATCH else "iterations"
    print(f"  solver   {result.method}: {result.status.name} after {result.nit} {unit} "
          f"({result.time:.3f} s), |grad| = {result.grad_norm:.2e}")
    if args.starts > 1:
        fs = [s["fun"] for s in result.extra["starts"]]
        print(f"  starts   {len(fs)} (seeds {args.seed}..{args.seed + len(fs) - 1}); best is seed "
              f"{args.seed + result.extra['best_start']}; F ranged {min(fs):.10g} .. {max(fs):.10g}")
    print(f"  F        {result.fun:.15g}")
    if th["value"] is not None:
        print(f"  theory   {th['value']:.15g}   (relative gap {_fmt(summary['gap_to_theory'], '.2e')})")
    if "certificate" in summary:
        print(f"  bound    {_fmt(summary['certificate']['lower_bound'])}   (dual bound D of this point; "
              f"certified relative gap (F - D)/|F| = {_fmt(summary['certificate']['rel_gap'], '.2e')})")
    if "convex" in summary:
        cv = summary["convex"]
        print(f"  min C    {_fmt(cv['value'])}   ({cv['solver']}/{cv['formulation']}, {cv['solve_time']:.2f} s, "
              f"rank {cv['rank']}; the relaxation's own certified lower bound {_fmt(cv['lower_bound'])})")
        print(f"  note     {cv['note']}")
    if summary["grouped"]:
        print("  note     solved on one feature column per label set (exact: every critical point has "
              "one, see ufm.objectives.grouped), so the nc1 claim holds by construction; --no-group measures it")
        if summary["solver_width"] < summary["problem"]["d"]:
            print(f"  note     solved in {summary['solver_width']} of the d = {summary['problem']['d']} feature dimensions "
                  "(more than min(K, G): its local minima are global, see ufm.objectives.grouped) and embedded")
    if summary["precision"] == "mixed":
        f32 = summary["float32"]
        print(f"  note     the bulk ran in float32 ({f32['nit']} iterations, stopped on {f32['message']}), "
              "the rest in float64: the answer is float64 (--precision, docs/performance.md)")
    from ..summary import why_args

    print(verdict.table(converged=result.success, **why_args(result)))
    if not result.success:
        print(f"  solver did not succeed: {result.message}")
    return code
