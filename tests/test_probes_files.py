"""Probes of files and folders: ufm writes and deletes only regular files it made, inside the
folder it was given, resolved without following any link out of it.

Each probe builds a small tree in its own folder (an output folder, the user's files beside
it, links and their targets), runs one real command in a subprocess, and checks the exit
status, that stderr is one line without a traceback, and that every entry of the tree --
the bytes of every file, the target of every link, the targets' bytes -- is the same
before and after (a refusal changes nothing). The commands run concurrently (a fixture),
so the whole catalogue takes a few seconds of wall time.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from ufm.files import DirLock, OutputDir, npz_bytes

ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
ENV.pop("UFM_DEBUG", None)
P = ["--K", "3", "--d", "3", "--profile", "1:2", "--lam-W", "1e-2", "--lam-H", "1e-2"]
SWEEP = ["sweep", "--K", "3", "--profile", "1:1", "--lam-W", "1e-2", "--lam-H", "1e-2", "--no-progress"]


def ufm(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ufm.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env=ENV)


def tree(root: Path) -> dict[str, object]:
    """Every entry under ``root`` without following links: a file's bytes, a link's target
    (and, when the target is a file, its bytes), a folder, a FIFO."""
    out: dict[str, object] = {}
    for here, dirs, files in os.walk(root, followlinks=False):
        for name in dirs + files:
            p = Path(here) / name
            rel = str(p.relative_to(root))
            st = os.lstat(p)
            if name == ".ufm-lock" and stat.S_ISREG(st.st_mode):  # ufm's lock in its own folder
                continue
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(p)
                out[rel] = ("link", target, p.read_bytes() if p.is_file() else None)
            elif stat.S_ISREG(st.st_mode):
                out[rel] = ("file", p.read_bytes(), st.st_ino)
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = "dir"
            else:
                out[rel] = ("special", stat.S_IFMT(st.st_mode))
    return out


def one_line(proc: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("ufm: error:"), lines[0]
    return lines[0]


# -- the inputs every probe copies ------------------------------------------------------
@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("base")
    proc = ufm(*SWEEP, "--out", "runs", cwd=d)
    assert proc.returncode == 0, proc.stderr
    proc = ufm("report", "--from", "runs", "--out", "rep", cwd=d)
    assert proc.returncode == 0, proc.stderr
    proc = ufm("solve", *P, "--save", "sol.npz", cwd=d)
    assert proc.returncode == 0, proc.stderr
    return d


def record_name(runs: Path) -> str:
    return next(p.name for p in runs.glob("*.json") if len(p.stem) == 64)


def user_files(root: Path) -> None:
    """What a user keeps beside the output folders: a folder with their tables, notes, a spec."""
    (root / "elsewhere").mkdir()
    (root / "elsewhere" / "losses.md").write_text("the user's own table\n")
    (root / "elsewhere" / "README.md").write_text("the user's own index\n")
    (root / "user.md").write_text("the user's notes\n")
    (root / "user.json").write_text('{"mine": true}\n')
    (root / "user.npz").write_bytes(npz_bytes(W=np.eye(2)))  # even an npz ufm could have written
    (root / "afile").write_text("a file, not a folder\n")
    (root / "adir").mkdir()


def rep(root: Path, base: Path) -> Path:
    shutil.copytree(base / "rep", root / "rep", symlinks=True)
    return root / "rep"


def runs(root: Path, base: Path) -> Path:
    shutil.copytree(base / "runs", root / "runs", symlinks=True)
    return root / "runs"


def made(root: Path, kind: str, files: dict[str, bytes] = {}) -> Path:  # noqa: B006 - read only
    folder = OutputDir(root / kind, kind)
    for rel, data in files.items():
        folder.write(rel, data)
    return root / kind


def listed(folder: Path, *rels: str) -> None:
    """Add ``rels`` to the folder's manifest (as if ufm had written them once)."""
    m = folder / ".ufm-manifest.json"
    body = json.loads(m.read_text())
    body["files"] = sorted(set(body["files"]) | set(rels))
    m.write_text(json.dumps(body))


