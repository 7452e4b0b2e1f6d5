"""Pieces shared by the solvers: option checks, starting points, history and the Result."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from ..designs import as_rng
from ..exceptions import ConvergenceWarning, UFMError, param_error
from ..metrics import nc1, nc2_h, nc2_w, nc3
from ..objectives import full_objective, given_point, random_point, random_start, unpack
from ..problem import UFMProblem
from ..result import Result, Status, status_message


def check_options(method: str, options: dict[str, Any], allowed: dict[str, Any]) -> dict[str, Any]:
    """Merge ``options`` into the defaults ``allowed``; reject unknown names."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise UFMError(
            f"Unknown option(s) {unknown} for method {method!r}; allowed: {sorted(allowed)}."
        )
    merged = {**allowed, **options}
    if "history_metrics" in merged:
        merged["history_metrics"] = check_history_metrics(method, merged["history_metrics"])
    for name in ("max_iter", "history_every"):
        if name in merged and (not isinstance(merged[name], (int, np.integer)) or merged[name] < 0):
            raise param_error(method, name, "an int >= 0", merged[name])
    for name in ("gtol", "ftol", "polish_from"):
        if name in merged and not (isinstance(merged[name], (int, float)) and 0 <= merged[name] < math.inf):
            raise param_error(method, name, "a finite float >= 0", merged[name])
    if "h_scale" in merged:
        v = merged["h_scale"]
        ok = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
        if not ok or not (0 < float(v) < np.inf):
            raise param_error(method, "h_scale", "a float in (0, inf) (1 = no scaling)", v)
        merged["h_scale"] = float(v)
    return merged


def starting_point(
    problem: UFMProblem, x0: np.ndarray | tuple | None, init_scale: float,
    rng: np.random.Generator | int | None, *, grouped: bool = False,
) -> np.ndarray:
    """``x0`` as a packed vector: given (packed or ``(W, H, b)``) or Gaussian of ``init_scale``
    (``grouped``: drawn in the grouped solver's coordinates, :func:`ufm.objectives.random_start`
    -- the distribution of the projected full draw at a fraction of its cost)."""
    if x0 is None:
        if not init_scale > 0:
            raise param_error("solver", "init_scale", "a float > 0", init_scale)
        if grouped:
            return random_start(problem, scale=init_scale, rng=as_rng(rng))
        return random_point(problem, scale=init_scale, rng=as_rng(rng))
    return given_point(problem, x0)


METRIC_KEYS = ("nc1", "nc2_w", "nc2_h", "nc3")


