"""``ufm.certify(..., device=...)`` and ``ufm certify --device``: the pass over the K x N logits
on any array library (ufm.xp.certificate) agrees with the numpy path (numpy's ``add.reduceat``
group sums, ufm.certificate_dual.loss_and_group_softmax); ``cuda`` without a GPU is one line."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest
from cli_run import run_cli

import ufm
from ufm.certificate import certify, certify_xp, loss_and_group_softmax
from ufm.cli import main
from ufm.designs import balanced, from_counts
from ufm.exceptions import UFMError
from ufm.objectives.layout import random_point, unpack
from ufm.xp.certificate import loss_and_group_softmax_xp

NAMESPACES = ["array_api_compat.numpy", "array_api_strict", "jax.numpy"]

# label sets of one count that are not contiguous in the canonical order (counts 2, 3, 2, 1 | 1, 2, 3, 1):
# the gathered blocks; balanced: one contiguous range per count (slices); all counts 1: N = G
IRREGULAR = from_counts(4, {(0,): 2, (1,): 3, (2,): 2, (3,): 1, (0, 1): 1, (1, 2): 2, (0, 3): 3, (2, 3): 1})
ONES = from_counts(4, {(0,): 1, (1,): 1, (2,): 1, (0, 1): 1, (2, 3): 1, (1, 3): 1})
PROBLEMS = {
    "balanced, bias, pal": (balanced(4, {1: 3, 2: 1}), True, 5e-3, "pal"),
    "irregular, no bias, pal-normalized": (IRREGULAR, False, 0.0, "pal-normalized"),
    "irregular, free bias (lam_b = 0), pal": (IRREGULAR, True, 0.0, "pal"),
    "all counts 1, bias, pal-normalized": (ONES, True, 1e-2, "pal-normalized"),
}


def _xp(name: str):
    pytest.importorskip(name.split(".")[0])
    return importlib.import_module(name)


def _problem(key: str) -> ufm.UFMProblem:
    design, bias, lam_b, loss = PROBLEMS[key]
    return ufm.UFMProblem(design, d=5, lam_W=5e-3, lam_H=5e-3, lam_b=lam_b, bias=bias, loss=loss)


def _points(p: ufm.UFMProblem) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """A near-minimiser (small certified gap: D is then sensitive to every digit of the group
    means) and a random point (a large gap)."""
    r = ufm.solve(p, rng=0)
    rng = np.random.default_rng(1)
    near = (r.W + 1e-5 * rng.standard_normal(r.W.shape), r.H + 1e-5 * rng.standard_normal(r.H.shape),
            r.b + 1e-5 * rng.standard_normal(p.K))
    return [near, unpack(random_point(p, rng=2), p)]


@pytest.mark.parametrize("name", NAMESPACES)
@pytest.mark.parametrize("key", list(PROBLEMS))
def test_the_array_api_pass_agrees_with_the_numpy_path(name, key):
    xp = _xp(name)
    p = _problem(key)
    for W, H, b in _points(p):
        # the pass itself, against numpy's reduceat route on the logits
        X = W @ H + (b[:, None] if p.bias else 0.0)
        L0, P0 = loss_and_group_softmax(p, X)
        L1, P1 = loss_and_group_softmax_xp(p, xp, W, H, b if p.bias else np.zeros(p.K))
        assert isinstance(P1, np.ndarray) and P1.dtype == np.float64 and P1.shape == (p.K, p.design.G)
        assert abs(L1 - L0) <= 1e-13 * abs(L0)
        np.testing.assert_allclose(P1, P0, rtol=1e-13, atol=0)
        # the certificate: D and F to 1e-12 relative
        c0, c1 = certify(p, W, H, b), certify_xp(p, W, H, b, xp)
        assert abs(c1.lower_bound - c0.lower_bound) <= 1e-12 * abs(c0.lower_bound)
        assert abs(c1.objective - c0.objective) <= 1e-12 * abs(c0.objective)
        assert c1.t == pytest.approx(c0.t, rel=1e-12)


def test_the_near_minimiser_is_certified_and_the_random_point_is_not():
    """The points above are the two cases they claim to be (else the comparison is of one kind only)."""
    p = _problem("irregular, no bias, pal-normalized")
    near, far = _points(p)
    assert 0 <= certify(p, *near).rel_gap < 1e-6 < certify(p, *far).rel_gap


def test_certify_device_cpu_is_the_numpy_path(monkeypatch):
    p = _problem("balanced, bias, pal")
    W, H, b = _points(p)[0]
    ref = certify(p, W, H, b)
    import ufm.xp.certificate

    def not_here(*a, **k):
        raise AssertionError("device='cpu' must stay on the numpy path")

    monkeypatch.setattr(ufm.xp.certificate, "loss_and_group_softmax_xp", not_here)
    assert certify(p, W, H, b, device="cpu") == ref  # every field, bit for bit


def test_certify_device_cuda_runs_the_array_api_pass(monkeypatch):
    """With a GPU library found (here: array-api-strict standing in for it), device="cuda" runs
    the logits pass there and never numpy's."""
    import ufm.certificate
    import ufm.xp.devices

    strict = _xp("array_api_strict")
    p = _problem("irregular, free bias (lam_b = 0), pal")
    W, H, b = _points(p)[0]
    ref = certify(p, W, H, b)
    monkeypatch.setattr(ufm.xp.devices, "namespace", lambda device: (strict, None))

    def not_here(*a, **k):
        raise AssertionError("device='cuda' must not run numpy's logits pass")

    monkeypatch.setattr(ufm.certificate, "loss_and_group_softmax", not_here)
    c = certify(p, W, H, b, device="cuda")
    assert abs(c.lower_bound - ref.lower_bound) <= 1e-12 * abs(ref.lower_bound)
    assert abs(c.objective - ref.objective) <= 1e-12 * abs(ref.objective)


