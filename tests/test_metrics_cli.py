"""`ufm metrics FILE.npz`: the documented layout, every metric, the certificate, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ufm.cli import main
from ufm.features import load_npz, make_example, measure, save_npz
from ufm.metrics import all_metrics

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "features_example.npz"


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ex") / "features.npz"
    make_example(path)
    return path


def _json(capsys, argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_example_is_small_and_reproducible(example, tmp_path):
    assert example.stat().st_size < 200_000
    make_example(tmp_path / "again.npz")
    assert (tmp_path / "again.npz").read_bytes() == example.read_bytes()


def test_example_bytes_do_not_depend_on_the_solvers_last_digits(example, tmp_path, monkeypatch):
    """Another BLAS moves L-BFGS's last digits (2e-13 was seen): the file must not change."""
    import ufm.solvers

    solve = ufm.solvers.solve

    def rounded_elsewhere(*args, **kwargs):
        r = solve(*args, **kwargs)
        gen = np.random.default_rng(7)
        for a in (r.W, r.H, r.b):
            a *= 1 + 1e-12 * gen.standard_normal(a.shape)
        return r

    monkeypatch.setattr(ufm.solvers, "solve", rounded_elsewhere)
    make_example(tmp_path / "elsewhere.npz")
    assert (tmp_path / "elsewhere.npz").read_bytes() == example.read_bytes()


def test_shipped_example_matches_the_generator(example):
    shipped, fresh = np.load(EXAMPLE), np.load(example)
    # every .npz ufm writes carries the marker that lets it be overwritten by ufm later
    assert sorted(shipped.files) == sorted(fresh.files) == ["H", "W", "Y", "b", "lam_H", "lam_W", "lam_b",
                                                            "ufm_written"]
    for key in shipped.files:
        np.testing.assert_allclose(shipped[key], fresh[key], rtol=1e-8, atol=1e-10, err_msg=key)


def test_metrics_json_has_every_metric_and_the_certificate(example, capsys):
    out = _json(capsys, ["metrics", str(example), "--json"])
    m = out["metrics"]
    for key in ("nc1", "nc1_all", "nc1_by_m", "nc2_w", "nc2_h", "nc3", "nc3_dual", "bias", "tagwise",
                "decoding_accuracy", "norm_W", "norm_H"):
        assert key in m, key
    assert (out["K"], out["d"], out["N"]) == (5, 8, 160)
    assert 1e-4 < m["nc1"] < 1.0  # noisy features: collapse is approximate
    assert m["tagwise"]["2"]["predicted_scale"] == pytest.approx(out["theory"]["c"]["2"], rel=1e-12)
    cert = out["certificate"]
    assert cert["lower_bound"] <= out["objective"]["F"]
    assert 0 < cert["rel_gap"] < 1
    assert out["theory"]["regime"] == "collapse"
    assert {"classes", "sets", "w_cos"} <= set(out["geometry"])


def test_metrics_do_not_depend_on_sample_order(example, rng):
    data = load_npz(example)
    perm = rng.permutation(data["H"].shape[1])
    a = all_metrics(data["W"], data["H"], data["b"], data["Y"])
    b = all_metrics(data["W"], data["H"][:, perm], data["b"], data["Y"][:, perm])
    for key in ("nc1", "nc2_w", "nc2_h", "nc3", "decoding_accuracy"):
        assert a[key] == pytest.approx(b[key], rel=1e-9, abs=1e-12), key
    ca = measure(data["W"], data["H"], data["b"], data["Y"], lam_W=5e-3, lam_H=5e-3, lam_b=1e-2)
    cb = measure(data["W"], data["H"][:, perm], data["b"], data["Y"][:, perm], lam_W=5e-3, lam_H=5e-3, lam_b=1e-2)
    assert ca["certificate"]["lower_bound"] == pytest.approx(cb["certificate"]["lower_bound"], rel=1e-12)


def test_solved_file_is_certified_optimal(tmp_path, capsys):
    path = tmp_path / "sol.npz"
    assert main(["solve", "--K", "4", "--d", "4", "--profile", "1:2,2:1", "--lam-W", "5e-3", "--lam-H", "5e-3",
                 "--lam-b", "1e-2", "--json", "--save", str(path)]) == 0
    capsys.readouterr()
    out = _json(capsys, ["metrics", str(path), "--json"])
    assert out["certificate"]["rel_gap"] < 1e-9
    assert abs(out["gap_to_theory"]) < 1e-9
    assert out["metrics"]["nc2_w"] < 1e-8
    text_rc = main(["metrics", str(path)])
    assert text_rc == 0 and "certified gap" in capsys.readouterr().out


def test_flags_override_stored_lambdas_and_without_them_no_certificate(example, tmp_path, capsys):
    data = dict(np.load(example))
    bare = tmp_path / "bare.npz"
    save_npz(bare, H=data["H"], Y=data["Y"], W=data["W"])
    out = _json(capsys, ["metrics", str(bare), "--json"])
    assert "certificate" not in out and out["metrics"]["bias"] == 0.0
    out2 = _json(capsys, ["metrics", str(bare), "--json", "--lam-W", "1e-2", "--lam-H", "2e-3"])
    assert out2["objective"]["lam_W"] == 1e-2 and out2["objective"]["bias"] is False
    assert main(["metrics", str(bare), "--lam-W", "1e-2"]) == 2
    assert "both" in capsys.readouterr().err


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(H=d["H"].T), "Transpose"),
    (lambda d: d.update(Y=d["Y"].T), "Transpose"),
    (lambda d: d.pop("W"), "lacks"),
    (lambda d: d.update(Y=d["Y"] * 2), "0/1"),
    (lambda d: d.update(b=np.zeros(3)), "'b'"),
])
def test_bad_files_give_one_clear_error(example, tmp_path, capsys, change, message):
    data = dict(np.load(example))
    change(data)
    bad = tmp_path / "bad.npz"
    save_npz(bad, **data)
    assert main(["metrics", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ufm: error:") and message in err, err


def test_center_option_reaches_the_metrics(tmp_path, capsys):
    """--center samples centres at the count-weighted mean: NC3 changes under imbalance, not under balance."""
    from ufm.cli import main
    from ufm.designs import imbalanced_single
    from ufm.problem import UFMProblem
    from ufm.solvers import solve

    p = UFMProblem(imbalanced_single(4, [12, 6, 3, 2]), 4, 5e-3, 5e-3, 1e-2)
    r = solve(p, rng=0)
    path = tmp_path / "imb.npz"
    save_npz(path, W=r.W, H=r.H, b=r.b, Y=p.design.Y)
    got = {}
    for c in ("classes", "samples"):
        assert main(["metrics", str(path), "--json", "--center", c]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["center"] == c
        got[c] = out["metrics"]["nc3"]
    assert abs(got["classes"] - got["samples"]) > 1e-3, got
