"""ufm.fixed against independent routes, for mutation testing (issue 28): exact validation
messages, the 40-digit roots of the ETF scalar equation (mpmath), the closed-form value of
docs/fixed_classifier.md, the grouped gradient of ufm.objectives.full and its finite-difference
Hessian (the Newton step), a plain L-BFGS on all of (H, b) (normalised PAL), the
documented fields of Result, Certificate, Prediction and the verdict, and stand-in objectives
with exact dyadic values for the gradient-step fallback and the step-acceptance and stop rules."""

import math
import re
import time

import mpmath as mp
import numpy as np
import pytest
from scipy.optimize import minimize

import ufm
from ufm.exceptions import UFMError
from ufm.fixed import (
    ETF_RTOL,
    _gradient_step,
    _Grouped,
    as_fixed_W,
    certify_fixed,
    etf_classifier,
    etf_gamma,
    etf_scalars,
    parse_fixed,
    predict_fixed,
    solve_fixed,
    verify_fixed,
)
from ufm.objectives.full import value_and_grad
from ufm.result import Status

IMB = ((4, [5, 3, 2, 1], {(0, 1): 2, (2, 3): 1}))  # an imbalanced design with label sets of size 2


def _imbalanced(**kw) -> ufm.UFMProblem:
    K, counts, extra = IMB
    args = {"d": 3, "lam_W": 1e-2, "lam_H": 2e-2, "lam_b": 1e-2, "bias": True} | kw
    return ufm.UFMProblem(ufm.imbalanced_single(K, counts, extra), **args)


def _msg(text: str) -> str:
    return "^" + re.escape(text) + "$"


# -- independent references ------------------------------------------------------------------
def _root(K: int, m: int, rhs: float) -> mp.mpf:
    """The root of ``s (m e^s + K - m) = rhs`` at 40 digits (Newton from the right: g is convex
    and increasing on s > 0, so the iterates decrease monotonically to the root)."""
    with mp.workdps(40):
        r = mp.mpf(rhs)
        s = min(r / K, mp.log(1 + r / m) + 1)  # g(s) >= 0 at both
        for _ in range(2000):
            ds = (s * (m * mp.exp(s) + K - m) - r) / (m * mp.exp(s) * (1 + s) + K - m)
            s -= ds
            if abs(ds) <= mp.mpf(10) ** -38 * s:
                return s
    raise AssertionError("no convergence")


def _closed_form(p: ufm.UFMProblem, a: float) -> float:
    """min F_W of docs/fixed_classifier.md for the ETF of row norm a (40-digit scalars)."""
    K, N, prof = p.K, p.N, p.design.profile
    gamma = a * a * K / (K - 1)
    with mp.workdps(40):
        v = mp.mpf(p.lam_W) * K * a * a / 2 + prof.get(K, 0) * K * mp.log(K) / N
        for m, n in prof.items():
            if 1 <= m <= K - 1:
                s = _root(K, m, K * gamma / (N * p.lam_H))
                v += n * math.comb(K, m) * (m * mp.log(m + (K - m) * mp.exp(-s)) / N
                                             + mp.mpf(p.lam_H) * m * (K - m) * s**2 / (2 * K * gamma))
        return float(v)


def _grouped_grad(p: ufm.UFMProblem, W, Hg, b) -> tuple[float, np.ndarray, np.ndarray]:
    """Value and gradient of F(W, Hg[:, group_index], b) in (Hg, b), from ufm.objectives.full."""
    idx = p.design.group_index
    F, _, dH, db = value_and_grad(p, W, np.ascontiguousarray(Hg[:, idx]), b if p.bias else None)
    gH = np.zeros_like(Hg)
    np.add.at(gH.T, idx, dH.T)
    return F, gH, (np.asarray(db) if p.bias else np.zeros(p.K))


def _lbfgs(p: ufm.UFMProblem, W: np.ndarray) -> float:
    nH = p.d * p.N

    def fg(x):
        H, b = x[:nH].reshape(p.d, p.N), x[nH:] if p.bias else None
        f, _, dH, db = value_and_grad(p, W, H, b)
        return f, np.concatenate([dH.ravel(), db if p.bias else []])

    return minimize(fg, np.zeros(nH + (p.K if p.bias else 0)), jac=True, method="L-BFGS-B",
                    options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5000}).fun


# -- the classifier ---------------------------------------------------------------------------
def test_etf_classifier_default_and_range_ends():
    K = 4
    official = math.sqrt(K / (K - 1)) * (np.eye(K) - 1.0 / K)
    assert np.allclose(etf_classifier(K, K), official, rtol=0, atol=1e-15)  # default scale 1
    for a in (1e-100, 1e100):  # both ends of the accepted range are accepted
        W = etf_classifier(3, 2, a)
        assert np.allclose(np.linalg.norm(W, axis=1) / a, 1.0, rtol=0, atol=1e-14)
        assert etf_gamma(W) == pytest.approx(a * a * 3 / 2, rel=1e-14)


@pytest.mark.parametrize("scale", [0.0, -1.0, math.inf, math.nan, "1"])
def test_etf_classifier_rejects_a_bad_scale(scale):
    with pytest.raises(UFMError, match=_msg(f"The ETF row norm must be a float > 0; got {scale!r}.")):
        etf_classifier(3, 3, scale)


@pytest.mark.parametrize("scale", [1e-101, 1e101])
def test_etf_classifier_rejects_a_scale_outside_float64(scale):
    with pytest.raises(UFMError, match=_msg(
            f"The ETF row norm {scale!r} is outside [1e-100, 1e+100]: W W^T and the certificate would "
            "overflow or underflow float64.")):
        etf_classifier(3, 3, scale)


