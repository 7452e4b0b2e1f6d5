"""What gradient-norm accuracy does each claim of ``ufm verify`` need? (``python -m benchmarks.claim_accuracy``)

For each size of the ladder (:mod:`benchmarks.ladder`) the default call ``ufm.solve(p, rng=0)``
is run with ``gtol`` = 1e-5 ... 1e-11 and its answer is checked by :func:`ufm.verify` (every
claim: value 1e-9, the structural claims 1e-6, the certified gap 1e-6). Printed: per claim
the largest ``gtol`` at which it holds at that size, the wall time of each call, and the gradient
norm the call actually reached (the Newton-CG polish usually ends well below ``gtol``).
Rows of the table in docs/performance.md.
"""

from __future__ import annotations

import argparse
import time
import warnings

import ufm

from .ladder import LADDER, SEED

GTOLS = (1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-11)


def sweep(size: str, gtols: tuple[float, ...] = GTOLS, **options: object) -> list[dict]:
    """One default call per ``gtol`` at ``size`` (``options`` added, e.g. ``polish=False``: L-BFGS
    alone, which stops at ``|g| ~ gtol``): time, gradient norm reached, each claim's deviation."""
    p = LADDER[size].problem()
    rows = []
    for gtol in gtols:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ufm.ConvergenceWarning)
            t = time.perf_counter()
            res = ufm.solve(p, rng=SEED, gtol=gtol, history_every=0, **options)
            wall = time.perf_counter() - t
        v = ufm.verify(p, res.W, res.H, res.b)
        rows.append({"size": size, "gtol": gtol, "time": wall, "grad_norm": res.grad_norm, "nfev": res.nfev,
                     "passed": v.passed, "claims": {c.name: (c.measured, c.tol, c.passed) for c in v.claims}})
    return rows


def needs(rows: list[dict]) -> dict[str, float | None]:
    """Per claim: the largest gtol from which on (towards smaller gtol) the claim holds."""
    out: dict[str, float | None] = {}
    for name in rows[-1]["claims"]:
        need = None
        for r in sorted(rows, key=lambda r: r["gtol"]):  # smallest gtol first
            if r["claims"].get(name, (0, 0, False))[2]:
                need = r["gtol"]
            else:
                break
        out[name] = need
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="S,M,W")
    ap.add_argument("--gtols", default=",".join(f"{g:g}" for g in GTOLS))
    ap.add_argument("--no-polish", action="store_true", help="L-BFGS alone (stops at |g| ~ gtol)")
    a = ap.parse_args()
    gtols = tuple(float(g) for g in a.gtols.split(","))
    for size in a.sizes.split(","):
        rows = sweep(size, gtols, **({"polish": False} if a.no_polish else {}))
        for r in rows:
            worst = {k: f"{m:.1e}" for k, (m, _, _) in r["claims"].items()}
            print(f"{size} gtol {r['gtol']:.0e}: {r['time']:.3g} s, |g| {r['grad_norm']:.1e}, nfev {r['nfev']}, "
                  f"verified {r['passed']}; {worst}", flush=True)
        print(f"{size} needs: " + ", ".join(f"{k} {v:.0e}" if v else f"{k} -" for k, v in needs(rows).items()),
              flush=True)


if __name__ == "__main__":
    main()
