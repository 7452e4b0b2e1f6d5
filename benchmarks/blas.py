"""BLAS thread control for the OpenBLAS builds loaded by numpy and scipy (no extra package).

numpy and scipy wheels each bundle their own OpenBLAS (``libscipy_openblas64_`` and
``libscipy_openblas``); both are found in ``/proc/self/maps`` and set through their
``*_set_num_threads`` entry points. Where that is impossible (another BLAS, another OS)
:func:`set_threads` returns the libraries it could not set and nothing else changes.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
            "openblas_set_num_threads64_", "openblas_set_num_threads")
_GETTERS = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
            "openblas_get_num_threads64_", "openblas_get_num_threads")


def _loaded_openblas() -> list[str]:
    import numpy  # noqa: F401  (load the libraries)
    import scipy.linalg  # noqa: F401

    maps = Path("/proc/self/maps")
    if not maps.exists():
        return []
    libs = {line.split()[-1] for line in maps.read_text().splitlines() if "openblas" in line.lower()}
    return sorted(p for p in libs if p.endswith(".so") or ".so." in p)


def _call(lib: ctypes.CDLL, names: tuple[str, ...], *args: int) -> int | None:
    for name in names:
        fn = getattr(lib, name, None)
        if fn is not None:
            fn.restype = ctypes.c_int
            return int(fn(*[ctypes.c_int(a) for a in args]) or 0)
    return None


def set_threads(n: int) -> list[str]:
    """Set the thread count of every loaded OpenBLAS; returns the libraries left unchanged."""
    failed = []
    for path in _loaded_openblas():
        lib = ctypes.CDLL(path)
        if _call(lib, _SETTERS, n) is None:
            failed.append(path)
    return failed


def get_threads() -> dict[str, int]:
    """Thread count per loaded OpenBLAS library (file name -> threads)."""
    out = {}
    for path in _loaded_openblas():
        got = _call(ctypes.CDLL(path), _GETTERS)
        if got is not None:
            out[Path(path).name] = got
    return out