def test_parse_and_shape_messages():
    with pytest.raises(UFMError, match=_msg("A simplex ETF of K=5 rows needs d >= K-1=4; got d=3. Raise --d.")):
        etf_classifier(5, 3)
    with pytest.raises(UFMError, match=_msg(
            "A fixed classifier is given as 'etf' or 'etf:SCALE' (e.g. etf:0.5); got 'random'.")):
        parse_fixed("random", 3, 3)
    with pytest.raises(UFMError, match=_msg("The SCALE of 'etf:SCALE' must be a number; got 'x'.")):
        parse_fixed("etf:x", 3, 3)
    p = ufm.UFMProblem(ufm.balanced(3, "1:1"), d=3, lam_W=1e-2, lam_H=1e-2)
    with pytest.raises(UFMError, match=_msg("fixed_W must have shape (K, d) = (3, 3); got (3, 2).")):
        as_fixed_W(p, np.ones((3, 2)))
    with pytest.raises(UFMError, match=_msg("fixed_W contains non-finite values.")):
        as_fixed_W(p, np.full((3, 3), np.nan))
    W = as_fixed_W(p, [[1, 0, 0], [0, 2, 0], [0, 0, 3]])  # integers become float64
    assert W.dtype == np.float64 and np.array_equal(W, np.diag([1.0, 2.0, 3.0]))
    with pytest.raises(UFMError, match=_msg(
            "The fixed-classifier solver handles loss 'pal' and 'pal-normalized'; got 'bce'.")):
        solve_fixed(ufm.UFMProblem(ufm.balanced(3, "1:1"), d=3, lam_W=1e-2, lam_H=1e-2, loss="bce"), "etf")
    with pytest.raises(UFMError, match=_msg(
            "Option(s) ['foo', 'step'] do not apply to the fixed-classifier solver; it takes max_iter and gtol.")):
        solve_fixed(p, "etf", step=1.0, foo=2, progress=True)
    assert solve_fixed(p, "etf", progress=True, history_every=3, history_metrics=True).success


# -- etf_gamma ------------------------------------------------------------------------------
def _perturbed_etf(K: int, a: float, ratio: float) -> tuple[np.ndarray, float]:
    """An ETF of row norm a in R^{K+1} plus eps e_1 v^T, v orthogonal to its rows, with
    ||W W^T - gamma P||_F = ratio * ETF_RTOL * ||gamma P||_F (gamma = tr(W W^T)/(K-1))."""
    W0 = etf_classifier(K, K + 1, a)
    v = np.zeros(K + 1)
    v[K] = 1.0  # simplex_etf fills the first K-1 coordinates
    P = np.eye(K) - 1.0 / K
    E = np.zeros((K, K))
    E[0, 0] = 1.0
    gamma0 = a * a * K / (K - 1)
    c = np.linalg.norm(E - P / (K - 1))  # W W^T - gamma P = delta (e1 e1^T - P/(K-1))
    delta = ratio * ETF_RTOL * gamma0 * math.sqrt(K - 1) / c
    W = W0 + math.sqrt(delta) * np.outer(np.eye(K)[0], v)
    G = W @ W.T
    gamma = np.trace(G) / (K - 1)
    measured = np.linalg.norm(G - gamma * P) / np.linalg.norm(gamma * P)
    assert measured == pytest.approx(ratio * ETF_RTOL, rel=2e-3)
    return W, gamma


@pytest.mark.parametrize("K", [3, 5])
def test_etf_gamma_tolerance_is_relative_to_gamma_P(K):
    """Accepted iff ||W W^T - gamma P||_F <= ETF_RTOL ||gamma P||_F, at any scale of W."""
    for a in (0.05, 3.0):
        W, gamma = _perturbed_etf(K, a, 0.8)
        assert etf_gamma(W) == pytest.approx(gamma, rel=1e-15)
        W, _ = _perturbed_etf(K, a, 1.25)
        assert etf_gamma(W) is None
    assert etf_gamma(np.zeros((K, K))) is None  # gamma = 0 is no ETF
    assert etf_gamma(np.random.default_rng(0).standard_normal((K, K))) is None


# -- the scalars ----------------------------------------------------------------------------
def test_etf_scalars_to_float64_precision():
    """s_m within 3 ulp of the 40-digit root (g itself is evaluated with a few ulp of rounding)."""
    worst = 0.0
    for K in (3, 6, 9):
        for gamma in np.logspace(-32, 14, 47):  # the smallest: rhs/K K < rhs in float64, the bracket grows
            s = etf_scalars(K, 3, 0.1, float(gamma), list(range(1, K)))
            for m in range(1, K):
                exact = _root(K, m, K * float(gamma) / (3 * 0.1))  # rhs = K gamma / (N lam_H) as computed
                worst = max(worst, float(abs(mp.mpf(s[m]) - exact)) / np.spacing(float(exact)))
    assert worst <= 3.0


# -- predict_fixed --------------------------------------------------------------------------
def test_prediction_fields_against_closed_forms():
    K, scale = 5, 0.7
    p = ufm.UFMProblem(ufm.balanced(K, "1:1,2:1,5:2"), d=K, lam_W=5e-3, lam_H=2e-3, lam_b=1e-2)
    pred = predict_fixed(p, etf_classifier(K, K, scale))
    assert pred.regime == "collapse" and "(row norm 0.7)" in pred.reason
    assert pred.value == pytest.approx(_closed_form(p, scale), rel=1e-14)
    assert pred.const == pytest.approx(2 * K * math.log(K) / p.N, rel=1e-15)  # n_K K log K / N
    assert pred.mu == pytest.approx(math.sqrt(5e-3 * 2e-3), rel=1e-15)
    assert pred.mu_crit == pytest.approx(ufm.predict(p).mu_crit, rel=1e-15)  # the learned threshold
    assert pred.phi_iterations == 0
    gamma = scale**2 * K / (K - 1)
    assert pred.sigma == pytest.approx(gamma * math.sqrt(5e-3 / 2e-3), rel=1e-15)
    assert pred.kappa == pytest.approx(1 / gamma, rel=1e-15)
    # only the full label set: no scalar, no threshold
    q = ufm.UFMProblem(ufm.balanced(3, "3:2"), d=3, lam_W=1e-2, lam_H=1e-2, lam_b=1e-2)
    pq = predict_fixed(q, "etf")
    assert (pq.regime, pq.s, pq.c, pq.mu_crit) == ("collapse", {}, {}, 0.0)
    assert pq.value == pytest.approx(3 * math.log(3) + 1e-2 / 2 * 3, rel=1e-15)
    assert pq.const == pytest.approx(3 * math.log(3), rel=1e-15)


