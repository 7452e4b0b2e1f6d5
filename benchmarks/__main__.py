"""``python -m benchmarks``: the ladder, the GD baseline, the evaluation and convex scaling.

Examples::

    python -m benchmarks                      # everything (about 35-45 min on 2 cores)
    python -m benchmarks --sizes S,M --budget 120 --skip-convex
    python -m benchmarks --quick              # budgets of 60 s, one repeat: a smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

import ufm

from . import blas, convex_scaling, evaluation, gd_grid, output, peers, user_path
from .ladder import (
    CERT_TARGET,
    FAST_SOLVERS,
    LADDER,
    LITERATURE_MOMENTUM,
    LITERATURE_STEP,
    REL_TARGET,
    STEP_GRID,
    gd_spec,
    start,
)
from .tracker import RunRecord, _Counter, peak_memory, run

PAIRS = 9  # default call and fastest configuration alternated (S, M; L: 1 pair)
PEER_PAIRS = 5  # default call and each naive peer alternated (S, M, W; L: 1 pair; fewer past 60 s of peer runs)

FAST_ONLY = ("lbfgs (m=1)", "lbfgs (grouped)")  # what runs at --fast-only sizes (the fastest by far at L)
GRID_CAP = 100.0  # per-step grid budget: at most this many times the fastest solver's time
SCALING_CAP = 20.0  # the same for the scaled GD of the scaling study


def _log(msg: str) -> None:
    print(msg, flush=True)


def _median_hit(recs: list[RunRecord], key: str) -> dict[str, Any] | None:
    hits = [getattr(r, key) for r in recs if getattr(r, key) is not None]
    if len(hits) < len(recs) or not hits:
        return None
    return {"time": statistics.median(h.time for h in hits), "nfev": int(statistics.median(h.nfev for h in hits)),
            "it": int(statistics.median(h.it for h in hits)), "times": [h.time for h in hits]}


def _median_replay(recs: list[RunRecord]) -> dict[str, Any] | None:
    """Median uninstrumented time to the certified iterate, if every run has one."""
    ts = [r.replay for r in recs if r.replay is not None]
    if not recs or len(ts) < len(recs):
        return None
    return {"time": statistics.median(ts), "times": ts}


def _summ(label: str, recs: list[RunRecord], note: str, mem: int | None, **more: Any) -> dict[str, Any]:
    last = recs[-1]
    for r in recs:
        if "replay_mismatch" in r.extra:
            _log(f"  warning: {label}: the uninstrumented replay did not reproduce the run "
                 f"({r.extra['replay_mismatch']}); no replay time recorded")
    return {"label": label, "note": note, "runs": len(recs), "rel": _median_hit(recs, "rel"),
            "cert": _median_hit(recs, "cert"), "early": _median_hit(recs, "early"),
            "replay": _median_replay(recs),
            "time": statistics.median(r.time for r in recs),
            "nit": last.nit, "nfev": last.nfev, "final_rel": last.final_rel, "best_cert": last.best_cert,
            "stopped": last.stopped, "peak_mem": mem, "checks": sum(r.cert_checks for r in recs), **more}


def bench_size(name: str, args: argparse.Namespace) -> dict[str, Any]:
    size = LADDER[name]
    problem = size.problem()
    x0 = start(problem)
    pred = ufm.predict(problem)
    F_star = float(pred.value)
    _log(f"\n== {size.describe()}; theory: {pred.regime}, min F = {F_star:.15g}")
    repeats = args.repeats_L if name == "L" else args.repeats
    out: dict[str, Any] = {"size": name, "describe": size.describe(), "F_star": F_star, "N": problem.N,
                           "n_vars": problem.n_vars, "solvers": []}

    def fast(rep: int) -> None:
        for spec in FAST_SOLVERS:
            if name == "L" and rep > 0 and spec.label != FAST_SOLVERS[0].label:
                continue  # at L only the default L-BFGS is repeated (the others take minutes)
            if name in args.fast_only and spec.label not in FAST_ONLY:
                continue
            rec = run(problem, spec, x0, F_star, args.budget, name, replay_cert=True)
            fast_runs.setdefault(spec.label, []).append(rec)
            _log(f"  [{rep + 1}] {spec.label:32s} {output.hit_text(rec.cert)} (certified); "
                 f"{output.hit_text(rec.rel)} (rel. gap); stop: {rec.stopped}{output.replay_text(rec)}")

    fast_runs: dict[str, list[RunRecord]] = {}
    fast(0)
    t_fast = min((r.cert.time for rs in fast_runs.values() for r in rs if r.cert), default=math.inf)
    if name in args.fast_only:
        for rep in range(1, repeats):
            fast(rep)
        for spec in FAST_SOLVERS:
            if spec.label in fast_runs:
                out["solvers"].append(_summ(spec.label, fast_runs[spec.label], spec.note, None))
        user_rows(problem, name, F_star, repeats, args, out)
        return out
    # a GD step needing more than GRID_CAP times the fastest solver cannot change the verdict
    grid_budget = min(args.grid_budget, GRID_CAP * t_fast)
    _log("  GD step grid " + ", ".join(f"{s:g}" for s in STEP_GRID) + f" (at most {grid_budget:.3g} s per step)")
    grid = gd_grid.best_step(problem, x0, F_star, name, grid_budget, log=_log)
    step = grid.winner
    fine = gd_grid.refine(problem, x0, F_star, name, grid, log=_log)
    best_spec = gd_spec(step, f"gd, best grid step {step:g}")
    gd_runs = [run(problem, best_spec, x0, F_star, args.budget, name, replay_cert=True)]
    _log(f"  [1] {best_spec.label:32s} {output.hit_text(gd_runs[0].cert)} (certified); "
         f"{output.hit_text(gd_runs[0].rel)} (rel. gap); stop: {gd_runs[0].stopped}"
         f"{output.replay_text(gd_runs[0])}")
    for rep in range(1, repeats):
        fast(rep)
        if gd_runs[0].cert is not None and gd_runs[0].cert.time * (repeats - 1) < args.budget:
            gd_runs.append(run(problem, best_spec, x0, F_star, args.budget, name, replay_cert=True))
            _log(f"  [{rep + 1}] {best_spec.label:32s} {output.hit_text(gd_runs[-1].cert)} (certified)"
                 f"{output.replay_text(gd_runs[-1])}")
    fine_runs: list[RunRecord] = []
    fine_spec = gd_spec(fine.winner, f"gd, refined step {fine.winner:g}")
    if fine.winner != step:
        for rep in range(repeats):
            fine_runs.append(run(problem, fine_spec, x0, F_star, args.budget, name, replay_cert=True))
            _log(f"  [{rep + 1}] {fine_spec.label:32s} {output.hit_text(fine_runs[-1].cert)} (certified)"
                 f"{output.replay_text(fine_runs[-1])}")
    lit_spec = gd_spec(LITERATURE_STEP, f"gd, literature step {LITERATURE_STEP:g}")
    if step == LITERATURE_STEP:
        lit_runs = gd_runs
    else:
        lit_runs = [run(problem, lit_spec, x0, F_star, args.literature_budget, name)]
        _log(f"  [1] {lit_spec.label:32s} {output.hit_text(lit_runs[0].cert)} (certified); "
             f"rel. gap {lit_runs[0].final_rel:.2e} after {lit_runs[0].time:.0f} s ({lit_runs[0].nit} iterations)")
    # heavy ball: the public UFM code's optimiser (lr 0.1, momentum 0.9), and its best grid step
    hb_lit_spec = gd_spec(LITERATURE_STEP, f"heavy ball, literature (lr {LITERATURE_STEP:g}, "
                          f"momentum {LITERATURE_MOMENTUM:g})", momentum=LITERATURE_MOMENTUM)
    hb_lit_runs = [run(problem, hb_lit_spec, x0, F_star, args.literature_budget, name)]
    _log(f"  [1] {hb_lit_spec.label:32s} {output.hit_text(hb_lit_runs[0].cert)} (certified); "
         f"rel. gap {hb_lit_runs[0].final_rel:.2e} after {hb_lit_runs[0].time:.3g} s")
    _log(f"  heavy-ball step grid (momentum {LITERATURE_MOMENTUM:g})")
    hb_grid = gd_grid.best_step(problem, x0, F_star, name, grid_budget, log=_log, momentum=LITERATURE_MOMENTUM)
    hb_spec = gd_spec(hb_grid.winner, f"heavy ball, best grid step {hb_grid.winner:g}", momentum=LITERATURE_MOMENTUM)
    hb_runs = [run(problem, hb_spec, x0, F_star, args.budget, name, replay_cert=True)]
    _log(f"  [1] {hb_spec.label:32s} {output.hit_text(hb_runs[0].cert)} (certified){output.replay_text(hb_runs[0])}")
    mem = {}
    for spec in [*FAST_SOLVERS, best_spec]:
        mem[spec.label] = peak_memory(problem, spec, x0)
    mem[lit_spec.label] = mem[best_spec.label]
    for spec in FAST_SOLVERS:
        out["solvers"].append(_summ(spec.label, fast_runs[spec.label], spec.note, mem[spec.label]))
    gdv = {"gd_variant": True}
    out["solvers"].append(_summ(best_spec.label, gd_runs, best_spec.note, mem[best_spec.label], baseline=True, **gdv))
    if fine_runs:
        out["solvers"].append(_summ(fine_spec.label, fine_runs, fine_spec.note, mem[best_spec.label], refined=True,
                                    **gdv))
    out["solvers"].append(_summ(lit_spec.label, lit_runs, lit_spec.note, mem[lit_spec.label], literature=True, **gdv))
    out["solvers"].append(_summ(hb_lit_spec.label, hb_lit_runs, hb_lit_spec.note, mem[best_spec.label],
                                heavy_ball=True, **gdv))
    out["solvers"].append(_summ(hb_spec.label, hb_runs, hb_spec.note, mem[best_spec.label], heavy_ball=True, **gdv))
    out["grid"] = {"steps": list(STEP_GRID), "winner": step, "trials": grid.describe(),
                   "budget": grid_budget, "refined": fine.winner,
                   "refine_trials": fine.describe() if fine.trials else "not tried (no certified grid step)",
                   "heavy_ball_winner": hb_grid.winner, "heavy_ball_trials": hb_grid.describe()}
    if args.scaling and name != "L":
        out["scaling"] = scaling_study(problem, x0, F_star, name, args, grid_budget)
    user_rows(problem, name, F_star, repeats, args, out)
    return out


def user_rows(problem: ufm.UFMProblem, name: str, F_star: float, repeats: int, args: argparse.Namespace,
              out: dict[str, Any]) -> None:
    """The default call and the CLI, end to end, as rows of the size's table (their whole wall
    time counts as time to the certified optimum when what they return passes ``verify``),
    plus the threads-under-contention measurement."""
    size = LADDER[name]
    dc = user_path.default_call(problem, repeats)
    _log(f"  default call ufm.solve(p): {dc['time']:.3g} s, {dc['nfev']} evals, certified gap {dc['cert_gap']:.1e}, "
         f"verify {'PASS' if dc['verify'] else 'FAIL ' + str(dc['failed'])}; history {100 * dc['history_share']:.2g}% "
         f"of the call ({dc['history_rows']} rows)")
    ok = dc["verify"] and dc["cert_gap"] <= CERT_TARGET
    hit = {"time": dc["time"], "nfev": dc["nfev"], "it": dc["nit"], "times": dc["times"]} if ok else None
    out["default_call"] = dc
    out["solvers"].append({
        "label": "default call, end to end: ufm.solve(p)", "runs": repeats, "rel": hit, "cert": hit, "early": None,
        "replay": {"time": dc["time"], "times": dc["times"]} if ok else None, "time": dc["time"],
        "nit": dc["nit"], "nfev": dc["nfev"], "final_rel": (dc["fun"] - F_star) / abs(F_star),
        "best_cert": dc["cert_gap"], "stopped": f"returned {dc['status']}, verify {'PASS' if dc['verify'] else 'FAIL'}",
        "peak_mem": None, "checks": 0, "default_call": True,
        "note": "every option at its default (seed 0: the same start); whole call timed; certified and "
                "verified afterwards, outside the timing"})
    # the naive peers (benchmarks/peers.py), each alternated with the default call
    out["peers"] = peers.paired(problem, F_star, 1 if name == "L" else PEER_PAIRS)
    for r in out["peers"]["rows"]:
        _log(f"  peer {r['label']}: {r['peer']:.3g} s to rel. gap {r['rel']:.1e} ({r['nit']} iterations), paired with "
             f"the default call: peer / default {r['ratio']:.3g} ({r['ratio_min']:.3g}..{r['ratio_max']:.3g})")
    for label, why in out["peers"]["skipped"].items():
        _log(f"  peer {label}: skipped ({why})")
    fast = output._fastest_config(out)
    spec = next((sp for sp in FAST_SOLVERS if fast is not None and sp.label == fast["label"]), None)
    if spec is not None and fast is not None and fast.get("cert"):
        pairs = PAIRS if name != "L" else 1
        out["paired"] = user_path.paired_with_fastest(problem, spec, int(fast["cert"]["it"]), pairs)
        pr = out["paired"]
        _log(f"  paired with {pr['label']} ({pairs} pairs): default {pr['default']:.3g} s, fastest "
             f"{pr['fastest']:.3g} s, ratio {pr['ratio']:.3g} ({pr['ratio_min']:.3g}..{pr['ratio_max']:.3g})")
    cli = user_path.cli_call(size, max(1, min(repeats, 3)), timeout=args.budget)
    _log(f"  CLI {cli['command']}: {cli['time']} s, all claims pass: {cli.get('all_pass')}")
    out["cli"] = cli
    ok = cli["time"] is not None and cli.get("all_pass")
    chit = {"time": cli["time"], "nfev": None, "it": None, "times": cli["times"]} if ok else None
    out["solvers"].append({
        "label": "default call, end to end: ufm solve (CLI)", "runs": len(cli.get("times", [])), "rel": chit,
        "cert": chit, "early": None, "replay": {"time": cli["time"], "times": cli["times"]} if ok else None,
        "time": cli["time"] or cli.get("timeout", math.nan), "nit": 0, "nfev": 0, "final_rel": math.nan, "best_cert": math.nan,
        "stopped": "exit 0, every claim PASS" if ok else f"failed: {cli}", "peak_mem": None, "checks": 0,
        "default_call": True, "cli": True,
        "note": "subprocess wall time: interpreter start, imports, solve, certificate, verification, printing"})
    # calls of milliseconds need more than 3 alternations: at S one run measured 1.80 with 3,
    # then 1.06 and 1.05 with 15 (the per-iteration times under load stayed alike)
    quick = out["default_call"]["time"] < 1.0 if "default_call" in out else False
    out["contention"] = user_path.contention(problem, 1 if name == "L" else max(repeats, 15) if quick else repeats)
    c = out["contention"]
    _log(f"  contention: alone {c['alone']:.3g} s, one core busy {c['busy']:.3g} s: x{c['slowdown']:.2f} "
         f"(fair x{c['fair_slowdown']:.2f}; beyond share x{c['beyond_share']:.2f})"
         + (f"; per iteration under load {c['per_iteration_busy']}" if "per_iteration_busy" in c else ""))


def scaling_study(problem: ufm.UFMProblem, x0: np.ndarray, F_star: float, name: str,
                  args: argparse.Namespace, grid_budget: float) -> list[dict[str, Any]]:
    """GD's best step and the default L-BFGS with the H block scaled by ``s``: steps on H
    multiplied by ``s^2`` in {N^(-1/2), N^(1/2), N} ("the 1/N in the loss" compensated
    either way). GD trials are capped at ``SCALING_CAP`` times the fastest solver's time."""
    rows = []
    cap = grid_budget * SCALING_CAP / GRID_CAP
    for s2_name, s2 in (("1/sqrt(N)", 1 / math.sqrt(problem.N)), ("sqrt(N)", math.sqrt(problem.N)),
                        ("N", float(problem.N))):
        s = math.sqrt(s2)
        grid = gd_grid.best_step(problem, x0, F_star, name, cap, log=_log, h_scale=s)
        won = dict(grid.trials)[grid.winner] if math.isfinite(grid.winner) else None
        spec = FAST_SOLVERS[0]
        lb = run(problem, type(spec)(spec.label, spec.method, {**spec.options, "h_scale": s}), x0, F_star,
                 args.budget, name)
        rows.append({"h_scale^2": s2_name, "gd_step": grid.winner,
                     "gd_time": won.cert.time if won is not None and won.cert else None,
                     "lbfgs_time": lb.cert.time if lb.cert else None,
                     "lbfgs_nfev": lb.cert.nfev if lb.cert else None})
        _log(f"  scaling s^2={s2_name}: GD best step {grid.winner:g} -> {rows[-1]['gd_time']} s; "
             f"{spec.label} -> {rows[-1]['lbfgs_time']} s")
    return rows


