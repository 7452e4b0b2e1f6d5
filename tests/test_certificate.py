"""The certificate (docs/theory.md section 5): a valid lower bound everywhere, tight at the optimum.

Validity is tested against quantities computed independently of the certificate: ``F``
at the same point, ``min F`` from L-BFGS at ``d >= K`` (where ``min F = min C``), the
theorem's ``min phi``, and a direct per-sample implementation of the theory's dual point
(no grouping, no tilting), which the certificate must never do worse than.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import xlogy

from ufm.certificate import (
    _project_simplex,
    _snap_spectrum,
    _spectral_norm,
    certify,
    convex_value,
    dual_bound,
    loss_and_group_softmax,
    lower_bound_from_logits,
)
from ufm.designs import balanced, from_counts, imbalanced_pairs, imbalanced_single, random_subset
from ufm.exceptions import UFMError
from ufm.objectives.full import value_and_grad
from ufm.problem import UFMProblem
from ufm.solvers import solve
from ufm.theory import predict


def spec_bound(problem: UFMProblem, W: np.ndarray, H: np.ndarray, b: np.ndarray) -> float:
    """The plain dual point of docs/theory.md section 5, written with the opposite sign of
    ``Gamma`` (``D = -L*(-Gamma) - ...``): ``Gamma = -t grad L(X)``, ``t = min(1, mu/||grad L||_2)``,
    per sample; for ``lam_b = 0`` with a free bias the gradient is centred and ``t`` further
    limited to keep every ``q_i`` in the simplex. Returns ``D``."""
    design = problem.design
    Y, m, N = design.Y, design.m, problem.N
    w = np.ones(N) if problem.loss == "pal" else 1.0 / m
    X = W @ H + (b[:, None] if problem.bias else 0.0)
    E = np.exp(X - X.max(axis=0))
    Pm = E / E.sum(axis=0)
    Dm = Pm * m - Y
    free = problem.bias and problem.lam_b == 0
    if free:
        r = (Dm * w).sum(axis=1) / N
        Dm = Dm - r[:, None] / w[None, :]
    grad = Dm * (w / N)
    t = min(1.0, problem.mu / np.linalg.norm(grad, 2))
    if free:
        step = Dm / m
        neg = step < 0
        if np.any(neg):
            t = min(t, float(np.min((Y / m)[neg] / -step[neg])))
    Q = np.clip((Y + t * Dm) / m, 0.0, None)
    lower = -float(((w * m) @ xlogy(Q, Q).sum(axis=0)) / N)
    if problem.bias and problem.lam_b > 0:
        g1 = t * grad.sum(axis=1)
        lower -= float(g1 @ g1) / (2 * problem.lam_b)
    return lower


PROBLEMS = [
    UFMProblem(balanced(4, "1:3,2:1"), 5, 5e-3, 5e-3, 1e-2),
    UFMProblem(balanced(5, "1:2,2:1,3:1"), 6, 2e-3, 8e-3, 0.0),  # free bias, lam_b = 0
    UFMProblem(balanced(5, "1:2,2:1"), 5, 5e-3, 2e-3, 0.0, bias=False),
    UFMProblem(imbalanced_pairs(5, 3, heavy_count=5), 6, 5e-3, 5e-3, 1e-3),
    UFMProblem(imbalanced_single(4, [9, 4, 2, 1]), 4, 5e-3, 5e-3, 0.0),
    UFMProblem(balanced(4, "1:3,2:1,4:2"), 4, 5e-3, 2e-3, 1e-2, loss="pal-normalized"),
    UFMProblem(random_subset(6, 5, max_multiplicity=3, count=(1, 3), rng=3), 6, 3e-3, 3e-3, 0.0),
]
IDS = ["balanced", "free-bias", "no-bias", "imb-pairs", "imb-single-free", "normalized", "random"]


@pytest.fixture(scope="module")
def optima() -> dict[int, object]:
    """L-BFGS solutions at d >= K (where min F = min C), one per problem."""
    return {i: solve(p, "lbfgs", rng=i) for i, p in enumerate(PROBLEMS)}


@pytest.mark.parametrize("i", range(len(PROBLEMS)), ids=IDS)
def test_tight_at_the_global_optimum(i, optima):
    """At a global minimiser (d >= K) the certified relative gap is at float64 level."""
    problem, res = PROBLEMS[i], optima[i]
    cert = certify(problem, res.W, res.H, res.b)
    assert cert.objective == pytest.approx(res.fun, rel=1e-13, abs=0)
    assert cert.lower_bound <= cert.objective + 1e-13 * abs(cert.objective)
    assert cert.rel_gap < 1e-9, (problem.describe(), cert)
    assert cert.t == pytest.approx(1.0, rel=1e-4, abs=0)


@pytest.mark.parametrize("i", range(len(PROBLEMS)), ids=IDS)
def test_valid_and_no_weaker_than_the_spec_point_at_random_points(i, optima, rng):
    """At random points of several scales: ``D <= F`` there, ``D <= min F``, and ``D`` is at
    least the bound of the theory's literal (ungrouped, centred) dual point."""
    problem, res = PROBLEMS[i], optima[i]
    min_F = res.fun
    for scale in (0.01, 0.3, 1.0, 3.0):
        W = scale * rng.standard_normal((problem.K, problem.d))
        H = scale * rng.standard_normal((problem.d, problem.N))
        b = scale * rng.standard_normal(problem.K)
        cert = certify(problem, W, H, b)
        F = value_and_grad(problem, W, H, b)[0]
        assert math.isfinite(cert.lower_bound)
        assert cert.lower_bound <= F + 1e-13 * abs(F)
        assert cert.lower_bound <= min_F + 1e-12 * abs(min_F), (problem.describe(), scale)
        assert cert.lower_bound >= spec_bound(problem, W, H, b) - 1e-13 * abs(min_F)


