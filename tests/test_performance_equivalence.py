"""The performance work changes speed, never results.

- The fast PAL kernel and the packed objective/gradient/Hessian-vector product equal a
  naive implementation written from docs/theory.md section 2 (per-sample loops, dense ``Y``), on
  random designs and logits of every scale, to ``rtol = 1e-12``.
- Plain GD and AGD, updated in place, produce the iterates of ``x = x - step * g`` bit for
  bit; GD with ``h_scale`` is GD with the step on ``H`` multiplied by ``h_scale**2``.
- Scaled and unscaled solvers, and the numpy and scipy L-BFGS engines, reach the same
  optimum (value to 1e-10 relative, certified).
- The new options are validated; the benchmark's pieces run on a tiny problem.

No timing is asserted anywhere: speed is measured by ``make bench``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.special import expit

import ufm
from ufm import UFMProblem, balanced, from_indicator, imbalanced_single, random_subset
from ufm.certificate import certify
from ufm.exceptions import ConvergenceWarning, UFMError
from ufm.losses import LOSS_FUNCTIONS, pal_inplace
from ufm.objectives.full import Evaluator, fun_and_grad, hvp, value_and_grad
from ufm.objectives.layout import pack, random_point, unpack
from ufm.objectives.scaled import ScaledObjective
from ufm.result import Status

RTOL = 1e-12


# -- naive references (docs/theory.md section 2), deliberately slow and literal -------------------
def _lse(z: np.ndarray) -> float:
    c = z.max()
    return float(np.log(np.sum(np.exp(z - c))) + c)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def naive_loss(loss: str, Z: np.ndarray, Y: np.ndarray) -> tuple[float, np.ndarray]:
    """``L(Z) = (1/N) sum_i l(z_i; y_i)`` and ``dL/dZ``, one sample at a time."""
    K, N = Z.shape
    value, G = 0.0, np.zeros((K, N))
    for i in range(N):
        z, y = Z[:, i], Y[:, i]
        m = y.sum()
        if loss == "pal":  # sum_{k in S} (LSE - z_k)
            value += sum(_lse(z) - z[k] for k in np.flatnonzero(y))
            G[:, i] = m * _softmax(z) - y
        elif loss == "pal-normalized":  # LSE - <y/m, z>
            value += _lse(z) - (y / m) @ z
            G[:, i] = _softmax(z) - y / m
        else:  # bce: sum_k softplus(z_k) - y_k z_k
            value += float(np.sum(np.logaddexp(0.0, z) - y * z))
            G[:, i] = expit(z) - y
    return value / N, G / N


def naive_F_grad(p: UFMProblem, W, H, b):
    b = b if p.bias else np.zeros(p.K)
    L, G = naive_loss(p.loss, W @ H + b[:, None], p.design.Y)
    F = L + 0.5 * (p.lam_W * np.sum(W**2) + p.lam_H * np.sum(H**2) + p.lam_b * np.sum(b**2) * p.bias)
    dW = G @ H.T + p.lam_W * W
    dH = W.T @ G + p.lam_H * H
    db = G.sum(axis=1) + p.lam_b * b if p.bias else np.zeros(p.K)
    return F, dW, dH, db


def naive_hvp(p: UFMProblem, x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Hessian-vector product from the per-sample softmax Jacobians."""
    W, H, b = unpack(x, p)
    VW, VH, vb = unpack(v, p)
    b = b if p.bias else np.zeros(p.K)
    vb = vb if p.bias else np.zeros(p.K)
    Z = W @ H + b[:, None]
    _, G = naive_loss(p.loss, Z, p.design.Y)
    dZ = VW @ H + W @ VH + vb[:, None]
    dG = np.zeros_like(Z)
    for i in range(p.N):
        s = _softmax(Z[:, i])
        J = np.diag(s) - np.outer(s, s)
        scale = p.design.Y[:, i].sum() if p.loss == "pal" else 1.0
        dG[:, i] = scale * J @ dZ[:, i] / p.N
    hW = dG @ H.T + G @ VH.T + p.lam_W * VW
    hH = VW.T @ G + W.T @ dG + p.lam_H * VH
    hb = dG.sum(axis=1) + p.lam_b * vb
    return pack(hW, hH, hb, p.bias)