REPORT = ["report", "--from", "runs", "--out", "rep"]
TRAIN = ["train", "--epochs", "1", "--K", "3", "--profile", "1:4", "--d", "3", "--out"]
EPOCH = npz_bytes(H=np.zeros((3, 4)), Y=np.eye(3, 4), W=np.eye(3))


Build = Callable[[Path, Path], list]
PROBES: dict[str, tuple[Build, int, str]] = {}


def probe(name: str, code: int = 2, msg: str = "") -> Callable[[Build], Build]:
    def deco(fn: Build) -> Build:
        PROBES[name] = (fn, code, msg)
        return fn
    return deco


# -- symbolic links inside output folders: refused, naming the link --------------------
@probe("report: tables is a link to the user's folder", msg="rep/tables is a symbolic link")
def _(r, b):
    rep(r, b)
    runs(r, b)
    os.symlink("../elsewhere", r / "rep" / "tables")
    return REPORT


@probe("report: stale-file cleanup through a linked tables folder", msg="symbolic link")
def _(r, b):
    rep(r, b)
    runs(r, b)
    listed(r / "rep", "tables/losses.md", "tables/README.md")
    os.symlink(str(r / "elsewhere"), r / "rep" / "tables")  # an absolute link
    return REPORT


@probe("report: its own README.md replaced by a link to a user file", msg="rep/README.md is a symbolic link")
def _(r, b):
    rep(r, b)
    runs(r, b)
    (r / "rep" / "README.md").unlink()
    os.symlink("../user.md", r / "rep" / "README.md")
    return REPORT


@probe("report: the manifest is a link", msg=".ufm-manifest.json is a symbolic link")
def _(r, b):
    rep(r, b)
    runs(r, b)
    shutil.move(r / "rep" / ".ufm-manifest.json", r / "m.json")
    os.symlink("../m.json", r / "rep" / ".ufm-manifest.json")
    return REPORT


@probe("report: the lock file is a link to a user file", msg=".ufm-lock is a symbolic link")
def _(r, b):
    rep(r, b)
    runs(r, b)
    (r / "rep" / ".ufm-lock").unlink(missing_ok=True)
    os.symlink("../user.md", r / "rep" / ".ufm-lock")
    return REPORT


@probe("report: an unrelated link inside the output folder", msg="rep/notes is a symbolic link")
def _(r, b):
    rep(r, b)
    runs(r, b)
    os.symlink("../user.md", r / "rep" / "notes")
    return REPORT


@probe("report: a dangling link inside the output folder", msg="rep/figures is a symbolic link")
def _(r, b):
    rep(r, b)
    runs(r, b)
    os.symlink("../nowhere", r / "rep" / "figures")
    return REPORT


@probe("report: --out is a dangling link", msg="symbolic link to nothing")
def _(r, b):
    runs(r, b)
    os.symlink("nowhere", r / "rep")
    return REPORT


@probe("report: a link deep inside a subfolder", msg="symbolic link")
def _(r, b):
    rep(r, b)
    runs(r, b)
    (r / "rep" / "figures" / "old").mkdir(parents=True)
    os.symlink("../../../elsewhere", r / "rep" / "figures" / "old" / "x")
    return REPORT


@probe("sweep: spec.json is a link to a user file", msg="runs/spec.json is a symbolic link")
def _(r, b):
    runs(r, b)
    (r / "runs" / "spec.json").unlink()
    os.symlink("../user.json", r / "runs" / "spec.json")
    return [*SWEEP, "--out", "runs"]


@probe("sweep: a record is a link to a user file", msg="symbolic link")
def _(r, b):
    d = runs(r, b)
    name = record_name(d)
    shutil.move(d / name, r / "user_record.json")
    os.symlink("../user_record.json", d / name)
    return [*SWEEP, "--out", "runs"]


@probe("sweep: the lock file is a link", msg=".ufm-lock is a symbolic link")
def _(r, b):
    runs(r, b)
    (r / "runs" / ".ufm-lock").unlink(missing_ok=True)
    os.symlink("../user.md", r / "runs" / ".ufm-lock")
    return [*SWEEP, "--out", "runs"]


