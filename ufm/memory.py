"""Refuse a problem before allocating it when it cannot fit in memory.

A solve holds, in float64, the labels and a few logit-sized work arrays (``K x N``
each) and a few feature-sized vectors (``d x N``: the iterate, its gradient, the
L-BFGS pair, a trial point). :func:`estimate_bytes` counts them with a margin;
:func:`check` compares the estimate with the limit: ``UFM_MAX_MEMORY`` (GiB) or
:func:`set_limit` (``--max-memory`` on the command line), by default half the memory
the system reports available. Label sets are enumerated as Python tuples, so their
number ``G`` is bounded too (:data:`MAX_SETS`).
"""

from __future__ import annotations

import os

from .exceptions import UFMError

KN_ARRAYS = 6  # labels, logits, softmax/gradient work arrays (K x N each)
DN_ARRAYS = 10  # iterate, gradient, L-BFGS pair, direction, trial point, polish vectors (d x N)
MAX_SETS = 5_000_000  # label sets enumerated one tuple each
_limit: float | None = None


def available_bytes() -> int:
    """Memory the system reports available (``MemAvailable``), else total physical memory."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - exotic platforms
        return 8 << 30


def set_limit(gib: float | None) -> None:
    """Set the limit in GiB (None: back to the default)."""
    global _limit
    if gib is not None and not (0 < float(gib) < float("inf")):
        raise UFMError(f"The memory limit must be a positive number of GiB; got {gib!r}.")
    _limit = None if gib is None else float(gib) * 2**30


def limit_bytes() -> float:
    if _limit is not None:
        return _limit
    env = os.environ.get("UFM_MAX_MEMORY")
    if env:
        try:
            value = float(env)
            if not 0 < value < float("inf"):
                raise ValueError
        except ValueError:
            raise UFMError(f"UFM_MAX_MEMORY must be a positive number of GiB; got {env!r}.") from None
        return value * 2**30
    return 0.5 * available_bytes()


def estimate_bytes(K: int, N: int, d: int = 0) -> int:
    """Bytes a solve of a ``K``-class problem with ``N`` samples in dimension ``d`` needs (estimate)."""
    return 8 * (KN_ARRAYS * K * N + DN_ARRAYS * d * N + 4 * K * d)


def check(K: int, N: int, G: int, d: int = 0) -> None:
    """Raise :class:`~ufm.exceptions.UFMError` when the problem would not fit (before any allocation)."""
    if G > MAX_SETS:
        raise UFMError(f"The design has {G:,} label sets (more than {MAX_SETS:,} enumerated one by one); "
                       "use fewer classes or lower multiplicities.")
    need, lim = estimate_bytes(K, N, d), limit_bytes()
    if need > lim:
        raise UFMError(f"K={K}, N={N:,}" + (f", d={d}" if d else "") + f" needs about {need / 2**30:.3g} GiB "
                       f"(estimate), above the limit of {lim / 2**30:.3g} GiB; use a smaller problem, or raise "
                       "the limit with --max-memory GiB (or UFM_MAX_MEMORY) if the machine has the memory.")
