"""One timed solver run with the gap targets detected through the solver's callback.

The callback sees every iterate ``(it, x, f)``. The relative gap to the theory value
``(f - F*) / |F*|`` costs nothing and is tested every iteration. The certificate
(:func:`ufm.certificate.certify`, a product ``W H`` and a softmax pass) is computed only
when it can succeed -- a certified gap is never below the true gap, so not before
``(f - F*)/|F*| <= CERT_TARGET`` -- and from then on at every iterate (see
:class:`Tracker` for the batching of costly checks at L), or every 1% of the iterations in
runs of thousands. A run stops once both targets are met
(the certificate may come first: it bounds ``F - min F`` from above, not the 1e-8 target). Its time, and the callback's own, are
measured and subtracted from the solver's clock: ``time`` is the solver's own wall time up
to the iterate that first met the target. Objective-and-gradient evaluations are counted
by wrapping :class:`ufm.objectives.full.Evaluator`, through which every solver evaluates.
"""

from __future__ import annotations

import math
import time
import tracemalloc
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import ufm
from ufm.certificate import certify
from ufm.exceptions import ConvergenceWarning
from ufm.objectives.full import Evaluator
from ufm.objectives.grouped import GroupedObjective
from ufm.objectives.layout import unpack

from .ladder import CERT_TARGET, COMMON, EARLY_REL, REL_TARGET, SolverSpec


class _Counter:
    """Counts objective-and-gradient evaluations: every solver evaluates through
    :class:`ufm.objectives.full.Evaluator`, or with ``group=True`` through
    :class:`ufm.objectives.grouped.GroupedObjective`."""

    n = 0
    _orig = Evaluator.__call__
    _orig_grouped = GroupedObjective.value_and_grad

    @classmethod
    def install(cls) -> None:
        def counted(self: Any, x: np.ndarray, out: np.ndarray | None = None) -> Any:
            cls.n += 1
            return cls._orig(self, x, out)

        def counted_grouped(self: Any, z: np.ndarray, out: np.ndarray | None = None) -> Any:
            cls.n += 1
            return cls._orig_grouped(self, z, out)

        Evaluator.__call__ = counted  # type: ignore[method-assign]
        GroupedObjective.value_and_grad = counted_grouped  # type: ignore[method-assign]

    @classmethod
    def uninstall(cls) -> None:
        Evaluator.__call__ = cls._orig  # type: ignore[method-assign]
        GroupedObjective.value_and_grad = cls._orig_grouped  # type: ignore[method-assign]


@dataclass
class Hit:
    """First iterate meeting a target: solver time (s), iteration, evaluations, ``F`` there."""

    time: float
    it: int
    nfev: int
    f: float = math.nan


@dataclass
class RunRecord:
    label: str
    size: str
    rel: Hit | None = None
    cert: Hit | None = None
    early: Hit | None = None  # first iterate with relative gap <= EARLY_REL
    time: float = math.nan  # solver time of the whole run (excluding checks)
    nit: int = 0
    nfev: int = 0
    final_rel: float = math.nan
    best_cert: float = math.nan
    stopped: str = ""  # "target", "budget", "diverged", "solver: <status>"
    cert_checks: int = 0
    check_time: float = 0.0  # excluded from `time`
    it_time: float = 0.0  # mean solver time per iteration so far
    replay: float | None = None  # uninstrumented seconds to the certified iterate (see `replay`)
    extra: dict[str, Any] = field(default_factory=dict)


