"""Report sections beyond the paper (fixed ETF, minority collapse, conjecture, dead classes):
the shipped specs are swept, the conclusions are re-derived here from the raw records
(independently of ufm.report.beyond), and every finding in the committed reports/README.md
must be the one the builders compute from fresh sweeps."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ufm import report, sweep
from ufm.problem import UFMProblem
from ufm.report.beyond import BUILDERS
from ufm.report.regimes import BUILDERS as ALL_BUILDERS
from ufm.report.render import ORDER
from ufm.solvers import solve
from ufm.sweep.records import read_records

README = Path(__file__).resolve().parents[1] / "reports" / "README.md"
FAST = ("fixed", "conjecture", "minority")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("beyond")
    for name in FAST:
        sweep.run(name, root / name, jobs=1, progress=False)
    return root


def _recs(root: Path, name: str) -> list[dict]:
    return read_records(root / name)


def _committed_findings() -> str:
    return README.read_text()


def test_sections_are_registered():
    for name in ("fixed", "minority", "conjecture", "deadclass"):
        assert name in ORDER and ALL_BUILDERS[name] is BUILDERS[name]


def test_render_has_the_new_sections(runs, tmp_path):
    report.render(runs, tmp_path)
    text = (tmp_path / "README.md").read_text()
    for t in ("fixed_compare", "minority_phase", "minority_threshold", "conjecture"):
        assert (tmp_path / "tables" / f"{t}.md").exists()
    for f in ("fixed_compare", "minority_phase", "conjecture_weights"):
        assert (tmp_path / "figures" / f"{f}.png").exists()
    assert text.count("Findings:") == 3


@pytest.mark.parametrize("name", FAST)
def test_committed_findings_are_computed_from_fresh_sweeps(runs, name):
    _, findings = BUILDERS[name](_recs(runs, name))
    committed = _committed_findings()
    for f in findings:
        assert f"- {f}" in committed, f"reports/README.md lacks (or has a stale) finding: {f[:80]}..."


def test_fixed_etf_findings_from_the_records(runs):
    recs = _recs(runs, "fixed")
    fixed = [r for r in recs if "fixed_W" in r["cell"]["options"]]
    learned = {(str(r["params"]["design"]), r["params"]["mu_ratio"]): r for r in recs if r not in fixed}
    assert len(fixed) == 3 * len(learned)
    for r in fixed:
        assert r["summary"]["verified"]
        ref = learned[(str(r["params"]["design"]), r["params"]["mu_ratio"])]
        # the learned classifier minimises over W too: the frozen one can only be worse
        assert r["summary"]["objective"] >= ref["summary"]["objective"] - 1e-12
        W = np.asarray(r["arrays"]["W"])
        assert np.allclose(np.linalg.norm(W, axis=1), float(r["cell"]["options"]["fixed_W"].split(":")[1]))
        # no trivial phase: the features never vanish, whatever mu
        assert min(r["summary"]["theory"]["s"].values()) > 0
    # the coinciding row norm of the findings is the learned optimum's measured row norm
    norms = [float(np.mean(np.linalg.norm(np.asarray(r["arrays"]["W"]), axis=1))) for r in learned.values()
             if r["summary"]["theory"]["regime"] == "collapse"]
    text = " ".join(BUILDERS["fixed"](recs)[1])
    assert f"falls from {max(norms):.4g} to {min(norms):.4g}" in text


def _states(r: dict) -> tuple[float, float]:
    W = np.asarray(r["arrays"]["W"])
    n = np.linalg.norm(W, axis=1)
    return float(np.linalg.norm(W[2] - W[3]) / max(n.max(), 1e-300)), float(max(n[2], n[3]) / max(n.max(), 1e-300))


def _family(r: dict) -> int:
    des = r["params"]["design"]
    return 2 if des["kind"] == "counts" else des["pairs"]


def _closed_merge(fam: int, R: int) -> float:
    """mu_23 of the spec's designs, by hand: sqrt((n_{2\\3} + n_{3\\2})/2)/N with N = 2R + 2 (+ 6 pairs,
    or + R + 5 when the majority pair comes R times)."""
    return {0: 1 / (2 * R + 2), 1: math.sqrt(3) / (2 * R + 8), 2: math.sqrt(3) / (3 * R + 7)}[fam]


def _parse_bracket(text: str) -> tuple[float, float]:
    lo, hi = re.fullmatch(r"\(([\d.e-]+), ([\d.e-]+)\]", text).groups()
    return float(lo), float(hi)


def test_minority_collapse_from_the_records(runs):
    recs = _recs(runs, "minority")
    assert max(abs(r["summary"]["certificate"]["rel_gap"]) for r in recs) < 1e-9
    for r in recs:
        delta, _ = _states(r)
        if _ratio(r) == 1 and r["summary"]["metrics"]["norm_W"] > 1e-6:
            assert delta > 1.6  # the balanced designs keep an ETF: |w_j - w_k| = sqrt(8/3) |w|
    tables, findings = BUILDERS["minority"](recs)
    text = " ".join(findings)
    rows = {(r["design"], int(r["R"])): r for r in _table_rows(tables[1])}
    fam_name = {0: "single-label", 1: "every pair once", 2: "pair {0,1} R times"}
    for r in recs:  # every stored optimum (ufm.solve, not ufm.thresholds) lies on the side of each threshold
        fam, R, mu = _family(r), _ratio(r), r["params"]["mu"]
        row = rows[(fam_name[fam], R)]
        mlo, mhi = _parse_bracket(row["merge bracket"])
        vlo, vhi = _parse_bracket(row["vanish bracket"])
        assert mlo < _closed_merge(fam, R) <= mhi and mhi / mlo - 1 < 2.1e-6
        assert float(row["merge mu_23 (closed form)"]) == pytest.approx(_closed_merge(fam, R), rel=1e-9)
        W = np.asarray(r["arrays"]["W"])
        top = np.linalg.norm(W, axis=1).max()
        if top < 1e-6:
            continue
        delta, rho = np.linalg.norm(W[2] - W[3]) / top, np.linalg.norm(W[2]) / top
        if mu < mlo:
            assert delta > 1e-3, (fam, R, mu)
        if mu > mhi:
            assert delta < 1e-5, (fam, R, mu)
        if mu < vlo:
            assert rho > 1e-3, (fam, R, mu)
        if mu > vhi:
            assert rho < 1e-5, (fam, R, mu)
    for fam in (0, 1, 2):
        line = ", ".join(f"R={R}: {_closed_merge(fam, R):.4g}" for R in (1, 2, 4, 8, 16, 32, 64, 128))
        assert line in text, fam
    # how much adding pairs raises the merging threshold, per pair design, from the hand-written closed forms
    for fam, first in ((1, 4), (2, 8)):
        f1, f128 = (_closed_merge(fam, R) / _closed_merge(0, R) for R in (1, 128))
        assert f"by {f1:.4g} at R=1 to {f128:.4g} at R=128" in text
        assert f"factor > 1, from R={first} on" in text
        assert _closed_merge(fam, first) > _closed_merge(0, first) and _closed_merge(fam, first // 2) < _closed_merge(0, first // 2)
    assert "adding every pair once multiplies" in text and "adding the majority pair {0,1} R times" in text
    for lim in (0.5, math.sqrt(3) / 2, 1 / math.sqrt(3)):  # R mu_23 -> sqrt(a/2)/(dN/dR)
        assert f"towards sqrt(a/2)/(dN/dR) = {lim:.4g}" in text
    assert "read off" not in text  # no grid read-off is quoted


def _table_rows(t) -> list[dict]:
    head = [h for h, _, _ in t.columns]
    return [dict(zip(head, c)) for c in t.cells()]


@pytest.mark.parametrize("counts,sets", [
    ([32, 32, 1, 1], None),
    ([16, 16, 1, 1, 1, 1, 1, 1, 1, 1], [[0], [1], [2], [3], [0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]),
])
def test_minority_thresholds_by_an_independent_route(counts, sets):
    """The report's brackets against the rows of certified unconstrained optima (ufm.solve) just
    outside them: apart / non-zero below, merged / zero above."""
    from ufm.designs import from_counts
    from ufm.report.minority_thresholds import thresholds

    sets = sets or [[k] for k in range(4)]
    design = from_counts(4, {tuple(S): c for S, c in zip(sets, counts)})
    p = UFMProblem(design, 4, 1e-3, 1e-3, 1e-2, bias=True)
    th = thresholds(p.to_dict())
    for kind, col in (("merge", lambda W: np.linalg.norm(W[2] - W[3])), ("vanish", lambda W: np.linalg.norm(W[2]))):
        lo, hi = th[kind]["bracket"]
        for mu, gone in ((lo * (1 - 1e-3), False), (hi * (1 + 1e-3), True)):
            res = solve(replace(p, lam_W=mu, lam_H=mu), "lbfgs", rng=1)
            assert abs(res.rel_gap) < 1e-9
            x = col(res.W) / np.linalg.norm(res.W, axis=1).max()
            assert (x < 1e-5) == gone, (kind, mu, x)


def _ratio(r: dict) -> int:
    n = {tuple(S): c for S, c in zip(r["summary"]["problem"]["sets"], r["summary"]["problem"]["counts"])}
    return n[(0,)] // n[(3,)]


def _b(r: dict, proto: str) -> float:
    """The exponent b of a_j/a_k = (n_j/n_k)^b, re-derived here from the raw record."""
    p = r["summary"]["problem"]
    sets = [tuple(S) for S in p["sets"]]
    n = dict(zip(sets, p["counts"]))
    Hg, W = np.asarray(r["arrays"]["Hg"]), np.asarray(r["arrays"]["W"])
    P = {S[0]: (Hg[:, i] if proto == "h" else W[S[0]]) for i, S in enumerate(sets) if len(S) == 1}
    x, y = [], []
    for i, S in enumerate(sets):
        if len(S) == 2 and n[(S[0],)] != n[(S[1],)]:
            a, *_ = np.linalg.lstsq(np.stack([P[S[0]], P[S[1]]], axis=1), Hg[:, i], rcond=None)
            x.append(math.log(n[(S[0],)] / n[(S[1],)]))
            y.append(math.log(a[0] / a[1]))
    x, y = np.asarray(x), np.asarray(y)
    return float(x @ y / (x @ x))


def test_conjecture_from_the_records(runs):
    from ufm.report.conjecture import regular

    recs = _recs(runs, "conjecture")
    assert max(abs(r["summary"]["certificate"]["rel_gap"]) for r in recs) < 1e-9
    assert {r["summary"]["problem"]["K"] for r in recs} == {4, 5, 6, 7, 8}
    assert {r["summary"]["problem"]["bias"] for r in recs} == {True, False}
    low = [r for r in recs if r["params"]["mu"] == 1e-4]
    assert all(regular(r) for r in low)
    b_low = [_b(r, "h") for r in low]
    text = " ".join(BUILDERS["conjecture"](recs)[1])
    assert f"{np.mean(b_low):.3f} [" in text and "at mu = 0.0001" in text
    assert max(abs(b) for b in b_low) < 0.05  # the uniform rule (b = 0), nowhere near b = 1
    assert all(_b(r, "w") < 0 for r in low)  # classifier rows as prototypes: inverse to frequency
    assert "inverse to frequency (b < 0 on every optimum)" in text
    assert "2605.01897" in text and "not tested" in text
    # the trivial threshold: the closed form against the stored optima, counted here by hand
    from ufm.problem import UFMProblem
    from ufm.theory import trivial_threshold

    agree = 0
    for r in recs:
        p = UFMProblem.from_dict(r["summary"]["problem"])
        mu0 = trivial_threshold(p.design, lam_b=p.lam_b, bias=p.bias)
        agree += (r["params"]["mu"] >= mu0) == (r["summary"]["metrics"]["norm_W"] < 1e-6)
    assert agree == len(recs), (agree, len(recs))
    assert f"every one of the {len(recs)} cells is trivial exactly where mu >= mu0" in text
    assert f"all {len(recs)} certified global" in text


def test_conjecture_sentences_turn_over_when_the_data_do(runs):
    """A record made uncertified and one made trivial below mu0: the sentences say so."""
    import copy

    recs = copy.deepcopy(_recs(runs, "conjecture"))
    recs[0]["summary"]["certificate"]["rel_gap"] = 0.5
    low = next(r for r in recs[1:] if r["params"]["mu"] == 1e-4)
    low["summary"]["metrics"]["norm_W"] = 0.0
    text = " ".join(BUILDERS["conjecture"](recs)[1])
    n = len(recs)
    assert f"{n - 1} of {n} certified global" in text and f"all {n} certified" not in text
    assert f"only {n - 1} of {n} cells are trivial exactly where mu >= mu0" in text


def test_fitted_exponent_recovers_a_known_power_law():
    from ufm.report.conjecture import fit_exponent, pair_fits

    rng = np.random.default_rng(0)
    K, b = 4, 0.7
    counts = [2, 8, 1, 4]  # not sorted: the fit must order each pair by frequency itself
    pairs = [(j, k) for j in range(K) for k in range(j + 1, K)]
    Hs = rng.standard_normal((6, K))
    cols = [Hs[:, k] for k in range(K)] + [counts[j] ** b * Hs[:, j] + counts[k] ** b * Hs[:, k] for j, k in pairs]
    rec = {"summary": {"problem": {"K": K, "sets": [[k] for k in range(K)] + [list(S) for S in pairs],
                                   "counts": counts + [1] * len(pairs)}},
           "arrays": {"Hg": np.stack(cols, axis=1).tolist(), "W": Hs.T.tolist()}}
    fits = pair_fits(rec, "h")
    assert max(f["ls"] for f in fits) < 1e-12  # exactly in the span
    est, se, n = fit_exponent(fits)
    assert est == pytest.approx(b, abs=1e-10) and n == len(pairs) and se < 1e-10


@pytest.mark.slow
def test_deadclass_findings_from_fresh_sweeps(tmp_path):
    sweep.run("deadclass", tmp_path, jobs=2, progress=False)
    recs = read_records(tmp_path)
    _, findings = BUILDERS["deadclass"](recs)
    committed = _committed_findings()
    for f in findings:
        assert f"- {f}" in committed, f[:80]
    for r in recs:  # at d = K-1 nothing dies and the certificate closes
        if r["summary"]["problem"]["d"] == r["summary"]["problem"]["K"] - 1:
            n = np.linalg.norm(np.asarray(r["arrays"]["W"]), axis=1)
            assert n.min() > 1e-3 * n.max()


def test_minority_brackets_are_rounded_outwards():
    from ufm.report.beyond import bracket

    assert bracket(0.123456781, 0.123456789, 5) == "(0.12345, 0.12346]"
    assert bracket(0.0076923038, 0.0076923116, 8) == "(0.0076923038, 0.0076923116]"
    assert bracket(0.25, 0.2500001, 5) == "(0.25, 0.25001]"


@pytest.mark.slow
def test_minority_merge_closed_form_inside_the_bisection_bracket_on_every_spec_design(runs):
    """Both routes of ufm.thresholds on every design of the minority spec: the closed form the
    report quotes lies in the bracket found by bisection alone (method="bisection")."""
    from ufm.designs import from_counts
    from ufm.thresholds import threshold

    seen = {}
    for r in _recs(runs, "minority"):
        p = r["summary"]["problem"]
        seen[str((p["sets"], p["counts"]))] = (_family(r), _ratio(r), p)
    assert len(seen) == 23  # R = 1: the two pair variants coincide
    for fam, R, p in seen.values():
        design = from_counts(4, {tuple(S): c for S, c in zip(p["sets"], p["counts"])})
        res = threshold("merge", design, classes=(2, 3), lam_b=p["lam_b"], bias=p["bias"], method="bisection")
        lo, hi = res.bracket
        assert res.certified and lo < _closed_merge(fam, R) <= hi and (hi - lo) / hi <= 1e-6
