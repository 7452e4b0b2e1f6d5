"""Wall time of the cvxpy relaxation by formulation and solver (issue #3 targets).

``python -m benchmarks.convex_formulations [--Ks 10,15,20,25,30] [--repeats 3]
[--configs CLARABEL/variational,SCS/nuc,auto/auto] [--limit 400]``

Profile ``1:5,2:2`` (``designs.balanced(K, {1: 5, 2: 2})``), ``d = K``, lam_W = lam_H =
lam_b = 1e-3 -- the setting of the issue's measurements. Every solve runs in a fresh
subprocess (cvxpy's import is not timed; a solve over ``--limit`` seconds is cut off) as
``ufm.solve(p, "convex", solver=..., formulation=..., fallback=False)``. Printed per run:
the wall time of that call (build, conic solve, factor-back, Newton polish), the conic
solve alone, the status, the relative error of cvxpy's ``min C`` against the theorem's
``min phi`` and the certified relative gap of the returned point. Then the median over the
repeats per (configuration, K). Target: variational K = 20 < 10 s, K = 30 < 60 s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np

_CODE = r"""
import json, sys, time, warnings
import ufm
from ufm.certificate import certify
K, solver, form = int(sys.argv[1]), sys.argv[2], sys.argv[3]
p = ufm.UFMProblem(ufm.balanced(K, {1: 5, 2: 2}), d=K, lam_W=1e-3, lam_H=1e-3, lam_b=1e-3)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    t = time.perf_counter()
    r = ufm.solve(p, "convex", solver=solver, formulation=form, fallback=False)
    dt = time.perf_counter() - t
th = ufm.predict(p).value
print(json.dumps({"K": K, "G": p.design.G, "time": dt, "solve_time": r.extra["solve_time"],
                  "solver": r.extra["solver"], "formulation": r.extra["formulation"],
                  "status": r.status.name, "rel_C": (r.extra["value"] - th) / abs(th),
                  "cert": certify(p, r.W, r.H, r.b).rel_gap}))
"""


def run(K: int, solver: str, form: str, limit: float) -> dict:
    try:
        out = subprocess.run([sys.executable, "-c", _CODE, str(K), solver, form], capture_output=True,
                             text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        return {"K": K, "time": None, "status": f"cut off at {limit:.0f} s"}
    if out.returncode != 0:
        return {"K": K, "time": None, "status": "error: " + out.stderr.strip().splitlines()[-1][:120]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--Ks", default="10,15,20,25,30")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--configs", default="CLARABEL/variational,SCS/nuc,auto/auto")
    ap.add_argument("--limit", type=float, default=400.0)
    args = ap.parse_args(argv)
    Ks = [int(k) for k in args.Ks.split(",")]
    table: dict[tuple[str, int], list[float | None]] = {}
    for cfg in args.configs.split(","):
        solver, form = cfg.split("/")
        for K in Ks:
            for _ in range(args.repeats):
                row = run(K, solver, form, args.limit)
                table.setdefault((cfg, K), []).append(row["time"])
                print(json.dumps({"config": cfg, **row}), flush=True)
                if row["time"] is None:
                    break
    print("\nmedian wall time of ufm.solve(..., 'convex') [s]")
    print("config".ljust(24) + "".join(f"K={K}".rjust(10) for K in Ks))
    for cfg in args.configs.split(","):
        cells = []
        for K in Ks:
            ts = table.get((cfg, K), [])
            ok = [t for t in ts if t is not None]
            cells.append("-" if not ts else (f"{np.median(ok):.1f}" if len(ok) == len(ts) else "cut"))
        print(cfg.ljust(24) + "".join(c.rjust(10) for c in cells))


if __name__ == "__main__":
    main()
