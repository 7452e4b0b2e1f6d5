"""Theory: ETF, phi, phase transition, predicted minimiser, regimes."""

import math

import numpy as np
import pytest
from scipy.optimize import minimize

from ufm import UFMProblem, balanced, imbalanced_single, predict, predicted_minimizer, simplex_etf
from ufm.objectives.full import fun_and_grad, objective
from ufm.objectives.layout import pack
from ufm.theory import COLLAPSE, NOT_APPLICABLE, TRIVIAL, PhiProblem


@pytest.mark.parametrize("K", [2, 3, 5, 10])
def test_simplex_etf(K, rng):
    W = simplex_etf(K, K + 2, rng=rng)
    G = W @ W.T
    np.testing.assert_allclose(np.diag(G), 1.0, rtol=1e-13)
    off = G[~np.eye(K, dtype=bool)]
    np.testing.assert_allclose(off, -1.0 / (K - 1), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(W.sum(axis=0), 0.0, atol=1e-13)


def test_phi_minimum_matches_a_generic_optimizer():
    """Newton's minimiser of phi agrees with scipy's Nelder-Mead/BFGS on the same function."""
    phi = PhiProblem.from_profile(6, {1: 3, 2: 2, 3: 1}, mu=2e-3)
    s, _ = phi.minimize()
    ref = minimize(phi.value, np.ones(3), method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 20000})
    assert phi.value(s) <= ref.fun + 1e-13
    np.testing.assert_allclose(s, ref.x, rtol=1e-5)
    g, _ = phi.grad_hess(s)
    assert np.linalg.norm(g) < 1e-12


def test_predicted_minimizer_is_stationary_and_attains_the_value():
    p = UFMProblem(balanced(5, {1: 2, 2: 1, 3: 1, 5: 1}), 6, 4e-3, 1e-3, 1e-2)
    pred = predict(p)
    assert pred.regime == COLLAPSE
    W, H, b = predicted_minimizer(p, pred, rng=0)
    assert objective(p, W, H, b) == pytest.approx(pred.value, rel=1e-14)
    _, g = fun_and_grad(pack(W, H, b), p)
    assert np.linalg.norm(g) < 1e-12


def test_phase_transition_threshold_separates_regimes():
    design = balanced(4, {1: 2, 2: 1})
    mu_crit = predict(UFMProblem(design, 4, 1e-3, 1e-3)).mu_crit
    # the threshold by its definition: a_m = n_m C(K,m) m (K-m)/(N K), r_m = sqrt(n_m C(K-2,m-1))
    N = 2 * 4 + 6
    a = np.array([2 * 4 * 1 * 3 / (N * 4), 1 * 6 * 2 * 2 / (N * 4)])
    r = np.sqrt([2 * 1, 1 * 2])
    assert mu_crit == pytest.approx(np.linalg.norm(a / r) / 3, rel=1e-14)
    below = predict(UFMProblem(design, 4, mu_crit * 0.99, mu_crit * 0.99 * 0 + mu_crit * 0.99))
    above = predict(UFMProblem(design, 4, mu_crit * 1.01, mu_crit * 1.01))
    assert below.regime == COLLAPSE and above.regime == TRIVIAL
    assert above.value == pytest.approx((2 * 4 * 1 + 1 * 6 * 2) * math.log(4) / N, rel=1e-14)


def test_not_applicable_regimes_say_why():
    p1 = UFMProblem(imbalanced_single(3, [3, 1, 1]), 3, 1e-3, 1e-3)
    assert predict(p1).regime == NOT_APPLICABLE and "balanced" in predict(p1).reason
    p2 = UFMProblem(balanced(5, {1: 1}), 3, 1e-3, 1e-3)
    assert predict(p2).regime == NOT_APPLICABLE and "d = 3 < K-1 = 4" in predict(p2).reason
    p3 = UFMProblem(balanced(3, {1: 1}), 3, 1e-3, 1e-3, loss="bce")
    assert predict(p3).regime == NOT_APPLICABLE


