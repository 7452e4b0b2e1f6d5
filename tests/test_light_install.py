"""The light core install of `make verify` (issue 25): `ufm verify` and `proofs_check` import
nothing from the extras (setup.cfg), a command that needs an extra says which one, and
`ufm verify` prints one line per problem."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from ufm.cli import EXTRAS, main
from ufm.cli.verify import gap_text, row

ROOT = Path(__file__).resolve().parent.parent

# Every top-level package of the extras, made unimportable (as in a core install).
BLOCKER = textwrap.dedent(f"""
    import importlib.abc, sys
    EXTRA = {sorted(set(EXTRAS) | {"jaxlib", "optax", "sklearn", "scikit_learn", "_pytest"})!r}
    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in EXTRA:
                raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)", name=name)
            return None
    sys.meta_path.insert(0, Blocker())
""")


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCKER + textwrap.dedent(code)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_verify_and_proofs_need_only_the_core() -> None:
    """The suite's steps (L-BFGS, verify, the certificate, cvxpy's relaxation), the CLI's parser
    and the symbolic checks run with every extra unimportable, and load none of them."""
    out = _run("""
        from ufm.cli import build_parser
        from ufm.cli.verify import row
        from ufm.suite import DEFAULT_SUITE, run_suite
        import proofs_check
        from proofs_check.core import REGISTRY, run_check, selected
        build_parser()
        outcomes = run_suite(DEFAULT_SUITE[:2])
        assert all(o.verdict.passed for o in outcomes), [o.verdict.table() for o in outcomes]
        assert any(c.name == "convex_value" for c in outcomes[1].verdict.claims)
        selected()
        assert run_check(REGISTRY["etf_projector_symbolic"]).passed
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in EXTRA)
        print("loaded:", loaded)
    """)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "loaded: []" in out.stdout, out.stdout


def test_a_command_that_needs_an_extra_names_it() -> None:
    """`ufm report` without matplotlib: exit 2 and one line naming the extra, no traceback."""
    out = _run("""
        from ufm.cli import main
        sys.exit(main(["report", "--from", "nowhere-25", "--out", "nowhere-25-out"]))
    """)
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "[report]" in lines[0] and "Traceback" not in out.stderr, out.stderr


def test_the_gap_is_shown_at_the_rounding_floor_not_negative() -> None:
    assert gap_text(-1.1e-16) == "<= 1e-15"
    assert gap_text(1e-15) == "<= 1e-15"
    assert gap_text(1.7e-15) == "1.7e-15"
    assert gap_text(-3e-9) == "-3.0e-09"  # a bound above F beyond rounding is shown as it is
    assert gap_text(None) == "-"


def test_row_is_one_line_with_claims_held_and_time() -> None:
    claims = [SimpleNamespace(passed=True)] * 11 + [SimpleNamespace(passed=False)]
    verdict = SimpleNamespace(claims=claims, passed=False, regime="collapse",
                              certificate=SimpleNamespace(rel_gap=2e-16))
    o = SimpleNamespace(verdict=verdict, case=SimpleNamespace(name="x" * 60), solver={"time": 0.123})
    line = row(o)
    assert "\n" not in line and line.startswith("FAIL  " + "x" * 37 + "...")
    assert "11/12" in line and "<= 1e-15" in line and line.endswith("0.12 s"), line


@pytest.mark.slow
def test_cli_verify_prints_one_screen(capsys) -> None:
    """`ufm verify`: a heading, one line per problem, the verdict and a pointer to --details."""
    from ufm.suite import DEFAULT_SUITE

    assert main(["verify"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(DEFAULT_SUITE) + 5, lines
    assert sum(ln.startswith("PASS  ") for ln in lines) == len(DEFAULT_SUITE)
    assert "THEOREM CONFIRMED" in lines[-2] and "--details" in lines[-1]
