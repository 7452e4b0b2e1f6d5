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
    assert len(err.strip().splitlines()) == 1 and "usage:" not in err, err


@pytest.mark.parametrize("argv", [["--sizes", "Q"], ["--no-such-flag"], ["--budget", "x"]])
def test_bad_arguments_are_one_line_without_the_usage_dump(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        bench_main.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "usage:" not in err, err
    assert err.startswith("python -m benchmarks: error: ")


def test_ctrl_c_before_any_size_writes_nothing_and_keeps_the_last_report(tmp_path, capsys, monkeypatch):
    out = tmp_path / "reports"
    out.mkdir()
    (out / "bench.md").write_text("# Benchmark: time to a certified global optimum -- the last full report")

    def interrupted(*a):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench_main.user_path, "startup", lambda: {"python": 0.0, "import_ufm": 0.0, "help": 0.0})
    monkeypatch.setattr(bench_main, "bench_size", interrupted)
    # --threads 0: leave this process's BLAS setting alone
    assert bench_main.main(["--sizes", "S", "--out", str(out), "--skip-convex", "--threads", "0"]) == 130
    log = capsys.readouterr().out
    assert "interrupted during S" in log and "nothing measured yet: nothing written" in log
    assert (out / "bench.md").read_text() == "# Benchmark: time to a certified global optimum -- the last full report"
    assert sorted(p.name for p in out.iterdir()) == ["bench.md"]  # no partial report, no probe left


def test_a_report_folder_keeps_the_bench_files_beside_it(tmp_path):
    """``ufm report`` publishing into a folder it made keeps what ``make bench`` wrote there (not
    listed in its manifest), the partial report of a stopped run too; a folder without a manifest
    is refused whatever its files are called (no adoption by name)."""
    from ufm.exceptions import UFMError
    from ufm.files import OutputDir
    from ufm.report.render import _publish

    out = tmp_path / "reports"
    OutputDir(out, "report")
    bench = {name: f"the user's {name}\n" for name in ("bench.md", "bench.csv", "bench.partial.md",
                                                      "bench.partial.csv")}
    for name, text in bench.items():
        (out / name).write_text(text)
    stage = tmp_path / "stage"
    (stage / "tables").mkdir(parents=True)
    (stage / "README.md").write_text("index\n")
    (stage / "tables" / "t.md").write_text("table\n")
    _publish(OutputDir(out, "report"), stage)
    assert {name: (out / name).read_text() for name in bench} == bench
    assert (out / "tables" / "t.md").read_text() == "table\n"
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "bench.md").write_text("b")
    with pytest.raises(UFMError, match="not made by ufm"):
        OutputDir(plain, "report")


@pytest.mark.parametrize("size", ["S", "W"])
def test_the_bench_starts_every_row_where_the_default_call_starts(size):
    """The fastest configuration is compared with ``ufm.solve(p, rng=0)``: the same start, so
    the ratio is the methods', not two random starts'. Checked on the first iterate the
    callbacks see (at W after the width reduction's projection, the same for both)."""
    import warnings

    import numpy as np

    import ufm
    from benchmarks.ladder import LADDER, SEED, start

    p = LADDER[size].problem()
    firsts = []
    from ufm.objectives.layout import random_point

    # the default call, the bench's start, and the full Gaussian draw of the same seed (the
    # bench's start before the default drew in grouped coordinates: a different point)
    for x0 in (None, start(p), random_point(p, scale=0.1, rng=SEED)):
        seen = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ufm.ConvergenceWarning)
            ufm.solve(p, x0=x0, rng=SEED, max_iter=1, polish=False,
                      callback=lambda it, x, f, seen=seen: bool(seen.append(x.copy())))
        firsts.append(seen[0])
    np.testing.assert_array_equal(firsts[0], firsts[1])
    assert not np.allclose(firsts[0], firsts[2])


def test_a_solver_that_caught_ctrl_c_stops_the_bench():
    """A solver returns its last iterate on Ctrl-C (right for a user); inside the bench the
    interrupt goes on, so the bench stops instead of carrying on with a run cut short."""
    import ufm

    p = ufm.UFMProblem(ufm.balanced(3, {1: 2}), 3, 1e-2, 1e-2)

    def ctrl_c(it, x, f):
        raise KeyboardInterrupt

    assert ufm.solve(p, rng=0, callback=ctrl_c).status == ufm.Status.INTERRUPTED
    with bench_main._ctrl_c_stops_the_bench(), pytest.raises(KeyboardInterrupt):
        ufm.solve(p, rng=0, callback=ctrl_c)
    with bench_main._ctrl_c_stops_the_bench(), pytest.raises(KeyboardInterrupt):
        bench_main.user_path.lbfgs(p, rng=0, callback=ctrl_c)
    assert ufm.solve(p, rng=0, callback=ctrl_c).status == ufm.Status.INTERRUPTED  # restored
