"""`ufm certify FILE.npz`, `ufm solve --method convex` and the convex claims of `ufm verify`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_run import run_cli as run

from ufm.cli import main
from ufm.designs import balanced
from ufm.features import save_npz
from ufm.problem import UFMProblem
from ufm.solvers import solve
from ufm.suite import DEFAULT_SUITE, SuiteCase, run_suite

SOLVE = ["solve", "--K", "5", "--profile", "1:3,2:2", "--lam-W", "5e-3", "--lam-H", "5e-3", "--lam-b", "1e-2"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("cert") / "sol.npz"
    assert main([*SOLVE, "--d", "4", "--save", str(path)]) == 0
    return str(path)


def test_certify_a_saved_solution(saved, capsys):
    capsys.readouterr()
    code, out, _ = run(["certify", saved, "--json"], capsys)
    res = json.loads(out)
    assert code == 0 and res["certified"] is True
    cert = res["certificate"]
    assert cert["rel_gap"] < 1e-9 and cert["gap"] >= -1e-12
    assert cert["lower_bound"] <= cert["objective"] + 1e-12
    assert res["theory"]["regime"] == "collapse"
    assert cert["objective"] == pytest.approx(res["theory"]["value"], rel=1e-9, abs=0)
    code, out, _ = run(["certify", saved], capsys)
    assert code == 0 and "CERTIFIED globally optimal" in out


def test_flags_override_the_stored_lambdas(saved, capsys):
    """Other weight decays: the saved point is not their optimum (exit 1, a large gap)."""
    code, out, _ = run(["certify", saved, "--lam-W", "2e-2", "--json"], capsys)
    res = json.loads(out)
    assert code == 1 and res["certified"] is False
    assert res["problem"]["lam_W"] == pytest.approx(2e-2, rel=0, abs=0)
    assert res["certificate"]["rel_gap"] > 1e-3


def test_samples_in_any_order_and_without_bias(tmp_path, capsys):
    """A file whose samples are shuffled (as from a data loader) and with no bias."""
    problem = UFMProblem(balanced(4, "1:3,2:1"), 4, 5e-3, 5e-3, bias=False)
    res = solve(problem, "lbfgs", rng=0)
    perm = np.random.default_rng(3).permutation(problem.N)
    path = tmp_path / "shuffled.npz"
    save_npz(path, W=res.W, H=res.H[:, perm], Y=problem.design.Y[:, perm].astype(np.int8))
    code, out, _ = run(["certify", str(path), "--lam-W", "5e-3", "--lam-H", "5e-3", "--json"], capsys)
    cert = json.loads(out)["certificate"]
    assert code == 0 and cert["rel_gap"] < 1e-9
    assert cert["objective"] == pytest.approx(res.fun, rel=1e-12, abs=0)


def test_d_below_K_minus_1_is_not_certified(tmp_path, capsys):
    path = tmp_path / "d2.npz"
    # below d = K the gap may stay open: solve says so (exit 1, verified false) and still saves
    assert main([*SOLVE, "--d", "2", "--save", str(path)]) == 1
    assert "verified: false" in capsys.readouterr().out
    code, out, _ = run(["certify", str(path)], capsys)
    assert code == 1 and "NOT certified" in out and "not-applicable" in out


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["certify", "/nonexistent/x.npz"], "No such file"),
        (["certify", "{tmp}/nolam.npz"], "--lam-W and --lam-H"),
    ],
)
def test_bad_input_is_one_clear_line(argv, needle, tmp_path, capsys):
    problem = UFMProblem(balanced(3, "1:2"), 2, 1e-2, 1e-2)
    save_npz(tmp_path / "nolam.npz", W=np.zeros((3, 2)), H=np.zeros((2, 6)), Y=problem.design.Y)
    code, _, err = run([a.format(tmp=tmp_path) for a in argv], capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith("ufm: error:") and needle in err, err


def test_solve_convex_json_has_the_relaxation_and_the_certificate(capsys):
    code, out, _ = run([*SOLVE, "--d", "4", "--method", "convex", "--json"], capsys)
    res = json.loads(out)
    assert code == 0 and res["method"] == "convex" and res["status"] == "OPTIMAL"
    assert res["certificate"]["rel_gap"] < 1e-9 and "lower_bound" in res["certificate"]
    cv = res["convex"]
    assert cv["rank"] == 4 and cv["factored"] is True and cv["solver"] == "CLARABEL"
    assert cv["value"] == pytest.approx(res["theory"]["value"], rel=1e-7, abs=0)
    assert cv["lower_bound"] <= res["theory"]["value"] * (1 + 1e-12)


def test_solve_convex_below_the_rank_says_so(capsys):
    code, out, _ = run([*SOLVE, "--d", "2", "--method", "convex", "--cvx-solver", "SCS",
                        "--formulation", "variational"], capsys)
    # the relaxation's minimiser does not fit in d = 2: not a solution of F, so exit 1
    assert code == 1 and "RANK_EXCEEDS_D" in out and "rank 4 > d = 2" in out and "SCS/variational" in out


def test_suite_convex_claims():
    """The suite's convex claims on two cases: the theorem's (three-way agreement) and the
    imbalanced one (bound and tightness; the verdict says the theorem does not apply)."""
    cases = (DEFAULT_SUITE[1], DEFAULT_SUITE[-1])
    assert "imbalanced" in cases[1].name and isinstance(cases[1], SuiteCase)
    out = run_suite(cases)
    # all N feature columns: the nc1 claim is a measurement, not inherited from the grouped solver
    assert all(o.solver["method"] == "lbfgs" and o.solver["grouped"] is False for o in out)
    names0 = [c.name for c in out[0].verdict.claims]
    assert {"convex_value", "three_way", "certificate"} <= set(names0)
    v1 = out[1].verdict
    assert v1.regime == "not-applicable" and "not balanced" in v1.reason
    assert [c.name for c in v1.claims] == ["certificate", "convex_bound", "convex_tight"]
    for o in out:
        for c in o.verdict.claims:
            assert c.passed, (o.case.name, c)
    three = next(c for c in out[0].verdict.claims if c.name == "three_way")
    assert three.measured < 1e-6 and three.tol == pytest.approx(1e-6, rel=0, abs=0)