@pytest.mark.parametrize("i", [0, 1, 2], ids=IDS[:3])
def test_valid_near_the_optimum(i, optima, rng):
    """Small perturbations of the optimum: the bound stays below min F and the gap is
    of second order in the perturbation."""
    problem, res = PROBLEMS[i], optima[i]
    for eps in (1e-2, 1e-4):
        W = res.W + eps * rng.standard_normal(res.W.shape)
        H = res.H + eps * rng.standard_normal(res.H.shape)
        b = res.b + eps * rng.standard_normal(res.b.shape)
        cert = certify(problem, W, H, b)
        assert cert.lower_bound <= res.fun + 1e-12 * abs(res.fun)
        assert cert.rel_gap < 1e3 * eps**2 + 1e-10


def test_below_the_theorem_and_the_trivial_value(rng):
    """Below ``min phi`` (the theorem's optimum) at random points, in both regimes."""
    for lam in (5e-3, 0.3):
        problem = UFMProblem(balanced(5, "1:2,2:2"), 4, lam, lam, 1e-2)
        pred = predict(problem)
        for _ in range(5):
            W = rng.standard_normal((5, 4))
            H = rng.standard_normal((4, problem.N))
            cert = certify(problem, W, H, rng.standard_normal(5))
            assert cert.lower_bound <= pred.value + 1e-12 * pred.value


def test_grouped_and_per_sample_logits_agree(rng):
    """``lower_bound_from_logits`` on one column per label set equals the bound on the
    expanded per-sample logits; ``convex_value`` likewise."""
    problem = UFMProblem(balanced(5, "1:3,2:2"), 5, 5e-3, 5e-3, 1e-2)
    Zg = rng.standard_normal((5, problem.design.G))
    b = rng.standard_normal(5)
    Z = Zg[:, problem.design.group_index]
    Dg, tg = lower_bound_from_logits(problem, Zg + b[:, None])
    Ds, ts = lower_bound_from_logits(problem, Z + b[:, None])
    assert Dg == pytest.approx(Ds, rel=1e-12, abs=1e-14)
    assert tg == pytest.approx(ts, rel=1e-10, abs=1e-14)
    assert convex_value(problem, Zg, b) == pytest.approx(convex_value(problem, Z, b), rel=1e-12, abs=0)
    L, Pbar = loss_and_group_softmax(problem, Z + b[:, None])
    assert L == pytest.approx(value_and_grad(problem, np.eye(5), Z, b)[0]
                              - 0.5 * problem.lam_W * 5 - 0.5 * problem.lam_H * np.vdot(Z, Z)
                              - 0.5 * problem.lam_b * b @ b, rel=1e-12, abs=0)
    assert np.allclose(Pbar.sum(axis=0), 1.0, rtol=0, atol=1e-14)


def test_free_bias_dual_point_has_zero_bias_gradient(rng):
    """With ``lam_b = 0`` the dual point is tilted so that ``Gamma 1 = 0``; far from the
    optimum it still gives a finite bound, better than the theory's centred point."""
    problem = UFMProblem(balanced(4, "1:3,2:1"), 4, 5e-3, 5e-3, 0.0)
    W = 2 * rng.standard_normal((4, 4))
    H = 2 * rng.standard_normal((4, problem.N))
    b = 5 * rng.standard_normal(4)
    cert = certify(problem, W, H, b)
    assert cert.lower_bound > spec_bound(problem, W, H, b)
    # the bound does not depend on a common shift of the bias (the loss does not)
    cert2 = certify(problem, W, H, b + 7.0)
    assert cert2.lower_bound == pytest.approx(cert.lower_bound, rel=1e-10, abs=0)


def test_class_in_no_label_set_with_free_bias(rng):
    """A class that no sample carries, free bias: the bound is valid (``min C`` is an
    infimum there) and the dual gives those classes zero probability."""
    design = from_counts(4, {(0,): 3, (1,): 2, (0, 1): 2, (2,): 1})  # class 3 never occurs
    problem = UFMProblem(design, 4, 5e-3, 5e-3, 0.0)
    for _ in range(3):
        W = rng.standard_normal((4, 4))
        H = rng.standard_normal((4, problem.N))
        b = rng.standard_normal(4)
        cert = certify(problem, W, H, b)
        F = value_and_grad(problem, W, H, b)[0]
        assert math.isfinite(cert.lower_bound) and cert.lower_bound <= F


def test_d_below_K_minus_1_shows_the_relaxation_gap():
    """At ``d = 2 < K-1`` the nonconvex optimum is above ``min C``: the certificate says
    so (a large gap) while its bound stays below ``min C = min phi``."""
    problem = UFMProblem(balanced(5, "1:3,2:2"), 2, 5e-3, 5e-3, 1e-2)
    res = solve(problem, "lbfgs", rng=0)
    cert = certify(problem, res.W, res.H, res.b)
    min_C = predict(UFMProblem(problem.design, 5, 5e-3, 5e-3, 1e-2)).value  # min C ignores d
    assert cert.rel_gap > 0.1
    assert cert.lower_bound <= min_C + 1e-12 * min_C
    assert res.fun > min_C * (1 + 0.1)


def test_refusals():
    problem = UFMProblem(balanced(3, "1:2"), 2, 1e-2, 1e-2, loss="bce")
    with pytest.raises(UFMError, match="pick-all-label"):
        certify(problem, np.zeros((3, 2)), np.zeros((2, 6)), np.zeros(3))
    problem = UFMProblem(balanced(3, "1:2"), 2, 1e-2, 1e-2)
    H = np.zeros((2, 6))
    H[0, 0] = np.nan
    with pytest.raises(UFMError, match="non-finite"):
        certify(problem, np.zeros((3, 2)), H, np.zeros(3))
    with pytest.raises(UFMError, match="shape"):
        certify(problem, np.zeros((3, 2)), np.zeros((2, 5)), np.zeros(3))
    with pytest.raises(UFMError, match="Logits"):
        lower_bound_from_logits(problem, np.zeros((3, 4)))


def test_dual_bound_at_t0_is_the_loss_floor():
    """``Pbar = y/m`` (the dual point 0) gives ``D = (1/N) sum_i w_i m_i log m_i``: the bound
    on ``L`` alone."""
    problem = UFMProblem(balanced(4, "1:1,2:2,3:1"), 3, 1e-2, 1e-2, 1e-2)
    design = problem.design
    D, _ = dual_bound(problem, design.Yg / design.group_multiplicity)
    expected = float(design.group_counts @ (design.group_multiplicity * np.log(design.group_multiplicity))) / problem.N
    assert D == pytest.approx(expected, rel=1e-14, abs=1e-15)


