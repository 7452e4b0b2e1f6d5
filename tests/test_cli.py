"""The `ufm` command line: solve --json, --save, bad input, verify."""

import json

import numpy as np
import pytest

from ufm.cli import main


def test_solve_json(capsys):
    code = main(["solve", "--K", "4", "--d", "4", "--profile", "1:2,2:1", "--lam-W", "5e-3",
                 "--lam-H", "5e-3", "--lam-b", "1e-2", "--json", "--seed", "1"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    for key in ("objective", "status", "nit", "time", "theory", "gap_to_theory", "metrics", "verdict", "certificate"):
        assert key in out, key
    assert out["theory"]["regime"] == "collapse" and set(out["theory"]["s"]) == {"1", "2"}
    assert abs(out["gap_to_theory"]) < 1e-9
    assert set(out["metrics"]["tagwise"]["2"]) >= {"angle_deg", "scale", "predicted_scale"}
    assert all(out["verdict"].values())


def test_solve_group_reaches_the_same_objective(capsys):
    argv = ["solve", "--K", "4", "--d", "4", "--profile", "1:3,2:2", "--lam-W", "5e-3", "--lam-H", "5e-3",
            "--lam-b", "1e-2", "--json", "--seed", "2"]
    assert main([*argv, "--no-group"]) == 0
    full = json.loads(capsys.readouterr().out)
    assert main([*argv, "--group"]) == 0
    grouped = json.loads(capsys.readouterr().out)
    assert main(argv) == 0  # the default: grouped
    default = json.loads(capsys.readouterr().out)
    assert (full["grouped"], grouped["grouped"], default["grouped"]) == (False, True, True)
    assert grouped["objective"] == pytest.approx(full["objective"], rel=1e-12)
    assert abs(grouped["gap_to_theory"]) < 1e-9 and all(grouped["verdict"].values())
    assert main([*argv, "--group", "--method", "gd"]) == 2
    assert "--group does not apply to --method gd (it applies to lbfgs)" in capsys.readouterr().err
    assert main([*argv, "--no-group", "--method", "agd"]) == 2
    assert "--no-group does not apply to --method agd (it applies to lbfgs)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--group", "--no-group"])
    assert exc.value.code == 2 and "not allowed with argument --group" in capsys.readouterr().err