def test_prediction_not_applicable_reasons():
    mu = math.sqrt(1e-2 * 4e-2)
    pn = ufm.UFMProblem(ufm.balanced(3, "1:1,2:1"), d=3, lam_W=1e-2, lam_H=4e-2, loss="pal-normalized")
    pred = predict_fixed(pn, "etf")
    assert (pred.regime, pred.reason) == (
        "not-applicable", "the fixed-ETF prediction is for the pick-all-label loss, not 'pal-normalized'")
    assert pred.mu == pytest.approx(mu, rel=1e-15)
    pi = _imbalanced(lam_W=1e-2, lam_H=4e-2)
    pred = predict_fixed(pi, np.ones((4, 3)))
    assert pred.regime == "not-applicable" and pred.reason.startswith("design not balanced within multiplicity: ")
    assert pred.mu == pytest.approx(mu, rel=1e-15)
    pb = ufm.UFMProblem(ufm.balanced(3, "1:1,2:1"), d=3, lam_W=1e-2, lam_H=4e-2)
    pred = predict_fixed(pb, np.diag([1.0, 2.0, 3.0]))
    assert (pred.regime, pred.reason) == (
        "not-applicable", "the fixed W is not a scaled simplex ETF (W W^T != gamma P)")
    assert pred.mu == pytest.approx(mu, rel=1e-15)


# -- the solver: result fields, stopping rules, starts ----------------------------------------
def test_result_fields_at_the_start_point():
    """max_iter = 0 returns H = 0, b = 0 with every documented field filled in."""
    for p in (_imbalanced(), _imbalanced(bias=False, lam_b=0.0)):
        W = np.random.default_rng(5).standard_normal((4, 3))
        t0 = time.perf_counter()
        r = solve_fixed(p, W, max_iter=0)
        wall = time.perf_counter() - t0
        assert (r.status, r.nit, r.nfev, r.method) == (Status.MAX_ITER, 0, 0, "fixed-newton")
        assert 0.0 < r.time <= wall
        H, b = np.zeros((3, p.N)), np.zeros(4)
        logK = math.log(4)  # zero logits: sample i costs m_i log K
        assert r.fun == pytest.approx(p.design.Y.sum() * logK / p.N + 1e-2 / 2 * np.vdot(W, W), rel=1e-14)
        _, _, dH, db = value_and_grad(p, W, H, b if p.bias else None)
        gn = math.hypot(np.linalg.norm(dH), np.linalg.norm(db) if p.bias else 0.0)
        assert r.grad_norm == pytest.approx(gn, rel=1e-14)
        if p.bias:
            assert np.linalg.norm(db) > 1e-3  # the bias part counts
        x = np.concatenate([W.ravel(), H.ravel()] + ([b] if p.bias else []))
        assert np.array_equal(r.x, x) and np.array_equal(r.W, W) and np.array_equal(r.H, H)


def test_result_fields_at_the_minimiser():
    p = _imbalanced()
    W = np.random.default_rng(6).standard_normal((4, 3))
    r = solve_fixed(p, W)
    assert r.success and 1 <= r.nit == r.nfev <= 20
    assert np.linalg.norm(r.b) > 1e-3  # b* != 0 on this design
    assert np.array_equal(r.x, np.concatenate([W.ravel(), r.H.ravel(), r.b]))
    F, gH, gb = _grouped_grad(p, W, r.H[:, np.cumsum(p.design.group_counts) - 1], r.b)
    assert r.fun == pytest.approx(F, rel=1e-15)
    assert r.extra["grouped_value"] == pytest.approx(F, rel=1e-13)  # lam_W ||W||^2 / 2 and lam_b ||b||^2 / 2 in it
    assert r.fun == pytest.approx(_lbfgs(p, W), rel=1e-9)
    _, _, dH, db = value_and_grad(p, W, r.H, r.b)
    assert r.grad_norm == pytest.approx(math.hypot(np.linalg.norm(dH), np.linalg.norm(db)), rel=1e-12, abs=1e-300)
    assert r.grad_norm < 1e-12
    # the certificate of the returned point, b included
    assert r.lower_bound <= r.fun * (1 + 1e-15) and abs(r.rel_gap) < 1e-12


def test_max_iter_counts_iterations():
    p = _imbalanced(lam_H=1e-3)
    W = 3 * np.random.default_rng(7).standard_normal((4, 3))
    full = solve_fixed(p, W)
    assert full.success and full.nit > 4
    prev = math.inf
    for k in range(4):  # a descent method: F does not increase from one iterate to the next
        r = solve_fixed(p, W, max_iter=k)
        assert (r.status, r.nit) == (Status.MAX_ITER, k)
        assert r.fun <= prev
        prev = r.fun
    assert full.fun < prev


def test_gtol_stops_on_the_grouped_gradient():
    """``||grad|| <= gtol`` on (h_S, b): the bias part of the gradient counts."""
    K = 4
    p = ufm.UFMProblem(ufm.balanced(K, "1:1,2:1"), d=K, lam_W=1e-2, lam_H=1e-2, lam_b=0.5)
    W = etf_classifier(K, K, 1.0)
    r = solve_fixed(p, W)
    assert np.linalg.norm(r.b) < 1e-14  # b* = 0 (lam_b > 0)
    # b shifted by 1: PAL does not see beta 1, so only the b-gradient (lam_b b) is nonzero
    b0 = np.ones(K)
    _, gH, gb = _grouped_grad(p, W, r.H[:, np.cumsum(p.design.group_counts) - 1], b0)
    assert np.linalg.norm(gH) < 1e-12 and np.linalg.norm(gb) == pytest.approx(0.5 * 2, rel=1e-14)
    g = solve_fixed(p, W, (W, r.H, b0), gtol=0.5)
    assert g.success and g.nit >= 2 and np.linalg.norm(g.b) < 1e-12  # a step was taken
    assert g.fun == pytest.approx(r.fun, rel=1e-14)
    stop = solve_fixed(p, W, (W, r.H, b0), gtol=1.5)  # already below: stops before any step
    assert (stop.status, stop.nit) == (Status.CONVERGED_GTOL, 1) and np.array_equal(stop.b, b0)


