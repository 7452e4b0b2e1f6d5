"""The default verification suite run by ``ufm verify`` / ``make verify``.

Several K, mixes of multiplicities (with and without single labels, with the full label
set), unequal ``lam_W != lam_H``, with and without bias, ``lam_b = 0``, and one case in
the trivial regime. Each problem is solved with L-BFGS from a seeded random start and
checked claim by claim against the theorem and the certificate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .designs import balanced
from .problem import UFMProblem
from .solvers import solve
from .theory import predict
from .verify import Claim, Verdict, verify


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

    def problem(self) -> UFMProblem:
        return UFMProblem(balanced(self.K, self.profile), self.d, self.lam_W, self.lam_H, self.lam_b, self.bias)


DEFAULT_SUITE: tuple[SuiteCase, ...] = (
    SuiteCase("single-label (Zhu et al.)", 4, "1:5", 4, 5e-3, 5e-3),
    SuiteCase("singles+pairs", 5, "1:3,2:2", 6, 5e-3, 5e-3),
    SuiteCase("lam_W != lam_H, lam_b = 0", 6, "1:2,2:1", 5, 1e-2, 1e-3, 0.0),
    SuiteCase("no bias, three multiplicities", 6, "1:2,2:1,3:1", 8, 2e-3, 8e-3, 0.0, False),
    SuiteCase("no single labels", 5, "2:2,3:1", 4, 1e-3, 4e-3, 1e-3),
    SuiteCase("with the full label set", 4, "1:3,2:1,4:2", 3, 5e-3, 2e-3),
    SuiteCase("K = 10, imbalanced across m", 10, "1:5,2:1", 10, 1e-3, 1e-3, 1e-3),
    SuiteCase("trivial regime (mu above threshold)", 5, "1:2,2:1", 6, 0.2, 0.1),
)


@dataclass
class SuiteOutcome:
    case: SuiteCase
    verdict: Verdict
    solver: dict[str, Any] = field(default_factory=dict)
    extra_claims: list[Claim] = field(default_factory=list)


SuiteHook = Callable[[UFMProblem, Any, Verdict], None]


def run_suite(
    cases: tuple[SuiteCase, ...] = DEFAULT_SUITE, *, seed: int = 0, hooks: tuple[SuiteHook, ...] = (),
    progress: Callable[[str], None] | None = None,
) -> list[SuiteOutcome]:
    """Solve and verify each case; ``hooks(problem, result, verdict)`` may append claims."""
    out = []
    for i, case in enumerate(cases):
        problem = case.problem()
        pred = predict(problem)
        t0 = time.perf_counter()
        result = solve(problem, "lbfgs", rng=seed + i)
        verdict = verify(problem, result.W, result.H, result.b, prediction=pred)
        for hook in hooks:
            hook(problem, result, verdict)
        solver = {"method": result.method, "status": result.status.name, "nit": result.nit,
                  "grad_norm": result.grad_norm, "time": time.perf_counter() - t0, "objective": result.fun}
        out.append(SuiteOutcome(case, verdict, solver))
        if progress:
            progress(f"[{i + 1}/{len(cases)}] {'PASS' if verdict.passed else 'FAIL'}  {case.name}")
    return out
