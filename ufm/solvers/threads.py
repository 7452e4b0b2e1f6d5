"""BLAS threads for one solve: one thread for small problems, the library's own setting
(the cores) for large ones -- except a second BLAS library beside numpy's, on one thread
(:func:`_beside_numpy`).

An evaluation of ``F`` is a few matrix products of about ``K d N`` multiply-adds each.
Below :data:`SMALL_WORK` a product takes well under a millisecond and OpenBLAS's worker
threads cost more than they save; on a machine where another process keeps a core busy
they spin against it (measured on 2 cores: one evaluation at the bench's M size, 4-8 ms
with one thread, 125-270 ms with two). Large problems keep the library's setting, so
a caller's own limit (a sweep worker's one thread, ``threadpoolctl``, ``OPENBLAS_NUM_THREADS``)
still applies to them. Uses :mod:`threadpoolctl`; the controller (which lists the loaded
BLAS libraries) is built once per process.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

SMALL_WORK = 5e7  # K d N below which a solve runs on one BLAS thread

_controller: Any = None


def _blas_controller() -> Any:
    global _controller
    if _controller is None:
        import numpy  # noqa: F401  (load the BLAS libraries before listing them)
        import scipy.linalg  # noqa: F401
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller


def is_small(K: int, d: int, N: int) -> bool:
    """True when one product ``W H`` (``K d N`` multiply-adds) is too small for threads."""
    return K * d * N < SMALL_WORK


def blas_threads_for(K: int, d: int, N: int) -> AbstractContextManager[Any]:
    """A context that runs BLAS single-threaded for small problems; for large ones, only a second
    BLAS library beside numpy's (see :func:`_beside_numpy`) on one thread."""
    if not is_small(K, d, N):
        beside = _beside_numpy()
        return _blas_controller().select(filepath=beside).limit(limits=1) if beside else nullcontext()
    return _blas_controller().limit(limits=1, user_api="blas")


def _beside_numpy() -> list[str]:
    """The BLAS libraries loaded beside numpy's own, when numpy brings its own (pip wheels: numpy
    and scipy each ship an OpenBLAS, with a thread pool each).

    The solvers' matrix products run in numpy's library, their vector work (``ddot``/``daxpy``
    and the float32 ``sdot``/``saxpy`` of :mod:`ufm.solvers.lbfgs_engine`, the polish's CG) in
    scipy's. With both pools at the cores' count, each pool's workers spin while the other pool
    works, on the same two cores: at the bench's L the float32 evaluations took 0.10 s inside the
    solve against 0.048 s alone, and the float32 phase 10.6 s against 6.1 s with scipy's pool on
    one thread (same iterations). Vector work over a few million entries is bound by memory
    bandwidth, which one thread nearly saturates."""
    paths = [lib.filepath for lib in _blas_controller().lib_controllers if lib.user_api == "blas"]
    ours = [p for p in paths if "numpy" in p.replace("\\", "/").split("/")[-2]]
    return [p for p in paths if p not in ours] if ours else []


__all__ = ["SMALL_WORK", "blas_threads_for", "is_small"]
