"""Tests of :mod:`proofs_check`: the checks pass, can fail, and the CLI reports them.

Every deliberately wrong identity below is built with the *same* machinery as the
registered checks (their helper functions, with one coefficient changed) and run
through :func:`proofs_check.run_check`; none of them is registered in the suite.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import sympy as sp

import proofs_check
from proofs_check import (
    Check,
    CheckResult,
    Ledger,
    checks_etf,
    checks_label_sets,
    checks_phase,
    checks_stationarity,
    checks_tagwise,
    run_all,
    run_check,
    selected,
)

ROOT = Path(__file__).resolve().parents[1]
LINE = re.compile(r"^(PASS|FAIL)  (\S+)\s+\(\s*[0-9.]+ s\)  (.+)$")


def _wrong(func) -> CheckResult:
    """Run an unregistered check whose function is ``func(ledger)``."""
    return run_check(Check("deliberately_wrong", "a wrong identity", "test only", func))


def _assert_fails(r: CheckResult) -> None:
    assert not r.passed, f"a wrong identity passed: {r}"
    assert r.residual and "residual" in r.residual, f"no residual reported: {r.residual!r}"
    assert not r.residual.startswith("error"), f"the check crashed instead of failing: {r.residual}"


# --------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def cli_run() -> subprocess.CompletedProcess[str]:
    """One full run of ``python -m proofs_check`` (the whole suite, as ``make proofs``)."""
    return subprocess.run(
        [sys.executable, "-m", "proofs_check"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_cli_exits_zero_with_one_pass_line_per_check(cli_run: subprocess.CompletedProcess[str]) -> None:
    """Exit status 0; exactly one PASS line per registered check, in order; a summary line."""
    out = cli_run.stdout
    assert cli_run.returncode == 0, f"exit {cli_run.returncode}\n{out}\n{cli_run.stderr}"
    names = [c.name for c in selected()]
    lines = [ln for ln in out.splitlines() if LINE.match(ln)]
    got = [LINE.match(ln).group(2) for ln in lines]  # type: ignore[union-attr]
    assert got == names, f"lines do not match the registry:\n{out}"
    assert all(ln.startswith("PASS") for ln in lines), out
    assert re.search(rf"^proofs_check: {len(names)} passed, 0 failed", out, re.M), out


def test_cli_list_and_filter() -> None:
    """``--list`` names every check; ``-k`` filters; an unknown name is a usage error (2)."""
    names = [c.name for c in selected()]
    lst = subprocess.run([sys.executable, "-m", "proofs_check", "--list"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert lst.returncode == 0, lst.stderr
    for n in names:
        assert re.search(rf"^{n}\s", lst.stdout, re.M), f"{n} missing from --list"
    one = subprocess.run([sys.executable, "-m", "proofs_check", "-k", "etf_projector_symbolic"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert one.returncode == 0, one.stdout + one.stderr
    assert len([ln for ln in one.stdout.splitlines() if LINE.match(ln)]) == 1, one.stdout
    bad = subprocess.run([sys.executable, "-m", "proofs_check", "-k", "no_such_check_xyz"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2, bad.stdout + bad.stderr


def test_cli_exit_one_on_failure(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A failing check prints FAIL and its residual, and ``main`` returns 1."""
    from proofs_check import __main__ as cli
    from proofs_check import core

    wrong = Check("zz_wrong_cosine", "cosine -1/K (wrong)", "test only",
                  lambda led: checks_etf.etf_gram_symbolic(led, cosine=lambda k: -1 / k))
    monkeypatch.setitem(core.REGISTRY, wrong.name, wrong)
    rc = cli.main(["-k", "zz_wrong_cosine"])
    out = capsys.readouterr().out
    assert rc == 1, out
    assert re.search(r"^FAIL  zz_wrong_cosine", out, re.M), out
    assert "residual:" in out, out


# --------------------------------------------------------------------------- API
def test_registry_metadata() -> None:
    """Every check has a unique snake_case name, a statement, assumptions and a known kind."""
    checks = selected()
    assert len(checks) >= 20
    assert len({c.name for c in checks}) == len(checks)
    for c in checks:
        assert re.fullmatch(r"[a-z0-9_]+", c.name), c.name
        assert c.statement.strip() and c.assumptions.strip(), c.name
        assert c.kind in proofs_check.KINDS, (c.name, c.kind)
    kinds = {c.kind for c in checks}
    assert {"symbolic", "exact-K", "numeric"} <= kinds, kinds