@pytest.mark.parametrize("shape", [(5, 40), (7, 7), (30, 4), (200, 900)])
def test_gram_spectral_norm_matches_the_svd(shape, rng):
    """The Gram-matrix spectral norm (the certificate's feasibility check) agrees with
    LAPACK's SVD to float64 rounding, for wide, square and tall matrices and for matrices
    with a repeated top singular value (as at the ETF optimum)."""
    K, G = shape
    A = rng.standard_normal(shape) * 10 ** rng.uniform(-3, 3)
    ref = np.linalg.svd(A, compute_uv=False)[0]
    assert _spectral_norm(A) == pytest.approx(ref, rel=1e-14, abs=0)
    r = min(K, G)
    U, _, Vt = np.linalg.svd(rng.standard_normal(shape), full_matrices=False)
    s = np.r_[np.full(r - 1, 2.5), 0.5]  # top singular value with multiplicity r - 1
    B = (U * s) @ Vt
    # measured: the Gram route is off by <= 4.5e-15 relative here (K = 200), the SVD by 9e-16
    assert _spectral_norm(B) == pytest.approx(np.linalg.svd(B, compute_uv=False)[0], rel=1e-14, abs=0)
    assert _spectral_norm(np.zeros(shape)) == 0.0


@pytest.mark.parametrize("shape", [(6, 50), (8, 5)])
def test_snap_spectrum_matches_the_svd_construction(shape, rng):
    """Snapping through the Gram matrix gives the SVD construction ``U min-or-mu(S) V^T``:
    singular values ``>= mu/2`` become ``mu``, the others and the singular vectors stay."""
    K, G = shape
    c = rng.uniform(0.1, 1.0, G)
    n = rng.integers(1, 9, G).astype(float)
    scale = c / np.sqrt(n)
    mu = 0.7
    U, _, Vt = np.linalg.svd(rng.standard_normal(shape), full_matrices=False)
    s = np.linspace(1.6, 0.05, min(shape))  # some above mu/2, some below
    M = (U * s) @ Vt
    out = _snap_spectrum(M / scale, c, n, mu)
    expected = (U * np.where(s >= mu / 2, mu, s)) @ Vt
    np.testing.assert_allclose(out * scale, expected, rtol=0, atol=1e-13)
    again = _snap_spectrum(expected / scale, c, n, mu)  # already snapped: (almost) a fixed point
    assert again is None or np.allclose(again * scale, expected, rtol=0, atol=1e-13)


def test_project_simplex_matches_a_per_column_reference(rng):
    """The simplex projection against a bisection on the threshold, column by column;
    columns already in the simplex come back unchanged."""
    K, G = 7, 60
    V = rng.standard_normal((K, G))
    V[:, :20] = rng.dirichlet(np.ones(K), 20).T  # already in the simplex
    out = _project_simplex(V)
    np.testing.assert_array_equal(out[:, :20], V[:, :20])
    for g in range(G):
        v = V[:, g]
        lo, hi = v.min() - 1.0, v.max()
        for _ in range(200):  # sum(max(v - theta, 0)) = 1, decreasing in theta
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if np.maximum(v - mid, 0).sum() > 1 else (lo, mid)
        np.testing.assert_allclose(out[:, g], np.maximum(v - 0.5 * (lo + hi), 0), rtol=0, atol=1e-13)
    assert np.all(out >= 0)
    np.testing.assert_allclose(out.sum(axis=0), 1.0, rtol=0, atol=1e-14)


@pytest.mark.parametrize("profile", [{3: 1}, {1: 1, 3: 2}, {2: 1}])
def test_degenerate_designs_with_a_free_bias(profile, rng):
    """Designs whose optimum needs (near-)constant logits, free bias, ``lam_b = 0``: at
    random points of scales 1e-3..30 the bound never exceeds ``min C`` (regression: a
    scaling ``t`` of 6e14 once amplified rounding into a bound 5e-3 above ``3 log 3``)."""
    K = 3 if 3 in profile else 4
    problem = UFMProblem(balanced(K, profile), 2, 0.1, 0.05, 0.0)
    min_C = predict(UFMProblem(problem.design, K, 0.1, 0.05, 0.0)).value
    for _ in range(200):
        scale = 10 ** rng.uniform(-3, 1.5)
        W = scale * rng.standard_normal((K, 2))
        H = scale * rng.standard_normal((2, problem.N))
        cert = certify(problem, W, H, scale * rng.standard_normal(K))
        assert cert.lower_bound <= min_C + 1e-12 * abs(min_C), (profile, scale, cert)