@probe("sweep: a subfolder linked to the user's folder", msg="runs/old is a symbolic link")
def _(r, b):
    runs(r, b)
    os.symlink("../elsewhere", r / "runs" / "old")
    return [*SWEEP, "--out", "runs"]


@probe("sweep: the manifest is a link", msg="symbolic link")
def _(r, b):
    runs(r, b)
    shutil.move(r / "runs" / ".ufm-manifest.json", r / "m.json")
    os.symlink("../m.json", r / "runs" / ".ufm-manifest.json")
    return [*SWEEP, "--out", "runs"]


@probe("sweep --dry-run: a link inside is refused too", msg="symbolic link")
def _(r, b):
    runs(r, b)
    os.symlink("../elsewhere", r / "runs" / "old")
    return [*SWEEP, "--out", "runs", "--dry-run"]


@probe("train: an epoch file is a link to a user npz", msg="epoch_000.npz is a symbolic link")
def _(r, b):
    made(r, "train")
    os.symlink("../user.npz", r / "train" / "epoch_000.npz")
    return [*TRAIN, "train", "--fresh"]


@probe("train: summary.json is a link", msg="summary.json is a symbolic link")
def _(r, b):
    made(r, "train", {"epoch_000.npz": EPOCH})
    os.symlink("../user.json", r / "train" / "summary.json")
    return [*TRAIN, "train", "--fresh"]


@probe("solve --save: a link to an npz ufm wrote", msg="sol.npz is a symbolic link")
def _(r, b):
    (r / "kept").mkdir()
    shutil.copy(b / "sol.npz", r / "kept" / "sol.npz")
    os.symlink("kept/sol.npz", r / "sol.npz")
    return ["solve", *P, "--save", "sol.npz"]


@probe("solve --save: a dangling link", msg="symbolic link")
def _(r, b):
    os.symlink("made/by/nobody.npz", r / "sol.npz")
    return ["solve", *P, "--save", "sol.npz"]


@probe("report --regenerate: a link inside the cache", msg="symbolic link")
def _(r, b):
    made(r, "report-cache")
    os.symlink("../elsewhere", r / "report-cache" / "theorem")
    return ["report", "--regenerate", "--cache", "report-cache", "--out", "rep", "--no-progress"]


@probe("report --regenerate --fresh: a link inside a cached sweep", msg="symbolic link")
def _(r, b):
    made(r, "report-cache")
    shutil.copytree(b / "runs", r / "report-cache" / "theorem")
    os.symlink("../../user.json", r / "report-cache" / "theorem" / "x.json")
    return ["report", "--regenerate", "--fresh", "--cache", "report-cache", "--out", "rep", "--no-progress"]


# -- hard links: a name ufm replaces is renamed over, so the other names keep their bytes --
@probe("report: an unlisted name hard-linked to a user file is in the way", msg="was not written by ufm")
def _(r, b):
    runs(r, b)
    made(r, "report")
    shutil.move(r / "report", r / "rep")
    os.link(r / "user.md", r / "rep" / "README.md")
    return REPORT


@probe("sweep: an unlisted record name hard-linked to a user file", msg="was not written by ufm")
def _(r, b):
    d = runs(r, b)
    name = record_name(d)
    (d / name).unlink()
    os.link(r / "user.json", d / name)
    body = json.loads((d / ".ufm-manifest.json").read_text())
    body["files"].remove(name)  # not ufm's: a name it never wrote
    (d / ".ufm-manifest.json").write_text(json.dumps(body))
    return [*SWEEP, "--out", "runs"]


# -- FIFOs: never opened for writing, never read without O_NONBLOCK: no hang ----------
@probe("report: a FIFO where README.md goes", msg="not a regular file")
def _(r, b):
    runs(r, b)
    made(r, "report")
    shutil.move(r / "report", r / "rep")
    os.mkfifo(r / "rep" / "README.md")
    return REPORT


@probe("report: its own listed README.md replaced by a FIFO", msg="not a regular file")
def _(r, b):
    rep(r, b)
    runs(r, b)
    (r / "rep" / "README.md").unlink()
    os.mkfifo(r / "rep" / "README.md")
    return REPORT


