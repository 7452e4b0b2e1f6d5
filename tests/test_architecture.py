"""The package's layers (contracts in .importlinter, checked by import-linter's ``lint-imports``).

The solvers import no front end (report, sweep, CLI); the objective (full, grouped, losses,
fixed classifier) and the certificate import no solver; no two sibling modules of ``ufm``,
``ufm.report`` or ``ufm.solvers`` import each other, directly or through others (imports
inside functions count).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import importlinter  # noqa: F401  (the test extra installs it; a missing linter fails here, not silently)

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    cmd = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
           "sys.argv = ['lint-imports', '--no-cache', '--no-logo', '.importlinter']; lint_imports_command()"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout
