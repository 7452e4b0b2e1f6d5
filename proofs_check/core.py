"""Core machinery of :mod:`proofs_check`: checks, a registry, a ledger of residuals.

A *check* is a named sympy computation with a one-line statement and its
assumptions. The check's function receives a :class:`Ledger` and records every
quantity that the identity under test says must vanish (``ledger.zero``) or be
positive (``ledger.positive``). The check passes only if every recorded residual
simplifies to exactly zero (or every sign is proven), and no exception is raised.
Nothing is compared with itself: each residual is the difference between an
object *built and computed* (explicit matrices, sums over label sets, derivatives)
and the closed form the project relies on.
"""

from __future__ import annotations

import importlib
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

__all__ = [
    "KINDS",
    "Check",
    "CheckResult",
    "Ledger",
    "REGISTRY",
    "register",
    "run_check",
    "run_all",
    "selected",
    "MUTANTS",
    "MutantResult",
    "patched",
    "run_mutant",
    "run_mutants",
    "wrong_variant",
    "exp_log_simplify",
]

#: Kinds of evidence a check provides (reported by ``--list`` and in the docs).
KINDS = ("symbolic", "exact-K", "numeric")


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check.

    Attributes
    ----------
    name : str
        Unique identifier of the check (``snake_case``).
    statement : str
        The identity or lemma established, in one line of words.
    assumptions : str
        What the check assumes (symbol domains, the sizes covered).
    passed : bool
        ``True`` iff every recorded residual vanished / every sign was proven.
    residual : str or None
        The first failing residuals (``None`` when the check passes).
    seconds : float
        Wall-clock time of the computation.
    kind : str
        ``"symbolic"``, ``"exact-K"`` or ``"numeric"``.
    """

    name: str
    statement: str
    assumptions: str
    passed: bool
    residual: str | None
    seconds: float
    kind: str = "symbolic"


class Ledger:
    """Collects the residuals of one check.

    Parameters
    ----------
    max_reports : int
        How many failing items are kept verbatim in the residual string.
    """

    def __init__(self, max_reports: int = 3) -> None:
        self.failures: list[str] = []
        self.n_items = 0
        self._max = max_reports

    # -- recording -----------------------------------------------------------------
    def zero(
        self,
        label: str,
        expr: Any,
        simplifier: Callable[[sp.Expr], sp.Expr] | None = None,
    ) -> bool:
        """Record that ``expr`` (scalar, sequence or sympy Matrix) must vanish.

        Each entry is simplified with ``simplifier`` (default: ``expand`` then
        :func:`sympy.simplify`) and must become exactly ``0``. Returns whether it did.
        """
        simp = simplifier or _default_simplify
        self.n_items += 1
        for idx, e in _entries(expr):
            r = sp.sympify(e)
            if r == 0:
                continue
            r = simp(r)
            if r != 0:
                where = f"[{idx}]" if idx is not None else ""
                self._fail(f"{label}{where}: residual = {sp.sstr(r)}")
                return False
        return True

    def positive(self, label: str, expr: Any) -> bool:
        """Record that ``expr`` must be provably positive under the symbols' assumptions."""
        self.n_items += 1
        e = sp.simplify(sp.sympify(expr))
        if e.is_positive is True:
            return True
        self._fail(f"{label}: not provably > 0: {sp.sstr(e)}")
        return False

    def true(self, label: str, condition: bool, detail: str = "") -> bool:
        """Record a plain boolean fact (e.g. a numeric tolerance test)."""
        self.n_items += 1
        if bool(condition):
            return True
        self._fail(f"{label}: false {detail}".rstrip())
        return False

    # -- reporting -----------------------------------------------------------------
    def _fail(self, msg: str) -> None:
        self.failures.append(msg if len(msg) <= 400 else msg[:397] + "...")

    @property
    def ok(self) -> bool:
        """Whether nothing failed (and something was checked at all)."""
        return not self.failures and self.n_items > 0

    def residual(self) -> str | None:
        """A short description of the failures, or ``None``."""
        if self.ok:
            return None
        if not self.failures:
            return "no residual was recorded: the check computed nothing"
        shown = "; ".join(self.failures[: self._max])
        more = len(self.failures) - self._max
        return shown + (f"; ... and {more} more" if more > 0 else "")


def _entries(expr: Any) -> list[tuple[Any, Any]]:
    if isinstance(expr, sp.MatrixBase):
        return [((i, j), expr[i, j]) for i in range(expr.rows) for j in range(expr.cols)]
    if isinstance(expr, (list, tuple)):
        return list(enumerate(expr))
    return [(None, expr)]


def _default_simplify(e: sp.Expr) -> sp.Expr:
    e = sp.expand(e)
    if e == 0:
        return e
    return sp.simplify(e)


def exp_log_simplify(e: sp.Expr) -> sp.Expr:
    """Simplify a *real* residual ``r`` that mixes ``log`` and ``exp``.

    A real ``r`` vanishes iff ``exp(r) = 1``; ``exp(r)`` of a sum of logs and terms
    linear in the exponents is a rational function of exponentials, which
    ``powsimp`` + ``cancel`` decide quickly. Falls back to :func:`sympy.simplify`.
    Returns ``0`` when ``r`` was shown to vanish, otherwise a simplified ``r``.
    Only use it for residuals that are real for the symbols' stated domains.
    """
    ex = sp.powsimp(sp.expand(sp.exp(sp.expand(e))), combine="exp")
    if sp.cancel(sp.together(ex - 1)) == 0:
        return sp.Integer(0)
    r = sp.simplify(e)
    if r == 0:
        return r
    ex = sp.powsimp(sp.expand_power_exp(sp.expand(sp.exp(r))))
    if sp.simplify(sp.together(ex - 1)) == 0:
        return sp.Integer(0)
    return r


