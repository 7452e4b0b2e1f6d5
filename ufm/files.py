"""Safe output: no command deletes or overwrites a file it did not create.

- :func:`check_output_file` validates an output file's path *before* any work starts:
  its folder exists and is writable, the path is not a folder, and an existing file is
  overwritten only if this package wrote it (an ``.npz`` carrying :data:`MARKER`).
- :func:`atomic_write` / :func:`save_npz_atomic` write to a temporary name in the same
  folder and move it into place with :func:`os.replace`: a file is complete or absent.
- :class:`OutputDir` owns a folder through a manifest (``.ufm-manifest.json``) listing
  every file the package wrote there. A folder that is missing or empty is adopted; a
  non-empty folder without a manifest is refused, whatever its files are called; a file
  the manifest does not list is never touched; a fresh start removes only listed files.
  A symbolic link inside the folder is refused (naming it); paths are resolved without
  following links, and only regular files are replaced (by a rename, so a hard link's
  other names keep the old bytes) or removed.
- :class:`DirLock`: one writer per folder (an exclusive ``flock`` on ``.ufm-lock``, which
  names the holder's PID and host; the kernel releases it when the holder dies).
"""

from __future__ import annotations

import errno
import io
import json
import os
import socket
import stat
import tempfile
import zipfile
from collections.abc import Iterable
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


def read_regular(path: str | Path, limit: int | None = None) -> bytes:
    """The bytes of the regular file ``path`` (at most ``limit``): an OSError for anything else
    (a folder, a FIFO -- opened without blocking --, a device), so readers never hang."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read() if limit is None else fh.read(limit)
    finally:
        os.close(fd)


def check_output_file(path: str | Path, what: str = "output") -> Path:
    """Validate an output path before any work: return it as a :class:`~pathlib.Path`.

    Raises :class:`~ufm.exceptions.UFMError` (one line naming the path and the fix) when
    the folder is missing, not a folder or not writable, when the path is a folder, or
    when an existing file there was not written by this package.
    """
    p = Path(path)
    if p.is_symlink():
        raise UFMError(f"{what}: {p} is a symbolic link; ufm never writes through or replaces a link. "
                       "Give the path of a regular file.")
    if p.is_dir():
        raise UFMError(f"{what}: {p} is a folder; give a file name such as {p / 'solution.npz'}.")
    _writable_dir(p.parent if str(p.parent) else Path("."), what)
    if p.exists() or p.is_symlink():
        if not (p.suffix == ".npz" and _is_regular(p) and is_ufm_npz(p)):
            raise UFMError(f"{what}: {p} exists and was not written by ufm; it is never overwritten. "
                           "Choose another name or move that file away.")
        if not os.access(p, os.W_OK):
            raise UFMError(f"{what}: {p} is read-only; choose another name.")
    return p


def check_own_text(path: str | Path, prefixes: tuple[str, ...], what: str = "output") -> None:
    """Refuse to replace ``path`` unless it is absent or a regular file this package wrote: one
    that begins with one of ``prefixes`` (the first line every version of it has). A link, a
    folder, a FIFO or a user's file of that name raises :class:`~ufm.exceptions.UFMError`."""
    p = Path(path)
    regular = _is_regular(p)
    if regular is None:
        return
    if p.is_symlink():
        raise UFMError(f"{what}: {p} is a symbolic link; ufm never writes through or replaces a link. "
                       "Remove it or choose another folder.")
    if not regular:
        raise UFMError(f"{what}: {p} is not a regular file; ufm never replaces it. Move it away or choose "
                       "another folder.")
    head = read_regular(p, max(len(x) for x in prefixes)).decode(errors="replace")
    if not any(head.startswith(x) for x in prefixes):
        raise UFMError(f"{what}: {p} exists and was not written by ufm; it is never overwritten. Move it "
                       "away or choose another folder.")


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
def _link_error(what: str, link: Path, root: Path) -> UFMError:
    return UFMError(f"{what}: {link} is a symbolic link inside the output folder {root}; ufm never writes, "
                    "replaces or deletes through a link. Remove the link or choose another folder.")


