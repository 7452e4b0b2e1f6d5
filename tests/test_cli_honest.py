"""Honest outputs, driven through the real command line in subprocesses.

Each probe checks the exit-code contract (0 done and every claim holds, 1 ran but did
not converge / a claim failed / nothing certified / a cell failed, 2 bad input or
environment, 130 interrupted), that an error is a single stderr line without a
traceback, and -- for commands that touch files -- that a user's files in the folder
are untouched (same listing, same bytes) before and after.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from subprocs import sigint_default

from ufm.files import DirLock

P = ["--K", "3", "--d", "3", "--profile", "1:2", "--lam-W", "1e-2", "--lam-H", "1e-2"]
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONWARNINGS": "default"}
ENV.pop("UFM_DEBUG", None)


def ufm(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ufm.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env=ENV)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}:\n{proc.stderr}"
    assert lines[0].startswith("ufm: error:"), lines[0]
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- fixtures: files a user (or an attacker) hands to the commands ---------------------
@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("inputs")
    (d / "empty.npz").write_bytes(b"")
    np.save(d / "array.npy", np.zeros(3))
    np.savez(d / "pickled.npz", W=np.array([None, 1], dtype=object), H=np.zeros((2, 2)), Y=np.eye(2))
    np.savez(d / "complex.npz", W=np.eye(3) + 1j, H=np.ones((3, 3)), Y=np.eye(3))
    np.savez(d / "text_lambda.npz", W=np.eye(3), H=np.ones((3, 3)), Y=np.eye(3), lam_W="abc", lam_H=1.0)
    np.savez(d / "huge.npz", W=np.eye(3) * 1e200, H=np.ones((3, 3)) * 1e200, Y=np.eye(3), lam_W=1e-2, lam_H=1e-2)
    np.savez(d / "nan.npz", W=np.full((3, 3), np.nan), H=np.ones((3, 3)), Y=np.eye(3), lam_W=1e-2, lam_H=1e-2)
    (d / "afile").write_text("not a folder\n")
    (d / "spec_defults.toml").write_text('name = "x"\n[defults]\nlam_b = 5\n[[grid]]\nK = 3\nprofile = "1:1"\nmu = 1e-2\n')
    (d / "spec_type.toml").write_text('name = "x"\n[[grid]]\nK = "abc"\nprofile = "1:1"\nmu = 1e-2\n')
    (d / "spec_mu.toml").write_text('name = "x"\n[[grid]]\nK = 3\nprofile = "1:1"\nmu = "x"\n')
    (d / "spec_zero.toml").write_text('name = "x"\n[[grid]]\nK = 3\nprofile = "1:1"\nmu = 1e-2\nd = 0\n')
    (d / "spec_option.toml").write_text('name = "x"\n[[grid]]\nK = 3\nprofile = "1:1"\nmu = 1e-2\noptions = {stepp = 1}\n')
    (d / "spec_design.toml").write_text('name = "x"\n[[grid]]\nK = 3\nmu = 1e-2\ndesign = {kind = "balanced", profil = "1:1"}\n')
    (d / "spec_twice.toml").write_text('name = "x"\n[[grid]]\nK = 3\nprofile = "1:1"\nmu = 1e-2\nmu_ratio = 0.5\n')
    (d / "spec_gridkey.toml").write_text('name = "x"\n[[grid]]\nK = 3\nprofile = "1:1"\nmu = 1e-2\nlamb = 1\n')
    return d


BAD = {  # name: (argv with {f} for the inputs folder, what the message must mention)
    "solve seed -1": (["solve", *P, "--seed", "-1"], "--seed"),
    "verify seed -1": (["verify", "--seed", "-1"], "--seed"),
    "sweep seeds -1": (["sweep", "--K", "3", "--profile", "1:1", "--lam-W", "1", "--lam-H", "1", "--seeds", "-1",
                        "--out", "{f}/never"], "--seeds"),
    "sweep jobs 0": (["sweep", "theorem", "--out", "{f}/never", "--jobs", "0"], "--jobs"),
    "lam nan": (["solve", *P[:-2], "--lam-H", "nan"], "--lam-H"),
    "lam negative": (["solve", *P[:-2], "--lam-H", "-1"], "lam_H"),
    "K 1": (["solve", "--K", "1", "--d", "1", "--profile", "1:1", "--lam-W", "1", "--lam-H", "1"], "K"),
    "step with lbfgs": (["solve", *P, "--step", "1e6"], "--step does not apply"),
    "step with convex": (["solve", *P, "--method", "convex", "--step", "0.1"], "--step does not apply"),
    "cvx-solver with lbfgs": (["solve", *P, "--cvx-solver", "SCS"], "--cvx-solver does not apply"),
    "group with gd": (["solve", *P, "--method", "gd", "--group"], "--group does not apply"),
    "starts with convex": (["solve", *P, "--method", "convex", "--starts", "2"], "--starts does not apply"),
    "negative step": (["solve", *P, "--method", "gd", "--step", "-1"], "--step must be > 0"),
    "save under a file": (["solve", *P, "--save", "{f}/afile/x.npz"], "is a file"),
    "save into missing folder": (["solve", *P, "--save", "{f}/nowhere/x.npz"], "does not exist"),
    "save over a user file": (["solve", *P, "--save", "{f}/afile"], "never overwritten"),
    "save onto a folder": (["solve", *P, "--save", "{f}"], "is a folder"),
    "too large design": (["solve", "--K", "100000", "--d", "3", "--profile", "2:1", "--lam-W", "1", "--lam-H", "1"],
                         "label sets"),
    "too large memory": (["solve", "--K", "50", "--d", "50", "--profile", "2:40", "--lam-W", "1", "--lam-H", "1",
                          "--max-memory", "0.001"], "GiB"),
    "certify missing": (["certify", "{f}/missing.npz", "--lam-W", "1", "--lam-H", "1"], "missing.npz"),
    "certify empty": (["certify", "{f}/empty.npz", "--lam-W", "1", "--lam-H", "1"], "empty"),
    "certify npy": (["certify", "{f}/array.npy", "--lam-W", "1", "--lam-H", "1"], "not an .npz"),
    "certify folder": (["certify", "{f}", "--lam-W", "1", "--lam-H", "1"], "folder"),
    "certify pickled": (["certify", "{f}/pickled.npz", "--lam-W", "1", "--lam-H", "1"], "pickled"),
    "certify complex": (["certify", "{f}/complex.npz", "--lam-W", "1", "--lam-H", "1"], "complex"),
    "certify text lambda": (["certify", "{f}/text_lambda.npz"], "lam_W"),
    "certify huge": (["certify", "{f}/huge.npz"], "overflow"),
    "certify nan": (["certify", "{f}/nan.npz"], "non-finite"),
    "certify tol inf": (["certify", "{f}/huge.npz", "--tol", "inf"], "--tol"),
    "certify tol nan": (["certify", "{f}/huge.npz", "--tol", "nan"], "--tol"),
    "certify tol -1": (["certify", "{f}/huge.npz", "--tol", "-1"], "--tol"),
    "certify tol 1": (["certify", "{f}/huge.npz", "--tol", "1"], "--tol"),
    "metrics pickled": (["metrics", "{f}/pickled.npz"], "pickled"),
    "metrics huge": (["metrics", "{f}/huge.npz"], "overflow"),
    "metrics example over a user file": (["metrics", "--make-example", "{f}/afile"], "never overwritten"),
    "sweep out is a file": (["sweep", "theorem", "--out", "{f}/afile"], "is a file"),
    "report out is a file": (["report", "--from", "{f}", "--out", "{f}/afile"], "afile"),
    "report from missing": (["report", "--from", "{f}/missing", "--out", "{f}/never"], "missing"),
    "report fresh alone": (["report", "--from", "{f}", "--fresh"], "--fresh"),
    "spec misspelt table": (["sweep", "{f}/spec_defults.toml", "--out", "{f}/never"], "did you mean 'defaults'"),
    "spec unknown grid key": (["sweep", "{f}/spec_gridkey.toml", "--out", "{f}/never"], "lamb"),
    "spec wrong type": (["sweep", "{f}/spec_type.toml", "--out", "{f}/never"], "'K' must be an int"),
    "spec wrong number": (["sweep", "{f}/spec_mu.toml", "--out", "{f}/never"], "wrong type"),
    "spec no cells": (["sweep", "{f}/spec_zero.toml", "--out", "{f}/never"], "no cell"),
    "spec unknown option": (["sweep", "{f}/spec_option.toml", "--out", "{f}/never"], "stepp"),
    "spec unknown design field": (["sweep", "{f}/spec_design.toml", "--out", "{f}/never"], "profil"),
    "spec regularisation twice": (["sweep", "{f}/spec_twice.toml", "--out", "{f}/never"], "given twice"),
    "flags mu-ratio with lambdas": (["sweep", "--K", "3", "--profile", "1:1", "--lam-W", "1", "--lam-H", "1",
                                     "--mu-ratio", "0.5", "--out", "{f}/never"], "--mu-ratio"),
    "spec and flags": (["sweep", "theorem", "--K", "3", "--out", "{f}/never"], "not both"),
    "dask unreachable": (["sweep", "--K", "3", "--profile", "1:1", "--lam-W", "1", "--lam-H", "1",
                          "--out", "{f}/dask_out", "--dask", "tcp://127.0.0.1:9", "--no-progress"], "Dask"),
}


@pytest.fixture(scope="module")
def bad_runs(files) -> dict[str, tuple[subprocess.CompletedProcess, float]]:
    def go(item):
        name, (argv, _) = item
        t0 = time.perf_counter()
        proc = ufm(*[a.replace("{f}", str(files)) for a in argv])
        return name, (proc, time.perf_counter() - t0)

    before = snapshot(files)
    with ThreadPoolExecutor(max_workers=3) as pool:
        out = dict(pool.map(go, BAD.items()))
    out["__listing__"] = (before, snapshot(files))  # type: ignore[assignment]
    return out


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_is_one_line_and_exit_2(name, bad_runs):
    proc, _elapsed = bad_runs[name]  # times are measured in the note, never asserted
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-500:], proc.stderr)
    line = one_line_error(proc)
    assert BAD[name][1] in line, line


def test_bad_inputs_leave_the_inputs_untouched_and_create_nothing(bad_runs, files):
    before, after = bad_runs["__listing__"]
    extra = set(after) - set(before)
    # the unreachable Dask address is found only after the folder was claimed (manifest, lock)
    assert all(p.startswith("dask_out/") for p in extra), extra
    assert {k: after[k] for k in before} == before
    assert not (files / "never").exists()


# -- exit codes of runs that end -----------------------------------------------------
def test_solve_exit_codes_and_tri_state_verified(tmp_path):
    ok = ufm("solve", *P, "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["verified"] is True
    early = ufm("solve", *P, "--max-iter", "1", "--json")
    assert early.returncode == 1 and json.loads(early.stdout)["status"] == "MAX_ITER"
    assert "Traceback" not in early.stderr and len(early.stderr.strip().splitlines()) <= 1
    diverged = ufm("solve", *P, "--method", "gd", "--step", "1e6", "--json")
    out = json.loads(diverged.stdout)
    assert diverged.returncode == 1 and out["status"] == "NUMERICAL_ERROR" and out["verified"] is False
    assert "Traceback" not in diverged.stderr
    bce = ufm("solve", *P, "--loss", "bce", "--json")
    out = json.loads(bce.stdout)
    assert bce.returncode == 1 and out["verified"] is None and out["claims"] == []
    assert "nothing to claim" in out["verified_reason"]
    bce_convex = ufm("solve", *P, "--loss", "bce", "--method", "convex")
    assert bce_convex.returncode == 1 and "Traceback" not in bce_convex.stderr


def test_local_minimum_below_d_is_not_verified_and_starts_are_recorded():
    # K=5, d=2: seed 0 ends where the certificate leaves a gap of ~0.3
    proc = ufm("solve", "--K", "5", "--d", "2", "--profile", "1:3,2:2", "--lam-W", "5e-3", "--lam-H", "5e-3",
               "--json", "--starts", "3")
    out = json.loads(proc.stdout)
    assert proc.returncode == 1 and out["verified"] is False
    assert out["certificate"]["rel_gap"] > 1e-3 and "--starts" in out["verified_reason"]
    assert [s["seed"] for s in out["starts"]] == [0, 1, 2]
    assert out["objective"] == min(s["fun"] for s in out["starts"])


def test_certify_exit_codes(tmp_path):
    sol = tmp_path / "sol.npz"
    assert ufm("solve", *P, "--save", str(sol)).returncode == 0
    assert ufm("certify", str(sol)).returncode == 0
    with np.load(sol) as z:
        arrays = dict(z)
    arrays["H"] = arrays["H"] * 1.5
    bad = tmp_path / "perturbed.npz"
    np.savez(bad, **arrays)
    proc = ufm("certify", str(bad))
    assert proc.returncode == 1 and "NOT certified" in proc.stdout
    # --save over a file ufm wrote is allowed (same command twice)
    assert ufm("solve", *P, "--save", str(sol)).returncode == 0


def test_broken_pipe_is_quiet():
    proc = subprocess.run(f"{sys.executable} -m ufm.cli solve {' '.join(P)} | head -1", shell=True,
                          capture_output=True, text=True, env=ENV, timeout=120)
    assert proc.stderr == "", proc.stderr
    assert proc.stdout.startswith("balanced K=3")


def test_interrupt_exits_130_and_keeps_the_iterate():
    with sigint_default():
        proc = subprocess.Popen([sys.executable, "-m", "ufm.cli", "solve", "--K", "30", "--d", "30", "--profile",
                                 "1:5,2:2", "--lam-W", "1e-4", "--lam-H", "1e-4", "--method", "gd", "--step", "1e-3",
                                 "--max-iter", "100000000", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=ENV)
    time.sleep(4.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert json.loads(out)["status"] == "INTERRUPTED" and "Traceback" not in err


# -- folders: never lose a user's file -------------------------------------------------
def test_no_command_touches_a_folder_it_did_not_make(tmp_path):
    user = tmp_path / "thesis"
    user.mkdir()
    (user / "thesis.tex").write_text("\\documentclass{article}\n")
    (user / "data").mkdir()
    (user / "data" / "x.csv").write_text("1,2\n")
    before = snapshot(user)
    runs = [
        ufm("sweep", "--K", "3", "--profile", "1:1", "--lam-W", "1e-2", "--lam-H", "1e-2", "--out", str(user)),
        ufm("report", "--regenerate", "--cache", str(user), "--out", str(tmp_path / "r"), "--no-progress"),
        ufm("report", "--regenerate", "--fresh", "--cache", str(user), "--out", str(tmp_path / "r")),
        ufm("report", "--regenerate", "--cache", str(tmp_path / "c"), "--out", str(user)),
        ufm("report", "--from", str(tmp_path), "--out", str(user)),
    ]
    for proc in runs:
        assert proc.returncode == 2, proc.stderr
        assert "not made by ufm" in one_line_error(proc)
    assert snapshot(user) == before
    assert not (tmp_path / "c").exists() and not (tmp_path / "r").exists()


SMALL = ["--K", "3", "--profile", "1:1", "1:2", "--lam-W", "1e-2", "--lam-H", "1e-2", "--no-progress"]


def test_sweep_and_report_keep_user_files_in_their_own_folders(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "out"
    assert ufm("sweep", *SMALL, "--out", str(runs)).returncode == 0
    assert ufm("report", "--from", str(runs), "--out", str(out)).returncode == 0
    (runs / "notes.txt").write_text("mine\n")
    (out / "notes.txt").write_text("mine too\n")
    (out / "tables").mkdir(exist_ok=True)
    (out / "tables" / "my_table.md").write_text("| a |\n")
    again = [ufm("sweep", *SMALL, "--out", str(runs)), ufm("report", "--from", str(runs), "--out", str(out))]
    assert [p.returncode for p in again] == [0, 0], [p.stderr for p in again]
    assert (runs / "notes.txt").read_text() == "mine\n"
    assert (out / "notes.txt").read_text() == "mine too\n"
    assert (out / "tables" / "my_table.md").read_text() == "| a |\n"
    # a user's file where the report would write one of its own stops the render, nothing moved
    readme = out / "README.md"
    manifest = json.loads((out / ".ufm-manifest.json").read_text())
    manifest["files"].remove("README.md")
    (out / ".ufm-manifest.json").write_text(json.dumps(manifest))
    readme.write_text("my own index\n")
    proc = ufm("report", "--from", str(runs), "--out", str(out))
    assert proc.returncode == 2 and "never overwritten" in one_line_error(proc)
    assert readme.read_text() == "my own index\n"


def test_dry_run_writes_nothing_and_respects_the_lock(tmp_path):
    out = tmp_path / "runs"
    proc = ufm("sweep", *SMALL, "--out", str(out), "--dry-run")
    assert proc.returncode == 0 and not out.exists() and "nothing was written" in proc.stdout
    assert ufm("sweep", *SMALL, "--out", str(out)).returncode == 0
    before = snapshot(out)
    assert ufm("sweep", *SMALL, "--out", str(out), "--dry-run").returncode == 0
    assert snapshot(out) == before
    with DirLock(out, "a test holding the lock"):
        for argv in (["--dry-run"], []):
            proc = ufm("sweep", *SMALL, "--out", str(out), *argv)
            assert proc.returncode == 2 and "in use by a test holding the lock" in one_line_error(proc)
    after = snapshot(out)
    assert {k: v for k, v in after.items() if k != ".ufm-lock"} == {k: v for k, v in before.items() if k != ".ufm-lock"}


FAIL_GRID = 'name = "f"\n[[grid]]\nK = 3\nprofile = ["1:1", "1:2"]\nmu = 1e-2\nsolver = "lbfgs"\n'


def test_a_failing_cell_is_stored_counted_and_retried(tmp_path):
    spec = tmp_path / "f.toml"
    # one good cell, one whose solver options are refused when it runs (max_iter < 0)
    spec.write_text(FAIL_GRID + '[[grid]]\nK = 4\nprofile = "1:1"\nmu = 1e-2\noptions = {max_iter = -1}\n')
    out = tmp_path / "runs"
    proc = ufm("sweep", str(spec), "--out", str(out), "--no-progress")
    assert proc.returncode == 1 and "1 failed" in proc.stdout and "--retry-failed" in proc.stderr
    recs = [json.loads(p.read_text()) for p in out.glob("*.json") if len(p.stem) == 64]
    failed = [r for r in recs if r.get("failed")]
    assert len(recs) == 3 and len(failed) == 1 and failed[0]["failed"]["type"] == "UFMError"
    again = ufm("sweep", str(spec), "--out", str(out), "--no-progress")
    assert again.returncode == 1 and "0 computed" in again.stdout
    retry = ufm("sweep", str(spec), "--out", str(out), "--no-progress", "--retry-failed")
    assert retry.returncode == 1 and "1 computed" in retry.stdout
    # the report renders the good records and lists the failed one
    rep = ufm("report", "--from", str(out), "--out", str(tmp_path / "rep"))
    assert rep.returncode == 1 and "skipped" in rep.stderr
    assert "Skipped records" in (tmp_path / "rep" / "README.md").read_text()


def test_report_from_corrupt_records_renders_the_rest(tmp_path):
    runs = tmp_path / "runs"
    assert ufm("sweep", "--K", "3", "4", *SMALL[2:], "--out", str(runs)).returncode == 0
    victim = sorted(p for p in runs.glob("*.json") if len(p.stem) == 64)[0]
    victim.write_text(victim.read_text()[:100])  # a partial write
    out = tmp_path / "rep"
    proc = ufm("report", "--from", str(runs), "--out", str(out))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    index = (out / "README.md").read_text()
    assert "Skipped records" in index and victim.name in index
    assert not list(out.glob(".ufm-staging-*")), "the staging folder must not stay behind"


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_sweep_workers_end_when_the_parent_is_killed(tmp_path):
    spec = tmp_path / "slow.toml"
    spec.write_text('name = "slow"\n[[grid]]\nK = 30\nprofile = "1:5,2:2"\nmu = 1e-4\nsolver = "gd"\n'
                    'seeds = 4\noptions = {step = 1e-3, max_iter = 100000000}\n')
    parent = subprocess.Popen([sys.executable, "-m", "ufm.cli", "sweep", str(spec), "--out", str(tmp_path / "o"),
                               "--jobs", "2", "--no-progress"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=ENV)
    workers: list[int] = []
    deadline = time.time() + 120
    while time.time() < deadline and len(workers) < 2:  # two workers busy computing cells
        time.sleep(0.5)
        workers = [c for c in _children(parent.pid) if _cpu_seconds(c) > 3.0]
    assert workers, "no worker started"
    parent.kill()
    parent.wait()
    deadline = time.time() + 30
    while time.time() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.5)
    alive = [w for w in workers if _alive(w)]
    for w in alive:  # clean up before failing
        os.kill(w, signal.SIGKILL)
    assert not alive, f"workers outlived their parent: {alive}"


# -- the API -------------------------------------------------------------------------
def test_a_saddle_is_not_silently_a_success():
    import ufm as U

    p = U.UFMProblem(U.balanced(4, {1: 2}), 4, 5e-3, 5e-3)
    r = U.solve(p, x0=np.zeros(p.n_vars))
    assert r.success and r.certified is False and r.rel_gap > 0.5
    good = U.solve(p, rng=0)
    assert good.certified is True and good.rel_gap <= 1e-6
    v = U.verify(p, r.W, r.H, r.b)
    assert v.verified is False and not v.passed and "certified gap" in v.why


def test_verified_is_null_when_nothing_is_claimed():
    import ufm as U

    p = U.UFMProblem(U.balanced(3, {1: 2}), 3, 1e-2, 1e-2, loss="bce")
    r = U.solve(p, rng=0)
    v = U.verify(p, r.W, r.H, r.b)
    assert v.verified is None and not v.passed and r.rel_gap is None


def test_help_documents_exit_codes():
    proc = ufm("--help")
    assert proc.returncode == 0
    for token in ("exit status", "130", "verified", "solve", "certify", "verify", "sweep", "report", "metrics"):
        assert token in proc.stdout


def test_complex_and_object_input_is_refused_not_truncated():
    import ufm as U

    p = U.UFMProblem(U.balanced(3, {1: 1}), 3, 1e-2, 1e-2)
    r = U.solve(p, rng=0)
    for fn in (U.certify, U.verify):
        with pytest.raises(U.UFMError, match="complex"):
            fn(p, r.W + 1j, r.H, r.b)
        with pytest.raises(U.UFMError, match="numeric"):
            fn(p, r.W.astype(object), r.H, r.b)
    with pytest.raises(U.UFMError, match="complex"):
        U.solve(p, x0=r.x + 0j)


def test_a_tampered_manifest_cannot_reach_outside_its_folder(tmp_path):
    out = tmp_path / "runs"
    assert ufm("sweep", *SMALL, "--out", str(out)).returncode == 0
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me\n")
    manifest = json.loads((out / ".ufm-manifest.json").read_text())
    manifest["files"].append("../precious.txt")
    (out / ".ufm-manifest.json").write_text(json.dumps(manifest))
    proc = ufm("sweep", *SMALL, "--out", str(out))
    assert proc.returncode == 2 and "outside the folder" in one_line_error(proc)
    from ufm.files import OutputDir

    with pytest.raises(Exception, match="outside the folder"):
        OutputDir(out, "sweep").remove_listed()
    assert victim.read_text() == "keep me\n"