@probe("report: the manifest is a FIFO", msg="not a regular file")
def _(r, b):
    rep(r, b)
    runs(r, b)
    (r / "rep" / ".ufm-manifest.json").unlink()
    os.mkfifo(r / "rep" / ".ufm-manifest.json")
    return REPORT


@probe("report: the lock file is a FIFO", msg="not a regular file")
def _(r, b):
    rep(r, b)
    runs(r, b)
    (r / "rep" / ".ufm-lock").unlink(missing_ok=True)
    os.mkfifo(r / "rep" / ".ufm-lock")
    return REPORT


@probe("sweep: a FIFO where a record goes", msg="not a regular file")
def _(r, b):
    d = runs(r, b)
    name = record_name(d)
    (d / name).unlink()
    os.mkfifo(d / name)
    return [*SWEEP, "--out", "runs"]


@probe("report --from: the only record is a FIFO", msg="No readable sweep records")
def _(r, b):
    (r / "src").mkdir()
    os.mkfifo(r / "src" / ("a" * 64 + ".json"))
    return ["report", "--from", "src", "--out", "rep"]


@probe("solve --save: a FIFO", msg="was not written by ufm")
def _(r, b):
    os.mkfifo(r / "sol.npz")
    return ["solve", *P, "--save", "sol.npz"]


@probe("metrics: a FIFO", msg="not a regular file")
def _(r, b):
    os.mkfifo(r / "f.npz")
    return ["metrics", "f.npz"]


@probe("certify: a FIFO", msg="not a regular file")
def _(r, b):
    os.mkfifo(r / "f.npz")
    return ["certify", "f.npz"]


@probe("sweep: the spec file is a FIFO", msg="not a regular file")
def _(r, b):
    os.mkfifo(r / "s.toml")
    return ["sweep", "s.toml", "--out", "runs"]


@probe("train --fresh: a listed epoch file replaced by a FIFO", msg="not a regular file")
def _(r, b):
    made(r, "train", {"epoch_000.npz": EPOCH})
    (r / "train" / "epoch_000.npz").unlink()
    os.mkfifo(r / "train" / "epoch_000.npz")
    return [*TRAIN, "train", "--fresh"]


# -- a file where a folder is expected -------------------------------------------------
@probe("sweep --out a file", msg="afile is a file")
def _(r, b):
    return [*SWEEP, "--out", "afile"]


@probe("report --out a file", msg="afile is a file")
def _(r, b):
    runs(r, b)
    return ["report", "--from", "runs", "--out", "afile"]


@probe("train --out a file", msg="afile is a file")
def _(r, b):
    return [*TRAIN, "afile"]


@probe("report --from a file", msg="--from")
def _(r, b):
    return ["report", "--from", "afile", "--out", "rep"]


@probe("solve --save inside a file", msg="afile is a file")
def _(r, b):
    return ["solve", *P, "--save", "afile/x.npz"]


@probe("report --regenerate --cache a file", msg="afile is a file")
def _(r, b):
    return ["report", "--regenerate", "--cache", "afile", "--out", "rep", "--no-progress"]


@probe("sweep --out below a file", msg="cannot create")
def _(r, b):
    return [*SWEEP, "--out", "afile/sub"]


@probe("metrics on a path below a file", msg="afile/x.npz")
def _(r, b):
    return ["metrics", "afile/x.npz"]


# -- a folder where a file is expected -------------------------------------------------
@probe("solve --save a folder", msg="adir is a folder")
def _(r, b):
    return ["solve", *P, "--save", "adir"]


@probe("solve --save a folder with a trailing slash", msg="is a folder")
def _(r, b):
    return ["solve", *P, "--save", "adir/"]


@probe("metrics on a folder", msg="adir is a folder")
def _(r, b):
    return ["metrics", "adir"]


@probe("certify a folder", msg="adir is a folder")
def _(r, b):
    return ["certify", "adir"]


@probe("sweep: the spec is a folder", msg="Cannot read spec adir")
def _(r, b):
    return ["sweep", "adir", "--out", "runs"]


@probe("report: a folder where README.md goes", msg="not a regular file")
def _(r, b):
    runs(r, b)
    made(r, "report")
    shutil.move(r / "report", r / "rep")
    (r / "rep" / "README.md").mkdir()
    return REPORT


