"""The naive peers: what a researcher writes without ``ufm`` (rows of ``make bench``).

Two scripts, each on ``F(W, H, b)`` over all N feature columns, written plainly (no grouping,
no workspace, no polish) and stopped the moment ``(F - F*) / |F*| <= 1e-6`` with ``F*`` the
theorem's optimum (the package is not told it):

- :func:`scipy_peer`: numpy value and gradient + ``scipy.optimize.minimize(method="L-BFGS-B")``
  (default memory 10, ``jac=True``), stopped by a callback raising ``StopIteration``;
- :func:`jax_peer`: the same function in ``jax.numpy`` (float64), ``optax.lbfgs()`` with its
  zoom line search, the step jitted, a Python loop (the optax documentation's recipe). The
  compilation is timed apart (``compile``), outside ``time``.

Both start at :func:`benchmarks.ladder.start` (the default call's own start).
:func:`paired` alternates each peer with the default call ``ufm.solve(p, rng=0)`` and gives
the median of the ratios peer / default (this machine's speed drifts: pairs see the same
machine).
"""

from __future__ import annotations

import math
import statistics
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

import ufm

from .ladder import SEED, start

TARGET = 1e-6  # relative gap to the known optimum at which the peers stop
MAX_ITER = 100_000


@dataclass
class PeerRun:
    time: float  # seconds to the target (compilation excluded)
    nit: int
    rel: float  # (F - F*) / |F*| where it stopped
    reached: bool
    compile: float = 0.0


def _parts(problem: ufm.UFMProblem) -> tuple[np.ndarray, np.ndarray]:
    d = problem.design
    return np.asarray(d.Y, dtype=np.float64), np.asarray(d.m, dtype=np.float64)


def _check(problem: ufm.UFMProblem) -> None:
    if problem.loss != "pal":
        raise ValueError(f"the naive peers are written for loss 'pal'; got {problem.loss!r}")


def scipy_peer(problem: ufm.UFMProblem, F_star: float, x0: np.ndarray | None = None,
               target: float = TARGET) -> PeerRun:
    """numpy + scipy L-BFGS-B, as a researcher would write it."""
    from scipy.optimize import minimize
    from scipy.special import logsumexp, softmax

    _check(problem)
    K, d, N = problem.K, problem.d, problem.N
    Y, m = _parts(problem)
    lw, lh, lb = problem.lam_W, problem.lam_H, problem.lam_b if problem.bias else 0.0

    def fg(x: np.ndarray) -> tuple[float, np.ndarray]:
        W = x[:K * d].reshape(K, d)
        H = x[K * d:K * d + d * N].reshape(d, N)
        b = x[K * d + d * N:]
        Z = W @ H + b[:, None]
        f = (np.sum(m * logsumexp(Z, axis=0)) - np.sum(Y * Z)) / N
        f += 0.5 * (lw * np.sum(W * W) + lh * np.sum(H * H) + lb * np.sum(b * b))
        G = (softmax(Z, axis=0) * m - Y) / N
        return f, np.concatenate([(G @ H.T + lw * W).ravel(), (W.T @ G + lh * H).ravel(), G.sum(axis=1) + lb * b])

    x = (start(problem) if x0 is None else x0).copy()
    if not problem.bias:
        x = x[:K * d + d * N]
    state = {"rel": math.inf, "nit": 0}

    def cb(intermediate_result: Any) -> None:
        state["nit"] += 1
        state["rel"] = (intermediate_result.fun - F_star) / abs(F_star)
        if state["rel"] <= target:
            raise StopIteration

    t = time.perf_counter()
    res = minimize(fg, x, jac=True, method="L-BFGS-B", callback=cb,
                   options={"maxiter": MAX_ITER, "maxfun": 10 * MAX_ITER, "gtol": 0.0, "ftol": 0.0})
    wall = time.perf_counter() - t
    rel = (float(res.fun) - F_star) / abs(F_star)
    return PeerRun(wall, state["nit"], rel, rel <= target)


def jax_available() -> str | None:
    """None when JAX and optax import; else why not (the row is skipped with this reason)."""
    try:
        import jax  # noqa: F401
        import optax  # noqa: F401
    except ImportError as exc:
        return f"JAX/optax not installed ({exc.name}); pip install -e .[nn]"
    return None


