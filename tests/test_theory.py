"""Theory: ETF, phi, phase transition, predicted minimiser, regimes."""

import math

import numpy as np
import pytest
from scipy.optimize import minimize

from ufm import UFMProblem, balanced, imbalanced_single, predict, predicted_minimizer, simplex_etf
from ufm.objective import fun_and_grad, objective, pack
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
