"""``ufm sweep``: run a grid of problems, one stored record per cell (resumable)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..exceptions import UFMError
from .common import nonneg_int, parse_float, pos_int


def add(sub: Any) -> None:
    p = sub.add_parser(
        "sweep", help="run a grid of problems in parallel, one stored record per cell (resumable)",
        description="Run every cell of NAME (a shipped name, a .toml/.json file) or of a grid given by "
        "flags; records go to OUT/<hash>.json as each cell finishes, so an interrupted sweep resumes "
        "where it stopped. Load them with ufm.sweep.load(OUT).")
    p.add_argument("spec", nargs="?", metavar="NAME", help="shipped spec name (see --list) or path to a TOML/JSON spec")
    p.add_argument("--list", action="store_true", help="list the shipped specs and exit")
    p.add_argument("--out", help="directory of the records (required unless --list)")
    p.add_argument("--jobs", type=pos_int, default=1, help="local worker processes (joblib; default 1)")
    p.add_argument("--dask", metavar="ADDRESS", help="run on a Dask cluster, e.g. tcp://host:8786")
    p.add_argument("--dry-run", action="store_true", help="only count stored, failed and pending cells (writes nothing)")
    p.add_argument("--retry-failed", action="store_true", dest="retry_failed",
                   help="recompute the cells stored as failed or as not converged (by default such a cell is "
                        "kept, counted, and the exit status is 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group("a grid from flags (instead of NAME); several values make an axis")
    g.add_argument("--K", type=pos_int, nargs="+")
    g.add_argument("--d", nargs="+", help="ints or expressions K, K-1, K+1 (default K)")
    g.add_argument("--profile", nargs="+", help="balanced profiles like 1:2,2:1")
    g.add_argument("--design", nargs="+", help="designs as LABELS=COUNT items, e.g. 0=12,1=12,2=1,0+1=3 "
                   "(as ufm solve --design; K from the labels unless --K)")
    g.add_argument("--lam-W", type=parse_float, nargs="+", dest="lam_W")
    g.add_argument("--lam-H", type=parse_float, nargs="+", dest="lam_H")
    g.add_argument("--mu-ratio", type=parse_float, nargs="+", dest="mu_ratio", help="mu / mu_crit (instead of lambdas)")
    g.add_argument("--lam-ratio", type=parse_float, nargs="+", dest="lam_ratio", help="lam_W / lam_H with --mu-ratio")
    g.add_argument("--lam-b", type=parse_float, nargs="+", dest="lam_b")
    g.add_argument("--no-bias", action="store_true")
    g.add_argument("--loss", nargs="+", choices=["pal", "pal-normalized", "bce"])
    g.add_argument("--solver", nargs="+", choices=["gd", "agd", "lbfgs", "convex"])
    g.add_argument("--seeds", type=nonneg_int, nargs="+")
    g.add_argument("--name", default="cli", help="name of the sweep (default cli)")


def _spec_from_flags(args: argparse.Namespace) -> dict:
    grid: dict[str, Any] = {}
    for key in ("K", "d", "profile", "design", "lam_W", "lam_H", "mu_ratio", "lam_ratio", "lam_b", "loss", "solver", "seeds"):
        val = getattr(args, key)
        if val is not None:
            grid[key] = [int(v) if key == "d" and v.lstrip("-").isdigit() else v for v in val]
    if args.no_bias:
        grid["bias"] = False
    if "mu_ratio" in grid and ("lam_W" in grid or "lam_H" in grid):
        raise UFMError("--mu-ratio and --lam-W/--lam-H both set the regularisation; give one of them.")
    if "lam_ratio" in grid and "mu_ratio" not in grid:
        raise UFMError("--lam-ratio applies with --mu-ratio only.")
    if "profile" in grid and "design" in grid:
        raise UFMError("--profile and --design both give the design; use one of them.")
    if "design" not in grid and [k for k in ("K", "profile") if k not in grid]:
        missing = [k for k in ("K", "profile") if k not in grid]
        raise UFMError(f"ufm sweep needs NAME, or --K and --profile, or --design (missing {missing}).")
    return {"name": args.name, "grid": [grid]}


def run(args: argparse.Namespace) -> int:
    from .. import sweep
    from ..sweep.grid import load_spec

    if args.list:
        for name in sweep.shipped_specs():
            sp = load_spec(name)
            print(f"{name:<12} {len(sp.cells):>4} cells  {sp.title}")
        return 0
    if not args.out:
        raise UFMError("ufm sweep needs --out DIR (where the records go).")
    grid_flags = [k for k in ("K", "d", "profile", "design", "lam_W", "lam_H", "mu_ratio", "lam_ratio", "lam_b", "loss",
                              "solver", "seeds") if getattr(args, k) is not None] + (["no_bias"] if args.no_bias else [])
    if args.spec is not None and grid_flags:
        raise UFMError(f"give NAME or grid flags, not both (got {args.spec!r} and --{grid_flags[0].replace('_', '-')}).")
    spec = args.spec if args.spec is not None else _spec_from_flags(args)
    stats = sweep.run(spec, args.out, jobs=args.jobs, dask=args.dask, progress=not args.no_progress,
                      dry_run=args.dry_run, retry_failed=args.retry_failed)
    if args.dry_run:
        pending = stats.cells - stats.cached
        print(f"{stats.name}: {stats.cells} cells, {stats.cached} stored ({stats.failed} of them failed, "
              f"{stats.unconverged} did not converge), "
              f"{pending} to compute ({stats.corrupt} corrupt); nothing was written")
        return 0
    print(stats.line())
    for err in stats.errors[:10]:
        print(f"  failed cell {err}", file=sys.stderr)
    for item in stats.stalled[:10]:
        print(f"  cell did not converge {item}", file=sys.stderr)
    if stats.failed:
        print(f"ufm sweep: {stats.failed} cell(s) failed (stored as failed records); fix the cause and "
              "rerun with --retry-failed", file=sys.stderr)
    if stats.unconverged:
        print(f"ufm sweep: {stats.unconverged} cell(s) did not converge (diverged or stopped at max_iter; "
              "stored, counted here); change the cells' options and rerun, or --retry-failed recomputes them",
              file=sys.stderr)
    return 1 if stats.failed or stats.unconverged else 0
