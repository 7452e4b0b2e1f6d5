"""What a user runs, timed end to end: the default call, the CLI, history cost, threads
under contention, start-up.

- :func:`default_call`: ``ufm.solve(p, rng=SEED)`` with every other option at its default
  (the same start as the other rows), whole call timed; then, outside the timing, the
  certificate and :func:`ufm.verify` of what it returned. The time spent recording the
  history is measured inside the same calls (the recorder timed, its timer included).
- :func:`cli_call`: ``python -m ufm.cli solve ...`` (what the ``ufm`` entry point runs) as a
  subprocess, wall time: interpreter start, imports, solve, certificate and verification.
- :func:`contention`: the default call alone and while a busy-loop subprocess keeps one core
  busy, interleaved; plus, at sizes that run single-threaded, a few iterations with BLAS
  forced to the machine's core count (what the default was before one thread per small
  problem) under the same load.
- :func:`startup`: ``python -c "import ufm"`` and ``python -m ufm.cli --help`` wall times,
  and ``-X importtime``'s cumulative time of the ``ufm`` package.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

import ufm
from ufm.objectives.layout import random_point
from ufm.solvers import _common, lbfgs
from ufm.solvers.threads import is_small

from .ladder import LAM, SEED, Size

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


class _RecorderTimer:
    """Wraps :meth:`ufm.solvers._common.History.maybe_record` and ``final`` to add up their time."""

    def __init__(self) -> None:
        self.total = 0.0
        self._orig = (_common.History.maybe_record, _common.History.final)

    def __enter__(self) -> _RecorderTimer:
        me = self

        def timing(fn: Any) -> Any:
            def timed(hist: Any, *a: Any, **k: Any) -> Any:
                t = time.perf_counter()
                out = fn(hist, *a, **k)
                me.total += time.perf_counter() - t
                return out
            return timed

        _common.History.maybe_record = timing(self._orig[0])  # type: ignore[method-assign]
        _common.History.final = timing(self._orig[1])  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: Any) -> None:
        _common.History.maybe_record, _common.History.final = self._orig  # type: ignore[method-assign]


def _solve_default(problem: ufm.UFMProblem, **options: Any) -> tuple[float, ufm.Result]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ufm.ConvergenceWarning)
        t = time.perf_counter()
        res = ufm.solve(problem, rng=SEED, **options)
        return time.perf_counter() - t, res


def default_call(problem: ufm.UFMProblem, repeats: int) -> dict[str, Any]:
    """Median wall time of the default call, what it returned (certified gap, verify),
    and the history's share of the call (recorder time / call time)."""
    times, shares, no_hist = [], [], []
    res = None
    for _ in range(repeats):
        with _RecorderTimer() as rt:
            t, res = _solve_default(problem)
        times.append(t)
        shares.append(rt.total / t)
        no_hist.append(_solve_default(problem, history_every=0)[0])  # interleaved
    assert res is not None
    cert = ufm.certify(problem, res.W, res.H, res.b)
    v = ufm.verify(problem, res.W, res.H, res.b)
    # the shares: of the call's own wall time (the recorder's, finish's conversion included)
    return {"time": statistics.median(times), "times": times, "nit": res.nit, "nfev": res.nfev, "fun": res.fun,
            "status": res.status.name, "grad_norm": res.grad_norm, "cert_gap": cert.rel_gap,
            "verify": v.passed, "failed": [c.name for c in v.claims if not c.passed],
            "history_rows": len(res.history.get("iter", [])),
            "history_share": statistics.median(shares), "time_no_history": statistics.median(no_hist),
            "polish_steps": res.extra.get("polish_steps"), "hessian_products": res.extra.get("hessian_products"),
            "grouped": res.extra.get("group"), "width": res.extra.get("width"), "d": problem.d,
            "message": res.extra.get("message", "")}


def cli_args(size: Size) -> list[str]:
    return ["solve", "--K", str(size.K), "--d", str(size.d), "--profile", size.profile,
            "--lam-W", repr(LAM), "--lam-H", repr(LAM), "--lam-b", repr(LAM), "--seed", str(SEED)]


def cli_call(size: Size, repeats: int, timeout: float) -> dict[str, Any]:
    """Median wall time of ``python -m ufm.cli solve`` on ``size`` (the ``ufm solve`` entry)."""
    cmd = [sys.executable, "-m", "ufm.cli", *cli_args(size)]
    times, out = [], ""
    for _ in range(repeats):
        t = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=timeout, cwd=ROOT)
        except subprocess.TimeoutExpired:
            return {"time": None, "timeout": timeout, "command": "ufm " + " ".join(cli_args(size))}
        times.append(time.perf_counter() - t)
        out = proc.stdout
        if proc.returncode != 0:
            return {"time": None, "error": proc.stderr.strip().splitlines()[-1:],
                    "command": "ufm " + " ".join(cli_args(size))}
    lines = out.splitlines()
    return {"time": statistics.median(times), "times": times, "command": "ufm " + " ".join(cli_args(size)),
            "all_pass": "FAIL" not in out and any("PASS" in ln for ln in lines),
            "solver_line": next((ln.strip() for ln in lines if ln.strip().startswith("solver")), "")}


