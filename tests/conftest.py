"""Shared pytest configuration: hypothesis profiles, seeded generators, and the
evidence summary of the property tests.

Profiles: ``ci`` (default; derandomized, few examples, no deadline, no example
database: the same examples on every machine), ``long`` (``HYPOTHESIS_PROFILE=long``,
used by ``make test-slow`` and ``ufm verify --thorough``: hundreds of examples per
property, random, failures kept in the ``.hypothesis/`` database, which git ignores),
``dev`` (30 random examples). ``UFM_MAX_EXAMPLES`` overrides the long profile's 300
(``ufm verify --thorough --examples N``); properties that set their own count scale with it.

BLAS threads: the tests run one BLAS thread per process unless the caller set the
variables. On a shared two-core machine OpenBLAS' spinning worker threads made small
matrix products up to 100x slower (measured: scipy's L-BFGS-B at n = 20000 took
130-300 ms per iteration with the default threads under load, 1-3 ms with one).
"""

from __future__ import annotations

import json
import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy is imported (see the module docstring)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, Phase, settings  # noqa: E402

# no "explain" phase: on a failure it re-runs the test hundreds of times (minutes here)
PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink)
settings.register_profile(
    "ci", max_examples=12, deadline=None, derandomize=True, database=None, print_blob=True,
    phases=PHASES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long", max_examples=int(os.environ.get("UFM_MAX_EXAMPLES", "300")), deadline=None, derandomize=False, print_blob=True, phases=PHASES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", max_examples=30, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240716)


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001
    """Print the property tests' evidence (examples, largest deviation per claim)."""
    import evidence

    if not evidence.RECORDS or os.environ.get("UFM_EVIDENCE"):
        return  # nothing recorded, or the caller (ufm verify --thorough) prints its own summary
    terminalreporter.section("property evidence (largest deviation per claim)")
    for line in evidence.summary_lines(full=bool(os.environ.get("UFM_EVIDENCE_FULL"))):
        terminalreporter.write_line(line)


def pytest_collection_finish(session):
    """For ``ufm verify --thorough``'s progress: the tests and about how many examples are
    planned (each property's ``max_examples``; hypothesis may run fewer, or a few explicit
    examples more)."""
    if not os.environ.get("UFM_PROGRESS"):
        return
    import evidence

    planned = 0
    for item in session.items:
        st = getattr(getattr(item, "obj", None), "_hypothesis_internal_use_settings", None)
        planned += st.max_examples if st is not None else 1
    evidence.progress(f"\nplan {len(session.items)} {planned}\n")


def pytest_runtest_logfinish(nodeid, location):  # noqa: ARG001
    if os.environ.get("UFM_PROGRESS"):
        import evidence

        evidence.progress("\ndone\n")


def pytest_sessionfinish(session, exitstatus):  # noqa: ARG001
    """Write the evidence as JSON to ``$UFM_EVIDENCE`` (used by ``ufm verify --thorough``)."""
    path = os.environ.get("UFM_EVIDENCE")
    if not path:
        return
    import evidence

    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"profile": os.environ.get("HYPOTHESIS_PROFILE", "ci"), "properties": evidence.RECORDS},
                  fh, indent=2, default=str)
