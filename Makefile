# trayapp: `make run` starts the app, `make test` runs every test (both create .venv first).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: run headless test bench package clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# Tests run on the versions that `make package` bundles (packaging/constraints.txt), so a
# release of a dependency on PyPI cannot change what CI tests without a commit that says so.
$(VENV)/.test-installed: pyproject.toml packaging/constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c packaging/constraints.txt -e '.[test]'
	touch $(VENV)/.installed $@

run: $(VENV)/.installed
	$(BIN)/trayapp

headless: $(VENV)/.installed
	$(BIN)/trayapp run --headless

test: $(VENV)/.test-installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.test-installed
	$(BIN)/python -m bench.run_all

package: $(VENV)/.test-installed
	$(BIN)/python -m pip install --quiet -c packaging/constraints.txt -e '.[package,prometheus]'
	$(BIN)/python packaging/build.py --locked

clean:
	rm -rf $(VENV) build dist *.egg-info