class Tracker:
    """The callback: detects the targets, enforces the time budget, excludes its own time.

    Certificate checks start once ``(f - F*)/|F*| <= CERT_TARGET`` and then cover every
    iterate. When one check costs more than ``COSTLY`` seconds (the L size, where
    ``certify`` costs many evaluations), checks are spaced ``stride <= MAX_STRIDE``
    iterations apart and the unchecked iterates in between are kept (copies, time
    excluded); after a successful check they are certified oldest first. The hit is then
    exact unless the certified gap dips below the target and back above within one stride
    (it is not monotone), in which case it comes at most ``stride - 1`` iterations late.
    Runs of thousands of iterations (plain GD) check every 1% of their iterations.
    """

    MAX_STRIDE = 3
    COSTLY = 0.5  # seconds

    def __init__(self, problem: ufm.UFMProblem, F_star: float, budget: float, record: RunRecord,
                 stop_at_cert: bool = True) -> None:
        self.problem, self.F_star, self.budget, self.rec = problem, F_star, budget, record
        self.stop_at_cert = stop_at_cert
        self.t0 = time.perf_counter()
        self.excluded = 0.0
        self.last_check = -1
        self.n0 = _Counter.n
        self.rel0: float | None = None
        self.stride = 1
        self.pending: list[tuple[Hit, np.ndarray]] = []  # unchecked iterates since the last check

    def solver_time(self) -> float:
        return time.perf_counter() - self.t0 - self.excluded

    def _certified(self, x: np.ndarray) -> bool:
        W, H, b = unpack(x, self.problem)
        t = time.perf_counter()
        c = certify(self.problem, W, H, b)
        cost = time.perf_counter() - t
        rec = self.rec
        rec.cert_checks += 1
        rec.best_cert = c.rel_gap if not math.isfinite(rec.best_cert) else min(rec.best_cert, c.rel_gap)
        if cost > self.COSTLY and rec.it_time > 0:  # space costly checks (several iterations each)
            self.stride = int(min(self.MAX_STRIDE, max(1, math.ceil(cost / (2 * rec.it_time)))))
        return c.rel_gap <= CERT_TARGET

    def __call__(self, it: int, x: np.ndarray, f: float) -> bool:
        t_in = time.perf_counter()
        now = t_in - self.t0 - self.excluded
        rec = self.rec
        nfev = _Counter.n - self.n0
        rel = (f - self.F_star) / abs(self.F_star)
        stop = False
        if self.rel0 is None:
            self.rel0 = rel
        if it > 0:
            rec.it_time = now / it
        if not math.isfinite(f) or rel > max(10.0 * self.rel0, 1e3):
            rec.stopped = "diverged"
            stop = True
        else:
            rec.final_rel = rel
            if rec.early is None and rel <= EARLY_REL:
                rec.early = Hit(now, it, nfev, f)
            if rec.rel is None and rel <= REL_TARGET:
                rec.rel = Hit(now, it, nfev, f)
            if rec.cert is None and rel <= CERT_TARGET:
                if it - self.last_check >= max(self.stride, it // 100):
                    self.last_check = it
                    if self._certified(x):
                        rec.cert = Hit(now, it, nfev, f)
                        for hit, xp in self.pending:  # an earlier, unchecked iterate may qualify
                            if self._certified(xp):
                                rec.cert = hit
                                break
                    self.pending.clear()
                elif self.stride > 1 and it // 100 <= 1:
                    self.pending.append((Hit(now, it, nfev, f), x.copy()))
            if self.stop_at_cert and rec.cert is not None and rec.rel is not None:
                rec.stopped = "target"
                stop = True
            if not stop and now > self.budget:
                rec.stopped = "budget"
                stop = True
        rec.nit, rec.nfev, rec.time = it, nfev, now
        dt = time.perf_counter() - t_in
        self.excluded += dt
        rec.check_time += dt
        return stop


def run(problem: ufm.UFMProblem, spec: SolverSpec, x0: np.ndarray, F_star: float, budget: float,
        size: str, *, stop_at_cert: bool = True, replay_cert: bool = False) -> RunRecord:
    """Run ``spec`` from ``x0`` until the certified target, the budget or the solver's own stop;
    with ``replay_cert``, then time the same run uninstrumented up to its certified iterate
    (:func:`replay`)."""
    rec = RunRecord(spec.label, size)
    tracker = Tracker(problem, F_star, budget, rec, stop_at_cert)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with np.errstate(all="ignore"):
            res = ufm.solve(problem, spec.method, x0.copy(), callback=tracker, **COMMON, **spec.options)
    end = tracker.solver_time()
    if not rec.stopped:  # the solver stopped by itself (converged, line search, polish...)
        rec.stopped = "diverged" if res.status.name == "NUMERICAL_ERROR" else f"solver: {res.status.name}"
        rec.time = end
        rec.nfev = _Counter.n - tracker.n0
        rec.nit = res.nit
        if math.isfinite(res.fun):
            rec.final_rel = (res.fun - F_star) / abs(F_star)
        if rec.cert is None and math.isfinite(res.fun):  # the returned point (after any polish)
            t_in = time.perf_counter()
            c = certify(problem, res.W, res.H, res.b)
            rec.check_time += time.perf_counter() - t_in
            rec.best_cert = c.rel_gap if not math.isfinite(rec.best_cert) else min(rec.best_cert, c.rel_gap)
            if rec.rel is None and rec.final_rel <= REL_TARGET:
                rec.rel = Hit(end, res.nit, rec.nfev)
            if c.rel_gap <= CERT_TARGET:
                rec.cert = Hit(end, res.nit, rec.nfev)
    rec.extra["status"] = res.status.name
    rec.extra["engines_tried"] = res.extra.get("engines_tried")
    if replay_cert:
        replay(problem, spec, x0, rec)
    return rec


def replay(problem: ufm.UFMProblem, spec: SolverSpec, x0: np.ndarray, rec: RunRecord) -> None:
    """``rec.replay``: the wall time of ``ufm.solve(problem, method, x0, max_iter=k)`` with no
    callback, ``k`` the iteration at which the tracked run met the certified target.

    The tracked run subtracts its callback's own time, but not what a solver does only to
    serve a callback (the embedding of the iterate for ``group=True`` or ``h_scale``, the
    Python call): the replay has no callback, and times the whole call, setup and final
    ``Result`` included -- what a user's solve to that iterate costs. Same start, same code
    path, one BLAS thread: the same iterates, checked (same iteration and evaluation counts
    and ``F`` at the last iterate as the tracked run, else no replay is recorded). Only runs stopped by the tracker at the target;
    the default L-BFGS replays its numpy engine (the one that ran: no fallback happened).
    """
    hit = rec.cert
    if hit is None or rec.stopped != "target":
        return
    opts = {**COMMON, **spec.options, "max_iter": hit.it}
    if spec.method == "lbfgs" and opts.get("engine", "auto") == "auto":
        if rec.extra.get("engines_tried") != ["numpy"]:
            return
        opts["engine"] = "numpy"  # `auto` would fall back to scipy after max_iter
    x = x0.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with np.errstate(all="ignore"):
            t = time.perf_counter()
            res = ufm.solve(problem, spec.method, x, **opts)
            elapsed = time.perf_counter() - t
    if res.nit == hit.it and res.nfev == hit.nfev and abs(res.fun - hit.f) <= 1e-12 * abs(hit.f):
        rec.replay = elapsed
    else:
        rec.extra["replay_mismatch"] = (f"nit {res.nit} vs {hit.it}, nfev {res.nfev} vs {hit.nfev}, "
                                        f"F {res.fun!r} vs {hit.f!r}")


def peak_memory(problem: ufm.UFMProblem, spec: SolverSpec, x0: np.ndarray, iters: int = 10) -> int:
    """Peak bytes traced by :mod:`tracemalloc` during ``iters`` iterations of ``spec``.

    numpy reports its data buffers to tracemalloc, so this is the solver's peak of Python-
    and numpy-level allocations (workspaces, L-BFGS memory, temporaries), above what was
    allocated before the call (the problem's cached arrays included once warmed up). A
    separate short run: tracing slows allocation, so it is never part of a timed run.
    """
    opts = {**COMMON, **spec.options, "max_iter": iters}
    if spec.method == "lbfgs" and opts.get("engine", "auto") == "auto":
        # engine 'auto' falls back to scipy when the numpy engine stops at max_iter, which a
        # short run always does; the timed runs stop on the target and never fall back, so
        # the memory of what they run is the numpy engine's (bench of 2026-11-26 19:05
        # reported the fallback path: 2715 MB at L against 509 MB)
        opts["engine"] = "numpy"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ufm.solve(problem, spec.method, x0.copy(), **{**opts, "max_iter": 1})  # warm caches
        tracemalloc.start()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        try:
            ufm.solve(problem, spec.method, x0.copy(), **opts)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    return int(peak - base)
