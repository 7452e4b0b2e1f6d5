"""Reports: tables and figures from stored sweeps, complete, readable and byte-reproducible."""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

from ufm import report, sweep
from ufm.cli import main
from ufm.report import figures, regimes
from ufm.report.tables import FLOOR, Table, fmt

COMMITTED = Path(__file__).resolve().parent.parent / "reports"

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
    # the CSV holds the printed digits (those another machine reproduces), "" for missing
    assert rows[0] == ["n", "g", "v"] and rows[1] == ["a_b", f"<{FLOOR:.0e}", "1.235"] and rows[2][2] == ""
    assert fmt(float("nan")) == "—" and fmt(True) == "yes" and fmt(3.0, "i") == "3"


def test_iterations_figure_data_show_lbfgs_fastest(runs):
    recs = sweep.read_records(runs / "iterations")
    nit = {r["cell"]["solver"]: r["summary"]["nit"] for r in recs}
    assert nit["lbfgs"] < nit["agd"] < nit["gd"]
    for r in recs:
        h = r["history"]
        assert len(h["iter"]) >= 5 and h["nc2_w"][-1] < 1e-5 < h["nc2_w"][0]


def test_iterations_figure_reaches_the_threshold_the_table_counts(runs):
    """The table counts iterations to NC2_W < 1e-6: every solver's NC2_W curve must get there
    (it once stopped at the F gap 1e-9, GD's at NC2_W ~3e-4), with a circle where it crosses."""
    fig = figures.fig_iterations(sweep.read_records(runs / "iterations"))["nc_iterations"]
    ax = next(a for a in fig.axes if a.get_title().startswith("NC2_W"))
    curves = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-" and len(ln.get_xdata()) > 1]
    assert len(curves) == 3
    for ln in curves:
        assert np.min(ln.get_ydata()) < figures.NC_MARK, ln.get_label()
    circles = [ln for ln in ax.get_lines() if ln.get_marker() == "o" and len(ln.get_xdata()) == 1]
    assert len(circles) == 3
    figures.plt.close(fig)


def test_imbalance_map_labels_do_not_wrap(runs):
    """Each cell's text is two whole lines ("{0}" / "n=32", "3.36" / "n=1"), none starting with
    '=' (the diagonal once wrapped as "n_0" / "=32")."""
    fig = figures.fig_imbalance(sweep.read_records(runs / "imbalance"))["imbalance_maps"]
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert len(texts) >= 4 * 25
    for t in texts:
        first, second = t.split("\n")
        assert re.fullmatch(r"n=\d+", second) and not first.startswith("="), t
    assert sum(bool(re.fullmatch(r"\{\d\}", t.split("\n")[0])) for t in texts) == 4 * 5
    figures.plt.close(fig)


def test_every_caption_names_a_figure_and_is_printed_under_it(runs, tmp_path):
    from ufm.report.captions import CAPTIONS

    shipped = {p.stem for p in (COMMITTED / "figures").glob("*.png")}
    assert set(CAPTIONS) <= shipped, set(CAPTIONS) - shipped
    report.render(runs, tmp_path)
    index = (tmp_path / "README.md").read_text()
    assert f"[pdf](figures/nc_iterations.pdf)): {CAPTIONS['nc_iterations']}" in index
    committed = (COMMITTED / "README.md").read_text()
    for name, text in CAPTIONS.items():
        assert f"[pdf](figures/{name}.pdf)): {text}" in committed, f"reports/README.md lacks the caption of {name}"


def test_cli_report_from_dir(runs, tmp_path, capsys):
    assert main(["report", "--from", str(runs), "--out", str(tmp_path / "rep")]) == 0
    assert "README.md" in capsys.readouterr().out
    assert (tmp_path / "rep" / "figures" / "losses.png").stat().st_size > 10_000


def test_render_without_records_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["report", "--from", str(tmp_path / "empty"), "--out", str(tmp_path / "r")]) == 2
    assert "No readable sweep records" in capsys.readouterr().err


def _findings(index: str) -> dict[str, list[str]]:
    """The findings of each section of a report index, keyed by spec name."""
    out: dict[str, list[str]] = {}
    for part in index.split("\n## ")[1:]:
        name = re.search(r"Spec `([^`]+)`", part)
        if name:
            out[name.group(1)] = [ln for ln in part.splitlines() if ln.startswith("- ")]
    return out