def test_run_all_subset() -> None:
    """``run_all(names)`` runs the matching checks and returns passing CheckResults."""
    res = run_all(["etf", "label_sets"])
    assert [r.name for r in res] == [c.name for c in selected(["etf", "label_sets"])]
    assert len(res) >= 4
    for r in res:
        assert r.passed and r.residual is None, r
        assert r.seconds >= 0.0


@pytest.mark.slow
@pytest.mark.parametrize("name", [c.name for c in selected()])
def test_every_registered_check_passes(name: str) -> None:
    """Each registered check passes in-process (the CLI test covers this in one run)."""
    (r,) = run_all([name])
    assert r.passed, f"{name} failed: {r.residual}"


# ---------------------------------------------------------------- the checks can fail
def test_wrong_cosine_fails_exact_and_symbolic() -> None:
    """Pairwise cosine -1/K instead of -1/(K-1) fails, with the residual reported."""
    r = _wrong(lambda led: checks_etf.etf_exact(led, range(2, 6), cosine=lambda k: sp.Rational(-1, k)))
    _assert_fails(r)
    assert "cosines" in r.residual  # type: ignore[operator]
    _assert_fails(_wrong(lambda led: checks_etf.etf_gram_symbolic(led, cosine=lambda k: -1 / k)))


def test_wrong_binomial_fails_exact_and_symbolic() -> None:
    """C(K-2, m) in place of C(K-2, m-1) fails for explicit K and for symbolic K, m."""
    wrong = lambda k, m: sp.binomial(k - 2, m)  # noqa: E731
    _assert_fails(_wrong(lambda led: checks_label_sets.label_sets_exact(led, range(2, 6), cI=wrong)))
    _assert_fails(_wrong(lambda led: checks_label_sets.label_sets_symbolic(led, cI=wrong)))
    # wrong J coefficient only (C(K-2, m-1) for both) fails too
    r = _wrong(lambda led: checks_label_sets.label_sets_exact(led, range(3, 5), cJ=checks_label_sets.coef_I))
    _assert_fails(r)


def test_wrong_pal_value_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """Claiming m log(m + (K-m) e^{-2s}) for the tag-wise PAL loss fails."""
    monkeypatch.setattr(checks_tagwise, "pal_claim",
                        lambda k, m, s: m * sp.log(m + (k - m) * sp.exp(-2 * s)))
    _assert_fails(_wrong(lambda led: checks_tagwise.pal_tagwise_exact(led, range(2, 5))))


def test_wrong_phi_fails_stationarity() -> None:
    """phi with mu K sigma in place of mu (K-1) sigma breaks the stationarity identities."""
    r = _wrong(lambda led: checks_stationarity.stationarity(led, ((3, (1, 2)),), norm_coef=3))
    _assert_fails(r)
    assert "I1" in r.residual  # type: ignore[operator]


def test_wrong_threshold_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """a_m without the 1/K factor gives a wrong mu_crit, and the phase check fails."""
    real = checks_phase.spec_a_r
    monkeypatch.setattr(checks_phase, "spec_a_r",
                        lambda k, m, n, N: (real(k, m, n, N)[0] * k, real(k, m, n, N)[1]))
    _assert_fails(_wrong(lambda led: checks_phase.threshold_exact(led, range(3, 5))))


def test_ledger_semantics() -> None:
    """Residuals are simplified before judging; a nonzero one fails; nothing recorded fails."""
    x = sp.Symbol("x", positive=True)
    led = Ledger()
    assert led.zero("trig", sp.sin(x) ** 2 + sp.cos(x) ** 2 - 1)
    assert led.ok and led.residual() is None
    assert not led.zero("off by x", sp.Matrix([0, x]))
    assert not led.ok and "off by x[(1, 0)]" in (led.residual() or "")
    empty = run_check(Check("empty", "nothing", "none", lambda led: None))
    assert not empty.passed and "computed nothing" in (empty.residual or "")
    crash = run_check(Check("crash", "raises", "none", lambda led: 1 / 0))  # type: ignore[func-returns-value]
    assert not crash.passed and (crash.residual or "").startswith("error: ZeroDivisionError")
    sign = Ledger()
    assert sign.positive("x^2 + 1", x**2 + 1)
    assert not sign.positive("x - 1", x - 1)


