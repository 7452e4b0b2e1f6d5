"""``device`` names to an array namespace and a device: ``"cpu"`` (numpy) and ``"cuda"``
(CuPy, else PyTorch, else JAX, whichever is installed and sees a CUDA device)."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from ..exceptions import UFMError

DEVICES = ("cpu", "cuda")


def namespace(device: str) -> tuple[Any, Any]:
    """``(xp, device)`` for ``device`` "cpu" or "cuda"; a clear one-line error when there is none."""
    if device not in DEVICES:
        raise UFMError(f"device must be one of {list(DEVICES)}; got {device!r}.")
    try:
        import array_api_compat  # noqa: F401
    except ImportError:
        raise UFMError("the device path needs array-api-compat: pip install array-api-compat") from None
    if device == "cpu":
        return import_module("array_api_compat.numpy"), None
    tried = []
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            return import_module("array_api_compat.cupy"), None
        tried.append("cupy (no CUDA device)")
    except Exception:  # noqa: BLE001 - not installed, or no driver
        tried.append("cupy (not usable)")
    try:
        import torch

        if torch.cuda.is_available():
            return import_module("array_api_compat.torch"), torch.device("cuda")
        tried.append("torch (no CUDA device)")
    except ImportError:
        tried.append("torch (not installed)")
    try:
        import jax

        gpus = [dv for dv in jax.devices() if dv.platform == "gpu"]
        if gpus:
            return import_module("jax.numpy"), gpus[0]
        tried.append("jax (no GPU device)")
    except ImportError:
        tried.append("jax (not installed)")
    raise UFMError("--device cuda: no GPU array library with a CUDA device here (tried " + ", ".join(tried)
                   + "); install cupy, torch with CUDA or jax[cuda12] on a GPU machine, or use --device cpu.")
