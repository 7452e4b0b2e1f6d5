"""The fixed (frozen) classifier: solver, ETF prediction, dual bound, verify, CLI."""

import json
import math

import numpy as np
import pytest
from scipy.optimize import minimize

import ufm
from ufm.cli import main
from ufm.fixed import (
    certify_fixed,
    coinciding_scale,
    etf_classifier,
    parse_fixed,
    predict_fixed,
    verify_fixed,
)
from ufm.objectives.full import value_and_grad

PROFILES = ["1:1", "1:2,2:1", "1:1,2:1,3:1", "2:1,3:2", "1:1,2:1,5:1"]


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("bias,lam_b", [(True, 1e-2), (True, 0.0), (False, 0.0)])
@pytest.mark.parametrize("scale,d", [(0.3, 5), (1.0, 4), (3.0, 7)])
def test_solver_matches_the_etf_prediction(profile, bias, lam_b, scale, d):
    p = ufm.UFMProblem(ufm.balanced(5, profile), d=d, lam_W=5e-3, lam_H=2e-3, lam_b=lam_b, bias=bias)
    r = ufm.solve(p, fixed_W=f"etf:{scale}")
    pred = predict_fixed(p, r.W)
    assert pred.regime == "collapse"
    assert abs(r.fun - pred.value) <= 1e-9 * abs(pred.value)
    assert np.allclose(np.linalg.norm(r.W, axis=1), scale, rtol=1e-14)
    verdict = verify_fixed(p, r.W, r.H, r.b)
    assert verdict.passed, verdict.table()
    names = {c.name for c in verdict.claims}
    assert {"value", "bias", "tagwise", "certificate"} <= names
    # stationarity of the full (ungrouped) objective in (H, b)
    _, _, dH, db = value_and_grad(p, r.W, r.H, r.b)
    assert np.linalg.norm(dH) < 1e-12 and np.linalg.norm(db) < 1e-12


def test_scalars_solve_their_defining_equation():
    K, lam_H, scale = 6, 3e-3, 0.7
    p = ufm.UFMProblem(ufm.balanced(K, "1:1,2:1"), d=K, lam_W=1e-2, lam_H=lam_H, lam_b=1e-2)
    assert p.N == 6 + 15
    pred = predict_fixed(p, etf_classifier(K, K, scale))
    gamma = scale**2 * K / (K - 1)
    for m, s in pred.s.items():
        lhs = s * (m * math.exp(s) + K - m)
        assert lhs == pytest.approx(K * gamma / (p.N * lam_H), rel=1e-14)


def test_official_etf_and_parsing():
    W = parse_fixed("etf", 4, 4)
    assert np.allclose(W, math.sqrt(4 / 3) * (np.eye(4) - 0.25))
    assert np.allclose(np.linalg.norm(parse_fixed("etf:2.5", 4, 3), axis=1), 2.5)
    G = parse_fixed("etf", 5, 7) @ parse_fixed("etf", 5, 7).T
    assert np.allclose(G, 5 / 4 * (np.eye(5) - 0.2))
    for bad in ("etf:x", "ETF:1", "etf:0", "etf:-1", "random"):
        with pytest.raises(ufm.UFMError):
            parse_fixed(bad, 4, 4)
    with pytest.raises(ufm.UFMError):
        parse_fixed("etf", 5, 3)


@pytest.mark.parametrize("profile", ["1:2,2:1", "1:1,2:1,3:1"])
def test_coinciding_scale_gives_the_learned_optimum(profile):
    """At the learned optimum's row norm the fixed optimum is the learned one (ufm.theory)."""
    p = ufm.UFMProblem(ufm.balanced(5, profile), d=5, lam_W=5e-3, lam_H=5e-3, lam_b=1e-2)
    learned = ufm.predict(p)
    a = coinciding_scale(p)
    fixed = predict_fixed(p, etf_classifier(5, 5, a))
    assert fixed.value == pytest.approx(learned.value, rel=1e-13)
    for m in learned.s:
        assert fixed.s[m] == pytest.approx(learned.s[m], rel=1e-10)
    # any other scale is worse (the learned W minimises over all W)
    for f in (0.5, 0.9, 1.1, 2.0):
        assert predict_fixed(p, etf_classifier(5, 5, f * a)).value > learned.value
    # trivial regime of the learned classifier: the coinciding scale is 0
    p2 = ufm.UFMProblem(ufm.balanced(5, profile), d=5, lam_W=1.0, lam_H=1.0, lam_b=1e-2)
    assert coinciding_scale(p2) == 0.0


