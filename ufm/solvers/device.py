"""``ufm.solve(p, device=...)``: the array-API path (:mod:`ufm.xp`) as a solver.

``device="cpu"`` is the default numpy path (nothing changes); ``device="cuda"`` runs the
grouped objective of :mod:`ufm.objectives.array_api` and the L-BFGS of :mod:`ufm.xp.lbfgs` on a GPU
array library (:func:`ufm.xp.devices.namespace`). :func:`solve_xp` takes any array
namespace (numpy through ``array-api-compat``, ``array_api_strict``, ``jax.numpy``): the tests
run the same solve on each.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..exceptions import UFMError
from ..objectives import make_objective
from ..problem import UFMProblem
from ..result import Result, Status
from ._common import History, finish, starting_point

XP_DEFAULTS: dict[str, Any] = {"gtol": 1e-9, "max_iter": 20_000, "maxcor": 10, "group": "auto", "init_scale": 0.1}


def solve_xp(problem: UFMProblem, xp: Any, x0: np.ndarray | tuple | None = None, *, device: Any = None,
             rng: np.random.Generator | int | None = None, **options: Any) -> Result:
    """L-BFGS on ``F`` in namespace ``xp`` (on ``device``) from ``x0`` or the default call's start.

    Options: ``gtol`` (1e-9, on the gradient norm of ``F`` at the full point), ``max_iter``,
    ``maxcor`` (10), ``group`` ("auto" = True: one feature column per label set), ``init_scale``.
    The returned point is evaluated again by the numpy objective (``Result.fun``); the
    device's own value of ``F`` is ``Result.extra["fun_device"]``."""
    from ..xp.lbfgs import lbfgs

    unknown = sorted(set(options) - set(XP_DEFAULTS))
    if unknown:
        raise UFMError(f"Option(s) {unknown} do not apply to the device path; it takes {sorted(XP_DEFAULTS)}.")
    o = {**XP_DEFAULTS, **options}
    grouped = o["group"] in ("auto", True)
    t0 = time.perf_counter()
    x = starting_point(problem, x0, float(o["init_scale"]), rng, grouped=grouped)
    obj = make_objective(problem, group=grouped, xp=xp, device=device)
    run = lbfgs(obj, obj.to_y(x), gtol=float(o["gtol"]), max_iter=int(o["max_iter"]),
                m=int(o["maxcor"]))
    status = Status.CONVERGED_GTOL if run.converged else (
        Status.MAX_ITER if run.message == "max_iter reached" else Status.LINE_SEARCH_FAILED)
    return finish(problem, "lbfgs", obj.to_x(run.z), status, nit=run.nit, nfev=obj.nfev, t0=t0,
                  history=History(problem, 0), extra={"engine": "array-api", "namespace": xp.__name__,
                                                     "device": str(device), "fun_device": run.f,
                                                     "group": grouped, "message": run.message})


def solve_on_device(problem: UFMProblem, device: str, x0: Any = None, *, rng: Any = None, **options: Any) -> Result:
    """``device`` "cuda": :func:`solve_xp` on the GPU array library found (one-line error if none)."""
    from ..xp.devices import namespace

    xp, dev = namespace(device)
    return solve_xp(problem, xp, x0, device=dev, rng=rng, **options)
