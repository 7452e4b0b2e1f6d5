"""The cvxpy relaxation (docs/theory.md section 5): a lower bound for every d, tight at d >= rank,
equal to the theorem's min phi and to L-BFGS on balanced designs, factored back exactly.

Independent references: L-BFGS on the nonconvex F, the theorem's scalar problem, and a
peer's formulation for single labels (the Gram-matrix SDP of the layer-peeled model:
``X = [[W W^T, W H_g], [H_g^T W^T, H_g^T H_g]] >= 0``), written here from scratch.
"""

from __future__ import annotations

import warnings

import cvxpy as cp
import numpy as np
import pytest

from ufm.certificate import convex_value
from ufm.designs import balanced, from_counts, imbalanced_pairs, imbalanced_single
from ufm.exceptions import ConvergenceWarning, SolverError, UFMError
from ufm.objectives.full import objective
from ufm.problem import UFMProblem
from ufm.result import Status
from ufm.solvers import convex_build, solve
from ufm.solvers.convex import choose_formulation, choose_solver, haar_basis, map_status
from ufm.theory import predict


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


# -- the three-way agreement (the "done" table) -------------------------------------
AGREEMENT = [
    (4, "1:3", 3, 5e-3, 5e-3, 1e-2, True),
    (5, "1:3,2:2", 4, 5e-3, 5e-3, 1e-2, True),
    (5, "1:2,2:1", 6, 1e-2, 1e-3, 0.0, True),
    (6, "1:2,2:1,3:1", 5, 2e-3, 8e-3, 0.0, False),
    (6, "2:2,3:1", 5, 1e-3, 4e-3, 1e-3, True),
    (7, "1:3,3:1", 6, 2e-3, 2e-3, 1e-2, True),
    (8, "1:2,2:1,3:1", 7, 1e-3, 1e-3, 1e-3, True),
    (8, "1:3,2:2", 8, 1e-3, 2e-3, 0.0, False),
    (5, "1:2,2:1", 4, 0.2, 0.1, 1e-2, True),  # trivial regime
]


@pytest.mark.parametrize("K,profile,d,lam_W,lam_H,lam_b,bias", AGREEMENT)
def test_three_way_agreement_on_balanced_designs(K, profile, d, lam_W, lam_H, lam_b, bias):
    """d >= K-1: L-BFGS's F, cvxpy's min C and the theorem's min phi agree to 1e-7, and
    L-BFGS's solution is certified to 1e-9 (relative)."""
    problem = UFMProblem(balanced(K, profile), d, lam_W, lam_H, lam_b, bias)
    theory = predict(problem).value
    cvx = solve(problem, "convex")
    nonconvex = solve(problem, "lbfgs", rng=0)
    values = [nonconvex.fun, cvx.extra["value"], theory]
    spread = (max(values) - min(values)) / abs(theory)
    assert spread < 1e-7, (problem.describe(), values)
    assert cvx.status == Status.OPTIMAL and cvx.success
    assert cvx.extra["rank"] == (0 if predict(problem).regime == "trivial" else K - 1)
    assert cvx.extra["lower_bound"] <= theory * (1 + 1e-12)
    assert rel(cvx.extra["lower_bound"], theory) < 1e-9
    from ufm.certificate import certify

    assert certify(problem, nonconvex.W, nonconvex.H, nonconvex.b).rel_gap < 1e-9


