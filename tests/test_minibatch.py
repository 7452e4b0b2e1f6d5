"""Minibatch SGD / Adam / AdamW on the UFM: exact minibatch gradients, schedules, and
training that ends near the certified optimum."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ufm
from ufm.exceptions import ConvergenceWarning, UFMError
from ufm.objectives.batch import MinibatchObjective
from ufm.objectives.full import fun_and_grad
from ufm.objectives.layout import random_point
from ufm.solvers.minibatch import learning_rate


@pytest.fixture(scope="module")
def problem():
    return ufm.UFMProblem(ufm.balanced(4, {1: 6, 2: 2}), 5, 5e-3, 5e-3, 1e-2)  # N = 36


def test_full_batch_is_F_and_its_gradient(problem):
    mb = MinibatchObjective(problem)
    x = random_point(problem, scale=2.0, rng=1)
    f, g = mb.value_and_grad(x, np.arange(problem.N))
    f_ref, g_ref = fun_and_grad(x, problem)  # the fast PAL kernel: another code path
    assert f == pytest.approx(f_ref, rel=1e-13)
    np.testing.assert_allclose(g, g_ref, rtol=1e-10, atol=1e-14)


def test_minibatch_gradient_matches_finite_differences(problem):
    mb = MinibatchObjective(problem)
    gen = np.random.default_rng(3)
    x = random_point(problem, scale=2.0, rng=gen)
    batch = np.sort(gen.choice(problem.N, size=7, replace=False))
    _, g = mb.value_and_grad(x, batch)
    for _ in range(4):
        v = gen.standard_normal(x.size)
        v /= np.linalg.norm(v)
        eps = 1e-6
        fd = (mb.value_and_grad(x + eps * v, batch)[0] - mb.value_and_grad(x - eps * v, batch)[0]) / (2 * eps)
        assert fd == pytest.approx(float(g @ v), rel=1e-6, abs=1e-9)
    # outside the batch, the gradient in H is the decay alone
    from ufm.objectives.layout import unpack

    _, H, _ = unpack(x, problem)
    _, gH, _ = unpack(g, problem)
    out = np.setdiff1d(np.arange(problem.N), batch)
    np.testing.assert_array_equal(gH[:, out], problem.lam_H * H[:, out])


def test_batches_of_a_partition_average_to_F(problem):
    """With equal batches, the mean of F_B over a partition of the samples is F exactly."""
    mb = MinibatchObjective(problem)
    x = random_point(problem, scale=1.5, rng=2)
    perm = np.random.default_rng(0).permutation(problem.N)
    vals = [mb.value_and_grad(x, np.sort(perm[i:i + 9]))[0] for i in range(0, problem.N, 9)]
    assert np.mean(vals) == pytest.approx(fun_and_grad(x, problem)[0], rel=1e-13)


def test_learning_rate_schedules():
    assert learning_rate(0.4, "constant", 7, 10) == 0.4
    assert learning_rate(0.4, "cosine", 0, 10) == pytest.approx(0.4)
    assert learning_rate(0.4, "cosine", 5, 10) == pytest.approx(0.2)
    assert [learning_rate(1.0, "step", e, 9) for e in (2, 3, 5, 6, 8)] == pytest.approx([1, 0.1, 0.1, 0.01, 0.01])
    with pytest.raises(UFMError, match="lr_schedule"):
        learning_rate(0.1, "linear", 0, 10)


@pytest.mark.parametrize("method,opts", [
    ("sgd", {"lr": 0.5, "lr_schedule": "cosine"}),
    ("adam", {"lr": 1e-2, "lr_schedule": "cosine"}),
])
def test_training_ends_near_the_certified_optimum(problem, method, opts):
    with pytest.warns(ConvergenceWarning, match="fixed schedule"):
        res = ufm.solve(problem, method, rng=0, epochs=150, batch_size=8, **opts)
    h = res.history
    n = len(h["iter"])
    assert h["iter"] == list(range(151)) and res.nit == 150 and res.extra["steps"] == 150 * 5
    assert all(len(h[k]) == n for k in ("fun", "grad_norm", "gap", "rel_gap", "lr", "nc1", "nc2_w", "scale_2"))
    assert min(h["gap"]) > -1e-10  # a certified lower bound never exceeds F
    assert h["rel_gap"][0] > 0.1 and h["rel_gap"][-1] < 1e-2
    pred = ufm.predict(problem)
    assert h["scale_2"][-1] == pytest.approx(pred.c[2], rel=2e-2)
    assert res.fun == pytest.approx(pred.value, rel=1e-2)


def test_adamw_decays_outside_the_adaptive_step(problem):
    """Decoupled decay changes the fixed point: AdamW ends farther from min F than Adam."""
    with pytest.warns(ConvergenceWarning):
        adam = ufm.solve(problem, "adam", rng=0, epochs=150, batch_size=8, lr_schedule="cosine",
                         history_metrics=False)
        adamw = ufm.solve(problem, "adam", rng=0, epochs=150, batch_size=8, lr_schedule="cosine", decoupled=True,
                          history_metrics=False)
    assert adamw.extra["decoupled"] and not adam.extra["decoupled"]
    assert adamw.history["rel_gap"][-1] > 10 * adam.history["rel_gap"][-1]


def test_same_seed_same_run_and_gtol_stops(problem):
    a = ufm.solve(problem, "sgd", rng=5, epochs=40, batch_size=8, lr=0.5, gtol=1e-1, history_metrics=False)
    b = ufm.solve(problem, "sgd", rng=5, epochs=40, batch_size=8, lr=0.5, gtol=1e-1, history_metrics=False)
    assert a.status == ufm.Status.CONVERGED_GTOL and a.nit < 40
    np.testing.assert_array_equal(a.x, b.x)
    assert a.grad_norm <= 1e-1


@pytest.mark.parametrize("opts,match", [({"epochs": -1}, "epochs"), ({"batch_size": 0}, "batch_size"),
                                        ({"lr": 0.0}, "lr"), ({"lr_schedule": "exp"}, "lr_schedule"),
                                        ({"momentum_": 0.9}, "Unknown option")])
def test_bad_options_are_one_line_errors(problem, opts, match):
    with pytest.raises(UFMError, match=match):
        ufm.solve(problem, "sgd", **opts)


def test_batch_larger_than_N_is_full_batch(problem):
    with pytest.warns(ConvergenceWarning):
        r = ufm.solve(problem, "sgd", rng=0, epochs=3, batch_size=10_000, lr=0.1)
    assert r.extra["steps"] == 3 and r.extra["batch_size"] == problem.N and math.isfinite(r.fun)


@pytest.mark.filterwarnings("ignore::ufm.exceptions.ConvergenceWarning")
def test_cli_solve_method_sgd(capsys):
    from ufm.cli import main

    rc = main(["solve", "--K", "3", "--d", "3", "--profile", "1:4,2:1", "--lam-W", "5e-3", "--lam-H", "5e-3",
               "--method", "sgd", "--epochs", "20", "--batch-size", "5", "--lr-schedule", "cosine", "--json"])
    # 20 epochs end short of the optimum: the run is reported, but not verified (exit 1)
    assert rc == 1
    out = capsys.readouterr().out
    assert '"method": "sgd"' in out and '"nit": 20' in out and '"verified": false' in out


def test_tag_scales_agree_with_tagwise():
    from ufm.metrics import tagwise
    from ufm.solvers.minibatch import tag_scales

    p = ufm.UFMProblem(ufm.balanced(5, {1: 3, 2: 2, 3: 1}), 6, 5e-3, 5e-3)
    H = np.random.default_rng(4).standard_normal((6, p.N))
    got, ref = tag_scales(H, p.design.Y), tagwise(H, p.design.Y)
    assert sorted(got) == [2, 3]
    for m in (2, 3):
        assert got[m] == pytest.approx(ref[m]["scale"], rel=1e-13)
