"""The size ladder and the solvers compared on it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

import ufm
from ufm.designs import as_rng
from ufm.objectives.grouped import random_start

LAM = 5e-4  # lam_W = lam_H = lam_b on every size
SEED = 0  # the one starting point every solver gets (per size)
INIT_SCALE = 0.1  # the solvers' default init_scale

REL_TARGET = 1e-8  # (F - min F_theory) / |min F_theory|
CERT_TARGET = 1e-6  # certified relative gap (F - D) / |F| of ufm.certificate.certify
EARLY_REL = 1e-2  # the end of the early (nonconvex) phase, for the table of phases
SPEEDUP_TARGET = 10.0  # issue #7: the fastest solver at least this much faster than best-step GD

# plain GD: the literature's step, and the grid the best fixed step is picked from
LITERATURE_STEP = 0.1
LITERATURE_MOMENTUM = 0.9  # the public UFM code: full-batch SGD, lr 0.1, momentum 0.9
DEFAULT_CALL_TARGET = 1.5  # issue #14: the default call within this factor of the fastest configuration
HEAVY_BALL_TARGET = 5.0  # ... and at least this much faster than the best heavy-ball step
STEP_GRID = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)


@dataclass(frozen=True)
class Size:
    name: str
    K: int
    d: int
    profile: str

    def problem(self) -> ufm.UFMProblem:
        return ufm.UFMProblem(ufm.balanced(self.K, self.profile), d=self.d, lam_W=LAM, lam_H=LAM, lam_b=LAM)

    def describe(self) -> str:
        p = self.problem()
        return (f"{self.name}: K={self.K}, d={self.d}, profile {self.profile}, N={p.N}, "
                f"{p.n_vars:,} variables")


LADDER = {
    "S": Size("S", 10, 16, "1:20,2:4"),
    "M": Size("M", 50, 64, "1:10,2:1"),
    "L": Size("L", 200, 256, "1:10,2:1"),
    # d >> K, as in the networks the theory describes (CIFAR-10's K and ResNet's d): the grouped
    # default works in 14 of the 512 dimensions, the GD baselines in all of them
    "W": Size("W", 10, 512, "1:500,2:10"),
}


def start(problem: ufm.UFMProblem) -> np.ndarray:
    """The common starting point: the default call's own (``ufm.solve(p, rng=SEED)``, whose
    grouped solver draws ``W``, ``b`` and one feature per label set, :func:`ufm.objectives.grouped.random_start`),
    so the default call and every row start alike. Its features are equal within each label
    set, which can only help the full-space solvers (nothing within the sets to undo)."""
    return random_start(problem, scale=INIT_SCALE, rng=as_rng(SEED))


@dataclass(frozen=True)
class SolverSpec:
    """A solver as the benchmark runs it: ``ufm.solve(problem, method, x0, **options)``."""

    label: str
    method: str
    options: dict[str, Any] = field(default_factory=dict)
    note: str = ""


# every run: no history (NC metrics cost more than an iteration), no progress bar, and a
# max_iter that leaves the time budget as the only limit
COMMON = {"history_every": 0, "history_metrics": False, "max_iter": 10_000_000}

FAST_SOLVERS = (
    SolverSpec("lbfgs (m=1)", "lbfgs", {"polish_from": 0.0, "group": False},
               "`ufm.solve(p, 'lbfgs', polish_from=0, group=False)`, engine 'auto': the lean numpy L-BFGS "
               "(m = 1) on all N feature columns, iterating to the certified iterate (no hand-over to "
               "Newton-CG), scipy's from the same start if it does not converge"),
    SolverSpec("lbfgs (grouped)", "lbfgs", {"group": True, "polish_from": 0.0},
               "`ufm.solve(p, 'lbfgs', group=True, polish_from=0)`: the same on F restricted to one feature "
               "column per label set (`ufm.objectives.grouped`, exact for any design), in `ufm.objectives.grouped.solver_width` "
               "dimensions when that saves a quarter of d (W: 14 of 512; not at S, M, L); callbacks see the full point"),
    SolverSpec("lbfgs (scipy engine)", "lbfgs", {"engine": "scipy"},
               "scipy L-BFGS-B, m = 20, on the grouped objective (the default `group='auto'`)"),
    SolverSpec("agd", "agd", {}, "Nesterov + backtracking + restart (2 evaluations / iteration)"),
)


def gd_spec(step: float, label: str, h_scale: float = 1.0, momentum: float = 0.0) -> SolverSpec:
    opts: dict[str, Any] = {"step": step, "gtol": 0.0}
    if h_scale != 1.0:
        opts["h_scale"] = h_scale
    if momentum:
        opts["momentum"] = momentum
    return SolverSpec(label, "gd", opts, f"fixed step {step:g}" + (f", h_scale {h_scale:g}" if h_scale != 1.0 else "")
                      + (f", heavy ball (momentum {momentum:g}, PyTorch SGD semantics)" if momentum else ""))
