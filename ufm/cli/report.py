"""``ufm report``: tables and figures from stored sweeps."""

from __future__ import annotations

import argparse
import time
from typing import Any

from ..exceptions import UFMError


def add(sub: Any) -> None:
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


def run(args: argparse.Namespace) -> int:
    from .. import report

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