def test_c_m_definition():
    pred = predict(UFMProblem(balanced(6, {1: 2, 2: 1, 3: 1}), 6, 1e-3, 1e-3))
    for m, c in pred.c.items():
        assert c == pytest.approx(m * pred.s[m] / pred.s[1], rel=1e-15)


# --- against hand formulas (the cases the mutation run, `make mutants`, found untested) -------------

def test_simplex_etf_default_dimension_refusal_and_seeded_rotation():
    W = simplex_etf(5)
    assert W.shape == (5, 4)
    np.testing.assert_allclose(W @ W.T, 5 / 4 * (np.eye(5) - 1 / 5), atol=1e-14)
    assert simplex_etf(4, 3).shape == (4, 3)  # d = K-1 is allowed
    with pytest.raises(ValueError, match=r"needs d >= K-1=3; got d=2"):
        simplex_etf(4, 2)
    np.testing.assert_array_equal(simplex_etf(4, 6, rng=7), simplex_etf(4, 6, rng=7))
    assert not np.allclose(simplex_etf(4, 6, rng=7), simplex_etf(4, 6, rng=8))


def _hand_phi(K, profile, mu):
    """phi(s) = sum_m A_m log(m + (K-m) e^{-s_m}) + mu (K-1) sqrt(sum_m r2_m s_m^2), its gradient."""
    N = sum(n * math.comb(K, m) for m, n in profile.items())
    ms = [m for m in sorted(profile) if 1 <= m <= K - 1]
    A = [profile[m] * math.comb(K, m) * m / N for m in ms]
    r2 = [profile[m] * math.comb(K - 2, m - 1) for m in ms]
    c = mu * (K - 1)

    def value(s):
        return (math.fsum(a * math.log(m + (K - m) * math.exp(-x)) for a, m, x in zip(A, ms, s))
                + c * math.sqrt(math.fsum(r * x * x for r, x in zip(r2, s))))

    def grad(s):
        sig = math.sqrt(math.fsum(r * x * x for r, x in zip(r2, s)))
        return np.array([-a * (K - m) * math.exp(-x) / (m + (K - m) * math.exp(-x)) + c * r * x / sig
                         for a, m, r, x in zip(A, ms, r2, s)])

    return ms, A, r2, value, grad


