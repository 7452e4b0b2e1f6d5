"""The plain-GD baseline: the best fixed step from a grid.

Steps are tried from the largest down. Each trial runs from the common starting point
until the certified target, divergence, or a budget: the grid budget, lowered to the
best time to target found so far (a step that cannot beat the best cannot win). A trial
that reaches the target scores its time; otherwise trials are ranked by the relative gap
they reach within the (equal) grid budget. The descent stops after two consecutive stable
steps that are both worse than the best one: below the stability limit, plain GD only
slows down as the step shrinks. The winner is then run in full (``--budget``), in
:mod:`benchmarks.__main__`.

:func:`refine` then tries steps between the winner and the next (larger) grid step, a
finer hand-tuning than the grid's: the ratio against it is reported alongside.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

import ufm

from .ladder import STEP_GRID, gd_spec
from .tracker import RunRecord, run


@dataclass
class GridResult:
    winner: float
    trials: list[tuple[float, RunRecord]] = field(default_factory=list)

    def describe(self) -> str:
        parts = []
        for step, rec in self.trials:
            if rec.cert is not None:
                parts.append(f"{step:g}: certified in {rec.cert.time:.3g} s")
            elif rec.stopped == "diverged" or not math.isfinite(rec.final_rel):
                parts.append(f"{step:g}: diverged")
            else:
                parts.append(f"{step:g}: rel. gap {rec.final_rel:.2e} after {rec.time:.3g} s")
        return "; ".join(parts)


def _score(rec: RunRecord) -> tuple[int, float]:
    if rec.cert is not None:
        return (0, rec.cert.time)
    if rec.stopped == "diverged" or not math.isfinite(rec.final_rel):
        return (2, math.inf)
    return (1, rec.final_rel)  # not at the target within the budget: the gap it reached


def best_step(problem: ufm.UFMProblem, x0: np.ndarray, F_star: float, size: str, budget: float,
              grid: tuple[float, ...] = STEP_GRID, log=print, h_scale: float = 1.0,
              momentum: float = 0.0) -> GridResult:
    out = GridResult(winner=math.nan)
    best: tuple[int, float] | None = None
    worse_in_a_row = 0
    for step in sorted(grid, reverse=True):
        cap = budget
        if best is not None and best[0] == 0:
            cap = min(budget, best[1])
        rec = run(problem, gd_spec(step, f"gd step {step:g}", h_scale, momentum), x0, F_star, cap, size)
        out.trials.append((step, rec))
        score = _score(rec)
        log(f"    grid {size}{'' if h_scale == 1 else f' h_scale {h_scale:.3g}'}"
            f"{f' momentum {momentum:g}' if momentum else ''} step {step:>7g}: "
            f"{out.describe().split('; ')[-1]}")
        if best is None or score < best:
            best, out.winner, worse_in_a_row = score, step, 0
        elif score[0] < 2:  # stable but worse
            worse_in_a_row += 1
            if worse_in_a_row >= 2:
                break
    return out


REFINE = (1.25, 1.5, 2.0, 2.5, 3.0, 4.0)


def refine(problem: ufm.UFMProblem, x0: np.ndarray, F_star: float, size: str, grid: GridResult,
           log=print) -> GridResult:
    """Steps ``winner * r`` below the next grid step, each capped at the best time so far.

    Only when the grid's winner reached the certified target (else there is no time to
    beat within the budget). Returns the trials and the refined winner (possibly the
    grid's own).
    """
    out = GridResult(winner=grid.winner)
    won = dict(grid.trials).get(grid.winner)
    if won is None or won.cert is None:
        return out
    best_time = won.cert.time
    larger = [st for st in STEP_GRID if st > grid.winner]
    ceiling = min(larger) if larger else math.inf
    for r in REFINE:
        step = grid.winner * r
        if step >= ceiling:
            break
        rec = run(problem, gd_spec(step, f"gd step {step:g}"), x0, F_star, best_time, size)
        out.trials.append((step, rec))
        log(f"    refine {size} step {step:>7g}: {out.describe().split('; ')[-1]}")
        if rec.cert is not None and rec.cert.time < best_time:
            best_time, out.winner = rec.cert.time, step
    return out
