"""A real network end to end: multi-label digits, an MLP trained with PAL (JAX), its last
layer exported in the `ufm metrics` layout and compared with the UFM optimum."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import ufm
from ufm.cli import main
from ufm.exceptions import ConvergenceWarning, UFMError

pytest.importorskip("jax")
pytest.importorskip("sklearn")

from ufm.networks.data import load_digit_images, multilabel_digits  # noqa: E402
from ufm.networks.train import fixed_etf, prototype_accuracy, prototypes, topm_accuracy  # noqa: E402

SMALL = {"hidden": [16], "batch_size": 16}


@pytest.fixture(scope="module")
def small():
    return ufm.UFMProblem(ufm.balanced(4, {1: 8, 2: 3}), 4, 5e-3, 5e-3, 1e-2)  # N = 50


def test_import_ufm_loads_no_autodiff_library():
    code = ("import sys, ufm, ufm.cli, ufm.report, ufm.networks; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'jax', 'jaxlib', 'optax', 'torch', 'sklearn'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_digits_samples_are_pixelwise_maxima_from_disjoint_pools(small):
    images, digit = load_digit_images()
    data = multilabel_digits(small.design, rng=0)
    Y, X, Xt = data.Y_train, data.X_train, data.X_test
    assert X.shape == (small.N, 64) and np.array_equal(Y, small.design.Y) and data.Y_test.shape == Y.shape

    def sources(x, k):  # indices of the images of digit k that x could contain
        own = np.flatnonzero(digit == k)
        return set(own[np.all(images[own] <= x + 1e-12, axis=1)].tolist())

    used_train, used_test = set(), set()
    for used, XX in ((used_train, X), (used_test, Xt)):
        for i in range(small.N):
            S = np.flatnonzero(Y[:, i])
            if S.size == 1:
                match = np.flatnonzero(np.all(images == XX[i], axis=1))
                assert match.size >= 1 and np.all(digit[match] == S[0])
                used.update(match.tolist())
            else:
                a, b = (sources(XX[i], k) for k in S)
                assert any(np.array_equal(np.maximum(images[p], images[q]), XX[i]) for p in a for q in b)
    assert not used_train & used_test  # singles of train and test never share an image


def test_digits_refuses_designs_it_cannot_realise():
    with pytest.raises(UFMError, match="10 classes"):
        multilabel_digits(ufm.balanced(11, {1: 1}))
    with pytest.raises(UFMError, match="size 3"):
        multilabel_digits(ufm.balanced(4, {1: 1, 3: 1}))


def test_decoding_accuracies_on_hand_made_cases():
    Y = np.array([[1, 0, 1], [0, 1, 1], [0, 0, 0]], float)  # samples {0}, {1}, {0, 1}
    Z = np.array([[3.0, 0.0, 2.0], [1.0, 2.0, 0.5], [0.0, 1.0, 1.0]])  # third: top-2 is {0, 2}
    assert topm_accuracy(Z, Y) == pytest.approx(2 / 3)
    H = np.array([[1.0, 0.0, 1.0, 0.9], [0.0, 1.0, 1.0, 0.1]])  # h_0, h_1, h_{01} = c_2 (h_0+h_1)/2, c_2 = 2
    Yp = np.array([[1, 0, 1, 1], [0, 1, 1, 0]], float)
    sets, P = prototypes(H[:, :3], Yp[:, :3])
    assert sets == [(0,), (1,), (0, 1)]
    np.testing.assert_allclose(P, [[1, 0, 1], [0, 1, 1]])
    # the fourth sample (labelled {0}, close to h_0) decodes right; relabelled {0, 1} it would not
    assert prototype_accuracy(sets, P, H, Yp) == 1.0
    Yq = Yp.copy()
    Yq[1, 3] = 1
    assert prototype_accuracy(sets, P, H, Yq) == pytest.approx(0.75)


def test_network_run_is_reproducible_and_certified(small):
    with pytest.warns(ConvergenceWarning):
        a = ufm.solve(small, "network", rng=3, epochs=4, **SMALL)
        b = ufm.solve(small, "network", rng=3, epochs=4, **SMALL)
    np.testing.assert_array_equal(a.x, b.x)
    h = a.history
    assert h["iter"] == [0, 1, 2, 3, 4] and a.extra["steps"] == 4 * 4
    # the history's F and certificate are those of the returned last layer
    cert = ufm.certify(small, a.W, a.H, a.b)
    assert h["fun"][-1] == pytest.approx(a.fun, rel=1e-12) and h["gap"][-1] == pytest.approx(cert.gap, rel=1e-9)
    assert cert.gap > 0 and cert.lower_bound <= ufm.predict(small).value + 1e-12
    for key in ("train_acc", "test_acc", "train_proto_acc", "test_proto_acc"):
        assert len(h[key]) == 5 and all(0 <= v <= 1 for v in h[key])


def test_fixed_classifier_stays_the_optimal_etf(small):
    W = fixed_etf(small)
    Wopt, _, _ = ufm.predicted_minimizer(small)
    np.testing.assert_allclose(W @ W.T, Wopt @ Wopt.T, atol=1e-12)
    with pytest.warns(ConvergenceWarning):
        r = ufm.solve(small, "network", rng=0, epochs=2, fixed_classifier=True, **SMALL)
    np.testing.assert_array_equal(r.W, W)
    assert max(r.history["nc2_w"]) < 1e-12


def test_fixed_classifier_takes_etf_scale_as_solve_does(small, tmp_path, capsys):
    """``etf:SCALE`` freezes a simplex ETF with rows of norm SCALE (as ``ufm solve``); a bad
    spec is refused before anything is written."""
    W = fixed_etf(small, "etf:0.5")
    np.testing.assert_allclose(np.linalg.norm(W, axis=1), 0.5, rtol=1e-12)
    K = small.K
    np.testing.assert_allclose(W @ W.T, 0.25 * (K * np.eye(K) - 1) / (K - 1), atol=1e-12)
    with pytest.warns(ConvergenceWarning):
        r = ufm.solve(small, "network", rng=0, epochs=1, fixed_classifier="etf:0.5", **SMALL)
    np.testing.assert_array_equal(r.W, W)
    out = tmp_path / "run"
    assert main(["train", "--epochs", "1", "--out", str(out), "--fixed-classifier", "etf:x"]) == 2
    assert "SCALE" in capsys.readouterr().err and not out.exists()


def test_network_refuses_what_it_cannot_train(small):
    with pytest.raises(UFMError, match="x0"):
        ufm.solve(small, "network", x0=np.zeros(small.n_vars))
    with pytest.raises(UFMError, match="PAL"):
        ufm.solve(ufm.UFMProblem(small.design, 4, 5e-3, 5e-3, loss="bce"), "network")
    with pytest.raises(UFMError, match="hidden"):
        ufm.solve(small, "network", hidden=[0])
    with pytest.raises(UFMError, match="collapse regime"):
        ufm.solve(ufm.UFMProblem(small.design, 4, 5.0, 5.0), "network", fixed_classifier=True)


def test_cli_train_writes_the_metrics_layout(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--epochs", "2", "--out", str(out), "--K", "4", "--profile", "1:8,2:3", "--d", "4"]
    # two epochs end far from the optimum (relative certified gap 0.67 > --tol 0.05): exit 1, said on stderr
    assert main(args) == 1
    got = capsys.readouterr()
    assert "certified gap" in got.out and "above --tol 0.05" in got.err
    assert sorted(p.name for p in out.iterdir()) == [".ufm-lock", ".ufm-manifest.json", "epoch_000.npz",
                                                    "epoch_001.npz", "epoch_002.npz", "summary.json"]
    assert main(["metrics", str(out / "epoch_002.npz"), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    summary = json.loads((out / "summary.json").read_text())
    assert got["certificate"]["gap"] == pytest.approx(summary["optimum"]["gap"], rel=1e-9)
    assert got["objective"]["lam_H"] == 5e-4 and got["N"] == 50
    assert summary["epochs"] == 2 and summary["history"]["iter"] == [0, 1, 2]
    assert summary["optimum"]["rel_gap"] > 0.05  # hence the exit status 1 above
    c2 = summary["c_m"]["2"]
    assert c2["predicted"] == pytest.approx(ufm.predict(ufm.UFMProblem(
        ufm.balanced(4, {1: 8, 2: 3}), 4, 5e-3, 5e-4, 1e-2)).c[2], rel=1e-12)
    assert c2["rel_error"] == pytest.approx(abs(c2["measured"] - c2["predicted"]) / c2["predicted"])
    # a rerun into its own directory is refused without --fresh (the earlier run is kept, byte for
    # byte), replaces it with --fresh; a foreign non-empty one is refused in one line
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.name != ".ufm-lock"}
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "earlier ufm train run" in err and "--fresh" in err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name != ".ufm-lock"} == before
    assert main([*args, "--fresh", "--tol", "0.9"]) == 0  # the same run within a looser tolerance
    capsys.readouterr()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert main(["train", "--epochs", "1", "--out", str(foreign)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not made by ufm" in err
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]


def test_cli_train_interrupted_keeps_its_epochs_and_exits_130(tmp_path):
    import signal
    import time

    from subprocs import sigint_default

    out = tmp_path / "run"
    with sigint_default():
        proc = subprocess.Popen([sys.executable, "-m", "ufm.cli", "train", "--epochs", "100000", "--out", str(out),
                                 "--K", "4", "--profile", "1:8,2:3", "--d", "4"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "epoch_002.npz").exists():
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted after" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "INTERRUPTED" and 2 <= summary["epochs"] < 100000
    done = sorted(p.name for p in out.glob("epoch_*.npz"))
    # the epochs finished before the signal, consecutive from 0, each a complete file (the
    # epoch under way when it came is not exported)
    assert done == [f"epoch_{e:03d}.npz" for e in range(len(done))]
    assert len(done) in (summary["epochs"], summary["epochs"] + 1)
    assert main(["metrics", str(out / done[-1])]) == 0
