"""Sweep records on disk: one JSON file per cell, written atomically, read back validated.

A record carries a checksum of its content; :func:`read_record` returns it only when it
parses, has this package's schema, its file name is its key, the key is the hash of its
cell and the checksum matches. :func:`load` gives every valid record as a DataFrame row.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .grid import SCHEMA, canonical, cell_key

__all__ = ["read_record", "read_records", "scan", "Scan", "load", "write_record", "clean_tmp", "checksum",
           "failed_record", "is_failed", "unconverged"]


def checksum(record: Mapping[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "checksum"}
    return hashlib.sha256(canonical(body).encode()).hexdigest()


def write_record(out: Path, record: dict[str, Any], run_id: str) -> None:
    record["run"]["id"] = run_id
    record["checksum"] = checksum(record)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{record['key'][:12]}-", suffix=".json", dir=out)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(record, fh, allow_nan=False, separators=(",", ":"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out / f"{record['key']}.json")
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_record(path: Path) -> dict[str, Any] | None:
    """The record at ``path`` if it is complete and intact, else None.

    Valid means: parses as JSON, has this package's schema, its name is its key, the key
    is the hash of its cell, and its checksum matches its content.
    """
    from ..files import read_regular

    try:
        rec = json.loads(read_regular(path))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(rec, dict) or rec.get("schema") != SCHEMA or rec.get("key") != path.stem:
        return None
    try:
        if cell_key({**rec["cell"]}) != rec["key"] or checksum(rec) != rec.get("checksum"):
            return None
    except (KeyError, TypeError, ValueError):
        return None
    return rec


def clean_tmp(out: Path) -> None:
    """Remove temporary record files left by a killed writer (call only under the folder's lock)."""
    for tmp in out.glob(".tmp-*.json"):
        tmp.unlink(missing_ok=True)


def is_failed(rec: Mapping[str, Any]) -> bool:
    """A record of a cell whose computation raised (``rec["failed"]`` holds the error)."""
    return rec.get("failed") is not None


SCHEDULED = ("sgd", "adam", "network")  # fixed schedules: stopping at the last epoch is the plan
CONVERGED = ("CONVERGED_GTOL", "CONVERGED_FTOL", "OPTIMAL")


def unconverged(rec: Mapping[str, Any]) -> str | None:
    """The status of a cell whose solver ran but did not converge (diverged, stopped at
    ``max_iter``, line search failed, ...), else None. A cell outside the theorem is not
    one; a fixed-schedule solver (sgd, adam, network) that ran all its epochs is not one."""
    if is_failed(rec):
        return None
    status = str(rec.get("summary", {}).get("status", ""))
    if status in CONVERGED or (status == "MAX_ITER" and rec.get("cell", {}).get("solver") in SCHEDULED):
        return None
    return status or "UNKNOWN"


def failed_record(cell: Mapping[str, Any], exc: BaseException, version: str) -> dict[str, Any]:
    """The record of a cell that raised: its cell and the error, so the sweep goes on."""
    return {"schema": SCHEMA, "key": cell["key"], "spec": cell["spec"], "params": cell["params"],
            "cell": {k: cell[k] for k in ("problem", "solver", "options", "seed", "history")},
            "failed": {"type": type(exc).__name__, "message": " ".join(str(exc).split())[:2000]},
            "ufm_version": version}


@dataclass
class Scan:
    """What :func:`scan` found under a folder: valid records, failed cells, unreadable files."""

    records: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    invalid: list[Path] = field(default_factory=list)


def scan(path: str | Path, *, recursive: bool = True) -> Scan:
    """Every record file under ``path``, sorted into valid, failed and invalid (corrupt, partial)."""
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"No sweep directory {root}")
    files: Iterable[Path] = root.rglob("*.json") if recursive else root.glob("*.json")
    out = Scan()
    for f in sorted(files):
        if len(f.stem) != 64 or not all(c in "0123456789abcdef" for c in f.stem):
            continue
        rec = read_record(f)
        if rec is None:
            out.invalid.append(f)
        elif is_failed(rec):
            out.failed.append(rec)
        else:
            out.records.append(rec)
    out.records.sort(key=lambda r: (r["spec"], r["key"]))
    out.failed.sort(key=lambda r: (r["spec"], r["key"]))
    return out


def read_records(path: str | Path, *, recursive: bool = True) -> list[dict[str, Any]]:
    """Every valid record of a finished cell under ``path`` (sorted by spec, then key).

    Corrupt files and records of failed cells are left out; :func:`scan` lists them.
    """
    return scan(path, recursive=recursive).records


def _flat(rec: Mapping[str, Any]) -> dict[str, Any]:
    s, p = rec["summary"], rec["summary"]["problem"]
    th, m = s["theory"], s["metrics"] or {"tagwise": {}}
    row: dict[str, Any] = {
        "spec": rec["spec"], "key": rec["key"], "solver": rec["cell"]["solver"], "seed": rec["cell"]["seed"],
        "K": p["K"], "d": p["d"], "N": p["N"], "kind": p["kind"], "lam_W": p["lam_W"], "lam_H": p["lam_H"],
        "lam_b": p["lam_b"], "bias": p["bias"], "loss": p["loss"], "mu": th["mu"],
        "mu_crit": th["mu_crit"], "regime": th["regime"], "objective": s["objective"],
        "theory_value": th["value"], "gap_to_theory": s["gap_to_theory"],
        "cert_gap": s.get("certificate", {}).get("rel_gap"), "status": s["status"], "nit": s["nit"],
        "verified": s["verified"], "claims_passed": sum(c["passed"] for c in s["claims"]),
        "claims": len(s["claims"]), "description": p["description"],
    }
    for name in ("nc1", "nc1_all", "nc2_w", "nc2_h", "nc3", "nc3_dual", "decoding_accuracy",
                 "norm_W", "norm_H"):
        row[name] = m.get(name)
    row["bias_spread"] = m.get("bias")
    for mm, tw in m["tagwise"].items():
        row[f"angle_{mm}"], row[f"scale_{mm}"] = tw["angle_deg"], tw["scale"]
        row[f"c_{mm}"] = th["c"].get(mm)
    for mm, v in th["s"].items():
        row[f"s_{mm}"] = v
    for k, v in rec["params"].items():
        row[f"param.{k}"] = canonical(v) if isinstance(v, (dict, list)) else v
    row["time"] = rec["timing"]["solve"]
    row["record"] = rec
    return row


def load(path: str | Path, *, recursive: bool = True) -> Any:
    """The records under ``path`` as a :class:`pandas.DataFrame`, one row per cell.

    Columns: the problem (``K, d, N, kind, lam_W, lam_H, lam_b, bias, loss, mu``), the
    theory (``regime, mu_crit, theory_value, s_m, c_m``), the outcome (``objective,
    gap_to_theory, cert_gap, status, nit, verified``), the metrics (``nc1 ... norm_H``, ``bias_spread``,
    ``angle_m``/``scale_m`` per multiplicity), the spec's axis values (``param.*``), the
    solve wall time (``time``) and the full record (``record``, a dict).
    """
    import pandas as pd

    return pd.DataFrame([_flat(r) for r in read_records(path, recursive=recursive)])
