"""``python -m benchmarks`` (``make bench``) on bad output folders and Ctrl-C: one line
before the work, and a stop never replaces the last full report."""

from __future__ import annotations

import importlib

import pytest

bench_main = importlib.import_module("benchmarks.__main__")


def test_an_unwritable_out_is_refused_before_the_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(bench_main, "bench_size", lambda *a: pytest.fail("the work started"))
    afile = tmp_path / "afile"
    afile.write_text("mine")
    with pytest.raises(SystemExit) as exc:
        bench_main.main(["--sizes", "S", "--out", str(afile), "--threads", "0"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"--out {afile}: cannot write the report there" in err
    assert afile.read_text() == "mine"


def test_ctrl_c_before_any_size_writes_nothing_and_keeps_the_last_report(tmp_path, capsys, monkeypatch):
    out = tmp_path / "reports"
    out.mkdir()
    (out / "bench.md").write_text("the last full report")

    def interrupted(*a):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench_main.user_path, "startup", lambda: {"python": 0.0, "import_ufm": 0.0, "help": 0.0})
    monkeypatch.setattr(bench_main, "bench_size", interrupted)
    # --threads 0: leave this process's BLAS setting alone
    assert bench_main.main(["--sizes", "S", "--out", str(out), "--skip-convex", "--threads", "0"]) == 130
    log = capsys.readouterr().out
    assert "interrupted during S" in log and "nothing measured yet: nothing written" in log
    assert (out / "bench.md").read_text() == "the last full report"
    assert sorted(p.name for p in out.iterdir()) == ["bench.md"]  # no partial report, no probe left


def test_a_report_folder_of_an_earlier_version_keeps_the_partial_bench(tmp_path):
    """``ufm report`` adopting a folder without a manifest keeps what ``make bench`` wrote there,
    the partial report of a stopped run too."""
    from ufm.report.render import _legacy_report

    for name in ("bench.md", "bench.csv", "bench.partial.md", "bench.partial.csv"):
        assert _legacy_report(tmp_path / "reports" / name) == "keep"
    assert _legacy_report(tmp_path / "reports" / "notes.md") is None  # anything else is refused
