"""Solvers: the single-label case reproduces Zhu et al.; the theorem on fixed cases; options."""

import math
import warnings

import numpy as np
import pytest

from ufm import UFMProblem, balanced, predict, solve, verify
from ufm.exceptions import ConvergenceWarning, UFMError
from ufm.result import Status


def test_single_label_reproduces_zhu_et_al():
    """Zhu et al. (2021): at the optimum h_k = sqrt(lam_W / (n lam_H)) w_k -- checked on the
    solver's output directly, without the package's theory module."""
    K, n, lam_W, lam_H = 4, 3, 1e-2, 4e-3
    p = UFMProblem(balanced(K, {1: n}), 5, lam_W, lam_H, 1e-3)
    r = solve(p, "lbfgs", rng=0)
    factor = math.sqrt(lam_W / (n * lam_H))
    for k in range(K):
        Hk = r.H[:, k * n:(k + 1) * n]
        np.testing.assert_allclose(Hk, np.repeat(factor * r.W[[k]].T, n, axis=1), rtol=1e-7, atol=1e-9)
    G = r.W @ r.W.T
    cos = G / np.sqrt(np.outer(np.diag(G), np.diag(G)))
    np.testing.assert_allclose(cos[~np.eye(K, dtype=bool)], -1 / (K - 1), rtol=1e-7)


@pytest.mark.parametrize(
    "K,profile,lam_W,lam_H,lam_b,bias",
    [(5, {1: 3, 2: 2}, 5e-3, 5e-3, 1e-2, True), (6, {1: 1, 2: 1, 3: 1}, 1e-2, 1e-3, 0.0, True),
     (4, {2: 2, 4: 1}, 2e-3, 5e-3, 0.0, False)],
)
def test_lbfgs_global_optimum_matches_theorem(K, profile, lam_W, lam_H, lam_b, bias):
    p = UFMProblem(balanced(K, profile), K, lam_W, lam_H, lam_b, bias)
    r = solve(p, "lbfgs", rng=1)
    pred = predict(p)
    assert r.success, r.message
    assert abs(r.fun - pred.value) / pred.value < 1e-9, (r.fun, pred.value)
    v = verify(p, r.W, r.H, r.b, prediction=pred)
    assert v.passed, v.table()


@pytest.mark.parametrize("method", ["gd", "agd"])
def test_first_order_methods_reach_the_optimum(method):
    p = UFMProblem(balanced(3, {1: 2, 2: 1}), 3, 1e-2, 1e-2, 1e-2)
    opts = {"step": 1.0, "gtol": 1e-8, "max_iter": 20_000} if method == "gd" else {"gtol": 1e-9, "ftol": 0.0}
    r = solve(p, method, rng=0, **opts)
    assert r.status == Status.CONVERGED_GTOL
    assert r.fun == pytest.approx(predict(p).value, rel=1e-10)
    assert r.history["iter"][0] == 0 and r.history["iter"][-1] == r.nit
    assert "nc1" not in r.history  # NC metrics only when asked
    assert r.history["iter"] == list(range(r.nit + 1))  # the cheap trace: every iteration
    assert len(r.history["step"]) == len(r.history["fun"]) == len(r.history["iter"])


def test_agd_defaults_converge_on_the_readme_problem():
    """``ufm solve --method agd`` on the README's problem: its gradient stalls at a rounding floor
    (2.2e-8) above gtol 1e-10, so it ran 50,000 iterations and exited 1; the default ftol (1e-15,
    docs/solvers_agd_stop.md) stops it there, certified optimal."""
    import warnings as w

    p = UFMProblem(balanced(5, {1: 3, 2: 2}), 6, 5e-3, 5e-3, 1e-2)
    with w.catch_warnings():
        w.simplefilter("error", ConvergenceWarning)
        r = solve(p, "agd", rng=0)
    assert r.status == Status.CONVERGED_FTOL and r.nit < 1000
    assert r.certificate.rel_gap < 1e-12
    assert r.fun == pytest.approx(predict(p).value, rel=1e-12)


def test_a_stop_warning_names_its_remedy_once_in_the_right_unit():
    p = UFMProblem(balanced(3, {1: 2}), 2, 1e-2, 1e-2, 1e-2)
    with pytest.warns(ConvergenceWarning) as got:
        solve(p, "agd", rng=0, max_iter=5)
    msg = str(got[0].message)
    assert msg.count("max_iter") == 1 and "after 5 iterations" in msg, msg
    with pytest.warns(ConvergenceWarning) as got:
        solve(p, "adam", rng=0, epochs=2)
    msg = str(got[0].message)
    assert "after 2 epochs" in msg and "max_iter" not in msg and "epochs" in msg, msg


def test_max_iter_warns_and_names_the_option():
    p = UFMProblem(balanced(3, {1: 2}), 2, 1e-2, 1e-2, 1e-2)
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        r = solve(p, "gd", rng=0, max_iter=5)
    assert r.status == Status.MAX_ITER and not r.success and r.nit == 5