@pytest.mark.parametrize("bias,lam_b", [(True, 1e-2), (True, 0.0), (False, 0.0)])
def test_arbitrary_W_and_imbalanced_design(bias, lam_b):
    """Any W, any design: the grouped Newton solve equals a plain L-BFGS on all of (H, b)."""
    rng = np.random.default_rng(3)
    design = ufm.imbalanced_single(4, [5, 3, 2, 1], {(0, 1): 2, (2, 3): 1})
    p = ufm.UFMProblem(design, d=3, lam_W=1e-2, lam_H=2e-2, lam_b=lam_b, bias=bias)
    W = rng.standard_normal((4, 3))
    r = ufm.solve(p, fixed_W=W)
    assert predict_fixed(p, W).regime == "not-applicable"
    nH = p.d * p.N

    def fg(x):
        H, b = x[:nH].reshape(p.d, p.N), x[nH:] if bias else None
        f, _, dH, db = value_and_grad(p, W, H, b)
        return f, np.concatenate([dH.ravel(), db if bias else []])

    ref = minimize(fg, np.zeros(nH + (4 if bias else 0)), jac=True, method="L-BFGS-B",
                   options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5000})
    assert r.fun <= ref.fun + 1e-12
    assert r.fun == pytest.approx(ref.fun, rel=1e-9)
    cert = certify_fixed(p, r.W, r.H, r.b)
    assert abs(cert.rel_gap) < 1e-12
    assert verify_fixed(p, r.W, r.H, r.b).passed


@pytest.mark.parametrize("lam_H,scale", [(1.0, 0.01), (1e-5, 10.0)])
def test_extreme_scales_reach_the_prediction(lam_H, scale):
    p = ufm.UFMProblem(ufm.balanced(3, "1:1,2:1"), d=2, lam_W=1e-3, lam_H=lam_H, lam_b=1e-3)
    r = ufm.solve(p, fixed_W=f"etf:{scale}")
    assert r.success and r.nit < 50
    assert verify_fixed(p, r.W, r.H, r.b).passed


def test_dual_bound_is_below_F_everywhere():
    rng = np.random.default_rng(1)
    for bias, lam_b in [(True, 1e-2), (True, 0.0), (False, 0.0)]:
        p = ufm.UFMProblem(ufm.balanced(4, "1:2,2:1"), d=4, lam_W=1e-2, lam_H=1e-2, lam_b=lam_b, bias=bias)
        W = etf_classifier(4, 4, 1.3)
        opt = ufm.solve(p, fixed_W=W).fun
        for _ in range(5):
            H = rng.standard_normal((4, p.N))
            b = rng.standard_normal(4)
            cert = certify_fixed(p, W, H, b)
            assert cert.lower_bound <= opt + 1e-12
            assert cert.lower_bound <= cert.objective


def test_fixed_value_is_never_below_learned_and_has_no_trivial_phase():
    p = ufm.UFMProblem(ufm.balanced(4, "1:1,2:1"), d=4, lam_W=0.3, lam_H=0.3, lam_b=1e-2)
    learned = ufm.predict(p)
    assert learned.regime == "trivial"
    fixed = predict_fixed(p, etf_classifier(4, 4, 1.0))
    assert fixed.value > learned.value and min(fixed.s.values()) > 0


def test_cli_fixed_classifier_json(capsys):
    for extra in (["--lam-b", "1e-2"], ["--no-bias"]):
        code = main(["solve", "--K", "5", "--d", "5", "--profile", "1:1,2:1,3:1", "--lam-W", "5e-3",
                     "--lam-H", "5e-3", "--fixed-classifier", "etf:0.7", "--json", *extra])
        out = json.loads(capsys.readouterr().out)
        assert code == 0 and out["verified"] and out["method"] == "fixed-newton"
        assert abs(out["gap_to_theory"]) < 1e-9
        assert abs(out["certificate"]["rel_gap"]) < 1e-9
        assert np.allclose(out["fixed_classifier"]["row_norms"], 0.7)
        assert set(out["theory"]["c"]) == {"1", "2", "3"}
    assert main(["solve", "--K", "5", "--d", "3", "--profile", "1:1", "--lam-W", "1e-2", "--lam-H", "1e-2",
                 "--fixed-classifier", "etf"]) == 2
    assert "d >= K-1" in capsys.readouterr().err
