"""Safe output: no command deletes or overwrites a file it did not create.

- :func:`check_output_file` validates an output file's path *before* any work starts:
  its folder exists and is writable, the path is not a folder, and an existing file is
  overwritten only if this package wrote it (an ``.npz`` carrying :data:`MARKER`).
- :func:`atomic_write` / :func:`save_npz_atomic` write to a temporary name in the same
  folder and move it into place with :func:`os.replace`: a file is complete or absent.
- :class:`OutputDir` owns a folder through a manifest (``.ufm-manifest.json``) listing
  every file the package wrote there. A folder that is missing or empty is adopted; a
  non-empty folder without a manifest is refused; a file the manifest does not list is
  never touched; a fresh start removes only listed files.
- :class:`DirLock`: one writer per folder (an exclusive ``flock`` on ``.ufm-lock``, which
  names the holder's PID and host; the kernel releases it when the holder dies).
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import socket
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .exceptions import UFMError

MANIFEST = ".ufm-manifest.json"
LOCK = ".ufm-lock"
MARKER = "ufm_written"  # key of a 0-d array in every .npz this package writes
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed timestamp: the same arrays give the same bytes


# -- single files -------------------------------------------------------------------
def _writable_dir(folder: Path, what: str) -> None:
    if not folder.exists():
        raise UFMError(f"{what}: the folder {folder} does not exist; create it first or choose another path.")
    if not folder.is_dir():
        raise UFMError(f"{what}: {folder} is a file, not a folder; choose a path inside a folder.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UFMError(f"{what}: the folder {folder} is not writable; choose a writable folder.")


def is_ufm_npz(path: Path) -> bool:
    """True when ``path`` is an ``.npz`` archive this package wrote (it holds :data:`MARKER`)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return f"{MARKER}.npy" in zf.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def check_output_file(path: str | Path, what: str = "output") -> Path:
    """Validate an output path before any work: return it as a :class:`~pathlib.Path`.

    Raises :class:`~ufm.exceptions.UFMError` (one line naming the path and the fix) when
    the folder is missing, not a folder or not writable, when the path is a folder, or
    when an existing file there was not written by this package.
    """
    p = Path(path)
    if p.is_dir():
        raise UFMError(f"{what}: {p} is a folder; give a file name such as {p / 'solution.npz'}.")
    _writable_dir(p.parent if str(p.parent) else Path("."), what)
    if p.exists() or p.is_symlink():
        if not (p.suffix == ".npz" and p.is_file() and is_ufm_npz(p)):
            raise UFMError(f"{what}: {p} exists and was not written by ufm; it is never overwritten. "
                           "Choose another name or move that file away.")
        if not os.access(p, os.W_OK):
            raise UFMError(f"{what}: {p} is read-only; choose another name.")
    return p