def test_gtol_is_met_by_the_whole_gradient():
    """CONVERGED_GTOL: the gradient in (h_S, b) at the returned point is below gtol, b part included."""
    p = _imbalanced(lam_H=0.1, lam_b=1e-2)
    W = 0.3 * np.random.default_rng(0).standard_normal((4, 3))
    for gtol in (3e-2, 3e-4, 3e-7):
        r = solve_fixed(p, W, gtol=gtol)
        _, gH, gb = _grouped_grad(p, W, r.H[:, np.cumsum(p.design.group_counts) - 1], r.b)
        assert r.status == Status.CONVERGED_GTOL and math.hypot(np.linalg.norm(gH), np.linalg.norm(gb)) <= gtol


def test_backtracking_to_the_floor():
    """A problem whose last line search halves t below 1e-10 (at float64 noise): the point is returned."""
    p = ufm.UFMProblem(ufm.balanced(3, "1:1,2:1"), d=3, lam_W=1e-3, lam_H=1e-7, lam_b=1e-3)
    r = solve_fixed(p, "etf:0.1")
    assert r.success and r.fun == pytest.approx(_closed_form(p, 0.1), rel=1e-13)


def test_a_zero_gradient_stops_at_once():
    """Only the full label set: H = 0, b = 0 is the minimiser with a gradient of exactly 0."""
    p = ufm.UFMProblem(ufm.balanced(3, "3:2"), d=3, lam_W=1e-2, lam_H=1e-2, lam_b=0.0)
    r = solve_fixed(p, "etf")
    assert (r.status, r.nit, r.grad_norm) == (Status.CONVERGED_GTOL, 1, 0.0)
    assert r.fun == pytest.approx(3 * math.log(3) + 1e-2 / 2 * 3, rel=1e-15)
    assert not np.any(r.H) and not np.any(r.b)


@pytest.mark.parametrize("lam_b", [0.0, 1e-2])
def test_start_point(lam_b):
    """x0 as (W, H, b) or packed: its group means start the solve; the minimiser (and b with
    mean 0 for a free bias, b = 0 otherwise) is reached from a far start."""
    K, scale = 4, 1.0
    p = ufm.UFMProblem(ufm.balanced(K, "1:2,2:1"), d=K, lam_W=1e-3, lam_H=1e-3, lam_b=lam_b)
    W = etf_classifier(K, K, scale)
    rng = np.random.default_rng(8)
    H0, b0 = 10 * rng.standard_normal((K, p.N)), 3.0 + rng.standard_normal(K)
    expected = _closed_form(p, scale)
    prev = math.inf
    for k in range(6):  # damped: F does not increase along the iterates, also far from the minimiser
        r = solve_fixed(p, W, (W, H0, b0), max_iter=k)
        assert r.fun <= prev * (1 + 1e-15)
        prev = r.fun
    r = solve_fixed(p, W, (W, H0, b0))
    assert r.success and r.nit <= 25
    assert r.fun == pytest.approx(expected, rel=1e-13)
    assert abs(r.b.mean()) < 1e-14 and np.linalg.norm(r.b) < 1e-12
    packed = solve_fixed(p, W, np.concatenate([W.ravel(), H0.ravel(), b0]))
    assert np.array_equal(packed.x, r.x)
    # from the minimiser itself nothing is left to do
    again = solve_fixed(p, W, (W, r.H, r.b))
    assert again.fun == pytest.approx(expected, rel=1e-14) and again.nit <= 2


FAR = [(0.1, 0.1, 10, True, 1e-3, 12), (0.1, 1.0, 10, True, 1e-3, 12), (0.1, 10.0, 10, True, 1e-3, 12),
       (1e-3, 1.0, 10, True, 1e-3, 12), (1e-3, 10.0, 10, True, 1e-3, 12), (0.1, 100.0, 30, True, 1e-3, 0),
       (0.1, 10.0, 30, False, 0.0, 1), (1e-3, 10.0, 10, True, 1.0, 0), (1e-3, 10.0, 10, True, 1.0, 15),
       (1e-5, 10.0, 30, False, 0.0, 17)]


@pytest.mark.parametrize("lam_H,scale,amp,bias,lam_b,seed", FAR)
def test_far_start_reaches_the_minimiser(lam_H, scale, amp, bias, lam_b, seed):
    """From a start with saturated logits the line search must backtrack (damped phase)."""
    p = ufm.UFMProblem(ufm.balanced(3, "1:1,2:1"), d=3, lam_W=1e-3, lam_H=lam_H, lam_b=lam_b, bias=bias)
    W = etf_classifier(3, 3, scale)
    rng = np.random.default_rng(seed)
    r = solve_fixed(p, W, (W, amp * rng.standard_normal((3, p.N)), amp * rng.standard_normal(3)))
    assert r.success and r.fun == pytest.approx(_closed_form(p, scale), rel=1e-13)
    assert np.linalg.norm(r.b) < 1e-12 and abs(r.rel_gap) < 1e-12


