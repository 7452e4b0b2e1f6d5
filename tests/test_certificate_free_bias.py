"""The certificate with a free bias and ``lam_b = 0`` (the tilted branch of
:func:`ufm.certificate_dual.dual_point`), above and below the transition, on imbalanced
and balanced designs, float and rigorous (issue 28).

Every bound is compared with values computed without the package
(:mod:`reference`): ``F`` itself, ``inf_b F(0, 0, b)`` by Newton's method on ``b``
(an upper bound on ``min F``), and the best value of an independent L-BFGS-B solve.
The transition is where the origin ``W = H = 0`` (with its best bias) stops being a
minimiser of the convex relaxation: ``mu = ||grad L(b* 1^T)||_2`` (``reference.mu_at_origin``).
Above it the certificate at that point must be tight; anywhere, never above those values.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import reference as ref

from ufm.certificate import certify
from ufm.certificate_rigorous import certify_rigorous
from ufm.designs import balanced, from_counts, imbalanced_pairs, imbalanced_single, random_subset
from ufm.problem import UFMProblem

DESIGNS = {
    "imb-single": imbalanced_single(4, [9, 4, 2, 1]),
    "imb-single-pairs": imbalanced_single(5, [5, 1, 3, 2, 1], {(0, 1): 2, (2, 4): 1}),
    "imb-pairs": imbalanced_pairs(5, 3, heavy_count=5),
    "random": random_subset(5, 4, max_multiplicity=3, count=(1, 4), rng=7),
    "balanced": balanced(4, "1:3,2:1"),
    "absent-class": from_counts(4, {(0,): 3, (1,): 2, (0, 1): 2, (2,): 1}),
}
RHOS = (0.3, 0.8, 1.25, 4.0)  # mu / mu_at_origin: below and above the transition


def _problem(name: str, rho: float, loss: str = "pal") -> UFMProblem:
    design = DESIGNS[name]
    mu0 = ref.mu_at_origin(UFMProblem(design, design.K, 1.0, 1.0, 0.0, loss=loss))
    mu = rho * mu0
    return UFMProblem(design, design.K, 2.0 * mu, 0.5 * mu, 0.0, loss=loss)


CASES = [(name, rho, "pal") for name in DESIGNS for rho in RHOS] + [
    ("imb-single", 0.8, "pal-normalized"), ("imb-single", 4.0, "pal-normalized"),
    ("random", 4.0, "pal-normalized")]


def test_the_reported_case():
    """issue 28: ``imbalanced_single(4, [9, 4, 2, 1])``, d = 4, lam = 0.5, lam_b = 0, at the
    origin: ``inf_b F(0, 0, b) = 1.103`` (< F(0, 0, 0) = log 4) and the certificate gives
    exactly that (a changed tilt target had reported log 4)."""
    problem = UFMProblem(imbalanced_single(4, [9, 4, 2, 1]), 4, 0.5, 0.5, 0.0)
    inf_b, _ = ref.inf_F_at_origin(problem)
    counts = np.array([9, 4, 2, 1]) / 16
    assert inf_b == pytest.approx(-float(counts @ np.log(counts)), rel=1e-14)  # the entropy
    assert inf_b == pytest.approx(1.103, abs=5e-4)
    Z = np.zeros((4, 4)), np.zeros((4, problem.N)), np.zeros(4)
    for cert in (certify(problem, *Z), certify_rigorous(problem, *Z)):
        assert cert.lower_bound <= inf_b + 1e-14
        assert cert.lower_bound == pytest.approx(inf_b, rel=1e-10)  # above the transition: tight


def test_newton_infimum_matches_the_entropy_closed_form():
    """Two independent routes to ``inf_b F(0, 0, b)`` (PAL, free bias): Newton on ``b`` and
    ``mbar * entropy(label frequencies / mbar)``."""
    for design in DESIGNS.values():
        problem = UFMProblem(design, design.K, 0.1, 0.1, 0.0)
        assert ref.inf_F_at_origin(problem)[0] == pytest.approx(ref.inf_F_without_features(problem), rel=1e-13)


@pytest.mark.parametrize("name,rho,loss", CASES)
def test_free_bias_certificate_at_the_origin(name, rho, loss, rng):
    """At ``W = H = 0`` with ``b = 0``, ``b*`` and random ``b``: ``D <= inf_b F(0, 0, b)``
    for the float and the rigorous certificate; above the transition, at ``b*``, ``D``
    equals it (the origin is optimal there)."""
    problem = _problem(name, rho, loss)
    inf_b, b_star = ref.inf_F_at_origin(problem)
    W, H = np.zeros((problem.K, problem.d)), np.zeros((problem.d, problem.N))
    finite = np.isfinite(b_star)
    b_opt = np.where(finite, b_star, b_star[finite].min() - 40.0)
    tol = 1e-13 * inf_b
    for b in (np.zeros(problem.K), b_opt, rng.standard_normal(problem.K), 5 * rng.standard_normal(problem.K)):
        for cert in (certify(problem, W, H, b), certify_rigorous(problem, W, H, b)):
            assert math.isfinite(cert.lower_bound)
            assert cert.lower_bound <= inf_b + tol, (name, rho, b, cert.lower_bound, inf_b)
    if rho > 1:
        cert = certify(problem, W, H, b_opt)
        assert cert.lower_bound == pytest.approx(inf_b, rel=1e-9)


@pytest.mark.parametrize("name,rho,loss", CASES)
def test_free_bias_certificate_below_an_independent_solve(name, rho, loss, rng):
    """At random points of scales 1e-3..3 and near the origin: ``D <= F`` there and
    ``D <=`` the best value of an independent L-BFGS-B solve (float and rigorous)."""
    problem = _problem(name, rho, loss)
    upper = ref.min_F_upper(problem, seed=1, starts=2)
    K, d, N = problem.K, problem.d, problem.N
    for scale in (1e-3, 0.05, 0.3, 1.0, 3.0):
        W = scale * rng.standard_normal((K, d))
        H = scale * rng.standard_normal((d, N))
        b = rng.standard_normal(K) * (1.0 if scale < 0.1 else scale)
        F = ref._F_and_grad(np.concatenate([W.ravel(), H.ravel(), b]), problem)[0]
        for cert in (certify(problem, W, H, b), certify_rigorous(problem, W, H, b)):
            assert cert.lower_bound <= F + 1e-13 * abs(F)
            assert cert.lower_bound <= upper + 1e-12 * abs(upper), (name, rho, scale, cert.lower_bound, upper)


@pytest.mark.parametrize("name", ["imb-single", "imb-pairs", "random", "absent-class"])
def test_rigorous_bound_centres_any_direction(name, rng):
    """``dual_lower`` proves ``Gamma 1 = 0`` itself (free bias, ``lam_b = 0``): handed a
    direction that violates it (the softmax at the origin, or a random one), at full scale,
    its bound stays below ``inf_b F(0, 0, b)`` -- it does not trust ``dual_point``."""
    from ufm.certificate_rigorous import dual_lower

    problem = _problem(name, 4.0)
    inf_b, _ = ref.inf_F_at_origin(problem)
    design = problem.design
    base = design.Yg / design.group_multiplicity
    uniform = np.full_like(base, 1.0 / problem.K)
    for Pbar in (uniform, 0.5 * (base + uniform), rng.dirichlet(np.ones(problem.K), design.G).T):
        lower, _, feasible = dual_lower(problem, Pbar - base, 1.0)
        assert lower <= inf_b + 1e-13 * inf_b, (name, lower, inf_b)
    # the centred uniform direction is the label frequencies: feasible, and exact above the
    # transition (a class in no label set makes every centred direction infeasible)
    lower, _, feasible = dual_lower(problem, uniform - base, 1.0)
    if name != "absent-class":
        assert feasible and lower == pytest.approx(inf_b, rel=1e-12)


def _weights(problem: UFMProblem) -> np.ndarray:
    """c_S = n_S w_S m_S / N (w_S = 1 for PAL, 1/m_S normalised), from the design's counts."""
    design = problem.design
    n = np.asarray(design.group_counts, dtype=float)
    m = np.asarray(design.group_multiplicity, dtype=float)
    return n * m / problem.N if problem.loss == "pal" else n / problem.N