@pytest.mark.parametrize("formulation", ["variational", "nuc"])
def test_formulations_agree_and_factor_back(formulation):
    """Both nuclear-norm formulations give min C; factoring the solution back reproduces
    it (``F(W, H, b) = C(Z, b)`` before polishing), and the returned point is the factor."""
    problem = UFMProblem(imbalanced_pairs(5, 3, heavy_count=5), 5, 5e-3, 5e-3, 1e-3)
    res = solve(problem, "convex", formulation=formulation, polish=False)
    ref = solve(problem, "lbfgs", rng=1)
    e = res.extra
    assert e["formulation"] == formulation
    assert rel(e["value"], ref.fun) < 1e-7
    assert rel(res.fun, e["value"]) < 1e-9  # factor-back reproduces C
    assert res.fun == pytest.approx(objective(problem, res.W, res.H, res.b), rel=1e-14, abs=0)
    Z = res.W @ res.H
    Zg = e["Zg"]
    assert np.allclose(Z, Zg[:, problem.design.group_index], rtol=0, atol=1e-6 * np.abs(Zg).max())
    assert convex_value(problem, Zg, e["b"]) == pytest.approx(e["value"], rel=1e-14, abs=0)
    assert e["lower_bound"] <= ref.fun * (1 + 1e-12)
    assert abs(e["solver_value"] - e["value"]) < 1e-6 * abs(e["value"])


def test_polished_factor_is_certified():
    """With ``polish`` (default) the factored point is certified globally optimal to 1e-12."""
    from ufm.certificate import certify

    problem = UFMProblem(balanced(5, "1:2,2:1"), 5, 5e-3, 2e-3, 0.0)
    res = solve(problem, "convex")
    cert = certify(problem, res.W, res.H, res.b)
    assert cert.rel_gap < 1e-12 and res.grad_norm < 1e-9
    assert rel(res.fun, res.extra["value"]) < 1e-8
    assert res.extra["lower_bound"] == pytest.approx(cert.lower_bound, rel=1e-12, abs=0)


@pytest.mark.parametrize("d", [1, 2, 3, 4, 5, 6])
def test_relaxation_is_below_the_nonconvex_value_for_every_d(d):
    """``min C <= min F`` at every d; at ``d < K-1 = 4`` the two part (the relaxation's
    minimiser has rank 4 > d and cannot be factored); from ``d = 4`` on they agree."""
    problem = UFMProblem(balanced(5, "1:3,2:2"), d, 5e-3, 5e-3, 1e-2)
    cvx = solve(problem, "convex")
    best = min(solve(problem, "lbfgs", rng=s).fun for s in range(2))
    e = cvx.extra
    assert e["lower_bound"] <= best * (1 + 1e-12)
    assert e["value"] <= best * (1 + 1e-8)
    if d < 4:
        assert cvx.status == Status.RANK_EXCEEDS_D and not cvx.success
        assert not e["factored"] and e["rank"] == 4 and "rank 4 > d" in e["note"]
        assert best > e["value"] * (1 + 1e-3)  # the nonconvex problem and its relaxation part
        assert cvx.fun >= best * (1 - 1e-12)  # the truncation is a UFM point: F >= min F
        assert cvx.W.shape == (5, d) and cvx.H.shape == (d, problem.N)
        assert "rank > d" in cvx.message
    else:
        assert cvx.status == Status.OPTIMAL and e["factored"]
        assert rel(e["value"], best) < 1e-7


def test_single_label_imbalanced_agrees_with_the_gram_sdp():
    """Single labels, imbalanced classes: our relaxation equals a peer's Gram-matrix SDP
    (valid only for single labels) and L-BFGS at d = K."""
    K = 4
    counts = np.array([8, 4, 2, 1])
    design = imbalanced_single(K, counts.tolist())
    lam_W, lam_H, lam_b = 5e-3, 1e-2, 1e-3
    problem = UFMProblem(design, K, lam_W, lam_H, lam_b)
    N = int(counts.sum())
    X = cp.Variable((2 * K, 2 * K), PSD=True)  # [[W W^T, W H_g], [H_g^T W^T, H_g^T H_g]]
    b = cp.Variable(K)
    logits = X[:K, K:] + cp.reshape(b, (K, 1), order="F") @ np.ones((1, K))  # column k: class k
    loss = sum(counts[k] * (cp.log_sum_exp(logits[:, k]) - logits[k, k]) for k in range(K)) / N
    penalty = lam_W / 2 * cp.trace(X[:K, :K]) + lam_H / 2 * cp.sum(cp.multiply(counts, cp.diag(X[K:, K:])))
    peer = cp.Problem(cp.Minimize(loss + penalty + lam_b / 2 * cp.sum_squares(b)))
    peer.solve(solver="CLARABEL")
    ours = solve(problem, "convex")
    ref = solve(problem, "lbfgs", rng=0)
    assert peer.status == "optimal"
    assert rel(ours.extra["value"], peer.value) < 1e-7
    assert rel(ours.extra["value"], ref.fun) < 1e-7


