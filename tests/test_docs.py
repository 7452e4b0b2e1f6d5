"""The documentation is self-contained: nothing points outside the repository, and
docs/theory.md defines the symbols the README, the CLI and the reports use."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from ufm.cli import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parent.parent
# docs/proofs.md and proofs_check/ are maintained separately (their references are fixed there)
EXEMPT = ("proofs_check/", "docs/proofs.md", "tests/test_docs.py")


def _tracked_text_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
        names = out.split()
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: walk the tree
        names = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file() and ".git" not in p.parts]
    keep = (".py", ".md", ".toml", ".cfg", ".txt", ".tex", ".csv", "Makefile")
    return [ROOT / n for n in names if n.endswith(keep) and not n.startswith(EXEMPT) and (ROOT / n).exists()]


def test_no_reference_outside_the_repository():
    bad = []
    for p in _tracked_text_files():
        for i, line in enumerate(p.read_text(errors="replace").splitlines(), 1):
            if re.search(r"\.\./shared|SPEC\.md|DESIGN\.md|SPEC section|\bSPEC\b", line):
                bad.append(f"{p.relative_to(ROOT)}:{i}: {line.strip()[:80]}")
    assert not bad, "references to files users do not have:\n" + "\n".join(bad)


THEORY = (ROOT / "docs" / "theory.md").read_text()


@pytest.mark.parametrize("symbol", [
    "phi(s)", "s*_m", "sigma", "kappa", "c_m", "mu_crit", "a_m", "r_m", "P", "C(Z, b)", "D(Gamma)", "Gamma",
    "L*(Gamma)", "q_i", "`t`", "`G`", "lam_W", "lam_H", "lam_b", "mu = sqrt(lam_W lam_H)", "profile",
    "`nc1`", "`nc1_all`", "`nc2_w`", "`nc2_h`", "`nc3`", "`nc3_dual`", "`bias`", "decoding_accuracy",
    "rel_gap", "lower_bound", "gap_to_theory", "dead class", "margin", "center=", "pal-normalized",
    "not-applicable", "trivial", "collapse", "l = sqrt(lam_W lam_H)",
])
def test_theory_defines_symbol(symbol):
    assert symbol in THEORY, f"docs/theory.md does not define {symbol!r}"


def test_every_document_links_to_the_theory():
    for doc in ("README.md", "docs/metrics_npz.md", "docs/fixed_classifier.md", "docs/networks.md", "reports/README.md"):
        assert "theory.md" in (ROOT / doc).read_text(), doc


def test_help_lists_every_subcommand_with_a_description():
    text = build_parser().format_help()
    for name in COMMANDS:
        assert re.search(rf"^\s+{name}\s+\S", text, re.M), f"`ufm --help` has no description for {name}"