def test_the_device_reaches_the_logits_pass(monkeypatch):
    """The device that ``namespace`` names is the one the arrays are made on: array-api-strict's
    second device stands in for a GPU, and the logits pass must be handed it (a pass on the
    default device would compute elsewhere than asked)."""
    import ufm.certificate
    import ufm.xp.certificate
    import ufm.xp.devices

    strict = _xp("array_api_strict")
    gpu = strict.Device("device1")
    p = _problem("balanced, bias, pal")
    W, H, b = _points(p)[0]
    seen = []
    real = ufm.xp.certificate.loss_and_group_softmax_xp

    def spy(problem, xp, W, H, b, device=None):
        seen.append(device)
        return real(problem, xp, W, H, b, device=device)

    monkeypatch.setattr(ufm.xp.devices, "namespace", lambda device: (strict, gpu))
    monkeypatch.setattr(ufm.xp.certificate, "loss_and_group_softmax_xp", spy)
    ref = certify(p, W, H, b)
    c = certify(p, W, H, b, device="cuda")
    assert seen == [gpu]
    assert abs(c.lower_bound - ref.lower_bound) <= 1e-12 * abs(ref.lower_bound)


def test_overflowing_terms_are_refused_without_a_warning():
    """``||W||^2`` overflowing (logits finite), ``lam_b = 0`` times an overflowing ``||b||^2``
    (``0 * inf``), and logits that overflow (their softmax then meets ``inf - inf``): one
    UFMError on both routes, with no floating-point warning on the way (the suite turns
    warnings into errors)."""
    import array_api_compat.numpy as xnp

    p = ufm.UFMProblem(balanced(3, {1: 2}), d=2, lam_W=1e-3, lam_H=1e-3, lam_b=0.0)
    W = np.array([[1e200, 0.0], [0.0, 1.0], [1.0, 0.0]])
    H = np.full((2, p.N), 1e-200)
    b = np.zeros(3)
    for run in (lambda W, H, b: certify(p, W, H, b), lambda W, H, b: certify_xp(p, W, H, b, xnp)):
        with pytest.raises(UFMError, match="could not be evaluated|not finite|overflow"):
            run(W, H, b)
        with pytest.raises(UFMError, match="could not be evaluated|not finite|overflow"):
            run(np.eye(3, 2), np.zeros((2, p.N)), np.array([1e200, -1e200, 0.0]))
        with pytest.raises(UFMError, match="could not be evaluated|not finite|overflow"):
            run(np.full((3, 2), 1e200), np.full((2, p.N), 1e200), b)  # the logits overflow: inf - inf