@dataclass(frozen=True)
class Check:
    """A named computation; ``func`` records its residuals in a :class:`Ledger`."""

    name: str
    statement: str
    assumptions: str
    func: Callable[[Ledger], None] = field(repr=False)
    kind: str = "symbolic"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")


#: All registered checks, in registration order (module import order).
REGISTRY: dict[str, Check] = {}


def register(
    name: str, statement: str, assumptions: str, kind: str = "symbolic"
) -> Callable[[Callable[[Ledger], None]], Callable[[Ledger], None]]:
    """Decorator: register ``func(ledger)`` as the check ``name``."""

    def deco(func: Callable[[Ledger], None]) -> Callable[[Ledger], None]:
        if name in REGISTRY:
            raise ValueError(f"duplicate check name {name!r}")
        REGISTRY[name] = Check(name, statement, assumptions, func, kind)
        return func

    return deco


def run_check(check: Check) -> CheckResult:
    """Run one check; any exception turns into a FAIL with the error as residual."""
    ledger = Ledger()
    t0 = time.perf_counter()
    try:
        check.func(ledger)
        passed, residual = ledger.ok, ledger.residual()
    except Exception as exc:  # a crashing check is a failing check
        tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
        passed, residual = False, f"error: {tb}"
    seconds = time.perf_counter() - t0
    return CheckResult(
        check.name, check.statement, check.assumptions, passed, residual, seconds, check.kind
    )


#: Check modules in the order of issue 4 (their checks run and print in this order).
MODULES = (
    "checks_etf",
    "checks_label_sets",
    "checks_tagwise",
    "checks_factorisation",
    "checks_stationarity",
    "checks_phase",
    "checks_conjugate",
    "checks_single_label",
    "checks_global",
    "checks_thresholds",
)


def _load_all() -> None:
    """Import every ``checks_*`` module so that its checks register themselves."""
    for mod in MODULES:
        importlib.import_module(f".{mod}", __package__)


def _order_key(check: Check) -> tuple[int, int]:
    """Issue-4 module order first, then registration order (whatever the import order)."""
    mod = getattr(check.func, "__module__", "").rsplit(".", 1)[-1]
    rank = MODULES.index(mod) if mod in MODULES else len(MODULES)
    return rank, list(REGISTRY).index(check.name)


def selected(names: Iterable[str] | None = None) -> list[Check]:
    """The registered checks, optionally filtered by exact names or name substrings.

    Raises
    ------
    KeyError
        If a requested name matches no check.
    """
    _load_all()
    checks = sorted(REGISTRY.values(), key=_order_key)
    if names is None:
        return checks
    out: list[Check] = []
    for key in names:
        hits = [c for c in checks if c.name == key] or [c for c in checks if key in c.name]
        if not hits:
            raise KeyError(f"no check matches {key!r}; use --list to see the names")
        out.extend(c for c in hits if c not in out)
    return out


def run_all(names: Iterable[str] | None = None) -> list[CheckResult]:
    """Run all registered checks (or those matching ``names``) and return their results."""
    return [run_check(c) for c in selected(names)]


# ------------------------------------------------------------------ wrong variants
#: For every check name, ``(what, func)``: a deliberately wrong variant of the identity the
#: check names (one coefficient, formula or object changed), built with the check's own
#: machinery. ``python -m proofs_check --mutants`` runs each and requires it to FAIL: a check
#: that also accepts its wrong variant is blind to what it claims to check.
MUTANTS: dict[str, tuple[str, Callable[[Ledger], None]]] = {}


def wrong_variant(name: str, what: str) -> Callable[[Callable[[Ledger], None]], Callable[[Ledger], None]]:
    """Decorator: register ``func(ledger)`` as the wrong variant of check ``name``;
    ``what`` says in one line what was changed."""

    def deco(func: Callable[[Ledger], None]) -> Callable[[Ledger], None]:
        if name in MUTANTS:
            raise ValueError(f"duplicate wrong variant for {name!r}")
        MUTANTS[name] = (what, func)
        return func

    return deco


@contextmanager
def patched(obj: Any, attr: str, value: Any) -> Iterator[None]:
    """Temporarily replace ``obj.attr`` (a helper of a check module) by ``value``."""
    old = getattr(obj, attr)
    setattr(obj, attr, value)
    try:
        yield
    finally:
        setattr(obj, attr, old)


@dataclass(frozen=True)
class MutantResult:
    """Outcome of one check's wrong variant: ``rejected`` iff the variant failed through a
    residual (a crash or a missing variant does not count as a rejection)."""

    name: str
    what: str
    rejected: bool
    residual: str | None
    seconds: float


def run_mutant(check: Check) -> MutantResult:
    """Run the wrong variant of ``check`` and judge whether the check rejects it."""
    if check.name not in MUTANTS:
        return MutantResult(check.name, "(none)", False, "no wrong variant registered", 0.0)
    what, func = MUTANTS[check.name]
    r = run_check(Check(f"{check.name}~wrong", what, "wrong variant", func, check.kind))
    rejected = (not r.passed) and r.residual is not None and not r.residual.startswith(("error", "no residual"))
    return MutantResult(check.name, what, rejected, r.residual, r.seconds)


def run_mutants(names: Iterable[str] | None = None) -> list[MutantResult]:
    """The wrong variant of every selected check, in the registry's order."""
    return [run_mutant(c) for c in selected(names)]
