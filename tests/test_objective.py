"""Objective, gradient, Hessian-vector products, losses."""

import numpy as np
import pytest

from ufm import UFMProblem, balanced, imbalanced_single
from ufm.losses import pal, pal_per_sample
from ufm.objective import (
    check_grad,
    fun_and_grad,
    hvp,
    objective,
    random_point,
    taylor_slope,
    unpack,
)


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