@probe("report: the manifest is a folder", msg="not a regular file")
def _(r, b):
    rep(r, b)
    runs(r, b)
    (r / "rep" / ".ufm-manifest.json").unlink()
    (r / "rep" / ".ufm-manifest.json").mkdir()
    return REPORT


@probe("report: the lock file is a folder", msg="not a regular file")
def _(r, b):
    rep(r, b)
    runs(r, b)
    (r / "rep" / ".ufm-lock").unlink(missing_ok=True)
    (r / "rep" / ".ufm-lock").mkdir()
    return REPORT


@probe("sweep: a folder where a record goes", msg="not a regular file")
def _(r, b):
    d = runs(r, b)
    name = record_name(d)
    (d / name).unlink()
    (d / name).mkdir()
    return [*SWEEP, "--out", "runs"]


@probe("train --fresh: a listed epoch file replaced by a folder", msg="not a regular file")
def _(r, b):
    made(r, "train", {"epoch_000.npz": EPOCH})
    (r / "train" / "epoch_000.npz").unlink()
    (r / "train" / "epoch_000.npz").mkdir()
    return [*TRAIN, "train", "--fresh"]


# -- folders ufm did not make: refused whatever their files are called -----------------
@probe("report --out a user folder holding README.md and timings.md", msg="not made by ufm")
def _(r, b):
    runs(r, b)
    (r / "rep").mkdir()
    (r / "rep" / "README.md").write_text("mine\n")
    (r / "rep" / "timings.md").write_text("mine too\n")
    (r / "rep" / "tables").mkdir()
    (r / "rep" / "tables" / "losses.md").write_text("my table\n")
    return REPORT


@probe("sweep --out a user folder holding spec.json", msg="not made by ufm")
def _(r, b):
    (r / "F").mkdir()
    (r / "F" / "spec.json").write_text('{"mine": 1}\n')
    return [*SWEEP, "--out", "F"]


@probe("train --out a user folder holding summary.json and epoch_007.npz", msg="not made by ufm")
def _(r, b):
    (r / "F").mkdir()
    (r / "F" / "summary.json").write_text('{"mine": 1}\n')
    (r / "F" / "epoch_007.npz").write_bytes(EPOCH)
    return [*TRAIN, "F"]


@probe("report --regenerate --cache a user folder holding spec.json", msg="not made by ufm")
def _(r, b):
    (r / "F").mkdir()
    (r / "F" / "spec.json").write_text('{"mine": 1}\n')
    return ["report", "--regenerate", "--cache", "F", "--out", "rep", "--no-progress"]


@probe("report --out a user folder holding only a hidden file", msg="not made by ufm")
def _(r, b):
    runs(r, b)
    (r / "rep").mkdir()
    (r / "rep" / ".notes").write_text("mine\n")
    return REPORT


@probe("report --out a user folder holding an empty folder", msg="not made by ufm")
def _(r, b):
    runs(r, b)
    (r / "rep" / "figures").mkdir(parents=True)
    return REPORT


@probe("sweep --out a ufm report folder", msg="not a 'sweep' one")
def _(r, b):
    rep(r, b)
    return [*SWEEP, "--out", "rep"]


@probe("report --out a ufm sweep folder", msg="not a 'report' one")
def _(r, b):
    runs(r, b)
    return ["report", "--from", "runs", "--out", "runs"]


@probe("train --out its own earlier run without --fresh", msg="earlier ufm train run")
def _(r, b):
    made(r, "train", {"epoch_000.npz": EPOCH, "summary.json": b"{}\n"})
    return [*TRAIN, "train"]


@probe("solve --save over a user's npz (np.savez)", msg="was not written by ufm")
def _(r, b):
    np.savez(r / "mine.npz", W=np.eye(2))
    return ["solve", *P, "--save", "mine.npz"]


@probe("solve --save over a user's text file", msg="was not written by ufm")
def _(r, b):
    return ["solve", *P, "--save", "user.md"]


@probe("a manifest listing a path outside its folder", msg="lists paths outside the folder")
def _(r, b):
    rep(r, b)
    runs(r, b)
    listed(r / "rep", "../user.md")
    return REPORT