def check_tree(root: Path, what: str = "--out") -> None:
    """Refuse a folder holding a symbolic link anywhere inside it (walked without following any)."""
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            raise UFMError(f"{what}: cannot read the folder {folder} ({exc.strerror}); "
                           "check its permissions or choose another folder.") from None
        for entry in entries:
            if entry.is_symlink():
                raise _link_error(what, Path(entry.path), root)
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))


def inside(root: Path, rel: str | Path, what: str = "--out") -> Path:
    """``root/rel`` resolved without following any link: every folder on the way from ``root``
    must be a real folder (not a link, not a file), and ``rel`` itself must not be a link."""
    rel = Path(rel)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise UFMError(f"{what}: {rel} is not a path inside {root}.")
    here = root
    for i, part in enumerate(rel.parts):
        here = here / part
        try:
            st = os.lstat(here)
        except FileNotFoundError:
            break
        if stat.S_ISLNK(st.st_mode):
            raise _link_error(what, here, root)
        if i < len(rel.parts) - 1 and not stat.S_ISDIR(st.st_mode):
            raise UFMError(f"{what}: {here} is a file where ufm needs a folder; move it away or choose "
                           "another folder.")
    return root / rel


def _is_regular(path: Path) -> bool | None:
    """True for a regular file, False for anything else (a folder, FIFO, socket, link), None if absent."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return None


class OutputDir:
    """A folder this package writes into, tracked by a manifest of the files it wrote.

    ``OutputDir(path, kind)`` creates a missing folder, adopts an empty one, and refuses a
    non-empty folder without a manifest, whatever its files are called ("not made by ufm").
    ``kind`` names what the folder holds ("sweep", "report", ...); a folder of another kind
    is refused. A symbolic link anywhere inside the folder is refused (naming it): paths
    are resolved without following links, and only regular files the manifest lists are
    ever replaced or removed.
    """

    def __init__(self, path: str | Path, kind: str, *, what: str = "--out", create: bool = True) -> None:
        self.path = Path(path)
        self.kind = kind
        self.what = what
        self.files: set[str] = set()
        self.lock: DirLock | None = None  # a lock a long run holds on the folder (see DirLock)
        p = self.path
        if p.exists() and not p.is_dir():
            raise UFMError(f"{what}: {p} is a file, not a folder; choose a folder path.")
        if not p.exists() and p.is_symlink():
            raise UFMError(f"{what}: {p} is a symbolic link to nothing; remove it or choose another folder.")
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
        check_tree(p, what)
        manifest = p / MANIFEST
        regular = _is_regular(manifest)
        if regular is False:
            raise UFMError(f"{what}: {manifest} is not a regular file; the folder's ownership is unknown, so "
                           "nothing is written there. Choose a new folder.")
        if regular:
            try:
                data = json.loads(read_regular(manifest))
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
            # ufm's own transient files do not make a folder "not made by ufm": the lock, and the
            # temporary file of a manifest another ufm process is writing into a new folder now
            if any(q.name != LOCK and not q.name.startswith(f".tmp-{MANIFEST}-") for q in p.iterdir()):
                raise UFMError(f"{what}: {p} is not empty and was not made by ufm (no {MANIFEST}); "
                               "nothing is written there. Choose a new or empty folder.")
            if create:
                self.save()

    # the manifest --------------------------------------------------------------------
    def save(self) -> None:
        body = {"tool": "ufm", "kind": self.kind,
                "note": "files written by ufm; only these are ever replaced or removed by it",
                "files": sorted(self.files)}
        target = inside(self.path, MANIFEST, self.what)
        if _is_regular(target) is False:
            raise UFMError(f"{self.what}: {target} is not a regular file; nothing is written there.")
        atomic_write(target, json.dumps(body, indent=1) + "\n")

    def owns(self, rel: str | Path) -> bool:
        return str(Path(rel)) in self.files

    def check_target(self, rel: str | Path) -> Path:
        """The path for ``rel`` (no link on the way), refused when something not ours sits there:
        a file the manifest does not list, or anything but a regular file."""
        target = inside(self.path, rel, self.what)
        regular = _is_regular(target)
        if regular is None:
            return target
        if not regular:
            raise UFMError(f"{self.what}: {target} is not a regular file (a folder, FIFO or device); ufm "
                           "never replaces it. Move it away or choose another folder.")
        if not self.owns(rel):
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
        self.makedirs(Path(rel).parent)
        self.reserve([rel])
        atomic_write(self.check_target(rel), data)
        return target

    def makedirs(self, rel: str | Path) -> None:
        """Create the folders of ``rel`` under the root, none of them through a link."""
        here = self.path
        for part in Path(rel).parts:
            here = inside(self.path, here.relative_to(self.path) / part, self.what)
            if _is_regular(here) is None:
                here.mkdir()
            elif not here.is_dir():
                raise UFMError(f"{self.what}: {here} is a file where ufm needs a folder; move it away or "
                               "choose another folder.")

    def adopt(self, rel: str | Path) -> None:
        """List a file written in place by other code (e.g. an atomic record writer)."""
        self.files.add(str(Path(rel)))

    def remove(self, rel: str) -> bool:
        """Delete the listed regular file ``rel`` (never a link, a folder or anything unlisted) and
        the empty folders it leaves; True when a file was removed. Unlists it."""
        target = inside(self.path, rel, self.what)
        removed = False
        if self.owns(rel) and _is_regular(target):
            target.unlink()
            removed = True
        self.files.discard(rel)
        parent = target.parent
        while parent != self.path and not os.path.islink(parent) and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent
        return removed

    def remove_listed(self, keep: Iterable[str] = ()) -> list[str]:
        """Remove every listed file (except ``keep``); empty folders they leave go too."""
        keep = set(keep)
        rels = sorted(self.files - keep)
        for rel in rels:  # every path is checked before anything is removed
            if _is_regular(inside(self.path, rel, self.what)) is False:
                raise UFMError(f"{self.what}: {self.path / rel} is listed as ufm's but is not a regular file "
                               "now (a folder or FIFO put there); ufm never removes it. Move it away.")
        removed = [rel for rel in rels if self.remove(rel)]
        self.save()
        return removed


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
            fd = self._open(os.O_RDONLY)
            with os.fdopen(fd) as fh:
                return fh.read(500).strip() or "another process"
        except (OSError, UFMError, UnicodeDecodeError):
            return "another process"

    def _open(self, flags: int) -> int:
        """The lock file's descriptor: never through a link, never anything but a regular file
        (O_NONBLOCK: a FIFO put there does not hang the open)."""
        try:
            fd = os.open(self.path, flags | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UFMError(f"{self.path} is a symbolic link; ufm never writes through a link. Remove it "
                               "or choose another folder.") from None
            if isinstance(exc, FileNotFoundError):
                raise
            if exc.errno == errno.EISDIR:
                raise UFMError(f"{self.path} is not a regular file (a folder); ufm uses it as its lock. "
                               "Remove it or choose another folder.") from None
            raise UFMError(f"cannot open the lock file {self.path} ({exc.strerror}); check the folder's "
                           "permissions or choose another folder.") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise UFMError(f"{self.path} is not a regular file; ufm uses it as its lock. Remove it or "
                           "choose another folder.")
        return fd

    def check(self) -> None:
        """Raise when another process holds the lock (takes nothing; writes nothing)."""
        import fcntl

        if not self.path.exists() and not self.path.is_symlink():
            return
        try:
            fd = self._open(os.O_RDONLY)
        except FileNotFoundError:
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

        fd = self._open(os.O_RDWR | os.O_CREAT)
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
