"""Rigorous certificates (:mod:`ufm.certificate_rigorous`): every enclosure contains the
exact value (computed independently with mpmath at 50 digits or with exact fractions),
the bracket contains the float certificate's values within their rounding, and the
bound never exceeds the true optimum, also on perturbed inputs."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import mpmath as mp
import numpy as np
import pytest

import ufm
from ufm.certificate import certify, loss_and_group_softmax
from ufm.certificate_rigorous import (
    RigorousCertificate,
    _spectral_upper,
    certify_rigorous,
    direction_enclosure,
    dual_lower,
    exp_enclose,
    icol,
    idiv_pos,
    inonneg,
    irow,
    isum,
    log_enclose,
    matmul_enclose,
    objective_enclosure,
    xlogx_enclose,
)
from ufm.cli import main
from ufm.exceptions import UFMError
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
    ub = _spectral_upper((M, M))
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
    assert mp.mpf(_spectral_upper((M, M))) >= exact


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
        term = int(m[i]) * lse - mp.fsum(col[k] for k in range(problem.K) if Y[k, i])
        L += term / int(m[i]) if problem.loss == "pal-normalized" else term
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


# ------------------------------------------------------------ mutation testing (issue 28)
def test_exp_reduction_encloses_the_exact_remainder_within_its_documented_error() -> None:
    """``x = k ln2 + r``: ``[r_lo, r_hi]`` contains the exact ``x - k ln2`` (50 digits) and is
    no wider than the documented ``2 * 4u (|x| + |k| + 1)`` plus its rounding (half an ulp per end) and the outward step (one ulp per end)."""
    from ufm.certificate_rigorous import U, _exp_reduce

    rng = np.random.default_rng(6)
    ln2 = mp.log(2)
    x = np.concatenate([rng.uniform(-745, 709, 300), rng.uniform(-2, 2, 200), rng.uniform(0, 0.69, 50),
                        [0.0, 0.3, 0.5, 0.6931471805599453, -0.6931471805599453, 1.3862943611198906,
                         709.0, -745.9, 100 * 0.6931471805599453]])
    tiny, k, r_lo, r_hi = _exp_reduce(x)
    assert not tiny.any()
    for xi, ki, a, b in zip(x, k, r_lo, r_hi):
        exact = mp.mpf(float(xi)) - int(ki) * ln2
        assert _inside(a, exact, b), (xi, ki)
        width = 8.0 * U * (abs(xi) + abs(ki) + 1.0)
        assert b - a <= width * (1 + 1e-12) + 3 * np.spacing(abs(float(exact)) + width), (xi, b - a, width)


def test_exp_enclosure_domain_underflow_and_float32_input() -> None:
    """Arguments above 709 or not finite are refused; far below -746 the enclosure is
    ``[0, 2^-1074]`` whatever the size (no argument reduction of -1e300); float32 arguments
    are enclosed as the float64 numbers they are."""
    for bad in (709.5, 710.0, np.nan, np.inf, -np.inf):
        with pytest.raises(ValueError, match="finite x <= 709"):
            exp_enclose(np.array([0.0, bad]))
    lo, hi = exp_enclose(np.array([-1e300, -1e10, -800.0, -746.5, -np.finfo(np.float64).max]))
    np.testing.assert_array_equal(lo, 0.0)
    np.testing.assert_array_equal(hi, 5e-324)
    rng = np.random.default_rng(7)
    x32 = np.concatenate([rng.uniform(-700, 700, 200), rng.uniform(-1, 1, 200)]).astype(np.float32)
    lo, hi = exp_enclose(x32)
    assert lo.dtype == hi.dtype == np.float64
    for xi, a, b in zip(x32, lo, hi):
        assert _inside(a, mp.exp(mp.mpf(float(xi))), b), xi
    lo64, hi64 = exp_enclose(x32.astype(np.float64))
    np.testing.assert_array_equal(lo, lo64)
    np.testing.assert_array_equal(hi, hi64)


def test_exp_enclosure_ends_are_tight() -> None:
    """For ``|x| <= 1`` each end is off by at most ``2 * 60u`` (the Horner sum's safety
    factor) + ``4u (|x| + |k| + 1)`` (the reduction) + ``16u`` (rounding) relative."""
    from ufm.certificate_rigorous import U, exp_lower, exp_upper

    x = np.concatenate([np.linspace(-1, 1, 401), [0.0, 1e-300, 0.6931471805599453]])
    lo, hi = exp_lower(x), exp_upper(x)
    k = np.floor(x / math.log(2))
    for xi, ki, a, b in zip(x, k, lo, hi):
        e = mp.exp(mp.mpf(float(xi)))
        budget = (120 + 4 * (abs(xi) + abs(ki) + 1) + 16) * U
        assert mp.mpf(float(a)) <= e <= mp.mpf(float(b))
        assert (e - mp.mpf(float(a))) / e <= budget, xi
        assert (mp.mpf(float(b)) - e) / e <= budget, xi


def test_iexp_encloses_exp_over_a_wide_interval() -> None:
    from ufm.certificate_rigorous import iexp

    lo, hi = iexp((np.array([0.0, -3.0, 1.0]), np.array([1.0, 2.0, 1.0])))
    for a, b, l_, h_ in zip(lo, hi, (0.0, -3.0, 1.0), (1.0, 2.0, 1.0)):
        assert mp.mpf(float(a)) <= mp.exp(l_) and mp.exp(h_) <= mp.mpf(float(b))
        assert float(a) >= math.exp(l_) * (1 - 1e-13) and float(b) <= math.exp(h_) * (1 + 1e-13)


def _xlogx_range(lo: float, hi: float) -> tuple[mp.mpf, mp.mpf]:
    """Exact min and max of ``x log x`` on ``[lo, hi]`` (50 digits): endpoints and ``1/e``."""
    def f(x: float) -> mp.mpf:
        x = mp.mpf(float(x))
        return x * mp.log(x) if x > 0 else mp.mpf(0)

    vals = [f(lo), f(hi)]
    if mp.mpf(float(lo)) <= 1 / mp.e <= mp.mpf(float(hi)):
        vals.append(-1 / mp.e)
    return min(vals), max(vals)


def test_xlogx_enclosure_is_tight_and_refuses_negative_arguments() -> None:
    """Each end within ``1e-13`` relative (+ 1e-300) of the exact range: ``[0, 0]`` is
    ``[0, 0]``, intervals right or left of ``1/e`` do not take in ``-1/e``, those around it do."""
    rng = np.random.default_rng(8)
    a = np.sort(rng.uniform(0, 1.5, (2, 300)), axis=0)
    lo = np.concatenate([[0.0, 0.0, 0.5, 0.3, 0.0, 1e-300, 0.2], a[0]])
    hi = np.concatenate([[0.0, 0.2, 0.6, 0.4, 1.0, 1e-200, 0.36], a[1]])
    elo, ehi = xlogx_enclose((lo, hi))
    assert (elo[0], ehi[0], ehi[1]) == (0.0, 0.0, 0.0)
    for e_lo, e_hi, l_, h_ in zip(elo, ehi, lo, hi):
        mn, mx = _xlogx_range(l_, h_)
        assert mp.mpf(float(e_lo)) <= mn and mx <= mp.mpf(float(e_hi)), (l_, h_)
        assert mn - mp.mpf(float(e_lo)) <= 1e-13 * abs(mn) + 1e-300, (l_, h_, e_lo, mn)
        assert mp.mpf(float(e_hi)) - mx <= 1e-13 * abs(mx) + 1e-300, (l_, h_, e_hi, mx)
    with pytest.raises(ValueError, match="lo >= 0"):
        xlogx_enclose((np.array([0.1, -1e-300]), np.array([0.2, 0.1])))


def _cancelling_point(label_rows_big: bool) -> tuple[ufm.UFMProblem, np.ndarray, np.ndarray, np.ndarray]:
    """Logits ``W H = 0`` exactly, as ``1e6 - 1e6``: the product's error bound (~1e-9) is
    then much wider than every other rounding bound, so an enclosure end taken from the
    wrong side of ``[X - R, X + R]`` leaves out the exact ``F``. Every sample carries class 0;
    its row of ``W`` is the large one or the zero one."""
    problem = ufm.UFMProblem(ufm.from_counts(3, {(0,): 4}), 2, 1e-12, 1e-2, 0.3)
    a = np.array([1e6, 0.0, 0.0]) if label_rows_big else np.array([0.0, 1e6, 1e6])
    W = np.stack([a, a], axis=1)
    H = np.array([[1.0, 0.5, 2.0, 1.0], [-1.0, -0.5, -2.0, -1.0]])
    b = np.array([0.25, -0.5, 0.125])
    return problem, W, H, b


@pytest.mark.parametrize("label_rows_big", [False, True])
def test_objective_enclosure_with_a_wide_product_bound(label_rows_big: bool) -> None:
    problem, W, H, b = _cancelling_point(label_rows_big)
    assert np.all(W @ H == 0.0)
    lo, hi = objective_enclosure(problem, W, H, b)
    exact = _mp_objective(problem, W, H, b)
    assert _inside(lo, exact, hi)
    assert hi - lo < 1e-7  # the product bound's width, not more


def test_objective_enclosure_normalised_loss_far_apart_columns_and_bias_penalty() -> None:
    """Normalised PAL, ``lam_b > 0`` with a large ``b``, and two columns whose logits differ by
    2400 (each column is shifted by its own maximum: one shift for all would underflow)."""
    rng = np.random.default_rng(9)
    for loss in ("pal", "pal-normalized"):
        problem = ufm.UFMProblem(ufm.balanced(3, "1:1,2:1"), 1, 1e-2, 1e-6, 0.5, loss=loss)
        W = np.array([[1.0], [2.0], [3.0]])
        H = np.array([[0.0, -800.0, 0.5, 1.0, -2.0, 3.0]])
        b = 3.0 * rng.standard_normal(3)
        lo, hi = objective_enclosure(problem, W, H, b)
        exact = _mp_objective(problem, W, H, b)
        assert _inside(lo, exact, hi), loss
        assert hi - lo < 1e-12 * abs(hi)
    problem = ufm.UFMProblem(ufm.balanced(3, "1:1"), 1, 1e-2, 1e-2, loss="bce")
    with pytest.raises(UFMError, match="pick-all-label"):
        objective_enclosure(problem, np.ones((3, 1)), np.ones((1, 3)), np.zeros(3))


def _F_float(problem: ufm.UFMProblem, W: np.ndarray, H: np.ndarray, b: np.ndarray) -> float:
    import reference as ref

    x = np.concatenate([W.ravel(), H.ravel()] + ([b] if problem.bias else []))
    return ref._F_and_grad(x, problem)[0]


def test_certify_rigorous_fields_inputs_and_refusals() -> None:
    """The float fields are the float certificate's and ``F`` (tests/reference.py), ``t`` is
    the float ``t`` at most, ``seconds`` the time taken; float32 inputs are certified as the
    float64 numbers they are; ``b`` None or without a bias means 0; bad inputs are refused."""
    import time

    rng = np.random.default_rng(10)
    for problem in (ufm.UFMProblem(ufm.balanced(4, "1:2,2:1"), 3, 2e-2, 5e-2, 0.3),
                    ufm.UFMProblem(ufm.balanced(4, "1:2,2:1"), 3, 2e-2, 5e-2, 0.3, bias=False)):
        W = rng.standard_normal((4, 3)).astype(np.float32)
        H = rng.standard_normal((3, problem.N)).astype(np.float32)
        b = rng.standard_normal(4).astype(np.float32)
        W64, H64, b64 = W.astype(np.float64), H.astype(np.float64), b.astype(np.float64)
        start = time.perf_counter()
        rc = certify_rigorous(problem, W, H, b)
        elapsed = time.perf_counter() - start
        fl = certify(problem, W64, H64, b64)
        F = _F_float(problem, W64, H64, b64)
        assert rc.float_objective == pytest.approx(F, rel=1e-13)
        assert rc.float_lower_bound == fl.lower_bound
        assert rc.feasible and 0 < rc.t <= fl.t and rc.t == pytest.approx(fl.t, rel=1e-9)
        assert 0 < rc.seconds <= elapsed
        exact = _mp_objective(problem, W64, H64, b64 if problem.bias else np.zeros(4))
        assert _inside(rc.objective_lower, exact, rc.objective)
        assert mp.mpf(rc.lower_bound) <= exact
        rc64 = certify_rigorous(problem, W64, H64, b64)
        for field in ("lower_bound", "objective", "objective_lower", "float_objective", "gap", "rel_gap", "t"):
            assert getattr(rc, field) == getattr(rc64, field), field
        # rel_gap bounds gap / F for every F in the bracket (here 0 < F_lo)
        assert 0 < rc.objective_lower
        assert rc.gap / rc.objective_lower * (1 - 1e-15) <= rc.rel_gap <= rc.gap / rc.objective_lower * (1 + 1e-15)
    no_b = certify_rigorous(problem, W64, H64)  # bias=False: b ignored
    assert (no_b.lower_bound, no_b.objective) == (rc64.lower_bound, rc64.objective)
    biased = ufm.UFMProblem(ufm.balanced(4, "1:2,2:1"), 3, 2e-2, 5e-2, 0.3)
    none, zero = certify_rigorous(biased, W64, H64), certify_rigorous(biased, W64, H64, np.zeros(4))
    assert (none.lower_bound, none.objective, none.float_objective) == (zero.lower_bound, zero.objective, zero.float_objective)
    with pytest.raises(UFMError, match="b must have shape"):
        certify_rigorous(biased, W64, H64, np.zeros(5))
    with pytest.raises(UFMError, match="non-finite"):
        certify_rigorous(biased, W64, H64, np.array([0.0, np.inf, 0.0, 0.0]))


def test_rigorous_relative_gap_with_F_below_one_and_near_zero() -> None:
    """``rel_gap >= gap / F`` for the exact ``F``: with ``F < 1`` (not divided by 1), and with
    ``F = 2e-26`` whose enclosure contains 0 (then no finite relative gap is proved)."""
    problem = ufm.UFMProblem(ufm.balanced(3, "1:1"), 3, 1e-3, 1e-3, 0.0, bias=False)
    W, H = 3.0 * np.eye(3), np.eye(3)
    rc = certify_rigorous(problem, W, H)
    exact = _mp_objective(problem, W, H, np.zeros(3))
    assert exact < 0.5 and rc.objective_lower > 0
    assert mp.mpf(rc.rel_gap) >= mp.mpf(rc.gap) / exact
    assert rc.rel_gap <= rc.gap / rc.objective_lower * (1 + 1e-15)
    problem = ufm.UFMProblem(ufm.balanced(3, "1:1"), 3, 1e-40, 1e-40, 0.0, bias=False)
    W = 60.0 * np.eye(3)
    rc = certify_rigorous(problem, W, H)
    exact = _mp_objective(problem, W, H, np.zeros(3))
    assert rc.objective_lower <= 0 < exact < 1e-25
    assert mp.mpf(rc.rel_gap) >= mp.mpf(rc.gap) / exact


def test_rigorous_certificate_reports_an_unproved_dual_point() -> None:
    """A class in no label set, free bias: ``q >= 0`` cannot be proved for the centred
    direction, so the certificate says ``feasible=False`` and certifies ``D(0) = sum_S c_S
    log m_S`` only (here ``(2 * 2 log 2) / 8``), below the float bound."""
    problem = ufm.UFMProblem(ufm.from_counts(4, {(0,): 3, (1,): 2, (0, 1): 2, (2,): 1}), 4, 5e-3, 5e-3, 0.0)
    rng = np.random.default_rng(11)
    W, H, b = rng.standard_normal((4, 4)), rng.standard_normal((4, problem.N)), rng.standard_normal(4)
    rc = certify_rigorous(problem, W, H, b)
    assert rc.feasible is False
    assert rc.lower_bound == pytest.approx(0.5 * math.log(2), rel=1e-14)
    assert rc.lower_bound < rc.float_lower_bound


def _dual_lower_exact(problem: ufm.UFMProblem, Dir: np.ndarray, t_r: float) -> tuple[mp.mpf, mp.mpf, mp.mpf]:
    """The dual point that :func:`dual_lower` claims, in 50 digits: ``Dir`` with each column's
    sum removed from its largest entry of ``y/m + Dir`` (and, with a free bias and ``lam_b = 0``,
    ``Gamma 1`` removed as ``r / sum_S c_S``), ``q = y/m + t_r Dir``. Returns ``(min q,
    ||Gamma||_2 - mu, D(q))``; the column sums and ``Gamma 1`` are asserted exact here."""
    design = problem.design
    K, G, N = problem.K, design.G, problem.N
    n = [int(v) for v in design.group_counts]
    m = [int(v) for v in design.group_multiplicity]
    Yg = design.Yg
    c = [mp.mpf(n[g] * (m[g] if problem.loss == "pal" else 1)) / N for g in range(G)]
    jstar = np.argmax(Yg / design.group_multiplicity + Dir, axis=0)
    D = [[mp.mpf(float(Dir[k, g])) for g in range(G)] for k in range(K)]
    for g in range(G):
        D[jstar[g]][g] -= mp.fsum(D[k][g] for k in range(K))
    free = problem.bias and problem.lam_b == 0
    if free:
        csum = mp.fsum(c)
        for k in range(K):
            r = mp.fsum(c[g] * D[k][g] for g in range(G))
            D[k] = [v - r / csum for v in D[k]]
    t = mp.mpf(t_r)
    q = [[mp.mpf(int(Yg[k, g])) / m[g] + t * D[k][g] for g in range(G)] for k in range(K)]
    for g in range(G):
        assert abs(mp.fsum(q[k][g] for k in range(K)) - 1) < mp.mpf(10) ** -40
    g1 = [t * mp.fsum(c[g] * D[k][g] for g in range(G)) for k in range(K)]
    if free:
        assert max(abs(v) for v in g1) < mp.mpf(10) ** -40
    M = mp.matrix([[t * D[k][g] * c[g] / mp.sqrt(n[g]) for g in range(G)] for k in range(K)])
    spec = max(mp.svd_r(M, compute_uv=False)) - mp.sqrt(mp.mpf(problem.lam_W) * mp.mpf(problem.lam_H))
    value = -mp.fsum(c[g] * mp.fsum(q[k][g] * mp.log(q[k][g]) for k in range(K) if q[k][g] > 0) for g in range(G))
    if problem.bias and problem.lam_b > 0:
        value -= mp.fsum(v * v for v in g1) / (2 * mp.mpf(problem.lam_b))
    return min(min(row) for row in q), spec, value


DUAL_PROBLEMS = {
    "bias": ufm.UFMProblem(ufm.balanced(4, "1:2,2:1"), 3, 5e-2, 2e-2, 0.3),
    "free-bias": ufm.UFMProblem(ufm.imbalanced_single(4, [5, 3, 2, 1], {(0, 1): 2, (1, 3): 1}), 3, 5e-2, 2e-2, 0.0),
    "no-bias": ufm.UFMProblem(ufm.balanced(4, "1:1,2:1,3:1"), 3, 5e-2, 2e-2, 0.0, bias=False),
    "normalized": ufm.UFMProblem(ufm.balanced(4, "1:2,2:1"), 3, 5e-2, 2e-2, 0.3, loss="pal-normalized"),
}


@pytest.mark.parametrize("name", list(DUAL_PROBLEMS))
def test_dual_lower_proves_what_it_claims(name: str) -> None:
    """Recomputed in 50 digits from ``(Dir, t_used)``: the corrected ``q`` is in the simplex
    (``>= 0`` exactly, also where ``t`` is capped so that an entry reaches 0), ``||Gamma||_2 <=
    mu`` (also when an overlarge ``t`` is cut to the spectral limit), ``Gamma 1 = 0`` with a free
    bias, and ``D_lo <= D(q)`` within ``1e-12`` relative. Directions: the float certificate's
    at a random point (scaled by 50: the cap binds), ``3 (pi - y/m)`` for a random ``pi`` in the
    simplex, and a random direction with nonzero column sums (the corrections do the work)."""
    from ufm.certificate_dual import dual_point

    problem = DUAL_PROBLEMS[name]
    design = problem.design
    rng = np.random.default_rng(12)
    base = design.Yg / design.group_multiplicity
    W, H, b = rng.standard_normal((4, 3)), rng.standard_normal((3, problem.N)), rng.standard_normal(4)
    _, Pbar = loss_and_group_softmax(problem, W @ H + b[:, None])
    _, t_float, d_float = dual_point(problem, Pbar)
    pi = rng.dirichlet(np.ones(4), design.G).T
    rough = 0.2 * rng.standard_normal(base.shape)
    rough = np.where(base > 0, rough, np.abs(rough))  # q >= 0 possible for some t > 0
    # large lam_W lam_H: the spectral limit is far, the simplex cap binds
    wide = ufm.UFMProblem(design, 3, 10.0, 10.0, problem.lam_b, bias=problem.bias, loss=problem.loss)
    cases = [(problem, d_float, t_float), (problem, d_float, 50.0), (wide, d_float, 50.0)]
    if name != "free-bias":  # (centring these may leave no t > 0 with q >= 0)
        cases += [(problem, rough, 1.0), (wide, 3.0 * (pi - base), 1.0), (wide, rough, 1.0)]
    for p, Dir, t in cases:
        lower, t_used, feasible = dual_lower(p, Dir, t)
        assert feasible and 0 < t_used <= t
        qmin, spec, value = _dual_lower_exact(p, Dir, t_used)
        assert qmin >= 0, (name, t, qmin)
        assert spec <= 0, (name, t, spec)
        assert mp.mpf(lower) <= value and lower >= float(value) - 1e-12 * abs(float(value)), (name, t, lower, value)
    # the capped and overscaled cases sit at their limits: an entry of q at 0, ||Gamma||_2 = mu
    _, t_cap, _ = dual_lower(wide, d_float, 50.0)
    assert t_cap < 50.0 and _dual_lower_exact(wide, d_float, t_cap)[0] < 1e-14
    _, t_big, _ = dual_lower(problem, d_float, 50.0)
    assert _dual_lower_exact(problem, d_float, t_big)[1] > -1e-10 * problem.mu


def test_interval_broadcasts_and_nonneg_keep_their_ends() -> None:
    """``irow``/``icol`` put the lower end with the lower end (a swap would turn an enclosure
    inside out); ``inonneg`` raises only the lower end."""
    lo, hi = np.array([-2.0, 1.0, 3.0]), np.array([-1.0, 2.0, 5.0])
    r, c = irow((lo, hi)), icol((lo, hi))
    assert r[0].shape == (1, 3) and c[0].shape == (3, 1)
    for out in (r, c):
        np.testing.assert_array_equal(out[0].ravel(), lo)
        np.testing.assert_array_equal(out[1].ravel(), hi)
    nn = inonneg((np.array([-1.0, 0.5]), np.array([2.0, 0.75])))
    np.testing.assert_array_equal(nn[0], [0.0, 0.5])
    np.testing.assert_array_equal(nn[1], [2.0, 0.75])


def test_spectral_upper_covers_the_whole_box() -> None:
    """For an interval matrix (not a point): the bound covers the matrices at both ends and at
    random corners of the box, in 50 digits, and is near the largest of them."""
    rng = np.random.default_rng(5)
    Mc = rng.standard_normal((4, 9))
    rad = 1e-3 * np.abs(rng.standard_normal(Mc.shape))
    ub = _spectral_upper((Mc - rad, Mc + rad))
    norms = []
    for k in range(12):
        sign = np.ones_like(Mc) if k == 0 else -np.ones_like(Mc) if k == 1 else rng.choice([-1.0, 1.0], Mc.shape)
        A = Mc + sign * rad
        norms.append(max(mp.svd_r(mp.matrix(A.tolist()), compute_uv=False)))
        assert mp.mpf(ub) >= norms[-1], k
    assert ub <= float(max(norms)) + 2.0 * float(np.linalg.norm(rad))


def _direction_exact(problem: ufm.UFMProblem, Dir: np.ndarray) -> list[list[mp.mpf]]:
    """The corrected direction of :func:`direction_enclosure`, in 50 digits from its
    definition (column sums onto the largest entry of ``y/m + Dir``, then the free-bias shift)."""
    design = problem.design
    K, G, N = problem.K, design.G, problem.N
    n, m = design.group_counts, design.group_multiplicity
    c = [mp.mpf(int(n[g]) * (int(m[g]) if problem.loss == "pal" else 1)) / N for g in range(G)]
    jstar = [max(range(K), key=lambda k: (float(design.Yg[k, g]) / m[g] + Dir[k, g], -k)) for g in range(G)]
    D = [[mp.mpf(float(Dir[k, g])) for g in range(G)] for k in range(K)]
    for g in range(G):
        D[jstar[g]][g] -= mp.fsum(D[k][g] for k in range(K))
    if problem.bias and problem.lam_b == 0:
        csum = mp.fsum(c)
        for k in range(K):
            r = mp.fsum(c[g] * D[k][g] for g in range(G))
            D[k] = [v - r / csum for v in D[k]]
    return D


@pytest.mark.parametrize("free", [False, True])
def test_direction_enclosure_contains_the_exact_direction(free: bool) -> None:
    """Every entry of the exact corrected direction lies in its enclosure (50 digits), for
    directions with nonzero column sums over 7 classes and label sets of sizes 1..3 -- also
    columns where the largest entry of ``y/m + Dir`` is not the largest of ``y m + Dir`` (the
    correction must go to the former). Without the free-bias shift, every entry not
    corrected is the float entry itself (a point), and the corrected ones are within the column
    sum's rounding bound."""
    design = ufm.imbalanced_single(7, [3, 2, 2, 1, 1, 1, 1], {(0, 1): 2, (2, 3): 1, (1, 4, 5): 2, (0, 6): 1})
    problem = ufm.UFMProblem(design, 4, 5e-2, 2e-2, 0.0 if free else 0.3)
    rng = np.random.default_rng(21)
    G, m = design.G, design.group_multiplicity
    c = idiv_pos((problem.design.group_counts * m * 1.0,) * 2, (np.float64(problem.N),) * 2)
    for trial in range(6):
        Dir = 10.0 ** rng.uniform(-3, 0, (7, G)) * rng.choice([-1.0, 1.0], (7, G))
        g = int(rng.integers(G))  # a set of size >= 2 where y m + Dir picks another entry
        big = [k for k in range(7) if design.Yg[k, g] == 0][0] if m[g] > 1 else None
        if big is not None:
            Dir[:, g] = np.where(design.Yg[:, g] > 0, -0.9 / m[g], 0.0)
            Dir[big, g] = 0.5  # y/m + Dir: 0.5 here, 0.1 / m on the members; y m + Dir: members win
        lo, hi = direction_enclosure(problem, Dir, c)
        exact = _direction_exact(problem, Dir)
        for k in range(7):
            for j in range(G):
                assert _inside(float(lo[k, j]), exact[k][j], float(hi[k, j])), (trial, k, j)
        if not free:
            jstar = np.argmax(design.Yg / m + Dir, axis=0)
            untouched = np.ones(Dir.shape, bool)
            untouched[jstar, np.arange(G)] = False
            np.testing.assert_array_equal(lo[untouched], Dir[untouched])
            np.testing.assert_array_equal(hi[untouched], Dir[untouched])
            # the column sum's a-priori rounding bound, 1.01 K u sum |Dir| on each side
            assert np.all(hi - lo <= 4 * 7 * np.spacing(np.abs(Dir).sum(axis=0)))


def test_dual_lower_trivial_directions() -> None:
    """``Dir = 0``, ``t <= 0`` or a non-finite ``Dir``: the bound at ``Gamma = 0``,
    ``D(0) = sum_S c_S log m_S``, with ``t = 0`` and ``feasible`` True (nothing was attempted)."""
    problem = DUAL_PROBLEMS["bias"]
    design = problem.design
    D0 = float(design.group_counts @ (design.group_multiplicity * np.log(design.group_multiplicity))) / problem.N
    direction = 0.1 * np.random.default_rng(13).standard_normal((4, design.G))
    bad = direction.copy()
    bad[1, 2] = np.nan
    for Dir, t in ((np.zeros_like(direction), 1.0), (direction, 0.0), (direction, -1.0), (bad, 1.0)):
        lower, t_used, feasible = dual_lower(problem, Dir, t)
        assert lower == pytest.approx(D0, rel=1e-14) and lower <= D0
        assert t_used == 0.0 and feasible is True
    # a float32 direction is used as the float64 numbers it holds
    d32 = direction.astype(np.float32)
    assert dual_lower(problem, d32, 1.0) == dual_lower(problem, d32.astype(np.float64), 1.0)