def check_history_metrics(method: str, value: Any) -> bool | str:
    """``history_metrics``: False, True or "log" (see :class:`History`)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if value == "log":
        return "log"
    raise param_error(method, "history_metrics", 'False, True or "log"', value)


class History:
    """The run's trace: what costs nothing at every recorded row, NC metrics when asked.

    A row is recorded every ``every`` iterations (0: none; the final iterate always, when
    ``every > 0``): ``iter``, ``fun``, ``grad_norm``, ``step`` (the step length taken to reach
    the iterate: GD's step, AGD's ``1/L``, L-BFGS's line-search step; ``nan`` where the
    solver does not expose it) and ``time`` (seconds since the start). These are values the
    solver has anyway: a row costs a few list appends.

    ``metrics`` adds the NC metrics (``nc1``, ``nc2_w``, ``nc2_h``, ``nc3``; a product
    ``W H`` and the label-set means each, far more than an iteration on small problems):
    ``True`` at every row, ``"log"`` at the rows of iterations 0, 1, 2, 4, 8, ... and the
    final one (``nan`` at the others), ``False`` (the default of every solver) never. The
    label grouping behind the metrics (:class:`ufm.metrics.Groups`) is computed once per
    problem, not per row.
    """

    def __init__(self, problem: UFMProblem, every: int, metrics: bool | str = False) -> None:
        self.problem, self.every, self.metrics = problem, int(every), metrics
        self.data: dict[str, list[Any]] = {"iter": [], "fun": [], "grad_norm": [], "step": [], "time": []}
        if metrics:
            for key in METRIC_KEYS:
                self.data[key] = []
        # the per-row lists as attributes (values appended as given, converted once in `finish`)
        self._rows = (self.data["iter"], self.data["fun"], self.data["grad_norm"], self.data["step"])
        self._time = self.data["time"]
        self._next_log = 0  # the next iteration of the "log" schedule
        self.t0 = time.perf_counter()

    def maybe_record(self, it: int, x: np.ndarray | Callable[[], np.ndarray], f: float, gnorm: float,
                     force: bool = False, step: float = math.nan) -> None:
        """Record iteration ``it``; ``x`` the (full, packed) point, or a function returning
        it, called only when the row's NC metrics need it."""
        every = self.every
        if every <= 0 or (not force and it % every):
            return
        iters, fun, gn, st = self._rows
        if iters and iters[-1] == it:
            if force:  # the final point's own values (a solver's working coordinates may round differently)
                fun[-1], gn[-1] = f, gnorm
            if force and self.metrics == "log" and math.isnan(self.data["nc2_w"][-1]):  # the final row's metrics
                for key, value in zip(METRIC_KEYS, self._metrics(x)):
                    self.data[key][-1] = value
            return
        iters.append(it)
        fun.append(f)
        gn.append(gnorm)
        st.append(step)
        self._time.append(time.perf_counter() - self.t0)
        if not self.metrics:
            return
        data = self.data
        if self.metrics == "log" and not force and it < self._next_log:
            for key in METRIC_KEYS:
                data[key].append(math.nan)
            return
        while self._next_log <= it:
            self._next_log = max(1, 2 * self._next_log)
        for key, value in zip(METRIC_KEYS, self._metrics(x)):
            data[key].append(value)

    def final(self) -> dict[str, list[Any]]:
        """The recorded lists with plain Python numbers (``int`` iterations, ``float`` values)."""
        out = {key: [float(v) for v in values] for key, values in self.data.items()}
        out["iter"] = [int(v) for v in self.data["iter"]]
        return out

    def _metrics(self, x: np.ndarray | Callable[[], np.ndarray]) -> tuple[float, float, float, float]:
        W, H, _ = unpack(x() if callable(x) else x, self.problem)
        Y = self.problem.design.Y  # the same array every call: its label grouping is cached
        if not (np.all(np.isfinite(W)) and np.all(np.isfinite(H))):
            return (math.nan,) * 4  # a diverged iterate has no metrics
        try:
            with np.errstate(all="ignore"):
                return nc1(H, Y), nc2_w(W), nc2_h(H, Y), nc3(W, H, Y)
        except np.linalg.LinAlgError:  # finite but so large that the eigensolvers fail
            return (math.nan,) * 4


def progress_bar(enabled: bool, total: int, desc: str) -> Any:
    """A tqdm bar (or a no-op stand-in when disabled)."""
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="it", leave=False, mininterval=0.5)


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str) -> None:
        pass

    def close(self) -> None:
        pass


def finish(
    problem: UFMProblem, method: str, x: np.ndarray, status: Status, *, nit: int, nfev: int,
    t0: float, history: History, f: float | None = None, g: np.ndarray | None = None,
    hint: str = "increase `max_iter`", extra: dict[str, Any] | None = None, unit: str = "iterations",
) -> Result:
    """Evaluate the final point, record it, warn on non-convergence, build the Result."""
    if f is None or g is None:
        f, g = full_objective(problem).value_and_grad(x)
        nfev += 1
    gnorm = float(np.linalg.norm(g))
    history.maybe_record(nit, x, f, gnorm, force=True)
    if status in (Status.MAX_ITER, Status.LINE_SEARCH_FAILED):
        # the status message's own remedy is replaced by the solver's hint: said once, in its words
        what = (f"Stopped after {nit} {unit} before the tolerance" if status == Status.MAX_ITER
                else status_message(status).rstrip("."))
        warnings.warn(f"{method}: {what} (gradient norm {gnorm:.3g}); {hint}.", ConvergenceWarning, stacklevel=3)
    W, H, b = unpack(x, problem)
    return Result(
        x=x, fun=float(f), W=W.copy(), H=H.copy(), b=b.copy(), status=status, nit=nit, nfev=nfev,
        grad_norm=gnorm, time=time.perf_counter() - t0, history=history.final(), method=method,
        extra=extra or {},
    )


Callback = Callable[[int, np.ndarray, float], bool | None]
"""``callback(it, x, f) -> stop?``: ``x`` is the solver's current iterate (packed, unscaled).
It is the solver's working array, valid during the call and overwritten by later
iterations: copy it (``x.copy()``) to keep it."""