# -- the Newton step against a finite-difference Hessian ---------------------------------------
@pytest.mark.parametrize("loss", ["pal", "pal-normalized"])
@pytest.mark.parametrize("bias,lam_b", [(True, 1e-2), (True, 0.0), (False, 0.0)])
def test_newton_step_solves_the_hessian_system(loss, bias, lam_b):
    p = _imbalanced(loss=loss, bias=bias, lam_b=lam_b, lam_H=5e-2)
    rng = np.random.default_rng(9)
    W = rng.standard_normal((4, 3))
    G, d, K = p.design.G, 3, 4
    Hg, b = 0.5 * rng.standard_normal((d, G)), 0.5 * rng.standard_normal(K) * bias  # b = 0 without a bias
    gr = _Grouped(p, W)
    f, gH, gb, P = gr.value_grad(Hg, b)
    F, gH_ref, gb_ref = _grouped_grad(p, W, Hg, b)
    assert f == pytest.approx(F, rel=1e-14)
    assert np.allclose(gH, gH_ref, rtol=1e-12, atol=1e-14) and np.allclose(gb, gb_ref, rtol=1e-12, atol=1e-14)
    nb = K if bias else 0
    n = d * G + nb

    def grad(x):
        _, a, c = _grouped_grad(p, W, x[: d * G].reshape(d, G), x[d * G:] if bias else np.zeros(K))
        return np.concatenate([a.ravel(), c if bias else []])

    x = np.concatenate([Hg.ravel(), b if bias else []])
    h = 1e-5
    Hess = np.array([(grad(x + h * e) - grad(x - h * e)) / (2 * h) for e in np.eye(n)]).T
    Hess = (Hess + Hess.T) / 2
    if bias and lam_b == 0:  # b is free along 1: the step with 1^T db = 0
        u = np.concatenate([np.zeros(d * G), np.ones(K) / math.sqrt(K)])
        Hess = Hess + np.outer(u, u)
    step = np.linalg.solve(Hess, -grad(x))
    dH, db = gr.newton_step(P, gH, gb)
    assert np.allclose(dH.ravel(), step[: d * G], rtol=1e-6, atol=1e-7 * np.abs(step).max())
    if bias:
        assert np.allclose(db, step[d * G:], rtol=1e-6, atol=1e-7 * np.abs(step).max())


@pytest.mark.parametrize("bias,lam_b", [(True, 1e-2), (True, 0.0), (False, 0.0)])
def test_normalized_pal_any_W(bias, lam_b):
    p = _imbalanced(loss="pal-normalized", bias=bias, lam_b=lam_b)
    W = np.random.default_rng(10).standard_normal((4, 3))
    r = solve_fixed(p, W)
    assert r.success and r.nit <= 15 and r.grad_norm < 1e-12
    assert r.fun == pytest.approx(_lbfgs(p, W), rel=1e-9)
    assert r.extra["grouped_value"] == pytest.approx(r.fun, rel=1e-13)
    assert abs(r.rel_gap) < 1e-12


# -- the certificate --------------------------------------------------------------------------
def test_certificate_fields_and_bias_argument():
    p = ufm.UFMProblem(ufm.balanced(2, "1:1"), d=2, lam_W=1e-3, lam_H=1e-3, lam_b=1e-3)
    W = etf_classifier(2, 2, 2.0)
    r = solve_fixed(p, W, max_iter=2)  # not yet optimal: a gap, and |F| < 1
    c = certify_fixed(p, W, r.H, r.b)
    F = value_and_grad(p, W, r.H, r.b)[0]
    assert abs(F) < 1 and c.objective == F and c.t == 1.0
    assert c.gap == F - c.lower_bound > 1e-6
    assert c.rel_gap == pytest.approx((F - c.lower_bound) / abs(F), rel=1e-15)
    assert c.lower_bound <= _closed_form(p, 2.0)
    assert certify_fixed(p, W, r.H) == certify_fixed(p, W, r.H, np.zeros(2))  # b defaults to 0
    q = ufm.UFMProblem(ufm.balanced(2, "1:1"), d=2, lam_W=1e-3, lam_H=1e-3, bias=False)
    assert certify_fixed(q, W, r.H, np.ones(2)) == certify_fixed(q, W, r.H)  # no bias: b ignored


def test_free_bias_bound_holds_at_the_no_bias_minimiser():
    """lam_b = 0: the bound needs Lambda 1 = 0 (the tilt); untilted, it bounds the problem
    without a bias, whose minimum is higher."""
    W = np.random.default_rng(11).standard_normal((4, 3))
    free, nobias = _imbalanced(lam_b=0.0), _imbalanced(bias=False, lam_b=0.0)
    r_nb = solve_fixed(nobias, W)
    min_free = _lbfgs(free, W)
    assert r_nb.fun > min_free + 1e-3
    c = certify_fixed(free, W, r_nb.H, np.zeros(4))
    assert c.lower_bound <= min_free * (1 + 1e-12)


def test_failed_tilt_gives_no_bound():
    """A class whose softmax underflows to 0 in every label set cannot be tilted to
    Lambda 1 = 0: the bound is -inf (never above F)."""
    p = ufm.UFMProblem(ufm.imbalanced_single(3, [3, 2, 1], {(0, 1): 1}), d=3, lam_W=1e-2, lam_H=1e-2, lam_b=0.0)
    c = certify_fixed(p, np.eye(3), np.zeros((3, p.N)), np.array([0.0, 0.0, -1e4]))
    assert c.lower_bound == -math.inf and math.isfinite(c.objective)


# -- verify_fixed ------------------------------------------------------------------------------
def test_verify_fixed_claims():
    p = ufm.UFMProblem(ufm.balanced(4, "1:1,2:1"), d=4, lam_W=1e-2, lam_H=1e-2, lam_b=1e-2)
    r = solve_fixed(p, "etf:0.8")
    v = verify_fixed(p, r.W, r.H, r.b)
    assert v.passed and v.reason.startswith("fixed classifier: fixed simplex-ETF classifier")
    assert [c.name for c in v.claims].count("certificate") == 1
    assert v.claims[-1].statement == "certified gap |F - D| / |F| of the fixed-W dual bound"
    assert "certificate_valid" not in [c.name for c in v.claims]
    v = verify_fixed(p, r.W, r.H, r.b, tol_structure=0.123, tol_value=0.0, tol_certificate=0.25)
    tols = {c.name: c.tol for c in v.claims}
    assert tols["nc1"] == 0.123 and tols["value"] == 0.0 and tols["certificate"] == 0.25
    other = ufm.Prediction("not-applicable", "given", mu=p.mu)  # a given prediction is used as is
    v = verify_fixed(p, r.W, r.H, r.b, prediction=other)
    assert (v.regime, v.reason) == ("not-applicable", "fixed classifier: given")
    assert [c.name for c in v.claims] == ["certificate"] and v.passed
    # any W, below d = K too: one certificate claim, |F - D| / |F| (tight at every d)
    for d in (3, 5):
        q = ufm.UFMProblem(ufm.balanced(4, "1:1,2:1"), d=d, lam_W=1e-2, lam_H=1e-2, lam_b=1e-2)
        W = np.random.default_rng(d).standard_normal((4, d))
        s = solve_fixed(q, W)
        v = verify_fixed(q, W, s.H, s.b)
        assert [c.name for c in v.claims] == ["certificate"] and v.passed
        assert v.claims[0].measured == abs(certify_fixed(q, W, s.H, s.b).rel_gap)
    # a loss without the certificate: nothing to claim
    bce = ufm.UFMProblem(ufm.balanced(3, "1:1"), d=3, lam_W=1e-2, lam_H=1e-2, loss="bce")
    v = verify_fixed(bce, etf_classifier(3, 3), np.zeros((3, 3)), np.zeros(3))
    assert v.claims == [] and v.verified is None


