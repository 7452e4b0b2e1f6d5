"""``ufm train``'s files: one ``epoch_NNN.npz`` per epoch in the ``ufm metrics`` layout
(``docs/metrics_npz.md``: ``H`` (d, N), ``Y`` (K, N), ``W``, ``b`` and the lambdas) and a
``summary.json`` comparing the final last layer with the UFM optimum.

Every file is written under a temporary name and moved into place with :func:`os.replace`,
so a reader sees a complete file or none. An output directory is used only if it is new,
empty, or was created by ``ufm train`` (its manifest, ``.ufm-manifest.json``, lists the
files written there: only those are ever replaced or removed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def prepare_out(out: str | Path, *, fresh: bool = False) -> Any:
    """The :class:`~ufm.files.OutputDir` of a training run: new, empty, or one ``ufm train`` made.

    A folder holding an earlier run is refused unless ``fresh``: then that run's files (only
    those its manifest lists) are removed first, so the folder holds one run; anything else
    in it is never touched.
    """
    from ..exceptions import UFMError
    from ..files import DirLock, OutputDir

    folder = OutputDir(out, "train")
    lock = DirLock(folder.path, "ufm train").__enter__()  # held for the run; the kernel drops it at exit
    earlier = sorted(f for f in folder.files if f != ".ufm-lock" and (folder.path / f).exists())
    if earlier and not fresh:
        lock.__exit__()
        raise UFMError(f"--out: {folder.path} holds an earlier ufm train run ({len(earlier)} files, e.g. "
                       f"{earlier[0]}); pass --fresh to replace it, or choose another folder.")
    folder.lock = lock
    folder.adopt(".ufm-lock")
    folder.remove_listed(keep={".ufm-lock"})
    return folder


def write_npz(folder: Any, name: str, **arrays: Any) -> Path:
    """``folder/name`` as a marked ``.npz`` (temporary name, then moved into place)."""
    from ..files import npz_bytes

    return folder.write(name, npz_bytes(**arrays))


def write_json(folder: Any, name: str, obj: Any) -> Path:
    from ..summary import jsonable

    return folder.write(name, json.dumps(jsonable(obj), indent=1, allow_nan=False) + "\n")


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