# -- runs: every probe at once (threads; each is a subprocess) ------------------------
@pytest.fixture(scope="module")
def probe_runs(base, tmp_path_factory):
    root = tmp_path_factory.mktemp("probes")
    jobs = {}
    for i, (name, (build, _, _)) in enumerate(PROBES.items()):
        r = root / f"p{i:02d}"
        r.mkdir()
        user_files(r)
        argv = build(r, base)
        jobs[name] = (r, argv, tree(r))

    def go(name):
        r, argv, before = jobs[name]
        try:
            proc = ufm(*argv, cwd=r, timeout=60)
        except subprocess.TimeoutExpired as exc:  # that probe fails (it ran on: not refused), not all of them
            proc = subprocess.CompletedProcess(argv, -9, exc.stdout or "", f"timed out: {exc}")
        return name, proc, before, tree(r)

    with ThreadPoolExecutor(4) as ex:
        return {name: (proc, before, after) for name, proc, before, after in ex.map(go, jobs)}


@pytest.mark.parametrize("name", list(PROBES))
def test_probe_refused_and_nothing_touched(name, probe_runs):
    proc, before, after = probe_runs[name]
    _, code, msg = PROBES[name]
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    line = one_line(proc)
    assert msg in line, line
    assert after == before  # every file's bytes (and inode), every link and its target's bytes


# -- probes whose command succeeds: the user's other names keep their bytes ------------
def test_report_replaces_its_own_file_hard_linked_elsewhere_and_keeps_the_other_name(base, tmp_path):
    user_files(tmp_path)
    rep(tmp_path, base)
    runs(tmp_path, base)
    (tmp_path / "rep" / "README.md").unlink()
    os.link(tmp_path / "user.md", tmp_path / "rep" / "README.md")  # a listed name, hard-linked by the user
    before = (tmp_path / "user.md").read_bytes()
    proc = ufm(*REPORT, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "user.md").read_bytes() == before
    assert (tmp_path / "rep" / "README.md").read_bytes() != before  # the report's own index now


def test_solve_save_over_its_own_npz_hard_linked_elsewhere_keeps_the_other_name(base, tmp_path):
    shutil.copy(base / "sol.npz", tmp_path / "kept.npz")
    os.link(tmp_path / "kept.npz", tmp_path / "sol.npz")
    before = (tmp_path / "kept.npz").read_bytes()
    proc = ufm("solve", *P[:-2], "--lam-H", "2e-2", "--save", "sol.npz", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "kept.npz").read_bytes() == before
    assert (tmp_path / "sol.npz").read_bytes() != before


def test_sweep_rewrites_its_listed_spec_hard_linked_elsewhere_and_keeps_the_other_name(base, tmp_path):
    d = runs(tmp_path, base)
    (tmp_path / "copy.json").write_text('{"the user": "spec"}\n')
    (d / "spec.json").unlink()
    os.link(tmp_path / "copy.json", d / "spec.json")
    proc = ufm(*SWEEP, "--out", "runs", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "copy.json").read_text() == '{"the user": "spec"}\n'


def test_a_report_folder_keeps_a_user_file_where_a_folder_of_tables_could_go(base, tmp_path):
    user_files(tmp_path)
    rep(tmp_path, base)
    runs(tmp_path, base)
    (tmp_path / "rep" / "tables").write_text("my file named tables\n")  # not listed: never touched
    proc = ufm(*REPORT, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "rep" / "tables").read_text() == "my file named tables\n"


def test_train_fresh_removes_only_its_name_of_a_hard_linked_epoch_file(tmp_path):
    """The removal of an earlier run (``--fresh``) unlinks ufm's name only: the user's other name
    of the same file keeps its bytes (checked on OutputDir, what ``ufm train --fresh`` calls)."""
    folder = OutputDir(tmp_path / "train", "train")
    folder.write("epoch_000.npz", EPOCH)
    os.link(tmp_path / "train" / "epoch_000.npz", tmp_path / "mine.npz")
    (tmp_path / "train" / "notes.txt").write_text("mine\n")
    assert OutputDir(tmp_path / "train", "train").remove_listed(keep={".ufm-lock"}) == ["epoch_000.npz"]
    assert (tmp_path / "mine.npz").read_bytes() == EPOCH
    assert (tmp_path / "train" / "notes.txt").read_text() == "mine\n"


