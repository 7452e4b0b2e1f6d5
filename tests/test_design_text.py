"""Designs written as LABELS=COUNT items (ufm.designs.parse_design) and their command-line use."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ufm import balanced
from ufm.cli import main
from ufm.designs import format_design, parse_design, read_design_file
from ufm.exceptions import UFMError


def test_parse_single_labels_and_pairs():
    d = parse_design("0=10,1=10,2=2,3=2,0+1=3,2+3=1")
    assert d.K == 4 and d.N == 28
    assert d.counts_by_set() == {(0,): 10, (1,): 10, (2,): 2, (3,): 2, (0, 1): 3, (2, 3): 1}
    # labels in any order, spaces allowed; K from the largest label unless given
    d2 = parse_design(" 1 + 0 = 3 , 0=1 ,1=1", K=5)
    assert d2.K == 5 and d2.counts_by_set() == {(0,): 1, (1,): 1, (0, 1): 3}


def test_parse_round_trip_and_balanced_kind():
    d = balanced(4, {1: 2, 2: 1})
    again = parse_design(format_design(d))
    assert (again.K, again.sets, again.counts) == (d.K, d.sets, d.counts)
    assert again.kind == "balanced" and again.profile == {1: 2, 2: 1}
    assert parse_design("0=2,1=1").kind == "design"


@pytest.mark.parametrize("text,K,needle", [
    ("", None, "empty design"),
    ("0=1,1", None, "malformed design item '1'"),
    ("0=1,1=2=3", None, "malformed design item '1=2=3'"),
    ("0=1,a=2", None, "labels must be integers"),
    ("0=1,1=x", None, "count must be an integer"),
    ("0=1,1=0", None, "counts must be >= 1"),
    ("0=1,1=-2", None, "counts must be >= 1"),
    ("0=1,1=1,0=4", None, "repeats the label set 0"),
    ("0=1,0+1=1,1+0=2", None, "repeats the label set 0+1"),
    ("0=1,1+1=2", None, "repeats a label inside its set"),
    ("0=1,-1=2", None, "negative label"),
    ("0=1,5=1", 4, "label 5 >= K = 4"),
    ("0=3", None, "K >= 2"),
])
def test_parse_errors_name_the_item(text, K, needle):
    with pytest.raises(UFMError, match=needle.replace("+", r"\+")) as info:
        parse_design(text, K)
    assert "\n" not in str(info.value)


def test_design_file_csv_and_npz(tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_text("labels,count\n# a comment\n0,10\n1,10\n2,2\n0+1,3\n")
    d = read_design_file(str(csv))
    assert d.counts_by_set() == {(0,): 10, (1,): 10, (2,): 2, (0, 1): 3}
    (tmp_path / "e.csv").write_text("0=1\n1=1\n0=2\n")
    with pytest.raises(UFMError, match="line 3"):
        read_design_file(str(tmp_path / "e.csv"))
    Y = np.array([[1, 1, 0, 1], [0, 0, 1, 1], [0, 0, 0, 0]])
    np.savez(tmp_path / "y.npz", Y=Y)
    d = read_design_file(str(tmp_path / "y.npz"))
    assert d.K == 3 and d.counts_by_set() == {(0,): 2, (1,): 1, (0, 1): 1}
    with pytest.raises(UFMError, match="no design file"):
        read_design_file(str(tmp_path / "missing.csv"))


def _run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_solve_design_equals_profile(capsys):
    lam = ["--d", "4", "--lam-W", "5e-3", "--lam-H", "5e-3", "--json"]
    code, out, _ = _run(["solve", "--K", "4", "--profile", "1:2,2:1", *lam], capsys)
    F_profile = json.loads(out)["objective"]
    text = format_design(balanced(4, {1: 2, 2: 1}))
    code2, out2, _ = _run(["solve", "--design", text, *lam], capsys)
    assert code == code2 == 0
    assert json.loads(out2)["objective"] == pytest.approx(F_profile, rel=1e-12)


def test_solve_imbalanced_design_is_certified(capsys):
    code, out, _ = _run(["solve", "--design", "0=12,1=12,2=12,3=1,4=1", "--d", "5", "--lam-W", "1e-2",
                         "--lam-H", "1e-2", "--json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["certificate"]["rel_gap"] < 1e-6
    assert data["problem"]["counts"] == [12, 12, 12, 1, 1]


@pytest.mark.parametrize("argv,needle", [
    (["--design", "0=1,1=1", "--profile", "1:1", "--K", "2"], "--profile and --design both give the design"),
    (["--design", "0=1,1=1", "--design-file", "x.csv"], "--design and --design-file both"),
    (["--design", "0=1,1=0"], "counts must be >= 1"),
    (["--design", "0=1,0=1"], "repeats the label set 0"),
    (["--design", "0=1,3=1", "--K", "3"], "label 3 >= K = 3"),
    (["--design", "0=1,1=1,x"], "malformed design item 'x'"),
    (["--profile", "1:1"], "--profile needs --K"),
    ([], "give the design"),
])
def test_cli_design_errors_exit_2_one_line(argv, needle, capsys):
    code, _, err = _run(["solve", "--d", "3", "--lam-W", "1e-2", "--lam-H", "1e-2", *argv], capsys)
    assert code == 2 and err.count("\n") == 1 and needle in err, err


def test_certify_takes_the_design_when_the_file_has_none(tmp_path, capsys):
    sol = tmp_path / "s.npz"
    code, _, _ = _run(["solve", "--design", "0=3,1=3,2=1,0+2=1", "--d", "3", "--lam-W", "1e-2",
                       "--lam-H", "1e-2", "--save", str(sol)], capsys)
    assert code == 0
    data = dict(np.load(sol))
    data.pop("Y")
    bare = tmp_path / "bare.npz"
    np.savez(bare, **data)
    code, out, err = _run(["certify", str(bare), "--json"], capsys)
    assert code == 2 and "give them with --design" in err
    code, out, _ = _run(["certify", str(bare), "--design", "0=3,1=3,2=1,0+2=1", "--json"], capsys)
    assert code == 0 and json.loads(out)["certified"] is True
    code, _, err = _run(["certify", str(sol), "--design", "0=3,1=3,2=2,0+2=1"], capsys)
    assert code == 2 and "does not match Y" in err


def test_sweep_grid_takes_design_strings():
    from ufm.sweep.grid import expand

    spec = expand({"name": "x", "grid": [{"design": ["0=3,1=1", "0=2,1=2,0+1=1"], "mu": 1e-2}]})
    assert [c["problem"]["counts"] for c in spec.cells] == [[3, 1], [2, 2, 1]]
    assert [c["problem"]["K"] for c in spec.cells] == [2, 2]
    spec = expand({"name": "x", "grid": [{"design": "0=3,1=1", "K": 4, "mu": 1e-2}]})
    assert spec.cells[0]["problem"]["K"] == 4
    with pytest.raises(UFMError, match="label 3 >= K = 3"):
        expand({"name": "x", "grid": [{"design": "0=3,3=1", "K": 3, "mu": 1e-2}]})


def test_sweep_cli_design_flag(tmp_path, capsys):
    code, out, _ = _run(["sweep", "--design", "0=4,1=4,2=1", "0=2,1=2,2=2,0+1=1", "--lam-W", "1e-2",
                         "--lam-H", "1e-2", "--out", str(tmp_path / "o"), "--dry-run"], capsys)
    assert code == 0 and "2 cells" in out
    code, _, err = _run(["sweep", "--design", "0=4,1=4", "--profile", "1:1", "--K", "2", "--lam-W", "1",
                         "--lam-H", "1", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "both give the design" in err
