"""``ufm train``'s files: one ``epoch_NNN.npz`` per epoch in the ``ufm metrics`` layout
(``docs/metrics_npz.md``: ``H`` (d, N), ``Y`` (K, N), ``W``, ``b`` and the lambdas) and a
``summary.json`` comparing the final last layer with the UFM optimum.

Every file is written under a temporary name and moved into place with :func:`os.replace`,
so a reader sees a complete file or none. An output directory is used only if it is new,
empty, or was created by ``ufm train`` (it holds the marker file :data:`MARKER`).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import UFMError
from ..features import save_npz

MARKER = ".ufm-train"


def prepare_out(out: str | Path) -> Path:
    """Create ``out`` (or reuse one ``ufm train`` made, clearing its old files)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UFMError(f"--out {out} is a file; give a directory.")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise UFMError(f"--out {out} is not empty and was not created by `ufm train`; give a new directory.")
    out.mkdir(parents=True, exist_ok=True)
    for old in [*out.glob("epoch_*.npz"), out / "summary.json"]:
        old.unlink(missing_ok=True)
    (out / MARKER).write_text("written by `ufm train`; the directory may be overwritten by it\n")
    return out


def _atomic(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.stem}-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp's 0600 -> the permissions of a plain new file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_npz(path: Path, **arrays: Any) -> None:
    _atomic(path, lambda tmp: save_npz(tmp, **arrays))


def write_json(path: Path, obj: Any) -> None:
    from ..summary import jsonable

    def write(tmp: str) -> None:
        Path(tmp).write_text(json.dumps(jsonable(obj), indent=1, allow_nan=False) + "\n")

    _atomic(path, write)


def epoch_arrays(state: dict[str, np.ndarray], lam: dict[str, float]) -> dict[str, Any]:
    """The ``ufm metrics`` layout of one epoch (plus the held-out features)."""
    return {"H": state["H"], "Y": state["Y"].astype(np.int8), "W": state["W"], "b": state["b"],
            "H_test": state["H_test"], "Y_test": state["Y_test"].astype(np.int8), **lam}


def compare(problem: Any, result: Any) -> dict[str, Any]:
    """The last layer of ``result`` against the UFM optimum at the same lambdas and design.

    ``measured`` holds :func:`ufm.features.measure` (NC metrics, tag-wise structure,
    objective, certificate, theorem); ``c_m`` the measured and predicted tag-wise scales
    with the relative error; ``optimum`` the theorem's ``min F`` and the certified gap
    ``F - lower bound`` of the exported ``(W, H, b)``; ``accuracy`` the last recorded
    accuracies.
    """
    from ..features import measure

    meas = measure(result.W, result.H, result.b, problem.design.Y, lam_W=problem.lam_W,
                   lam_H=problem.lam_H, lam_b=problem.lam_b)
    cm = {}
    for mm, tw in meas["metrics"]["tagwise"].items():
        pred, got = tw["predicted_scale"], tw["scale"]
        cm[mm] = {"measured": got, "predicted": pred,
                  "rel_error": None if pred is None or got is None else abs(got - pred) / pred,
                  "angle_deg": tw["angle_deg"]}
    h = result.history
    acc = {k: h[k][-1] for k in ("train_acc", "test_acc", "train_proto_acc", "test_proto_acc") if h.get(k)}
    m = meas["metrics"]
    return {
        "nc": {k: m[k] for k in ("nc1", "nc1_all", "nc2_w", "nc2_h", "nc3", "nc3_dual", "bias")},
        "c_m": cm,
        "optimum": {"F": meas["objective"]["F"], "min_F_theory": meas["theory"]["value"],
                    "lower_bound": meas["certificate"]["lower_bound"], "gap": meas["certificate"]["gap"],
                    "rel_gap": meas["certificate"]["rel_gap"], "regime": meas["theory"]["regime"]},
        "accuracy": acc,
        "measured": meas,
    }
