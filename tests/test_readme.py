"""The README's commands, run, and their output compared with the text (issue 25).

README.md shows commands in ```console blocks: a line ``$ COMMAND`` and, below it, lines of
what the command prints. Each shown line must appear in the real output, in order (the
README may leave lines out; a line ``...`` says so). Within a line, ``...`` stands for
text left out (times, iteration counts), and each number is compared at the precision
the README prints it: ``1.0909411`` matches 1.09094105197173, not 1.0909420. A block
right after the comment ``<!-- slow -->`` runs with the slow tests only. The ```python
blocks are doctests. docs/theory.md's numbers of the example features file are
recomputed here too.
"""

from __future__ import annotations

import doctest
import math
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

NUMBER = r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?"


@dataclass(frozen=True)
class Shown:
    command: str
    expected: tuple[str, ...]
    slow: bool
    line: int  # where the command is in README.md

    def __str__(self) -> str:
        return f"README.md:{self.line}: $ {self.command}"


def console_blocks(text: str) -> list[Shown]:
    """Every ``$ COMMAND`` of the ```console blocks with the lines shown below it."""
    out: list[Shown] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() != "```console":
            i += 1
            continue
        prev = next((ln.strip() for ln in reversed(lines[:i]) if ln.strip()), "")
        slow = prev == "<!-- slow -->"
        i += 1
        command, start, expected = None, 0, []
        while i < len(lines) and lines[i].strip() != "```":
            ln = lines[i]
            if ln.startswith("$ "):
                if command is not None:
                    out.append(Shown(command, tuple(expected), slow, start))
                command, start, expected = ln[2:].strip(), i + 1, []
            elif ln.strip():
                expected.append(ln)
            i += 1
        if command is not None:
            out.append(Shown(command, tuple(expected), slow, start))
        i += 1
    return out


def line_pattern(shown: str) -> tuple[re.Pattern[str], list[str]]:
    """A regex for one shown line (numbers captured, ``...`` any text, any run of blanks
    any run of blanks) and the numbers as shown."""
    parts, numbers = [], []
    for tok in re.finditer(rf"(\.\.\.)|({NUMBER})|(\s+)|(.)", shown.strip()):
        dots, num, space, other = tok.groups()
        if dots:
            parts.append(".*?")
        elif num:
            parts.append(f"({NUMBER})")
            numbers.append(num)
        elif space:
            parts.append(r"\s+")
        else:
            parts.append(re.escape(other))
    return re.compile(r"\s*" + "".join(parts) + r"\s*$"), numbers


def same_at_shown_precision(shown: str, actual: str) -> bool:
    """``actual`` rounds to ``shown`` at the precision ``shown`` is printed with."""
    mantissa, _, exponent = shown.lower().partition("e")
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    half_unit = 0.5 * 10.0 ** ((int(exponent) if exponent else 0) - decimals)
    a, s = float(actual), float(shown)
    return abs(a - s) <= half_unit * (1 + 1e-9) + 1e-12 * abs(s)


def mismatch(expected: tuple[str, ...], output: str) -> str | None:
    """None when every expected line is found in ``output`` in order; else what is missing."""
    actual = output.splitlines()
    pos = 0
    for want in expected:
        if want.strip() == "...":
            continue
        pattern, numbers = line_pattern(want)
        for j in range(pos, len(actual)):
            m = pattern.match(actual[j])
            if m and all(same_at_shown_precision(s, a) for s, a in zip(numbers, m.groups())):
                pos = j + 1
                break
        else:
            return f"not printed (after line {pos} of the output): {want.strip()!r}"
    return None


SHOWN = console_blocks(README.read_text(encoding="utf-8"))


def test_the_readme_shows_commands() -> None:
    assert len(SHOWN) >= 6 and all(s.expected for s in SHOWN), SHOWN


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for every command, as a reader running them in order; ``examples`` as in the clone."""
    d = tmp_path_factory.mktemp("readme")
    (d / "examples").symlink_to(ROOT / "examples")
    return d


def _run(shown: Shown, workdir: Path) -> None:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("UFM_DEBUG", None)
    proc = subprocess.run(shown.command, shell=True, cwd=workdir, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode in (0, 1), f"{shown}: exit {proc.returncode}\n{proc.stderr}"
    problem = mismatch(shown.expected, proc.stdout)
    assert problem is None, f"{shown}: {problem}\n--- it printed:\n{proc.stdout}"


@pytest.mark.parametrize("shown", [s for s in SHOWN if not s.slow], ids=str)
def test_readme_command_prints_what_the_readme_shows(shown: Shown, workdir: Path) -> None:
    _run(shown, workdir)


@pytest.mark.slow
@pytest.mark.parametrize("shown", [s for s in SHOWN if s.slow], ids=str)
def test_readme_slow_command_prints_what_the_readme_shows(shown: Shown, workdir: Path) -> None:
    _run(shown, workdir)


def test_readme_python_examples_run() -> None:
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks and any(">>>" in b for b in blocks)
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for k, block in enumerate(blocks):
        runner.run(parser.get_doctest(block, {}, f"README.md python block {k}", str(README), 0))
    failed, attempted = runner.summarize(verbose=False)
    assert attempted > 0 and failed == 0


# ---------------------------------------------------------------- the matcher itself
def test_the_matcher_compares_numbers_at_the_shown_precision() -> None:
    out = "  F        1.09094105197173\n  bound    1.0149547167208   (gap 4.23e-01)\nK=5 d=6"
    assert mismatch(("F 1.0909411", "bound 1.0149547 (gap 4.2e-01)", "K=5 d=6"), out) is None
    assert mismatch(("F 1.0909420",), out) is not None  # a digit off at the shown precision
    assert mismatch(("bound 1.0103",), out) is not None  # the stale number of issue 25
    assert mismatch(("K=5 d=7",), out) is not None
    assert mismatch(("bound ... (gap 4.2e-01)", "F 1.09"), out) is not None  # order matters
    assert mismatch(("bound ... (gap ...)",), out) is None


# ---------------------------------------------------------------- docs/theory.md, section 6
def test_theory_quotes_the_example_files_nc1_as_computed() -> None:
    """docs/theory.md and ``ufm.metrics.nc1``'s docstring quote nc1 of the example file three
    ways (single labels; label sets with the plain pseudo-inverse; with the noise cut-off)."""
    from ufm import metrics

    with np.load(ROOT / "examples" / "features_example.npz") as f:
        H, Y = f["H"], f["Y"]
    computed = [metrics.nc1(H, Y), metrics.nc1(H, Y, on="all", noise=0), metrics.nc1(H, Y, on="all")]
    for where, text in (("docs/theory.md", (ROOT / "docs" / "theory.md").read_text(encoding="utf-8")),
                        ("ufm.metrics.nc1", metrics.nc1.__doc__ or "")):
        flat = " ".join(text.split())
        m = re.search(r"nc1 = (\S+?)`?; over label sets the plain pseudo-inverse gives (\S+?),? "
                      r"the noise cut-off (\S+?)[.`\s]", flat)
        assert m, f"{where}: the sentence quoting the example file's nc1 is missing"
        for shown, value in zip(m.groups(), computed):
            assert same_at_shown_precision(shown.strip("`"), str(value)), (where, shown, value)
    assert not math.isclose(computed[1], computed[2])
