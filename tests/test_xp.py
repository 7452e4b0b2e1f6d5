"""The array-API path (ufm.xp, ufm.solvers.device): the same objective and L-BFGS on numpy,
array-api-strict and JAX arrays agree with the numpy path; ``device="cuda"`` without a GPU is one error."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import ufm
from ufm.exceptions import UFMError
from ufm.objectives.array_api import ArrayObjective
from ufm.objectives.full import fun_and_grad, hessian_operator
from ufm.objectives.layout import pack, random_point, unpack
from ufm.objectives.protocol import Objective
from ufm.solvers.device import solve_xp

NAMESPACES = ["array_api_compat.numpy", "array_api_strict", "jax.numpy"]


def _xp(name: str):
    pytest.importorskip(name.split(".")[0])
    return importlib.import_module(name)


def _tiny(bias: bool = True, loss: str = "pal") -> ufm.UFMProblem:
    return ufm.UFMProblem(ufm.balanced(4, {1: 3, 2: 1}), d=4, lam_W=5e-3, lam_H=5e-3, lam_b=5e-3, bias=bias, loss=loss)


@pytest.mark.parametrize("name", NAMESPACES)
def test_the_same_solve_agrees_with_the_numpy_path(name):
    xp = _xp(name)
    p = _tiny()
    ref = ufm.solve(p, rng=0)
    r = solve_xp(p, xp, rng=0)
    assert r.success and r.extra["namespace"] == xp.__name__
    assert abs(r.extra["fun_device"] - ref.fun) <= 1e-12 * abs(ref.fun)  # F as the device computed it
    assert abs(r.fun - ref.fun) <= 1e-12 * abs(ref.fun)  # the embedded point, evaluated by numpy
    assert ufm.verify(p, r.W, r.H, r.b).passed


@pytest.mark.parametrize("name", NAMESPACES[:2])
@pytest.mark.parametrize("bias,loss", [(True, "pal"), (False, "pal-normalized")])
def test_value_gradient_and_hessian_match_the_numpy_objective(name, bias, loss):
    xp = _xp(name)
    p = _tiny(bias, loss)
    x, v = random_point(p, rng=1), random_point(p, rng=2)
    obj = ArrayObjective(p, xp, grouped=False)
    assert isinstance(obj, Objective)
    z = obj.restrict(*unpack(x, p))
    f, g = obj.value_and_grad(z)
    f0, g0 = fun_and_grad(x, p)
    assert abs(f - f0) <= 1e-14 * abs(f0)
    np.testing.assert_allclose(pack(*obj.embed(g), p.bias), g0, rtol=1e-12, atol=1e-16)
    hv = obj.hvp(z, obj.restrict(*unpack(v, p)))
    np.testing.assert_allclose(pack(*obj.embed(hv), p.bias), hessian_operator(x, p)(v), rtol=1e-11, atol=1e-15)


def test_the_grouped_objective_is_F_on_points_equal_within_each_label_set():
    import array_api_strict as xp

    p = _tiny()
    obj = ArrayObjective(p, xp, grouped=True)
    z = obj.restrict(*unpack(random_point(p, rng=3), p))
    W, H, b = obj.embed(z)  # features repeated over each label set's samples
    assert H.shape == (p.d, p.N)
    f, g = obj.value_and_grad(z)
    f0, g0 = fun_and_grad(pack(W, H, b), p)
    assert abs(f - f0) <= 1e-14
    # chain rule: the gradient in h_S is the full gradient summed over the set's samples
    gW0, gH0, gb0 = unpack(g0, p)
    starts = np.concatenate(([0], np.cumsum(p.design.group_counts)[:-1]))
    gW, gH, gb = (np.from_dlpack(a) for a in obj.unpack(g))
    np.testing.assert_allclose(gH, np.add.reduceat(gH0, starts, axis=1), rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(gW, gW0, rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(gb, gb0, rtol=1e-12, atol=1e-16)


def test_device_cuda_without_a_gpu_is_one_clear_error(capsys):
    from ufm.cli import main
    from ufm.xp.devices import namespace

    try:
        namespace("cuda")
    except UFMError as exc:
        assert "no GPU array library with a CUDA device" in str(exc)
    else:
        pytest.skip("a GPU array library with a CUDA device is present")
    with pytest.raises(UFMError, match="no GPU array library"):
        ufm.solve(_tiny(), device="cuda")
    code = main(["solve", "--K", "4", "--d", "4", "--profile", "1:3,2:1", "--lam-W", "5e-3", "--lam-H", "5e-3",
                 "--device", "cuda"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--device cuda" in err[0]


def test_device_names_and_options_are_checked():
    with pytest.raises(UFMError, match="device must be one of"):
        ufm.solve(_tiny(), device="tpu")
    with pytest.raises(UFMError, match="do not apply to the device path"):
        solve_xp(_tiny(), importlib.import_module("array_api_strict"), polish=True)
    assert ufm.solve(_tiny(), device="cpu", rng=0).extra.get("engine") != "array-api"  # cpu: the numpy path


# -- mixed precision (ufm.solvers.mixed) -------------------------------------------------------
def test_float32_objective_matches_float64_to_float32_rounding():
    """The float32 ArrayObjective computes F and its gradient in float32: within float32's
    rounding of the float64 values, and really in float32 (not silently float64)."""
    import array_api_compat.numpy as xnp

    p = _tiny()
    x = random_point(p, rng=3)
    obj = ArrayObjective(p, xnp, grouped=False, dtype="float32")
    z = obj.restrict(*unpack(x, p))
    assert z.dtype == np.float32
    f, g = obj.value_and_grad(z)
    f0, g0 = fun_and_grad(x, p)
    assert g.dtype == np.float32
    assert 1e-12 < abs(f - f0) / abs(f0) < 1e-5  # float32 rounding: present, and small
    np.testing.assert_allclose(pack(*obj.embed(g), p.bias), g0, rtol=1e-4, atol=1e-6 * np.abs(g0).max())
    with pytest.raises(UFMError, match="dtype must be 'float64' or 'float32'"):
        ArrayObjective(p, xnp, dtype="float16")


def test_float32_grouped_objective_computes_in_float32():
    """The float32 phase's objective (GroupedObjective with float32 buffers and kernel): F and
    its gradient within float32's rounding of the float64 objective's at the same point, and
    really in float32 (a float64 product hidden inside would make them agree to 1e-15)."""
    from ufm.objectives.grouped import GroupedObjective

    p = ufm.UFMProblem(ufm.balanced(5, {1: 4, 2: 1}), d=4, lam_W=1e-2, lam_H=1e-2, lam_b=1e-2)
    g32, g64 = GroupedObjective(p, dtype=np.float32), GroupedObjective(p)
    z = (0.5 * np.random.default_rng(2).standard_normal(g64.n_vars)).astype(np.float32)
    f32, d32 = g32.value_and_grad(z)
    f64, d64 = g64.value_and_grad(z.astype(np.float64))
    assert d32.dtype == np.float32 and g32.work.dtype == np.float32
    assert 1e-12 < abs(f32 - f64) / abs(f64) < 1e-5
    err = np.abs(d32 - d64).max() / np.abs(d64).max()
    assert 1e-12 < err < 1e-5



@pytest.mark.parametrize("bias,loss", [(True, "pal"), (False, "pal-normalized")])
def test_mixed_precision_gives_the_float64_answer(bias, loss):
    """precision="mixed": the float32 bulk moves the start, the float64 run finishes; the answer
    is the default's (F to 1e-12, certified, verified) and the float32 phase is reported."""
    p = ufm.UFMProblem(ufm.balanced(6, {1: 8, 2: 1}), d=8, lam_W=1e-3, lam_H=1e-3, lam_b=1e-3, bias=bias, loss=loss)
    ref = ufm.solve(p, rng=0, precision="float64")
    r = ufm.solve(p, rng=0, precision="mixed")
    assert r.success and r.extra["precision"] == "mixed" and "precision" not in ref.extra
    f32 = r.extra["float32"]
    assert f32["nfev"] > 0 and f32["message"] in ("gradient norm below gtol", "relative reduction of F below ftol",
                                             "the line search cannot decrease F")
    assert r.nfev > f32["nfev"]  # both phases counted
    assert abs(r.fun - ref.fun) <= 1e-12 * abs(ref.fun) and r.rel_gap <= 1e-12
    assert ufm.verify(p, r.W, r.H, r.b).verified


