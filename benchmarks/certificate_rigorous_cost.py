"""Cost of the rigorous certificate against the float one (issue #16).

``python -m benchmarks.certificate_rigorous_cost [--repeats 3] [--no-L]``: for every problem
of the default suite (solved once with L-BFGS) and at the ``L`` size of the bench ladder
(K = 200, profile 1:10,2:1, d = 256, N = 21900, G = 20100, all lambdas 5e-4, at the
theorem's minimiser), times ``ufm.certify`` and ``ufm.certify(..., rigorous=True)``
alternately and prints the medians of the CPU time of this process (``time.process_time``:
robust to other load on the machine; run with ``OPENBLAS_NUM_THREADS=1`` so that it is also
the elapsed time on one core), their ratio, the float relative gap and the proved one. The
rigorous time includes the float certificate it starts from.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import ufm
from ufm.certificate import certify
from ufm.solvers import solve
from ufm.suite import DEFAULT_SUITE
from ufm.theory import predicted_minimizer

from .ladder import LAM


def _time(problem: ufm.UFMProblem, W: np.ndarray, H: np.ndarray, b: np.ndarray, repeats: int) -> dict:
    tf, tr = [], []
    for _ in range(repeats):
        t0 = time.process_time()
        fl = certify(problem, W, H, b)
        tf.append(time.process_time() - t0)
        t0 = time.process_time()
        rc = certify(problem, W, H, b, rigorous=True)
        tr.append(time.process_time() - t0)
    f, r = float(np.median(tf)), float(np.median(tr))
    return {"float_s": f, "rigorous_s": r, "ratio": r / f, "float_rel_gap": fl.rel_gap,
            "rigorous_rel_gap": rc.rel_gap, "D": rc.lower_bound, "F": rc.objective}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-L", action="store_true", help="skip the L size")
    args = ap.parse_args(argv)
    tot_f = tot_r = 0.0
    for i, case in enumerate(DEFAULT_SUITE):
        p = case.problem()
        res = solve(p, "lbfgs", rng=i)
        row = _time(p, res.W, res.H, res.b, args.repeats)
        tot_f += row["float_s"]
        tot_r += row["rigorous_s"]
        print(f"{case.name[:40]:40s} float {row['float_s'] * 1e3:7.2f} ms  rigorous {row['rigorous_s'] * 1e3:7.2f} ms"
              f"  ({row['ratio']:4.1f}x)  gap float {row['float_rel_gap']:+.1e}  proved {row['rigorous_rel_gap']:.1e}",
              flush=True)
    print(f"{'default suite, total':40s} float {tot_f * 1e3:7.2f} ms  rigorous {tot_r * 1e3:7.2f} ms  ({tot_r / tot_f:4.1f}x)")
    if not args.no_L:
        p = ufm.UFMProblem(ufm.balanced(200, "1:10,2:1"), d=256, lam_W=LAM, lam_H=LAM, lam_b=LAM)
        W, H, b = predicted_minimizer(p)
        row = _time(p, W, H, b, args.repeats)
        print(f"{'L: K=200 N=21900 G=20100 d=256':40s} float {row['float_s']:7.2f} s   rigorous {row['rigorous_s']:7.2f} s"
              f"   ({row['ratio']:4.1f}x)  gap float {row['float_rel_gap']:+.1e}  proved {row['rigorous_rel_gap']:.1e}"
              f"  [D, F] = [{row['D']!r}, {row['F']!r}]")


if __name__ == "__main__":
    main()
