"""L-BFGS on ``F(W, H, b)``.

Three engines behind one interface:

- ``engine="auto"`` (the default): the numpy engine, and if it does not converge (it hits
  ``max_iter``, or its line search fails above ``gtol`` even after the polish), the scipy
  engine from the same start. Each engine alone failed on some problems of the property
  tests (see ``run_solver`` in ``tests/test_properties.py``); the portfolio covers both.
  ``Result.extra`` records the engine that produced the result (``engine``), the engines
  tried (``engines_tried``) and, after a fallback, the numpy run's status and gradient
  norm (``fallback``).
- ``engine="numpy"``: a lean L-BFGS written for this objective's shape -- the
  variables are millions of entries while one evaluation is a few matrix products, so the
  per-iteration vector work is kept to a minimum: two-loop recursion on preallocated ring
  buffers (BLAS level 1, in place), Armijo backtracking with safeguarded quadratic
  interpolation, one trial expansion when the unit step is too short (curvature condition
  fails), and an approximate-Wolfe acceptance (Hager & Zhang 2005) once ``F`` no longer
  resolves the decrease. A general-purpose method: nothing about the solution is assumed.
- ``engine="scipy"``: :func:`scipy.optimize.minimize` with L-BFGS-B (no bounds).

Both engines end, if needed, with the Newton-CG polish of :mod:`ufm.solvers.polish`; the
numpy engine hands over to it once the gradient norm is below ``polish_from``. By default
(``group="auto"``) both run on ``F`` restricted to one feature column per label set
(:mod:`ufm.objectives.grouped`, exact), the polish too.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from ..exceptions import ConvergenceWarning, param_error
from ..objectives import Objective, full_objective, make_objective, solver_width
from ..problem import UFMProblem
from ..result import Result, Status, status_message
from ._common import History, check_options, finish, progress_bar, starting_point
from .lbfgs_engine import CALLBACK_STOP as _CALLBACK_STOP
from .lbfgs_engine import lbfgs_core as _lbfgs_core
from .mixed import PRECISIONS, float32_start, use_mixed
from .polish import newton_polish, newton_steps
from .precondition import GNPreconditioner

# default `polish_from`: the numpy engine hands over to the Newton-CG polish once the gradient
# norm is below it. Measured on the bench's ladder (S, M, L), each against grouped L-BFGS
# stopped at its first certified iterate, medians of paired runs: hand-over at 1e-4 -> 1.29-1.34
# (S), 1.38-1.42 (M), 1.33 (L); at 3e-5 1.40, 1.42, 1.43; at 3e-4 1.25, 1.50; at 1e-3 1.19, 1.69;
# the previous 1e-6 (with a fixed CG tolerance and the polish in the full space) 3.26, 2.08.
# Newton-CG needs ~5 Hessian products per decade of the gradient norm there, L-BFGS (m = 1)
# ~20 evaluations; from further out the first Newton steps are weak (see POLISH_SLOW)
POLISH_FROM = 1e-4
LBFGS_DEFAULTS: dict[str, Any] = {
    "max_iter": 20_000, "gtol": 1e-11, "ftol": 0.0, "maxcor": None, "history_every": 1,
    "history_metrics": False, "init_scale": 0.1, "progress": False, "callback": None,
    "polish": True, "polish_from": POLISH_FROM, "engine": "auto", "h_scale": 1.0, "precondition": None, "group": "auto",
    "precision": "auto",
}
PRECONDITIONS = (None, "gn")
ENGINES = ("auto", "numpy", "scipy")
# default memory per engine ("auto": each engine its own). numpy: measured in `make bench`,
# one pair is as good in iterations as 3-10 on the ladder and cheapest per iteration
MAXCOR = {"numpy": 1, "scipy": 20}
POLISH_MARGIN = 1e-3  # the numpy engine polishes to gtol * POLISH_MARGIN (see lbfgs)
POLISH_SLOW = 0.5  # a Newton step that leaves |g| above this fraction ends the polish: L-BFGS goes on
# below gtol the polish goes on (to gtol * POLISH_MARGIN) while |g| |p| / |g_prev| -- the distance
# to the critical point as the last Newton step p saw the curvature -- exceeds this times |x|:
# near a phase transition the landscape is flat and |g| = 1e-11 leaves the structure ~1e-6 off
# (balanced(3, {1: 1}), d = 2, lam = 0.33329, no bias: 4e-9 at |g| 1.6e-14); the bench's S and M
# end at 8e-11 and 1e-11
POLISH_XTOL = 1e-9

def lbfgs(
    problem: UFMProblem, x0: np.ndarray | tuple | None = None, *,
    rng: np.random.Generator | int | None = None, **options: Any,
) -> Result:
    """Minimise ``F`` with L-BFGS (no bounds).

    Options: ``max_iter`` (20000), ``gtol`` (1e-11; on the Euclidean gradient norm --
    for the scipy engine, scipy's own test on the largest component is set to
    ``gtol / sqrt(n)`` so both hold), ``ftol`` (0: off; relative reduction
    ``(f_prev - f) / max(|f_prev|, |f|, 1)``), ``history_every`` (1), ``history_metrics`` (False;
    see :class:`~ufm.solvers._common.History`), ``init_scale`` (0.1), ``progress``,
    ``callback(it, x, f) -> stop?`` (``x`` is the working array: copy it to keep it),
    ``polish`` (True: Newton-CG steps on the exact Hessian, accepted while they reduce
    the gradient norm, finish the job -- for the scipy engine when it stops above
    ``gtol``, for the numpy engine whenever it stops on its own, down to
    ``gtol * 1e-3``, which keeps the scipy engine's final accuracy (its stop on the
    relative reduction of ``F`` and the quadratic polish usually end far below ``gtol``);
    see :mod:`ufm.solvers.polish`), ``polish_from`` (1e-4: the numpy engine's L-BFGS stops
    once the gradient norm is below ``max(gtol, polish_from)`` and the Newton-CG polish
    takes it to ``gtol`` -- two or three Newton steps of ~15 Hessian products where L-BFGS
    would take ~20 evaluations per decade of the gradient norm; should the polish stop short
    (a refused step, or one that does not halve the gradient norm), L-BFGS resumes from its
    point to a ten times smaller hand-over and the polish is tried again, down to ``gtol``;
    ``polish_from=0`` turns the hand-over off), ``engine`` ("auto", the default: "numpy", then
    "scipy" from the same start if the numpy engine stops without converging -- see
    the module docstring; "numpy", the lean implementation of this module, several
    times faster per iteration; "scipy", L-BFGS-B), ``maxcor`` (correction pairs; None:
    20 for scipy, 1 for numpy -- on this objective more pairs barely reduce the
    iteration count and each costs four passes over the variables),
    ``h_scale`` (1.0: L-BFGS on ``(W, H/s, b)``, see
    :class:`~ufm.objectives.scaled.ScaledObjective`; exact for any ``s``),
    ``precondition`` (None; "gn": the numpy engine's initial inverse Hessian is ``gamma P``
    with the block-diagonal Gauss-Newton preconditioner ``P`` of
    :mod:`ufm.solvers.precondition`, rebuilt every 5 iterations; PAL losses, ``h_scale`` 1;
    the scipy engine ignores it), ``group`` ("auto": True unless ``h_scale`` or
    ``precondition`` is given; True: both engines and the polish run on ``F`` restricted to
    one feature column per label set, :mod:`ufm.objectives.grouped` -- exact for any design, with the
    same critical points, values and gradient norms; each evaluation costs ``G`` columns
    instead of ``N``; also in :func:`ufm.objectives.grouped.solver_width` dimensions (``r + 1 +
    ceil(r/4)``, ``r = min(K, G)``, when that is at most ``3 d / 4``), whose local minima are
    global -- the module's second lemma. The start is projected onto that
    subspace (within-set means, and a basis keeping the logits: neither raises ``F``); without
    ``x0`` it is drawn there directly (:func:`ufm.objectives.grouped.random_start`, the projected full
    draw's distribution). The result, callbacks and history see the full point. Not with
    ``h_scale`` or ``precondition``; False: the full space).

    ``precision`` ("auto": "mixed" where measured to pay, see :mod:`ufm.solvers.mixed` -- the
    PAL losses, grouped, no width reduction, ``K d G >= 2e8``, no callback; "float64": never;
    "mixed": the bulk in float32 L-BFGS to ``max(gtol, polish_from)``, then this float64 solve
    from its point; the answer is float64 either way, ``Result.extra["float32"]`` says what the
    float32 phase did, and its iterations and evaluations are counted in ``nit`` and ``nfev``).

    ``Result.extra``: ``engine``, ``engines_tried`` (and ``fallback`` after one), ``group``
    (whether it ran grouped), ``width`` (the feature dimension it worked in),
    ``polish_steps``; from the numpy engine also ``message`` and ``hessian_products`` (the
    polish's Hessian-vector products, not in ``nfev``; its Newton steps are counted in
    ``nit``), from the scipy engine ``scipy_message``.

    Status: converged on ``gtol``/``ftol``, ``MAX_ITER`` (also when the callback stops
    the run), or ``LINE_SEARCH_FAILED`` when the line search can no longer decrease ``F``
    -- which at these tolerances usually means float64 precision was reached; the
    gradient norm in the Result says how close.
    With ``engine="auto"`` a fallback restarts from the same ``x0`` (the callback then
    sees the scipy run's iterations, numbered from 1 again; a callback's stop or an
    interrupt ends the run without fallback); ``nit``, ``nfev`` and ``time`` count both
    runs, ``history`` is the scipy run's.
    """
    o = check_options("lbfgs", options, LBFGS_DEFAULTS)
    engine = o["engine"]
    if engine not in ENGINES:
        raise param_error("lbfgs", "engine", f"one of {ENGINES}", engine)
    m = o["maxcor"]
    if m is not None and (not isinstance(m, (int, np.integer)) or isinstance(m, bool) or m < 1):
        raise param_error("lbfgs", "maxcor", "an int >= 1 (or None for the engine's default)", m)
    if o["precondition"] not in PRECONDITIONS:
        raise param_error("lbfgs", "precondition", f"one of {PRECONDITIONS}", o["precondition"])
    if o["precondition"] is not None and (o["h_scale"] != 1.0 or problem.loss not in ("pal", "pal-normalized")):
        raise param_error("lbfgs", "precondition", "None with h_scale != 1 or a non-PAL loss",
                          o["precondition"])
    if not (isinstance(o["group"], (bool, np.bool_)) or o["group"] == "auto"):
        raise param_error("lbfgs", "group", "True, False or 'auto'", o["group"])
    full_space = o["h_scale"] != 1.0 or o["precondition"] is not None  # options of the full space
    if isinstance(o["group"], str):  # "auto": grouped unless such an option is given
        o["group"] = not full_space
    elif o["group"] and full_space:
        raise param_error("lbfgs", "group", "False with h_scale != 1 or a preconditioner", o["group"])
    if o["precision"] not in PRECISIONS:
        raise param_error("lbfgs", "precision", f"one of {PRECISIONS}", o["precision"])
    if o["precision"] == "mixed":  # asked for by name: refused where it would not, or not rightly, run
        why = ("the float32 phase computes the pick-all-label losses" if problem.loss not in ("pal", "pal-normalized")
               else "the float32 phase is grouped, and the float64 run from a grouped point stays grouped "
                    "(nc1 would be imposed, not measured)" if not o["group"]
               else "the float32 phase calls no callback" if o["callback"] is not None else "")
        if why:
            raise param_error("lbfgs", "precision", "'auto' or 'float64' here", "mixed", f"({why}.)")
    x = starting_point(problem, x0, o["init_scale"], rng, grouped=bool(o["group"]))
    t0 = time.perf_counter()
    width = solver_width(problem) if o["group"] else problem.d
    if o["callback"] is None and use_mixed(problem, o["precision"], bool(o["group"]), width):
        # the bulk in float32 (ufm.solvers.mixed), the float64 run from where it ended
        x, f32 = float32_start(problem, x, gtol=max(float(o["gtol"]), float(o["polish_from"])),
                               max_iter=int(o["max_iter"]))
        if f32["message"] == "interrupted":  # Ctrl-C in the float32 phase: its last iterate, as a result
            res = finish(problem, "lbfgs", x, Status.INTERRUPTED, nit=0, nfev=0, t0=t0,
                         history=History(problem, 0), extra={"message": "interrupted"})
        else:  # the first polish's Hessian products in float32 too (see _polish)
            res = _lbfgs_engines(problem, engine, x, {**o, "hessian_dtype": np.float32}, t0)
        res.nit += f32["nit"]
        res.nfev += f32["nfev"]
        res.extra["precision"] = "mixed"
        res.extra["float32"] = f32
        return res
    return _lbfgs_engines(problem, engine, x, o, t0)


def _lbfgs_engines(problem: UFMProblem, engine: str, x: np.ndarray, o: dict[str, Any], t0: float) -> Result:
    """The engine asked for, or (``"auto"``) numpy then scipy from the same ``x``."""
    if engine != "auto":
        return _run_engine(problem, engine, x, o, t0)
    # the numpy engine first; its ConvergenceWarning is not the caller's concern if the
    # scipy engine then converges (the scipy run warns for itself)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # the scipy fallback restarts from x: only the ungrouped engine works on x in place
        first = _run_engine(problem, "numpy", x if o["group"] else x.copy(), o, t0)
    stopped_by_caller = first.extra.get("message") in (_CALLBACK_STOP, "interrupted")
    if first.status not in (Status.MAX_ITER, Status.LINE_SEARCH_FAILED) or stopped_by_caller:
        first.extra["engines_tried"] = ["numpy"]
        if first.status in (Status.MAX_ITER, Status.LINE_SEARCH_FAILED):  # the caller's stop
            _warn_unconverged(first)
        return first
    res = _run_engine(problem, "scipy", x, o, t0)
    res.nit += first.nit
    res.nfev += first.nfev
    res.extra["engines_tried"] = ["numpy", "scipy"]
    res.extra["fallback"] = {"status": first.status.name, "grad_norm": first.grad_norm, "nit": first.nit,
                             "nfev": first.nfev, "message": first.extra.get("message", "")}
    return res


def _warn_unconverged(res: Result) -> None:
    """The ConvergenceWarning :func:`~ufm.solvers._common.finish` gives (re-emitted after
    it was silenced for the first engine of the ``auto`` portfolio)."""
    warnings.warn(
        f"lbfgs: {status_message(res.status)} (gradient norm {res.grad_norm:.3g}); increase `max_iter`.",
        ConvergenceWarning, stacklevel=3,
    )


def _run_engine(problem: UFMProblem, engine: str, x: np.ndarray, o: dict[str, Any], t0: float) -> Result:
    """One engine's run from ``x`` (overwritten); ``o`` the checked options."""
    o = {**o, "engine": engine, "maxcor": MAXCOR[engine] if o["maxcor"] is None else o["maxcor"]}
    hist = History(problem, o["history_every"], o["history_metrics"])
    bar = progress_bar(o["progress"], o["max_iter"], "lbfgs")
    # grouped: one feature per set, in solver_width(problem) dimensions (ufm.objectives.grouped)
    fg = make_objective(problem, x, group=bool(o["group"]), h_scale=o["h_scale"])
    o["width"] = solver_width(problem) if o["group"] else problem.d
    if engine == "scipy":
        return _lbfgs_scipy(problem, fg, x, o, hist, bar, t0)
    scaled = not fg.identity
    y = fg.to_y(x) if scaled else x
    xv = np.empty_like(x) if scaled else None
    g = np.empty_like(y)
    f, _ = fg.value_and_grad(y, out=g)
    callback = o["callback"]

    last: dict[str, Any] = {"y": y, "it": 0}

    every, show = hist.every, bool(o["progress"])

    def on_iter(it: int, z: np.ndarray, fz: float, gnorm: float, step: float) -> bool:
        # called every iteration: only the work asked for (history, bar, callback)
        last["y"], last["it"] = z, it
        if show and it:
            bar.update()
        record = every > 0 and it % every == 0
        if not (record or callback is not None):
            return False
        if callback is None:  # the full point only if the record's NC metrics need it
            hist.maybe_record(it, (lambda: fg.to_x(z, out=xv)) if scaled else z, fz, gnorm, step=step)
            return False
        zx = fg.to_x(z, out=xv) if scaled else z
        if record:
            hist.maybe_record(it, zx, fz, gnorm, step=step)
        return bool(callback(it, zx, fz))

    polish_steps = 0
    gtol = float(o["gtol"])
    # L-BFGS to `polish_from` (when above gtol), then Newton-CG to gtol: quadratic steps
    # finish what L-BFGS's linear rate would take many more iterations for (see POLISH_FROM).
    # Should the polish stop short (too far out for Newton), L-BFGS resumes to a ten times
    # smaller hand-over and the polish is tried again; at gtol, as with polish_from=0
    switch = max(gtol, float(o["polish_from"])) if o["polish"] else gtol
    pre = GNPreconditioner(problem) if o["precondition"] == "gn" else None
    nit, nfev_polish = 0, 0
    hvp_count = [0]  # Hessian-vector products of the polish (each costs about two evaluations)
    max_iter = int(o["max_iter"])
    hessian_dtype = [o.get("hessian_dtype")]  # mixed precision: float32 products in the first polish only

    def polish(y: np.ndarray, target: float, tight: float | None) -> tuple[Any, ...]:
        """The polish from ``y``; its Newton steps are iterations (history, callback, max_iter)."""
        done = [0]

        def on_step(z: np.ndarray, fz: float, gnorm: float, t: float) -> bool:
            done[0] += 1
            if on_iter(nit + done[0], z, fz, gnorm, t):
                return True
            return nit + done[0] >= max_iter

        dtype, hessian_dtype[0] = hessian_dtype[0], None
        return _polish(problem, fg, y, target, tight, on_step, hvp_count, dtype)

    try:
        while True:
            nit0 = nit

            def resumed(it: int, z: np.ndarray, fz: float, gnorm: float, step: float, nit0: int = nit0) -> bool:
                return on_iter(nit0 + it, z, fz, gnorm, step) if it else False

            y, f, g, nit1, status, message, t_last = _lbfgs_core(
                fg, y, f, g, m=int(o["maxcor"]), max_iter=max(max_iter - nit, 0), gtol=switch,
                ftol=float(o["ftol"]), on_iter=on_iter if nit0 == 0 else resumed, pre=pre,
            )
            nit += nit1
            if switch <= gtol or status != Status.CONVERGED_GTOL:
                break
            if on_iter(nit, y, f, float(np.linalg.norm(g)), t_last):  # the hand-over iterate, as any other
                status, message = Status.MAX_ITER, _CALLBACK_STOP
                break
            y, f, g, steps, n_pol, stopped = polish(y, gtol, gtol * POLISH_MARGIN)
            polish_steps += steps
            nfev_polish += n_pol
            nit += steps
            gn = float(np.linalg.norm(g))
            if gn <= gtol:
                message = f"gradient norm below {switch:g} (L-BFGS), then below gtol (Newton-CG polish)"
                break
            if stopped:
                status = Status.MAX_ITER
                message = _CALLBACK_STOP if nit < max_iter else "max_iter reached"
                break
            switch = max(gtol, 0.1 * min(switch, gn))
        if switch <= gtol and o["polish"] and status in (
                Status.CONVERGED_GTOL, Status.CONVERGED_FTOL, Status.LINE_SEARCH_FAILED):
            y, f, g, steps, n_pol, _ = polish(y, gtol * POLISH_MARGIN, None)
            polish_steps += steps
            nfev_polish += n_pol
            nit += steps
            if status != Status.CONVERGED_GTOL and float(np.linalg.norm(g)) <= gtol:
                status, message = Status.CONVERGED_GTOL, message + "; the Newton-CG polish reached gtol"
        nfev = fg.nfev + nfev_polish
        x = fg.to_x(y, out=np.empty(problem.n_vars)) if scaled else y
        if scaled and not fg.euclidean:  # finish() needs only |g|, which an isometry keeps
            g = fg.grad_to_x(g, out=np.empty(problem.n_vars))
    except KeyboardInterrupt:
        # the last iterate seen (its buffer may since hold a line-search trial point; the
        # objective is re-evaluated at whatever point is returned)
        status, message, nit, nfev = Status.INTERRUPTED, "interrupted", int(last["it"]), fg.nfev
        x = fg.to_x(last["y"], out=np.empty(problem.n_vars)) if scaled else np.array(last["y"])
        return finish(problem, "lbfgs", x, status, nit=nit, nfev=nfev, t0=t0, history=hist,
                      extra={"engine": "numpy", "message": message, "polish_steps": polish_steps,
                             "hessian_products": hvp_count[0], "group": bool(o["group"]),
                             "width": o["width"]})
    finally:
        bar.close()
    return finish(problem, "lbfgs", x, status, nit=nit, nfev=nfev, t0=t0, history=hist, f=f, g=g,
                  hint="increase `max_iter`",
                  extra={"engine": "numpy", "message": message, "polish_steps": polish_steps,
                             "hessian_products": hvp_count[0], "group": bool(o["group"]),
                             "width": o["width"]})


def _polish(
    problem: UFMProblem, fg: Objective, y: np.ndarray, gtol: float,
    tight: float | None, on_step: Callable[[np.ndarray, float, float, float], bool], products: list[int],
    dtype: Any = None,
) -> tuple[np.ndarray, float, np.ndarray, int, int, bool]:
    """The Newton-CG polish from the working point ``y`` of ``fg``:
    ``(y, f, g, steps, nfev, stopped)`` in ``fg``'s coordinates, ``nfev`` the evaluations
    ``fg.nfev`` did not count, ``stopped`` when ``on_step(y, f, gnorm, t)`` ended it;
    ``products[0]`` counts the Hessian-vector products.

    Where the working gradient's norm is that of ``F`` (``fg.euclidean``: the full space, the
    grouped objective) it runs in ``fg``'s coordinates on its exact Hessian (grouped: ``G``
    columns per product; the restriction's critical points are those of ``F``), so ``gtol``
    means the same; in scaled coordinates it runs in the full space. CG tolerances adapt to the gradient
    norm (:func:`~ufm.solvers.polish.forcing`); a step that does not halve the gradient
    norm ends the polish (L-BFGS then goes on, see :func:`lbfgs`); below ``gtol`` it goes
    on towards ``tight`` while the distance to the critical point estimated from the last
    Newton step exceeds ``POLISH_XTOL |x|`` (a flat landscape, see
    :func:`~ufm.solvers.polish.newton_steps`).

    ``dtype`` float32 (the first polish of a mixed-precision solve): the Hessian products in
    float32 where ``fg`` has such a kernel. A Newton-CG step is an inexact solve already (CG
    stops at a relative residual of 1e-1 to 1e-4, :func:`~ufm.solvers.polish.forcing`), and each
    step is accepted only if the float64 gradient norm falls; should the polish stop short, the
    next one (after more L-BFGS) is in float64.
    """
    opts: dict[str, Any] = {"gtol": gtol, "cg_rtol": None, "slow": POLISH_SLOW, "tight": tight,
                            "xtol": POLISH_XTOL, "scale": max(problem.lam_W, problem.lam_H)}

    def counted(operator: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
        def apply(v: np.ndarray) -> np.ndarray:
            products[0] += 1
            return operator(v)
        return apply

    if fg.euclidean:  # in the working coordinates, where |g| is |grad F| (its evaluations count in fg.nfev)
        z, f, gz, steps, _, stopped = newton_steps(fg.value_and_grad, lambda v: counted(fg.hessian_operator(v, dtype)), y,
                                                   on_step=on_step, **opts)
        return z, f, gz, steps, 0, stopped
    # scaled coordinates: the polish in the full space, where gtol is on |grad F| itself
    full = full_objective(problem)
    x, f, g, steps, n_pol, stopped = newton_steps(
        full.value_and_grad, lambda v: counted(full.hessian_operator(v)), fg.to_x(y, out=np.empty(problem.n_vars)),
        on_step=lambda v, fv, gn, t: on_step(fg.to_y(v), fv, gn, t), **opts)
    y = fg.to_y(x)
    f, gy = fg.value_and_grad(y)
    return y, f, gy, steps, n_pol, stopped


def _lbfgs_scipy(
    problem: UFMProblem, fg: Objective, x: np.ndarray, o: dict[str, Any],
    hist: History, bar: Any, t0: float,
) -> Result:
    """The scipy L-BFGS-B engine (the package's original implementation)."""
    from scipy.optimize import minimize  # here: scipy.optimize costs ~0.1-0.3 s to import

    scaled = not fg.identity
    state: dict[str, Any] = {"nfev": 0, "it": 0, "x": x, "f": np.inf, "g": None}

    def fgs(z: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = fg.value_and_grad(z)
        state["f"], state["g"] = f, g  # the last evaluation: the accepted point at a callback
        return f, g

    def cb(intermediate_result: Any) -> None:
        state["it"] += 1
        z = fg.to_x(intermediate_result.x) if scaled else intermediate_result.x
        state["x"] = z
        bar.update()
        if hist.every and state["it"] % hist.every == 0:
            f = float(intermediate_result.fun)
            same = state["g"] is not None and state["f"] == f  # else: one more evaluation
            g = state["g"] if same else fg.value_and_grad(fg.to_y(z) if scaled else z)[1]
            hist.maybe_record(state["it"], z, f, fg.grad_norm(g))
        if o["callback"] and o["callback"](state["it"], z, intermediate_result.fun):
            raise StopIteration

    y0 = fg.to_y(x) if scaled else x
    f0, g0 = fgs(y0)
    hist.maybe_record(0, x, f0, fg.grad_norm(g0))
    status = Status.MAX_ITER
    try:
        res = minimize(
            fgs, y0, jac=True, method="L-BFGS-B", callback=cb,
            options={
                "maxiter": int(o["max_iter"]), "maxfun": 10 * int(o["max_iter"]) + 100,
                "gtol": float(o["gtol"]) / np.sqrt(y0.size), "ftol": float(o["ftol"]),
                "maxcor": int(o["maxcor"]),
            },
        )
        x = fg.to_x(res.x) if scaled else res.x
        f, g = float(res.fun), np.array(res.jac, dtype=np.float64)
        if scaled:
            g = fg.grad_to_x(g)
        gnorm = float(np.linalg.norm(g))
        polish_steps = 0
        if o["polish"] and gnorm > o["gtol"] and res.status != 1:
            x, f, g, polish_steps, n_pol = newton_polish(problem, x, gtol=float(o["gtol"]))
            state["nfev"] += n_pol
            gnorm = float(np.linalg.norm(g))
        if gnorm <= o["gtol"]:
            status = Status.CONVERGED_GTOL
        elif res.status == 0 and o["ftol"] > 0:  # scipy's relative reduction of F reached ftol
            status = Status.CONVERGED_FTOL
        # with ftol = 0 (off) scipy's "RELATIVE REDUCTION OF F <= FACTR*EPSMCH" means F stopped
        # decreasing above gtol: a stall, reported (and warned about) as LINE_SEARCH_FAILED
        elif res.status == 1:
            status = Status.MAX_ITER
        else:
            status = Status.LINE_SEARCH_FAILED
        scipy_message = str(res.message)
    except KeyboardInterrupt:
        x, f, g, status, scipy_message = state["x"], None, None, Status.INTERRUPTED, "interrupted"
        polish_steps = 0
    finally:
        bar.close()
    return finish(problem, "lbfgs", x, status, nit=state["it"], nfev=fg.nfev + state["nfev"], t0=t0,
                  history=hist, f=f, g=g, hint="increase `max_iter`",
                  extra={"engine": "scipy", "scipy_message": scipy_message, "polish_steps": polish_steps,
                         "group": bool(o["group"]), "width": o["width"]})
