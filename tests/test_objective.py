"""Objective, gradient, Hessian-vector products, losses."""

import math

import numpy as np
import pytest
from reference import _F_and_grad as reference_F_and_grad

import ufm.objectives.full as objective_module
from ufm import UFMProblem, balanced, imbalanced_single
from ufm.exceptions import UFMError
from ufm.losses import LOSS_FUNCTIONS, hvp_logits, pal, pal_per_sample
from ufm.objectives.full import (
    SMALL,
    Evaluator,
    _grad_H,
    check_grad,
    fun_and_grad,
    hvp,
    objective,
    taylor_slope,
    value_and_grad,
)
from ufm.objectives.layout import given_point, pack, random_point, unpack


def _naive_F(problem, W, H, b):
    Y, N = problem.design.Y, problem.N
    Z = W @ H + b[:, None]
    total = 0.0
    for i in range(N):
        z = Z[:, i]
        lse = np.log(np.sum(np.exp(z - z.max()))) + z.max()
        total += sum(lse - z[k] for k in np.flatnonzero(Y[:, i]))  # sum_{k in S} (LSE - z_k)
    return total / N + 0.5 * (problem.lam_W * np.sum(W**2) + problem.lam_H * np.sum(H**2) + problem.lam_b * np.sum(b**2))


@pytest.mark.parametrize("bias", [True, False])
def test_objective_matches_the_definition(rng, bias):
    p = UFMProblem(balanced(4, {1: 2, 2: 1, 4: 1}), 3, 3e-2, 2e-2, 1e-2, bias=bias)
    W, H, b = rng.standard_normal((4, 3)), rng.standard_normal((3, p.N)), rng.standard_normal(4)
    b_eff = b if bias else np.zeros(4)
    np.testing.assert_allclose(objective(p, W, H, b), _naive_F(p, W, H, b_eff), rtol=1e-13, atol=0)


