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
from ..objective import Evaluator, fun_and_grad, pack, random_point, unpack
from ..problem import UFMProblem, real_array
from ..result import Result, Status, status_message


def check_options(method: str, options: dict[str, Any], allowed: dict[str, Any]) -> dict[str, Any]:
    """Merge ``options`` into the defaults ``allowed``; reject unknown names."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise UFMError(
            f"Unknown option(s) {unknown} for method {method!r}; allowed: {sorted(allowed)}."
        )
    merged = {**allowed, **options}
    for name in ("max_iter", "history_every"):
        if name in merged and (not isinstance(merged[name], (int, np.integer)) or merged[name] < 0):
            raise param_error(method, name, "an int >= 0", merged[name])
    for name in ("gtol", "ftol"):
        if name in merged and not (isinstance(merged[name], (int, float)) and 0 <= merged[name] < math.inf):
            raise param_error(method, name, "a finite float >= 0", merged[name])
    if "h_scale" in merged:
        v = merged["h_scale"]
        ok = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
        if not ok or not (0 < float(v) < np.inf):
            raise param_error(method, "h_scale", "a float in (0, inf) (1 = no scaling)", v)
        merged["h_scale"] = float(v)
    return merged


class ScaledObjective:
    r"""``F`` and its gradient in scaled coordinates ``y = D^{-1} x``, exact for any design.

    .. math::  D = \mathrm{diag}(1_W,\; s\,1_H,\; 1_b), \qquad
        \tilde F(y) = F(D y), \qquad \nabla \tilde F(y) = D\, \nabla F(D y)

    where ``s = h_scale``: the solver works on ``(W, H/s, b)`` and a plain gradient step on
    ``y`` moves ``H`` by ``s^2`` times the step it gives ``W`` (a block-diagonal
    preconditioner). Minimisers correspond one to one (``x* = D y*``); ``s = 1`` is the
    identity and costs nothing. Each call counts in ``nfev``; the (K, N) workspace is reused.
    """

    def __init__(self, problem: UFMProblem, h_scale: float = 1.0) -> None:
        self.problem, self.s = problem, float(h_scale)
        self.identity = self.s == 1.0  # y is x (no conversion needed)
        self.euclidean = self.identity  # |grad_y| is |grad F|
        K, d, N = problem.K, problem.d, problem.N
        self.h = slice(K * d, K * d + d * N)
        self.ev = Evaluator(problem)
        self._x = None if self.s == 1.0 else np.empty(problem.n_vars)

    @property
    def nfev(self) -> int:
        return self.ev.nfev

    def to_x(self, y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``x = D y`` (returns ``y`` itself when unscaled and ``out`` is None)."""
        if self.s == 1.0:
            if out is None:
                return y
            np.copyto(out, y)
            return out
        x = np.empty_like(y) if out is None else out
        np.copyto(x, y)
        x[self.h] *= self.s
        return x

    def to_y(self, x: np.ndarray) -> np.ndarray:
        """``y = D^{-1} x`` (a new array)."""
        y = np.array(x, dtype=np.float64)
        if self.s != 1.0:
            y[self.h] /= self.s
        return y

    def grad_to_x(self, g: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``grad F`` (in ``x``) from the scaled gradient ``g = D grad F`` (a new array by default)."""
        gx = np.array(g, dtype=np.float64) if out is None else out
        if out is not None:
            np.copyto(gx, g)
        if self.s != 1.0:
            gx[self.h] /= self.s
        return gx

    def grad_norm(self, g: np.ndarray) -> float:
        """Euclidean norm of ``grad F`` (in ``x``) from the scaled gradient ``g = D grad F``."""
        if self.s == 1.0:
            return float(np.linalg.norm(g))
        gh = float(np.linalg.norm(g[self.h])) / self.s
        rest = float(np.linalg.norm(g[: self.h.start])) ** 2 + float(np.linalg.norm(g[self.h.stop :])) ** 2
        return math.sqrt(rest + gh * gh)

    def __call__(self, y: np.ndarray, out: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        if self.s == 1.0:
            return self.ev(y, out=out)
        x = self.to_x(y, out=self._x)
        f, g = self.ev(x, out=out)
        g[self.h] *= self.s
        return f, g


def starting_point(
    problem: UFMProblem, x0: np.ndarray | tuple | None, init_scale: float,
    rng: np.random.Generator | int | None,
) -> np.ndarray:
    """``x0`` as a packed vector: given (packed or ``(W, H, b)``) or Gaussian of ``init_scale``."""
    if x0 is None:
        if not init_scale > 0:
            raise param_error("solver", "init_scale", "a float > 0", init_scale)
        return random_point(problem, scale=init_scale, rng=as_rng(rng))
    if isinstance(x0, tuple):
        W, H, b = x0
        b = np.zeros(problem.K) if b is None else b
        x = pack(real_array("W", W, "x0"), real_array("H", H, "x0"), real_array("b", b, "x0"), problem.bias)
    else:
        x = np.array(real_array("x0", x0, "solve"), dtype=np.float64)
    if x.shape != (problem.n_vars,):
        raise UFMError(f"x0 must have {problem.n_vars} entries (packed W, H, b); got shape {x.shape}.")
    return x.copy()


class History:
    """Records objective, gradient norm and NC metrics every ``every`` iterations."""

    def __init__(self, problem: UFMProblem, every: int, metrics: bool = True) -> None:
        self.problem, self.every, self.metrics = problem, every, metrics
        self.data: dict[str, list[Any]] = {"iter": [], "fun": [], "grad_norm": [], "time": []}
        if metrics:
            for key in ("nc1", "nc2_w", "nc2_h", "nc3"):
                self.data[key] = []
        self.t0 = time.perf_counter()

    def maybe_record(self, it: int, x: np.ndarray, f: float, gnorm: float, force: bool = False) -> None:
        if not force and (self.every <= 0 or it % self.every):
            return
        if self.data["iter"] and self.data["iter"][-1] == it:
            return
        self.data["iter"].append(int(it))
        self.data["fun"].append(float(f))
        self.data["grad_norm"].append(float(gnorm))
        self.data["time"].append(time.perf_counter() - self.t0)
        if self.metrics:
            W, H, _ = unpack(x, self.problem)
            Y = self.problem.design.Y
            names = ("nc1", "nc2_w", "nc2_h", "nc3")
            try:
                if not (np.all(np.isfinite(W)) and np.all(np.isfinite(H))):
                    raise np.linalg.LinAlgError  # a diverged iterate has no metrics
                with np.errstate(all="ignore"):
                    values = (nc1(H, Y), nc2_w(W), nc2_h(H, Y), nc3(W, H, Y))
            except np.linalg.LinAlgError:
                values = (math.nan,) * 4
            for name, v in zip(names, values):
                self.data[name].append(v)


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
    hint: str = "increase `max_iter`", extra: dict[str, Any] | None = None,
) -> Result:
    """Evaluate the final point, record it, warn on non-convergence, build the Result."""
    if f is None or g is None:
        f, g = fun_and_grad(x, problem)
        nfev += 1
    gnorm = float(np.linalg.norm(g))
    history.maybe_record(nit, x, f, gnorm, force=True)
    if status in (Status.MAX_ITER, Status.LINE_SEARCH_FAILED):
        warnings.warn(
            f"{method}: {status_message(status)} (gradient norm {gnorm:.3g}); {hint}.",
            ConvergenceWarning, stacklevel=3,
        )
    W, H, b = unpack(x, problem)
    return Result(
        x=x, fun=float(f), W=W.copy(), H=H.copy(), b=b.copy(), status=status, nit=nit, nfev=nfev,
        grad_norm=gnorm, time=time.perf_counter() - t0, history=history.data, method=method,
        extra=extra or {},
    )


Callback = Callable[[int, np.ndarray, float], bool | None]
"""``callback(it, x, f) -> stop?``: ``x`` is the solver's current iterate (packed, unscaled).
It is the solver's working array, valid during the call and overwritten by later
iterations: copy it (``x.copy()``) to keep it."""