DESIGNS = {
    "balanced": lambda: balanced(4, {1: 2, 2: 1, 4: 1}),
    "imbalanced": lambda: imbalanced_single(5, [1, 4, 2, 3, 6], extra={(0, 3): 2, (1, 2, 4): 1}),
    "random": lambda: random_subset(6, 7, max_multiplicity=4, count=(1, 3), rng=5),
}


def _problem(design: str, loss: str, bias: bool, d: int = 3) -> UFMProblem:
    return UFMProblem(DESIGNS[design](), d, 3e-2, 2e-2, 1e-2 if bias else 0.0, bias=bias, loss=loss)


def _assert_close(a, b, what):
    a, b = np.asarray(a, float), np.asarray(b, float)
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=RTOL * max(np.abs(b).max(), 1e-300), err_msg=what)


# -- the kernel and the objective ---------------------------------------------------------
@pytest.mark.parametrize("scale", [1e-3, 1.0, 40.0, 800.0])
@pytest.mark.parametrize("loss", ["pal", "pal-normalized"])
def test_pal_kernel_equals_the_naive_loss_on_label_positions(rng, loss, scale):
    """``pal_inplace`` on the positions of the ones of ``Y`` (any user ``Y``, samples in any
    order) equals the per-sample definition, including logits far beyond exp's range."""
    K, N = 7, 40
    Y = (rng.random((K, N)) < 0.3).astype(float)
    Y[rng.integers(0, K, N), np.arange(N)] = 1.0  # no empty label set
    Z = scale * rng.standard_normal((K, N))
    y_flat = np.flatnonzero(Y)
    m = Y.sum(axis=0)
    col, yw = (m, 1.0) if loss == "pal" else (np.ones(N), (1.0 / m)[y_flat % N])
    G = Z.copy()
    value = pal_inplace(G, y_flat, col, yw)
    ref_value, ref_G = naive_loss(loss, Z, Y)
    _assert_close(value, ref_value, f"{loss} value")
    _assert_close(G, ref_G, f"{loss} gradient")
    # the dense-Y entry point agrees too
    v2, G2 = LOSS_FUNCTIONS[loss](Z, Y, m)
    _assert_close(v2, ref_value, f"{loss} dense value")
    _assert_close(G2, ref_G, f"{loss} dense gradient")


@pytest.mark.parametrize("design", sorted(DESIGNS))
@pytest.mark.parametrize("loss,bias", [("pal", True), ("pal", False), ("pal-normalized", True), ("bce", True)])
def test_value_gradient_and_hvp_equal_the_naive_ones(rng, design, loss, bias):
    p = _problem(design, loss, bias)
    for scale in (0.1, 3.0, 30.0):
        x = random_point(p, scale=scale, rng=rng)
        W, H, b = unpack(x, p)
        F, dW, dH, db = value_and_grad(p, W, H, b)
        rF, rW, rH, rb = naive_F_grad(p, W, H, b)
        _assert_close(F, rF, "F")
        for got, ref, name in ((dW, rW, "dW"), (dH, rH, "dH"), (db, rb, "db")):
            _assert_close(got, ref, name)
        f2, g2 = fun_and_grad(x, p)
        assert f2 == F
        _assert_close(g2, pack(rW, rH, rb, p.bias), "packed gradient")
        # the Evaluator's small-problem path (cached views, the ridge as one inner product),
        # twice on the same buffers (cached views), and with a new output array
        ev, out = Evaluator(p), np.full_like(x, np.nan)
        assert ev.packed is not None
        for _ in range(2):
            f3, g3 = ev(x, out=out)
            _assert_close(f3, rF, "F (small path)")
            _assert_close(g3, pack(rW, rH, rb, p.bias), "gradient (small path)")
        f4, g4 = ev(x)
        assert f4 == f3
        np.testing.assert_array_equal(g4, g3)
        if loss != "bce":
            v = rng.standard_normal(x.size)
            _assert_close(hvp(x, v, p), naive_hvp(p, x, v), "hvp")