# ------------------------------------------------ the global-optimality chain can fail
def test_wrong_global_chain_variants_fail() -> None:
    """Each step of the symbolic-K global-optimality chain fails for a wrong ingredient."""
    from proofs_check import checks_global as g

    sig = sp.Symbol("sigma", positive=True)
    wrong = {
        "kappa without the lambda ratio": lambda led: g.factorisation_at_prediction(led, kappa=1 / sig),
        "g_m without the factor K": lambda led: g.pal_gradient_check(
            led, claim=lambda s_, m_: sp.exp(-s_) / (m_ + (g.K - m_) * sp.exp(-s_))),
        "subgradient Z*/sigma^2": lambda led: g.kkt_nuclear(led, subgradient_scale=1 / sig**2),
        "subgradient Z*/((K-1) sigma)": lambda led: g.kkt_nuclear(led, subgradient_scale=1 / ((g.K - 1) * sig)),
        "phi with mu K sigma (KKT)": lambda led: g.kkt_nuclear(led, norm_coef=g.K),
        "C(K-1, m) sets per class": lambda led: g.bias_condition(led, count=lambda k, mm: sp.binomial(k - 1, mm)),
        "phi with mu K sigma (value)": lambda led: g.min_value(led, norm_coef=g.K),
        "a_m without 1/K": lambda led: g.phase_kkt_zero(led, a_scale=g.K),
        "LSE without the multiplicity": lambda led: g.uniqueness_ingredients(led, lse_coef=sp.Integer(1)),
    }
    for what, func in wrong.items():
        r = _wrong(func)
        assert not r.passed, f"{what}: a wrong identity passed"
        _assert_fails(r)


def test_global_chain_is_registered_and_passes() -> None:
    """The seven steps of the chain are registered, symbolic, and pass."""
    res = run_all(["global_"])
    assert len(res) == 7, [r.name for r in res]
    for r in res:
        assert r.passed, f"{r.name}: {r.residual}"
        assert r.kind == "symbolic"


def test_wrong_trivial_bias_fails() -> None:
    """The threshold's bias at W = H = 0: the uniform bias (b = 0, right only for balanced
    label frequencies) or frequencies not divided by the mean multiplicity fail."""
    from proofs_check import checks_thresholds

    _assert_fails(_wrong(lambda led: checks_thresholds.trivial_point_exact(
        led, cases=((3, 3),), bias=lambda f, M, K: [sp.Integer(0)] * K)))
    _assert_fails(_wrong(lambda led: checks_thresholds.trivial_point_exact(
        led, cases=((3, 3),), bias=lambda f, M, K: [sp.log(fk) for fk in f][:-1] + [sp.log(f[-1] / M)])))


# ------------------------------------------------ every check rejects its wrong variant
def test_every_check_rejects_its_wrong_variant() -> None:
    """``python -m proofs_check --mutants``: every registered check has a wrong variant
    (``core.MUTANTS``) and fails on it through a residual (not a crash); the summary line
    says ``N/N``. About 40 s: the wrong variants run at reduced sizes."""
    from proofs_check.core import MUTANTS

    names = [c.name for c in selected()]
    assert sorted(MUTANTS) == sorted(names), set(names) ^ set(MUTANTS)
    run = subprocess.run([sys.executable, "-m", "proofs_check", "--mutants"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    out = run.stdout
    assert run.returncode == 0, out + run.stderr
    got = [ln.split()[1] for ln in out.splitlines() if ln.startswith("REJECTS")]
    assert got == names, out
    assert f"proofs_check --mutants: {len(names)}/{len(names)} checks reject their wrong variant" in out, out


def test_mutants_option_reports_a_blind_check(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A check whose wrong variant passes (or that has none) is reported BLIND and the
    exit status is 1: the --mutants run can fail."""
    from proofs_check import __main__ as cli
    from proofs_check import core

    blind = Check("zz_blind", "P^2 = P", "test only", checks_etf.projector_symbolic)
    monkeypatch.setitem(core.REGISTRY, blind.name, blind)
    monkeypatch.setitem(core.MUTANTS, blind.name, ("the same identity", checks_etf.projector_symbolic))
    assert cli.main(["--mutants", "-k", "zz_blind"]) == 1
    out = capsys.readouterr().out
    assert re.search(r"^BLIND\s+zz_blind", out, re.M) and "0/1 checks reject" in out, out
    monkeypatch.delitem(core.MUTANTS, blind.name)
    assert cli.main(["--mutants", "-k", "zz_blind"]) == 1
    assert "no wrong variant registered" in capsys.readouterr().out
