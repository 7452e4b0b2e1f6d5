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


def _ufm(*argv: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ufm.cli", *argv], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env=ENV)


def test_one_truncated_record_skips_only_itself(tmp_path):
    """Of the 15 records of ``losses`` one is cut short: the report lists that record alone as
    skipped (exit 1) and still renders the section's table and figure from the 14 others."""
    assert _ufm("sweep", "losses", "--out", "losses", "--no-progress", "--jobs", "2", cwd=tmp_path).returncode == 0
    rec = sorted(p for p in (tmp_path / "losses").glob("*.json") if len(p.stem) == 64)[0]
    rec.write_bytes(rec.read_bytes()[:300])
    proc = _ufm("report", "--from", "losses", "--out", "rep", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("ufm: warning: skipped")]
    assert warnings == [f"ufm: warning: skipped losses/{rec.name} (corrupt or partial record)"], proc.stderr
    for rel in ("tables/losses.md", "tables/losses.csv", "figures/losses.png"):
        assert (tmp_path / "rep" / rel).is_file(), rel
    assert "Spec `losses` (14 cells" in (tmp_path / "rep" / "README.md").read_text()


def test_jobs_are_capped_at_the_cells_and_the_cores_in_one_line(tmp_path):
    from ufm.sweep.runner import cores

    proc = _ufm("sweep", "--K", "3", "--profile", "1:1", "1:2", "--lam-W", "1e-2", "--lam-H", "1e-2", "--out", "o",
                "--jobs", "100000", "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    cap = min(2, cores())
    assert proc.stderr.strip() == f"ufm sweep: --jobs 100000 capped at {cap} (the 2 pending cells, {cores()} cores)"


def test_dask_not_an_address_is_one_line_at_once(tmp_path):
    import time

    t0 = time.perf_counter()
    proc = _ufm("sweep", "--K", "3", "--profile", "1:1", "--lam-W", "1e-2", "--lam-H", "1e-2", "--out", "o",
                "--dask", "notanaddress", "--no-progress", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("ufm: error: --dask 'notanaddress' is not a scheduler address")
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert time.perf_counter() - t0 < 9  # not the 10 s connection timeout (+ 20 s of Client.__del__)
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_sweep_workers_end_when_the_parent_gets_sigterm(tmp_path):
    import signal
    import time

    spec = tmp_path / "slow.toml"
    spec.write_text('name = "slow"\n[[grid]]\nK = 30\nprofile = "1:5,2:2"\nmu = 1e-4\nsolver = "gd"\n'
                    'seeds = 4\noptions = {step = 1e-3, max_iter = 100000000}\n')
    parent = subprocess.Popen([sys.executable, "-m", "ufm.cli", "sweep", str(spec), "--out", str(tmp_path / "o"),
                               "--jobs", "100000", "--no-progress"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=ENV)

    def children(pid: int) -> list[int]:
        out = []
        for p in Path("/proc").iterdir():
            if p.name.isdigit():
                try:
                    if int((p / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(p.name))
                except (OSError, IndexError, ValueError):
                    pass
        return out

    def alive(pid: int) -> bool:
        try:
            return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    workers: list[int] = []
    deadline = time.time() + 120
    while time.time() < deadline and len(workers) < 2:
        time.sleep(0.5)
        workers = children(parent.pid)
    time.sleep(3)  # the workers have their cells (and watch their parent)
    workers = children(parent.pid)
    assert workers, "no worker started"
    parent.send_signal(signal.SIGTERM)
    parent.wait(timeout=30)
    deadline = time.time() + 30
    while time.time() < deadline and any(alive(w) for w in workers):
        time.sleep(0.5)
    left = [w for w in workers if alive(w)]
    for w in left:
        os.kill(w, signal.SIGKILL)
    assert not left, f"workers outlived their parent: {left}"


def test_hints_fit_the_status_the_method_and_the_starts_tried():
    """The hint after a failed verification points the right way: more starts than were tried,
    epochs (not max_iter) for a fixed schedule, a nonconvex method for a relaxation of rank > d."""
    import ufm
    from ufm.result import Status

    p = ufm.UFMProblem(ufm.balanced(3, {1: 2}), 3, 1e-2, 1e-2)
    W, H, b = ufm.predicted_minimizer(p)
    far = ufm.verify(p, 0.3 * W, H, b)  # a certified gap far above 1e-3
    assert far.certificate.rel_gap > 1e-3
    assert "try several starts (--starts N)" in far.explain()
    after4 = far.explain(starts=4)
    assert "the best of 4 starts" in after4 and "--starts 8" in after4 and "--starts N" not in after4
    rank = far.explain(False, status=Status.RANK_EXCEEDS_D, method="convex")
    assert "rank > d" in rank and "--method lbfgs" in rank and "max" not in rank and "epochs" not in rank
    adam = far.explain(False, status=Status.MAX_ITER, method="adam")
    assert "--epochs" in adam and "max-iter" not in adam and "max_iter" not in adam
    assert "--lr-schedule cosine" in adam  # a constant rate (the default) can be decayed
    with pytest.warns(ufm.ConvergenceWarning, match="epochs"):
        run = ufm.solve(p, method="sgd", epochs=1, rng=0)  # its message speaks of epochs too
    assert run.status == Status.MAX_ITER and "epochs" in run.message and "max_iter" not in run.message
    cosine = far.explain(False, status=Status.MAX_ITER, method="sgd", schedule="cosine")
    assert "--epochs" in cosine and "--lr-schedule" not in cosine and "--lr" in cosine
    gd = far.explain(False, status=Status.MAX_ITER, method="gd")
    assert "--max-iter" in gd and "epochs" not in gd
    assert "reduce the step" in far.explain(False, status=Status.NUMERICAL_ERROR, method="gd")
