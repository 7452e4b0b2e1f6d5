"""Sweeps: spec expansion, stored records, resume after SIGINT/SIGKILL, corrupt records, Dask."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from subprocs import sigint_default

from ufm import sweep
from ufm.exceptions import UFMError
from ufm.sweep.grid import cell_key, load_spec, parse_d, shipped_specs

SMALL = {"name": "small", "grid": [{"K": [3, 4], "profile": ["1:2", "1:2,2:1"], "d": "K", "mu": 5e-3}]}
# slow enough cells (plain GD, capped) to interrupt a sweep in the middle
SLOW = {"name": "slow", "defaults": {"solver": "gd", "options": {"max_iter": 6000, "history_every": 0}},
        "grid": [{"K": 4, "profile": "1:2,2:1", "d": 4, "mu": 5e-3, "seeds": 14}]}
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def _records(out: Path) -> dict[str, tuple[int, int, str]]:
    """name -> (inode, mtime_ns, sha256 of the bytes) of every record file."""
    out_ = {}
    for f in out.glob("*.json"):
        if len(f.stem) == 64:  # not spec.json, not a temporary .tmp-* file
            st = f.stat()
            out_[f.name] = (st.st_ino, st.st_mtime_ns, hashlib.sha256(f.read_bytes()).hexdigest())
    return out_


def test_spec_expansion_axes_dedup_and_skip():
    spec = load_spec({"name": "t", "grid": [{"K": [3, 4], "profile": "1:2", "d": [1, "K-3", "K-1", 3],
                                            "mu_ratio": [0.5], "lam_ratio": [1.0, 4.0], "seeds": 2}]})
    # K=3: d = 1, 0 (skipped), 2, 3; K=4: d = 1, 1 (duplicate), 3, 3 (duplicate); x 2 ratios x 2 seeds
    assert spec.skipped == 2 * 2 * 1
    assert len(spec.cells) == len({c["key"] for c in spec.cells}) == 2 * 2 * (3 + 2)
    c = spec.cells[0]
    assert cell_key(c) == c["key"]
    lam_W, lam_H = c["problem"]["lam_W"], c["problem"]["lam_H"]
    assert lam_W / lam_H == pytest.approx(c["params"]["lam_ratio"], rel=1e-12)


def test_spec_errors_name_the_problem():
    with pytest.raises(UFMError, match="unknown key"):
        load_spec({"name": "t", "grid": [{"K": 3, "profile": "1:1", "mu": 1e-3, "lamW": 1}]})
    # mu_ratio on an imbalanced design: mu / (its trivial threshold), computed here by hand
    spec = load_spec({"name": "t", "grid": [{"K": 3, "design": {"kind": "imbalanced_single", "counts": [1, 2, 3]},
                                             "mu_ratio": 0.5, "bias": False}]})
    Y = np.array([[1, 0, 0, 0, 0, 0], [0, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]], dtype=float)
    mu0 = np.linalg.norm((np.full((3, 6), 1 / 3) - Y) / 6, 2)  # b = 0: softmax = 1/K, m = 1
    assert spec.cells[0]["problem"]["lam_W"] == pytest.approx(0.5 * mu0, rel=1e-12)
    with pytest.raises(UFMError, match="No spec file or shipped spec"):
        load_spec("no-such-spec")
    assert parse_d("K+2", 5) == 7 and parse_d("K", 5) == 5 and parse_d(3, 5) == 3


def test_shipped_specs_expand_and_stay_small():
    names = set(shipped_specs())
    assert {"theorem", "phase", "dimension", "imbalance", "losses", "iterations"} <= names
    for name in names:
        spec = load_spec(name)
        assert spec.cells, name
        if name == "networks":  # real networks on the 10 digits (K = 10, N = 570): test_report_networks.py
            continue
        assert max(c["problem"]["K"] for c in spec.cells) <= 8
        assert sum(sum(c["problem"]["counts"]) for c in spec.cells) / len(spec.cells) <= 150


def test_run_stores_records_and_load_returns_dataframe(tmp_path):
    stats = sweep.run(SMALL, tmp_path, progress=False)
    assert (stats.cells, stats.computed, stats.cached) == (4, 4, 0)
    df = sweep.load(tmp_path)
    assert len(df) == 4 and set(df["K"]) == {3, 4}
    assert df["verified"].all()
    assert (df["gap_to_theory"].abs() < 1e-9).all()
    assert {"nc1", "nc2_w", "nc3", "cert_gap", "param.design", "record"} <= set(df.columns)
    # lbfgs in a sweep keeps all N columns unless the spec asks: the records' NC1 is measured
    assert all(json.loads(f.read_text())["summary"]["grouped"] is False
               for f in tmp_path.glob("*.json") if len(f.stem) == 64)
    again = sweep.run(SMALL, tmp_path, progress=False)
    assert (again.cached, again.computed) == (4, 0)


def test_corrupt_partial_and_stale_files_are_recomputed(tmp_path):
    sweep.run(SMALL, tmp_path, progress=False)
    before = _records(tmp_path)
    files = sorted(tmp_path.glob("[0-9a-f]*.json"))
    files[0].write_text(files[0].read_text()[:100])  # truncated (a partial write)
    rec = json.loads(files[1].read_text())
    rec["summary"]["objective"] += 1e-3  # valid JSON, wrong content
    files[1].write_text(json.dumps(rec))
    (tmp_path / ".tmp-deadbeef-x.json").write_text("{")  # left by a killed writer
    stats = sweep.run(SMALL, tmp_path, progress=False)
    assert (stats.corrupt, stats.computed, stats.cached) == (2, 2, 2)
    after = _records(tmp_path)
    assert set(after) == set(before)
    for f in files[2:]:
        assert after[f.name] == before[f.name], "an intact record was rewritten"
    assert not list(tmp_path.glob(".tmp-*"))
    assert all(sweep.read_record(f) is not None for f in files)


def _start(spec_path: Path, out: Path, jobs: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "ufm.cli", "sweep", str(spec_path), "--out", str(out), "--jobs", str(jobs),
           "--no-progress"]
    with sigint_default():
        return subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)


def _wait_for(out: Path, n: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    t0 = time.monotonic()
    while len(_records(out)) < n:
        assert proc.poll() is None, f"sweep ended before {n} records: {proc.communicate()}"
        assert time.monotonic() - t0 < timeout, "sweep too slow"
        time.sleep(0.02)


def test_sweep_killed_by_sigint_and_sigkill_resumes_without_recomputing(tmp_path):
    """Interrupt (SIGINT, one process) and kill (SIGKILL, the whole process group with its
    joblib workers) a sweep mid-way; the restart stores every cell exactly once and leaves
    every record finished before it untouched (same inode, mtime and bytes)."""
    spec_path = tmp_path / "slow.json"
    spec_path.write_text(json.dumps(SLOW))
    out = tmp_path / "out"
    n_cells = len(load_spec(SLOW).cells)

    proc = _start(spec_path, out, jobs=1)
    _wait_for(out, 3, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Run the same command again to resume" in err
    first = _records(out)
    assert 3 <= len(first) < n_cells

    proc = _start(spec_path, out, jobs=2)
    _wait_for(out, len(first) + 3, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    second = _records(out)
    assert len(first) + 3 <= len(second) < n_cells
    assert all(second[name] == first[name] for name in first), "the second run recomputed a finished cell"

    stats = sweep.run(spec_path, out, jobs=1, progress=False)
    final = _records(out)
    assert (stats.cached, stats.computed) == (len(second), n_cells - len(second))
    assert sorted(final) == sorted(f"{c['key']}.json" for c in load_spec(SLOW).cells)
    assert all(final[name] == second[name] for name in second), "the last run recomputed a finished cell"
    assert not list(out.glob(".tmp-*"))
    runs = {json.loads((out / name).read_text())["run"]["id"] for name in final}
    assert len(runs) == 3  # each of the three invocations computed some cells, none twice


def _stable(rec: dict) -> dict:
    return {k: v for k, v in rec.items() if k not in sweep.VOLATILE}


def test_dask_local_cluster_gives_identical_records(tmp_path):
    distributed = pytest.importorskip("distributed")
    sweep.run(SMALL, tmp_path / "local", jobs=1, progress=False)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        stats = sweep.run(SMALL, tmp_path / "dask", dask=cluster.scheduler_address, progress=False)
    assert stats.computed == 4
    local = {r["key"]: _stable(r) for r in sweep.read_records(tmp_path / "local")}
    remote = {r["key"]: _stable(r) for r in sweep.read_records(tmp_path / "dask")}
    assert local.keys() == remote.keys()
    for key in local:
        assert local[key] == remote[key], f"cell {key} differs between local and Dask"