def test_same_seed_same_numbers():
    p = UFMProblem(balanced(3, {1: 2, 2: 1}), 3, 1e-2, 1e-2, 1e-2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = solve(p, "gd", rng=7, max_iter=50)
        b = solve(p, "gd", rng=7, max_iter=50)
    np.testing.assert_array_equal(a.x, b.x)


def test_unknown_options_and_methods_are_rejected():
    p = UFMProblem(balanced(3, {1: 1}), 2, 1e-2, 1e-2)
    with pytest.raises(UFMError, match="Unknown option"):
        solve(p, "lbfgs", maxiter=3)
    with pytest.raises(UFMError, match="Unknown method"):
        solve(p, "newton")


def test_callback_can_stop_and_x0_is_used():
    p = UFMProblem(balanced(3, {1: 1}), 2, 1e-2, 1e-2)
    seen = []
    with pytest.warns(ConvergenceWarning):
        r = solve(p, "gd", rng=0, callback=lambda it, x, f: seen.append(it) or it >= 3)
    assert seen == [0, 1, 2, 3] and r.nit == 3
    r2 = solve(p, "lbfgs", x0=(r.W, r.H, r.b))
    assert r2.fun == pytest.approx(predict(p).value, rel=1e-10)


def _lbfgs_module():
    import sys

    import ufm.solvers.lbfgs  # noqa: F401  (the package attribute is the function)

    return sys.modules["ufm.solvers.lbfgs"]


def test_lbfgs_auto_engine_is_the_default_and_uses_numpy_when_it_converges():
    p = UFMProblem(balanced(4, {1: 2, 2: 1}), 4, 1e-2, 1e-2, 1e-2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        r = solve(p, "lbfgs", rng=0)
    assert r.status == Status.CONVERGED_GTOL
    assert r.extra["engine"] == "numpy" and r.extra["engines_tried"] == ["numpy"]
    assert "fallback" not in r.extra
    np.testing.assert_array_equal(r.x, solve(p, "lbfgs", rng=0, engine="numpy").x)
    assert solve(p, "lbfgs", rng=0, engine="scipy").extra["engine"] == "scipy"


@pytest.mark.parametrize("group", [True, False])
def test_lbfgs_auto_falls_back_to_scipy_from_the_same_start(monkeypatch, group):
    """The numpy engine made to fail (five real iterations, then a stop as if at
    ``max_iter``): the scipy engine runs from the same x0 -- the very run of
    engine="scipy", so the numpy run did not move the start it was given -- converges
    without a warning, and the fallback is recorded. Grouped (in fewer dimensions: d = 12)
    and not."""
    p = UFMProblem(balanced(4, {1: 2, 2: 1}), 12, 1e-2, 1e-2, 1e-2)
    mod = _lbfgs_module()
    core = mod._lbfgs_core

    def failing_core(fg, x, f, g, **kw):
        x, f, g, it, *_ = core(fg, x, f, g, **{**kw, "max_iter": 5})
        return x, f, g, it, Status.MAX_ITER, "forced failure", float("nan")

    ref = solve(p, "lbfgs", rng=3, engine="scipy", group=group)
    monkeypatch.setattr(mod, "_lbfgs_core", failing_core)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        r = solve(p, "lbfgs", rng=3, group=group)
    assert r.extra["width"] == (6 if group else 12)  # 4 + 1 + ceil(4/4)
    assert r.success and r.extra["engine"] == "scipy"
    assert r.extra["engines_tried"] == ["numpy", "scipy"]
    assert r.extra["fallback"]["status"] == "MAX_ITER"
    assert r.extra["fallback"]["message"] == "forced failure"
    np.testing.assert_array_equal(r.x, ref.x)
    assert r.nfev == ref.nfev + r.extra["fallback"]["nfev"]


def test_lbfgs_auto_warns_once_when_both_engines_stop_at_max_iter():
    p = UFMProblem(balanced(4, {1: 2, 2: 1}), 4, 1e-2, 1e-2, 1e-2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        r = solve(p, "lbfgs", rng=0, max_iter=3)
    assert len([w for w in caught if issubclass(w.category, ConvergenceWarning)]) == 1
    assert r.status == Status.MAX_ITER and r.extra["engine"] == "scipy"
    assert r.extra["fallback"]["status"] == "MAX_ITER" and r.extra["fallback"]["nit"] == 3
    assert r.nit == 3 + 3


def test_lbfgs_auto_does_not_fall_back_when_the_callback_stops():
    p = UFMProblem(balanced(4, {1: 2, 2: 1}), 4, 1e-2, 1e-2, 1e-2)
    seen = []
    with pytest.warns(ConvergenceWarning):
        r = solve(p, "lbfgs", rng=0, callback=lambda it, x, f: seen.append(it) or it >= 2)
    assert seen == [0, 1, 2] and r.nit == 2
    assert r.extra["engines_tried"] == ["numpy"] and "fallback" not in r.extra


@pytest.mark.parametrize(
    "counts,K,d,lam_b,bias,loss",
    [({(0,): 3, (1,): 2, (2,): 4, (0, 1): 2, (1, 2): 1}, 3, 4, 1e-3, True, "pal"),
     ({(0,): 2, (1,): 3, (2,): 1, (3,): 2, (0, 2): 2, (1, 3): 1}, 4, 3, 0.0, False, "pal"),
     ({(0,): 2, (1,): 2, (2,): 2, (0, 1, 2): 2}, 3, 5, 5e-3, True, "pal-normalized")],
)
def test_lbfgs_gn_precondition_reaches_the_certified_optimum_of_the_other_engines(counts, K, d, lam_b, bias, loss):
    """The preconditioned numpy engine converges to the optimum the unpreconditioned numpy
    engine and the scipy engine find (same F to 1e-10, certified gap), on non-balanced
    designs, without bias, and on normalised PAL."""
    from ufm.certificate import certify
    from ufm.designs import from_counts

    p = UFMProblem(from_counts(K, counts), d, 4e-3, 2e-3, lam_b, bias, loss=loss)
    runs = {name: solve(p, "lbfgs", rng=3, **opts) for name, opts in
            {"gn": {"engine": "numpy", "precondition": "gn"}, "numpy": {"engine": "numpy"},
             "scipy": {"engine": "scipy"}}.items()}
    for name, r in runs.items():
        assert r.success, (name, r.message)
        assert r.grad_norm <= 1e-11, (name, r.grad_norm)
    assert runs["gn"].extra["engine"] == "numpy"
    for name in ("numpy", "scipy"):
        assert abs(runs["gn"].fun - runs[name].fun) <= 1e-10 * abs(runs[name].fun), (name, runs["gn"].fun, runs[name].fun)
    assert certify(p, runs["gn"].W, runs["gn"].H, runs["gn"].b).rel_gap <= 1e-6


@pytest.mark.parametrize("bias,loss", [(True, "pal"), (False, "pal"), (True, "pal-normalized")])
def test_gn_preconditioner_is_symmetric_positive_definite(bias, loss):
    """P (as a dense matrix from its action on the unit vectors) is symmetric with positive
    eigenvalues at a random point, and each per-column H block is the inverse of the
    Gauss-Newton block W^T A_i W / N + lam_H I built here from the softmax directly."""
    from ufm.objectives.layout import random_point, unpack
    from ufm.solvers.precondition import GNPreconditioner

    p = UFMProblem(balanced(3, {1: 2, 2: 1}), 4, 3e-3, 2e-3, 1e-3, bias, loss=loss)
    x = random_point(p, scale=1.0, rng=5)
    pre = GNPreconditioner(p)
    pre.refresh(x)
    n = p.n_vars
    P = np.column_stack([pre.apply(e, np.empty(n)) for e in np.eye(n)])
    np.testing.assert_allclose(P, P.T, rtol=0, atol=1e-10 * np.abs(P).max())
    assert np.linalg.eigvalsh(0.5 * (P + P.T)).min() > 0
    W, H, b = unpack(x, p)
    Z = W @ H + (b[:, None] if bias else 0.0)
    m = p.design.m if loss == "pal" else np.ones(p.N)
    i = p.N - 1
    z = Z[:, i] - Z[:, i].max()
    q = np.exp(z) / np.exp(z).sum()
    A = m[i] * (np.diag(q) - np.outer(q, q))
    Ci = W.T @ A @ W / p.N + p.lam_H * np.eye(p.d)
    col = [p.K * p.d + r * p.N + i for r in range(p.d)]  # entries H[:, i] of the packed vector
    np.testing.assert_allclose(P[np.ix_(col, col)] @ Ci, np.eye(p.d), atol=1e-9)


def test_lbfgs_precondition_option_is_checked():
    p = UFMProblem(balanced(3, {1: 2}), 3, 1e-2, 1e-2, 1e-2)
    with pytest.raises(UFMError, match="precondition"):
        solve(p, "lbfgs", precondition="kron")
    with pytest.raises(UFMError, match="precondition"):
        solve(p, "lbfgs", precondition="gn", h_scale=2.0)


def test_lbfgs_ftol_stops_at_the_first_step_that_reduced_F_by_at_most_ftol():
    """``ftol`` is a test on a step: the numpy engine stopped before its first step, claiming
    CONVERGED_FTOL at |g| 0.03 (the start's 'previous F' was infinite, and inf <= ftol * inf)."""
    p = UFMProblem(balanced(4, {1: 5, 2: 2}), d=5, lam_W=1e-3, lam_H=1e-3, lam_b=1e-3)
    ftol = 1e-9
    r = solve(p, "lbfgs", rng=0, ftol=ftol, engine="numpy", polish=False)
    f = r.history["fun"]
    assert r.status == Status.CONVERGED_FTOL and r.nit > 0 and len(f) == r.nit + 1
    rel = [(a - b) / max(abs(a), abs(b), 1.0) for a, b in zip(f[:-1], f[1:])]
    assert rel[-1] <= ftol and all(x > ftol for x in rel[:-1])
