"""Exceptions and warnings of the package.

``UFMError`` is raised for bad input (a message that names the parameter, the allowed
range, what was given and how to fix it); ``SolverError`` for a real solver failure,
carrying the solver's own status; ``ConvergenceWarning`` when a run stops before its
tolerance and names the option to change.
"""

from __future__ import annotations


class UFMError(ValueError):
    """Bad input to a public entry point of ``ufm``."""


class SolverError(RuntimeError):
    """A solver failed (not merely stopped early); ``status`` is the solver's own."""

    def __init__(self, message: str, status: object = None) -> None:
        super().__init__(message)
        self.status = status


class ConvergenceWarning(UserWarning):
    """A solver stopped before reaching its tolerance."""


def param_error(owner: str, name: str, allowed: str, got: object, fix: str = "") -> UFMError:
    """Build a :class:`UFMError` in the house style.

    ``The 'lam_H' parameter of UFMProblem must be a float in (0, inf). Got -1.``
    """
    msg = f"The '{name}' parameter of {owner} must be {allowed}. Got {got!r}."
    if fix:
        msg += f" {fix}"
    return UFMError(msg)