def test_regenerated_tables_and_findings_equal_the_committed_report(runs, tmp_path):
    """The committed reports/ is what the code produces: three specs are swept afresh here
    (workers single-threaded, like `make report`) and their tables -- Markdown, LaTeX, CSV --
    and the findings sentences of reports/README.md must come out byte for byte. Every
    number printed is one that rounding does not move (see reports/README.md), so a
    difference means the committed report is stale or a finding is not what the data say."""
    report.render(runs, tmp_path)
    for t in ("losses", "imbalance_single", "imbalance_pairs", "iterations"):
        for ext in ("md", "tex", "csv"):
            new, old = (tmp_path / "tables" / f"{t}.{ext}").read_text(), (COMMITTED / "tables" / f"{t}.{ext}").read_text()
            assert new == old, f"reports/tables/{t}.{ext} differs from a fresh run; rerun `make report`"
    new, old = _findings((tmp_path / "README.md").read_text()), _findings((COMMITTED / "README.md").read_text())
    for name in NAMES:
        assert new[name] == old[name], f"findings of {name} in reports/README.md differ from a fresh run"


@pytest.mark.slow
def test_make_report_reproduces_every_committed_file(tmp_path):
    """All shipped specs from scratch (what `make report` does, ~2 minutes on two cores):
    every table and the whole index equal the committed ones; only timings.md may differ."""
    report.regenerate(tmp_path / "out", tmp_path / "cache", jobs=2, example=tmp_path / "ex.npz", progress=False)
    for p in sorted((tmp_path / "out" / "tables").iterdir()):
        assert p.read_text() == (COMMITTED / "tables" / p.name).read_text(), p.name
    assert (tmp_path / "out" / "README.md").read_text() == (COMMITTED / "README.md").read_text()


def _record(norms, cos):
    return {"geometry": {"classes": [{"norm_w": v} for v in norms], "w_cos": cos}}


def test_dead_classes_use_a_threshold_relative_to_the_largest_row():
    nan = float("nan")
    r = _record([3.489, 5e-15, 3.489, 3.489],
                [[1, 0.9, -0.5, -0.5], [0.9, 1, nan, -0.8], [-0.5, nan, 1, -0.5], [-0.5, -0.8, -0.5, 1]])
    assert regimes.dead_classes(r) == [1]
    assert regimes.live_cosines(r) == (-0.5, -0.5)  # the dead row's cosines (noise) are ignored
    assert regimes.dead_classes(_record([1e-3, 1e-3, 2e-3], [[1, 0, 0]] * 3)) == []  # small but alive
    assert regimes.dead_classes(_record([0.0, 0.0], [[1, 0], [0, 1]])) == []  # W = 0: trivial, not dead


def test_figure_data_rounding_removes_rounding_noise():
    """Two copies of the same data that differ by float64 rounding are drawn identically."""
    rng = np.random.default_rng(0)
    a = rng.uniform(-2, 2, 50)
    b = a * (1 + 1e-15 * rng.standard_normal(50))
    assert np.array_equal(figures._sig(a, "linear"), figures._sig(b, "linear"))
    tiny = np.array([3e-16, -2e-16, 1.0])  # noise around 0 becomes exactly +0
    assert figures._sig(tiny, "linear").tolist() == [0.0, 0.0, 1.0]
    assert not np.signbit(figures._sig(tiny, "linear")).any()
    logs = np.array([1.2345678e-5, 3.3333333e-9])
    assert figures._sig(logs, "log").tolist() == pytest.approx([1.235e-5, 3.333e-9], rel=1e-12)


@pytest.mark.slow
def test_dimension_and_phase_figures_show_only_what_the_data_say(tmp_path):
    """dimension: no line drops from d < K-1 to the rounding floor at d = K-1, and a d missing
    from the grid (K = 8) breaks the line instead of being bridged. phase_mu: every panel has its
    own legend, the measured markers included; NC2_W's floor is said, not drawn flat."""
    for name in ("dimension", "phase"):
        sweep.run(name, tmp_path / name, jobs=2, progress=False)
    figs = figures.fig_dimension(sweep.read_records(tmp_path / "dimension"))
    for ax in figs["dimension"].axes:
        lines = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-" and len(ln.get_xdata()) > 1]
        assert lines
        for ln in lines:
            x = np.asarray(ln.get_xdata(), float)
            assert np.all(x < 0), "a line reaches d >= K-1"
            assert np.all(np.diff(x) == 1), "a line bridges a missing d"
        assert any(np.isnan(np.asarray(ln.get_ydata(), float)).any() for ln in lines)  # K = 8's gap
        assert ax.get_ylim()[0] > 1e-4  # the axis spans the data, not seven empty decades
    for f in figs.values():
        figures.plt.close(f)
    figs = figures.fig_phase(sweep.read_records(tmp_path / "phase"))
    fig = figs["phase_mu"]
    assert len(fig.axes) == 2 and all(ax.get_legend() is not None for ax in fig.axes)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(lab.startswith("measured") for lab in labels), labels
    assert "NC2_W" in fig._suptitle.get_text() and "mu sigma" in fig.axes[1].get_title()
    for f in figs.values():
        figures.plt.close(f)