def test_precision_auto_takes_the_mixed_route_only_at_large_sizes():
    from ufm.solvers.mixed import MIXED_FROM, use_mixed

    small = _tiny()
    assert not use_mixed(small, "auto", True, small.d)
    assert use_mixed(small, "mixed", True, small.d) and not use_mixed(small, "float64", True, small.d)
    big = ufm.UFMProblem(ufm.balanced(200, {1: 10, 2: 1}), d=256, lam_W=5e-4, lam_H=5e-4, lam_b=5e-4)
    assert big.K * big.d * big.design.G >= MIXED_FROM  # the bench's L
    assert use_mixed(big, "auto", True, big.d)
    assert not use_mixed(big, "auto", False, big.d)  # the full space: not measured, not taken
    assert not use_mixed(big, "auto", True, big.d - 1)  # a width reduction: the float32 phase would not have it
    bce = ufm.UFMProblem(ufm.balanced(200, {1: 10, 2: 1}), d=256, lam_W=5e-4, lam_H=5e-4, loss="bce")
    assert not use_mixed(bce, "mixed", True, bce.d)  # the array-API objective computes the PAL losses
    with pytest.raises(UFMError, match="precision"):
        ufm.solve(small, precision="half")


def test_precision_mixed_by_name_is_refused_where_it_would_not_run_rightly():
    """``precision="mixed"`` asked for by name never falls back to float64 without a word: the
    BCE loss (the float32 phase computes the PAL losses), ``group=False`` (the float64 run from
    the float32 phase's grouped point would stay grouped: nc1 imposed, not measured) and a
    callback (the float32 phase calls none) are one UFMError each; "auto" goes on in float64."""
    small = _tiny()
    bce = ufm.UFMProblem(small.design, d=small.d, lam_W=small.lam_W, lam_H=small.lam_H, loss="bce")
    cases = [(bce, {}, "pick-all-label"), (small, {"group": False}, "grouped"),
             (small, {"callback": lambda *a: None}, "callback")]
    for p, extra, why in cases:
        with pytest.raises(UFMError, match=f"'precision' parameter of lbfgs.*{why}"):
            ufm.solve(p, rng=0, precision="mixed", **extra)
        r = ufm.solve(p, rng=0, **extra)  # auto: the float64 route
        assert r.extra.get("precision", "float64") == "float64"


