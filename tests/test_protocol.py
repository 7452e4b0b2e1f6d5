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