# -- convex_value against an independent route (mutation testing, issue 28) ------------------
def _balanced_factors(problem: UFMProblem, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``W H = Z`` with ``lam_W ||W||^2 = lam_H ||H||^2 = mu ||Z||_*``: the factorisation at
    which ``F(W, H, b) = C(Z, b)`` (docs/theory.md section 5), from LAPACK's SVD."""
    U, s, Vt = np.linalg.svd(Z, full_matrices=False)
    r = (problem.lam_H / problem.lam_W) ** 0.25
    return U * np.sqrt(s) * r, (np.sqrt(s)[:, None] * Vt) / r


def _bce_value(problem: UFMProblem, W: np.ndarray, H: np.ndarray, b: np.ndarray) -> float:
    """``F`` for the BCE loss from its definition: ``(1/N) sum_ik log(1 + e^x) - y x``."""
    X = W @ H + b[:, None]
    loss = float((np.log1p(np.exp(-np.abs(X))) + np.maximum(X, 0.0) - problem.design.Y * X).sum()) / problem.N
    return loss + 0.5 * (problem.lam_W * float((W * W).sum()) + problem.lam_H * float((H * H).sum())
                         + problem.lam_b * float(b @ b))


@pytest.mark.parametrize("loss", ["pal", "bce"])
def test_convex_value_is_F_at_the_balanced_factorisation(loss, rng):
    """``C(Z, b) = F(W, H, b)`` at the balanced factors of ``Z`` (``F`` from tests/reference.py
    or the BCE definition, the nuclear norm never formed), for per-sample and grouped ``Z``,
    with and without ``b`` (None, or a bias-free problem, means ``b = 0``), full rank and rank 1
    (whose Gram matrix has eigenvalues ``0`` computed slightly negative), and float32 input
    (converted: the value is the float64 one of the same numbers)."""
    import reference as ref

    problem = UFMProblem(balanced(5, "1:2,2:1"), 5, 3e-2, 0.2, 0.4, loss=loss)
    design = problem.design
    value = ref.objective if loss == "pal" else _bce_value
    Zg_full = rng.standard_normal((5, design.G))
    Zg_rank1 = np.outer(rng.standard_normal(5), rng.standard_normal(design.G))
    b = rng.standard_normal(5)
    for Zg in (Zg_full, Zg_rank1, 0.05 * Zg_full):
        Z = Zg[:, design.group_index]
        W, H = _balanced_factors(problem, Z)
        expected = value(problem, W, H, b)
        assert convex_value(problem, Z, b) == pytest.approx(expected, rel=1e-13)
        assert convex_value(problem, Zg, b) == pytest.approx(expected, rel=1e-13)
        zero = value(problem, W, H, np.zeros(5))
        assert convex_value(problem, Z) == pytest.approx(zero, rel=1e-13)
        assert convex_value(problem, Zg, None) == pytest.approx(zero, rel=1e-13)
        no_bias = UFMProblem(problem.design, 5, 3e-2, 0.2, 0.4, bias=False, loss=loss)
        assert convex_value(no_bias, Z, b) == pytest.approx(value(no_bias, W, H, np.zeros(5)), rel=1e-13)
    Z32, b32 = Zg_full[:, design.group_index].astype(np.float32), b.astype(np.float32)
    W, H = _balanced_factors(problem, Z32.astype(np.float64))
    expected = value(problem, W, H, b32.astype(np.float64))
    assert convex_value(problem, Z32, b32) == pytest.approx(expected, rel=1e-13)
    assert convex_value(problem, Zg_full.astype(np.float32), b32) == pytest.approx(expected, rel=1e-13)


def test_convex_value_at_the_predicted_minimiser_is_the_theorems_value():
    """``C(W* H*, b*) = min phi`` (the theorem's value) at the predicted minimiser, both regimes."""
    from ufm.theory import predicted_minimizer

    for lam in (5e-3, 0.3):
        problem = UFMProblem(balanced(4, "1:2,2:1"), 4, lam, 2 * lam, 1e-2)
        W, H, b = predicted_minimizer(problem)
        assert convex_value(problem, W @ H, b) == pytest.approx(predict(problem).value, rel=1e-12)


def _tilt_cases(rng: np.random.Generator):
    """``(Pi, c, target)``: random label-set softmaxes, weights of total 0.01, 1 and 100,
    targets near and far from ``sum_S c_S Pi_S`` (far: Newton's full step overshoots), one
    with a class of target 0."""
    for scale in (0.01, 1.0, 100.0):
        for far in (False, True):
            K, G = 4, 6
            Pi = rng.dirichlet(np.full(K, 0.5), G).T
            if far:
                Pi[0] *= 1e-2
                Pi /= Pi.sum(axis=0)
            c = rng.uniform(0.1, 3.0, G)
            c *= scale / c.sum()
            target = scale * (np.array([0.97, 0.01, 0.01, 0.01]) if far else rng.dirichlet(np.ones(K)))
            yield Pi, c, target
    Pi = rng.dirichlet(np.ones(4), 5).T
    yield Pi, np.full(5, 0.2), np.array([0.5, 0.0, 0.3, 0.2])
    gen = np.random.default_rng(0)  # sizes 3..11 x 2..39, weights of total 1e-3..1e3
    for _ in range(10):
        K, G = int(gen.integers(3, 12)), int(gen.integers(2, 40))
        Pi = gen.dirichlet(np.full(K, gen.choice([0.1, 0.5, 2.0])), G).T
        if gen.random() < 0.5:
            Pi[gen.integers(K)] *= 10 ** gen.uniform(-4, 0)
            Pi /= Pi.sum(axis=0)
        scale = 10 ** gen.uniform(-3, 3)
        c = gen.uniform(0.01, 3, G)
        c *= scale / c.sum()
        yield Pi, c, scale * gen.dirichlet(np.full(K, gen.choice([0.3, 1.0, 5.0])))


def test_tilt_solves_its_equations(rng):
    """``_tilt`` (the free-bias dual point): every returned ``pi_S`` is in the simplex, is
    ``Pi_S * exp(beta)`` up to normalisation with one ``beta`` for all label sets (the log
    ratios ``log(pi / Pi)`` differ between columns by a constant per column), and meets
    ``sum_S c_S pi_S = target`` to ``1e-10 * sum c`` (its acceptance test); classes of target 0
    get 0. Checked on the converged tilt and on every early stop (``max_iter`` 1..8), which
    must be None unless it meets the equations."""
    from ufm.certificate_dual import _tilt

    for Pi, c, target in _tilt_cases(rng):
        scale = c.sum()
        for max_iter in (100, 1, 2, 3, 4, 5, 6, 8):
            out = _tilt(Pi, c, target, max_iter=max_iter)
            if max_iter == 100:
                assert out is not None, (scale, target)
            if out is None:
                continue
            assert np.all(out >= 0)
            np.testing.assert_allclose(out.sum(axis=0), 1.0, rtol=0, atol=1e-13)
            assert np.abs(out @ c - target).sum() <= 1e-10 * scale, (scale, max_iter)
            present = target > 0
            np.testing.assert_array_equal(out[~present], 0.0)
            R = np.log(out[present] / Pi[present])
            R -= R[0]  # beta_j - beta_0, the same in every column
            np.testing.assert_allclose(R, R[:, :1] * np.ones_like(R), rtol=0, atol=1e-7)
    # a class with target > 0 that no column can carry: no tilt exists
    Pi = rng.dirichlet(np.ones(3), 4).T
    Pi = np.vstack([Pi, np.zeros(4)])
    assert _tilt(Pi, np.full(4, 0.25), np.array([0.4, 0.3, 0.2, 0.1])) is None


def test_tilt_exists_and_is_found_for_hard_positive_cases():
    """Every column of ``Pi`` positive (down to 1e-6) and every target positive (down to
    ``1e-4 sum c``, also next to a vertex of the simplex): a tilt exists (``beta -> sum_S c_S
    softmax(log Pi_S + beta)`` maps onto the open simplex scaled by ``sum c``), so ``_tilt``
    must return one that meets its equations -- 400 cases, sizes 2..11 x 2..39, sum c from
    1e-3 to 1e3. About one in ten needs the line search's float64 fallback (the full Newton
    step taken where it still reduces the residual); stopping there instead, or trying
    ``s = 2`` first, fails some of them."""
    from ufm.certificate_dual import _tilt

    gen = np.random.default_rng(12345)
    done = 0
    while done < 400:
        K, G = int(gen.integers(2, 12)), int(gen.integers(2, 40))
        Pi = gen.dirichlet(np.full(K, gen.choice([0.05, 0.3, 1.0, 5.0])), G).T
        c = gen.uniform(0.01, 3, G)
        c *= 10 ** gen.uniform(-3, 3) / c.sum()
        target = c.sum() * gen.dirichlet(np.full(K, gen.choice([0.1, 0.3, 1.0, 5.0])))
        if Pi.min() < 1e-6 or target.min() < 1e-4 * c.sum():
            continue
        done += 1
        out = _tilt(Pi, c, target)
        assert out is not None, (K, G, done)
        assert np.all(out >= 0) and np.abs(out @ c - target).sum() <= 1e-10 * c.sum()
        np.testing.assert_allclose(out.sum(axis=0), 1.0, rtol=0, atol=1e-13)


def test_tilt_keeps_a_solution_when_the_newton_step_is_useless(monkeypatch):
    """A Newton step that makes things worse (LAPACK's solve is not trusted: once the equations
    hold to 1e-12 it returns the step plus a unit vector orthogonal to the gradient -- still a
    descent direction, but one that no step length down to 1e-6 can use) must not lose a tilt
    that already meets the acceptance test: the line search's float64 fallback refuses the
    full step and the iteration stops with the point it has -- not None, and not after
    accepting the step (then going on: Newton would pull it back, and be spoilt again)."""
    from ufm.certificate_dual import _tilt

    real = np.linalg.solve
    calls = []

    def spoilt_when_close(A, r):
        step = real(A, r)
        calls.append(float(np.abs(r).sum()))
        if calls[-1] > 1e-12 * scale:
            return step
        u = np.zeros_like(r)
        u[0], u[1] = 1.0, -1.0
        return step + u - (u @ r) / (r @ r) * r  # + a unit-size move with no first-order effect

    gen = np.random.default_rng(3)
    Pi = gen.dirichlet(np.ones(5), 12).T
    c = gen.uniform(0.1, 1.0, 12)
    scale = float(c.sum())
    target = scale * gen.dirichlet(np.ones(5))
    ref = _tilt(Pi, c, target)
    monkeypatch.setattr(np.linalg, "solve", spoilt_when_close)
    out = _tilt(Pi, c, target)
    spoilt = [v for v in calls if v <= 1e-12 * scale]
    assert len(spoilt) == 1 and calls[-1] == spoilt[0]  # handed out once, and the iteration stopped there
    assert out is not None and np.abs(out @ c - target).sum() <= 1e-10 * scale
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-10)