def test_phi_gradient_and_hessian_against_central_differences():
    K, profile, mu = 6, {1: 3, 2: 2, 3: 1, 6: 1}, 2e-2
    phi = PhiProblem.from_profile(K, profile, mu)
    ms, A, r2, value, grad = _hand_phi(K, profile, mu)
    np.testing.assert_allclose(phi.ms, ms)
    np.testing.assert_allclose(phi.A, A, rtol=1e-15)
    np.testing.assert_allclose(phi.r2, r2, rtol=1e-15)
    s0 = np.array([0.7, 1.3, 2.1])
    assert phi.value(s0) == pytest.approx(value(s0), rel=1e-14)
    g, Hs = phi.grad_hess(s0)
    h, E = 1e-5, np.eye(3)
    fd_g = [(value(s0 + h * e) - value(s0 - h * e)) / (2 * h) for e in E]
    np.testing.assert_allclose(g, fd_g, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(g, grad(s0), rtol=1e-13, atol=1e-15)
    fd_H = np.stack([(grad(s0 + h * e) - grad(s0 - h * e)) / (2 * h) for e in E], axis=1)
    np.testing.assert_allclose(Hs, fd_H, rtol=1e-7, atol=1e-10)


def test_predict_fields_in_every_regime():
    K = 4
    # only the full label set: constant logits, value K log K
    p = UFMProblem(balanced(K, {K: 3}), 4, 1e-3, 4e-3, 1e-2)
    pred = predict(p)
    assert (pred.regime, pred.value, pred.mu, pred.mu_crit, pred.const) == (
        TRIVIAL, pytest.approx(K * math.log(K), rel=1e-15), pytest.approx(2e-3, rel=1e-15), 0.0,
        pytest.approx(K * math.log(K), rel=1e-15))
    assert "only the full label set" in pred.reason

    profile = {1: 2, 2: 1, K: 1}
    N = sum(n * math.comb(K, m) for m, n in profile.items())
    a = np.array([profile[m] * math.comb(K, m) * m * (K - m) / (N * K) for m in (1, 2)])
    r = np.sqrt([profile[m] * math.comb(K - 2, m - 1) for m in (1, 2)])
    mu_crit = float(np.linalg.norm(a / r)) / (K - 1)
    const = K * math.log(K) / N
    # above the transition: W = 0, H = 0, loss sum_m n_m C(K,m) m log K / N
    lam = 1.5 * mu_crit
    pred = predict(UFMProblem(balanced(K, profile), 4, lam, lam, 1e-2))
    assert pred.regime == TRIVIAL and pred.s == {1: 0.0, 2: 0.0}
    assert pred.value == pytest.approx(sum(n * math.comb(K, m) * m for m, n in profile.items()) * math.log(K) / N,
                                       rel=1e-14)
    assert (pred.mu, pred.mu_crit, pred.const) == (pytest.approx(lam, rel=1e-15), pytest.approx(mu_crit, rel=1e-13),
                                                   pytest.approx(const, rel=1e-15))
    assert "mu_crit" in pred.reason
    # below it with d < K-1: not applicable, with mu and mu_crit
    lam = 0.5 * mu_crit
    pred = predict(UFMProblem(balanced(K, profile), 2, lam, lam, 1e-2))
    assert pred.regime == NOT_APPLICABLE and "d = 2 < K-1 = 3" in pred.reason
    assert (pred.mu, pred.mu_crit) == (pytest.approx(lam, rel=1e-15), pytest.approx(mu_crit, rel=1e-13))
    # collapse: sigma, kappa, c and the value from s by the formulas of docs/theory.md
    lam_W, lam_H = 0.5 * mu_crit, 0.2 * mu_crit
    pred = predict(UFMProblem(balanced(K, profile), 4, lam_W, lam_H, 1e-2))
    assert pred.regime == COLLAPSE and "multi-label neural collapse" in pred.reason
    s = [pred.s[1], pred.s[2]]
    sigma = math.sqrt(math.fsum(q * q * x * x for q, x in zip(r, s)))
    _, _, _, value, _ = _hand_phi(K, profile, math.sqrt(lam_W * lam_H))
    assert pred.sigma == pytest.approx(sigma, rel=1e-14)
    assert pred.kappa == pytest.approx(math.sqrt(lam_W / lam_H) / sigma, rel=1e-14)
    assert pred.c == {1: pytest.approx(1.0, rel=1e-15), 2: pytest.approx(2 * s[1] / s[0], rel=1e-14)}
    assert pred.value == pytest.approx(value(s) + const, rel=1e-13)
    assert (pred.mu, pred.mu_crit, pred.const) == (pytest.approx(math.sqrt(lam_W * lam_H), rel=1e-15),
                                                   pytest.approx(mu_crit, rel=1e-13), pytest.approx(const, rel=1e-15))
    assert isinstance(pred.phi_iterations, int) and pred.phi_iterations >= 1
    # not applicable designs and losses keep mu
    for q in (UFMProblem(balanced(3, {1: 1}), 3, 1e-3, 4e-3, loss="bce"),
              UFMProblem(imbalanced_single(3, [3, 1, 1]), 3, 1e-3, 4e-3)):
        pred = predict(q)
        assert pred.regime == NOT_APPLICABLE and pred.mu == pytest.approx(2e-3, rel=1e-15)
    assert "'bce'" in predict(UFMProblem(balanced(3, {1: 1}), 3, 1e-3, 4e-3, loss="bce")).reason
    d = imbalanced_single(3, [3, 1, 1])
    assert predict(UFMProblem(d, 3, 1e-3, 4e-3)).reason.endswith(d.imbalance_reason())


def test_predicted_minimizer_uses_the_given_prediction_and_rng():
    import dataclasses

    from ufm.theory import predicted_logits
    p = UFMProblem(balanced(4, {1: 2, 2: 1}), 5, 5e-3, 5e-3, 1e-2)
    pred = predict(p)
    other = dataclasses.replace(pred, s={m: 2 * v for m, v in pred.s.items()})
    W, H, b = predicted_minimizer(p, other, rng=0)
    Y = p.design.Y
    for i in range(p.N):
        S = np.flatnonzero(Y[:, i])
        np.testing.assert_allclose(H[:, i], other.kappa * other.s[len(S)] * W[S].sum(axis=0), atol=1e-13)
    np.testing.assert_array_equal(W, predicted_minimizer(p, rng=0)[0])
    assert not np.allclose(W, predicted_minimizer(p, rng=1)[0])
    # the logits s_m (1_S - m/K 1) of each group, the prediction computed when not given
    Z = predicted_logits(p)
    for g in range(Z.shape[1]):
        S = np.flatnonzero(p.design.Yg[:, g])
        np.testing.assert_allclose(Z[:, g], pred.s[len(S)] * (np.isin(np.arange(4), S) - len(S) / 4), rtol=1e-15)
    # trivial: zeros of the right shapes; not applicable: refused, naming why
    q = UFMProblem(balanced(4, {1: 2, 2: 1}), 5, 1.0, 1.0, 1e-2)
    W, H, b = predicted_minimizer(q)
    assert (W.shape, H.shape, b.shape) == ((4, 5), (5, q.N), (4,)) and not (W.any() or H.any() or b.any())
    with pytest.raises(ValueError, match="does not apply: the theorem is for the pick-all-label loss"):
        predicted_minimizer(UFMProblem(balanced(3, {1: 1}), 3, 1e-3, 4e-3, loss="bce"))


@pytest.mark.parametrize("frac", [0.99, 0.9, 0.01])  # ray minimiser rho ~0.37, 3.7, 78
def test_ray_start_and_one_newton_step_by_hand(frac):
    """ray_start: the minimiser of phi on the ray s = rho a / r^2 (scipy's bounded scalar
    search on the hand phi); minimize(max_iter=1): one Newton step from it, halved until phi
    decreases by a quarter of the Newton decrement (Hessian by differences of the hand gradient)."""
    from scipy.optimize import minimize_scalar

    K, profile = 6, {1: 3, 2: 2, 3: 1}
    ms, A, r2, _, _ = _hand_phi(K, profile, 0.0)
    a = np.array([x * (K - m) / K for x, m in zip(A, ms)])
    mu = frac * float(np.linalg.norm(a / np.sqrt(r2))) / (K - 1)
    _, _, _, value, grad = _hand_phi(K, profile, mu)
    phi = PhiProblem.from_profile(K, profile, mu)
    d = a / np.array(r2)
    res = minimize_scalar(lambda rho: value(rho * d), bounds=(1e-9, 1e3), method="bounded",
                          options={"xatol": 1e-13})
    s0 = phi.ray_start()
    np.testing.assert_allclose(s0, res.x * d, rtol=1e-6)
    assert value(s0) < value(np.zeros(3))

    h = 1e-6
    Hs = np.stack([(grad(s0 + h * e) - grad(s0 - h * e)) / (2 * h) for e in np.eye(3)], axis=1)
    g = grad(s0)
    step = np.linalg.solve(Hs, -g)
    t = 1.0
    while not (np.all(s0 + t * step > 0) and value(s0 + t * step) <= value(s0) + 0.25 * t * (g @ step)):
        t *= 0.5
    s1, it = phi.minimize(max_iter=1)
    assert it == 1
    np.testing.assert_allclose(s1, s0 + t * step, rtol=1e-7)


def _mu_at(K, profile, frac):
    """``frac * mu_crit`` with ``mu_crit = ||a / r||_2 / (K-1)`` from the hand coefficients."""
    ms, A, r2, _, _ = _hand_phi(K, profile, 0.0)
    a = np.array([x * (K - m) / K for x, m in zip(A, ms)])
    return frac * float(np.linalg.norm(a / np.sqrt(r2))) / (K - 1)


def _mp_root(K, profile, mu, guess):
    """The root of the hand gradient of phi at 40 digits (mpmath.findroot from ``guess``)."""
    import mpmath as mp

    with mp.workdps(40):  # restored afterwards: other tests use mpmath too
        ms, _, r2, _, _ = _hand_phi(K, profile, 0.0)
        N = sum(n * math.comb(K, m) for m, n in profile.items())
        Am = [mp.mpf(profile[m] * math.comb(K, m) * m) / N for m in ms]
        c = mp.mpf(mu) * (K - 1)

        def grad(*s):
            sig = mp.sqrt(sum(r * x * x for r, x in zip(r2, s)))
            return [-am * (K - m) * mp.e ** (-x) / (m + (K - m) * mp.e ** (-x)) + c * r * x / sig
                    for am, m, r, x in zip(Am, ms, r2, s)]

        root = mp.findroot(grad, [mp.mpf(float(x)) for x in guess])
        return np.array([float(x) for x in root])


P6 = {1: 3, 2: 2, 3: 1}


@pytest.mark.parametrize("K, profile, frac, rtol", [
    (6, P6, 0.5, 1e-15), (4, {1: 5, 3: 1}, 1e-4, 1e-15), (6, P6, 0.999, 1e-12),
    # these two once ran to max_iter = 200 at s* (a halved step below phi's resolution, repeated)
    (5, {1: 2, 2: 1}, 0.5, 1e-15), (3, {1: 3, 2: 2}, 0.21, 1e-15),
    # phi ~ 12: the final full steps raise phi by a few ulp (within 4 eps |phi|) while the
    # gradient falls; rejecting them left s* wrong by 1e-8 after 200 iterations
    (9, {1: 1, 8: 2}, 0.5, 1e-15), (9, {1: 1, 8: 2}, 1e-3, 1e-15),
])
def test_phi_minimiser_to_float64_precision(K, profile, frac, rtol):
    """minimize's s* against the root of the hand gradient at 40 digits (mpmath): accurate to
    float64 rounding, not only phi(s*) (the last Newton steps below phi's resolution count).
    Near the transition (0.999 mu_crit) phi is flat and s* is conditioned to ~1e-13. Newton
    from the ray start converges quadratically: its stopping rules end it within 20 iterations
    (at most 8 over K = 3..10, 7 profiles, 25 values of mu / mu_crit), not at max_iter."""
    mu = _mu_at(K, profile, frac)
    s, it = PhiProblem.from_profile(K, profile, mu).minimize()
    np.testing.assert_allclose(s, _mp_root(K, profile, mu, s), rtol=rtol, atol=0)
    assert 1 <= it <= 20


def _hand_damped_step(value, grad, s0):
    """One damped Newton step from s0 by the documented rule: the Newton step (Hessian by central
    differences of the hand gradient), t halved from 1 until s0 + t step > 0 and phi decreases by
    at least t/4 times the decrement -g.step, or (t = 1 only) the gradient norm decreases while
    phi rises by at most 4 eps |phi|."""
    h = 1e-6
    Hs = np.stack([(grad(s0 + h * e) - grad(s0 - h * e)) / (2 * h) for e in np.eye(len(s0))], axis=1)
    g = grad(s0)
    step = np.linalg.solve(Hs, -g)
    f0, gn0, t = value(s0), np.linalg.norm(g), 1.0

    def accepted(s1):
        if not np.all(s1 > 0):
            return False
        return value(s1) <= f0 + 0.25 * t * (g @ step) or (
            t == 1.0 and np.linalg.norm(grad(s1)) < gn0 and value(s1) <= f0 + 4 * np.finfo(float).eps * abs(f0))

    while not accepted(s0 + t * step):
        t *= 0.5
    return s0 + t * step, t


@pytest.mark.parametrize("K, profile, frac, start, t", [
    (6, P6, 0.01, [0.1, 3.0, 8.0], 0.25),  # t = 1 leaves s > 0, t = 1/2 decreases phi too little
    (6, P6, 0.9, [0.03, 0.37, 0.1], 0.5),  # t = 1/2 decreases phi by 0.30 t dec2; the gradient grows
    (6, P6, 0.5, [0.02, 2.16, 0.57], 1.0),  # t = 1: phi falls by 0.23 dec2 only, but |grad| falls
    (6, P6, 0.5, [8.0, 0.2, 0.1], 2.0**-7),
    (6, P6, 0.01, [2.53, 7.72, 7.61], 0.25),  # t = 1/2: smaller gradient, too little decrease
    (6, P6, 0.9, [1.13, 0.6, 0.86], 1.0),  # the full step is taken although the gradient grows
    (5, {1: 2, 2: 1}, 0.1, [5.3, 0.64], 0.5),  # the full step: smaller gradient, but phi rises
])
def test_phi_damped_newton_step_from_a_given_start_by_hand(K, profile, frac, start, t):
    """minimize(start=s0, max_iter=1): one Newton step halved by the Armijo rule with constant
    1/4, recomputed by hand; the starts are chosen so that each case takes the t shown."""
    mu = _mu_at(K, profile, frac)
    _, _, _, value, grad = _hand_phi(K, profile, mu)
    s0 = np.array(start)
    expected, t_hand = _hand_damped_step(value, grad, s0)
    assert t_hand == t
    s1, it = PhiProblem.from_profile(K, profile, mu).minimize(start=s0, max_iter=1)
    assert it == 1
    np.testing.assert_allclose(s1, expected, rtol=1e-7)
    assert value(s1) < value(s0)


@pytest.mark.parametrize("frac", [0.01, 0.5, 0.9])
@pytest.mark.parametrize("start", [[5.0, 5.0, 5.0], [0.05, 0.05, 0.05], [0.1, 3.0, 8.0], [8.0, 0.2, 0.1]])
def test_phi_minimiser_from_far_starts(frac, start):
    """From starts where the first steps must be halved (up to t = 1/128), or where phi(start)
    exceeds phi(0), damped Newton still ends at the mpmath root of the hand gradient, to float64
    rounding, within 20 iterations."""
    mu = _mu_at(6, P6, frac)
    s, it = PhiProblem.from_profile(6, P6, mu).minimize(start=np.array(start))
    np.testing.assert_allclose(s, _mp_root(6, P6, mu, s), rtol=1e-14, atol=0)
    assert 1 <= it <= 20


def test_phi_minimiser_stops_at_the_first_exactly_zero_gradient():
    """K = 4, {1: 5, 3: 1}, mu = 0.01 mu_crit: an iterate has gradient exactly 0 (in
    grad_hess's arithmetic); minimize returns it there, not after a further null step."""
    phi = PhiProblem.from_profile(4, {1: 5, 3: 1}, _mu_at(4, {1: 5, 3: 1}, 0.01))
    s, it = phi.minimize()
    assert not phi.grad_hess(s)[0].any()
    assert phi.grad_hess(phi.minimize(max_iter=it - 1)[0])[0].any()
    assert np.array_equal(phi.minimize(max_iter=it)[0], s)
