"""Symbolic (sympy) verification of the identities and theorem steps of the multi-label UFM theorem (docs/proofs.md).

Run ``python -m proofs_check`` (or ``make proofs``). Each check is a sympy
computation with a name, a one-line statement and its assumptions; it returns a
:class:`CheckResult` that passes only when every residual simplifies to exactly 0.
See ``docs/proofs.md`` for what each check establishes.
"""

from __future__ import annotations

from .core import (
    KINDS,
    REGISTRY,
    Check,
    CheckResult,
    Ledger,
    register,
    run_all,
    run_check,
    selected,
)

__all__ = [
    "KINDS",
    "REGISTRY",
    "Check",
    "CheckResult",
    "Ledger",
    "register",
    "run_all",
    "run_check",
    "selected",
]