def jax_peer(problem: ufm.UFMProblem, F_star: float, x0: np.ndarray | None = None,
             target: float = TARGET) -> PeerRun:
    """JAX (float64) + optax L-BFGS, the step jitted, as a researcher would write it."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import optax

    _check(problem)
    K, d, N = problem.K, problem.d, problem.N
    Y_np, m_np = _parts(problem)
    Y, m = jnp.asarray(Y_np), jnp.asarray(m_np)
    lw, lh, lb = problem.lam_W, problem.lam_H, problem.lam_b if problem.bias else 0.0

    def f(params: tuple) -> Any:
        W, H, b = params
        Z = W @ H + b[:, None]
        loss = (jnp.sum(m * jax.scipy.special.logsumexp(Z, axis=0)) - jnp.sum(Y * Z)) / N
        return loss + 0.5 * (lw * jnp.sum(W * W) + lh * jnp.sum(H * H) + lb * jnp.sum(b * b))

    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(f)

    @jax.jit
    def step(params: tuple, state: Any) -> tuple:
        value, grad = value_and_grad(params, state=state)
        updates, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=f)
        return optax.apply_updates(params, updates), state, value

    x = start(problem) if x0 is None else x0
    W0 = x[:K * d].reshape(K, d)
    H0 = x[K * d:K * d + d * N].reshape(d, N)
    b0 = x[K * d + d * N:] if problem.bias else np.zeros(K)
    params = (jnp.asarray(W0), jnp.asarray(H0), jnp.asarray(b0))
    state = opt.init(params)
    tc = time.perf_counter()
    compiled = step.lower(params, state).compile()  # the one-off compilation, timed apart
    tc = time.perf_counter() - tc
    t = time.perf_counter()
    rel, nit = math.inf, 0
    while nit < MAX_ITER:
        params, state, value = compiled(params, state)
        nit += 1
        rel = (float(value) - F_star) / abs(F_star)  # F at the iterate before this step
        if rel <= target:
            break
    wall = time.perf_counter() - t
    return PeerRun(wall, nit, rel, rel <= target, tc)


def _default(problem: ufm.UFMProblem) -> tuple[float, ufm.Result]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ufm.ConvergenceWarning)
        t = time.perf_counter()
        res = ufm.solve(problem, rng=SEED)
        return time.perf_counter() - t, res


def paired(problem: ufm.UFMProblem, F_star: float, pairs: int, target: float = TARGET,
           budget: float = 60.0) -> dict[str, Any]:
    """Each peer alternated with the default call up to ``pairs`` times (fewer once the peer's
    runs add up to ``budget`` seconds: at W one scipy run takes ~20 s): medians and the ratios
    peer / default (median and range); a peer that cannot run is skipped with the reason."""
    peers: dict[str, Any] = {"naive numpy + scipy L-BFGS-B": scipy_peer}
    why = jax_available()
    skipped = {} if why is None else {"naive JAX + optax L-BFGS (jit, float64)": why}
    if why is None:
        peers["naive JAX + optax L-BFGS (jit, float64)"] = jax_peer
    x0 = start(problem)
    rows = []
    for label, fn in peers.items():
        dts, pts, ratios, last = [], [], [], None
        for _ in range(pairs):
            td, res = _default(problem)
            last = fn(problem, F_star, x0, target)
            dts.append(td)
            pts.append(last.time)
            ratios.append(last.time / td)
            if sum(pts) > budget:
                break
        assert last is not None
        rows.append({"label": label, "pairs": len(ratios), "default": statistics.median(dts),
                     "peer": statistics.median(pts), "ratio": statistics.median(ratios),
                     "ratio_min": min(ratios), "ratio_max": max(ratios), "nit": last.nit, "rel": last.rel,
                     "reached": last.reached, "compile": last.compile})
    return {"target": target, "rows": rows, "skipped": skipped}


def markdown(results: dict[str, Any]) -> list[str]:
    """The section of bench.md: every size's peers, paired with the default call."""
    sizes = [s for s in results["sizes"] if s.get("peers")]
    if not sizes:
        return []
    L = ["## The naive peers", "",
         "What a researcher writes without ufm (`benchmarks/peers.py`): F over all N columns, plain "
         "value and gradient, (a) numpy + scipy L-BFGS-B, (b) JAX float64 + optax L-BFGS with the step "
         "jitted (compilation timed apart, not counted). Both start where the default call starts and "
         "stop the moment (F - F*)/|F*| <= 1e-6 with the theorem's F* (which the package is not told); "
         "the default call runs to its own certified and verified answer. Each peer is alternated with "
         "`ufm.solve(p, rng=0)`; the ratio is the median of the pairs' peer / default (range).", "",
         "| size | peer | pairs | default call (s) | peer (s) | peer / default (range) | iterations | rel. gap reached "
         "| compile (s) |", "|---|---|---|---|---|---|---|---|---|"]
    for size in sizes:
        pe = size["peers"]
        for r in pe["rows"]:
            L.append(f"| {size['size']} | {r['label']} | {r['pairs']} | {r['default']:.3g} | {r['peer']:.3g} | "
                     f"**{r['ratio']:.3g}** ({r['ratio_min']:.3g}..{r['ratio_max']:.3g}) | {r['nit']} | "
                     f"{r['rel']:.1e}{'' if r['reached'] else ' (not reached)'} | "
                     f"{r['compile']:.3g} |" if r["compile"] else
                     f"| {size['size']} | {r['label']} | {r['pairs']} | {r['default']:.3g} | {r['peer']:.3g} | "
                     f"**{r['ratio']:.3g}** ({r['ratio_min']:.3g}..{r['ratio_max']:.3g}) | {r['nit']} | "
                     f"{r['rel']:.1e}{'' if r['reached'] else ' (not reached)'} | — |")
        for label, why in pe["skipped"].items():
            L.append(f"| {size['size']} | {label} | — | — | — | skipped: {why} | — | — | — |")
    return [*L, ""]
