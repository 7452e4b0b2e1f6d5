"""The default verification suite run by ``ufm verify`` / ``make verify``.

Several K, mixes of multiplicities (with and without single labels, with the full label
set), unequal ``lam_W != lam_H``, with and without bias, ``lam_b = 0``, and one case in
the trivial regime, and one imbalanced design where the theorem is silent. Each problem
is solved with L-BFGS from a seeded random start and checked claim by claim against the
theorem and the certificate; the convex relaxation (cvxpy, :mod:`ufm.solvers.convex`) is
solved too, independently, and compared (:func:`convex_claims`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .designs import balanced, from_counts, imbalanced_pairs
from .problem import UFMProblem
from .solvers import solve
from .theory import NOT_APPLICABLE, predict
from .verify import Claim, Verdict, verify

TOL_CONVEX = 1e-6  # relative agreement of cvxpy's min C with L-BFGS and the theorem


@dataclass(frozen=True)
class SuiteCase:
    name: str
    K: int
    profile: str
    d: int
    lam_W: float
    lam_H: float
    lam_b: float = 1e-2
    bias: bool = True
    counts: tuple[tuple[tuple[int, ...], int], ...] | None = None  # a design beyond profiles

    def problem(self) -> UFMProblem:
        if self.counts is not None:
            design = from_counts(self.K, dict(self.counts), kind="imbalanced")
        else:
            design = balanced(self.K, self.profile)
        return UFMProblem(design, self.d, self.lam_W, self.lam_H, self.lam_b, self.bias)


_HEAVY_PAIRS = tuple(imbalanced_pairs(5, 3, heavy=((0, 1), (2, 3)), heavy_count=5).counts_by_set().items())


DEFAULT_SUITE: tuple[SuiteCase, ...] = (
    SuiteCase("single-label (Zhu et al.)", 4, "1:5", 4, 5e-3, 5e-3),
    SuiteCase("singles+pairs", 5, "1:3,2:2", 6, 5e-3, 5e-3),
    SuiteCase("lam_W != lam_H, lam_b = 0", 6, "1:2,2:1", 5, 1e-2, 1e-3, 0.0),
    SuiteCase("no bias, three multiplicities", 6, "1:2,2:1,3:1", 8, 2e-3, 8e-3, 0.0, False),
    SuiteCase("no single labels", 5, "2:2,3:1", 4, 1e-3, 4e-3, 1e-3),
    SuiteCase("with the full label set", 4, "1:3,2:1,4:2", 3, 5e-3, 2e-3),
    SuiteCase("K = 10, 5 per single label, 1 per pair", 10, "1:5,2:1", 10, 1e-3, 1e-3, 1e-3),
    SuiteCase("trivial regime (mu above threshold)", 5, "1:2,2:1", 6, 0.2, 0.1),
    SuiteCase("imbalanced pairs, d = K (theorem silent)", 5, "", 5, 5e-3, 5e-3, 1e-2, counts=_HEAVY_PAIRS),
)


@dataclass
class SuiteOutcome:
    case: SuiteCase
    verdict: Verdict
    solver: dict[str, Any] = field(default_factory=dict)
    extra_claims: list[Claim] = field(default_factory=list)


SuiteHook = Callable[[UFMProblem, Any, Verdict], None]


def convex_claims(problem: UFMProblem, result: Any, verdict: Verdict) -> None:
    """Solve the cvxpy relaxation of ``problem`` and append its claims to ``verdict``.

    Where the theorem applies: ``convex_value`` (``|min C - min phi| / |min phi|``) and
    ``three_way`` (the largest relative disagreement among L-BFGS's ``F``, cvxpy's
    ``min C`` and ``min phi``). Where it does not: ``convex_bound`` (``min C <= F``, as
    ``max(min C - F, 0) / |F|``) and, when the relaxation's minimiser fits in ``d``,
    ``convex_tight`` (``|F - min C| / |F|``: the nonconvex solver reached the relaxation's
    value, so its point is globally optimal without the theorem). ``min C`` is cvxpy's
    value, computed from the relaxation alone (no polishing by the nonconvex objective).
    """
    if problem.loss not in ("pal", "pal-normalized"):
        return
    cvx = solve(problem, "convex", polish=False)
    C = float(cvx.extra["value"])
    F = float(result.fun)
    add = verdict.claims.append
    how = f"cvxpy/{cvx.extra['solver'].lower()}, {cvx.extra['formulation']}, {cvx.extra['solve_time']:.2f} s"
    if verdict.regime != NOT_APPLICABLE:
        th = predict(problem).value
        assert th is not None
        add(Claim("convex_value", f"cvxpy's min C equals min phi ({how})", abs(C - th) / abs(th), TOL_CONVEX))
        spread = (max(F, C, th) - min(F, C, th)) / abs(th)
        add(Claim("three_way", "L-BFGS F, cvxpy min C and min phi agree (max relative spread)", spread, TOL_CONVEX))
    else:
        mag = max(abs(F), 1e-300)
        add(Claim("convex_bound", f"cvxpy's min C <= F of L-BFGS ({how})", max(C - F, 0.0) / mag, TOL_CONVEX))
        if cvx.extra["factored"]:
            add(Claim("convex_tight", f"F = min C: the relaxation is tight at d = {problem.d} >= rank "
                      f"{cvx.extra['rank']}", abs(F - C) / mag, TOL_CONVEX))


def rigorous_claims(problem: UFMProblem, result: Any, verdict: Verdict) -> None:
    """Prove the bracket ``D <= min F <= F`` (:func:`ufm.certificate_rigorous.certify_rigorous`)
    and append its claims to ``verdict``.

    ``rigorous_gap`` (where the float ``certificate`` claim is made): the proved
    relative gap ``(F_hi - D_lo) / |F|``. ``rigorous_value`` (where the theorem applies):
    ``max(|v - D_lo|, |F_hi - v|) / |v|`` for the theorem's value ``v`` -- since ``min F``
    lies in ``[D_lo, F_hi]``, this is a proved bound on ``|min F - v| / |v|``, checked
    against the tolerance of the ``value`` claim.
    """
    if problem.loss not in ("pal", "pal-normalized"):
        return
    from .certificate_rigorous import certify_rigorous
    from .verify import TOL_CERTIFICATE, TOL_VALUE

    cert = certify_rigorous(problem, result.W, result.H, result.b)
    add = verdict.claims.append
    if any(c.name == "certificate" for c in verdict.claims):
        add(Claim("rigorous_gap", f"proved relative gap (F_hi - D_lo)/|F| ({cert.seconds:.2f} s, "
                  "rounding errors bounded)", cert.rel_gap if cert.feasible else float("inf"), TOL_CERTIFICATE))
    if verdict.regime != NOT_APPLICABLE:
        v = predict(problem).value
        assert v is not None
        bound = max(abs(v - cert.lower_bound), abs(cert.objective - v)) / abs(v)
        add(Claim("rigorous_value", "proved: |min F - predicted min F| / |predicted| <= this "
                  "(min F in the proved bracket [D, F])", bound, TOL_VALUE))


def run_suite(
    cases: tuple[SuiteCase, ...] = DEFAULT_SUITE, *, seed: int = 0, hooks: tuple[SuiteHook, ...] = (),
    progress: Callable[[SuiteOutcome, int, int], None] | None = None, convex: bool = True,
    rigorous: bool = False, warmup: bool = True,
) -> list[SuiteOutcome]:
    """Solve and verify each case; ``hooks(problem, result, verdict)`` may append claims.

    With ``convex`` (default) :func:`convex_claims` runs first among the hooks; with
    ``rigorous`` :func:`rigorous_claims` runs last. With ``warmup`` (default) one small
    problem goes through the same steps first, untimed, so that the first case's time
    does not include loading the solvers (several seconds). ``progress(outcome, i, n)`` is
    called as each case finishes (``i`` counts from 1).
    """
    hooks = ((convex_claims,) if convex else ()) + tuple(hooks) + ((rigorous_claims,) if rigorous else ())
    if warmup and cases:
        _warm_up(hooks)
    out = []
    for i, case in enumerate(cases):
        problem = case.problem()
        pred = predict(problem)
        t0 = time.perf_counter()
        # all N feature columns: the nc1 claim then measures within-set collapse instead of
        # inheriting it from the grouped solver (ufm.objectives.grouped), the default elsewhere
        result = solve(problem, "lbfgs", rng=seed + i, group=False)
        verdict = verify(problem, result.W, result.H, result.b, prediction=pred)
        for hook in hooks:
            hook(problem, result, verdict)
        solver = {"method": result.method, "grouped": bool(result.extra.get("group", False)),
                  "status": result.status.name, "nit": result.nit,
                  "grad_norm": result.grad_norm, "time": time.perf_counter() - t0, "objective": result.fun}
        out.append(SuiteOutcome(case, verdict, solver))
        if progress:
            progress(out[-1], i + 1, len(cases))
    return out


def _warm_up(hooks: tuple[SuiteHook, ...]) -> None:
    """Load and exercise what the cases use (scipy, cvxpy and their solvers) on a tiny problem."""
    problem = SuiteCase("warm-up", 3, "1:1", 3, 5e-3, 5e-3).problem()
    result = solve(problem, "lbfgs", rng=0, group=False)
    verdict = verify(problem, result.W, result.H, result.b)
    for hook in hooks:
        hook(problem, result, verdict)
