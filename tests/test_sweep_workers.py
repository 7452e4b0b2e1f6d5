"""The sweep's joblib (loky) workers: loky's memory-leak recycling is off in them.

A worker that grew by 300 MB (JAX caches in the networks cells) asked the parent to replace
it, and once that exchange hung ``make report`` (the worker waiting on its exit lock, the
parent's executor-manager thread gone). ``compute_cell_safe(..., worker=True)`` turns the
recycling off in the worker it runs in; run in-process it changes nothing."""

from __future__ import annotations


def _flag_after_a_cell(worker: bool) -> bool:
    from joblib.externals.loky import process_executor

    from ufm.sweep.runner import compute_cell_safe

    cell = {"key": "k", "spec": "t", "params": {}, "problem": {}, "solver": "lbfgs", "options": {},
            "seed": 0, "history": False}
    rec = compute_cell_safe(cell, worker)  # a problem without K: a failed record, quickly
    assert "failed" in rec, rec
    return bool(process_executor._USE_PSUTIL)


def test_loky_workers_do_not_recycle_themselves():
    from joblib import Parallel, delayed
    from joblib.externals.loky import process_executor

    before = process_executor._USE_PSUTIL
    flags = Parallel(n_jobs=2)(delayed(_flag_after_a_cell)(True) for _ in range(2))
    assert flags == [False, False]
    assert process_executor._USE_PSUTIL == before  # the parent's executor is untouched
