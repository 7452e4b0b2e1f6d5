"""Cost of the certificate relative to one objective-and-gradient evaluation (issue #3).

``python -m benchmarks.certificate_cost [--repeats 5]``: for each size, at the theorem's
minimiser (``ufm.theory.predicted_minimizer``: the near-optimal case, where the snapped
candidates are built) and at a random point, times ``ufm.certificate.certify`` and one
``ufm.objectives.full.Evaluator`` call alternately (side by side, so machine load hits both),
and prints the medians and their ratio. Target: certify < 20 evaluations at N >= 20000.

Sizes: ``L`` of the bench ladder (K = 200, profile 1:10,2:1, d = 256, N = 21900,
G = 20100 label sets) and ``K50`` (K = 50, profile 1:400,2:1, d = 64, N = 21225, G = 1275);
all lambdas 5e-4 as on the ladder.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import ufm
from ufm.certificate import certify
from ufm.objectives.full import Evaluator
from ufm.objectives.layout import pack
from ufm.theory import predicted_minimizer

from .ladder import LAM

SIZES = {"L": (200, "1:10,2:1", 256), "K50": (50, "1:400,2:1", 64)}


def measure(K: int, profile: str, d: int, repeats: int = 5, log=print) -> list[dict]:
    p = ufm.UFMProblem(ufm.balanced(K, profile), d=d, lam_W=LAM, lam_H=LAM, lam_b=LAM)
    rng = np.random.default_rng(0)
    W, H, b = predicted_minimizer(p)
    points = {
        "optimum": (W, H, b),
        "random": tuple(0.1 * rng.standard_normal(a.shape) for a in (W, H, b)),
    }
    ev = Evaluator(p)
    rows = []
    for name, (W, H, b) in points.items():
        x = pack(W, H, b, p.bias)
        te, tc = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            ev(x)
            te.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            c = certify(p, W, H, b)
            tc.append(time.perf_counter() - t0)
        row = {"K": K, "N": p.N, "G": p.design.G, "d": d, "point": name, "eval": float(np.median(te)),
               "certify": float(np.median(tc)), "rel_gap": c.rel_gap}
        row["ratio"] = row["certify"] / row["eval"]
        log(f"  K={K} N={p.N} G={p.design.G} d={d} {name:8s}: eval {row['eval'] * 1e3:7.1f} ms, "
            f"certify {row['certify'] * 1e3:7.1f} ms, ratio {row['ratio']:5.1f}x "
            f"(median of {repeats}; certified rel. gap {c.rel_gap:.1e})")
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sizes", default=",".join(SIZES), help=f"comma-separated subset of {list(SIZES)}")
    args = ap.parse_args(argv)
    for name in args.sizes.split(","):
        K, profile, d = SIZES[name]
        print(f"{name}:")
        measure(K, profile, d, args.repeats)


if __name__ == "__main__":
    main()