def test_tilt_goes_on_from_the_full_step_its_fallback_accepted(monkeypatch):
    """After the line search's float64 fallback accepts the full step, the iteration must go on
    from that point (``beta + step``, whose ``f`` and ``T`` it keeps), not from a point the step
    was not evaluated at. LAPACK's solve is not trusted; here it returns, in turn, a step
    ``2^30 (1, -1)`` far too long for any step length down to ``2^-20`` to pass the Armijo test
    (``f`` grows like ``0.24 |s| 2^30``) but whose full step still lowers the residual (the
    column saturates at ``(1, 0)``: residual 0.24 against 0.76), then exactly the rest of the
    way to ``beta = (1, -1)``, which solves the equations. One label set (``G = 1``): the tilt
    is ``target / c`` in closed form."""
    from ufm.certificate_dual import _tilt

    real = np.linalg.solve
    L = 2.0**30
    steps = [np.array([L, -L]), np.array([1.0 - L, L - 1.0])]  # beta: 0 -> (L, -L) -> (1, -1), exact
    calls = []

    def scripted(A, r):
        calls.append(float(np.abs(r).sum()))
        return steps[len(calls) - 1].copy() if len(calls) <= len(steps) else real(A, r)

    Pi = np.array([[0.5], [0.5]])
    c = np.array([1.0])
    e = np.exp(np.array([1.0, -1.0]))
    target = e / e.sum()  # the tilt of (1/2, 1/2) by beta = (1, -1)
    monkeypatch.setattr(np.linalg, "solve", scripted)
    out = _tilt(Pi, c, target)
    assert calls[0] == pytest.approx(2 * (target[0] - 0.5), rel=1e-15)  # residual at beta = 0
    assert calls[1] == pytest.approx(2 * (1.0 - target[0]), rel=1e-15)  # at the saturated (1, 0)
    assert len(calls) == 2  # the second step solved the equations: no third one was asked for
    assert out is not None
    np.testing.assert_allclose(out[:, 0], target / c[0], rtol=0, atol=1e-15)


def test_project_simplex_leaves_its_input_alone_and_rescales_positive_columns(rng):
    """The input is not written to, and a column with no negative entry but a sum != 1 is
    projected too (for positive entries: shifted by ``(sum - 1)/K`` while all stay positive)."""
    V = rng.standard_normal((5, 8))
    V[:, 0] = [0.4, 0.3, 0.35, 0.25, 0.2]  # sum 1.5, positive, far from the boundary
    before = V.copy()
    out = _project_simplex(V)
    np.testing.assert_array_equal(V, before)
    np.testing.assert_allclose(out[:, 0], before[:, 0] - 0.1, rtol=0, atol=1e-15)
    np.testing.assert_allclose(out.sum(axis=0), 1.0, rtol=0, atol=1e-14)


