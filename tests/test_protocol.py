"""Every variant of the objective keeps the protocol's promises (ufm/objectives/protocol.py),
checked against the full-space kernel at the embedded point -- an independent route:
``fun_and_grad`` of the packed full point, and finite differences of the variant's own gradient."""

from __future__ import annotations

import numpy as np
import pytest

from ufm import UFMProblem, imbalanced_single
from ufm.objectives import Objective, make_objective, random_start
from ufm.objectives.full import fun_and_grad


def _problem(bias: bool = True, loss: str = "pal") -> UFMProblem:
    # label sets of sizes 9, 4, 2, 1 (each set's samples share a feature in the grouped variants)
    return UFMProblem(imbalanced_single(4, [9, 4, 2, 1]), d=9, lam_W=3e-3, lam_H=2e-3, lam_b=1e-3, bias=bias, loss=loss)


def _variants(p: UFMProblem, x: np.ndarray) -> dict[str, Objective]:
    import array_api_compat.numpy as xnp

    return {
        "full": make_objective(p),
        "scaled": make_objective(p, h_scale=2.5),
        "grouped": make_objective(p, x, group=True, reduce_width=False),
        "grouped-narrow": make_objective(p, x, group=True),
        "array-api-grouped": make_objective(p, group=True, xp=xnp),
        "array-api-full": make_objective(p, xp=xnp),
    }


@pytest.mark.parametrize("bias,loss", [(True, "pal"), (False, "pal-normalized"), (True, "pal-normalized")])
def test_every_variant_keeps_the_protocol(bias, loss):
    p = _problem(bias, loss)
    rng = np.random.default_rng(7)
    x = random_start(p, scale=1.0, rng=rng)  # a point of the collapsed subspace (one feature per set)
    variants = _variants(p, x)
    assert variants["grouped-narrow"].size < variants["grouped"].size  # the width reduction is exercised
    for name, obj in variants.items():
        assert isinstance(obj, Objective), name
        z = obj.to_y(x)
        xz = obj.to_x(z)  # the full point the variant stands for
        F_ref, g_ref = fun_and_grad(xz, p)
        F, g = obj.value_and_grad(z)
        assert F == pytest.approx(F_ref, rel=1e-13), name
        # |grad F| at the full point, and the full gradient itself, from the working gradient
        assert obj.grad_norm(g) == pytest.approx(float(np.linalg.norm(g_ref)), rel=1e-10), name
        np.testing.assert_allclose(obj.grad_to_x(g), g_ref, rtol=1e-10, atol=1e-13, err_msg=name)
        assert obj.euclidean == bool(np.isclose(float(np.linalg.norm(np.asarray(g))),
                                                float(np.linalg.norm(g_ref)), rtol=1e-12)), name
        assert obj.identity == (name == "full"), name
        W, H, b = obj.embed(z)
        np.testing.assert_allclose(np.concatenate([W.ravel(), H.ravel(), b.ravel() if bias else []]), xz,
                                   rtol=0, atol=0, err_msg=name)
        # the Hessian operator against central differences of the variant's own gradient
        v = np.asarray(obj.to_y(random_start(p, scale=1.0, rng=rng)))
        hv = np.asarray(obj.hessian_operator(z)(v))
        eps = 1e-5
        fd = (np.asarray(obj.value_and_grad(z + eps * v)[1]) - np.asarray(obj.value_and_grad(z - eps * v)[1])) / (2 * eps)
        np.testing.assert_allclose(hv, fd, rtol=1e-6, atol=1e-8 * np.abs(hv).max(), err_msg=name)
        assert obj.size == np.asarray(z).size and obj.nfev >= 3, name


