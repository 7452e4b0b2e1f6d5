"""Rigorous certificates (:mod:`ufm.certificate_rigorous`): every enclosure contains the
exact value (computed independently with mpmath at 50 digits or with exact fractions),
the bracket contains the float certificate's values within their rounding, and the
bound never exceeds the true optimum, also on perturbed inputs."""

from __future__ import annotations

import json
from fractions import Fraction

import mpmath as mp
import numpy as np
import pytest

import ufm
from ufm.certificate import certify
from ufm.certificate_rigorous import (
    RigorousCertificate,
    _spectral_upper,
    dual_lower,
    exp_enclose,
    isum,
    log_enclose,
    matmul_enclose,
    objective_enclosure,
    xlogx_enclose,
)
from ufm.cli import main
from ufm.features import save_npz
from ufm.solvers import solve
from ufm.suite import DEFAULT_SUITE, run_suite
from ufm.theory import predict, predicted_minimizer

mp.mp.dps = 50


def _inside(lo: float, v: mp.mpf, hi: float) -> bool:
    return mp.mpf(float(lo)) <= v <= mp.mpf(float(hi))


# ------------------------------------------------------------ elementary enclosures
def test_exp_enclosure_contains_the_exact_value() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-760, 709, 600), rng.uniform(-1, 1, 600),
                        [0.0, -0.0, 1e-300, -1e-300, 709.0, -745.0, -746.5, np.log(2), -np.log(2), 0.6931471805599453]])
    lo, hi = exp_enclose(x)
    for xi, a, b in zip(x, lo, hi):
        assert _inside(a, mp.exp(mp.mpf(float(xi))), b), xi
    normal = (x > -700)
    assert np.max((hi - lo)[normal] / np.exp(x[normal])) < 1e-11  # tight, not just valid


def test_log_enclosure_contains_the_exact_value() -> None:
    rng = np.random.default_rng(1)
    x = np.concatenate([np.exp(rng.uniform(-700, 700, 600)), rng.uniform(0.5, 2.0, 600),
                        [1.0, 5e-324, 1e-310, np.nextafter(1.0, 2.0), np.nextafter(1.0, 0.0), 2.0, 0.5, 1.7976931348623157e308]])
    lo, hi = log_enclose(x)
    for xi, a, b in zip(x, lo, hi):
        assert _inside(a, mp.log(mp.mpf(float(xi))), b), xi
    assert np.max(hi - lo) < 1e-12


def test_xlogx_enclosure_covers_the_interval_and_its_minimum() -> None:
    lo = np.array([0.0, 0.0, 0.3, 0.36787944117144233, 1e-300, 0.5, 0.99])
    hi = np.array([0.0, 0.2, 0.4, 0.36787944117144233, 1e-299, 0.5000001, 1.5])
    elo, ehi = xlogx_enclose((lo, hi))
    for a, b, l_, h_ in zip(elo, ehi, lo, hi):
        grid = [mp.mpf(float(l_)) + (mp.mpf(float(h_)) - mp.mpf(float(l_))) * k / 50 for k in range(51)]
        vals = [g * mp.log(g) if g > 0 else mp.mpf(0) for g in grid]
        if mp.mpf(float(l_)) <= 1 / mp.e <= mp.mpf(float(h_)):
            vals.append(-1 / mp.e)
        assert all(_inside(a, v, b) for v in vals), (l_, h_, a, b)


def test_sums_and_products_enclose_the_exact_results() -> None:
    """Exact results from fractions, on data with massive cancellation."""
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.standard_normal(3000) * 10.0 ** rng.integers(-20, 20, 3000), [1e16, 1.0, -1e16]])
    lo, hi = isum((x, x))
    exact = sum(Fraction(float(v)) for v in x)
    assert Fraction(float(lo)) <= exact <= Fraction(float(hi))
    A = rng.standard_normal((5, 700)) * 10.0 ** rng.integers(-8, 8, (5, 700))
    B = rng.standard_normal((700, 3))
    C, R = matmul_enclose(A, B)
    for i in range(5):
        for j in range(3):
            ex = sum(Fraction(float(A[i, k])) * Fraction(float(B[k, j])) for k in range(700))
            assert abs(Fraction(float(C[i, j])) - ex) <= Fraction(float(R[i, j]))


