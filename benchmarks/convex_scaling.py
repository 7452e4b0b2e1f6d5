"""The largest K whose cvxpy relaxation (variational nuclear norm) solves within a time limit.

Each K is solved in a fresh subprocess (so a slow solve can be cut off at the limit, and
cvxpy's import is not timed) on the ladder's design family (profile ``1:10,2:1``,
``d = K``, all lambdas 5e-4); the time is that of ``ufm.solve(problem, "convex",
formulation="variational", solver="CLARABEL")`` (build, Clarabel, factor-back and polish;
the solver named explicitly since the package default became ``solver="auto"``, which
picks SCS from K ~ 14 on), and the result is certified with :func:`ufm.certificate.certify`.
``solver="auto"`` (with ``formulation="auto"``) measures the package default instead.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

from .ladder import LAM

_CODE = r"""
import json, sys, time, warnings
import ufm
from ufm.certificate import certify
K, solver = int(sys.argv[1]), sys.argv[2]
form = "variational" if solver == "CLARABEL" else "auto"
p = ufm.UFMProblem(ufm.balanced(K, "1:10,2:1"), d=K, lam_W={lam}, lam_H={lam}, lam_b={lam})
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    t = time.perf_counter()
    r = ufm.solve(p, "convex", formulation=form, solver=solver)
    dt = time.perf_counter() - t
c = certify(p, r.W, r.H, r.b)
pred = ufm.predict(p)
print(json.dumps({{"K": K, "G": p.design.G, "N": p.N, "time": dt, "status": r.status.name,
                  "cert": c.rel_gap, "rel": (r.fun - pred.value) / abs(pred.value)}}))
"""


@dataclass
class ConvexPoint:
    K: int
    G: int
    time: float | None  # None: cut off at the limit
    status: str
    cert: float | None = None
    rel: float | None = None


def available() -> bool:
    try:
        import ufm.solvers.convex  # noqa: F401
    except ImportError:
        return False
    return True


def solve_K(K: int, limit: float, solver: str = "CLARABEL") -> ConvexPoint:
    G = K + K * (K - 1) // 2
    code = _CODE.format(lam=LAM)
    try:
        out = subprocess.run([sys.executable, "-c", code, str(K), solver], capture_output=True, text=True,
                             timeout=limit + 30)  # import + build headroom; judged on the measured time
    except subprocess.TimeoutExpired:
        return ConvexPoint(K, G, None, "cut off")
    if out.returncode != 0:
        return ConvexPoint(K, G, None, "error: " + out.stderr.strip().splitlines()[-1][:120])
    d = json.loads(out.stdout.strip().splitlines()[-1])
    return ConvexPoint(K, G, d["time"], d["status"], d["cert"], d["rel"])


def largest_K(limit: float = 60.0, Ks: tuple[int, ...] = (5, 10, 15, 20, 25, 30, 35, 40, 50, 60),
              log=print, solver: str = "CLARABEL") -> list[ConvexPoint]:
    """Solve increasing K until one takes longer than ``limit`` seconds (or fails)."""
    points = []
    for K in Ks:
        pt = solve_K(K, limit, solver)
        points.append(pt)
        shown = "cut off" if pt.time is None else f"{pt.time:.1f} s"
        log(f"    convex K={K} (G={pt.G}): {shown}, {pt.status}, certified gap {pt.cert}")
        if pt.time is None or pt.time > limit or not pt.status.startswith("OPTIMAL"):
            break
    return points