def test_float32_phase_stops_where_float32_stops_resolving():
    """ftol: where float32's gradient is too noisy to reach gtol the phase ends on its own
    (it had run 20,000 iterations at the bench's W before)."""
    import array_api_compat.numpy as xnp

    from ufm.xp.lbfgs import lbfgs

    p = _tiny()
    obj = ArrayObjective(p, xnp, dtype="float32")
    run = lbfgs(obj, obj.restrict(*unpack(random_point(p, rng=4), p)), gtol=0.0, max_iter=5000,
                noise_steps=False, ftol=1e-6)
    assert run.message in ("ftol", "line search failed") and run.nit < 5000


def test_ctrl_c_in_the_float32_phase_returns_its_last_iterate(monkeypatch):
    """An interrupt during the float32 bulk is an INTERRUPTED result holding the last accepted
    float32 iterate (lower F than the start), not a traceback that loses the run."""
    p = ufm.UFMProblem(ufm.balanced(6, {1: 8, 2: 1}), d=8, lam_W=1e-3, lam_H=1e-3, lam_b=1e-3)
    with pytest.warns(ufm.ConvergenceWarning):
        start = ufm.solve(p, rng=0, method="lbfgs", max_iter=0, precision="float64")
    from ufm.objectives.grouped import GroupedObjective

    real = GroupedObjective.value_and_grad
    calls = [0]

    def interrupted_after_20(self, z, out=None):
        if self.dtype == np.float32:  # the float32 phase's evaluations
            calls[0] += 1
            if calls[0] > 20:
                raise KeyboardInterrupt
        return real(self, z, out)

    monkeypatch.setattr(GroupedObjective, "value_and_grad", interrupted_after_20)
    r = ufm.solve(p, rng=0, precision="mixed")
    assert r.status.name == "INTERRUPTED" and r.extra["precision"] == "mixed"
    assert r.extra["float32"]["message"] == "interrupted" and r.extra["float32"]["nit"] >= 1
    assert r.fun < start.fun