class _Parser(argparse.ArgumentParser):
    """Errors in one line, as ufm's own commands print them (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def main(argv: list[str] | None = None) -> int:
    ap = _Parser(prog="python -m benchmarks", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="S,M,L,W", help="comma-separated subset of S,M,L,W (default all)")
    ap.add_argument("--budget", type=float, default=600.0,
                    help="seconds per run for the fast solvers and the best-step GD (default 600)")
    ap.add_argument("--literature-budget", type=float, default=600.0,
                    help="seconds for GD at the literature's step 0.1 (default 600)")
    ap.add_argument("--grid-budget", type=float, default=30.0,
                    help="seconds per step of the GD step grid (default 30)")
    ap.add_argument("--repeats", type=int, default=5, help="repeats at S and M (default 5; medians)")
    ap.add_argument("--repeats-L", type=int, default=2, help="repeats of the fastest solver at L (default 2)")
    ap.add_argument("--threads", type=int, default=1,
                    help="BLAS threads for numpy's and scipy's OpenBLAS (default 1: one problem per core, "
                         "as in a sweep, and stable under other load; 0 leaves the setting as is)")
    ap.add_argument("--eval-repeats", type=int, default=9, help="repeats of the evaluation timing (default 9)")
    ap.add_argument("--convex-limit", type=float, default=60.0, help="seconds for the convex K search")
    ap.add_argument("--skip-convex", action="store_true", help="skip the cvxpy relaxation's K search")
    ap.add_argument("--no-scaling", dest="scaling", action="store_false",
                    help="skip the H-scaling study at S and M")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: budgets 60 s, grid 10 s, one repeat, no scaling study")
    ap.add_argument("--fast-only", default="",
                    help="comma-separated sizes on which only the fast configurations and the default call run "
                         "(no GD baselines: ratios to GD are then not measured), e.g. L on a busy machine")
    ap.add_argument("--out", default="reports", help="directory for bench.md and bench.csv")
    args = ap.parse_args(argv)
    if args.quick:
        args.budget = args.literature_budget = 60.0
        args.grid_budget, args.repeats, args.repeats_L, args.scaling, args.eval_repeats = 10.0, 1, 1, False, 3
    sizes = [s.strip().upper() for s in args.sizes.split(",") if s.strip()]
    args.fast_only = [s.strip().upper() for s in args.fast_only.split(",") if s.strip()]
    bad = [s for s in sizes if s not in LADDER]
    if bad:
        ap.error(f"unknown size(s) {bad}; choose from {sorted(LADDER)}")
    why = _unwritable(Path(args.out))
    if why:  # before the work (the whole run takes most of an hour), not after it
        ap.error(why)
    if args.threads:
        failed = blas.set_threads(args.threads)
        if failed:
            _log(f"warning: could not set BLAS threads for {failed}")
    t_all = time.perf_counter()
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.node()} {platform.machine()}",
        "cpus": os.cpu_count(), "python": sys.version.split()[0], "numpy": np.__version__,
        "blas_threads": blas.get_threads(), "load_start": os.getloadavg(),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"), "args": vars(args),
        "targets": {"rel": REL_TARGET, "cert": CERT_TARGET},
    }
    _log(f"benchmarks: sizes {sizes}; BLAS threads {meta['blas_threads']}; load {meta['load_start']}")
    _Counter.install()
    results: dict[str, Any] = {"meta": meta, "sizes": []}
    try:
        _log("\n== start-up: import ufm, ufm --help")
        results["startup"] = user_path.startup()
        st = results["startup"]
        _log(f"  python -c pass {st['python']:.3f} s; import ufm {st['import_ufm']:.3f} s; "
             f"ufm --help {st['help']:.3f} s")
        current = ""
        try:
            with _ctrl_c_stops_the_bench():
                for name in sizes:
                    current = name
                    results["sizes"].append(bench_size(name, args))
        except KeyboardInterrupt:  # keep what the finished sizes measured
            meta["interrupted"] = current
            _log(f"\ninterrupted during {current}")
        if "L" in sizes and not meta.get("interrupted"):
            _log("\n== one evaluation against its three matrix products (L)")
            et = evaluation.measure(LADDER["L"].problem(), repeats=args.eval_repeats)
            results["evaluation"] = et
            _log(f"  evaluation {et.evaluation * 1e3:.1f} ms, three products {et.matmuls * 1e3:.1f} ms "
                 f"(as written: {et.matmuls_naive * 1e3:.1f} ms): ratio {et.ratio:.2f}")
            _log("\n== certificate at L")
            results["certificate_L"] = output.time_certificate(LADDER["L"].problem(), args.eval_repeats)
            _log(f"  certify(): {results['certificate_L']:.2f} s")
    finally:
        _Counter.uninstall()
    interrupted = bool(meta.get("interrupted"))
    if interrupted and not results["sizes"]:
        _log("nothing measured yet: nothing written")
        return 130
    if not (args.skip_convex or interrupted):
        _log(f"\n== cvxpy relaxation (variational): largest K within {args.convex_limit:g} s")
        results["convex"] = (convex_scaling.largest_K(args.convex_limit, log=_log)
                             if convex_scaling.available() else None)
    meta["load_end"] = os.getloadavg()
    meta["total"] = time.perf_counter() - t_all
    # interrupted: a partial report next to the last full one, which stays
    paths = output.write(results, Path(args.out), stem="bench.partial" if interrupted else "bench")
    if interrupted:
        _log(f"written: {', '.join(str(p) for p in paths)}")
        return 130
    _log("\n" + output.console_table(results))
    _log(f"\nwritten: {', '.join(str(p) for p in paths)} (total {meta['total'] / 60:.1f} min)")
    return 0


@contextlib.contextmanager
def _ctrl_c_stops_the_bench() -> Iterator[None]:
    """A solver catches Ctrl-C and returns its last iterate (``Status.INTERRUPTED``): right for
    a user's solve, wrong for the bench, which would go on with that run's numbers missing.
    While the bench runs, such a result raises ``KeyboardInterrupt`` again."""
    solve, lbfgs = ufm.solve, user_path.lbfgs

    def strict(fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            res = fn(*args, **kwargs)
            if res.status == ufm.Status.INTERRUPTED:
                raise KeyboardInterrupt
            return res
        return call

    ufm.solve, user_path.lbfgs = strict(solve), strict(lbfgs)  # type: ignore[assignment]
    try:
        yield
    finally:
        ufm.solve, user_path.lbfgs = solve, lbfgs  # type: ignore[assignment]


def _unwritable(out: Path) -> str | None:
    """Why ``out`` cannot take the report (None when it can): created if missing, probed with
    a temporary file."""
    from ufm.exceptions import UFMError
    from ufm.files import check_own_text

    from .output import HEADERS

    try:
        for name, head in HEADERS.items():  # a user's file (or a link) of these names is never replaced
            check_own_text(out / name, (head,), "--out")
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".bench-probe-"):
            pass
    except UFMError as exc:
        return str(exc).removeprefix("--out: ")
    except OSError as exc:
        return f"--out {out}: cannot write the report there ({exc.strerror or exc}); choose another folder"
    return None


if __name__ == "__main__":
    sys.exit(main())
