"""Mixed precision: the bulk of an L-BFGS solve in float32, the finish in float64.

At large sizes an evaluation of ``F`` is three matrix products over ``K x d x G`` numbers, and
float32 halves both their arithmetic and the memory traffic of the vector work. The start
of the float64 solve is moved by a float32 L-BFGS (the numpy engine,
:func:`ufm.solvers.lbfgs_engine.lbfgs_core`, with ``sdot``/``saxpy`` on float32 vectors, on
:class:`ufm.objectives.grouped.GroupedObjective` with float32 buffers: one feature column per label set,
in the coordinates of the float64 solve; at L one evaluation takes 0.049 s, about its three
matrix products, against 0.084 s for the array-API evaluation in float32) until its gradient
norm is at most ``gtol`` (the float64 run's hand-over to the Newton-CG polish, 1e-4) or
float32 can no longer resolve a decrease (its line search then fails: no steps at float32's
rounding level; or a step lowers ``F`` by at most ``FTOL32 |F|``: where float32's gradient is
too noisy to go on, such steps would go on for ever). The float64 solve then runs from that
point as it would from any start, to its own tolerances: the returned point, its certificate
and its verification are those of a float64 answer; only the route to it changed. What the
float32 phase did is in ``Result.extra["float32"]``.

``ufm.solve(p, precision="auto")`` (the default) takes this route only where it was measured
to pay (``docs/performance.md``): the pick-all-label losses, one feature per label set, no
width reduction, and ``K d G >= MIXED_FROM`` -- the bench's L (K = 200, d = 256, G = 20,100)
and above. Below that, evaluations are cheap and the float32 phase's overhead (an extra
start, a second L-BFGS run) costs more than it saves: mixed / float64, median
of 3 runs, was 1.7 at S, 1.08 at M and 2.0 at W.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..objectives import make_objective
from ..problem import UFMProblem
from .lbfgs_engine import lbfgs_core

MIXED_FROM = 2e8  # K d G from which precision="auto" runs the bulk in float32
PRECISIONS = ("auto", "float64", "mixed")
# L-BFGS pairs of the float32 phase. With the numpy engine at L (seed 0, the same loaded machine,
# one run each, the first of two rounds): default call 41.2 s with m = 1 (float32 phase 11.9 s,
# 71 iterations, 86 evaluations), against 58.5 s for the earlier array-API L-BFGS with m = 3
# (19.0 s, 79, 94); m = 3 on the numpy engine took 83 iterations, 96 evaluations
MAXCOR32 = 1
FTOL32 = 1e-6  # the float32 phase ends at a step lowering F by <= 1e-6 |F| (about 8 float32 roundings)


def use_mixed(problem: UFMProblem, precision: str, grouped: bool, width: int) -> bool:
    """Whether a solve with option ``precision`` takes the mixed route (see the module)."""
    if precision == "float64" or problem.loss not in ("pal", "pal-normalized"):
        return False
    if precision == "mixed":
        return True
    return grouped and width == problem.d and problem.K * problem.d * problem.design.G >= MIXED_FROM


def float32_start(problem: UFMProblem, x: np.ndarray, *, gtol: float, max_iter: int,
                  m: int = MAXCOR32) -> tuple[np.ndarray, dict[str, Any]]:
    """``x`` (packed, float64, full space) moved by float32 L-BFGS (the numpy engine,
    :func:`ufm.solvers.lbfgs_engine.lbfgs_core`, on float32 vectors with ``m`` pairs): the new
    packed float64 point and what the phase did (``nit``, ``nfev``, ``grad_norm`` in float32,
    ``message``, ``time``). The point is the float32 run's last accepted iterate, which never
    has a larger ``F`` (in float32) than the start; Ctrl-C returns it too (message "interrupted")."""
    t0 = time.perf_counter()
    obj = make_objective(problem, group=True, dtype=np.float32)  # full width: the float64 run's coordinates
    z = obj.to_y(x).astype(np.float32)
    g = np.empty_like(z)
    f, _ = obj.value_and_grad(z, out=g)
    last: list[Any] = [z, 0]

    def seen(it: int, zi: np.ndarray, fi: float, gnorm: float, step: float) -> bool:
        last[0], last[1] = zi, it  # the accepted iterate (the engine writes its trials elsewhere)
        return False

    try:
        z, f, g, nit, _, message, _ = lbfgs_core(obj, z, f, g, m=m, max_iter=max_iter, gtol=gtol, ftol=FTOL32,
                                                 on_iter=seen)
        gnorm = obj.grad_norm(g)
    except KeyboardInterrupt:
        z, nit, message, gnorm = last[0], int(last[1]), "interrupted", float("nan")
    info = {"nit": nit, "nfev": obj.nfev, "grad_norm": gnorm, "message": message, "time": time.perf_counter() - t0}
    return obj.to_x(np.asarray(z, dtype=np.float64)), info
