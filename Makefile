# `make run` and `make test` set up everything they need on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8080
WORKERS ?= 4

.PHONY: install run serve migrate test lint spec fuzz compat client clean bench bench-gateway

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
	FLUXER_ENV=$${FLUXER_ENV:-development} $(PY) -m uvicorn service.asgi:app --host $(HOST) --port $(PORT) --no-access-log --ws-max-size 65536 --ws-per-message-deflate false --reload --reload-dir service --reload-dir handlers --reload-dir openapi

## Production-style: several worker processes behind one port (set DATABASE_URL, REDIS_URL, FLUXER_SECRET_KEY).
serve: migrate
	FLUXER_ENV=$${FLUXER_ENV:-production} $(PY) -m uvicorn service.asgi:app --host $(HOST) --port $(PORT) --workers $(WORKERS) --no-access-log --ws-max-size 65536 --ws-per-message-deflate false --timeout-graceful-shutdown 10

test: install
	$(PY) -m pytest

lint: install
	$(PY) -m ruff check .

spec: install
	$(PY) -m service.manage check-spec

## Schemathesis against a live server, every operation, every check.
fuzz: install
	$(PY) tests/live_schemathesis.py

## The official Discord libraries (@discordjs/ws + @discordjs/rest) run a ping-pong bot against a live server.
compat: install
	@command -v node >/dev/null && command -v npm >/dev/null \
		|| { echo "compat needs Node.js 20+ and npm: https://nodejs.org/ (or apt-get install nodejs npm)"; exit 1; }
	$(PY) tests/discordjs/run.py

## Messaging benchmark: the production server against a minimal ASGI baseline (wrk, PostgreSQL; see README).
## DATABASE_URL defaults to postgresql://postgres@127.0.0.1:5432/bench (recreated); BENCH_ARGS passes options.
bench: install
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq wrk >/dev/null; } \
		|| { echo "bench needs wrk: apt-get install wrk"; exit 1; }
	$(PY) bench/run.py $(BENCH_ARGS)

## Gateway fan-out benchmark: 1,000 WebSocket clients in one channel over two server processes joined by Redis
## (PostgreSQL database bench_gw, recreated; Redis at redis://127.0.0.1:6379/0). BENCH_ARGS passes options.
bench-gateway: install
	$(PY) bench/gateway.py $(BENCH_ARGS)

## Print the OpenAPI document a client generator takes.
client: install
	$(PY) -m service.manage dump-spec > openapi.json
	@echo "wrote openapi.json; see README for generating a client"

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
