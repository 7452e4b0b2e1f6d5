"""The report's networks section: built from records of the `networks` spec (here a small
version of it), every stated number read back from the records independently."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from ufm import report, sweep
from ufm.report.networks import findings, is_trend, label, trend_section
from ufm.report.tables import fmt

pytest.importorskip("jax")
pytest.importorskip("sklearn")

NETWORK_GRID = {
    "name": "networks", "title": "Networks (small)", "description": "A small version of the shipped spec.",
    "defaults": {"K": 4, "profile": "1:8,2:3", "d": 4, "lam_W": 5e-3, "lam_H": 5e-3, "lam_b": 1e-2,
                 "seeds": [0], "history": True},
    "grid": [
        {"solver": "lbfgs", "history": False},
        {"solver": "sgd", "options": {"epochs": 30, "batch_size": 10, "lr": 0.5, "lr_schedule": "cosine"}},
        {"solver": "adam", "options": {"epochs": 30, "batch_size": 10, "lr": 1e-2, "lr_schedule": "cosine",
                                       "decoupled": True}},
        {"solver": "network", "options": {"epochs": 3, "batch_size": 16, "hidden": [16]}},
        {"solver": "network", "options": {"epochs": 3, "batch_size": 16, "hidden": [16], "fixed_classifier": True}},
    ],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("net")
    sweep.run(NETWORK_GRID, root / "networks", jobs=1, progress=False)
    return root


def test_the_shipped_spec_expands():
    cells = sweep.load_spec("networks").cells
    solvers = [c["solver"] for c in cells if c["history"] or c["solver"] != "network"]
    assert solvers.count("network") == 2 and {"lbfgs", "sgd", "adam"} <= set(solvers)
    assert {bool(c["options"].get("fixed_classifier")) for c in cells if c["solver"] == "network"} == {False, True}
    trend = [c for c in cells if c["solver"] == "network" and not c["history"]]
    lam = sorted({c["problem"]["lam_H"] for c in trend})
    assert len(lam) >= 4 and lam[-1] / lam[0] >= 100  # >= 4 values over >= 2 decades
    assert len({c["seed"] for c in trend}) >= 3 and len({c["params"]["design"]["profile"] for c in trend}) >= 2


def test_section_tables_and_figures(runs, tmp_path):
    report.render(runs, tmp_path)
    index = (tmp_path / "README.md").read_text()
    assert "## Networks (small)" in index and index.count("Findings:") == 1
    for name in ("networks", "networks_epochs"):
        assert (tmp_path / "tables" / f"{name}.md").exists()
    for name in ("networks_epochs", "networks_cm"):
        assert (tmp_path / "figures" / f"{name}.png").stat().st_size > 10_000


def test_findings_state_the_records_numbers(runs):
    recs = sweep.read_records(runs)
    text = "\n".join(findings(recs))
    by = {label(r): r for r in recs}
    ref = by["L-BFGS (UFM)"]["summary"]
    assert f"F = {ref['objective']:.6f}" in text
    for name in ("MLP, learned W", "MLP, fixed ETF W"):
        r = by[name]
        line = next(f for f in findings(recs) if f.startswith(name))
        pairs = [s for s in r["geometry"]["sets"] if s["m"] == 2]  # per-pair scales, averaged here
        c2 = float(np.mean([s["scale"] for s in pairs]))
        assert f"c_2 = {c2:.4f}" in line
        c = r["summary"]["certificate"]
        assert f"relative certified gap {fmt((c['gap']) / r['summary']['objective'], 'r')}" in line
        h = r["history"]
        assert f"test {h['test_acc'][-1]:.3f}" in line and f"train {h['train_proto_acc'][-1]:.3f}" in line
    ufm_line = next(f for f in findings(recs) if f.startswith("Minibatch"))
    for r in recs:
        if r["cell"]["solver"] in ("sgd", "adam"):
            hist = r["history"]
            first = next((e for e, v in zip(hist["iter"], hist["rel_gap"]) if v < 1e-2), None)
            assert f"{fmt(first, 'i')} ({label(r)})" in ufm_line
            assert re.search(re.escape(f"({label(r)})"), ufm_line)


@pytest.mark.slow
def test_shipped_findings_are_what_the_shipped_spec_gives(tmp_path):
    """reports/README.md states exactly the findings of a fresh run of the `networks` spec."""
    from pathlib import Path

    sweep.run("networks", tmp_path / "networks", jobs=2, progress=False)
    readme = (Path(__file__).resolve().parents[1] / "reports" / "README.md").read_text()
    recs = sweep.read_records(tmp_path)
    lines = findings([r for r in recs if not is_trend(r)]) + trend_section([r for r in recs if is_trend(r)])[1]
    assert len(lines) == 6
    for line in lines:
        assert f"- {line}" in readme


def _trend_rec(prof, lam_H, seed, c2, pred):
    return {"cell": {"solver": "network", "history": False, "seed": seed,
                     "options": {"epochs": 150, "batch_size": 64, "optimizer": "adam", "lr": 3e-3}},
            "params": {"design": {"profile": prof}},
            "summary": {"problem": {"lam_H": lam_H, "lam_W": 5e-3}, "metrics": {"tagwise": {"2": {"scale": c2}}},
                        "theory": {"c": {"2": pred}}, "certificate": {"rel_gap": 0.01}}}


def test_trend_direction_is_computed_from_the_seeds():
    pred = {1e-4: 1.80, 1e-3: 1.75, 1e-2: 1.70}
    follows = [_trend_rec("1:30,2:6", lh, s, p - 0.05 * math.log10(lh / 1e-4) / 2 - 0.1 + 0.001 * s, p)
               for lh, p in pred.items() for s in range(3)]
    against = [_trend_rec("1:10,2:10", lh, s, 1.5 + 0.05 * math.log10(lh / 1e-4) + 0.001 * s, p)
               for lh, p in pred.items() for s in range(3)]
    table, lines = trend_section(follows + against)
    up, down = (next(ln for ln in lines if f"profile {p}" in ln) for p in ("1:10,2:10", "1:30,2:6"))
    assert "Training follows the predicted direction: the measured mean moves with the prediction in 2 of 2" in down
    assert "Training does not follow the predicted direction" in up and "in 0 of 2 steps" in up
    vals = [1.5 + 0.001 * s for s in range(3)]  # lam_H = 1e-4 of the second profile, seeds 0..2
    assert f"{np.mean(vals):.4f} +- {fmt(np.std(vals, ddof=1), 'r')}" in up
    assert len(table.rows) == 6