def _segment_parts(problem):
    """``(n_S, c_S, y_S / m_S)`` of a PAL problem: the counts, the entropy weights and the
    point ``t = 0`` of the dual segments (as ``dual_point`` forms them)."""
    design = problem.design
    n = design.group_counts.astype(float)
    m = design.group_multiplicity.astype(float)
    return n, n * m / problem.N, design.Yg / m


def _segment_reference(problem, Dir, base, c, n):
    """``(t_cap, D(t))`` of ``_best_on_segment`` from the definitions: ``t_cap`` the largest
    ``t <= 1`` with ``||Gamma||_2 <= mu`` (LAPACK's SVD) and ``base + t Dir >= 0``;
    ``D(t) = -sum_S c_S sum_j q log q - t^2 ||sum_S c_S Dir_S||^2 / (2 lam_b)``."""
    s1 = np.linalg.norm(Dir * (c / np.sqrt(n)), 2)
    t_cap = min(1.0, problem.mu / s1)
    neg = Dir < 0
    if neg.any():
        t_cap = min(t_cap, float(np.min(base[neg] / -Dir[neg])))
    pen = problem.bias and problem.lam_b > 0

    def D(t):
        Q = np.maximum(base + t * Dir, 0.0)
        v = -float(c @ xlogy(Q, Q).sum(axis=0))
        return v - (t * t * float(np.sum((Dir @ c) ** 2)) / (2 * problem.lam_b) if pen else 0.0)

    return t_cap, D


def test_segment_cap_is_the_largest_feasible_t(rng):
    """``_segment_cap`` against its definition (``_segment_reference``: LAPACK's SVD for the
    spectral limit, the entries of ``q`` for the simplex one): the spectral limit binding (small
    ``mu``), the simplex one (large ``mu``, long directions: an entry of ``q`` reaches 0 there
    exactly), and ``t = 1``; None for ``Dir = 0``."""
    from ufm.certificate_dual import _segment_cap

    seen = set()
    for lam in (5e-3, 5.0, 50.0):
        problem = UFMProblem(balanced(4, "1:2,2:1"), 3, lam, lam, 0.1)
        design = problem.design
        n, c, base = _segment_parts(problem)
        for scale in (0.05, 1.0, 3.0):
            Dir = scale * (rng.dirichlet(np.full(4, 0.7), design.G).T - base)
            t_cap = _segment_cap(problem.mu, Dir, base, c, n)
            ref, _ = _segment_reference(problem, Dir, base, c, n)
            assert t_cap == pytest.approx(ref, rel=1e-14), (lam, scale)
            q = base + t_cap * Dir
            s = np.linalg.norm(t_cap * Dir * (c / np.sqrt(n)), 2)
            binding = ("simplex" if q.min() <= 1e-15 else "spectral" if s >= problem.mu * (1 - 1e-12)
                       else "one" if t_cap == 1.0 else "?")
            seen.add(binding)
        assert _segment_cap(problem.mu, np.zeros_like(base), base, c, n) is None
    assert seen == {"simplex", "spectral", "one"}, seen


@pytest.mark.parametrize("lam,lam_b,bias", [(5e-3, 0.3, True), (5e-3, 1e-3, True), (0.5, 0.0, False),
                                            (5.0, 0.0, False), (5.0, 2e-2, True)])
def test_best_on_segment_is_the_best_point_of_the_segment(lam, lam_b, bias, rng):
    """Against the definitions and a 2001-point grid on ``[0, t_cap]``: ``t <= t_cap``, the
    returned ``D`` is ``D(t)``, and no grid point is better (concave ``D``: the maximiser);
    cases where the spectral cap binds, where the simplex cap binds (large ``mu``), where the
    bias penalty puts the maximum inside; ``Dir = 0`` gives ``(D(0), 0)``."""
    from ufm.certificate_dual import _best_on_segment

    problem = UFMProblem(balanced(4, "1:2,2:1"), 3, lam, lam, lam_b, bias=bias)
    design = problem.design
    n, c, base = _segment_parts(problem)
    for scale in (0.3, 1.0, 3.0):
        pi = rng.dirichlet(np.full(4, 0.7), design.G).T
        Dir = scale * (pi - base)
        D, t = _best_on_segment(problem, Dir, base, c, n)
        t_cap, Dref = _segment_reference(problem, Dir, base, c, n)
        assert 0 <= t <= t_cap * (1 + 1e-14)
        assert D == pytest.approx(Dref(t), rel=1e-13, abs=1e-15)
        grid = max(Dref(s) for s in np.linspace(0.0, t_cap, 2001))
        assert D >= grid - 1e-13 * abs(grid), (scale, t, t_cap)
    D, t = _best_on_segment(problem, np.zeros_like(base), base, c, n)
    assert t == 0.0 and D == pytest.approx(float(c @ np.log(design.group_multiplicity)), rel=1e-14)


def _entropy_slope(beta, t_cap=1.0):
    """Slope and curvature of ``f(t) = -t log t - (1-t) log(1-t) + beta t`` on ``[0, t_cap]``
    (maximiser ``expit(beta)``; slope ``-inf`` at ``t = 1``); refuses points outside."""
    calls = []

    def slope(t):
        assert 0.0 <= t <= t_cap, t
        calls.append(t)
        with np.errstate(divide="ignore"):
            g = float(np.log1p(-t) - np.log(t) + beta)
        return g, (-1.0 / (t * (1.0 - t)) if 0.0 < t < 1.0 else -math.inf)

    return slope, calls


@pytest.mark.parametrize("beta", np.linspace(-6.0, 6.0, 25))
def test_maximise_concave_finds_the_maximiser_by_newton(beta):
    """The segment search against the closed form ``expit(beta)``: to 2e-16, inside its
    bracket (to an ulp: the slope's own rounding), never evaluated outside ``[0, 1]``, and
    in few evaluations -- Newton's, not the 45 of a bisection to ``1e-13``: at most 8 where
    the maximiser is in ``[0.1, 0.9]``, at most 15 out to ``expit(6)``."""
    from scipy.special import expit

    from ufm.certificate_dual import _maximise_concave

    slope, calls = _entropy_slope(beta)
    lo, hi, t, evals = _maximise_concave(slope, 1.0)
    star = float(expit(beta))
    assert abs(t - star) <= 2e-16
    assert lo - 1e-16 <= star <= hi + 1e-16 and lo <= t <= hi
    assert evals == len(calls)
    assert evals <= (8 if abs(beta) <= 2.0 else 15), evals


