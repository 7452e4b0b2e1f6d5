"""The sweep runner: every pending cell of a spec computed and stored as it finishes.

Parameter sweeps: run the cells of a spec in parallel, store one record per cell, resume.

>>> from ufm import sweep
>>> sweep.run("theorem", "runs/theorem", jobs=2)          # a shipped spec (`ufm sweep --list`)
>>> df = sweep.load("runs/theorem")                        # one row per cell (pandas)

Specs and cells are described in :mod:`ufm.sweep.grid`. Each finished cell is written at once
to ``OUT/<key>.json`` (``key`` = sha256 of the cell's problem, solver, options and seed),
through a temporary file and :func:`os.replace`, so a record is either complete or absent.
A record carries a checksum of its content; on a rerun, a valid record is kept untouched
(never recomputed) and a missing, partial or corrupt one is computed again. Cells run
in-process (``jobs=1``), with joblib (``jobs > 1``) or on a Dask cluster (``dask=
"tcp://host:port"`` or a :class:`distributed.Client`; the extra ``ufm[distributed]``).
Results never depend on where a cell ran; only the ``timing`` and ``run`` fields do.
One writer per output directory at a time.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import uuid
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..exceptions import UFMError
from .grid import SCHEMA, Spec, load_spec
from .records import clean_tmp, failed_record, is_failed, read_record, unconverged, write_record

__all__ = ["run", "compute_cell", "compute_cell_safe", "SweepStats"]

ARRAY_LIMIT = 4000  # store W, b and the label-set means when K d + d G is at most this
VOLATILE = ("timing", "run", "checksum")  # record fields that depend on when/where a cell ran


@dataclass
class SweepStats:
    """What a call to :func:`run` did (``failed``: cells whose computation raised, stored as
    failed records -- this run's and earlier ones'; ``--retry-failed`` recomputes them)."""

    name: str
    out: Path
    cells: int
    cached: int
    computed: int
    corrupt: int
    skipped: int
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    unconverged: int = 0  # cells whose solver ran but did not converge (records.unconverged)
    stalled: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"{self.name}: {self.cells} cells in {self.out} ({self.cached} cached, "
                f"{self.computed} computed, {self.corrupt} corrupt records redone, {self.failed} failed, "
                f"{self.unconverged} did not converge)")


_WATCHING = False


def _watch_parent() -> None:
    """In a worker process: exit when the parent dies (joblib workers must not outlive a kill)."""
    global _WATCHING
    if _WATCHING or os.getppid() == 1:
        return
    _WATCHING = True
    import threading

    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="ufm-parent-watch", daemon=True).start()


def _no_worker_recycling() -> None:
    """In a joblib (loky) worker: turn off loky's memory-leak recycling of this worker.

    A worker whose memory grew by 300 MB (JAX's compilation caches in the networks cells do)
    asks the parent to replace it and waits for the parent's answer; under load that exchange
    hung ``make report`` for good (seen once: the worker waiting on its exit lock, the parent's
    executor-manager thread gone). Without it a worker only collects garbage now and then, as
    loky does when psutil is absent; each cell's memory is freed when the cell returns."""
    try:
        from joblib.externals.loky import process_executor
    except ImportError:  # not a loky worker
        return
    process_executor._USE_PSUTIL = False


def compute_cell_safe(cell: Mapping[str, Any], worker: bool = False) -> dict[str, Any]:
    """:func:`compute_cell`, but a cell that raises becomes a failed record (the sweep goes on).

    Ctrl-C and memory exhaustion are not cell failures: they propagate.
    """
    from .. import __version__

    if worker:
        _watch_parent()
        _no_worker_recycling()
    try:
        return compute_cell(cell)
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - stored, counted, reported
        rec = failed_record(cell, exc, __version__)
        rec["run"] = {"pid": os.getpid(), "host": socket.gethostname(),
                      "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        return rec


def compute_cell(cell: Mapping[str, Any]) -> dict[str, Any]:
    """Solve one cell and build its record (pure: no file is touched).

    The record holds :func:`ufm.summary.summarize` (without wall times), the geometry of
    :func:`ufm.features.geometry`, small arrays (``W``, ``b``, label-set means ``Hg``),
    the NC history if the cell asks for it, ``starts`` (one entry per random start) for a
    cell with the option ``starts > 1``, the warnings raised, and -- apart, in
    ``timing`` and ``run`` -- when, where and how long.
    """
    import numpy as np

    from .. import __version__
    from ..features import geometry
    from ..metrics import Groups
    from ..problem import UFMProblem
    from ..result import Status
    from ..solvers import solve
    from ..summary import jsonable, summarize
    from ..theory import predict

    t0 = time.perf_counter()
    problem = UFMProblem.from_dict(cell["problem"])
    options = dict(cell["options"])
    if cell["solver"] != "convex":
        options.setdefault("history_metrics", bool(cell["history"]))
    if cell["solver"] == "lbfgs" and "fixed_W" not in options:
        options.setdefault("group", False)  # all N columns unless the spec asks: nc1 measured, not imposed
    starts = int(options.pop("starts", 1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if starts > 1:
            from ..solvers.multistart import solve_starts

            result = solve_starts(problem, cell["solver"], starts, int(cell["seed"]), **options)
        else:
            result = solve(problem, cell["solver"], rng=int(cell["seed"]), **options)
        if result.status == Status.INTERRUPTED:  # the solver caught Ctrl-C: do not store it
            raise KeyboardInterrupt
        summary = summarize(problem, result)
        geo = geometry(result.W, result.H, result.b if problem.bias else None, problem.design.Y)
    solve_time = summary.pop("time")
    history = dict(result.history)
    hist_time = history.pop("time", [])
    record: dict[str, Any] = {
        "schema": SCHEMA, "key": cell["key"], "spec": cell["spec"], "params": cell["params"],
        "cell": {k: cell[k] for k in ("problem", "solver", "options", "seed", "history")},
        "summary": summary, "geometry": jsonable(geo),
        "history": jsonable(history) if cell["history"] else None,
        "warnings": sorted({f"{w.category.__name__}: {w.message}" for w in caught}),
        "ufm_version": __version__,
    }
    if "starts" in result.extra:  # every start's F, status and gap: hit rates of the best value
        record["starts"] = jsonable(result.extra["starts"])
    K, d = problem.K, problem.d
    # the theorem's min F at d >= K-1 (None outside it): the reference for a d sweep
    full = predict(replace(problem, d=max(d, K - 1))) if d < K - 1 else None
    record["value_full_d"] = full.value if full is not None else summary["theory"]["value"]
    if K * d + d * problem.design.G <= ARRAY_LIMIT:
        Hg = Groups.from_arrays(result.H, problem.design.Y).means
        record["arrays"] = jsonable({"W": result.W, "b": result.b, "Hg": Hg})
    record["timing"] = {"solve": solve_time, "total": time.perf_counter() - t0,
                        "history_time": jsonable(np.asarray(hist_time)) if cell["history"] else None}
    record["run"] = {"pid": os.getpid(), "host": socket.gethostname(),
                     "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    return record


def cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - platforms without affinity
        return max(1, os.cpu_count() or 1)


def _cap_jobs(jobs: int, pending: int) -> int:
    """``jobs`` capped at the pending cells and the cores: more workers only contend (and a worker
    without a cell would never start watching its parent). Says so in one line on stderr."""
    cap = min(jobs, pending, cores())
    if cap < jobs:
        print(f"ufm sweep: --jobs {jobs} capped at {cap} (the {pending} pending cells, {cores()} cores)",
              file=sys.stderr)
    return cap


def _executor(pending: list[dict[str, Any]], jobs: int, dask: Any) -> Iterator[dict[str, Any]]:
    """Yield records as cells finish, in-process, with joblib or on Dask."""
    if dask is not None:
        yield from _dask_executor(pending, dask)
    elif jobs == 1 or len(pending) <= 1:
        for cell in pending:
            yield compute_cell_safe(cell)
    else:
        from joblib import Parallel, delayed

        # one BLAS thread per worker: the workers share the cores (threads would contend)
        par = Parallel(n_jobs=jobs, return_as="generator_unordered", batch_size=1, inner_max_num_threads=1)
        yield from par(delayed(compute_cell_safe)(cell, True) for cell in pending)


DASK_TIMEOUT = 10.0  # seconds to reach a scheduler before giving up


def _check_address(dask: Any) -> None:
    """Refuse at once what is not a scheduler address (distributed would try it for 10 s, then
    print a traceback from its client's ``__del__``)."""
    import re

    if isinstance(dask, str) and not re.fullmatch(r"[a-z]+://\S+|[^\s:/]+:\d{1,5}", dask):
        raise UFMError(f"--dask {dask!r} is not a scheduler address; give tcp://HOST:PORT (e.g. "
                       "tcp://127.0.0.1:8786).")


def _dask_client(dask: Any) -> Any:
    """A connected ``distributed.Client`` for an address (refused after :data:`DASK_TIMEOUT`)."""
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise UFMError("--dask needs the 'distributed' package: pip install 'ufm[distributed]'.") from None
    if isinstance(dask, Client):
        return dask
    _check_address(dask)
    try:
        return Client(dask, set_as_default=False, timeout=DASK_TIMEOUT)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        raise UFMError(f"--dask {dask}: no Dask scheduler answered within {DASK_TIMEOUT:g} s "
                       f"({type(exc).__name__}); check the address (tcp://HOST:PORT) and that the "
                       "scheduler runs.") from None


def _dask_executor(pending: list[dict[str, Any]], client: Any) -> Iterator[dict[str, Any]]:
    from distributed import as_completed

    futures = client.map(compute_cell_safe, pending, key=[f"ufm-cell-{c['key']}" for c in pending],
                         pure=False)
    try:
        for fut in as_completed(futures, loop=client.loop):
            yield fut.result()
    finally:
        client.cancel(futures)


def run(
    spec: str | Path | Mapping[str, Any] | Spec, out: str | Path, *, jobs: int = 1, dask: Any = None,
    progress: bool = True, dry_run: bool = False, retry_failed: bool = False,
) -> SweepStats:
    """Run every cell of ``spec`` not yet stored in ``out``; store each record as it finishes.

    Parameters
    ----------
    spec : shipped name, path to a TOML/JSON spec, raw dict or :class:`~ufm.sweep.grid.Spec`
    out : folder of the records: created if missing; an empty folder or one this package
        made (it holds a manifest, ``.ufm-manifest.json``) -- any other non-empty folder is
        refused. Records from other specs may share it. One writer at a time (a lock).
    jobs : local worker processes (joblib; each worker exits if this process dies); ignored
        with ``dask``
    dask : scheduler address ``"tcp://host:port"`` (refused after 10 s without an answer)
        or a ``distributed.Client``
    progress : show a tqdm bar (counts, rate, ETA) on stderr
    dry_run : only count stored, failed and pending cells; writes nothing
    retry_failed : recompute the cells stored as failed or not converged (by default they are kept)

    Returns
    -------
    SweepStats
        ``failed > 0`` when any cell of the spec is stored as failed (the CLI exits 1).

    Raises
    ------
    UFMError
        A spec that expands to no cell, a folder not made by ufm, a folder in use by
        another writer, an unreachable Dask scheduler.
    """
    from ..files import DirLock, OutputDir

    sp = spec if isinstance(spec, Spec) else load_spec(spec)
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise UFMError(f"The 'jobs' parameter of sweep.run must be an int >= 1; got {jobs!r}.")
    if not sp.cells:
        raise UFMError(f"Spec {sp.name!r} expands to no cell ({sp.skipped} skipped: d below 1); "
                       "check its grid.")
    _check_address(dask)
    out = Path(out)
    folder = OutputDir(out, "sweep", create=not dry_run)
    if dry_run:
        if out.exists():
            DirLock(out).check()
        return _count(sp, out, retry_failed)[0]
    with DirLock(out, f"ufm sweep {sp.name}"):
        folder.adopt(".ufm-lock")
        clean_tmp(out)
        stats, pending = _count(sp, out, retry_failed)
        for c in pending:  # where a record goes: nothing not ours (a user's file, a link, a folder)
            rel = f"{c['key']}.json"
            if c.get("_failed") and not folder.owns(rel):  # a valid record (failed or unconverged)
                folder.adopt(rel)  # a record of ours (valid checksum) written just before a kill -9
            folder.check_target(rel)
        folder.write("spec.json", json.dumps(sp.source, indent=1, sort_keys=True, default=str) + "\n")
        if not pending:
            return stats
        from tqdm.auto import tqdm

        if dask is None and jobs > 1:
            jobs = _cap_jobs(jobs, len(pending))
        client = _dask_client(dask) if dask is not None else None  # connect before the bar
        run_id = uuid.uuid4().hex
        bar = tqdm(total=len(sp.cells), initial=len(sp.cells) - len(pending), desc=sp.name, unit="cell",
                   disable=not progress, file=sys.stderr, dynamic_ncols=True, smoothing=0.1)
        stats.failed -= sum(1 for c in pending if c.get("_failed") == "failed")  # recomputed now
        stats.unconverged -= sum(1 for c in pending if c.get("_failed") == "unconverged")
        try:
            for record in _executor([{k: v for k, v in c.items() if k != "_failed"} for c in pending],
                                    jobs, client):
                write_record(out, record, run_id)
                folder.adopt(f"{record['key']}.json")
                stats.computed += 1
                if unconverged(record):
                    stats.unconverged += 1
                    stats.stalled.append(f"{record['key'][:12]}: {unconverged(record)}")
                if is_failed(record):
                    stats.failed += 1
                    stats.errors.append(f"{record['key'][:12]}: {record['failed']['type']}: "
                                        f"{record['failed']['message']}")
                if stats.computed % 25 == 0:
                    folder.save()
                bar.update()
        except KeyboardInterrupt:
            bar.close()
            print(f"ufm sweep: interrupted; {stats.cached + stats.computed} of {len(sp.cells)} cells "
                  f"stored in {out}. Run the same command again to resume.", file=sys.stderr)
            raise
        finally:
            bar.close()
            folder.save()
            if client is not None and client is not dask:
                client.close()
    return stats


def _count(sp: Spec, out: Path, retry_failed: bool) -> tuple[SweepStats, list[dict[str, Any]]]:
    """Stored, failed, corrupt and pending cells of ``sp`` in ``out`` (reads only)."""
    pending: list[dict[str, Any]] = []
    cached = corrupt = failed = stalled = 0
    for cell in sp.cells:
        path = out / f"{cell['key']}.json"
        rec = read_record(path) if path.exists() or path.is_symlink() else None
        kind = None if rec is None else "failed" if is_failed(rec) else "unconverged" if unconverged(rec) else None
        if rec is not None and not (retry_failed and kind):
            cached += 1
            failed += kind == "failed"
            stalled += kind == "unconverged"
            continue
        corrupt += path.exists() and rec is None
        pending.append({**cell, "_failed": kind})
        failed += kind == "failed"
        stalled += kind == "unconverged"
    stats = SweepStats(sp.name, out, len(sp.cells), cached, 0, corrupt, sp.skipped, failed, unconverged=stalled)
    return stats, pending
