"""``python -m benchmarks.gpu``: the package's ``--device cuda`` path against hand-written PyTorch.

One command, one process; writes ``reports/bench_gpu.md`` with the machine's description.
Rows per size (default L, K=200 d=256, and K=1000 d=1024 profile 1:10,2:1, N=509,500):

- ``ufm.solve(p, device="cuda")``: the array-API L-BFGS on the grouped objective
  (:mod:`ufm.solvers.device`), the whole call timed;
- ``torch.optim.LBFGS`` with history 10 and 100 (strong Wolfe line search) and full-batch GD
  (``torch.optim.SGD``, step ``--gd-step``), on F over all N columns in float64 on the same
  device, written as a researcher would (30 lines), stopped at ``(F - F*)/|F*| <= 1e-6`` with
  the theorem's ``F*`` or at ``--budget`` seconds;

each point then certified on the CPU (``ufm.certify``, outside the timing): the certified
relative gap is in the table. Plus one evaluation of ``F`` and its gradient (the package's
full objective on the device) against its three GEMMs (``W H``, ``G H^T``, ``W^T G``).

On a machine without a GPU, ``--device cpu`` (numpy through array-api-compat, and PyTorch on
the CPU where installed) runs the same script; ``--tiny`` uses a K=4 problem (the test).
PyTorch rows are skipped, with the reason, when PyTorch is not installed.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import ufm

from .ladder import LADDER, SEED, Size, start

SIZES = {"L": LADDER["L"], "K1000": Size("K1000", 1000, 1024, "1:10,2:1"), "tiny": Size("tiny", 4, 4, "1:3,2:1")}
TARGET = 1e-6


def machine(device: str) -> list[str]:
    """Lines describing the machine: CPU, GPU (asked of PyTorch, CuPy or JAX for --device cuda), versions."""
    from importlib.metadata import PackageNotFoundError, version

    lines = [f"- host: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, {platform.processor() or '?'}, "
             f"Python {sys.version.split()[0]}, numpy {np.__version__}"]
    libs = []
    for dist in ("torch", "cupy", "jax", "jaxlib", "array-api-compat"):
        try:
            libs.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            pass
    lines.append("- libraries: " + (", ".join(libs) or "none of torch, cupy, jax"))
    if device == "cuda":
        from ufm.xp.devices import namespace

        xp, dev = namespace("cuda")
        gpu = str(dev)
        try:
            import torch

            if torch.cuda.is_available():
                gpu = f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
        except ImportError:
            pass
        lines.append(f"- GPU: {gpu}; array namespace of the package's path: {xp.__name__}")
    lines.append(f"- device asked: {device}")
    return lines


def _sync(xp: Any, a: Any) -> float:
    """Wait for the device: a scalar read of ``a`` (a reduction, small against the work timed)."""
    return float(xp.sum(a))


def _certify(problem: ufm.UFMProblem, W: np.ndarray, H: np.ndarray, b: np.ndarray) -> float:
    """The certified relative gap; nan where none exists (a diverged point)."""
    try:
        return float(ufm.certify(problem, W, H, b).rel_gap)
    except ufm.UFMError:
        return math.nan


def package_row(problem: ufm.UFMProblem, device: str) -> dict[str, Any]:
    t = time.perf_counter()
    r = ufm.solve(problem, rng=SEED, device=device) if device == "cuda" else _cpu_solve(problem)
    wall = time.perf_counter() - t
    label = f"ufm.solve(p, device={device!r})" if device == "cuda" else "ufm array-API path on the CPU (numpy)"
    return {"label": label, "time": wall, "nit": r.nit, "nfev": r.nfev,
            "rel": (r.fun - _F_star(problem)) / abs(_F_star(problem)), "cert": _certify(problem, r.W, r.H, r.b),
            "reached": True, "note": f"array-API L-BFGS, grouped ({r.extra.get('namespace')})"}


def _cpu_solve(problem: ufm.UFMProblem) -> ufm.Result:
    """The array-API path on the CPU (numpy through array-api-compat): what ``device="cuda"`` runs."""
    from importlib import import_module

    from ufm.solvers.device import solve_xp

    return solve_xp(problem, import_module("array_api_compat.numpy"), rng=SEED)


def _F_star(problem: ufm.UFMProblem) -> float:
    return float(ufm.predict(problem).value)


def torch_available() -> str | None:
    try:
        import torch  # noqa: F401
    except ImportError:
        return "PyTorch not installed (pip install torch)"
    return None


def torch_row(problem: ufm.UFMProblem, device: str, kind: str, *, history: int = 10, step: float = 200.0,
              budget: float = 600.0, target: float = TARGET) -> dict[str, Any]:
    """A hand-written PyTorch solve of F over all N columns (float64), stopped at the target."""
    import torch

    dev = torch.device("cuda" if device == "cuda" else "cpu")
    K, d, N = problem.K, problem.d, problem.N
    Y = torch.tensor(np.asarray(problem.design.Y, dtype=np.float64), device=dev)
    m = torch.tensor(np.asarray(problem.design.m, dtype=np.float64), device=dev)
    x0 = start(problem)
    W = torch.tensor(x0[:K * d].reshape(K, d), device=dev, requires_grad=True)
    H = torch.tensor(x0[K * d:K * d + d * N].reshape(d, N), device=dev, requires_grad=True)
    b = torch.tensor(x0[K * d + d * N:] if problem.bias else np.zeros(K), device=dev, requires_grad=problem.bias)
    lw, lh, lb = problem.lam_W, problem.lam_H, problem.lam_b if problem.bias else 0.0
    params = [W, H, b] if problem.bias else [W, H]
    F_star = _F_star(problem)

    def F() -> Any:
        Z = W @ H + b[:, None]
        loss = (m * torch.logsumexp(Z, dim=0) - (Y * Z).sum(dim=0)).sum() / N
        return loss + 0.5 * (lw * (W * W).sum() + lh * (H * H).sum() + lb * (b * b).sum())

    if kind == "lbfgs":
        opt: Any = torch.optim.LBFGS(params, lr=1.0, history_size=history, max_iter=20,
                                     tolerance_grad=0.0, tolerance_change=0.0, line_search_fn="strong_wolfe")
        label = f"torch.optim.LBFGS (history {history}, strong Wolfe)"
    else:
        opt = torch.optim.SGD(params, lr=step)
        label = f"full-batch GD (torch.optim.SGD, lr {step:g})"

    def closure() -> Any:
        opt.zero_grad()
        f = F()
        f.backward()
        return f

    t = time.perf_counter()
    rel, nit = math.inf, 0
    while time.perf_counter() - t < budget:
        f = opt.step(closure)
        nit += 1
        rel = (float(f.detach()) - F_star) / abs(F_star)  # F before the step (one extra step at most)
        if rel <= target or not math.isfinite(rel):  # reached, or diverged
            break
    wall = time.perf_counter() - t
    with torch.no_grad():
        rel = (float(F()) - F_star) / abs(F_star)
    arrs = [a.detach().cpu().numpy() for a in (W, H, b)]
    return {"label": label, "time": wall, "nit": nit, "nfev": None, "rel": rel, "cert": _certify(problem, *arrs),
            "reached": rel <= target,
            "note": "" if rel <= target else "diverged" if not math.isfinite(rel) else f"budget {budget:g} s"}


def evaluation_row(problem: ufm.UFMProblem, device: str, repeats: int = 5) -> dict[str, Any]:
    """One evaluation of F and its gradient (full objective, on the device) against its three GEMMs."""
    from importlib import import_module

    from ufm.objectives.array_api import ArrayObjective
    from ufm.objectives.layout import unpack
    from ufm.xp.devices import namespace

    xp, dev = namespace(device) if device == "cuda" else (import_module("array_api_compat.numpy"), None)
    obj = ArrayObjective(problem, xp, dev, grouped=False)
    z = obj.restrict(*unpack(start(problem), problem))
    W, H, _ = obj.unpack(z)
    G = obj.Y * 1.0
    ev, mm = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        _sync(xp, obj.value_and_grad(z)[1])
        ev.append(time.perf_counter() - t)
        t = time.perf_counter()
        _sync(xp, W @ H)
        _sync(xp, G @ H.T)
        _sync(xp, W.T @ G)
        mm.append(time.perf_counter() - t)
    e, g = statistics.median(ev), statistics.median(mm)
    return {"evaluation": e, "gemms": g, "ratio": e / g}


def run(sizes: list[str], device: str, budget: float, gd_step: float) -> dict[str, Any]:
    out: dict[str, Any] = {"device": device, "sizes": []}
    why = torch_available()
    for name in sizes:
        size = SIZES[name]
        p = size.problem()
        rows = [package_row(p, device)]
        print(f"{name}: {rows[-1]['label']} {rows[-1]['time']:.3g} s, certified {rows[-1]['cert']:.1e}", flush=True)
        skipped = {}
        for kind, hist in (("lbfgs", 10), ("lbfgs", 100), ("gd", 0)):
            label = f"torch {kind}" + (f" history {hist}" if hist else "")
            if why is not None:
                skipped[label] = why
                continue
            rows.append(torch_row(p, device, kind, history=hist or 10, step=gd_step, budget=budget))
            print(f"{name}: {rows[-1]['label']} {rows[-1]['time']:.3g} s, certified {rows[-1]['cert']:.1e}",
                  flush=True)
        ev = evaluation_row(p, device)
        print(f"{name}: evaluation {ev['evaluation'] * 1e3:.3g} ms, three GEMMs {ev['gemms'] * 1e3:.3g} ms", flush=True)
        out["sizes"].append({"size": name, "describe": size.describe(), "rows": rows, "skipped": skipped,
                             "evaluation": ev})
    return out


def markdown(results: dict[str, Any], machine_lines: list[str]) -> str:
    L = ["# GPU benchmark (`python -m benchmarks.gpu`)", "", f"Measured {time.strftime('%Y-%m-%d %H:%M')}.", "",
         *machine_lines, "",
         "Each row: the whole solve timed (the package: `ufm.solve(p, device=...)`, the array-API L-BFGS on "
         "the grouped objective to its gradient tolerance; PyTorch: F over all N columns in float64, stopped "
         f"at (F - F*)/|F*| <= {TARGET:g} with the theorem's F*), then the point certified on the CPU outside "
         "the timing. Ratio: the row's time / the package's. Goals: L at least 3x faster than the best "
         "torch LBFGS, K=1000 at least 2x, an evaluation within 1.5x of its three GEMMs.", ""]
    for s in results["sizes"]:
        base = s["rows"][0]["time"]
        L += [f"## {s['describe']}", "", "| solver | time (s) | / package | iterations | rel. gap to F* | certified gap "
              "| note |", "|---|---|---|---|---|---|---|"]
        for r in s["rows"]:
            L.append(f"| {r['label']} | {r['time']:.3g} | {r['time'] / base:.3g} | {r['nit']} | {r['rel']:.1e} | "
                     f"{r['cert']:.1e} | {r['note']} |")
        for label, why in s["skipped"].items():
            L.append(f"| {label} | — | — | — | — | — | skipped: {why} |")
        ev = s["evaluation"]
        L += ["", f"One evaluation (F and gradient, full objective): {ev['evaluation'] * 1e3:.3g} ms; its three "
              f"GEMMs: {ev['gemms'] * 1e3:.3g} ms; ratio **{ev['ratio']:.2f}**.", ""]
    return "\n".join(L) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--sizes", default="L,K1000", help=f"comma-separated of {sorted(SIZES)}")
    ap.add_argument("--tiny", action="store_true", help="the K=4 problem only (a smoke test)")
    ap.add_argument("--budget", type=float, default=600.0, help="seconds per PyTorch row (default 600)")
    ap.add_argument("--gd-step", type=float, default=None,
                    help="GD's step (default 200, the bench's best grid step at L; --tiny: 1)")
    ap.add_argument("--out", default="reports", help="folder of bench_gpu.md")
    a = ap.parse_args(argv)
    sizes = ["tiny"] if a.tiny else [s.strip() for s in a.sizes.split(",") if s.strip()]
    if a.gd_step is None:
        a.gd_step = 1.0 if a.tiny else 200.0
    if a.tiny:
        a.budget = min(a.budget, 10.0)
    bad = [s for s in sizes if s not in SIZES]
    if bad:
        ap.error(f"unknown size(s) {bad}; choose from {sorted(SIZES)}")
    if a.device == "cuda":
        from ufm.exceptions import UFMError
        from ufm.xp.devices import namespace

        try:
            namespace("cuda")
        except UFMError as exc:
            print(f"python -m benchmarks.gpu: {exc}", file=sys.stderr)
            return 2
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    results = run(sizes, a.device, a.budget, a.gd_step)
    path = out / "bench_gpu.md"
    path.write_text(markdown(results, machine(a.device)))
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