def test_verify_fixed_fails_an_invalid_bound_below_d_K(monkeypatch):
    """D > F beyond rounding is a failed certificate at every d (the bound is exact for fixed W)."""
    import ufm.fixed as fx
    from ufm.certificate import Certificate

    q = ufm.UFMProblem(ufm.balanced(4, "1:1,2:1"), d=3, lam_W=1e-2, lam_H=1e-2, lam_b=1e-2)
    W = np.random.default_rng(3).standard_normal((4, 3))
    s = solve_fixed(q, W)
    monkeypatch.setattr(fx, "certify_fixed", lambda *a: Certificate(s.fun + 1.0, s.fun, -1.0, -1.0 / s.fun, 1.0))
    v = verify_fixed(q, W, s.H, s.b)
    assert [c.name for c in v.claims] == ["certificate"] and not v.passed
    assert v.claims[0].measured == pytest.approx(1.0 / s.fun, rel=1e-15)


@pytest.mark.parametrize("a", [1e-100, 1e-80, 1e80, 1e100])
def test_etf_gamma_at_the_ends_of_the_scale_range(a):
    """||W W^T - gamma P||_F squared over- or underflowed float64 there: the ETF of row norm
    1e100 was rejected, and at 1e-80 a W with one row 0.1% longer was accepted."""
    W = etf_classifier(3, 3, a)
    assert etf_gamma(W) == pytest.approx(a * a * 3 / 2, rel=1e-14)
    W[0] *= 1.001
    assert etf_gamma(W) is None


# -- far starts: no false convergence, no singular system (found by the mutation work) -------
def test_far_start_is_not_called_converged_on_a_non_stationary_point():
    """A full Newton step that fails Armijo but lowers F and |g| used to be taken again and again
    above float64 noise: from this start the steps bounced across a valley to F = 75x min F with
    |g| = 5.2, reported CONVERGED_FTOL. The minimum is the ETF closed form (docs/fixed_classifier.md)."""
    p = ufm.UFMProblem(ufm.balanced(5, "1:1,2:1"), d=5, lam_W=1e-3, lam_H=0.1, bias=False)
    W = etf_classifier(5, 5, 10.0)
    r = solve_fixed(p, W, (W, 10 * np.random.default_rng(0).standard_normal((5, p.N)), None))
    assert r.success and r.fun == pytest.approx(_closed_form(p, 10.0), rel=1e-13) and r.grad_norm < 1e-12


@pytest.mark.parametrize("seed", [0, 2, 3])
def test_saturated_start_with_a_free_bias_converges(seed):
    """lam_b = 0 and a start at scale 100: the softmax saturates, the bias block of Newton's
    system is singular (LinAlgError before); gradient steps take over until Newton works."""
    p = ufm.UFMProblem(ufm.balanced(4, "1:2,2:1"), d=4, lam_W=1e-3, lam_H=1e-3, lam_b=0.0)
    W = etf_classifier(4, 4, 1.0)
    rng = np.random.default_rng(seed)
    r = solve_fixed(p, W, (W, 100 * rng.standard_normal((4, p.N)), 100 * rng.standard_normal(4)))
    assert r.success and r.fun == pytest.approx(_closed_form(p, 1.0), rel=1e-13)


def test_saturated_etf_with_tiny_lam_H_does_not_raise():
    """etf:1000 with lam_H = 1e-12 and a free bias raised LinAlgError (a singular Newton system)."""
    p = ufm.UFMProblem(ufm.balanced(3, "1:1,2:1"), d=3, lam_W=1e-3, lam_H=1e-12, lam_b=0.0)
    r = ufm.solve(p, fixed_W="etf:1000")
    assert np.isfinite(r.fun) and r.fun >= 0.5 * 1e-3 * 3 * 1000.0**2  # the ridge of W alone (K rows of norm 1000)


# -- the gradient-step fallback on hand-made objectives (exact dyadic arithmetic) ---------------
class _Quadratic:
    """``f = f0 + c/2 (|Hg|^2 + |b|^2)`` in the interface of ``_Grouped.value_grad``."""

    def __init__(self, c: float, f0: float = 0.0) -> None:
        self.c, self.f0 = c, f0

    def value_grad(self, Hg, b):
        return self.f0 + 0.5 * self.c * (float((Hg * Hg).sum()) + float(b @ b)), self.c * Hg, self.c * b, "P"


class _Linear:
    """``f = f0 + <kH, Hg> + <kb, b>``: its decrease along ``-t grad`` is ``t (|kH|^2 + |kb|^2)``."""

    def __init__(self, kH, kb, f0: float) -> None:
        self.kH, self.kb, self.f0 = np.array(kH), np.array(kb), f0

    def value_grad(self, Hg, b):
        return self.f0 + float((self.kH * Hg).sum()) + float(self.kb @ b), self.kH.copy(), self.kb.copy(), "P"


def _gstep(gr, Hg, b):
    f, gH, gb, _ = gr.value_grad(Hg, b)
    return _gradient_step(gr, Hg, b, f, gH, gb, math.hypot(np.linalg.norm(gH), np.linalg.norm(gb)))


@pytest.mark.parametrize("c,t", [(0.5, 1.0), (1.5, 1.0), (1.75, 0.5), (2.0, 0.5), (4.0, 0.25), (6.0, 0.25),
                                 (2.0**199, 2.0**-199)])