def test_writing_below_a_linked_or_file_component_is_refused_in_python(tmp_path):
    from ufm.exceptions import UFMError

    folder = OutputDir(tmp_path / "rep", "report")
    (tmp_path / "rep" / "tables").write_text("a file\n")
    with pytest.raises(UFMError, match="is a file where ufm needs a folder"):
        folder.write("tables/t.md", "x")
    (tmp_path / "rep" / "tables").unlink()
    (tmp_path / "else").mkdir()
    os.symlink(tmp_path / "else", tmp_path / "rep" / "tables")  # made after the folder was opened
    with pytest.raises(UFMError, match="symbolic link"):
        folder.write("tables/t.md", "x")
    assert list((tmp_path / "else").iterdir()) == []


# -- two commands on one folder at once ------------------------------------------------
def test_report_from_a_folder_a_sweep_still_writes_is_refused_naming_the_holder(base, tmp_path):
    runs(tmp_path, base)
    with DirLock(tmp_path / "runs", "ufm sweep theorem"):
        proc = ufm(*REPORT, cwd=tmp_path)
    assert proc.returncode == 2
    assert "in use by ufm sweep theorem" in one_line(proc)
    assert not (tmp_path / "rep").exists()


@pytest.mark.parametrize("argv", [REPORT, [*SWEEP, "--out", "rep"], [*TRAIN, "rep"]],
                         ids=["report", "sweep", "train"])
def test_a_second_writer_on_a_locked_folder_is_refused(base, tmp_path, argv):
    runs(tmp_path, base)
    kind = {"report": "report", "sweep": "sweep", "train": "train"}[argv[0]]
    OutputDir(tmp_path / "rep", kind)
    before = tree(tmp_path)
    with DirLock(tmp_path / "rep", "a test holding the lock"):
        proc = ufm(*argv, cwd=tmp_path)
    assert proc.returncode == 2
    assert "in use by a test holding the lock" in one_line(proc)
    assert tree(tmp_path) == before