def test_lse_is_stable_for_huge_logits():
    Z = np.array([[1000.0, -1000.0], [0.0, 0.0], [-1000.0, 1000.0]])
    Y = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    m = Y.sum(axis=0)
    val, G = pal(Z, Y, m)
    assert np.isfinite(val) and np.all(np.isfinite(G))
    np.testing.assert_allclose(pal_per_sample(Z, Y, m), [1000.0, 0.0], rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("loss", ["pal", "pal-normalized", "bce"])
@pytest.mark.parametrize("bias", [True, False])
def test_gradient_matches_finite_differences(loss, bias):
    p = UFMProblem(imbalanced_single(3, [2, 1, 3], {(0, 1): 2}), 4, 1e-2, 3e-2, 2e-2, bias=bias, loss=loss)
    assert check_grad(p, rng=1) < 1e-5
    assert taylor_slope(p, rng=2) == pytest.approx(2.0, abs=0.1)


def test_hvp_matches_gradient_differences(rng):
    p = UFMProblem(balanced(4, {1: 1, 2: 1}), 3, 1e-2, 2e-2, 1e-2)
    x = random_point(p, rng=rng)
    v = rng.standard_normal(x.size)
    eps = 1e-6
    fd = (fun_and_grad(x + eps * v, p)[1] - fun_and_grad(x - eps * v, p)[1]) / (2 * eps)
    np.testing.assert_allclose(hvp(x, v, p), fd, rtol=1e-6, atol=1e-8)


def test_shift_invariance_of_the_loss(rng):
    """Adding t*1 to a logit column leaves the PAL loss unchanged (1^T G = 0)."""
    Z = rng.standard_normal((5, 7))
    Y = (rng.random((5, 7)) < 0.4).astype(float)
    Y[0] = 1.0
    m = Y.sum(axis=0)
    v1, G = pal(Z, Y, m)
    v2, _ = pal(Z + rng.standard_normal(7)[None, :], Y, m)
    assert v1 == pytest.approx(v2, rel=1e-13)
    np.testing.assert_allclose(G.sum(axis=0), 0.0, atol=1e-15)


def test_unpack_shapes():
    p = UFMProblem(balanced(3, {1: 2}), 2, 1e-2, 1e-2, 0.0, bias=False)
    W, H, b = unpack(np.arange(p.n_vars, dtype=float), p)
    assert W.shape == (3, 2) and H.shape == (2, 6) and b.shape == (3,) and not b.any()


# -- mutation testing of objective.py and losses.py (issue 28) --------------------------------
# Expected values come from tests/reference.py (F and its gradient written from the
# definition), from finite differences, or from closed forms; never from the code under test.

def _labels(rng, K, N):
    """A 0/1 label matrix with every column non-empty and multiplicities 1..K (not all equal)."""
    Y = (rng.random((K, N)) < 0.4).astype(float)
    Y[rng.integers(0, K, N), np.arange(N)] = 1.0
    Y[:, 0] = 1.0  # m_0 = K
    Y[:, 1] = 0.0
    Y[0, 1] = 1.0  # m_1 = 1
    return Y


def _gradient_by_definition(loss, Z, Y):
    """``dL/dZ`` of the three losses, written from their definitions (losses.py docstrings)."""
    N, m = Z.shape[1], Y.sum(axis=0)
    if loss == "bce":
        return (1.0 / (1.0 + np.exp(-Z)) - Y) / N
    E = np.exp(Z - Z.max(axis=0))
    P = E / E.sum(axis=0)
    return (P * m - Y) / N if loss == "pal" else (P - Y / m) / N


@pytest.mark.parametrize("loss", ["pal", "pal-normalized", "bce"])
def test_hvp_logits_matches_gradient_differences(rng, loss):
    """The loss Hessian on logits, directly (the objective's Hessian operator does not call it
    for the PAL losses): central differences of the gradient, with multiplicities 1..K so that
    PAL's factor m_i and normalised PAL's 1 differ."""
    K, N = 5, 9
    Y = _labels(rng, K, N)
    Z, dZ = rng.standard_normal((K, N)), rng.standard_normal((K, N))
    eps = 1e-6
    fd = (_gradient_by_definition(loss, Z + eps * dZ, Y) - _gradient_by_definition(loss, Z - eps * dZ, Y)) / (2 * eps)
    got = hvp_logits(loss, Z.copy(), dZ.copy(), Y.sum(axis=0))
    np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("loss", ["pal", "pal-normalized", "bce"])
def test_losses_are_exact_for_huge_logits(loss):
    """Logits of +-1e3 (exp overflows without the max shift): the values from hand-written
    stable formulas, LSE(1000, 999, -1000) = 1000 + log1p(e^-1) (+ e^-2000, below float64)."""
    Z = np.array([[1000.0, -1000.0], [999.0, 0.0], [-1000.0, 1000.0]])
    Y = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    m = Y.sum(axis=0)
    lse0, lse1 = 1000.0 + math.log1p(math.exp(-1.0)), 1000.0 + math.exp(-1000.0)
    p0 = np.array([1.0, math.exp(-1.0), 0.0]) / (1.0 + math.exp(-1.0))
    p1 = np.array([0.0, 0.0, 1.0])  # e^-1000 underflows in float64 relative to 1
    if loss == "pal":  # sum_{k in S} (LSE - z_k)
        value = ((lse0 - 1000.0) + (lse0 - 999.0) + (lse1 - 1000.0)) / 2
        G = (np.column_stack([2 * p0, p1]) - Y) / 2
    elif loss == "pal-normalized":  # LSE - <y/m, z>
        value = ((lse0 - 999.5) + (lse1 - 1000.0)) / 2
        G = (np.column_stack([p0, p1]) - Y / m) / 2
    else:  # sum_k softplus(z_k) - y_k z_k; softplus(1000) = 1000 + log1p(e^-1000)
        value = (math.log1p(math.exp(-999.0)) + math.log(2.0)) / 2  # e^-1000 underflows to 0
        G = (np.array([[1.0, 0.0], [1.0, 0.5], [0.0, 1.0]]) - Y) / 2
    got_value, got_G = LOSS_FUNCTIONS[loss](Z.copy(), Y, m)
    assert np.isfinite(got_value) and np.all(np.isfinite(got_G))
    assert got_value == pytest.approx(value, rel=1e-15, abs=1e-13)
    np.testing.assert_allclose(got_G, G, rtol=1e-15, atol=1e-18)


def test_pack_fills_a_missing_bias_with_zeros(rng):
    W, H = rng.standard_normal((3, 2)), rng.standard_normal((2, 5))  # K = 3 != d = 2
    x = pack(W, H, None)
    np.testing.assert_array_equal(x, np.concatenate([W.ravel(), H.ravel(), np.zeros(3)]))
    np.testing.assert_array_equal(pack(W, H, None, bias=False), np.concatenate([W.ravel(), H.ravel()]))


def test_shape_errors_say_what_was_expected():
    p = UFMProblem(balanced(3, {1: 2}), 2, 1e-2, 1e-2, 1e-2)  # n_vars = 6 + 12 + 3 = 21
    W, H = np.zeros((3, 2)), np.zeros((2, 6))
    with pytest.raises(UFMError, match=r"x must have shape \(21,\); got \(20,\)"):
        unpack(np.zeros(20), p)
    with pytest.raises(UFMError, match=r"x must have shape \(21,\); got \(20,\)"):
        Evaluator(p)(np.zeros(20))
    with pytest.raises(UFMError, match=r"b must have shape \(K,\) = \(3,\); got \(4,\)"):
        objective(p, W, H, np.zeros(4))
    with pytest.raises(UFMError, match=r"W must have shape \(K, d\) = \(3, 2\); got \(2, 3\)"):
        objective(p, W.T, H)
    with pytest.raises(UFMError, match=r"H must have shape \(d, N\) = \(2, 6\); got \(6, 2\)"):
        objective(p, W, H.T)
    with pytest.raises(UFMError, match=r"x0 must have 21 entries"):
        given_point(p, np.zeros(20))


@pytest.mark.parametrize("loss", ["pal", "pal-normalized"])
def test_objective_converts_its_inputs_and_defaults_b_to_zero(rng, loss):
    """float32 inputs are converted before any sum (a float32 ||W||^2 is off by ~1e-8), and an
    omitted ``b`` of a model with bias is 0: the reference F of the float64 values."""
    p = UFMProblem(balanced(4, {1: 2, 2: 1}), 3, 3e-1, 2e-1, 5e-1, loss=loss)
    W32 = rng.standard_normal((4, 3)).astype(np.float32)
    H32 = rng.standard_normal((3, p.N)).astype(np.float32)
    b32 = rng.standard_normal(4).astype(np.float32)
    W, H, b = W32.astype(float), H32.astype(float), b32.astype(float)
    ref = reference_F_and_grad(pack(W, H, b), p)[0]
    assert objective(p, W32, H32, b32) == pytest.approx(ref, rel=1e-14)
    ref0 = reference_F_and_grad(pack(W, H, np.zeros(4)), p)[0]
    assert objective(p, W32, H32) == pytest.approx(ref0, rel=1e-14)
    F, dW, dH, db = value_and_grad(p, W, H)
    assert F == pytest.approx(ref0, rel=1e-14)
    np.testing.assert_allclose(np.concatenate([dW.ravel(), dH.ravel(), db]),
                               reference_F_and_grad(pack(W, H, np.zeros(4)), p)[1], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("bias", [True, False])
def test_fun_and_grad_reuses_its_output_across_calls(rng, bias):
    """``out`` is filled and returned, and a second call with another point overwrites it."""
    p = UFMProblem(imbalanced_single(3, [2, 1, 3], {(0, 1): 2}), 4, 1e-2, 3e-2, 2e-2, bias=bias)
    buf, work = np.full(p.n_vars, np.nan), np.full((p.K, p.N), np.nan)
    for _ in range(2):
        x = random_point(p, rng=rng)
        F, g = fun_and_grad(x, p, out=buf, work=work)
        assert g is buf
        ref_F, ref_g = reference_F_and_grad(x, p)
        assert F == pytest.approx(ref_F, rel=1e-13)
        np.testing.assert_allclose(buf, ref_g, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_grad_H_on_any_memory_layout(rng, layout):
    """``W^T G + lam_H H`` for output and gradient arrays in any layout (the BLAS route
    needs C order; the others take the plain numpy route), summed term by term."""
    K, d, N, lam_H = 3, 2, 5, 0.3
    W, H = rng.standard_normal((K, d)), rng.standard_normal((d, N))
    G = rng.standard_normal((K, 2 * N))[:, ::2] if layout == "strided" else rng.standard_normal((K, N))
    out = np.full((d, N), np.nan, order="F" if layout == "F" else "C")
    expected = np.array([[sum(W[k, a] * G[k, i] for k in range(K)) + lam_H * H[a, i] for i in range(N)]
                         for a in range(d)])
    assert _grad_H(W, G, lam_H, H, out) is out
    np.testing.assert_allclose(out, expected, rtol=1e-14, atol=1e-15)


def _large_and_small(bias):
    """Problems at or just above, and just below, :data:`SMALL` variables: K = 4, d = 16 and
    n per class give ``n_vars = 64 + 64 n (+ 4)``; n = 1023 gives SMALL exactly without bias."""
    return [UFMProblem(balanced(4, {1: n}), 16, 1e-2, 2e-2, 3e-2, bias=bias) for n in (1023, 1022)]


@pytest.mark.parametrize("bias", [True, False])
def test_evaluator_on_both_sides_of_small(rng, bias):
    """Both evaluation routes (per-buffer views below SMALL, fun_and_grad from SMALL on, as the
    Evaluator's docstring says) against the reference, with a reused output buffer and a fresh
    one, and the count of evaluations."""
    for p, large in zip(_large_and_small(bias), (True, False)):
        assert (p.n_vars >= SMALL) == large and abs(p.n_vars - SMALL) < 70
        ev = Evaluator(p)
        assert (ev.packed is None) == large
        buf = np.full(p.n_vars, np.nan)
        for call in range(3):
            x = random_point(p, rng=rng)
            ref_F, ref_g = reference_F_and_grad(x, p)
            F, g = ev(x, out=buf) if call < 2 else ev(x)
            assert (g is buf) == (call < 2)
            assert F == pytest.approx(ref_F, rel=1e-13)
            np.testing.assert_allclose(g, ref_g, rtol=1e-11, atol=1e-14)
        assert ev.nfev == 3


def test_random_point_scale_and_seed():
    p = UFMProblem(balanced(3, {1: 2}), 4, 1e-2, 1e-2, 1e-2)
    z = np.random.default_rng(7).standard_normal(p.n_vars)
    np.testing.assert_array_equal(random_point(p, rng=7), z / 2.0)  # sqrt(d) = 2
    np.testing.assert_array_equal(random_point(p, scale=3.0, rng=7), z * 1.5)


@pytest.mark.parametrize("bias", [True, False])
def test_given_point_packs_a_tuple(rng, bias):
    p = UFMProblem(balanced(3, {1: 2}), 2, 1e-2, 1e-2, 1e-2, bias=bias)
    W, H, b = rng.standard_normal((3, 2)), rng.standard_normal((2, 6)), rng.standard_normal(3)
    tail = [b] if bias else []
    np.testing.assert_array_equal(given_point(p, (W, H, b)), np.concatenate([W.ravel(), H.ravel(), *tail]))
    tail = [np.zeros(3)] if bias else []
    np.testing.assert_array_equal(given_point(p, (W, H, None)), np.concatenate([W.ravel(), H.ravel(), *tail]))
    x = given_point(p, (W.astype(np.float32), H, b))
    assert x.dtype == np.float64


def test_given_point_names_a_complex_input():
    p = UFMProblem(balanced(3, {1: 2}), 2, 1e-2, 1e-2, 1e-2)
    W, H, b = np.zeros((3, 2)), np.zeros((2, 6)), np.zeros(3)
    for i, name in enumerate("WHb"):
        parts = [W, H, b]
        parts[i] = parts[i] + 0j
        with pytest.raises(UFMError, match=f"'{name}' given to x0 is complex"):
            given_point(p, tuple(parts))
    with pytest.raises(UFMError, match="'x0' given to solve is complex"):
        given_point(p, np.zeros(p.n_vars, dtype=complex))


def _cubic(x, problem):
    """``F(x) = sum x^3 / 3`` with its gradient ``x^2``: a stand-in with closed-form differences."""
    del problem
    return float(np.sum(x**3) / 3), x**2


def test_check_grad_is_the_documented_statistic(monkeypatch):
    """On ``F = sum x^3/3`` the central difference is exact up to ``eps^2/3 sum v^3``, so the
    statistic has a closed form: the same random start and directions (seeded generator,
    ``n_dirs`` defaulting to 5), relative errors floored at 1e-8, and their maximum."""
    monkeypatch.setattr(objective_module, "fun_and_grad", _cubic)
    p = UFMProblem(balanced(3, {1: 1}), 4, 1e-2, 1e-2, 1e-2)  # n_vars = 12 + 12 + 3, d = 4
    eps = 1e-2

    def expected(n_dirs, x=None):
        gen = np.random.default_rng(8)
        if x is None:
            x = gen.standard_normal(p.n_vars) / 2.0  # sqrt(d) = 2
        rel = []
        for _ in range(n_dirs):
            v = gen.standard_normal(p.n_vars)
            v /= np.linalg.norm(v)
            an = float(x**2 @ v)
            rel.append(abs(eps**2 / 3 * np.sum(v**3)) / max(abs(an), 1e-8))
        return max(rel), rel

    want = expected(5)[0]
    assert want < expected(6)[0] / 10  # a sixth direction would be the worst
    assert check_grad(p, eps=eps, rng=8) == pytest.approx(want, rel=1e-6)
    # a point with |<g, v>| < 1: the floor is 1e-8, not 1
    x = np.full(p.n_vars, 0.05)
    want = expected(3, x)[0]
    assert check_grad(p, x, n_dirs=3, eps=eps, rng=np.random.default_rng(8)) == pytest.approx(want, rel=1e-6)


def test_taylor_slope_is_the_documented_fit(monkeypatch):
    """On ``F = sum x^3/3`` the Taylor remainder is ``t^2 <x, v^2> + t^3/3 sum v^3`` exactly;
    the slope is the least-squares fit of its log against log t over the seven log-spaced t in
    [1e-4, 1e-1] of the docstring (fitted here by the closed-form covariance ratio)."""
    monkeypatch.setattr(objective_module, "fun_and_grad", _cubic)
    p = UFMProblem(balanced(3, {1: 1}), 4, 1e-2, 1e-2, 1e-2)
    gen = np.random.default_rng(5)
    x = gen.standard_normal(p.n_vars) / 2.0
    v = gen.standard_normal(p.n_vars)
    v /= np.linalg.norm(v)
    t = 10.0 ** np.linspace(-4, -1, 7)
    r = np.abs(t**2 * (x @ v**2) + t**3 / 3 * np.sum(v**3))
    lt, lr = np.log(t), np.log(r)
    slope = float(((lt - lt.mean()) * (lr - lr.mean())).sum() / ((lt - lt.mean()) ** 2).sum())
    assert abs(slope - 2.0) > 1e-3  # the cubic term bends the fit: a different grid gives another slope
    assert taylor_slope(p, rng=5) == pytest.approx(slope, rel=1e-7)