def test_gradient_step_armijo_backtracking(c, t):
    """On ``c/2 |x|^2`` Armijo ``f(x - t g) <= f - |g|^2 t/4`` holds iff ``t c <= 3/2``: the step
    is the first of 1, 1/2, 1/4, ... that passes (c = 1.5: equality, all values dyadic and exact),
    at most 200 tries (the last 2^-199). The returned gradient norm counts both blocks."""
    Hg, b = np.array([[3.0]]), np.array([4.0])
    out = _gstep(_Quadratic(c), Hg, b)
    assert out is not None
    H1, b1, f1, gH1, gb1, P1, gn1 = out
    q = 1.0 - t * c  # the exact step multiplies x by 1 - t c
    assert H1[0, 0] == 3.0 * q and b1[0] == 4.0 * q and P1 == "P"
    assert f1 == pytest.approx(0.5 * c * 25.0 * q * q, rel=1e-15, abs=0.0)
    assert gH1[0, 0] == c * 3.0 * q and gb1[0] == c * 4.0 * q
    assert gn1 == pytest.approx(5.0 * c * abs(q), rel=1e-15, abs=0.0)


def test_gradient_step_gives_up_after_200_tries():
    """c = 2^200 needs t = 2^-200, the 201st trial: no step."""
    assert _gstep(_Quadratic(2.0**200), np.array([[3.0]]), np.array([4.0])) is None


def test_gradient_step_needs_a_decrease_above_64_eps_f():
    """A step is taken only if it lowers F by more than 64 eps |F|: on a linear F from f0 = 1
    the unit step's decrease is exactly |k|^2 (dyadic), so 129 eps/2 is taken and 64 eps is not;
    at f0 = 2^20 a decrease of 2^-30 (far below 64 eps 2^20 = 2^-26) is no step either, though it
    passes Armijo."""
    eps = np.finfo(float).eps
    assert 64 * eps == 2.0**-46
    zH, zb = np.zeros((1, 1)), np.zeros(2)
    taken = _gstep(_Linear([[2.0**-23]], [2.0**-27, 2.0**-27], 1.0), zH, zb)  # |k|^2 = 2^-46 + 2^-53
    assert taken is not None and 1.0 - taken[2] == 2.0**-46 + 2.0**-53 and taken[2] < 1.0 - 64 * eps
    assert np.array_equal(taken[0], [[-(2.0**-23)]]) and np.array_equal(taken[1], [-(2.0**-27)] * 2)
    assert _gstep(_Linear([[2.0**-23]], [0.0, 0.0], 1.0), zH, zb) is None  # exactly 64 eps
    assert _gstep(_Linear([[2.0**-15]], [0.0, 0.0], 2.0**20), zH, zb) is None  # 2^-30 < 2^-26
    assert _gstep(_Linear([[2.0**-12]], [0.0, 0.0], 2.0**20), zH, zb) is not None  # 2^-24 > 2^-26


def test_default_max_iter_is_1000(monkeypatch):
    """A run that never converges stops after the documented default of 1000 iterations: with
    Newton's system always singular and a gradient step that never stops, every iteration takes
    the fallback and only ``max_iter`` ends the run."""
    import ufm.fixed as fx

    def singular(self, P, gH, gb):
        raise np.linalg.LinAlgError("singular")

    calls = []

    def endless(gr, Hg, b, f, gH, gb, gn):  # "a step": the same point, never None
        calls.append(1)
        return Hg, b, f, gH, gb, gr.value_grad(Hg, b)[3], gn

    monkeypatch.setattr(fx._Grouped, "newton_step", singular)
    monkeypatch.setattr(fx, "_gradient_step", endless)
    p = _imbalanced()
    r = solve_fixed(p, np.random.default_rng(1).standard_normal((4, 3)))
    assert (r.status, r.nit, len(calls)) == (Status.MAX_ITER, 1000, 1000)
    assert "default 1000" in " ".join(solve_fixed.__doc__.split())


@pytest.mark.parametrize("lam_W", [1e4, 1e5, 1e6, 1e7])
def test_a_large_constant_does_not_stop_newton_early(lam_W):
    """``lam_W ||W||^2 / 2`` only shifts F, but makes its rounding (64 eps |F|, up to ~1e-6 here)
    hide the last decreases: the noise rules must then still take Newton's steps down to a
    gradient at float64 precision (measured with ufm.objectives.full), as for lam_W = 1e-2."""
    for lam_H in (1e-3, 1e-2, 2e-2):
        for seed in range(3):
            p = _imbalanced(lam_W=lam_W, lam_H=lam_H)
            W = np.random.default_rng(seed).standard_normal((4, 3))
            r = solve_fixed(p, W)
            _, _, dH, db = value_and_grad(p, W, r.H, r.b)
            assert r.success and math.hypot(np.linalg.norm(dH), np.linalg.norm(db)) < 1e-14


@pytest.mark.parametrize("lam_H,scale,amp", [(1e-3, 10.0, 10), (1e-5, 1.0, 100)])
def test_far_start_k4_without_bias(lam_H, scale, amp):
    """K = 4, no bias, saturated start: a step that fails Armijo must not be taken merely because
    it lowers |g| without raising F (above float64 noise it cycles: 1000 iterations and F about 3x
    min F). The minimum is the ETF closed form (docs/fixed_classifier.md)."""
    p = ufm.UFMProblem(ufm.balanced(4, "1:2,2:1"), d=4, lam_W=1e-3, lam_H=lam_H, bias=False)
    W = etf_classifier(4, 4, scale)
    rng = np.random.default_rng(0)
    r = solve_fixed(p, W, (W, amp * rng.standard_normal((4, p.N)), amp * rng.standard_normal(4)))
    assert r.success and r.nit <= 100 and r.fun == pytest.approx(_closed_form(p, scale), rel=1e-13)


