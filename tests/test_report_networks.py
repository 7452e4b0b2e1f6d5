"""The report's networks section: built from records of the `networks` spec (here a small
version of it), every stated number read back from the records independently."""

from __future__ import annotations

import re

import numpy as np
import pytest

from ufm import report, sweep
from ufm.report.networks import findings, label
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
    solvers = [c["solver"] for c in cells]
    assert solvers.count("network") == 2 and {"lbfgs", "sgd", "adam"} <= set(solvers)
    assert {bool(c["options"].get("fixed_classifier")) for c in cells if c["solver"] == "network"} == {False, True}


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
    lines = findings(sweep.read_records(tmp_path))
    assert len(lines) == 4
    for line in lines:
        assert f"- {line}" in readme