def test_to_y_projects_and_never_raises_F():
    """Away from the collapsed subspace ``to_y`` projects (set means): F at the projection is at
    most F at the start, for every variant, and projecting twice changes nothing."""
    p = _problem()
    rng = np.random.default_rng(3)
    x = rng.standard_normal(p.n_vars)  # features differ within each set
    F0 = fun_and_grad(x, p)[0]
    for name, obj in _variants(p, x).items():
        z = obj.to_y(x)
        xz = obj.to_x(z)
        assert fun_and_grad(xz, p)[0] <= F0 * (1 + 1e-14), name
        np.testing.assert_allclose(np.asarray(obj.to_y(xz)), np.asarray(z), rtol=1e-12, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("bias,loss", [(True, "pal"), (False, "pal-normalized")])
def test_the_fixed_classifier_variant_keeps_the_protocol(bias, loss):
    """``F`` over ``(H, b)`` with ``W`` fixed: value, gradient (the full gradient's ``H`` and ``b``
    blocks; zeros for ``W``, which is not a variable), norm and Hessian against the full-space
    kernel and differences; the full point carries the fixed ``W``."""
    p = _problem(bias, loss)
    rng = np.random.default_rng(11)
    x = random_start(p, scale=1.0, rng=rng)
    W = rng.standard_normal((p.K, p.d))
    obj = make_objective(p, fixed_W=W)
    assert isinstance(obj, Objective)
    z = obj.to_y(x)
    xz = obj.to_x(z)
    kd = p.K * p.d
    np.testing.assert_array_equal(xz[:kd], W.ravel())
    np.testing.assert_allclose(xz[kd:], x[kd:], rtol=1e-15, atol=1e-16)  # features already equal within each set
    F_ref, g_ref = fun_and_grad(xz, p)
    F, g = obj.value_and_grad(z)
    assert F == pytest.approx(F_ref, rel=1e-13) and g.shape == (obj.size,) == z.shape
    free = g_ref.copy()
    free[:kd] = 0.0
    np.testing.assert_allclose(obj.grad_to_x(g), free, rtol=1e-10, atol=1e-13)
    assert obj.grad_norm(g) == pytest.approx(float(np.linalg.norm(free)), rel=1e-10)
    out = np.full(obj.size, np.nan)
    assert obj.value_and_grad(z, out=out)[1] is out and np.array_equal(out, g)
    v = obj.to_y(random_start(p, scale=1.0, rng=rng))
    hv = obj.hessian_operator(z)(v)
    eps = 1e-5
    fd = (obj.value_and_grad(z + eps * v)[1] - obj.value_and_grad(z - eps * v)[1]) / (2 * eps)
    np.testing.assert_allclose(hv, fd, rtol=1e-6, atol=1e-8 * np.abs(hv).max())
    Wz, H, b = obj.embed(z)
    np.testing.assert_array_equal(Wz, W)
    np.testing.assert_array_equal(np.concatenate([W.ravel(), H.ravel(), b.ravel() if bias else []]), xz)
    # the caller's buffers are used
    xbuf, gbuf = np.full(p.n_vars, np.nan), np.full(p.n_vars, np.nan)
    assert obj.to_x(z, out=xbuf) is xbuf and np.array_equal(xbuf, xz)
    assert obj.grad_to_x(g, out=gbuf) is gbuf and np.array_equal(gbuf, obj.grad_to_x(g))
    # float32 Hessian products where asked for: float32's error, not float64's
    hv32 = obj.hessian_operator(z, np.float32)(v)
    assert 1e-12 < np.abs(hv32 - hv).max() / np.abs(hv).max() < 1e-5
    with pytest.raises(ValueError, match=r"W must be \(K, d\)"):
        make_objective(p, fixed_W=W[:, :-1])


def test_the_protocols_engines_reach_the_fixed_classifier_solvers_answer():
    """Two routes to ``min_{H,b} F(W, H, b)`` for a fixed simplex-ETF ``W``: the package's L-BFGS
    engine and Newton-CG polish on the protocol's fixed-classifier variant, and the dedicated
    block-Newton solver ``solve_fixed`` -- the same minimum to 1e-12."""
    import ufm
    from ufm.fixed import etf_classifier
    from ufm.solvers.lbfgs_engine import lbfgs_core
    from ufm.solvers.polish import newton_steps

    p = _problem()
    W = etf_classifier(p.K, p.d, scale=2.0)
    obj = make_objective(p, fixed_W=W)
    z = obj.to_y(random_start(p, scale=0.1, rng=np.random.default_rng(0)))
    g = np.empty_like(z)
    f, _ = obj.value_and_grad(z, out=g)
    z, f, g, nit, status, _, _ = lbfgs_core(obj, z, f, g, m=5, max_iter=5000, gtol=1e-6, ftol=0.0,
                                            on_iter=lambda *a: False)
    z, f, g, _, _, _ = newton_steps(obj.value_and_grad, obj.hessian_operator, z, gtol=1e-11, scale=p.lam_H)
    ref = ufm.solve(p, fixed_W=W)
    assert ref.success and obj.grad_norm(g) <= 1e-10
    assert f == pytest.approx(ref.fun, rel=1e-12)