@pytest.mark.parametrize("name,loss", [("imb-single-pairs", "pal"), ("imb-pairs", "pal"), ("random", "pal"),
                                       ("random", "pal-normalized"), ("imb-single-pairs", "pal-normalized")])
@pytest.mark.parametrize("tilt", [True, False])
def test_free_bias_direction_is_centred_even_without_the_tilt(name, loss, tilt, rng, monkeypatch):
    """With a free bias (lam_b = 0) the dual point must satisfy Gamma 1 = 0, i.e.
    sum_S c_S Dir_S = 0 for the returned direction, whichever candidate wins -- also when the
    tilt fails and only the centred candidates are left (``_tilt`` forced to give up). Its
    bound then stays below ``inf_b F(0, 0, b)``. A wrong centring weight (``w m`` for
    ``1 / (w m)``) is not centred on label sets with m_S > 1 and gave a bound above it."""
    import ufm.certificate_dual as cd

    if not tilt:
        monkeypatch.setattr(cd, "_tilt", lambda *a, **k: None)
    for rho in (0.8, 4.0):
        problem = _problem(name, rho, loss)
        inf_b, _ = ref.inf_F_at_origin(problem)
        c = _weights(problem)
        design = problem.design
        for Pbar in (np.full((problem.K, design.G), 1.0 / problem.K), rng.dirichlet(np.ones(problem.K), design.G).T,
                     rng.dirichlet(0.2 * np.ones(problem.K), design.G).T):
            D, t, Dir = cd.dual_point(problem, Pbar)
            assert np.abs(Dir @ c).max() <= 1e-12 * max(1.0, np.abs(Dir).max()), (name, loss, tilt, Dir @ c)
            assert D <= inf_b + 1e-13 * inf_b, (name, loss, tilt, rho, D, inf_b)