def atomic_write(path: str | Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    p = Path(path)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{p.name}-", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def npz_bytes(**arrays: Any) -> bytes:
    """A byte-reproducible ``.npz`` (fixed zip timestamps, sorted names, no pickles), marked as ours."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted({**arrays, MARKER: True}):
            item = io.BytesIO()
            value = True if name == MARKER else arrays[name]
            np.lib.format.write_array(item, np.asarray(value), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, item.getvalue())
    return buf.getvalue()


def save_npz_atomic(path: str | Path, **arrays: Any) -> None:
    """Save arrays as a marked, reproducible ``.npz`` at ``path`` (checked, then atomic)."""
    p = check_output_file(path)
    atomic_write(p, npz_bytes(**arrays))


# -- folders ------------------------------------------------------------------------
class OutputDir:
    """A folder this package writes into, tracked by a manifest of the files it wrote.

    ``OutputDir(path, kind)`` creates a missing folder, adopts an empty one, and refuses a
    non-empty folder without a manifest -- unless ``legacy(file)`` says "adopt" (a file an
    earlier version wrote here, before manifests: listed) or "keep" (ours but not this
    command's, e.g. a benchmark table beside a report: never touched) for every file in
    it. ``kind`` names what the folder holds ("sweep", "report", ...); a folder of another
    kind is refused.
    """

    def __init__(self, path: str | Path, kind: str, *, what: str = "--out",
                 legacy: Any = None, create: bool = True) -> None:
        self.path = Path(path)
        self.kind = kind
        self.what = what
        self.files: set[str] = set()
        self.lock: DirLock | None = None  # a lock a long run holds on the folder (see DirLock)
        p = self.path
        if p.exists() and not p.is_dir():
            raise UFMError(f"{what}: {p} is a file, not a folder; choose a folder path.")
        if not p.exists() and not create:  # a check only (e.g. a dry run): nothing to adopt yet
            return
        if not p.exists():
            parent = p.parent if str(p.parent) else Path(".")
            existing = next((q for q in [parent, *parent.parents] if q.exists()), Path("."))
            if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
                raise UFMError(f"{what}: cannot create {p}: {existing} is not a writable folder.")
            try:
                p.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UFMError(f"{what}: cannot create {p}: {exc.strerror}.") from None
        if create and not os.access(p, os.W_OK | os.X_OK):
            raise UFMError(f"{what}: the folder {p} is not writable; choose a writable folder.")
        manifest = p / MANIFEST
        if manifest.exists():
            try:
                data = json.loads(manifest.read_text())
                assert isinstance(data, dict) and isinstance(data.get("files"), list)
            except (OSError, ValueError, AssertionError):
                raise UFMError(f"{what}: {manifest} is unreadable; the folder's ownership is unknown, so "
                               "nothing is written there. Choose a new folder.") from None
            if data.get("kind") != kind:
                raise UFMError(f"{what}: {p} holds a ufm {data.get('kind')!r} folder, not a {kind!r} one; "
                               "choose another folder.")
            self.files = {str(f) for f in data["files"]}
            escaping = [f for f in self.files if Path(f).is_absolute() or ".." in Path(f).parts or not f]
            if escaping:  # a manifest must never make ufm touch a file outside its folder
                raise UFMError(f"{what}: {manifest} lists paths outside the folder ({escaping[0]!r}); "
                               "it was edited by hand or is damaged. Choose a new folder.")
        else:
            entries = [q for q in p.iterdir() if q.name not in (LOCK,)] if p.exists() else []
            verdicts = {q: (legacy(q) if legacy is not None else None) for q in _walk(entries)}
            if any(v not in ("adopt", "keep") for v in verdicts.values()):
                raise UFMError(f"{what}: {p} is not empty and was not made by ufm (no {MANIFEST}); "
                               "nothing is written there. Choose a new or empty folder.")
            self.files = {str(q.relative_to(p)) for q, v in verdicts.items() if v == "adopt"}
            if create:
                self.save()

    # the manifest --------------------------------------------------------------------
    def save(self) -> None:
        body = {"tool": "ufm", "kind": self.kind,
                "note": "files written by ufm; only these are ever replaced or removed by it",
                "files": sorted(self.files)}
        atomic_write(self.path / MANIFEST, json.dumps(body, indent=1) + "\n")

    def owns(self, rel: str | Path) -> bool:
        return str(Path(rel)) in self.files

    def check_target(self, rel: str | Path) -> Path:
        """The absolute path for ``rel``, refused when a file not ours already sits there."""
        target = self.path / rel
        if (target.exists() or target.is_symlink()) and not self.owns(rel):
            raise UFMError(f"{self.what}: {target} exists and was not written by ufm; it is never "
                           "overwritten. Move it away or choose another folder.")
        return target

    def reserve(self, rels: Iterable[str | Path]) -> None:
        """List files about to be written, in one manifest save (for runs writing many files)."""
        new = [str(Path(r)) for r in rels if str(Path(r)) not in self.files]
        for rel in new:
            self.check_target(rel)
        if new:
            self.files.update(new)
            self.save()

    def write(self, rel: str | Path, data: bytes | str) -> Path:
        """Write ``rel`` atomically, listed in the manifest before it exists (a crash leaves at
        most a listed, missing file); the manifest is saved only when ``rel`` was not reserved."""
        target = self.check_target(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        self.reserve([rel])
        atomic_write(target, data)
        return target

    def adopt(self, rel: str | Path) -> None:
        """List a file written in place by other code (e.g. an atomic record writer)."""
        self.files.add(str(Path(rel)))

    def remove_listed(self, keep: Iterable[str] = ()) -> list[str]:
        """Remove every listed file (except ``keep``); empty folders they leave go too."""
        removed = []
        keep = set(keep)
        for rel in sorted(self.files - keep):
            target = self.path / rel
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
                removed.append(rel)
            self.files.discard(rel)
            parent = target.parent
            while parent != self.path and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
        self.save()
        return removed


def _walk(entries: Iterable[Path]) -> Iterator[Path]:
    for q in entries:
        if q.is_dir() and not q.is_symlink():
            yield from _walk(q.iterdir())
        else:
            yield q


class DirLock:
    """One writer per folder: ``with DirLock(path, "ufm sweep"):`` or :meth:`check` (a reader).

    An exclusive, non-blocking ``flock`` on ``path/.ufm-lock``; the file names the holder
    (PID, host, command). A second writer gets :class:`~ufm.exceptions.UFMError` naming
    the holder. The kernel drops the lock when its process dies, so it never goes stale.
    """

    def __init__(self, path: str | Path, command: str = "ufm") -> None:
        self.path = Path(path) / LOCK
        self.command = command
        self._fd: int | None = None

    def holder(self) -> str:
        try:
            return self.path.read_text().strip() or "another process"
        except OSError:
            return "another process"

    def check(self) -> None:
        """Raise when another process holds the lock (takes nothing; writes nothing)."""
        import fcntl

        if not self.path.exists():
            return
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise UFMError(f"{self.path.parent} is in use by {self.holder()}; wait for it to finish "
                               "(or stop it) and run again.") from None
            raise
        finally:
            os.close(fd)

    def __enter__(self) -> DirLock:
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise UFMError(f"{self.path.parent} is in use by {self.holder()}; one writer per folder: "
                               "wait for it to finish (or stop it) and run again.") from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{self.command} (pid {os.getpid()} on {socket.gethostname()})\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the flock; the file stays (listed in the manifest)
            self._fd = None
