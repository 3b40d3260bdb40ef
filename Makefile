# trayapp: `make run` starts the app, `make test` the fast lane of tests, `make test-all` every test
# (CI's; each creates a venv first).
# PYTHON picks the Python (3.11, 3.12 or 3.13): `make run PYTHON=python3.12`. Its venv is .venv for
# python3 and .venv-3.X for any other; a venv that holds another Python is made again.
PYTHON ?= python3
PY_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
PY_OLD     := $(shell $(PYTHON) -c 'import sys; print(sys.version_info < (3, 11))' 2>/dev/null)
ifneq ($(filter-out clean,$(or $(MAKECMDGOALS),run)),)
ifeq ($(PY_VERSION),)
$(error $(PYTHON) not found (or it does not run): name a Python 3.11 or newer, e.g. make run PYTHON=python3.12)
endif
ifeq ($(PY_OLD),True)
$(error $(PYTHON) is Python $(PY_VERSION); trayapp needs 3.11 or newer, e.g. make run PYTHON=python3.12)
endif
endif
ifeq ($(PYTHON),python3)
VENV ?= .venv
else
VENV ?= .venv-$(PY_VERSION)
endif
BIN = $(VENV)/bin
VENV_PYTHON = $(VENV)/.python-$(PY_VERSION)
# The pins `make test` and `make package` install, one file per Python (packaging/lock.py writes them).
CONSTRAINTS = packaging/constraints-$(PY_VERSION).txt
# CI runs these on the Pythons that do not run the whole suite: the core, the CLI, Slack, and the
# history window (its refcount test and the soak under Xvfb) that depends most on PySide6's release.
LANE_TESTS ?= tests/test_rules.py tests/test_settings.py tests/test_store.py tests/test_cli.py \
              tests/test_probes.py tests/test_slack.py tests/test_packaging_files.py \
              tests/test_history_refcount.py tests/test_history_window.py tests/test_soak_xvfb.py \
              tests/test_history_draws_only_data.py tests/test_history_navigation.py
# `make test` leaves out the tests marked slow (soaks, kill -9 series, the PyInstaller build, a real
# Prometheus, real midnights, anything over a few seconds) and those under Xvfb: the unit and
# integration tests. `make test-all` runs them all, as CI does.
# The fast lane runs on TEST_WORKERS processes (pytest-xdist; most tests wait on a real child process, so
# more workers than cores pays); `make test TEST_WORKERS=0` runs it in one.
TEST_WORKERS ?= 4
FAST_LANE = -m "not slow and not xvfb" -n $(TEST_WORKERS)

.PHONY: run headless test test-all test-lane bench package clean

$(VENV_PYTHON):
	@if [ "$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" != "$(PY_VERSION)" ]; then \
	  if [ -e $(VENV) ]; then echo "$(VENV) does not hold Python $(PY_VERSION): removing it to make it again"; rm -rf $(VENV); fi; \
	  echo "creating $(VENV) with $(PYTHON) (Python $(PY_VERSION))" && $(PYTHON) -m venv $(VENV) && \
	  echo "upgrading pip in $(VENV)" && $(BIN)/python -m pip install --quiet --upgrade pip || exit 1; \
	fi
	@touch $@

$(VENV)/.installed: pyproject.toml $(VENV_PYTHON)
	@echo "installing trayapp and its dependencies into $(VENV) (PySide6, pyarrow, pandas: a minute or two the first time)"
	$(BIN)/python -m pip install -e .
	@touch $@

# Tests run on the versions that `make package` bundles ($(CONSTRAINTS)), so a release of a
# dependency on PyPI cannot change what CI tests without a commit that says so.
$(VENV)/.test-installed: pyproject.toml $(CONSTRAINTS) $(VENV_PYTHON)
	@echo "installing trayapp with its test extras into $(VENV), pinned by $(CONSTRAINTS)"
	$(BIN)/python -m pip install -c $(CONSTRAINTS) -e '.[test]'
	@touch $(VENV)/.installed $@

packaging/constraints-%.txt:
	@echo "no pins for Python $* ($@): make test and make package run on the Pythons packaging/ has a constraints file for; make run works on any Python >= 3.11" >&2
	@exit 1

run: $(VENV)/.installed
	@echo "trayapp is starting: look for its icon in your panel's tray; \`$(BIN)/trayapp doctor\` says what works"
	$(BIN)/trayapp

headless: $(VENV)/.installed
	$(BIN)/trayapp run --headless

test: $(VENV)/.test-installed
	$(BIN)/python -m pytest $(FAST_LANE) $(PYTEST_ARGS)

test-all: $(VENV)/.test-installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-lane: $(VENV)/.test-installed
	$(BIN)/python -m pytest $(LANE_TESTS) $(PYTEST_ARGS)

bench: $(VENV)/.test-installed
	$(BIN)/python -m bench.run_all

package: $(VENV)/.test-installed
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e '.[package,prometheus]'
	$(BIN)/python packaging/build.py --locked

clean:
	rm -rf .venv .venv-3.* $(VENV) build dist *.egg-info
