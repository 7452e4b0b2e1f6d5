"""The ``ufm`` command: solve, verify (and more subcommands as they are added).

Each subcommand is a pair ``_add_<name>(subparsers)`` / ``_cmd_<name>(args) -> int``
registered in ``COMMANDS``. Bad input exits with status 2 and one line
``ufm: error: ...``, no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import numpy as np

from .exceptions import SolverError, UFMError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, no usage dump
        self.exit(2, f"ufm: error: {message} (see `{self.prog} --help`)\n")


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _add_problem_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--K", type=int, required=True, help="number of classes (>= 2)")
    p.add_argument("--d", type=int, required=True, help="feature dimension (>= 1)")
    p.add_argument("--profile", required=True,
                   help="balanced design 'm:n_m,...', e.g. 1:3,2:2 (every label set of size m occurs n_m times)")
    p.add_argument("--lam-W", type=_float, required=True, dest="lam_W", help="weight decay of W (> 0)")
    p.add_argument("--lam-H", type=_float, required=True, dest="lam_H", help="weight decay of H (> 0)")
    p.add_argument("--lam-b", type=_float, default=0.0, dest="lam_b", help="bias decay (>= 0; default 0)")
    p.add_argument("--no-bias", action="store_true", help="fix b = 0 (no bias variable)")
    p.add_argument("--loss", default="pal", choices=["pal", "pal-normalized", "bce"])


def _problem_from_args(args: argparse.Namespace) -> Any:
    from .designs import balanced
    from .problem import UFMProblem

    return UFMProblem(balanced(args.K, args.profile), args.d, args.lam_W, args.lam_H, args.lam_b,
                      bias=not args.no_bias, loss=args.loss)


def _print_json(obj: Any) -> None:
    from .summary import jsonable

    print(json.dumps(jsonable(obj), indent=2, allow_nan=False))


# -- solve --------------------------------------------------------------------------
def _add_solve(sub: Any) -> None:
    p = sub.add_parser("solve", help="solve one problem and compare with the theorem")
    _add_problem_args(p)
    p.add_argument("--method", default="lbfgs", choices=["gd", "agd", "lbfgs", "convex"])
    p.add_argument("--seed", type=int, default=0, help="seed of the random start")
    p.add_argument("--max-iter", type=int, default=None, dest="max_iter")
    p.add_argument("--step", type=_float, default=None, help="fixed step (gd) / initial step (agd)")
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


def _cmd_solve(args: argparse.Namespace) -> int:
    from .solvers import solve
    from .summary import summarize

    problem = _problem_from_args(args)
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
        _print_json(summary)
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
    from .verify import verify

    print(verify(problem, result.W, result.H, result.b).table())
    return 0


# -- certify ------------------------------------------------------------------------
def _add_certify(sub: Any) -> None:
    from .features import LAYOUT

    p = sub.add_parser(
        "certify", help="certified lower bound and gap of a saved solution (any d, any source)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Certify a candidate (W, H, b) -- from `ufm solve --save`, another solver or a "
        "trained network's last layer -- with the closed-form dual bound D <= min F (SPEC section 3). "
        "Exit status 0 when the relative gap (F - D)/|F| is at most --tol, 1 otherwise, 2 on bad "
        "input. Layout of the .npz file (samples in any order):\n\n" + LAYOUT)
    p.add_argument("file", help=".npz with W (K, d), H (d, N), Y (K, N), optional b (K,) and lambdas")
    p.add_argument("--lam-W", type=_float, dest="lam_W", help="weight decay of W (overrides the file)")
    p.add_argument("--lam-H", type=_float, dest="lam_H", help="weight decay of H, on the sum over samples")
    p.add_argument("--lam-b", type=_float, dest="lam_b", help="bias decay (default: the file's, else 0)")
    p.add_argument("--no-bias", action="store_true", help="ignore any b in the file (model without bias)")
    p.add_argument("--loss", default="pal", choices=["pal", "pal-normalized"])
    p.add_argument("--tol", type=_float, default=1e-6, help="relative gap accepted as certified (1e-6)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _cmd_certify(args: argparse.Namespace) -> int:
    from .certificate import certify
    from .designs import from_indicator
    from .features import load_npz
    from .problem import UFMProblem
    from .summary import theory_dict
    from .theory import predict

    data = load_npz(args.file)
    lam = {k: getattr(args, k) if getattr(args, k) is not None else data.get(k) for k in ("lam_W", "lam_H", "lam_b")}
    lam_W, lam_H = lam["lam_W"], lam["lam_H"]
    if lam_W is None or lam_H is None:
        missing = " or ".join(k for k in ("lam_W", "lam_H") if lam[k] is None)
        raise UFMError(f"{args.file} stores no {missing}; give --lam-W and --lam-H "
                       "(the certificate depends on the weight decays).")
    b = None if args.no_bias else data["b"]
    design, order = from_indicator(data["Y"])
    W = data["W"]
    problem = UFMProblem(design, int(W.shape[1]), lam_W, lam_H,
                         0.0 if lam["lam_b"] is None else lam["lam_b"], bias=b is not None, loss=args.loss)
    cert = certify(problem, W, data["H"][:, order], b)
    pred = predict(problem)
    certified = cert.rel_gap <= args.tol
    out = {"file": args.file, "problem": problem.to_dict() | {"description": problem.describe(), "N": problem.N},
           "certificate": cert.to_dict(), "certified": certified, "tol": args.tol, "theory": theory_dict(pred)}
    if args.json:
        _print_json(out)
    else:
        print(f"{args.file}: {problem.describe()}")
        print(f"  F            {cert.objective:.15g}")
        print(f"  lower bound  {cert.lower_bound:.15g}   (D <= min F for every d)")
        print(f"  gap          {cert.gap:.3e}   (relative {cert.rel_gap:.3e})")
        print(f"  theorem      {pred.regime}: {pred.reason}")
        if pred.value is not None:
            print(f"  min F        {pred.value:.15g}   (theorem)")
        print(f"  {'CERTIFIED globally optimal' if certified else 'NOT certified'} to relative gap "
              f"{args.tol:g}" + ("" if certified else
                                 " (not optimal, or d below the rank where the relaxation is tight)"))
    return 0 if certified else 1


# -- verify -------------------------------------------------------------------------
VERIFY_HOOKS: list[Callable[..., Any]] = []  # extra per-problem claims (e.g. the convex relaxation)


def _add_verify(sub: Any) -> None:
    p = sub.add_parser("verify", help="confirm the theorem on the default suite (the main job)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--thorough", action="store_true",
                   help="run the property-based tests with the long hypothesis profile (hundreds of "
                        "random problems per property; needs the source tree and .[dev]) and "
                        "summarise examples tried and the largest deviation per claim")
    p.add_argument("--examples", type=int, default=None, metavar="N",
                   help="with --thorough: examples per property (default: the long profile's 300)")


def _cmd_verify(args: argparse.Namespace) -> int:
    if args.thorough:
        from .thorough import run_thorough

        out = run_thorough(seed=args.seed, max_examples=args.examples,
                           say=None if args.json else (lambda s: print(s, flush=True)))
        if args.json:
            _print_json(out)
        return 0 if out["passed"] else 1
    if args.examples is not None:
        raise UFMError("--examples only applies with --thorough.")
    from .suite import run_suite

    t0 = time.perf_counter()
    say = None if args.json else (lambda s: print(s, flush=True))
    outcomes = run_suite(seed=args.seed, hooks=tuple(VERIFY_HOOKS), progress=say)
    passed = all(o.verdict.passed for o in outcomes)
    elapsed = time.perf_counter() - t0
    if args.json:
        _print_json({"passed": passed, "time": elapsed, "problems": [
            {"name": o.case.name, "solver": o.solver, **o.verdict.to_dict()} for o in outcomes]})
    else:
        print()
        for o in outcomes:
            print(f"== {o.case.name}: {o.solver['status']}, {o.solver['nit']} it, {o.solver['time']:.2f} s")
            print(o.verdict.table())
        n_claims = sum(len(o.verdict.claims) for o in outcomes)
        n_ok = sum(c.passed for o in outcomes for c in o.verdict.claims)
        print(f"\nufm verify: {n_ok}/{n_claims} claims hold on {len(outcomes)} problems "
              f"in {elapsed:.1f} s -- {'THEOREM CONFIRMED' if passed else 'FAILED'}")
    return 0 if passed else 1


# -- sweep --------------------------------------------------------------------------
def _add_sweep(sub: Any) -> None:
    p = sub.add_parser(
        "sweep", help="run a grid of problems in parallel, one stored record per cell (resumable)",
        description="Run every cell of SPEC (a shipped name, a .toml/.json file) or of a grid given by "
        "flags; records go to OUT/<hash>.json as each cell finishes, so an interrupted sweep resumes "
        "where it stopped. Load them with ufm.sweep.load(OUT).")
    p.add_argument("spec", nargs="?", help="shipped spec name (see --list) or path to a TOML/JSON spec")
    p.add_argument("--list", action="store_true", help="list the shipped specs and exit")
    p.add_argument("--out", help="directory of the records (required unless --list)")
    p.add_argument("--jobs", type=int, default=1, help="local worker processes (joblib; default 1)")
    p.add_argument("--dask", metavar="ADDRESS", help="run on a Dask cluster, e.g. tcp://host:8786")
    p.add_argument("--dry-run", action="store_true", help="only count cached and pending cells")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group("a grid from flags (instead of SPEC); several values make an axis")
    g.add_argument("--K", type=int, nargs="+")
    g.add_argument("--d", nargs="+", help="ints or expressions K, K-1, K+1 (default K)")
    g.add_argument("--profile", nargs="+", help="balanced profiles like 1:2,2:1")
    g.add_argument("--lam-W", type=_float, nargs="+", dest="lam_W")
    g.add_argument("--lam-H", type=_float, nargs="+", dest="lam_H")
    g.add_argument("--mu-ratio", type=_float, nargs="+", dest="mu_ratio", help="mu / mu_crit (instead of lambdas)")
    g.add_argument("--lam-ratio", type=_float, nargs="+", dest="lam_ratio", help="lam_W / lam_H with --mu-ratio")
    g.add_argument("--lam-b", type=_float, nargs="+", dest="lam_b")
    g.add_argument("--no-bias", action="store_true")
    g.add_argument("--loss", nargs="+", choices=["pal", "pal-normalized", "bce"])
    g.add_argument("--solver", nargs="+", choices=["gd", "agd", "lbfgs", "convex"])
    g.add_argument("--seeds", type=int, nargs="+")
    g.add_argument("--name", default="cli", help="name of the sweep (default cli)")


def _spec_from_flags(args: argparse.Namespace) -> dict:
    grid: dict[str, Any] = {}
    for key in ("K", "d", "profile", "lam_W", "lam_H", "mu_ratio", "lam_ratio", "lam_b", "loss", "solver", "seeds"):
        val = getattr(args, key)
        if val is not None:
            grid[key] = [int(v) if key == "d" and v.lstrip("-").isdigit() else v for v in val]
    if args.no_bias:
        grid["bias"] = False
    missing = [k for k in ("K", "profile") if k not in grid]
    if missing:
        raise UFMError(f"ufm sweep needs SPEC or at least --K and --profile (missing {missing}).")
    return {"name": args.name, "grid": [grid]}


def _cmd_sweep(args: argparse.Namespace) -> int:
    from . import sweep
    from .grid import load_spec

    if args.list:
        for name in sweep.shipped_specs():
            sp = load_spec(name)
            print(f"{name:<12} {len(sp.cells):>4} cells  {sp.title}")
        return 0
    if not args.out:
        raise UFMError("ufm sweep needs --out DIR (where the records go).")
    spec = args.spec if args.spec is not None else _spec_from_flags(args)
    stats = sweep.run(spec, args.out, jobs=args.jobs, dask=args.dask, progress=not args.no_progress,
                      dry_run=args.dry_run)
    if args.dry_run:
        print(f"{stats.name}: {stats.cells} cells, {stats.cached} stored, "
              f"{stats.cells - stats.cached} to compute ({stats.corrupt} corrupt)")
    else:
        print(stats.line())
    return 0


# -- report -------------------------------------------------------------------------
def _add_report(sub: Any) -> None:
    p = sub.add_parser("report", help="tables (Markdown, LaTeX, CSV) and figures from stored sweeps",
                       description="Render reports/ from stored records (--from DIR), or sweep every "
                       "shipped spec from scratch first (--regenerate; what `make report` runs).")
    p.add_argument("--from", dest="src", metavar="DIR", help="records to render (a sweep directory or a parent)")
    p.add_argument("--out", default="reports", help="output directory (default reports)")
    p.add_argument("--regenerate", action="store_true", help="re-run every shipped spec into --cache first")
    p.add_argument("--cache", default="runs/report", help="record directory for --regenerate (wiped first)")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--dask", metavar="ADDRESS")
    p.add_argument("--example", metavar="NPZ", help="with --regenerate: (re)write and measure this example features file")
    p.add_argument("--no-progress", action="store_true")


def _cmd_report(args: argparse.Namespace) -> int:
    from . import report

    t0 = time.perf_counter()
    if args.regenerate:
        files = report.regenerate(args.out, args.cache, jobs=args.jobs, dask=args.dask, example=args.example,
                                  progress=not args.no_progress)
    elif args.src:
        files = report.render(args.src, args.out)
    else:
        raise UFMError("ufm report needs --from DIR (stored sweeps) or --regenerate.")
    print(f"ufm report: {len(files)} files in {args.out}/ ({time.perf_counter() - t0:.0f} s); index {args.out}/README.md")
    return 0


# -- metrics ------------------------------------------------------------------------
def _add_metrics(sub: Any) -> None:
    from .features import LAYOUT

    p = sub.add_parser("metrics", help="every NC metric (and the certificate) for features in an .npz file",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Measure features exported from any trained network. Layout of the "
                       ".npz file (samples in any order; ``ufm solve --save`` writes it):\n\n" + LAYOUT)
    p.add_argument("file", nargs="?", help=".npz with H (d, N), Y (K, N), W (K, d), optional b (K,)")
    p.add_argument("--lam-W", type=_float, dest="lam_W", help="weight decay of W (with --lam-H: certificate)")
    p.add_argument("--lam-H", type=_float, dest="lam_H", help="weight decay of H, on the sum over samples")
    p.add_argument("--lam-b", type=_float, dest="lam_b", help="bias decay (default 0 with a bias)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--make-example", metavar="OUT.npz", help="write the small example file and exit")


def _cmd_metrics(args: argparse.Namespace) -> int:
    from .features import load_npz, make_example, measure

    if args.make_example:
        make_example(args.make_example)
        print(f"wrote {args.make_example}")
        return 0
    if not args.file:
        raise UFMError("ufm metrics needs an .npz file (or --make-example OUT.npz).")
    data = load_npz(args.file)
    lam = {k: getattr(args, k) if getattr(args, k) is not None else data.get(k) for k in ("lam_W", "lam_H", "lam_b")}
    out = measure(data["W"], data["H"], data["b"], data["Y"], **lam)
    if args.json:
        _print_json(out)
        return 0
    m = out["metrics"]
    print(f"{args.file}: K={out['K']}, d={out['d']}, N={out['N']}, {out['design']}")
    for key in ("nc1", "nc1_all", "nc2_w", "nc2_h", "nc3", "nc3_dual", "bias", "decoding_accuracy", "norm_W", "norm_H"):
        v = m[key]
        print(f"  {key:<18} {'nan' if v is None else f'{v:.6g}'}")
    for mm, tw in m["tagwise"].items():
        print(f"  tag-wise m={mm:<7} angle {tw['angle_deg']:.4g} deg, scale {tw['scale']:.6g}"
              + (f" (predicted c_{mm} = {tw['predicted_scale']:.6g})" if tw["predicted_scale"] is not None else ""))
    if "certificate" in out:
        c = out["certificate"]
        print(f"  F                  {out['objective']['F']:.12g}")
        print(f"  lower bound        {c['lower_bound']:.12g}  (certified gap {c['gap']:.3g}, relative {c['rel_gap']:.3g})")
        print(f"  theorem            {out['theory']['regime']}: {out['theory']['reason']}")
    else:
        print("  (give --lam-W and --lam-H for the objective and the certificate)")
    return 0


COMMANDS: dict[str, tuple[Callable[[Any], None], Callable[[argparse.Namespace], int]]] = {
    "solve": (_add_solve, _cmd_solve),
    "verify": (_add_verify, _cmd_verify),
    "sweep": (_add_sweep, _cmd_sweep),
    "report": (_add_report, _cmd_report),
    "metrics": (_add_metrics, _cmd_metrics),
    "certify": (_add_certify, _cmd_certify),
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ufm", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add, _ in COMMANDS.values():
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command][1](args)
    except (UFMError, SolverError, FileNotFoundError) as exc:
        print(f"ufm: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ufm: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
