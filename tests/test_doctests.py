"""The examples in the public docstrings run, and every public function documents itself."""

from __future__ import annotations

import doctest
import importlib
import inspect

import pytest

import ufm

MODULES = ("ufm", "ufm.problem", "ufm.designs", "ufm.objectives.full", "ufm.theory", "ufm.certificate", "ufm.verify",
           "ufm.metrics", "ufm.solvers", "ufm.thresholds")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert res.failed == 0, f"{res.failed} docstring example(s) of {name} failed (run pytest --doctest-modules)"
    assert res.attempted > 0


PUBLIC = sorted(n for n in ufm.__all__ if inspect.isfunction(getattr(ufm, n)))


@pytest.mark.parametrize("name", PUBLIC)
def test_public_function_has_numpydoc_sections(name):
    doc = inspect.getdoc(getattr(ufm, name)) or ""
    for section in ("Parameters\n----------", "Returns\n-------", "Examples\n--------"):
        assert section in doc, f"ufm.{name} lacks a '{section.splitlines()[0]}' section"


def test_solve_documents_every_option_of_every_method():
    from ufm.solvers.convex import CONVEX_DEFAULTS
    from ufm.solvers.gradient import AGD_DEFAULTS, GD_DEFAULTS
    from ufm.solvers.lbfgs import LBFGS_DEFAULTS

    doc = inspect.getdoc(ufm.solve) or ""
    for defaults in (GD_DEFAULTS, AGD_DEFAULTS, LBFGS_DEFAULTS, CONVEX_DEFAULTS):
        for option in defaults:
            assert f"``{option}``" in doc, f"ufm.solve does not document the option {option!r}"
