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
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..exceptions import UFMError
from .grid import SCHEMA, Spec, load_spec
from .records import clean_tmp, read_record, write_record

__all__ = ["run", "compute_cell", "SweepStats"]

ARRAY_LIMIT = 4000  # store W, b and the label-set means when K d + d G is at most this
VOLATILE = ("timing", "run", "checksum")  # record fields that depend on when/where a cell ran


@dataclass
class SweepStats:
    """What a call to :func:`run` did."""

    name: str
    out: Path
    cells: int
    cached: int
    computed: int
    corrupt: int
    skipped: int

    def line(self) -> str:
        return (f"{self.name}: {self.cells} cells in {self.out} ({self.cached} cached, "
                f"{self.computed} computed, {self.corrupt} corrupt records redone)")


def compute_cell(cell: Mapping[str, Any]) -> dict[str, Any]:
    """Solve one cell and build its record (pure: no file is touched).

    The record holds :func:`ufm.summary.summarize` (without wall times), the geometry of
    :func:`ufm.features.geometry`, small arrays (``W``, ``b``, label-set means ``Hg``),
    the NC history if the cell asks for it, the warnings raised, and -- apart, in
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
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
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


def _executor(pending: list[dict[str, Any]], jobs: int, dask: Any) -> Iterator[dict[str, Any]]:
    """Yield records as cells finish, in-process, with joblib or on Dask."""
    if dask is not None:
        yield from _dask_executor(pending, dask)
    elif jobs == 1 or len(pending) <= 1:
        for cell in pending:
            yield compute_cell(cell)
    else:
        from joblib import Parallel, delayed

        # one BLAS thread per worker: the workers share the cores (threads would contend)
        par = Parallel(n_jobs=jobs, return_as="generator_unordered", batch_size=1, inner_max_num_threads=1)
        yield from par(delayed(compute_cell)(cell) for cell in pending)


def _dask_executor(pending: list[dict[str, Any]], dask: Any) -> Iterator[dict[str, Any]]:
    try:
        from distributed import Client, as_completed
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise UFMError("--dask needs the 'distributed' package: pip install 'ufm[distributed]'.") from None
    own = not isinstance(dask, Client)
    client = Client(dask, set_as_default=False) if own else dask
    try:
        futures = client.map(compute_cell, pending, key=[f"ufm-cell-{c['key']}" for c in pending],
                             pure=False)
        try:
            for fut in as_completed(futures, loop=client.loop):
                yield fut.result()
        finally:
            client.cancel(futures)
    finally:
        if own:
            client.close()


def run(
    spec: str | Path | Mapping[str, Any] | Spec, out: str | Path, *, jobs: int = 1, dask: Any = None,
    progress: bool = True, dry_run: bool = False,
) -> SweepStats:
    """Run every cell of ``spec`` not yet stored in ``out``; store each record as it finishes.

    Parameters
    ----------
    spec : shipped name, path to a TOML/JSON spec, raw dict or :class:`~ufm.sweep.grid.Spec`
    out : directory of the records (created if missing); records from other specs may share it
    jobs : local worker processes (joblib); ignored with ``dask``
    dask : scheduler address ``"tcp://host:port"`` or a ``distributed.Client``
    progress : show a tqdm bar (counts, rate, ETA) on stderr
    dry_run : only count cached and pending cells
    """
    sp = spec if isinstance(spec, Spec) else load_spec(spec)
    if not isinstance(jobs, int) or jobs < 1:
        raise UFMError(f"The 'jobs' parameter of sweep.run must be an int >= 1; got {jobs!r}.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    clean_tmp(out)
    (out / "spec.json").write_text(json.dumps(sp.source, indent=1, sort_keys=True, default=str) + "\n")
    pending, cached, corrupt = [], 0, 0
    for cell in sp.cells:
        path = out / f"{cell['key']}.json"
        if path.exists() and read_record(path) is not None:
            cached += 1
            continue
        corrupt += path.exists()
        pending.append(cell)
    stats = SweepStats(sp.name, out, len(sp.cells), cached, 0, corrupt, sp.skipped)
    if dry_run or not pending:
        return stats
    from tqdm.auto import tqdm

    run_id = uuid.uuid4().hex
    bar = tqdm(total=len(sp.cells), initial=cached, desc=sp.name, unit="cell", disable=not progress,
               file=sys.stderr, dynamic_ncols=True, smoothing=0.1)
    try:
        for record in _executor(pending, jobs, dask):
            write_record(out, record, run_id)
            stats.computed += 1
            bar.update()
    except KeyboardInterrupt:
        bar.close()
        print(f"ufm sweep: interrupted; {cached + stats.computed} of {len(sp.cells)} cells stored "
              f"in {out}. Run the same command again to resume.", file=sys.stderr)
        raise
    finally:
        bar.close()
    return stats