def test_maximise_concave_at_the_end_of_its_interval_and_on_flat_stretches():
    """``t_cap`` itself after one evaluation when the slope there is >= 0 (also exactly 0);
    a start not at the midpoint of ``[0, t_cap]`` is caught (``t_cap != 1``); a stretch of
    zero curvature (no Newton step there: bisection) still finds the root; a slope without
    a usable curvature bisects to ``max_iter`` evaluations when ``rtol = 0``."""
    from ufm.certificate_dual import _maximise_concave

    slope, calls = _entropy_slope(2.0, t_cap=0.5)  # maximiser 0.88 beyond t_cap
    assert _maximise_concave(slope, 0.5) == (0.5, 0.5, 0.5, 1)
    assert calls == [0.5]

    def linear(t):  # f = 0.75 t - t^2/2: slope exactly 0 at t = 0.75
        assert 0.0 <= t <= 0.75
        return 0.75 - t, -1.0

    assert _maximise_concave(linear, 0.75) == (0.75, 0.75, 0.75, 1)
    slope, calls = _entropy_slope(-1.0, t_cap=0.4)  # maximiser 0.2689 inside [0, 0.4]
    lo, hi, t, evals = _maximise_concave(slope, 0.4)
    assert calls[:2] == [0.4, 0.2] and abs(t - 0.2689414213699951) <= 1e-16

    def flat(t):  # f' = 0.3 on [0, 0.6], then 0.3 - 5 (t - 0.6): root 0.66, f'' = 0 first
        assert 0.0 <= t <= 1.0
        return (0.3, 0.0) if t <= 0.6 else (0.3 - 5.0 * (t - 0.6), -5.0)

    lo, hi, t, evals = _maximise_concave(flat, 1.0)
    assert abs(t - 0.66) <= 1e-15 and lo <= t <= hi and evals <= 10

    calls = []

    def no_curvature(t):  # f' = +1 below 0.3 and -1 above (never 0), f'' unknown
        calls.append(t)
        return (1.0 if t < 0.3 else -1.0), math.nan

    lo, hi, t, evals = _maximise_concave(no_curvature, 1.0, rtol=0.0)
    assert evals == len(calls) == 60 and lo < 0.3 <= hi and hi - lo <= 1e-16
    calls.clear()
    lo, hi, t, evals = _maximise_concave(no_curvature, 1.0)
    assert 40 <= evals == len(calls) <= 46 and hi - lo <= 1e-13  # bisection to rtol = 1e-13: 2^-44
    calls.clear()
    assert _maximise_concave(no_curvature, 1.0, max_iter=7)[3] == len(calls) == 7


def test_maximise_concave_stops_exactly_at_its_tolerances():
    """The stopping rules at their boundaries, with exactly representable numbers (powers of
    two): a bracket of length exactly ``rtol t_cap`` stops (``t_cap`` 1 and 2); a Newton step
    of length exactly ``rtol t_cap`` is the last; a slope of exactly 0 ends with the root as
    the upper end of the bracket (``f'(lo) > 0 >= f'(hi)``)."""
    from ufm.certificate_dual import _maximise_concave

    def step_slope(root):  # f' = +1 below the root, -1 from it on; no curvature
        return lambda t: ((1.0 if t < root else -1.0), math.nan)

    # evaluations at 1 (f' < 0), 0.5 (hi), 0.25 (lo): the bracket [0.25, 0.5] has length 0.25
    assert _maximise_concave(step_slope(0.3), 1.0, rtol=0.25) == (0.25, 0.5, 0.25, 3)
    # the same scaled by t_cap = 2: [0.5, 1.0] has length 0.5 = rtol t_cap
    assert _maximise_concave(step_slope(0.6), 2.0, rtol=0.25) == (0.5, 1.0, 0.5, 3)

    def line(a):  # f = a t - t^2 / 2: f' = a - t, f'' = -1 (Newton lands on the root)
        return lambda t: (a - t, -1.0)

    # t_cap = 2: f'(2) < 0, then t = 1 with f' = 0.5: the Newton step 0.5 = rtol t_cap is the last
    assert _maximise_concave(line(1.5), 2.0, rtol=0.25) == (1.0, 2.0, 1.5, 2)
    # t = 0.5 with f' = -0.25: hi = 0.5, then the Newton point 0.25 has f' = 0 exactly
    assert _maximise_concave(line(0.25), 1.0, rtol=1e-13) == (0.0, 0.25, 0.25, 3)


@pytest.mark.parametrize("lam_b, bias, starts", [(1e-2, True, 1), (0.0, False, 1), (0.0, True, 2)])
def test_dual_point_snaps_each_start_three_times(lam_b, bias, starts, rng, monkeypatch):
    """The cost of ``dual_point``: each start direction (``Pbar - y/m``; with a free bias and
    ``lam_b = 0`` its centring and its tilt) gets three rounds of snap / project (/ tilt), each
    one eigendecomposition of the ``K x K`` Gram matrix and one segment search, and each
    round starts from the previous round's candidate. Away from an optimum the snap never
    leaves a direction unchanged, so all three rounds run: ``3`` snaps and ``1 + 3`` segments
    per start, not more (a fourth round would only add one more candidate at the same cost).
    The bound stays below ``F`` at the point (``value_and_grad``)."""
    import ufm.certificate_dual as cd

    snaps, segments = [], []
    snap, segment = cd._snap_spectrum, cd._best_on_segment
    monkeypatch.setattr(cd, "_snap_spectrum",
                        lambda d, c, n, mu: snaps.append((d, snap(d, c, n, mu))) or snaps[-1][1])
    monkeypatch.setattr(cd, "_best_on_segment",
                        lambda problem, d, base, c, n: segments.append(d) or segment(problem, d, base, c, n))
    problem = UFMProblem(imbalanced_single(4, [9, 4, 2, 1]), 4, 5e-3, 5e-3, lam_b, bias=bias)
    for scale in (0.3, 3.0):
        snaps.clear()
        segments.clear()
        W = scale * rng.standard_normal((4, 4))
        H = scale * rng.standard_normal((4, problem.N))
        b = scale * rng.standard_normal(4) if bias else np.zeros(4)
        X = W @ H + b[:, None]
        _, Pbar = loss_and_group_softmax(problem, X)
        D, _, _ = cd.dual_point(problem, Pbar)
        assert all(out is not None for _, out in snaps)
        assert len(snaps) == 3 * starts and len(segments) == 4 * starts
        for s in range(starts):  # round r + 1 snaps the candidate of round r
            for r in range(2):
                np.testing.assert_array_equal(snaps[3 * s + r + 1][0], segments[starts + 3 * s + r])
        assert D <= value_and_grad(problem, W, H, b)[0]


