# Two entry points for a fresh machine: `make demo` and `make test`.
# Each creates its own virtualenv and installs what it needs: the database driver only for
# the database that DATABASE_URL selects (none for SQLite, the default).
PYTHON ?= python3
VENV ?= .venv
# Extra pip requirement, e.g. DJANGO_SPEC='Django>=6,<7' for the Django 6 run.
DJANGO_SPEC ?=
BIN := $(VENV)/bin

comma := ,
DRIVER := $(if $(filter postgres% postgis%,$(DATABASE_URL)),postgres,$(if $(filter mysql% mariadb%,$(DATABASE_URL)),mysql))
EXTRAS := dev,aws$(if $(DRIVER),$(comma)$(DRIVER))
# One stamp per set of extras: switching DATABASE_URL installs the missing driver.
STAMP := $(BIN)/.installed-$(subst $(comma),-,$(EXTRAS))

.PHONY: demo test lint docs bench clean

$(STAMP): pyproject.toml
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]' $(if $(DJANGO_SPEC),'$(DJANGO_SPEC)')
	touch $@

demo: $(STAMP)
	$(BIN)/python manage.py demo $(DEMO_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check alphapulse_encryption tests example_project
	$(BIN)/ruff format --check alphapulse_encryption tests example_project
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

docs: $(STAMP)
	$(BIN)/mkdocs build --strict --quiet

# The crypto core against raw AES-GCM (the ORM and migration benchmarks: docs/performance.md).
# Benchmarks live in tests/benchmarks/, outside the installed package.
bench: $(STAMP)
	$(BIN)/python tests/benchmarks/crypto_benchmark.py $(BENCH_ARGS)

clean:
	rm -rf .venv .venv-* build site *.egg-info .pytest_cache .mypy_cache