def test_a_failing_dual_bound_is_one_clear_error(monkeypatch):
    """LAPACK failing inside the dual bound (not seen on finite inputs of sane size) becomes a
    UFMError that says what failed, not a LinAlgError from deep inside."""
    import ufm.certificate

    def fails(problem, Pbar):
        raise np.linalg.LinAlgError("SVD did not converge")

    monkeypatch.setattr(ufm.certificate, "dual_bound", fails)
    p = _problem("balanced, bias, pal")
    W, H, b = _points(p)[0]
    with pytest.raises(UFMError, match=r"the dual bound could not be evaluated here \(SVD did not converge\)"):
        certify(p, W, H, b)


def test_certify_xp_names_itself_for_a_wrong_problem():
    import array_api_compat.numpy as xnp

    with pytest.raises(TypeError, match=r"ufm\.certify must be a ufm\.UFMProblem"):
        certify_xp("p", np.eye(2), np.eye(2), None, xnp)


def _no_gpu() -> None:
    from ufm.xp.devices import namespace

    try:
        namespace("cuda")
    except UFMError:
        return
    pytest.skip("a GPU array library with a CUDA device is present")


def test_certify_device_errors():
    _no_gpu()
    p = _problem("balanced, bias, pal")
    W, H, b = _points(p)[0]
    with pytest.raises(UFMError, match="no GPU array library with a CUDA device"):
        certify(p, W, H, b, device="cuda")
    with pytest.raises(UFMError, match="device must be one of"):
        certify(p, W, H, b, device="tpu")
    with pytest.raises(UFMError, match="rigorous=True .* takes no device"):
        certify(p, W, H, b, device="cuda", rigorous=True)


# -- the command line ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("cert_xp") / "sol.npz"
    assert main(["solve", "--K", "5", "--d", "4", "--profile", "1:3,2:2", "--lam-W", "5e-3", "--lam-H", "5e-3",
                 "--lam-b", "1e-2", "--save", str(path)]) == 0
    return str(path)


def test_cli_device_cuda_without_a_gpu_is_one_line_before_any_work(saved, tmp_path, capsys):
    _no_gpu()
    code, out, err = run_cli(["certify", saved, "--device", "cuda"], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("ufm: error: --device cuda: no GPU")
    # before any work: the file is not even read
    code, _, err = run_cli(["certify", str(tmp_path / "missing.npz"), "--device", "cuda"], capsys)
    assert code == 2 and err.count("\n") == 1 and "no GPU array library" in err
    code, _, err = run_cli(["certify", saved, "--device", "cuda", "--rigorous"], capsys)
    assert code == 2 and err.count("\n") == 1 and "--rigorous bounds numpy's rounding" in err
    code, _, err = run_cli(["certify", saved, "--device", "tpu"], capsys)
    assert code == 2 and "argument --device: invalid choice: 'tpu'" in err


def test_cli_device_cpu_gives_the_numbers_of_no_flag(saved, capsys):
    code0, out0, _ = run_cli(["certify", saved, "--json"], capsys)
    code1, out1, _ = run_cli(["certify", saved, "--json", "--device", "cpu"], capsys)
    assert code0 == code1 == 0 and json.loads(out1) == json.loads(out0)
    assert json.loads(out0)["certified"] is True


def test_cli_device_cuda_reaches_the_array_api_pass(saved, capsys, monkeypatch):
    import ufm.certificate
    import ufm.xp.devices

    strict = _xp("array_api_strict")
    code0, out0, _ = run_cli(["certify", saved, "--json"], capsys)
    monkeypatch.setattr(ufm.xp.devices, "namespace", lambda device: (strict, None))
    monkeypatch.setattr(ufm.certificate, "loss_and_group_softmax",
                        lambda *a, **k: (_ for _ in ()).throw(AssertionError("numpy's logits pass ran")))
    code1, out1, err1 = run_cli(["certify", saved, "--json", "--device", "cuda"], capsys)
    assert code1 == code0 == 0, err1
    c0, c1 = json.loads(out0)["certificate"], json.loads(out1)["certificate"]
    for key in ("lower_bound", "objective"):
        assert c1[key] == pytest.approx(c0[key], rel=1e-12)