def test_segment_search_takes_newton_steps_on_real_segments(rng, monkeypatch):
    """The slope and curvature ``_best_on_segment`` hands the search are the entropy's (with
    the bias penalty): on segments whose maximum is inside, Newton converges within 8
    evaluations (a wrong curvature falls back to the 45 of a bisection), also where ``Dir``
    has zero entries (which add nothing to either)."""
    import ufm.certificate_dual as cd

    counts = []
    search = cd._maximise_concave
    monkeypatch.setattr(cd, "_maximise_concave",
                        lambda slope, t_cap: counts.append(search(slope, t_cap)) or counts[-1])
    for lam, lam_b, bias in [(0.5, 0.0, False), (5.0, 0.0, False), (5.0, 2e-2, True), (0.5, 0.0, True)]:
        problem = UFMProblem(balanced(4, "1:2,2:1"), 3, lam, lam, lam_b, bias=bias)
        design = problem.design
        n, c, base = _segment_parts(problem)
        for scale, fixed in ((1.0, False), (3.0, False), (1.0, True), (3.0, True)):
            counts.clear()
            pi = rng.dirichlet(np.full(4, 0.7), design.G).T
            if fixed:  # class 0 keeps its entry of base: zeros in Dir (as after a tilt)
                pi[1:] *= (1.0 - base[0]) / pi[1:].sum(axis=0)
                pi[0] = base[0]
            Dir = scale * (pi - base)
            D, t = cd._best_on_segment(problem, Dir, base, c, n)
            evals = counts[0][3]
            if evals > 1:  # the maximum is inside
                assert evals <= 8, (lam, lam_b, bias, scale, evals)


# -- certify's inputs, refusals and fields (survivors of the mutation run) ---------------------
def _small_problem(lam_b: float = 0.2, bias: bool = True) -> UFMProblem:
    return UFMProblem(balanced(3, {1: 2, 2: 1}), d=3, lam_W=0.3, lam_H=0.3, lam_b=lam_b, bias=bias)


def test_certify_names_the_argument_and_itself_in_its_refusals():
    p = _small_problem()
    W, H, b = np.zeros((3, 3)), np.zeros((3, p.N)), np.zeros(3)
    with pytest.raises(TypeError, match=r"The 'problem' argument of ufm\.certify must be a ufm\.UFMProblem"):
        certify("p", W, H, b)
    for name, args in (("W", (W.astype(complex), H, b)), ("H", (W, H.astype(complex), b)),
                       ("b", (W, H, b.astype(complex)))):
        with pytest.raises(UFMError, match=rf"^'{name}' given to certify is complex"):
            certify(p, *args)
    with pytest.raises(UFMError, match=r"^b must have shape \(K,\) = \(3,\); got \(4,\)\.$"):
        certify(p, W, H, np.zeros(4))


def test_certify_overflow_is_one_clear_error():
    """Finite entries whose product overflows: F is not finite, so no bound (and no RuntimeWarning,
    which the test configuration turns into an error)."""
    p = _small_problem()
    W = np.full((3, 3), 1e300)
    H = np.full((3, p.N), 1e300)
    with pytest.raises(UFMError, match=r"^F overflows float64 at this point \(max \|W\| = 1e\+300, "
                                       r"max \|H\| = 1e\+300\); no bound can be certified\.$"):
        certify(p, W, H, np.zeros(3))
    # the ridge alone overflows (H = 0: the logits and their softmax stay finite)
    with pytest.raises(UFMError, match=r"^F overflows float64 at this point \(max \|W\| = 1e\+200, max \|H\| = 0\)"):
        certify(p, np.full((3, 3), 1e200), np.zeros((3, p.N)), np.zeros(3))


@pytest.mark.parametrize("bias", [True, False])
def test_certify_fields_agree_with_each_other_and_an_independent_F(bias):
    """objective = F (tests/reference.py), gap = F - D, rel_gap = gap / |F| -- also for |F| < 1,
    where a floor of 1 in the denominator would show; without a bias a given b is ignored."""
    p = UFMProblem(balanced(3, {1: 2, 2: 1}), d=3, lam_W=1e-3, lam_H=1e-3, lam_b=1e-3, bias=bias)
    import reference as ref

    from ufm.theory import predicted_minimizer

    rng = np.random.default_rng(5)
    W0, H0, _ = predicted_minimizer(p)  # near the minimum, where F < 1 here
    W, H = W0 + 0.05 * rng.standard_normal(W0.shape), H0 + 0.05 * rng.standard_normal(H0.shape)
    b = 0.1 * rng.standard_normal(3)

    cert = certify(p, W, H, b)
    x = np.concatenate([W.ravel(), H.ravel()] + ([b] if bias else []))
    F = ref._F_and_grad(x, p)[0]
    assert cert.objective == pytest.approx(F, rel=1e-13)
    assert abs(F) < 1  # the case where the denominator matters
    assert cert.gap == pytest.approx(cert.objective - cert.lower_bound, rel=1e-15, abs=1e-300)
    assert cert.rel_gap == pytest.approx(cert.gap / abs(cert.objective), rel=1e-15)
