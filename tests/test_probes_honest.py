"""Probes of the last false successes and internal errors, through the real command line.

Every case: its exit status, and either one stderr line without a traceback (exit 2) or an
honest result -- never "internal error". The commands run concurrently (one fixture).
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
ENV.pop("UFM_DEBUG", None)
P = ["--K", "3", "--d", "3", "--profile", "1:2", "--lam-W", "1e-2", "--lam-H", "1e-2"]
TRAIN = ["train", "--epochs", "1", "--K", "3", "--profile", "1:4", "--d", "3", "--out", "t"]
STALL = """name = "stall"
[[grid]]
K = 3
profile = "1:1"
mu = 1e-2
solver = "gd"
options = {max_iter = 3}
[[grid]]
K = 3
profile = "1:1"
mu = 1e-2
solver = "gd"
options = {step = 1e6, max_iter = 50}
[[grid]]
K = 3
profile = "1:1"
mu = 1e-2
[[grid]]
K = 3
profile = "1:1"
mu = 1e-2
d = 1
"""

# name: (argv, exit status, text the output (stdout + stderr) must hold)
CASES = {
    "train --lr 0": ([*TRAIN, "--lr", "0"], 2, "--lr must be > 0"),
    "train --lr -1": ([*TRAIN, "--lr", "-1"], 2, "--lr must be > 0"),
    "solve --fixed-classifier with --method gd": (["solve", *P, "--fixed-classifier", "etf:1", "--method", "gd"], 2,
                                                  "conflicts with --method gd"),
    "solve --fixed-classifier with --method lbfgs": (["solve", *P, "--fixed-classifier", "etf", "--method",
                                                      "lbfgs"], 2, "conflicts"),
    "solve --fixed-classifier alone runs": (["solve", *P, "--fixed-classifier", "etf:1"], 0, "fixed-newton"),
    "solve etf:1e300": (["solve", *P, "--fixed-classifier", "etf:1e300"], 2, "ETF row norm"),
    "solve etf:1e-300": (["solve", *P, "--fixed-classifier", "etf:1e-300"], 2, "ETF row norm"),
    "solve lam 5e-324": (["solve", *P[:6], "--lam-W", "5e-324", "--lam-H", "5e-324"], 2, "subnormal"),
    "solve lam 1e-300": (["solve", *P[:6], "--lam-W", "1e-300", "--lam-H", "1e-300"], 2, "below 1e-150"),
    "solve lam_W 1, lam_H 1e-310": (["solve", *P[:6], "--lam-W", "1", "--lam-H", "1e-310"], 2, "lam_H"),
    "solve lam_b 5e-324": (["solve", *P, "--lam-b", "5e-324"], 2, "lam_b"),
    "certify a file with lam 5e-324": (["certify", "tiny.npz"], 2, "subnormal"),
    "metrics on H = 0": (["metrics", "zero.npz"], 0, "nan"),
    "metrics on subnormal H": (["metrics", "sub.npz"], 0, "nan"),
    "metrics on W = H = 0": (["metrics", "w0.npz"], 0, "nan"),
    "metrics --json on H = 0": (["metrics", "zero.npz", "--json"], 0, "null"),
    "sweep: diverged and max_iter cells are counted, exit 1": (["sweep", "stall.toml", "--out", "st", "--no-progress"],
                                                               1, "2 did not converge"),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    import ufm

    d = tmp_path_factory.mktemp("honest")
    p = ufm.UFMProblem(ufm.balanced(3, {1: 2, 2: 1}), 3, 1e-2, 1e-2)
    Y = p.design.Y
    np.savez(d / "zero.npz", W=np.eye(3), H=np.zeros((3, Y.shape[1])), Y=Y, lam_W=1e-2, lam_H=1e-2)
    np.savez(d / "sub.npz", W=np.eye(3), H=np.full((3, Y.shape[1]), 5e-324), Y=Y, lam_W=1e-2, lam_H=1e-2)
    np.savez(d / "w0.npz", W=np.zeros((3, 3)), H=np.zeros((3, Y.shape[1])), Y=Y)
    np.savez(d / "tiny.npz", W=np.eye(3), H=np.ones((3, Y.shape[1])), Y=Y, lam_W=5e-324, lam_H=5e-324)
    (d / "stall.toml").write_text(STALL)

    def go(name: str) -> tuple[str, subprocess.CompletedProcess]:
        argv = CASES[name][0]
        return name, subprocess.run([sys.executable, "-m", "ufm.cli", *argv], capture_output=True, text=True,
                                    cwd=d, timeout=120, env=ENV)

    with ThreadPoolExecutor(4) as ex:
        out = dict(ex.map(go, CASES))
    out["_dir"] = d  # type: ignore[assignment]
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_honest_exit_and_no_internal_error(name, runs):
    _, code, text = CASES[name]
    proc = runs[name]
    assert proc.returncode == code, (proc.returncode, proc.stdout[-500:], proc.stderr)
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    assert text in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    if code == 2:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("ufm: error:"), proc.stderr
    if name.startswith("train"):
        assert not (Path(runs["_dir"]) / "t").exists()  # refused before the folder is made


def test_a_sweep_reruns_its_unconverged_cells_with_retry_failed(runs):
    """The stored cells that did not converge stay counted on a plain rerun (exit 1, nothing
    recomputed) and are recomputed with --retry-failed; the cell outside the theorem (d = 1 < K-1)
    and the converged one are not failures."""
    d = Path(runs["_dir"])
    first = runs["sweep: diverged and max_iter cells are counted, exit 1"]
    assert "4 cells in st (0 cached, 4 computed, 0 corrupt records redone, 0 failed, 2 did not converge)" in first.stdout
    assert "MAX_ITER" in first.stderr and "NUMERICAL_ERROR" in first.stderr
    again = subprocess.run([sys.executable, "-m", "ufm.cli", "sweep", "stall.toml", "--out", "st", "--no-progress"],
                           capture_output=True, text=True, cwd=d, timeout=120, env=ENV)
    assert again.returncode == 1 and "(4 cached, 0 computed" in again.stdout and "2 did not converge" in again.stdout
    retry = subprocess.run([sys.executable, "-m", "ufm.cli", "sweep", "stall.toml", "--out", "st", "--no-progress",
                            "--retry-failed"], capture_output=True, text=True, cwd=d, timeout=120, env=ENV)
    assert retry.returncode == 1 and "(2 cached, 2 computed" in retry.stdout, retry.stdout