@pytest.mark.parametrize("name", ["imb-single", "imb-pairs", "absent-class"])
def test_penalised_bias_bound_is_tight_where_the_bias_is_not_zero(name):
    """lam_b > 0 on an imbalanced design: the optimal bias is not 0, so the optimal dual point
    has Gamma 1 = lam_b b* != 0. The certificate at an accurate solve must be tight (it must not
    centre the direction, which is only needed for a free bias: a bound forced to Gamma 1 = 0
    stays below min F by a margin here)."""
    import ufm

    design = DESIGNS[name]
    problem = UFMProblem(design, design.K, 1e-2, 1e-2, 0.5)
    r = ufm.solve(problem, rng=0)
    assert np.abs(r.b).max() > 1e-3  # the bias is not zero: the case that matters
    cert = certify(problem, r.W, r.H, r.b)
    assert cert.rel_gap <= 1e-10, (name, cert.rel_gap)


@pytest.mark.parametrize("bias,lam_b", [(False, 0.0), (True, 0.3), (True, 0.0)])
def test_the_bound_at_gamma_zero_when_no_direction_helps(bias, lam_b):
    """Pbar = y/m (the softmax already at the labels): every candidate direction is 0, and the
    bound is that of Gamma = 0, sum_S n_S m_S log(m_S) / N for PAL (q_S = y_S / m_S), returned
    with t = 0 and a zero direction (an array: callers build q = y/m + t Dir from it)."""
    from ufm.certificate_dual import dual_point

    design = DESIGNS["imb-single-pairs"]
    problem = UFMProblem(design, design.K, 0.1, 0.1, lam_b, bias=bias)
    n = np.asarray(design.group_counts, dtype=float)
    m = np.asarray(design.group_multiplicity, dtype=float)
    base = design.Yg / m
    D, t, Dir = dual_point(problem, base.copy())
    assert isinstance(Dir, np.ndarray) and Dir.shape == base.shape and not Dir.any()
    assert t == 0.0
    assert D == pytest.approx(float(n * m @ np.log(m)) / problem.N, rel=1e-14, abs=1e-300)
    assert D > 0  # the pairs (m = 2) make it positive: a sign error in it shows
