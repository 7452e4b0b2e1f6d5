"""ufm: multi-label neural collapse in the unconstrained features model.

Solve the regularised UFM with the pick-all-label loss, certify global optimality with a
dual bound, predict the optimum from the theorem (Li, Li, Wang, Qu, ICML 2024) and
compare claim by claim.

>>> import ufm
>>> problem = ufm.UFMProblem(ufm.balanced(5, {1: 3, 2: 2}), d=6, lam_W=5e-3, lam_H=5e-3, lam_b=1e-2)
>>> result = ufm.solve(problem, "lbfgs", rng=0)
>>> ufm.verify(problem, result.W, result.H, result.b).passed
True
"""

from __future__ import annotations

import sys
import types
from importlib import import_module
from typing import TYPE_CHECKING, Any

# Lazy imports (PEP 562): `import ufm` and `ufm --help` do not load scipy, cvxpy or
# matplotlib; each public name is imported from its module on first use.
_LAZY = {
    "Certificate": "certificate", "certify": "certificate",
    "LabelDesign": "designs", "balanced": "designs", "from_counts": "designs",
    "from_indicator": "designs", "imbalanced_pairs": "designs", "imbalanced_single": "designs",
    "random_subset": "designs", "parse_design": "designs",
    "ConvergenceWarning": "exceptions", "SolverError": "exceptions", "UFMError": "exceptions",
    "all_metrics": "metrics",
    "check_grad": "objectives.full", "objective": "objectives.full", "value_and_grad": "objectives.full",
    "UFMProblem": "problem", "Result": "result", "Status": "result", "solve": "solvers",
    "Prediction": "theory", "predict": "theory", "predicted_minimizer": "theory",
    "simplex_etf": "theory", "Verdict": "verify", "verify": "verify",
    "threshold": "thresholds", "ThresholdResult": "thresholds",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .certificate import Certificate, certify
    from .designs import (
        LabelDesign,
        balanced,
        from_counts,
        from_indicator,
        imbalanced_pairs,
        imbalanced_single,
        parse_design,
        random_subset,
    )
    from .exceptions import ConvergenceWarning, SolverError, UFMError
    from .metrics import all_metrics
    from .objectives.full import check_grad, objective, value_and_grad
    from .problem import UFMProblem
    from .result import Result, Status
    from .solvers import solve
    from .theory import Prediction, predict, predicted_minimizer, simplex_etf
    from .thresholds import ThresholdResult, threshold
    from .verify import Verdict, verify


class _Package(types.ModuleType):
    """``ufm.verify`` names a function, as the eager imports made it:
    when the submodule of the same name is imported (which sets it as an attribute of the
    package), the function is bound instead."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SHADOWED and isinstance(value, types.ModuleType):
            value = getattr(value, name, value)
        super().__setattr__(name, value)


_SHADOWED = ("verify",)
sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ufm' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    """The public names only (not this module's own imports such as ``sys`` or ``Any``)."""
    return sorted(__all__)


__version__ = "0.1.0"

__all__ = [
    "Certificate", "certify", "LabelDesign", "balanced", "from_counts", "from_indicator",
    "imbalanced_pairs", "imbalanced_single", "parse_design", "random_subset", "ConvergenceWarning",
    "SolverError", "UFMError", "all_metrics", "check_grad", "objective", "value_and_grad",
    "UFMProblem", "Result", "Status", "solve", "Prediction", "predict", "predicted_minimizer",
    "simplex_etf", "Verdict", "verify", "threshold", "ThresholdResult", "__version__",
]
