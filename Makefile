# Two entry points for a fresh machine: `make demo` and `make test`.
# Each creates its own virtualenv and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
# Extra pip requirement, e.g. DJANGO_SPEC='Django>=6,<7' for the Django 6 run.
DJANGO_SPEC ?=
BIN := $(VENV)/bin

.PHONY: demo test lint docs clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres,mysql,aws]' $(if $(DJANGO_SPEC),'$(DJANGO_SPEC)')
	touch $@

demo: $(BIN)/.installed
	$(BIN)/python manage.py demo $(DEMO_ARGS)

test: $(BIN)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check alphapulse_encryption tests example_project
	$(BIN)/ruff format --check alphapulse_encryption tests example_project
	$(BIN)/mypy

docs: $(BIN)/.installed
	$(BIN)/mkdocs build --strict --quiet

clean:
	rm -rf .venv .venv-* build site *.egg-info .pytest_cache .mypy_cache
