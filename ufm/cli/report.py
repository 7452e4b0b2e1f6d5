"""``ufm report``: tables and figures from stored sweeps."""

from __future__ import annotations

import argparse
import time
from typing import Any

from ..exceptions import UFMError
from .common import pos_int


def add(sub: Any) -> None:
    p = sub.add_parser("report", help="tables (Markdown, LaTeX, CSV) and figures from stored sweeps",
                       description="Render reports/ from stored records (--from DIR), or sweep every "
                       "shipped spec from scratch first (--regenerate; what `make report` runs).")
    p.add_argument("--from", dest="src", metavar="DIR", help="records to render (a sweep directory or a parent)")
    p.add_argument("--out", default="reports", help="output directory (default reports)")
    p.add_argument("--regenerate", action="store_true", help="re-run every shipped spec into --cache first")
    p.add_argument("--cache", default="runs/report",
                   help="record folder for --regenerate; stored records are reused (resume) unless --fresh")
    p.add_argument("--fresh", action="store_true",
                   help="with --regenerate: first remove the records ufm stored in --cache (only files its "
                        "manifest lists), so every cell is computed again")
    p.add_argument("--jobs", type=pos_int, default=1)
    p.add_argument("--dask", metavar="ADDRESS")
    p.add_argument("--example", metavar="NPZ", help="with --regenerate: (re)write and measure this example features file")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    import sys

    from .. import report

    t0 = time.perf_counter()
    if args.fresh and not args.regenerate:
        raise UFMError("--fresh applies with --regenerate only.")
    if args.regenerate and args.src:
        raise UFMError("give --from DIR (render stored records) or --regenerate (sweep, then render), not both.")
    if not args.regenerate and (args.example or args.dask or args.jobs != 1):
        raise UFMError("--example, --dask and --jobs apply with --regenerate only.")
    if args.regenerate:
        try:
            files = report.regenerate(args.out, args.cache, jobs=args.jobs, dask=args.dask, example=args.example,
                                      progress=not args.no_progress, fresh=args.fresh)
        except KeyboardInterrupt:
            print("ufm report: interrupted; the records stored so far are kept in "
                  f"{args.cache}: run the same command without --fresh to resume.", file=sys.stderr)
            raise
    elif args.src:
        files = report.render(args.src, args.out)
    else:
        raise UFMError("ufm report needs --from DIR (stored sweeps) or --regenerate.")
    skipped = getattr(files, "skipped", [])
    for item in skipped[:10]:
        print(f"ufm: warning: skipped {item}", file=sys.stderr)
    print(f"ufm report: {len(files)} files in {args.out}/ ({time.perf_counter() - t0:.0f} s); index {args.out}/README.md"
          + (f"; {len(skipped)} item(s) skipped (listed in the index)" if skipped else ""))
    return 1 if skipped else 0