class _Busy:
    """A CPU-bound subprocess (``while True: pass``) for the duration of a ``with``."""

    def __enter__(self) -> _Busy:
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.3)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.proc.kill()
        self.proc.wait()


def contention(problem: ufm.UFMProblem, repeats: int) -> dict[str, Any]:
    """The default call alone and under one busy core, interleaved (medians), in the BLAS
    setting a user gets (the library's default thread count, not the benchmark's one thread)."""
    from threadpoolctl import threadpool_limits

    cores = os.cpu_count() or 1
    alone, busy = [], []
    with threadpool_limits(limits=cores, user_api="blas"):  # what a user's process starts with
        for _ in range(repeats):
            alone.append(_solve_default(problem)[0])
            with _Busy():
                busy.append(_solve_default(problem)[0])
        out: dict[str, Any] = {"cores": cores, "alone": statistics.median(alone), "busy": statistics.median(busy),
                               "alone_times": alone, "busy_times": busy,
                               "single_thread": is_small(problem.K, problem.d, problem.N)}
        out["slowdown"] = out["busy"] / out["alone"]
        # the share of the machine a busy core leaves: cores - 1 of cores for a multi-threaded
        # solve, a whole core (no slowdown due) for a single-threaded one
        out["fair_slowdown"] = 1.0 if out["single_thread"] or cores == 1 else cores / (cores - 1)
        out["beyond_share"] = out["slowdown"] / out["fair_slowdown"]
        if out["single_thread"] and cores > 1:  # before: the library's threads on a small problem
            x0 = random_point(problem, scale=0.1, rng=SEED)
            iters = 20
            per = {}
            for label, threads in (("one thread", 1), (f"{cores} threads", cores)):
                with _Busy():
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", ufm.ConvergenceWarning)
                        t = time.perf_counter()
                        with threadpool_limits(limits=threads, user_api="blas"):  # ufm.solve would set 1
                            lbfgs(problem, x0.copy(), engine="numpy", max_iter=iters, polish=False)
                        per[label] = (time.perf_counter() - t) / iters
            out["per_iteration_busy"] = per
    return out


def paired_with_fastest(problem: ufm.UFMProblem, spec: Any, k: int, pairs: int) -> dict[str, Any]:
    """The default call and the fastest configuration's uninstrumented run to its certified
    iterate (``spec`` stopped at iteration ``k``, as in :func:`benchmarks.tracker.replay`),
    alternated ``pairs`` times in this process: their ratio, side by side. A call at S takes
    ~10 ms, and this machine's speed drifts by up to 2x over seconds (other tenants), so two
    medians measured minutes apart can be off by that much; pairs see the same machine."""
    from .ladder import COMMON, start

    x0 = start(problem)
    opts = {**COMMON, **spec.options, "max_iter": k}
    if spec.method == "lbfgs" and opts.get("engine", "auto") == "auto":
        opts["engine"] = "numpy"  # as the replay: `auto` would fall back to scipy after max_iter
    defaults, fastest, ratios = [], [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ufm.ConvergenceWarning)
        for _ in range(pairs):
            td = _solve_default(problem)[0]
            t = time.perf_counter()
            ufm.solve(problem, spec.method, x0.copy(), **opts)
            tf = time.perf_counter() - t
            defaults.append(td)
            fastest.append(tf)
            ratios.append(td / tf)
    return {"label": spec.label, "pairs": pairs, "default": statistics.median(defaults),
            "fastest": statistics.median(fastest), "ratio": statistics.median(ratios),
            "ratio_min": min(ratios), "ratio_max": max(ratios)}


def _wall(cmd: list[str], repeats: int) -> float:
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True, env=_env(), check=True, cwd=ROOT)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def startup(repeats: int = 7) -> dict[str, Any]:
    py = sys.executable
    out: dict[str, Any] = {
        "python": _wall([py, "-c", "pass"], repeats),
        "import_ufm": _wall([py, "-c", "import ufm"], repeats),
        "help": _wall([py, "-m", "ufm.cli", "--help"], repeats),
        "repeats": repeats,
    }
    for key, cmd in (("importtime_import", [py, "-X", "importtime", "-c", "import ufm"]),
                     ("importtime_help", [py, "-X", "importtime", "-m", "ufm.cli", "--help"])):
        err = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=ROOT).stderr
        cum, mods = 0, set()
        for line in err.splitlines():
            parts = [p.strip() for p in line.split("|")]
            if len(parts) == 3 and parts[1].isdigit():
                name = parts[2]
                mods.add(name)
                if name.split(".")[0] == "ufm" and not line.split("|")[2].startswith("  "):
                    cum += int(parts[1])  # a top-level import of the package (its own cost)
        out[key] = {"cumulative_us": cum, "numpy": "numpy" in mods, "scipy": any(m.startswith("scipy") for m in mods)}
    return out


def summary_numbers(x: Any) -> Any:
    """JSON-safe copy (numpy scalars to floats)."""
    if isinstance(x, dict):
        return {k: summary_numbers(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [summary_numbers(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x