def test_solve_table_says_when_nc1_holds_by_construction(capsys):
    argv = ["solve", "--K", "3", "--d", "3", "--profile", "1:2,2:1", "--lam-W", "5e-3", "--lam-H", "5e-3"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "the nc1 claim holds by construction; --no-group measures it" in out
    assert main([*argv, "--no-group"]) == 0
    assert "by construction" not in capsys.readouterr().out


def test_solve_table_says_when_it_solved_in_fewer_dimensions(capsys):
    argv = ["solve", "--K", "4", "--d", "20", "--profile", "1:2,2:1", "--lam-W", "5e-3", "--lam-H", "5e-3"]
    assert main(argv) == 0
    assert "solved in 6 of the d = 20 feature dimensions" in capsys.readouterr().out  # 4 + 1 + ceil(4/4)
    assert main([*argv, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["solver_width"] == 6
    assert main([*argv, "--no-group"]) == 0
    assert "feature dimensions" not in capsys.readouterr().out


def test_solve_certifies_once_and_the_table_skips_the_metrics(capsys, monkeypatch):
    """The certificate ufm.solve attached is the one verified (not computed again); the NC
    metrics, which the table does not print, only for --json."""
    import ufm.certificate
    import ufm.summary

    calls = {"certify": 0, "metrics": 0}
    certify, all_metrics = ufm.certificate.certify, ufm.summary.all_metrics

    def counted_certify(*a, **k):
        calls["certify"] += 1
        return certify(*a, **k)

    def counted_metrics(*a, **k):
        calls["metrics"] += 1
        return all_metrics(*a, **k)

    monkeypatch.setattr(ufm.certificate, "certify", counted_certify)
    monkeypatch.setattr(ufm.summary, "all_metrics", counted_metrics)
    argv = ["solve", "--K", "4", "--d", "4", "--profile", "1:2,2:1", "--lam-W", "5e-3", "--lam-H", "5e-3"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert calls == {"certify": 1, "metrics": 0}
    assert "PASS  certificate" in out and "verified: true" in out
    assert main([*argv, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert calls == {"certify": 2, "metrics": 1}
    assert summary["metrics"]["nc1"] is not None and summary["certificate"]["rel_gap"] < 1e-9


def test_solve_save(tmp_path, capsys):
    path = tmp_path / "sol.npz"
    assert main(["solve", "--K", "3", "--d", "2", "--profile", "1:2", "--lam-W", "1e-2",
                 "--lam-H", "1e-2", "--no-bias", "--save", str(path)]) == 0
    capsys.readouterr()
    data = np.load(path)
    assert data["W"].shape == (3, 2) and data["H"].shape == (2, 6) and data["Y"].shape == (3, 6)
    assert data["b"].shape == (3,)


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--K", "1", "--d", "2", "--profile", "1:1", "--lam-W", "1", "--lam-H", "1"], "'K'"),
        (["--K", "3", "--d", "0", "--profile", "1:1", "--lam-W", "1", "--lam-H", "1"], "--d"),
        (["--K", "3", "--d", "2", "--profile", "1:1", "--lam-W", "-1", "--lam-H", "1"], "'lam_W'"),
        (["--K", "3", "--d", "2", "--profile", "", "--lam-W", "1", "--lam-H", "1"], "profile"),
        (["--K", "3", "--d", "2", "--profile", "4:1", "--lam-W", "1", "--lam-H", "1"], "1..K=3"),
        (["--K", "3", "--d", "2", "--profile", "1-1", "--lam-W", "1", "--lam-H", "1"], "multiplicity:count"),
        (["--K", "3", "--d", "2", "--profile", "1:1", "--lam-W", "abc", "--lam-H", "1"], "expected a number"),
    ],
)
def test_bad_input_is_one_clear_line(argv, needle, capsys):
    try:
        code = main(["solve", *argv])
    except SystemExit as exc:  # argparse-level errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("ufm: error:") and needle in err, err
    assert "Traceback" not in err


def test_solve_interrupted_while_verifying_keeps_the_solution(tmp_path, capsys, monkeypatch):
    import importlib

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(importlib.import_module("ufm.verify"), "verify", interrupted)
    path = tmp_path / "sol.npz"
    code = main(["solve", "--K", "3", "--d", "3", "--profile", "1:2,2:1", "--lam-W", "5e-3", "--lam-H", "5e-3",
                 "--save", str(path)])
    err = capsys.readouterr().err.strip()
    assert code == 130 and len(err.splitlines()) == 1
    assert err.startswith("ufm: interrupted while verifying; the solver had finished: CONVERGED_GTOL, F = ")
    assert f"saved to {path}" in err
    data = np.load(path)
    assert data["W"].shape == (3, 3) and data["H"].shape == (3, 9) and data["Y"].shape == (3, 9)


# -- --precision (ufm.solvers.mixed) ----------------------------------------------------------
PRECISION_ARGV = ["solve", "--K", "4", "--d", "4", "--profile", "1:3,2:1", "--lam-W", "5e-3", "--lam-H", "5e-3",
                  "--json", "--seed", "3"]


def test_solve_precision_reaches_the_solver(capsys, monkeypatch):
    """--precision mixed takes the float32 route (its phase in the JSON, its iterations counted in
    nit) and lands on the same F as float64; with auto set to pick mixed at every size,
    --precision float64 still runs in float64 (the flag, not the default, decides)."""
    assert main([*PRECISION_ARGV, "--precision", "mixed"]) == 0
    mixed = json.loads(capsys.readouterr().out)
    assert mixed["precision"] == "mixed" and mixed["verified"] is True
    assert 0 < mixed["float32"]["nit"] < mixed["nit"] and mixed["float32"]["message"]
    assert main(PRECISION_ARGV) == 0  # the default, auto: float64 at this size (K d G far below 2e8)
    default = json.loads(capsys.readouterr().out)
    assert default["precision"] == "float64" and "float32" not in default
    # min F of the theorem (an independent route) for both
    assert mixed["objective"] == pytest.approx(default["theory"]["value"], rel=1e-12)
    assert default["objective"] == pytest.approx(default["theory"]["value"], rel=1e-12)
    monkeypatch.setattr("ufm.solvers.mixed.MIXED_FROM", 0.0)  # auto now takes the mixed route here
    assert main(PRECISION_ARGV) == 0
    assert json.loads(capsys.readouterr().out)["precision"] == "mixed"
    assert main([*PRECISION_ARGV, "--precision", "float64"]) == 0
    assert json.loads(capsys.readouterr().out)["precision"] == "float64"
    assert main([*PRECISION_ARGV[:-3], "--precision", "mixed"]) == 0  # the table says so
    assert "the bulk ran in float32" in capsys.readouterr().out


@pytest.mark.parametrize("extra,needle", [
    (["--method", "gd"], "--precision does not apply to --method gd (it applies to lbfgs)"),
    (["--method", "convex"], "--precision does not apply to --method convex (it applies to lbfgs)"),
    (["--fixed-classifier", "etf"], "--precision does not apply to --fixed-classifier"),
    (["--device", "cuda"], "--precision does not apply to --device cuda"),
    (["--no-group"], "'precision' parameter of lbfgs must be 'auto' or 'float64' here. Got 'mixed'. (the float32 phase is grouped"),
    (["--loss", "bce"], "'precision' parameter of lbfgs must be 'auto' or 'float64' here. Got 'mixed'. (the float32 phase computes the pick-all-label"),
])
def test_solve_precision_refused_where_it_cannot_apply(extra, needle, capsys):
    """Where the solver would refuse --precision (another method, the fixed classifier, the device
    path) or silently not do what it asks (mixed with a loss it does not compute in float32; mixed
    with --no-group, whose float32 phase would impose nc1): one line, exit 2."""
    assert main([*PRECISION_ARGV, "--precision", "mixed", *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ufm: error:") and needle in err, err


def test_solve_precision_float64_and_auto_go_with_no_group_and_bce(capsys):
    """Only mixed conflicts with --no-group and a non-PAL loss: float64 (and auto) are what runs there."""
    assert main([*PRECISION_ARGV, "--precision", "float64", "--no-group"]) == 0
    assert json.loads(capsys.readouterr().out)["precision"] == "float64"
    assert main([*PRECISION_ARGV, "--precision", "auto", "--loss", "bce"]) == 1  # 1: nothing verified for bce
    assert json.loads(capsys.readouterr().out)["precision"] == "float64"


def test_solve_precision_bad_value(capsys):
    with pytest.raises(SystemExit) as exc:
        main([*PRECISION_ARGV, "--precision", "float32"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "argument --precision: invalid choice: 'float32'" in err
