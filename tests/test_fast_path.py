"""The default path's pieces (#14): heavy ball, the cheap history, the cached label grouping,
the L-BFGS -> Newton-CG hand-over, BLAS threads, lazy imports. Speed is measured in
`python -m benchmarks`, never asserted here."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

import ufm
from ufm.metrics import Groups, nc1
from ufm.objectives.full import fun_and_grad, hessian_operator, hvp
from ufm.objectives.layout import random_point
from ufm.solvers.threads import blas_threads_for, is_small

pytestmark = pytest.mark.filterwarnings("ignore::ufm.exceptions.ConvergenceWarning")


def _problem(K=4, profile="1:3,2:1", d=5, lam=1e-2):
    return ufm.UFMProblem(ufm.balanced(K, profile), d=d, lam_W=lam, lam_H=lam, lam_b=lam)


def test_heavy_ball_is_pytorch_sgd_with_momentum():
    p = _problem()
    x0 = random_point(p, scale=0.1, rng=3)
    xs = []
    r = ufm.solve(p, "gd", x0.copy(), step=0.1, momentum=0.9, max_iter=7, history_every=0,
                  callback=lambda it, x, f: bool(xs.append(x.copy())))
    x, v = x0.copy(), np.zeros_like(x0)  # torch.optim.SGD(lr=0.1, momentum=0.9), dampening 0
    for k in range(7):
        np.testing.assert_array_equal(xs[k], x)
        g = fun_and_grad(x, p)[1]
        v = 0.9 * v + g
        x = x - 0.1 * v
    np.testing.assert_array_equal(r.x, x)


@pytest.mark.parametrize("bad", [-0.1, 1.0, "0.9", True])
def test_momentum_is_validated(bad):
    with pytest.raises(ufm.UFMError, match="momentum"):
        ufm.solve(_problem(), "gd", rng=0, momentum=bad, max_iter=2)


def test_default_history_is_the_cheap_trace_every_iteration():
    p = _problem()
    r = ufm.solve(p, "lbfgs", rng=0)
    h = r.history
    assert set(h) == {"iter", "fun", "grad_norm", "step", "time"}
    assert h["iter"] == list(range(r.nit + 1))
    assert math.isnan(h["step"][0]) and all(s > 0 for s in h["step"][1 : r.nit])
    assert h["fun"][-1] == r.fun and h["grad_norm"][-1] == r.grad_norm


def test_log_schedule_of_the_nc_metrics():
    p = _problem()
    r = ufm.solve(p, "gd", rng=0, step=0.5, max_iter=40, history_metrics="log")
    it, nc = np.array(r.history["iter"]), np.array(r.history["nc2_w"])
    measured = it[np.isfinite(nc)].tolist()
    assert measured == [0, 1, 2, 4, 8, 16, 32, 40]  # powers of two and the final iterate
    W = r.W
    assert nc[-1] == ufm.metrics.nc2_w(W)


def test_history_metrics_true_keeps_every_row_and_is_validated():
    p = _problem()
    r = ufm.solve(p, "agd", rng=0, max_iter=30, history_every=10, history_metrics=True)
    assert r.history["iter"] == [0, 10, 20, 30] and len(r.history["nc1"]) == 4
    with pytest.raises(ufm.UFMError, match="history_metrics"):
        ufm.solve(p, "lbfgs", rng=0, history_metrics="sometimes")


def test_label_grouping_is_cached_per_array_and_follows_changes():
    p = _problem(K=5, profile="1:4,2:2")
    Y = p.design.Y.copy()
    rng = np.random.default_rng(0)
    H = rng.standard_normal((3, Y.shape[1]))
    perm = rng.permutation(Y.shape[1])
    Yp, Hp = Y[:, perm], H[:, perm]  # samples in any order
    a, b = Groups.from_arrays(Hp, Yp), Groups.from_arrays(Hp, Yp)
    assert a.sets == b.sets and a.index is b.index  # the second call reused the grouping
    ref = Groups.from_arrays(H, Y)
    assert a.sets == ref.sets
    np.testing.assert_allclose(a.means, ref.means, rtol=1e-14, atol=1e-15)
    before = nc1(Hp, Yp)
    Yp[:, :] = Yp[:, ::-1]  # changed in place: regrouped, not served from the cache
    c = Groups.from_arrays(Hp, Yp)
    np.testing.assert_array_equal(c.index, Groups.from_arrays(Hp.copy(), Yp.copy()).index)
    assert nc1(Hp, Yp) != before


def test_hessian_operator_is_hvp():
    p = _problem()
    x, v = random_point(p, rng=1), random_point(p, rng=2)
    op = hessian_operator(x, p)
    np.testing.assert_array_equal(op(v), hvp(x, v, p))
    eps = 1e-6  # and it is the derivative of the gradient
    fd = (fun_and_grad(x + eps * v, p)[1] - fun_and_grad(x - eps * v, p)[1]) / (2 * eps)
    np.testing.assert_allclose(op(v), fd, rtol=1e-6, atol=1e-8)


def test_polish_from_hands_over_to_newton_and_keeps_gtol():
    p = _problem(K=5, profile="1:4,2:2", lam=5e-3)
    x0 = random_point(p, scale=0.1, rng=0)
    fast = ufm.solve(p, "lbfgs", x0.copy())
    plain = ufm.solve(p, "lbfgs", x0.copy(), polish_from=0.0)
    assert fast.status == plain.status == ufm.Status.CONVERGED_GTOL
    assert fast.grad_norm <= 1e-11 and "Newton-CG" in fast.extra["message"]
    assert fast.nit < plain.nit
    assert fast.fun == pytest.approx(plain.fun, rel=1e-13)
    assert ufm.verify(p, fast.W, fast.H, fast.b).passed


def test_small_problems_run_on_one_blas_thread():
    from threadpoolctl import threadpool_info

    assert is_small(10, 16, 380) and not is_small(200, 256, 21_900)
    with blas_threads_for(10, 16, 380):
        assert all(i["num_threads"] == 1 for i in threadpool_info() if i["user_api"] == "blas")


def test_large_problems_run_scipys_blas_on_one_thread_beside_numpys():
    """With numpy and scipy each bringing an OpenBLAS (pip wheels), a large solve keeps numpy's
    pool (the matrix products) and runs scipy's (the vector work) on one thread: two pools
    spinning on the same cores doubled the evaluations' time at the bench's L."""
    import scipy.linalg  # noqa: F401  (its BLAS loaded)
    from threadpoolctl import threadpool_info, threadpool_limits

    def pools() -> dict[str, int]:
        return {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

    with threadpool_limits(limits=2, user_api="blas"):  # the tests run on one thread: two, as a user has
        before = pools()
        numpy_libs = [f for f in before if "numpy" in f.replace("\\", "/").split("/")[-2]]
        if not numpy_libs or len(before) < 2:
            pytest.skip("numpy and scipy share one BLAS library here: nothing to separate")
        assert all(before[f] == 2 for f in numpy_libs)  # (another library loaded by other tests may cap its pool)
        with blas_threads_for(200, 256, 21_900):
            inside = pools()
        assert all(inside[f] == 2 for f in numpy_libs)
        assert all(inside[f] == 1 for f in before if f not in numpy_libs)
        assert pools() == before  # restored


def test_import_ufm_loads_no_scipy():
    code = "import sys, ufm; ufm.UFMError; print(sorted(m for m in ('scipy', 'cvxpy', 'matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert ufm.solve is ufm.solvers.solve and "verify" in dir(ufm)
    with pytest.raises(AttributeError):
        ufm.no_such_name  # noqa: B018


def test_lazy_names_that_are_also_modules_stay_functions():
    code = ("import ufm.objectives.full, ufm.verify, ufm\n"
            "print(callable(ufm.objective), callable(ufm.verify), ufm.verify.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True", "ufm.verify"]


def test_cross_angles_match_the_pairwise_angle():
    from ufm.metrics import _angle_deg, _cross_angles_deg

    rng = np.random.default_rng(4)
    U, V = rng.standard_normal((5, 6)), rng.standard_normal((5, 4))
    V[:, 2] = 0.0
    V[:, 3] = 2.0 * U[:, 1]  # parallel to a column of U
    got = _cross_angles_deg(U, V)
    want = np.array([[_angle_deg(U[:, i], V[:, j]) for j in range(4)] for i in range(6)])
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-6)
    assert np.isnan(got[:, 2]).all() and abs(got[1, 3]) < 1e-6


def test_mean_cross_angle_by_blocks_is_the_mean_of_the_matrix():
    from ufm.metrics import _cross_angles_deg, _mean_cross_angle

    rng = np.random.default_rng(5)
    U, V = rng.standard_normal((4, 7)), rng.standard_normal((4, 7))
    V[:, 3] = 0.0
    matched = rng.uniform(0, 1, 7)
    full = _cross_angles_deg(U, V)
    np.fill_diagonal(full, matched)
    want = float(np.mean(full[np.isfinite(full)]))
    assert _mean_cross_angle(U, V, matched, block=2) == pytest.approx(want, rel=1e-14)
