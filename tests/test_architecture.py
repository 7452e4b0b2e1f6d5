"""The package's layers (contracts in .importlinter, checked by import-linter's ``lint-imports``).

The solvers import no front end (report, sweep, CLI); the objectives (``ufm.objectives``,
losses, fixed classifier) and the certificate import no solver; the solvers and the L-BFGS
engines see the objective only through ``ufm.objectives`` itself (the protocol, ``make_objective``,
the layout), never an implementation module; no two sibling modules of ``ufm``, ``ufm.report``,
``ufm.solvers`` or ``ufm.objectives`` import each other, directly or through others (imports
inside functions count).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import importlinter  # noqa: F401  (the test extra installs it; a missing linter fails here, not silently)

ROOT = Path(__file__).resolve().parents[1]


LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
        "sys.argv = ['lint-imports', '--no-cache', '--no-logo', '.importlinter']; lint_imports_command()"]


def test_import_contracts_are_kept():
    proc = subprocess.run(LINT, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_a_solver_importing_an_objective_implementation_breaks_the_protocol_contract(tmp_path):
    """The contract can fail: a copy of the package whose gradient descent imports the full
    objective's kernel directly (a lazy import, as a shortcut would be written) is refused."""
    shutil.copytree(ROOT / "ufm", tmp_path / "ufm", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    with open(tmp_path / "ufm" / "solvers" / "gradient.py", "a") as fh:
        fh.write("\n\ndef _shortcut():\n    from ..objectives.full import fun_and_grad\n\n    return fun_and_grad\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.run(LINT, cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode != 0
    assert "1 broken" in proc.stdout
    assert "ufm.solvers.gradient -> ufm.objectives.full" in proc.stdout
