# Each target sets up .venv itself, so a fresh clone needs only Python 3.11+ and make.
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BASE := $(VENV)/.installed-base

# The interpreter: the system's CPython when it is 3.11+ and can make a venv and compile against
# its own headers, else python3. Distributions build CPython with profile-guided and link-time
# optimisation, which pyenv and plain source builds leave off; on this machine the audit runs
# about 11 % faster under the system's (bench/README.md). `make PYTHON=...` picks another.
SYSTEM_PYTHON := /usr/bin/python3
USABLE := import ensurepip, os, sys, sysconfig; sys.exit(sys.version_info < (3, 11) or not os.path.isfile(os.path.join(sysconfig.get_paths()["include"], "Python.h")))
PYTHON ?= $(shell $(SYSTEM_PYTHON) -c '$(USABLE)' 2>/dev/null && echo $(SYSTEM_PYTHON) || echo python3)

# A venv made by another interpreter is made anew: its compiled modules were built for that one.
INTERPRETER := $(shell $(PYTHON) -c 'import sys; print(sys.executable)')
ifneq ($(shell cat $(VENV)/.interpreter 2>/dev/null),$(INTERPRETER))
.PHONY: $(BASE)
CLEAR := --clear
endif

.PHONY: demo test bench bench-instructions lint format clean

# The policy engine's per-record modules, compiled in place by `pip install -e .` (setup.py):
# editing one reinstalls, so the compiled module never lags behind its source.
COMPILED := $(shell $(PYTHON) -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["tool"]["auditor"]["compiled"])')

# The demo needs the package alone; tests and benchmarks also need the test and dask extras.
$(BASE): pyproject.toml setup.py $(COMPILED)
	$(PYTHON) -m venv $(CLEAR) $(VENV)
	echo '$(INTERPRETER)' > $(VENV)/.interpreter
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $(BASE)

# The extras' requirements alone: `pip install -e '.[test,dask]'` built the package again, the
# mypyc compile included, a minute after $(BASE) had built it.
EXTRAS := $(shell $(PYTHON) -c 'import tomllib; extras = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]; print(*(repr(each) for each in extras["test"] + extras["dask"]))')

$(STAMP): $(BASE)
	$(BIN)/pip install --quiet $(EXTRAS)
	touch $(STAMP)

demo: $(BASE)
	$(BIN)/auditor demo

# The tests' temporary folders go to a RAM disk where there is one: their runs fsync every bag
# file and state commit, and on a busy disk four of test_late_records' runs took 21.5 s against
# 12.3 s there. Bytecode is written even where PYTHONDONTWRITEBYTECODE is set (as on the CI
# machine): without it each pytest worker compiles every test module again at collection (10.3 s
# of CPU against 4.7) and each `python -m auditor` a test starts compiles the package again.
TEST_TMPDIR := $(or $(wildcard /dev/shm),$(TMPDIR),/tmp)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	TMPDIR=$(TEST_TMPDIR) PYTHONDONTWRITEBYTECODE= $(BIN)/pytest -q -n 2 --dist loadfile

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

# Instructions a record under callgrind (valgrind), which the machine's load does not move:
# several minutes, so not part of `make bench`.
bench-instructions: $(STAMP)
	$(BIN)/python bench/bench_instructions.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache demo-output
	find auditor -name '*.so' -delete
	rm -f auditor_native__mypyc*.so