def test_far_start_free_bias_with_a_large_constant():
    """lam_W = 1e8 (F's rounding 64 eps |F| ~ 3e-4) and a saturated start with a free bias: a
    full step at float64 noise is taken only if it lowers |g| and does not raise F beyond the
    noise, else the run stalls at |g| ~ 0.4 (1000 iterations). Closed form of the ETF minimum."""
    p = ufm.UFMProblem(ufm.balanced(4, "1:2,2:1"), d=4, lam_W=1e8, lam_H=0.1, lam_b=0.0)
    W = etf_classifier(4, 4, 10.0)
    rng = np.random.default_rng(0)
    r = solve_fixed(p, W, (W, 100 * rng.standard_normal((4, p.N)), 100 * rng.standard_normal(4)))
    assert r.success and r.fun == pytest.approx(_closed_form(p, 10.0), rel=1e-13)
    _, _, dH, db = value_and_grad(p, W, r.H, r.b)
    assert math.hypot(np.linalg.norm(dH), np.linalg.norm(db)) < 1e-10


@pytest.mark.parametrize("kind", ["ascent", "zero"])
def test_a_useless_newton_step_falls_back_to_gradient_steps(monkeypatch, kind):
    """A Newton step that is no descent direction (``dec = -g.d <= 0``: an ascent step, or a step
    that underflowed to 0 -- rounding on a nearly singular system) is not searched along (F is
    convex: Armijo cannot hold there except in rounding, where a tiny step would end the run at a
    non-stationary point); the gradient step is taken instead, here at every iteration, down to the
    ETF closed form. Plain gradient descent stops when F no longer resolves a decrease
    (here at |g| ~ 1e-7), so F is only within ~ |g|^2 / lam_H ~ 2e-13 of min F: rel 1e-12."""
    import ufm.fixed as fx

    def useless(self, P, gH, gb):
        return (3.0 * gH, 3.0 * gb) if kind == "ascent" else (np.zeros_like(gH), np.zeros_like(gb))

    monkeypatch.setattr(fx._Grouped, "newton_step", useless)
    p = ufm.UFMProblem(ufm.balanced(3, "1:1,2:1"), d=3, lam_W=1e-3, lam_H=0.1, lam_b=1e-2)
    r = solve_fixed(p, etf_classifier(3, 3, 1.0))
    assert r.status == Status.CONVERGED_FTOL and r.nit > 5
    assert r.fun == pytest.approx(_closed_form(p, 1.0), rel=1e-12)


# -- the acceptance and stop rules of solve_fixed at their boundaries (exact dyadic values) -------
U = 64 * np.finfo(float).eps  # F's rounding allowance at |F| = 1: 2^-46


class _OneStep:
    """A stand-in for ``_Grouped`` seen by one iteration of ``solve_fixed``: at the start
    (``h = 0``) ``F = 1`` and ``|g| = 1``; Newton's step moves ``h`` to ``s = -dec`` (the decrease
    it predicts is ``dec``), where ``F = f1`` and ``|g| = g1``; the gradient step's unit step
    ``h = -1`` has ``F = 1/2`` (it passes Armijo); anywhere else ``F = 2`` (no step passes)."""

    free_b = False

    def __init__(self, dec: float, f1: float, g1: float) -> None:
        self.s, self.table = -dec, {0.0: (1.0, 1.0), -dec: (f1, g1), -1.0: (0.5, 0.25)}

    def value_grad(self, Hg, b):
        f, g = self.table.get(float(Hg[0, 0]), (2.0, 1.0))
        gH = np.zeros_like(Hg)
        gH[0, 0] = g
        return f, gH, np.zeros_like(b), None

    def newton_step(self, P, gH, gb):
        dH = np.zeros_like(gH)
        dH[0, 0] = self.s
        return dH, np.zeros_like(gb)


@pytest.mark.parametrize("dec,f1,g1,status,h", [
    (0.5, 0.875, 0.5, Status.MAX_ITER, -0.5),  # Armijo f1 <= f - dec/4 with equality: taken
    (4 * U, 1 + U / 2, 0.25, Status.MAX_ITER, -4 * U),  # flat (dec/4 = noise): taken though F rose
    (U, 1 + U, 0.25, Status.MAX_ITER, -U),  # flat, F up by exactly the noise: taken
    (U, 1 + U + 2.0**-52, 0.25, Status.MAX_ITER, -1.0),  # F up by more: refused, the gradient step
    (U, 1 + U / 2, 1.0, Status.MAX_ITER, -1.0),  # flat, |g| not lowered: refused, the gradient step
    (U, 1 + U, 0.75, Status.CONVERGED_FTOL, -U),  # taken, |F1 - F| = noise, |g| not halved: stalled
    (U, 1 - U / 2, 0.5, Status.MAX_ITER, -U),  # Armijo, |g| halved exactly: not stalled
    (2.0**-56, 1.0, 1.0, Status.CONVERGED_FTOL, 0.0),  # F and |g| unchanged: stop where it is
])
def test_step_acceptance_and_stop_rules_at_their_boundaries(monkeypatch, dec, f1, g1, status, h):
    """One iteration (max_iter = 1) on a stand-in objective: which step is taken and whether the
    run stops, as the rules of solve_fixed say (noise = 64 eps |F|; flat: dec/4 <= noise; a step
    failing Armijo is taken only when flat, full, lowering |g| and raising F by at most the
    noise; stop when F and |g| do not go down, or when a flat step changes F by at most the noise
    and is damped or does not halve |g|). Every value is dyadic: the boundaries are exact."""
    import ufm.fixed as fx

    fake = _OneStep(dec, f1, g1)
    monkeypatch.setattr(fx, "_Grouped", lambda problem, W: fake)
    p = ufm.UFMProblem(ufm.balanced(3, "1:1"), d=3, lam_W=1e-2, lam_H=1e-2, bias=False)
    r = solve_fixed(p, etf_classifier(3, 3), max_iter=1)
    expected_f = {-1.0: 0.5, 0.0: 1.0}.get(h, f1)
    assert (r.status, r.nit, r.extra["grouped_value"]) == (status, 1, expected_f)
    assert r.H[0, 0] == h and np.count_nonzero(r.H) == (h != 0.0)  # h_S of the first label set