def test_user_indicator_in_any_sample_order(rng):
    """Designs from a user's ``Y`` (``from_indicator``) use the same label positions."""
    K, N = 5, 30
    Y = (rng.random((K, N)) < 0.35).astype(int)
    Y[rng.integers(0, K, N), np.arange(N)] = 1
    design, order = from_indicator(Y)
    np.testing.assert_array_equal(design.Y, Y[:, order])
    p = UFMProblem(design, 4, 1e-2, 1e-2, 1e-2)
    x = random_point(p, scale=2.0, rng=rng)
    F, dW, dH, db = value_and_grad(p, *unpack(x, p))
    rF, rW, rH, rb = naive_F_grad(p, *unpack(x, p))
    _assert_close(F, rF, "F")
    _assert_close(dH, rH, "dH")


# -- the solvers: same iterates, same optimum ----------------------------------------------
def test_gd_and_agd_iterates_are_those_of_the_textbook_update():
    p = UFMProblem(balanced(4, {1: 3, 2: 1}), 4, 5e-3, 5e-3, 1e-2)
    x0 = random_point(p, scale=0.1, rng=3)
    x = x0.copy()
    for _ in range(60):
        x = x - 2.0 * fun_and_grad(x, p)[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        r = ufm.solve(p, "gd", x0, step=2.0, max_iter=60, history_every=0)
    np.testing.assert_array_equal(r.x, x)
    # h_scale = s: GD on (W, H/s, b) is GD whose step on H is s^2 times larger
    s = 1.7
    x = x0.copy()
    steps = np.full(p.n_vars, 1.0)
    steps[p.K * p.d: p.K * p.d + p.d * p.N] = s * s
    for _ in range(60):
        x = x - 1.0 * steps * fun_and_grad(x, p)[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        r = ufm.solve(p, "gd", x0, step=1.0, h_scale=s, max_iter=60, history_every=0)
    np.testing.assert_allclose(r.x, x, rtol=1e-12, atol=1e-14)


def _two_loop(g: np.ndarray, pairs: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Nocedal & Wright, Algorithm 7.4: ``H g`` with ``H0 = (s'y / y'y) I`` of the newest pair."""
    q, alphas = g.copy(), []
    for s, y in reversed(pairs):
        a = (s @ q) / (s @ y)
        alphas.append(a)
        q -= a * y
    s, y = pairs[-1]
    q *= (s @ y) / (y @ y)
    for (s, y), a in zip(pairs, reversed(alphas)):
        q += (a - (y @ q) / (s @ y)) * s
    return q


@pytest.mark.parametrize("maxcor", [1, 3])
def test_numpy_engine_directions_are_the_textbook_two_loop(maxcor):
    """Each step of the numpy engine (m = 1 uses a closed form of the recursion) is along
    ``-H g`` of the textbook two-loop recursion on the pairs ``(x_k+1 - x_k, g_k+1 - g_k)``
    kept by the engine's rule (``s'y > 1e-12 y'y``), or along ``-g`` when none is kept."""
    p = UFMProblem(balanced(5, {1: 3, 2: 1}), 4, 5e-3, 5e-3, 1e-2)
    xs: list[np.ndarray] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ufm.solve(p, "lbfgs", random_point(p, scale=0.1, rng=4), engine="numpy", maxcor=maxcor,
                  history_every=0, polish=False, callback=lambda it, x, f: bool(xs.append(x.copy())) or it >= 40)
    gs = [fun_and_grad(x, p)[1] for x in xs]
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    checked = 0
    for k in range(len(xs) - 1):
        if k > 0:
            s, y = xs[k] - xs[k - 1], gs[k] - gs[k - 1]
            if len(pairs) == maxcor:
                pairs.pop(0)
            if s @ y > 1e-12 * (y @ y):
                pairs.append((s, y))
        d = xs[k + 1] - xs[k]
        ref = -_two_loop(gs[k], pairs) if pairs else -gs[k]
        cos = (d @ ref) / (np.linalg.norm(d) * np.linalg.norm(ref))
        assert cos > 1 - 1e-9, (k, cos)
        checked += bool(pairs)
    assert checked >= 30


def test_scaled_objective_is_exact(rng):
    """``F~(y) = F(D y)`` with ``grad F~ = D grad F``; ``grad_norm`` reports ``|grad F|``."""
    p = _problem("random", "pal", True)
    so = ScaledObjective(p, 2.5)
    y = random_point(p, rng=rng)
    x = so.to_x(y)
    f, gy = so.value_and_grad(y)
    fx, gx = fun_and_grad(x, p)
    assert f == fx
    np.testing.assert_allclose(gy[so.h], 2.5 * gx[so.h], rtol=1e-15)
    np.testing.assert_array_equal(np.delete(gy, np.arange(so.h.start, so.h.stop)),
                                  np.delete(gx, np.arange(so.h.start, so.h.stop)))
    assert so.grad_norm(gy) == pytest.approx(float(np.linalg.norm(gx)), rel=1e-13)
    np.testing.assert_allclose(so.to_y(x), y, rtol=1e-15)


@pytest.mark.parametrize("design,bias,lam_b", [("balanced", True, 1e-2), ("imbalanced", True, 0.0),
                                               ("random", False, 0.0)])
def test_engines_and_scalings_reach_the_same_certified_optimum(design, bias, lam_b):
    """numpy/scipy L-BFGS engines, with and without ``h_scale``, and AGD with ``h_scale``:
    the same optimum value (1e-10 relative) from the same start, certified when d >= K."""
    des = DESIGNS[design]()
    p = UFMProblem(des, des.K, 1e-2, 5e-3, lam_b, bias=bias)
    x0 = random_point(p, scale=0.1, rng=11)
    runs = {
        "scipy": ufm.solve(p, "lbfgs", x0, engine="scipy", history_every=0),
        "numpy": ufm.solve(p, "lbfgs", x0, engine="numpy", history_every=0),
        "numpy m=5": ufm.solve(p, "lbfgs", x0, engine="numpy", maxcor=5, history_every=0),
        "numpy h_scale=3": ufm.solve(p, "lbfgs", x0, engine="numpy", h_scale=3.0, history_every=0),
        "scipy h_scale=0.5": ufm.solve(p, "lbfgs", x0, engine="scipy", h_scale=0.5, history_every=0),
        "agd h_scale=2": ufm.solve(p, "agd", x0, h_scale=2.0, gtol=1e-9, history_every=0),
    }
    ref = runs["scipy"].fun
    for name, r in runs.items():
        assert r.success, (name, r.status, r.message)
        assert abs(r.fun - ref) <= 1e-10 * abs(ref), (name, r.fun, ref)
        np.testing.assert_allclose(r.fun, ufm.objective(p, r.W, r.H, r.b), rtol=1e-14, err_msg=name)
        c = certify(p, r.W, r.H, r.b)
        assert c.rel_gap <= 1e-6, (name, c)
    for name in ("numpy", "numpy h_scale=3"):
        assert runs[name].grad_norm <= 1e-11, (name, runs[name].grad_norm)


def test_numpy_engine_polish_keeps_the_final_accuracy():
    """Near the phase transition the landscape is flat, so a gradient of 1e-11 still leaves
    the structure off by ~1e-6: the numpy engine polishes to ``gtol * 1e-3`` like the
    scipy engine's stop-and-polish did (found by the near-transition property)."""
    p = UFMProblem(balanced(3, {1: 1}), 2, 0.3332864904113875, 0.3332864904113875, 0.0, bias=False)
    r = ufm.solve(p, "lbfgs", rng=0, engine="numpy", history_every=0)
    assert r.status == Status.CONVERGED_GTOL and r.grad_norm <= 1e-14, (r.grad_norm, r.extra)
    assert r.extra["polish_steps"] >= 1
    assert ufm.verify(p, r.W, r.H, r.b).passed


def test_callback_sees_unscaled_iterates_and_can_stop():
    p = UFMProblem(balanced(3, {1: 2, 2: 1}), 3, 1e-2, 1e-2, 1e-2)
    seen: list[tuple[int, float]] = []

    def cb(it, x, f):
        assert f == pytest.approx(fun_and_grad(x, p)[0], rel=1e-14)
        seen.append((it, f))
        return it >= 4

    for opts in ({"engine": "numpy"}, {"engine": "numpy", "h_scale": 4.0}):
        seen.clear()
        with pytest.warns(ConvergenceWarning, match="max_iter"):
            r = ufm.solve(p, "lbfgs", rng=0, callback=cb, **opts)
        assert [it for it, _ in seen] == [0, 1, 2, 3, 4] and r.nit == 4 and r.status == Status.MAX_ITER
        assert all(a[1] >= b[1] for a, b in zip(seen, seen[1:]))  # monotone


def test_new_options_are_validated():
    p = UFMProblem(balanced(3, {1: 1}), 2, 1e-2, 1e-2)
    for method, opts, name in [("lbfgs", {"engine": "fortran"}, "engine"), ("lbfgs", {"maxcor": 0}, "maxcor"),
                               ("gd", {"h_scale": 0.0}, "h_scale"), ("agd", {"h_scale": math.inf}, "h_scale"),
                               ("lbfgs", {"h_scale": "auto"}, "h_scale")]:
        with pytest.raises(UFMError, match=name):
            ufm.solve(p, method, rng=0, **opts)
    with pytest.raises(UFMError, match="Unknown option"):
        ufm.solve(p, "lbfgs", rng=0, memory=3)


# -- the benchmark's pieces on a tiny problem (no timing asserted) --------------------------
def test_benchmark_tracker_and_tables_on_a_tiny_problem(tmp_path):
    bench = pytest.importorskip("benchmarks.tracker", reason="run from the repository root")
    from benchmarks import evaluation, output
    from benchmarks.ladder import SolverSpec, gd_spec

    p = UFMProblem(balanced(3, {1: 4, 2: 1}), 3, 5e-3, 5e-3, 5e-3)
    x0 = random_point(p, scale=0.1, rng=0)
    F_star = ufm.predict(p).value
    bench._Counter.install()
    try:
        lb = bench.run(p, SolverSpec("lbfgs", "lbfgs", {"engine": "numpy"}), x0, F_star, 20.0, "T")
        gd = bench.run(p, gd_spec(2.0, "gd"), x0, F_star, 20.0, "T", replay_cert=True)
        grouped = bench.run(p, SolverSpec("grouped", "lbfgs", {"group": True}), x0, F_star, 20.0, "T",
                            replay_cert=True)
    finally:
        bench._Counter.uninstall()
    for rec in (lb, gd, grouped):
        assert rec.cert is not None and rec.rel is not None and rec.stopped == "target", rec
        assert 0 < rec.cert.nfev <= rec.nfev and rec.cert.time >= 0
    # the uninstrumented replays reproduced their runs (same F at the certified iterate)
    assert lb.replay is None and gd.replay is not None and grouped.replay is not None
    assert "replay_mismatch" not in gd.extra and "replay_mismatch" not in grouped.extra
    with pytest.warns(ConvergenceWarning):  # stopped at max_iter, as intended
        res = ufm.solve(p, "lbfgs", x0.copy(), group=True, engine="numpy", max_iter=grouped.cert.it,
                        history_every=0)
    assert res.fun == grouped.cert.f
    assert gd.cert.nfev == gd.cert.it + 1  # plain GD: one evaluation per iteration
    et = evaluation.measure(p, repeats=2)
    assert et.evaluation > 0 and et.matmuls > 0
    summary = {"label": "x", "note": "", "runs": 1, "time": 1.0, "nit": 1, "nfev": 1, "final_rel": 0.0,
               "best_cert": 0.0, "stopped": "target", "peak_mem": 1024, "checks": 1}
    hit = {"time": 0.5, "nfev": 10, "it": 9, "times": [0.5]}
    results = {
        "meta": {"machine": "test", "cpus": 1, "blas_threads": {}, "load_start": (0.0, 0.0, 0.0), "date": "-",
                 "python": "3", "numpy": np.__version__, "total": 1.0,
                 "args": {"budget": 1.0, "repeats": 1, "repeats_L": 1, "convex_limit": 60.0}},
        "sizes": [{"size": "T", "describe": "T", "grid": {"steps": [1.0], "winner": 1.0, "trials": "-", "budget": 1.0,
                                                         "refined": 1.0, "refine_trials": "-"},
                   "solvers": [{**summary, "rel": hit, "cert": hit},
                               {**summary, "label": "gd", "rel": None, "cert": None, "baseline": True,
                                "literature": True}]}],
        "evaluation": et,
    }
    paths = output.write(results, tmp_path)
    text = paths[0].read_text()
    assert "Machine-specific" in text and "> 2" in text  # GD did not get there: a lower bound
    assert paths[1].read_text().startswith("# machine-specific")
    # GD certified: the verdict splits the ratio 4 s / 0.5 s = 8 into 100/10 = 10x fewer
    # evaluations times 0.04/0.05 = 0.8x GD's time per evaluation
    gd_row = results["sizes"][0]["solvers"][1]
    gd_row["cert"] = gd_row["rel"] = {"time": 4.0, "nfev": 100, "it": 99, "times": [4.0]}
    text = output.markdown(results)
    assert "- T: x, 8x tracked (0.5 s): **not met**. That is 10x fewer evaluations (10 vs 100) times 0.8x" in text
    # with uninstrumented times (0.4 s and 4.4 s) the verdict uses them: 11x, 1.1x per evaluation
    results["sizes"][0]["solvers"][0]["replay"] = {"time": 0.4, "times": [0.4]}
    gd_row["replay"] = {"time": 4.4, "times": [4.4]}
    text = output.markdown(results)
    assert ("- T: x, 11x uninstrumented (0.4 s), 8x tracked (0.5 s): met. That is 10x fewer evaluations "
            "(10 vs 100) times 1.1x GD's time per evaluation, all-in (40 ms vs 44 ms, uninstrumented).") in text
    # the default call's rows (#14): its time against the fastest configuration (x: 0.4 s uninstrumented) and the
    # GD variants (plain GD 4.4 s uninstrumented; heavy ball 1 s tracked)
    size = results["sizes"][0]
    size["solvers"].append({**summary, "label": "hb", "rel": None, "cert": {"time": 1.0, "nfev": 20, "it": 19,
                            "times": [1.0]}, "gd_variant": True, "heavy_ball": True})
    size["default_call"] = {"time": 0.6, "nfev": 12, "nit": 11, "cert_gap": 1e-15, "verify": True, "failed": [],
                            "polish_steps": 1, "message": "m", "history_rows": 12, "history_share": 0.01,
                            "time_no_history": 0.59}
    size["contention"] = {"single_thread": True, "cores": 2, "alone": 1.0, "busy": 1.2, "slowdown": 1.2,
                          "fair_slowdown": 1.0, "beyond_share": 1.2}
    text = output.markdown(results)
    assert "| T | 0.6 | 12 | 11 | 1.0e-15 | PASS | x | 0.4 | 1.5 | — | gd | 7.33 | hb | 1.67 |" in text
    assert "- T: default call 0.6 s = 1.5x the fastest configuration (x, 0.4 s): met" in text
    # alternated with the fastest configuration: the paired ratio is the one judged
    size["paired"] = {"label": "x", "pairs": 9, "default": 0.62, "fastest": 0.38, "ratio": 1.6, "ratio_min": 1.4,
                      "ratio_max": 1.9}
    text = output.markdown(results)
    assert "| T | 0.6 | 12 | 11 | 1.0e-15 | PASS | x | 0.4 | 1.5 | 1.6 (1.4..1.9) | gd | 7.33 | hb | 1.67 |" in text
    assert ("- T: default call 0.6 s = 1.5x the fastest configuration (x, 0.4 s); paired with it (9 alternations): "
            "0.62 s against 0.38 s, ratio 1.6 (1.4..1.9): **not met**") in text
    assert "| T | 1 thread | 1 | 1.2 | 1.20 | 1.00 | 1.20 (met) |" in text

