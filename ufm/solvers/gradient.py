r"""Full-batch gradient descent on ``F(W, H, b)``.

- :func:`gd`: plain GD with a fixed step, the UFM literature's baseline.
- :func:`agd`: Nesterov-accelerated GD with a backtracking (Armijo) estimate of the
  Lipschitz constant and function-value restarts (O'Donoghue & Candes, 2015).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from ..exceptions import param_error
from ..objectives import make_objective
from ..problem import UFMProblem
from ..result import Result, Status
from ._common import History, check_options, finish, progress_bar, starting_point

GD_DEFAULTS: dict[str, Any] = {
    "step": 0.1, "max_iter": 100_000, "gtol": 1e-9, "ftol": 0.0, "history_every": 1,
    "history_metrics": False, "init_scale": 0.1, "progress": False, "callback": None,
    "h_scale": 1.0, "momentum": 0.0,
}
# agd's ftol: its momentum and backtracking leave a gradient floor of 1e-8 .. 1e-10 (rounding), so
# gtol 1e-10 alone ran 50,000 iterations on the README's problem; one step changing F by at most
# 1e-15 relative is that floor: on the README's problems (seeds 0, 1) it stops after 150-260
# iterations at |grad| 7e-9 .. 2.7e-8 with certified gaps <= 8.4e-14 (docs/solvers_agd_stop.md).
AGD_DEFAULTS: dict[str, Any] = {
    "step": 1.0, "max_iter": 50_000, "gtol": 1e-10, "ftol": 1e-15, "history_every": 1,
    "history_metrics": False, "init_scale": 0.1, "progress": False, "callback": None,
    "h_scale": 1.0,
}


def _converged(gnorm: float, f: float, f_prev: float, gtol: float, ftol: float) -> Status | None:
    if gnorm <= gtol:
        return Status.CONVERGED_GTOL
    if ftol > 0 and abs(f_prev - f) <= ftol * max(abs(f), 1.0):
        return Status.CONVERGED_FTOL
    return None


def gd(
    problem: UFMProblem, x0: np.ndarray | tuple | None = None, *,
    rng: np.random.Generator | int | None = None, **options: Any,
) -> Result:
    """Plain gradient descent ``x <- x - step * grad F(x)`` with a fixed ``step``, or heavy ball.

    Options: ``step`` (0.1), ``max_iter`` (100000), ``gtol`` (1e-9, on the gradient
    norm), ``ftol`` (0: off; relative objective change), ``history_every`` (1),
    ``history_metrics`` (False), ``init_scale`` (0.1), ``progress`` (False),
    ``callback(it, x, f) -> stop?`` (``x`` is the working array: copy it to keep it),
    ``h_scale`` (1.0: the plain literature baseline; ``s != 1`` runs GD on
    ``(W, H/s, b)``, i.e. the step on ``H`` is ``s**2 * step``; see
    :class:`~ufm.objectives.scaled.ScaledObjective`), ``momentum`` (0.0: plain GD; ``mu`` in
    (0, 1): heavy ball with PyTorch SGD's semantics, ``v <- mu v + grad F(x)``,
    ``x <- x - step v``, ``v`` starting at 0 -- the optimiser of the public UFM code, with
    step 0.1 and momentum 0.9).

    The iterates are exactly those of ``x = x - step * g`` (same floating-point
    operations); the update is done in place in preallocated arrays.
    """
    o = check_options("gd", options, GD_DEFAULTS)
    mu = o["momentum"]
    if isinstance(mu, bool) or not isinstance(mu, (int, float, np.integer, np.floating)) or not 0 <= mu < 1:
        raise param_error("gd", "momentum", "a float in [0, 1)", mu)
    mu = float(mu)
    x = starting_point(problem, x0, o["init_scale"], rng)
    t0 = time.perf_counter()
    hist = History(problem, o["history_every"], o["history_metrics"])
    bar = progress_bar(o["progress"], o["max_iter"], "gd")
    step = float(o["step"])
    fg = make_objective(problem, h_scale=o["h_scale"])
    scaled = not fg.identity
    y = fg.to_y(x) if scaled else x  # the solver's variable (x itself when unscaled)
    xv = np.empty_like(x) if scaled else x  # the unscaled iterate shown to callbacks/history
    g = np.empty_like(x)
    tmp = np.empty_like(x)
    v = np.zeros_like(x) if mu else None  # heavy ball's velocity
    f, _ = fg.value_and_grad(y, out=g)
    it, status = 0, Status.MAX_ITER
    f_prev = math.inf
    try:
        while True:
            gnorm = fg.grad_norm(g)
            if scaled:
                fg.to_x(y, out=xv)
            hist.maybe_record(it, xv, f, gnorm, step=step)
            if not (math.isfinite(f) and math.isfinite(gnorm)):
                status = Status.NUMERICAL_ERROR
                break
            done = _converged(gnorm, f, f_prev, o["gtol"], o["ftol"])
            if done is not None:
                status = done
                break
            if it >= o["max_iter"] or (o["callback"] and o["callback"](it, xv, f)):
                break
            if v is None:
                np.multiply(g, step, out=tmp)  # y - step * g, in place
            else:
                v *= mu  # v = mu v + g; y - step * v
                v += g
                np.multiply(v, step, out=tmp)
            np.subtract(y, tmp, out=y)
            f_prev = f
            f, _ = fg.value_and_grad(y, out=g)
            it += 1
            bar.update()
            if it % 1000 == 0:
                bar.set_postfix_str(f"F={f:.10g} |g|={gnorm:.2e}")
    except KeyboardInterrupt:
        status = Status.INTERRUPTED
    finally:
        bar.close()
    x = fg.to_x(y, out=np.empty_like(y)) if scaled else y
    g_x = fg.grad_to_x(g) if status != Status.INTERRUPTED else None  # the gradient in x (a copy)
    return finish(problem, "gd", x, status, nit=it, nfev=fg.nfev, t0=t0, history=hist,
                  f=f if status != Status.INTERRUPTED else None, g=g_x,
                  hint="increase `max_iter` or `step` (if it stays stable)")


def agd(
    problem: UFMProblem, x0: np.ndarray | tuple | None = None, *,
    rng: np.random.Generator | int | None = None, **options: Any,
) -> Result:
    """Accelerated gradient descent with backtracking and adaptive restart.

    Each iteration takes a gradient step from the extrapolated point ``y`` with step
    ``1/L``; ``L`` doubles until the sufficient-decrease condition
    ``F(y - g/L) <= F(y) - ||g||^2 / (2L)`` holds and shrinks by 0.9 after each
    iteration; momentum restarts when the objective increases. Options as :func:`gd`,
    with ``step`` the initial ``1/L`` (1.0) and ``h_scale`` (1.0) the same variable scaling.
    """
    o = check_options("agd", options, AGD_DEFAULTS)
    x = starting_point(problem, x0, o["init_scale"], rng)
    t0 = time.perf_counter()
    hist = History(problem, o["history_every"], o["history_metrics"])
    bar = progress_bar(o["progress"], o["max_iter"], "agd")
    L = 1.0 / float(o["step"])
    fg = make_objective(problem, h_scale=o["h_scale"])
    scaled = not fg.identity
    x = fg.to_y(x) if scaled else x
    xv = np.empty_like(x) if scaled else None
    # three point buffers (x, y, trial) and three gradient buffers, rotated by reference
    pts = [x, np.empty_like(x), np.empty_like(x)]
    grads = [np.empty_like(x) for _ in range(3)]
    tmp = np.empty_like(x)

    def free(bufs: list[np.ndarray], *used: np.ndarray) -> np.ndarray:
        return next(b for b in bufs if all(b is not u for u in used))

    f, g = fg.value_and_grad(x, out=grads[0])
    it, status = 0, Status.MAX_ITER
    y, fy, gy = x, f, g
    t = 1.0
    f_prev, step_taken = math.inf, math.nan
    try:
        while True:
            gnorm = fg.grad_norm(g)
            x_show = fg.to_x(x, out=xv) if scaled else x
            hist.maybe_record(it, x_show, f, gnorm, step=step_taken)
            if not (math.isfinite(f) and math.isfinite(gnorm)):
                status = Status.NUMERICAL_ERROR
                break
            done = _converged(gnorm, f, f_prev, o["gtol"], o["ftol"])
            if done is not None:
                status = done
                break
            if it >= o["max_iter"] or (o["callback"] and o["callback"](it, x_show, f)):
                break
            gy2 = float(gy @ gy)
            slack = 4 * np.finfo(float).eps * max(abs(fy), 1.0)
            x_new = free(pts, x, y)
            g_new = free(grads, g, gy)
            while True:
                np.divide(gy, L, out=tmp)  # x_new = y - gy / L
                np.subtract(y, tmp, out=x_new)
                f_new, _ = fg.value_and_grad(x_new, out=g_new)
                if f_new <= fy - 0.5 * gy2 / L + slack:
                    break
                L *= 2.0
                if L > 1e30:
                    status = Status.LINE_SEARCH_FAILED
                    raise StopIteration
            step_taken = 1.0 / L
            it += 1
            bar.update()
            f_prev = f
            if f_new > f:  # restart momentum
                t = 1.0
                y, fy, gy = x_new, f_new, g_new
            else:
                t_new = 0.5 * (1 + math.sqrt(1 + 4 * t * t))
                y_buf = free(pts, x, x_new)
                np.subtract(x_new, x, out=tmp)  # y = x_new + ((t - 1) / t_new) * (x_new - x)
                np.multiply((t - 1) / t_new, tmp, out=tmp)
                np.add(x_new, tmp, out=y_buf)
                y = y_buf
                t = t_new
                gy_buf = free(grads, g_new)
                fy, gy = fg.value_and_grad(y, out=gy_buf)
            x, f, g = x_new, f_new, g_new
            L *= 0.9
    except StopIteration:
        pass
    except KeyboardInterrupt:
        status = Status.INTERRUPTED
    finally:
        bar.close()
    g_x = fg.grad_to_x(g) if status != Status.INTERRUPTED else None  # the gradient in x (a copy)
    x_out = fg.to_x(x, out=np.empty_like(x)) if scaled else x.copy()
    return finish(problem, "agd", x_out, status, nit=it, nfev=fg.nfev, t0=t0, history=hist,
                  f=f if status != Status.INTERRUPTED else None, g=g_x,
                  hint="increase `max_iter`")
