"""``ufm verify --thorough``: the property-based tests under the long hypothesis profile.

Runs ``pytest`` in a subprocess on the property tests of the source tree
(``tests/test_properties*.py``, ``tests/test_landscape.py``) with
``HYPOTHESIS_PROFILE=long`` (hundreds of random examples per property, failures kept in
``.hypothesis/``) and ``UFM_EVIDENCE`` pointing to a temporary JSON file, in which the
tests record, per property, the examples tried and, per claim, the largest deviation
observed against its tolerance. Prints that summary (or one JSON object) and returns
0 only when every property held.

The tests live in the repository, not in the installed package: this needs a clone
(``pip install -e .`` from it) with pytest and hypothesis installed (``.[dev]``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .exceptions import UFMError

PROPERTY_FILES = ("test_properties.py", "test_properties_convex.py", "test_landscape.py")


def tests_dir() -> Path:
    """The repository's ``tests/`` next to the package (an editable install)."""
    return Path(__file__).resolve().parent.parent / "tests"


def property_files(root: Path | None = None) -> list[Path]:
    root = tests_dir() if root is None else root
    files = [root / name for name in PROPERTY_FILES if (root / name).is_file()]
    if not files:
        raise UFMError(
            f"`ufm verify --thorough` runs the property tests of the source tree, but {root} has "
            "none. Run it from a clone installed with `pip install -e '.[dev]'`."
        )
    return files


def read_progress(path: Path) -> tuple[int, int, int, int]:
    """``(tests done, tests, examples done, examples planned)`` from the progress file the
    test run writes (``tests/conftest.py``): a ``plan TESTS EXAMPLES`` line, a ``done`` line
    per finished test and a ``.`` per example."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return 0, 0, 0, 0
    tests = planned = 0
    for line in text.splitlines():
        if line.startswith("plan "):
            _, t, e = line.split()
            tests, planned = int(t), int(e)
    return text.count("\ndone\n"), tests, text.count("."), planned


def progress_line(path: Path, elapsed: float) -> str:
    done, tests, examples, planned = read_progress(path)
    return (f"ufm verify --thorough: {examples} examples of about {planned} planned, "
            f"{done}/{tests} tests done, {elapsed:.0f} s elapsed")


def run_thorough(
    *, seed: int | None = 0, max_examples: int | None = None, profile: str = "long",
    say: Callable[[str], None] | None = print, stream: bool = True, every: float = 30.0,
) -> dict[str, Any]:
    """Run the property tests under ``profile`` and return the evidence.

    Parameters
    ----------
    seed : int or None
        ``--hypothesis-seed`` (reproducible draws); None for a fresh random seed.
    max_examples : int, optional
        Override the profile's examples per property (``UFM_MAX_EXAMPLES``).
    say : callable or None
        Where the summary lines go.
    stream : bool
        Pass pytest's own output through while it runs.
    every : float
        Seconds between progress lines (examples done, about how many are planned: the
        properties' ``max_examples``, tests done, elapsed).

    Returns
    -------
    dict
        ``{"passed", "returncode", "time", "profile", "seed", "properties": {name:
        {"examples", "claims": {claim: {"max", "tol", "n", "worst"}}}}, "output"}``.
    """
    files = property_files()
    try:
        import hypothesis  # noqa: F401
        import pytest  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise UFMError(f"`ufm verify --thorough` needs pytest and hypothesis ({exc}); "
                       "install them with `pip install -e '.[dev]'`.") from None
    with tempfile.TemporaryDirectory(prefix="ufm-thorough-") as tmp:
        evidence_path = Path(tmp) / "evidence.json"
        progress_path = Path(tmp) / "progress.txt"
        env = dict(os.environ, HYPOTHESIS_PROFILE=profile, UFM_EVIDENCE=str(evidence_path),
                   UFM_PROGRESS=str(progress_path))
        if max_examples is not None:
            env["UFM_MAX_EXAMPLES"] = str(int(max_examples))
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "--hypothesis-show-statistics", *map(str, files)]
        if seed is not None:
            cmd.insert(-len(files), f"--hypothesis-seed={int(seed)}")
        t0 = time.perf_counter()
        lines: list[str] = []
        finished = threading.Event()

        def report() -> None:  # a line every `every` seconds while pytest runs
            while not finished.wait(every):
                if say is not None:
                    say(progress_line(progress_path, time.perf_counter() - t0))

        ticker = threading.Thread(target=report, daemon=True)
        ticker.start()
        try:
            with subprocess.Popen(cmd, cwd=files[0].parent.parent, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, bufsize=1) as proc:
                assert proc.stdout is not None
                for line in proc.stdout:
                    lines.append(line)
                    if stream and say is not None:
                        say(line.rstrip("\n"))
        finally:
            finished.set()
            ticker.join()
        elapsed = time.perf_counter() - t0
        data: dict[str, Any] = {"properties": {}}
        if evidence_path.is_file():
            data = json.loads(evidence_path.read_text(encoding="utf-8"))
    out = {
        "passed": proc.returncode == 0, "returncode": proc.returncode, "time": elapsed,
        "profile": profile, "seed": seed, "properties": data.get("properties", {}),
        "output": "".join(lines[-200:]),
    }
    if say is not None:
        for line in summary_lines(out):
            say(line)
    return out


def summary_lines(out: dict[str, Any]) -> list[str]:
    """Examples per property and, per claim, the largest deviation against its tolerance."""
    props = out["properties"]
    lines = ["", f"ufm verify --thorough (hypothesis profile {out['profile']!r}, seed {out['seed']}):"]
    n_examples = n_claims = n_checks = 0
    for name, rec in sorted(props.items()):
        lines.append(f"  {name}: {rec['examples']} examples")
        n_examples += rec["examples"]
        for cname, c in sorted(rec["claims"].items()):
            ok = c["max"] <= c["tol"]
            n_claims += 1
            n_checks += c["n"]
            lines.append(f"    {'PASS' if ok else 'FAIL'}  {cname:<32} max {c['max']:.2e} <= {c['tol']:.0e}"
                         f"  ({c['n']} checks)")
    verdict = "ALL PROPERTIES HOLD" if out["passed"] else f"FAILED (pytest exit code {out['returncode']})"
    lines.append(f"ufm verify --thorough: {len(props)} properties, {n_examples} examples, "
                 f"{n_claims} claims checked {n_checks} times in {out['time']:.0f} s -- {verdict}")
    return lines
