"""Thresholds in mu (ufm.thresholds, ufm.theory.trivial_threshold; docs/thresholds.md)."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import reference
from scipy.optimize import minimize

from ufm import UFMProblem, balanced, certify, predict, solve
from ufm.cli import main
from ufm.designs import format_design, parse_design
from ufm.exceptions import UFMError
from ufm.theory import (
    exchangeable,
    merge_threshold,
    trivial_bias,
    trivial_gradient,
    trivial_threshold,
)
from ufm.thresholds import threshold

MINORITY = "0=12,1=12,2=12,3=1,4=1"
PAIRS = "0=10,1=10,2=2,3=2,0+1=3,2+3=1"


@pytest.mark.parametrize("K,profile", [(3, {1: 1}), (4, {1: 2, 2: 1}), (5, {1: 3, 2: 2}),
                                       (6, {2: 1, 3: 1}), (7, {1: 1, 3: 2})])
def test_trivial_threshold_is_mu_crit_on_balanced_designs(K, profile):
    design = balanced(K, profile)
    mu_crit = predict(UFMProblem(design, K, 1e-2, 1e-2)).mu_crit  # the theorem's ||a/r||/(K-1)
    for lam_b, bias in ((0.0, True), (1e-2, True), (0.0, False)):
        assert trivial_threshold(design, lam_b, bias) == pytest.approx(mu_crit, rel=1e-12)


def _reference_threshold(design, lam_b, bias):
    """||grad L(b0 1^T)||_2 from the definition: b0 by a generic minimiser of the reference
    objective at W = 0, H = 0, the K x N gradient of the loss at those logits, its 2-norm."""
    K, N = design.K, design.N
    p = UFMProblem(design, 1, 1.0, 1.0, lam_b, bias=bias)
    W0, H0 = np.zeros((K, 1)), np.zeros((1, N))
    if bias:
        res = minimize(lambda b: reference.objective(p, W0, H0, b), np.zeros(K), method="BFGS",
                       options={"gtol": 1e-13})
        b0 = res.x
    else:
        b0 = np.zeros(K)
    P = np.exp(b0 - b0.max())
    P /= P.sum()
    Y = design.Y
    G = (np.outer(P, Y.sum(axis=0)) - Y) / N  # d/dX of (1/N) sum_i (m_i LSE(x_i) - <y_i, x_i>)
    return float(np.linalg.norm(G, 2))


@pytest.mark.parametrize("text,lam_b,bias", [
    (MINORITY, 0.0, True), (MINORITY, 5e-2, True), (PAIRS, 1e-2, True), (PAIRS, 0.0, False),
    ("0=1,1=2,2=3,0+1+2=2,1+2=1", 0.0, True), ("0=5,1=1,2=1,3=1,0+3=2", 3e-2, True),
])
def test_trivial_threshold_against_the_definition(text, lam_b, bias):
    design = parse_design(text)
    assert trivial_threshold(design, lam_b, bias) == pytest.approx(
        _reference_threshold(design, lam_b, bias), rel=1e-7)


@pytest.mark.parametrize("text,lam_b", [(MINORITY, 0.0), (PAIRS, 1e-2), ("0=5,1=1,2=1,3=1,0+3=2", 0.0)])
def test_trivial_threshold_against_the_solver(text, lam_b):
    """Just below mu0 a solve finds F below the trivial value; just above, the trivial point is
    certified optimal (gap at rounding) and a solve from a random start ends at W = 0."""
    design = parse_design(text)
    mu0 = trivial_threshold(design, lam_b)
    b0 = np.where(np.isfinite(trivial_bias(design, lam_b)), trivial_bias(design, lam_b), -50.0)
    K, N = design.K, design.N
    for factor, trivial in ((1 - 1e-3, False), (1 + 1e-3, True)):
        mu = mu0 * factor
        p = UFMProblem(design, K, mu, mu, lam_b)
        zero = certify(p, np.zeros((K, K)), np.zeros((K, N)), b0)
        res = solve(p, "lbfgs", rng=0)
        if trivial:
            assert zero.rel_gap <= 1e-12
            assert np.linalg.norm(res.W) < 1e-5
        else:
            assert res.fun < zero.objective - 1e-12 and res.certified
            assert np.linalg.norm(res.W) > 1e-2


def test_threshold_trivial_closed_form_is_certified():
    r = threshold("trivial", parse_design(PAIRS), lam_b=1e-2)
    lo, hi = r.bracket
    assert r.method == "closed-form" and r.certified and r.classes == ()
    assert lo < r.closed_form <= hi and (hi - lo) / hi <= 1e-6
    assert r.details["lo"]["holds"] is False and r.details["hi"]["holds"] is True
    assert r.details["hi"]["rel_gap"] <= 1e-12 and r.details["lo"]["distance"] > 1e-4


def _agree(text, lam_b=0.0, bias=True):
    design = parse_design(text)
    r = threshold("trivial", design, method="bisection", lam_b=lam_b, bias=bias)
    cf = trivial_threshold(design, lam_b, bias)
    lo, hi = r.bracket
    assert r.method == "bisection" and r.certified, r.details
    assert lo < cf <= hi and (hi - lo) / hi <= 1e-6
    assert abs(r.mu - cf) / cf <= 1e-6


@pytest.mark.parametrize("text,lam_b", [("0=8,1=8,2=1,3=1", 0.0), (PAIRS, 1e-2)])
def test_trivial_bisection_agrees_with_the_closed_form(text, lam_b):
    _agree(text, lam_b)


def _table_designs():
    """>= 20 designs, K = 3..10: majority/minority single labels, random singles with pairs."""
    rng = np.random.default_rng(7)
    out = []
    for K in range(3, 11):
        out.append((",".join(f"{k}={8 if k < K // 2 else 1}" for k in range(K)), 0.0, True))
        items = [f"{k}={rng.integers(1, 6)}" for k in range(K)]
        pairs = list(itertools.combinations(range(K), 2))
        for idx in rng.choice(len(pairs), size=min(3, len(pairs)), replace=False):
            i, j = pairs[idx]
            items.append(f"{i}+{j}={rng.integers(1, 4)}")
        out.append((",".join(items), 1e-2 if K % 2 else 0.0, K != 7))
    out += [(format_design(balanced(5, {1: 2, 2: 1})), 0.0, True), ("0=1,1=2,2=3,0+1+2=2,1+2=1", 0.0, True),
            ("0=5,1=1,2=1,3=1,0+3=2", 3e-2, True), ("0=3,1=1,2=1,0+1=1,0+2=1,1+2=4", 0.0, False)]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("text,lam_b,bias", _table_designs())
def test_trivial_bisection_agrees_on_20_designs(text, lam_b, bias):
    _agree(text, lam_b, bias)


def _row_distance(W, i, j=None):
    scale = np.max(np.linalg.norm(W, axis=1))
    return np.linalg.norm(W[i] - (W[j] if j is not None else 0)) / scale


@pytest.mark.parametrize("kind,classes", [("merge", (3, 4)), ("vanish", (3,))])
def test_minority_thresholds_certified_and_sharp(kind, classes):
    """The bracket against plain solves: rows apart at 0.99 mu*, together at 1.01 mu*."""
    design = parse_design(MINORITY)
    r = threshold(kind, design, classes=classes)
    lo, hi = r.bracket
    assert r.certified and (hi - lo) / hi <= 1e-6
    assert r.method == ("closed-form" if kind == "merge" else "bisection")  # 3, 4 are exchangeable
    assert r.details["hi"]["kkt"] <= 1e-9 < r.details["lo"]["kkt"]
    for factor, together in ((0.99, False), (1.01, True)):
        mu = r.mu * factor
        res = min((solve(UFMProblem(design, 5, mu, mu), "lbfgs", rng=s) for s in range(2)), key=lambda x: x.fun)
        assert res.certified
        dist = _row_distance(res.W, *classes)
        assert (dist < 1e-5) if together else (dist > 1e-2), (factor, dist)


def test_merge_before_vanish_on_the_minority_design():
    """Minority rows first merge (equal, non-zero), then the merged row vanishes."""
    design = parse_design(MINORITY)
    merge = threshold("merge", design, classes=(3, 4))
    vanish = threshold("vanish", design, classes=(4,))
    assert merge.bracket[1] < vanish.bracket[0] < vanish.bracket[1] < trivial_threshold(design)


def test_threshold_does_not_depend_on_the_lambda_ratio():
    design = parse_design(PAIRS)
    a = threshold("merge", design, classes=(2, 3))
    b = threshold("merge", design, classes=(2, 3), lam_ratio=9.0)
    assert a.certified and b.certified
    assert abs(a.mu - b.mu) <= 2e-6 * a.mu


@pytest.mark.parametrize("kwargs,needle", [
    ({"kind": "split"}, "unknown threshold kind"),
    ({"kind": "merge"}, "two classes"),
    ({"kind": "merge", "classes": (0, 0)}, "distinct classes"),
    ({"kind": "vanish", "classes": (7,)}, "distinct classes in 0..3"),
    ({"kind": "merge", "classes": (0, 2), "method": "closed-form"}, "no closed form"),
    ({"kind": "vanish", "classes": (2,), "method": "closed-form"}, "no closed form"),
    ({"kind": "trivial", "rtol": 0.0}, "rtol"),
    ({"kind": "trivial", "lam_ratio": -1.0}, "lam_ratio"),
])
def test_threshold_input_errors(kwargs, needle):
    kwargs = dict(kwargs)  # the parametrised dict is shared by reruns in one process (mutmut)
    kind = kwargs.pop("kind")
    with pytest.raises(UFMError, match=needle):
        threshold(kind, parse_design(PAIRS), **kwargs)


def test_cli_threshold_json(capsys):
    code = main(["threshold", "vanish", "--design", PAIRS, "--classes", "2", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["certified"] is True and data["method"] == "bisection"
    assert set(data) >= {"kind", "mu", "bracket", "certified", "method", "classes", "details"}
    lo, hi = data["bracket"]
    assert lo < data["mu"] < hi and (hi - lo) / hi <= 1e-6 and data["classes"] == [2]
    assert data["closed_form"] is None
    code = main(["threshold", "merge", "--design", PAIRS, "--classes", "2,3", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["method"] == "closed-form" and data["mu"] == math.sqrt(2) / 28
    code = main(["threshold", "trivial", "--design", PAIRS])
    out = capsys.readouterr().out
    assert code == 0 and "closed-form" in out and "CERTIFIED" in out
    assert math.isclose(float(out.split("mu*")[1].split()[0]), trivial_threshold(parse_design(PAIRS)),
                        rel_tol=1e-11)


@pytest.mark.parametrize("argv,needle", [
    (["merge", "--design", PAIRS], "needs --classes"),
    (["merge", "--design", PAIRS, "--classes", "2,x"], "class indices"),
    (["vanish", "--design", PAIRS, "--classes", "9"], "distinct classes"),
    (["trivial", "--design", PAIRS, "--profile", "1:1", "--K", "4"], "both give the design"),
    (["trivial", "--design", "0=1,1=0"], "counts must be >= 1"),
])
def test_cli_threshold_errors(argv, needle, capsys):
    try:
        code = main(["threshold", *argv])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and needle in err, err


def test_merge_threshold_closed_form_by_hand():
    """sqrt(samples with exactly one of i, j / 2) / N, counted by hand."""
    assert merge_threshold(parse_design(MINORITY), 3, 4) == pytest.approx(1 / 38, rel=1e-15)
    assert merge_threshold(parse_design(PAIRS), 2, 3) == pytest.approx(math.sqrt(2) / 28, rel=1e-15)
    all_pairs = "0=8,1=8,2=1,3=1,0+1=8,0+2=1,0+3=1,1+2=1,1+3=1,2+3=1"  # 2 alone in {2},{0,2},{1,2}
    assert merge_threshold(parse_design(all_pairs), 2, 3) == pytest.approx(math.sqrt(3) / 31, rel=1e-15)
    assert exchangeable(parse_design(PAIRS), 0, 1) and exchangeable(parse_design(PAIRS), 2, 3)
    assert not exchangeable(parse_design(PAIRS), 1, 2)
    assert not exchangeable(parse_design("0=2,1=2,2=1,0+2=1"), 0, 1)  # the pair breaks the symmetry
    with pytest.raises(UFMError, match="not exchangeable"):
        merge_threshold(parse_design(PAIRS), 1, 2)


MERGE_DESIGNS = [
    (MINORITY, (3, 4), 0.0, True), (PAIRS, (2, 3), 0.0, True), (PAIRS, (0, 1), 1e-2, True),
    ("0=8,1=8,2=1,3=1,0+1=8,0+2=1,0+3=1,1+2=1,1+3=1,2+3=1", (2, 3), 0.0, False),
    ("0=5,1=4,2=3,3=2,4=1,5=1", (4, 5), 1e-2, True), ("0=3,1=3,2=3,0+1=1,0+2=1,1+2=1", (0, 1), 0.0, True),
    ("0=2,1=2,2=2,3=2,4=2,5=2,6=1,7=1,6+7=1,0+6=1,0+7=1", (6, 7), 0.0, True),
    ("0=4,1=4,2=4,3=4,4=4,5=4,6=4,7=4,8=1,9=1,8+9=1", (8, 9), 0.0, True),
]


def _merge_agrees(text, cls, lam_b, bias):
    design = parse_design(text)
    r = threshold("merge", design, classes=cls, method="bisection", lam_b=lam_b, bias=bias)
    cf = merge_threshold(design, *cls)
    lo, hi = r.bracket
    assert r.certified, r.details
    assert lo < cf <= hi and abs(r.mu - cf) / cf <= 1e-6


@pytest.mark.parametrize("text,cls,lam_b,bias", MERGE_DESIGNS[:2])
def test_merge_bisection_agrees_with_the_closed_form(text, cls, lam_b, bias):
    _merge_agrees(text, cls, lam_b, bias)


@pytest.mark.slow
@pytest.mark.parametrize("text,cls,lam_b,bias", MERGE_DESIGNS[2:])
def test_merge_bisection_agrees_with_the_closed_form_more(text, cls, lam_b, bias):
    _merge_agrees(text, cls, lam_b, bias)


def test_cli_threshold_exit_1_when_an_end_is_not_certified(capsys):
    """In d = 1 the rows cannot part at the lower end: the bracket is printed, not certified."""
    code = main(["threshold", "vanish", "--design", PAIRS, "--classes", "2", "--d", "1", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1 and data["certified"] is False and data["details"]["lo"]["certified"] is False


@pytest.mark.parametrize("K,profile", [(3, {1: 2}), (4, {1: 2, 2: 1}), (6, {2: 1, 3: 1}), (7, {1: 1, 3: 2})])
def test_merge_threshold_is_mu_crit_on_balanced_designs(K, profile):
    """Balanced designs: every pair of classes is exchangeable and rows merge only when W = 0."""
    design = balanced(K, profile)
    mu_crit = predict(UFMProblem(design, K, 1e-2, 1e-2)).mu_crit
    assert merge_threshold(design, 0, K - 1) == pytest.approx(mu_crit, rel=1e-12)


@pytest.mark.parametrize("kind,classes", [("trivial", None), ("merge", (3, 4))])
def test_ctrl_c_in_a_solve_stops_the_bracket(monkeypatch, kind, classes):
    """A solver answers Ctrl-C by returning its last iterate (INTERRUPTED); the threshold must
    stop there (KeyboardInterrupt, the CLI's exit 130), not bisect on and print CERTIFIED (an
    interrupted `ufm threshold trivial` had exited 0 with a certified bracket)."""
    import dataclasses

    import ufm.solvers
    from ufm.result import Status
    from ufm.thresholds import threshold

    real = ufm.solvers.solve
    calls = {"n": 0}

    def interrupted_on_the_third(*a, **k):
        res = real(*a, **k)
        calls["n"] += 1
        return dataclasses.replace(res, status=Status.INTERRUPTED) if calls["n"] == 3 else res

    monkeypatch.setattr(ufm.solvers, "solve", interrupted_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        threshold(kind, parse_design("0=12,1=12,2=12,3=1,4=1"), classes=classes, method="bisection")
    assert calls["n"] == 3


# a design with a fourth class in no label set: class counts 8, 5, 1, 0; N = 12; sum of m_i = 14
DEAD_TEXT = "0=6,1=3,2=1,0+1=2"
DEAD = [((0,), 6), ((1,), 3), ((2,), 1), ((0, 1), 2)]


def _hand_gradient(p0):
    """Gamma0 D^{1/2} by hand for DEAD: column S is sqrt(n_S) (m_S p0 - y_S) / N."""
    cols = []
    for S, n in DEAD:
        y = np.zeros(4)
        y[list(S)] = 1.0
        cols.append(math.sqrt(n) * (len(S) * p0 - y) / 12)
    return np.stack(cols, axis=1)


def test_trivial_bias_gradient_threshold_closed_forms_with_a_dead_class():
    """Free bias (the default): softmax(b0) = f / M = (8, 5, 1, 0) / 14, so the centred
    b0 = (log 8, log 5, log 1, -inf) - log(40) / 3, computed without a divide-by-zero warning;
    the gradient at b0 and its spectral norm (by SVD here) against the hand columns; without a
    bias p0 is uniform. (On this design, unlike PAIRS or MINORITY, the threshold depends on p0:
    the top singular vector is not the difference of two exchangeable classes.)"""
    import warnings

    design = parse_design(DEAD_TEXT, K=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b0 = trivial_bias(design)
    np.testing.assert_allclose(b0[:3], np.log([8, 5, 1]) - math.log(40) / 3, rtol=1e-14, atol=1e-15)
    assert b0[3] == -np.inf
    free = _hand_gradient(np.array([8, 5, 1, 0]) / 14)
    uniform = _hand_gradient(np.full(4, 0.25))
    assert [S for S, _ in DEAD] == list(design.sets)  # the columns follow the canonical order
    np.testing.assert_allclose(trivial_gradient(design), free, rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(trivial_gradient(design, bias=False), uniform, rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(trivial_gradient(design, 0.3, False), uniform, rtol=1e-13, atol=1e-16)
    assert trivial_threshold(design) == pytest.approx(np.linalg.norm(free, 2), rel=1e-13)
    assert trivial_threshold(design, bias=False) == pytest.approx(np.linalg.norm(uniform, 2), rel=1e-13)
    assert trivial_threshold(design, 0.3, False) == pytest.approx(np.linalg.norm(uniform, 2), rel=1e-13)
    assert abs(np.linalg.norm(free, 2) / np.linalg.norm(uniform, 2) - 1) > 0.03  # the cases differ
    assert abs(trivial_threshold(design, 1.0) / np.linalg.norm(free, 2) - 1) > 0.01  # and lam_b matters


@pytest.mark.parametrize("lam_b", [1e-3, 0.1, 5.0, 1e-17, 1e-18, 1e-30, 1e-300, 5e-324])
def test_trivial_bias_with_lam_b_is_the_stationary_point(lam_b):
    """lam_b > 0: b0 solves M softmax(b0) + lam_b b0 = f (the class frequencies counted by hand)
    to the documented 1e-15 max(M, 1) (plus the rounding of p here), and sums to 0; the dead
    class gets a finite, most negative bias. Below lam_b ~ 1e-17 the Hessian along 1 (lam_b) is
    singular to float64: the Newton steps must still be taken (they had raised LinAlgError)."""
    design = parse_design(DEAD_TEXT, K=4)
    f, M = np.array([8, 5, 1, 0]) / 12, 14 / 12
    b0 = trivial_bias(design, lam_b)
    p = np.exp(b0 - b0.max())
    p /= p.sum()
    np.testing.assert_allclose(M * p + lam_b * b0, f, rtol=0, atol=1e-15 * max(M, 1.0) + 4 * np.finfo(float).eps)
    assert abs(b0.sum()) <= 1e-13 * np.abs(b0).max() and b0.argmin() == 3


@pytest.mark.parametrize("i,j", [(1, 1), (0, 4), (4, 0), (2, 5), (-1, 2)])
def test_merge_threshold_refuses_classes_outside_the_design_or_equal(i, j):
    with pytest.raises(UFMError, match=rf"two distinct classes in 0\.\.3; got {i}, {j}\.$"):
        merge_threshold(parse_design(PAIRS), i, j)


def test_merge_threshold_of_class_0_in_either_order():
    """PAIRS: 10 samples carry 0 without 1, 10 carry 1 without 0: sqrt(20 / 2) / 28."""
    design = parse_design(PAIRS)
    assert merge_threshold(design, 1, 0) == pytest.approx(math.sqrt(10) / 28, rel=1e-15)
    assert merge_threshold(design, 0, 1) == pytest.approx(math.sqrt(10) / 28, rel=1e-15)
