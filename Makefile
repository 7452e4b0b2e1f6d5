# Every target creates the environment it needs when missing, in one .venv:
# `make verify` and `make proofs` install the light core (`pip install -e .`: numpy, scipy,
# cvxpy, sympy); every other target installs everything (`pip install -e '.[dev]'`).
# One stamp per install, so the two coexist: the dev install includes the core.
# pip prints errors only (-qq).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
CORE   := $(VENV)/.stamp-core
STAMP  := $(VENV)/.stamp-dev
JOBS   ?= 2

.PHONY: verify test test-slow proofs report bench lint typecheck clean venv venv-core mutants

venv: $(STAMP)
venv-core: $(CORE)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -qq --disable-pip-version-check --upgrade 'pip>=21.3'

$(CORE): setup.cfg pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -qq --disable-pip-version-check -e .
	touch $(CORE)

$(STAMP): setup.cfg pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -qq --disable-pip-version-check -e '.[dev]'
	touch $(STAMP) $(CORE)

## verify: the main job -- proofs, then the theorem confirmed claim by claim on a default suite
verify: $(CORE)
	$(PY) -m proofs_check
	$(VENV)/bin/ufm verify

## test: the default test run (fast hypothesis profile, slow tests skipped); the property
## tests' evidence is summarised in a few lines (every claim: UFM_EVIDENCE_FULL=1 make test)
test: $(STAMP)
	$(PY) -m pytest -m "not slow" -q

## test-slow: the slow tests and the long hypothesis profile; hypothesis' own statistics
## (passing / failing / invalid examples per property) precede the evidence summary
test-slow: $(STAMP)
	HYPOTHESIS_PROFILE=long $(PY) -m pytest -q --hypothesis-show-statistics

proofs: $(CORE)
	$(PY) -m proofs_check

## report: regenerate everything under reports/ from scratch: every shipped spec is swept
## into runs/report/ (--fresh: the records ufm stored there are removed first; nothing else is), the example features file is rewritten, then rendered.
## One BLAS thread per process: these problems are tiny, and threads only contend.
report: $(STAMP)
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(VENV)/bin/ufm report --regenerate --fresh \
		--cache runs/report --out reports --jobs $(JOBS) --example examples/features_example.npz

## bench: solver timings as ratios against the plain-GD baseline
bench: $(STAMP)
	$(PY) -m benchmarks

## mutants: mutation testing of the mathematical core with mutmut ([tool.mutmut] in
## pyproject.toml; slow, outside `make test`): every surviving mutant must be killed by a test
## or listed with its reason in tests/mutants_equivalent.md. MUTANTS='ufm.verify*' restricts it.
mutants: $(STAMP)
	test -x $(VENV)/bin/mutmut || $(PY) -m pip install --quiet -e '.[dev,mutation]'
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(VENV)/bin/mutmut run --max-children $(JOBS) $(MUTANTS)
	$(VENV)/bin/mutmut results

lint: $(STAMP)
	$(VENV)/bin/ruff check ufm tests proofs_check benchmarks
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
