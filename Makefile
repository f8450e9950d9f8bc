# `make run` and `make test` set up everything they need on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8080
WORKERS ?= 4

.PHONY: install run serve migrate test lint spec fuzz client clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

migrate: install
	$(PY) -m service.manage migrate

## Development server on SQLite (var/fluxer.sqlite3), reloading on change.
run: migrate
	FLUXER_ENV=$${FLUXER_ENV:-development} $(PY) -m uvicorn service.asgi:app --host $(HOST) --port $(PORT) --no-access-log --reload --reload-dir service --reload-dir handlers --reload-dir openapi

## Production-style: several worker processes behind one port (set DATABASE_URL, REDIS_URL, FLUXER_SECRET_KEY).
serve: migrate
	FLUXER_ENV=$${FLUXER_ENV:-production} $(PY) -m uvicorn service.asgi:app --host $(HOST) --port $(PORT) --workers $(WORKERS) --no-access-log

test: install
	$(PY) -m pytest

lint: install
	$(PY) -m ruff check .

spec: install
	$(PY) -m service.manage check-spec

## Schemathesis against a live server, every operation, every check.
fuzz: install
	$(PY) tests/live_schemathesis.py

## Print the OpenAPI document a client generator takes.
client: install
	$(PY) -m service.manage dump-spec > openapi.json
	@echo "wrote openapi.json; see README for generating a client"

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
