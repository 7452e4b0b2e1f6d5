"""Checks of array arguments at the public boundary, shared by every module that takes arrays."""

from __future__ import annotations

import numpy as np

from .exceptions import UFMError


def real_array(name: str, value: object, owner: str = "ufm") -> np.ndarray:
    """``value`` as a float64 array; complex, non-numeric or object input is refused (never truncated)."""
    arr = np.asarray(value)
    if arr.dtype.kind == "c":
        raise UFMError(f"'{name}' given to {owner} is complex ({arr.dtype}); the UFM is real -- pass the "
                       "real part explicitly if that is what you mean.")
    if arr.dtype.kind not in "biuf":
        raise UFMError(f"'{name}' given to {owner} must be numeric; got dtype {arr.dtype}.")
    return arr.astype(np.float64, copy=False)
