"""Reports: tables and figures from stored sweeps, complete, readable and byte-reproducible."""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path

import pytest

from ufm import report, sweep
from ufm.cli import main
from ufm.report.tables import FLOOR, Table, fmt

NAMES = ("losses", "imbalance", "iterations")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    for name in NAMES:
        sweep.run(name, root / name, jobs=2, progress=False)  # workers run single-threaded BLAS
    return root


def _digests(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file() and p.name != "timings.md"}


def test_render_writes_every_table_and_figure_reproducibly(runs, tmp_path):
    files = report.render(runs, tmp_path / "a")
    report.render(runs, tmp_path / "b")
    a, b = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert a == b, "two renders of the same records differ"
    names = set(a)
    for t in ("losses", "imbalance_single", "imbalance_pairs", "iterations"):
        assert {f"tables/{t}.{ext}" for ext in ("md", "tex", "csv")} <= names, t
    for f in ("losses", "imbalance_maps", "imbalance_trends", "nc_iterations"):
        assert {f"figures/{f}.png", f"figures/{f}.pdf"} <= names, f
    assert all(p.exists() for p in files)
    index = (tmp_path / "a" / "README.md").read_text()
    for link in re.findall(r"\]\(((?:tables|figures)/[^)]+)\)", index):
        assert (tmp_path / "a" / link).exists(), f"dangling link {link}"
    assert index.count("Findings:") == len(NAMES)
    assert (tmp_path / "a" / "timings.md").exists()


def test_table_formats(tmp_path):
    t = Table("t", "A title", [("name", "n", "s"), ("gap", "g", "r"), ("value", "v", "g")],
              [{"n": "a_b", "g": 1e-13, "v": 1.23456789}, {"n": "c", "g": 2.5e-3, "v": None}])
    t.write(tmp_path)
    md = (tmp_path / "t.md").read_text()
    assert f"| a_b | <{FLOOR:.0e} | 1.235 |" in md and "| c | 0.0025 | — |" in md
    tex = (tmp_path / "t.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"a\_b" in tex and "$<$" in tex
    with (tmp_path / "t.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["n", "g", "v"] and rows[1] == ["a_b", "1e-13", "1.23457"] and rows[2][2] == ""
    assert fmt(float("nan")) == "—" and fmt(True) == "yes" and fmt(3.0, "i") == "3"


def test_iterations_figure_data_show_lbfgs_fastest(runs):
    recs = sweep.read_records(runs / "iterations")
    nit = {r["cell"]["solver"]: r["summary"]["nit"] for r in recs}
    assert nit["lbfgs"] < nit["agd"] < nit["gd"]
    for r in recs:
        h = r["history"]
        assert len(h["iter"]) >= 5 and h["nc2_w"][-1] < 1e-5 < h["nc2_w"][0]


def test_cli_report_from_dir(runs, tmp_path, capsys):
    assert main(["report", "--from", str(runs), "--out", str(tmp_path / "rep")]) == 0
    assert "README.md" in capsys.readouterr().out
    assert (tmp_path / "rep" / "figures" / "losses.png").stat().st_size > 10_000


def test_render_without_records_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["report", "--from", str(tmp_path / "empty"), "--out", str(tmp_path / "r")]) == 2
    assert "No sweep records" in capsys.readouterr().err
