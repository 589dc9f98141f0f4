# osilab: the two commands of the README, and a few helpers.
#   make tour   set up .venv and run the tour over the bundled captures (renders notebooks to build/)
#   make test   set up .venv and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: tour test lab-notebooks bench lint clean

# The tour installs only what it runs (the `tour` extra); the tests everything they test.
$(BIN)/.tour-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[tour]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,notebooks,fuzz,lab,tables]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(BIN)/.tour-installed $@

tour: $(BIN)/.tour-installed
	$(BIN)/osilab tour --html-dir build

test: $(BIN)/.installed
	$(BIN)/ruff check osilab tests
	$(BIN)/mypy
	$(BIN)/python -m pytest -ra

lab-notebooks: $(BIN)/.installed
	$(BIN)/osilab tour --lab

bench: $(BIN)/.installed
	$(BIN)/python bench/run.py

lint: $(BIN)/.installed
	$(BIN)/ruff check osilab tests
	$(BIN)/ruff format --check osilab tests

clean:
	rm -rf build .pytest_cache