@pytest.mark.parametrize(
    "problem",
    [
        UFMProblem(balanced(4, "1:3,2:1"), 4, 5e-3, 5e-3, 1e-2, loss="pal-normalized"),
        UFMProblem(balanced(4, "1:3,2:1"), 4, 5e-3, 5e-3, 1e-2, loss="bce"),
        UFMProblem(from_counts(4, {(0,): 5, (1,): 1, (2, 3): 3, (0, 1, 2): 2}), 4, 5e-3, 5e-3, 0.0),
    ],
    ids=["pal-normalized", "bce", "arbitrary-counts"],
)
def test_other_losses_and_designs(problem):
    """Normalised PAL, BCE (not shift-invariant: full K dimensions) and arbitrary counts:
    the relaxation matches L-BFGS at d >= K."""
    cvx = solve(problem, "convex")
    ref = solve(problem, "lbfgs", rng=0)
    assert rel(cvx.extra["value"], ref.fun) < 1e-7
    assert cvx.extra["value"] <= ref.fun * (1 + 1e-8)


def test_scs_on_request_matches_clarabel():
    problem = UFMProblem(balanced(5, "1:3,2:2"), 4, 5e-3, 5e-3, 1e-2)
    a = solve(problem, "convex", solver="CLARABEL")
    b = solve(problem, "convex", solver="SCS")
    assert b.extra["solver"] == "SCS" and b.status == Status.OPTIMAL
    assert rel(a.extra["value"], b.extra["value"]) < 1e-7


def test_auto_solver_by_size(monkeypatch):
    """``solver="auto"`` (the default) keeps Clarabel on small problems and picks SCS once
    Clarabel's per-iteration cost ``G svec(K)^3`` passes the threshold (K >= 14 on the
    full profile 1:5,2:2); forced to SCS on a small imbalanced design it returns the same
    ``min C`` as Clarabel, with Clarabel as the fallback."""
    assert choose_solver(9, 55) == "CLARABEL"  # K = 10, profile 1:5,2:2
    assert choose_solver(12, 91) == "CLARABEL"  # K = 13
    assert choose_solver(13, 105) == "SCS" and choose_solver(29, 465) == "SCS"  # K = 14, 30
    assert choose_solver(49, 50) == "SCS"  # K = 50 single labels: 50 blocks of order 50
    problem = UFMProblem(imbalanced_pairs(5, 3, heavy_count=5), 5, 5e-3, 5e-3, 1e-3)
    a = solve(problem, "convex")
    assert a.extra["solver"] == "CLARABEL"
    monkeypatch.setattr(convex_build, "AUTO_CLARABEL_MAX_COST", 0.0)
    b = solve(problem, "convex")
    assert b.extra["solver"] == "SCS" and b.status == Status.OPTIMAL
    assert [t["solver"] for t in b.extra["attempts"]] == ["SCS"]
    assert rel(a.extra["value"], b.extra["value"]) < 1e-7


def test_inaccurate_is_its_own_status_and_warns():
    """A solve stopped early is never reported optimal: SCS with 20 iterations and no
    fallback gives an inaccurate or iteration-limited status, a warning, success False,
    and a lower bound that is still valid."""
    problem = UFMProblem(balanced(5, "1:3,2:2"), 4, 5e-3, 5e-3, 1e-2)
    with pytest.warns(ConvergenceWarning, match="approximate"):
        res = solve(problem, "convex", solver="SCS", fallback=False, solver_options={"max_iters": 20})
    assert res.status in (Status.OPTIMAL_INACCURATE, Status.MAX_ITER) and not res.success
    assert res.extra["lower_bound"] <= predict(problem).value * (1 + 1e-12)


