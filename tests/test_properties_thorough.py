"""``ufm verify --thorough``: wiring, summary and one end-to-end run (slow)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ufm import thorough
from ufm.cli import main


def test_property_files_are_found_and_exclude_this_file():
    files = [f.name for f in thorough.property_files()]
    assert "test_properties.py" in files and "test_landscape.py" in files
    assert "test_properties_thorough.py" not in files  # no recursion


def test_missing_tests_directory_is_a_clear_error(tmp_path):
    with pytest.raises(thorough.UFMError, match="source tree"):
        thorough.property_files(tmp_path)


def test_examples_without_thorough_is_rejected(capsys):
    assert main(["verify", "--examples", "3"]) == 2
    assert "--examples only applies with --thorough" in capsys.readouterr().err


def test_summary_marks_each_claim_and_the_verdict():
    out = {"passed": False, "returncode": 1, "time": 12.0, "profile": "long", "seed": 0, "properties": {
        "test_a": {"examples": 7, "claims": {
            "value": {"max": 2e-9, "tol": 1e-7, "n": 7, "worst": "p"},
            "etf": {"max": 3e-6, "tol": 1e-6, "n": 7, "worst": "q"}}}}}
    text = "\n".join(thorough.summary_lines(out))
    assert "test_a: 7 examples" in text
    assert "PASS  value" in text and "FAIL  etf" in text
    assert "1 properties, 7 examples, 2 claims checked 14 times" in text
    assert "FAILED (pytest exit code 1)" in text


@pytest.mark.slow
def test_thorough_end_to_end_json():
    """One example per property through the real command: every property reports its
    examples and claims, and the exit code follows pytest's."""
    proc = subprocess.run(
        [sys.executable, "-m", "ufm.cli", "verify", "--thorough", "--examples", "1", "--json"],
        capture_output=True, text=True, timeout=1800,
    )
    data = json.loads(proc.stdout)
    assert proc.returncode == (0 if data["passed"] else 1)
    assert data["profile"] == "long"
    names = set(data["properties"])
    assert "test_balanced_solution_matches_the_theorem" in names
    assert "test_origin_is_a_strict_saddle_below_the_transition_and_a_minimum_above" in names
    for rec in data["properties"].values():
        assert rec["examples"] >= 1
        assert rec["claims"]


def test_progress_counts_tests_and_examples_of_a_real_run(tmp_path):
    """The test run writes its plan, one mark per example and one per finished test; the
    progress line reads them back (examples done / planned, tests done / total)."""
    path = tmp_path / "progress.txt"
    env = dict(__import__("os").environ, UFM_PROGRESS=str(path), HYPOTHESIS_PROFILE="ci")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_properties.py",
         "-k", "hvp_matches_gradient_differences or certificate_regressions"],
        capture_output=True, text=True, timeout=600, env=env, cwd=thorough.tests_dir().parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    done, tests, examples, planned = thorough.read_progress(path)
    assert (done, tests) == (2, 2)
    assert planned == 8 + 1  # the hvp property's 8 ci examples, and one plain test
    assert 1 <= examples
    line = thorough.progress_line(path, 12.3)
    assert f"{examples} examples of about 9 planned" in line and "2/2 tests done, 12 s elapsed" in line