def test_spectral_upper_bound_is_valid_and_tight() -> None:
    rng = np.random.default_rng(3)
    M = rng.standard_normal((6, 40))
    exact = max(mp.svd_r(mp.matrix(M.tolist()), compute_uv=False))
    ub = _spectral_upper(M, M)
    assert mp.mpf(ub) >= exact
    assert ub <= float(exact) * (1 + 1e-12)


def test_spectral_bound_survives_a_wrong_eigendecomposition(monkeypatch: pytest.MonkeyPatch) -> None:
    """LAPACK is not trusted: a garbage eigendecomposition makes the bound weak, never wrong."""
    rng = np.random.default_rng(4)
    M = rng.standard_normal((5, 30))
    exact = max(mp.svd_r(mp.matrix(M.tolist()), compute_uv=False))
    real = np.linalg.eigh

    def bad(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lam, V = real(A)
        return 0.5 * lam, V + 0.01 * rng.standard_normal(V.shape)

    monkeypatch.setattr(np.linalg, "eigh", bad)
    assert mp.mpf(_spectral_upper(M, M)) >= exact


# ------------------------------------------------------------ the certificate
def _mp_objective(problem: ufm.UFMProblem, W: np.ndarray, H: np.ndarray, b: np.ndarray) -> mp.mpf:
    """F at the float point, in 50-digit arithmetic, from the definition."""
    Wm, Hm = mp.matrix(W.tolist()), mp.matrix(H.tolist())
    X = Wm * Hm
    Y, m = problem.design.Y, problem.design.m
    L = mp.mpf(0)
    for i in range(problem.N):
        col = [X[k, i] + mp.mpf(float(b[k])) for k in range(problem.K)]
        lse = mp.log(mp.fsum(mp.exp(v) for v in col))
        L += int(m[i]) * lse - mp.fsum(col[k] for k in range(problem.K) if Y[k, i])
    F = L / problem.N
    F += mp.mpf(problem.lam_W) / 2 * mp.fsum(mp.mpf(float(v)) ** 2 for v in W.ravel())
    F += mp.mpf(problem.lam_H) / 2 * mp.fsum(mp.mpf(float(v)) ** 2 for v in H.ravel())
    if problem.bias:
        F += mp.mpf(problem.lam_b) / 2 * mp.fsum(mp.mpf(float(v)) ** 2 for v in b)
    return F


@pytest.fixture(scope="module")
def solved() -> tuple[ufm.UFMProblem, object]:
    problem = DEFAULT_SUITE[1].problem()  # K = 5, singles + pairs, bias
    return problem, solve(problem, "lbfgs", rng=0)


def test_objective_enclosure_contains_F_in_50_digits(solved) -> None:
    problem, res = solved
    lo, hi = objective_enclosure(problem, res.W, res.H, res.b)
    assert _inside(lo, _mp_objective(problem, res.W, res.H, res.b), hi)
    assert hi - lo < 1e-12 * abs(hi)


@pytest.mark.parametrize("index", [0, 2, 3, 5, 7])
def test_rigorous_bracket_contains_the_float_certificate(index: int) -> None:
    """lam_b > 0, lam_b = 0 (free bias), no bias, the full label set, the trivial regime."""
    problem = DEFAULT_SUITE[index].problem()
    res = solve(problem, "lbfgs", rng=index)
    fl = certify(problem, res.W, res.H, res.b)
    rc = certify(problem, res.W, res.H, res.b, rigorous=True)
    assert isinstance(rc, RigorousCertificate) and rc.feasible
    scale = abs(fl.objective)
    assert rc.objective_lower <= fl.objective <= rc.objective  # F's float value inside its enclosure
    assert rc.lower_bound <= fl.lower_bound + 1e-14 * scale  # never above the float D beyond rounding
    assert rc.lower_bound >= fl.lower_bound - 1e-11 * scale  # and as good within the rounding bounds
    assert rc.lower_bound <= rc.objective  # D <= min F <= F: never above F computed rigorously
    assert mp.mpf(rc.lower_bound) <= _mp_objective(problem, res.W, res.H, res.b)  # nor the exact F
    assert 0 <= rc.rel_gap < 1e-10
    v = predict(problem).value
    assert rc.lower_bound <= v <= rc.objective  # the theorem's value inside the proved bracket


def test_perturbed_candidate_is_not_certified_but_stays_valid(solved) -> None:
    problem, res = solved
    rng = np.random.default_rng(5)
    W = res.W + 1e-2 * rng.standard_normal(res.W.shape)
    rc = certify(problem, W, res.H, res.b, rigorous=True)
    v = predict(problem).value
    assert rc.rel_gap > 1e-6  # certifies nothing at the usual tolerance
    assert rc.lower_bound <= v  # still a lower bound on min F
    assert _inside(rc.objective_lower, _mp_objective(problem, W, res.H, res.b), rc.objective)


def test_infeasible_or_overscaled_dual_points_are_refused(solved) -> None:
    """A direction that leaves the simplex for every t > 0 falls back to D(0); an overlarge t
    is cut by the proved spectral norm. Neither can exceed min F."""
    problem, res = solved
    v = predict(problem).value
    design = problem.design
    base = design.Yg / design.group_multiplicity
    D0, t0, feas0 = dual_lower(problem, np.zeros_like(base), 1.0)
    Dir = -base.copy()  # q = base (1 - t): leaves the simplex's affine hull ...
    Dir[0, :] -= 0.1  # ... and is negative where base = 0
    D_bad, t_bad, feas = dual_lower(problem, Dir, 1.0)
    assert not feas and t_bad == 0.0 and D_bad == D0
    fl = certify(problem, res.W, res.H, res.b)
    from ufm.certificate import loss_and_group_softmax
    from ufm.certificate_dual import dual_point

    _, Pbar = loss_and_group_softmax(problem, res.W @ res.H + res.b[:, None])
    _, t, d_best = dual_point(problem, Pbar)
    for scale in (1.0, 3.0, 50.0):  # overscaled t: the spectral cap keeps the bound valid
        D, t_used, ok = dual_lower(problem, d_best, scale * t)
        assert ok and D <= v and t_used <= t * (1 + 1e-12)
    assert D0 < fl.lower_bound


def test_the_optimum_at_size_M_is_certified_rigorously() -> None:
    """K = 30 at the theorem's minimiser (N = 735): proved gap below 1e-10."""
    p = ufm.UFMProblem(ufm.balanced(30, "1:5,2:1"), d=32, lam_W=5e-4, lam_H=5e-4, lam_b=5e-4)
    W, H, b = predicted_minimizer(p)
    rc = certify(p, W, H, b, rigorous=True)
    assert rc.feasible and 0 <= rc.rel_gap < 1e-10
    assert rc.lower_bound <= predict(p).value <= rc.objective


# ------------------------------------------------------------ command line and suite
def test_cli_certify_rigorous(solved, tmp_path, capsys) -> None:
    problem, res = solved
    path = tmp_path / "sol.npz"
    save_npz(path, W=res.W, H=res.H, Y=problem.design.Y.astype(np.int8), b=res.b,
             lam_W=problem.lam_W, lam_H=problem.lam_H, lam_b=problem.lam_b)
    assert main(["certify", str(path), "--rigorous", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    cert = out["certificate"]
    assert cert["rigorous"] is True and cert["feasible"] is True and out["certified"] is True
    assert cert["lower_bound"] <= cert["objective"] and cert["objective_lower"] <= cert["objective"]
    assert main(["certify", str(path), "--rigorous"]) == 0
    assert "proved:" in capsys.readouterr().out


def test_suite_rigorous_claims() -> None:
    (o,) = run_suite(DEFAULT_SUITE[2:3], convex=False, rigorous=True)
    names = {c.name: c for c in o.verdict.claims}
    assert {"rigorous_gap", "rigorous_value"} <= set(names)
    assert o.verdict.passed, o.verdict.table()
    assert names["rigorous_value"].measured < 1e-9


@pytest.mark.slow
def test_cli_verify_rigorous_proves_every_value_claim(capsys) -> None:
    """``ufm verify --rigorous``: every problem gets its proved gap, every problem where the
    theorem applies its proved value bound, and all hold."""
    assert main(["verify", "--rigorous", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for prob in out["problems"]:
        names = {c["name"]: c for c in prob["claims"]}
        assert names["rigorous_gap"]["passed"], prob["name"]
        if "value" in names:
            assert names["rigorous_value"]["passed"], prob["name"]