def test_two_solves_saving_to_one_file_at_once_leave_a_whole_file(tmp_path):
    with ThreadPoolExecutor(2) as ex:
        procs = list(ex.map(lambda lam: ufm("solve", *P[:-2], "--lam-H", lam, "--save", "s.npz", cwd=tmp_path),
                            ["1e-2", "2e-2"]))
    assert [p.returncode for p in procs] == [0, 0], [p.stderr for p in procs]
    with np.load(tmp_path / "s.npz") as z:
        assert float(z["lam_H"]) in (1e-2, 2e-2) and z["W"].shape == (3, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.npz"]  # no temporary file left


def test_two_reports_into_one_folder_at_once_one_writer_at_a_time(base, tmp_path):
    runs(tmp_path, base)
    with ThreadPoolExecutor(2) as ex:
        procs = list(ex.map(lambda _: ufm(*REPORT, cwd=tmp_path), range(2)))
    codes = sorted(p.returncode for p in procs)
    assert codes in ([0, 0], [0, 2]), [p.stderr for p in procs]
    for p in procs:
        if p.returncode == 2:
            assert "in use by ufm report" in one_line(p)
    assert (tmp_path / "rep" / "README.md").read_text().startswith("# Reports")
    assert not [p for p in (tmp_path / "rep").iterdir() if p.name.startswith(".ufm-staging")]


# -- a full disk and a read-only mount (root and a tmpfs needed) -----------------------
def _mount(path: Path, *opts: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir(exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(opts), "tmpfs", str(path)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    _mount(disk, "size=64k")
    (disk / "fill").write_bytes(b"")
    try:  # fill it up to the last block
        with open(disk / "fill", "ab") as fh:
            while True:
                fh.write(b"\0" * 4096)
                fh.flush()
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.fixture
def ro_disk(tmp_path):
    disk = tmp_path / "ro"
    _mount(disk, "size=64k", "ro")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.mark.parametrize("argv", [["report", "--from", "{b}/runs", "--out", "{d}/rep"],
                                  [*SWEEP, "--out", "{d}/runs"],
                                  ["solve", *P, "--save", "{d}/s.npz"],
                                  [*TRAIN, "{d}/train"]],
                         ids=["report", "sweep", "solve-save", "train"])
def test_a_full_disk_is_exit_2_in_one_line(base, small_disk, argv):
    argv = [a.format(b=base, d=small_disk) for a in argv]
    before = tree(small_disk)
    proc = ufm(*argv, cwd=small_disk.parent)
    assert proc.returncode == 2, proc.stderr
    one_line(proc)
    after = tree(small_disk)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing of before changed


@pytest.mark.parametrize("argv", [["report", "--from", "{b}/runs", "--out", "{d}/rep"],
                                  [*SWEEP, "--out", "{d}/runs"],
                                  ["solve", *P, "--save", "{d}/s.npz"],
                                  [*TRAIN, "{d}/train"]],
                         ids=["report", "sweep", "solve-save", "train"])
def test_a_read_only_mount_is_exit_2_in_one_line(base, ro_disk, argv):
    argv = [a.format(b=base, d=ro_disk) for a in argv]
    proc = ufm(*argv, cwd=ro_disk.parent)
    assert proc.returncode == 2, proc.stderr
    one_line(proc)
    assert list(ro_disk.iterdir()) == []


# -- bench --out: bench.md / bench.csv replaced only when the bench wrote them ---------
SLOW = pytest.mark.slow  # each run imports the benchmark suite (seconds): two cases in the default run


@pytest.mark.parametrize("kind,name", [("user file", "bench.md"), ("link", "bench.csv"),
                                       pytest.param("fifo", "bench.md", marks=SLOW),
                                       pytest.param("folder", "bench.csv", marks=SLOW),
                                       pytest.param("user file", "bench.csv", marks=SLOW),
                                       pytest.param("link", "bench.md", marks=SLOW),
                                       pytest.param("user file", "bench.partial.md", marks=SLOW)])
def test_bench_out_never_replaces_what_it_did_not_write(tmp_path, kind, name):
    user_files(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    if kind == "user file":
        (out / name).write_text("my own notes\n")
    elif kind == "link":
        os.symlink("../user.md", out / name)
    elif kind == "fifo":
        os.mkfifo(out / name)
    else:
        (out / name).mkdir()
    before = tree(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--sizes", "S", "--skip-convex", "--out", "out"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60,
                          env={**ENV, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"out/{name}" in proc.stderr.splitlines()[-1]
    assert tree(tmp_path) == before


def test_a_disk_filling_up_while_rendering_is_exit_2_not_a_skipped_section(tmp_path):
    """The manifest fits on a 64 KiB tmpfs, the figures of ``losses`` do not: the report stops
    with exit 2 in one line (it had skipped the section and exited 1), leaving no staging folder
    and no half-written index."""
    disk = tmp_path / "disk"
    _mount(disk, "size=64k")
    try:
        assert ufm("sweep", "losses", "--out", "losses", "--no-progress", "--jobs", "2", cwd=tmp_path).returncode == 0
        proc = ufm("report", "--from", "losses", "--out", "disk/rep", cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        assert "No space left on device" in one_line(proc)
        assert sorted(p.name for p in (disk / "rep").iterdir()) == [".ufm-lock", ".ufm-manifest.json"]
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_manifest_being_written_by_another_run_is_not_a_foreign_folder(tmp_path):
    """Two runs into one new folder: while one writes its manifest (a ``.tmp-`` file, then a
    rename) the other must not call the folder "not made by ufm" (seen once under load); a
    file of any other name still makes it foreign."""
    from ufm.exceptions import UFMError
    from ufm.files import MANIFEST, OutputDir

    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / f".tmp-{MANIFEST}-x1y2").write_text("")
    OutputDir(ours, "report")
    assert (ours / MANIFEST).is_file()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / ".tmp-notes.txt-x1y2").write_text("mine")
    with pytest.raises(UFMError, match="not made by ufm"):
        OutputDir(foreign, "report")
    assert (foreign / ".tmp-notes.txt-x1y2").read_text() == "mine"
