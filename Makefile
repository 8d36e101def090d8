# The two commands of the README. Everything else is an implementation detail.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench clean

# Bytecode is cached for everything make starts. Where PYTHONDONTWRITEBYTECODE is set (some CI
# images set it), every test worker and every `modelarium` subprocess compiled the project (and
# pytest rewrote every test module) from source again: 1.5-2 s per process start.
unexport PYTHONDONTWRITEBYTECODE

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# --no-compile: each module is compiled (and cached, see above) the first time it is imported;
# compiling every installed package up front was 30 s of a 50 s install.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --no-compile -e '.[test]'
	touch $(STAMP)

## make run: install into .venv if needed and start `modelarium up` (SQLite, ./var, shell)
run: $(STAMP)
	$(BIN)/modelarium up

## make test: install into .venv if needed, then ruff, the layer contracts and the whole suite
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/ruff format --check .

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
