# Studio: `make run` serves it, `make test` tests it. Both set everything up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEPS   := $(shell sha1sum pyproject.toml | cut -c1-12)
PG_URL    ?= postgres://postgres@127.0.0.1:5432/studio
REDIS_TEST_URL ?= redis://127.0.0.1:6379/15

.PHONY: run test test-sqlite test-services install install-dev browser sandbox-deps lint bench worker help faults faults-short

help:
	@echo "make run    set up and serve Studio on http://127.0.0.1:$${PORT:-8000} (UI, API, worker)"
	@echo "make test   set up and run the whole suite (SQLite+SqliteHuey, then PostgreSQL+Redis)"
	@echo "make bench  benchmarks: run latency/throughput vs raw Huey, log run, dashboard views"
	@echo "            (one section: make bench ONLY=latency|throughput|logs|dashboard|api;"
	@echo "            targets judged on the median of INVOCATIONS=3 invocations)"
	@echo "make faults the fault-injection suite (>= 1,000 runs; faults-short: <= 3 minutes)"
	@echo "make lint   import contracts + ruff check + format check"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed-$(DEPS): | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	rm -f $(VENV)/.installed-*; touch $@

$(VENV)/.installed-dev-$(DEPS): | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[dev]"
	rm -f $(VENV)/.installed-dev-*; touch $@

install: $(VENV)/.installed-$(DEPS)
install-dev: $(VENV)/.installed-dev-$(DEPS)

run: install sandbox-deps
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py bootstrap
	exec $(BIN)/python manage.py serve

worker: install sandbox-deps
	exec $(BIN)/python manage.py run_huey

# The browser tests drive Debian's Chromium (Playwright cannot download its own here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "Chromium is missing: run 'sudo apt-get install -y chromium'" >&2; exit 1; fi; }

# Runs are sandboxed with the kernel's namespaces (no package needed). Runs are kept off the
# host's loopback by an iptables owner rule when Studio runs as root, and by user-mode networking
# (slirp4netns) when it does not (README: "What a run can reach"); both are installed as root.
sandbox-deps:
	@for tool in iptables slirp4netns; do \
	  command -v $$tool >/dev/null 2>&1 && continue; \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && apt-get install -y -qq $$tool >/dev/null; \
	  else \
	    echo "note: $$tool is missing: 'sudo apt-get install -y $$tool' (iptables: used as root;" \
	      "slirp4netns: keeps runs off the host's loopback when Studio is not root)" >&2; \
	  fi; \
	done

test: install-dev browser sandbox-deps
	@echo "== Import contracts (lint-imports) =="
	$(BIN)/lint-imports --no-cache
	$(MAKE) --no-print-directory test-sqlite
	$(MAKE) --no-print-directory test-services

test-sqlite: install-dev
	@echo "== Suite on SQLite + SqliteHuey =="
	env -u DATABASE_URL -u REDIS_URL $(BIN)/python -m pytest

# Under CI=true a missing PostgreSQL or Redis fails the run; elsewhere it is skipped out loud.
test-services: install-dev
	@echo "== Suite on PostgreSQL + Redis =="
	@if $(BIN)/python scripts/services_up.py "$(PG_URL)" "$(REDIS_TEST_URL)"; then \
	  DATABASE_URL="$(PG_URL)" REDIS_URL="$(REDIS_TEST_URL)" $(BIN)/python -m pytest && \
	  echo "== Fault-injection suite, short (private PostgreSQL + Redis) ==" && \
	  $(BIN)/python -m tests.faults --short; \
	elif [ "$$CI" = "true" ]; then \
	  echo "PostgreSQL or Redis is not reachable and CI=true: failing rather than skipping." >&2; exit 1; \
	else \
	  echo "*** SKIPPED the PostgreSQL + Redis half: services not reachable (see above). ***" >&2; \
	fi

# ONLY=<section>[,<section>] runs only those (latency, throughput, logs, dashboard, api).
bench: install
	$(BIN)/python manage.py bench $(if $(ONLY),--only $(ONLY)) $(if $(INVOCATIONS),--invocations $(INVOCATIONS))

lint: install-dev
	$(BIN)/lint-imports --no-cache
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The fault-injection suite (tests/faults): a private PostgreSQL + Redis on free ports, the web
# server and three workers, a mixed workload with faults injected; prints the invariants table.
faults: install
	$(BIN)/python -m tests.faults $(if $(SEED),--seed $(SEED))

faults-short: install
	$(BIN)/python -m tests.faults --short $(if $(SEED),--seed $(SEED))