def test_fallback_to_the_other_solver():
    """Clarabel stopped after 2 iterations falls back to SCS, which solves it."""
    problem = UFMProblem(balanced(4, "1:2,2:1"), 3, 5e-3, 5e-3, 1e-2)
    res = solve(problem, "convex", solver="CLARABEL", solver_options={"max_iter": 2})
    attempts = res.extra["attempts"]
    assert [a["solver"] for a in attempts] == ["CLARABEL", "SCS"]
    assert attempts[0]["status"] != "OPTIMAL" and res.extra["solver"] == "SCS"
    assert res.status == Status.OPTIMAL
    assert rel(res.extra["value"], predict(problem).value) < 1e-7


def test_no_solution_raises_solver_error():
    problem = UFMProblem(balanced(3, "1:1"), 2, 5e-3, 5e-3, 1e-2)
    with pytest.raises(SolverError) as info, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        solve(problem, "convex", solver="CLARABEL", fallback=False, solver_options={"max_iter": 0})
    assert "CLARABEL" in str(info.value) and isinstance(info.value.status, Status)


def test_status_mapping():
    assert map_status(cp.OPTIMAL) is Status.OPTIMAL
    assert map_status(cp.OPTIMAL_INACCURATE) is Status.OPTIMAL_INACCURATE
    assert map_status(cp.INFEASIBLE) is Status.INFEASIBLE
    assert map_status(cp.INFEASIBLE_INACCURATE) is Status.INFEASIBLE
    assert map_status(cp.UNBOUNDED) is Status.UNBOUNDED
    assert map_status(cp.UNBOUNDED_INACCURATE) is Status.UNBOUNDED
    assert map_status(cp.USER_LIMIT) is Status.MAX_ITER
    assert map_status(cp.SOLVER_ERROR) is Status.SOLVER_ERROR
    assert map_status("infeasible_or_unbounded") is Status.SOLVER_ERROR
    assert map_status(None) is Status.SOLVER_ERROR
    for s in Status:  # success iff >= 0; every status has its message
        assert Status(s).name and isinstance(s.value, int)
    assert not Status.RANK_EXCEEDS_D >= 0


def test_bad_options_and_unattainable_problems():
    problem = UFMProblem(balanced(3, "1:1"), 2, 5e-3, 5e-3)
    with pytest.raises(UFMError, match="Unknown option"):
        solve(problem, "convex", max_iters=3)
    with pytest.raises(UFMError, match="formulation"):
        solve(problem, "convex", formulation="sdp")
    with pytest.raises(UFMError, match="solver"):
        solve(problem, "convex", solver="MOSEK")
    with pytest.raises(UFMError, match="rank_tol"):
        solve(problem, "convex", rank_tol=2.0)
    free = UFMProblem(from_counts(3, {(0,): 2, (1,): 2}), 2, 5e-3, 5e-3, 0.0)
    with pytest.raises(UFMError, match=r"Classes \[2\] occur in no label set"):
        solve(free, "convex")


def test_haar_basis_and_formulation_choice():
    for K in (2, 3, 7, 16):
        B = haar_basis(K).toarray()
        assert np.allclose(B.T @ B, np.eye(K - 1), rtol=0, atol=1e-14)
        assert np.allclose(B.sum(axis=0), 0.0, rtol=0, atol=1e-14)
    assert choose_formulation(29, 30) == "nuc"  # single labels, K = 30: few label sets
    assert choose_formulation(29, 465) == "variational"  # singles and pairs, K = 30
    assert choose_formulation(30, 465, "SCS") == "nuc" and choose_formulation(30, 2000, "SCS") == "variational"
