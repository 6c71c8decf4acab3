# Paydesk developer commands. `make` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Ports of the first run (loopback only): Paydesk and the bundled simulators.
PORT ?= 8000
LOCALSTRIPE_PORT ?= 8420
TWILIO_SIM_PORT ?= 8425

# The PostgreSQL the tests use when DATABASE_URL is unset; when nothing answers there,
# `make test` uses the embedded one (simulators/postgres.py) instead.
PAYDESK_TEST_PG_HOST ?= 127.0.0.1
PAYDESK_TEST_PG_PORT ?= 5432
export PAYDESK_TEST_PG_HOST PAYDESK_TEST_PG_PORT

.PHONY: help install run worker services browsers test lint format bench lock

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements/base.txt requirements/dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/base.txt -r requirements/dev.txt
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the pinned requirements

# Prism (npm) checks every Twilio request against Twilio's published spec in the tests.
# A node_modules that is a link (a git worktree sharing another checkout's install) is
# left alone: npm ci would empty the folder it points to.
node_modules/.installed: package.json package-lock.json
	@if [ -L node_modules ]; then echo "node_modules is a link: using the install it points to"; \
	else npm ci --no-audit --no-fund --loglevel=error; fi
	touch $@

run: install ## First look: PostgreSQL (embedded unless DATABASE_URL), simulators, demo tenant, schedule, http://127.0.0.1:$(PORT)
	$(PY) -m simulators.firstrun --port $(PORT) --localstripe-port $(LOCALSTRIPE_PORT) --twilio-sim-port $(TWILIO_SIM_PORT)

worker: install ## A Celery worker and beat (needs REDIS_URL)
	$(VENV)/bin/celery -A config worker --beat --loglevel=INFO

services: ## Make sure Redis answers on loopback (installed with apt-get and started if not)
	@if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then \
		command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server; }; \
		echo "starting Redis"; \
		redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no; \
	fi
	@for i in $$(seq 1 100); do \
		redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && exit 0; \
		sleep 0.1; \
	done; echo "Redis did not come up" >&2; exit 1

browsers: ## Debian's chromium and chromedriver for the browser tests (tests/browser/), when missing
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

test: install node_modules/.installed services browsers ## Install what the tests need and run them (what CI runs)
	$(VENV)/bin/ruff check --quiet .
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m simulators.postgres run --unless-answers $(PAYDESK_TEST_PG_HOST):$(PAYDESK_TEST_PG_PORT) -- \
		$(PY) -m pytest -n 2 -q

lint: install ## ruff lint and format check, import contracts
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/ruff format --check .

format: install ## Apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install services ## Benchmarks: ratios measured side by side in one run
	@$(PY) -c "import sys; from simulators.postgres import answers; sys.exit(not answers('127.0.0.1', 5432))" || \
		{ echo "make bench needs a PostgreSQL on 127.0.0.1:5432 (user postgres, trust)" >&2; exit 1; }
	@for script in bench/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

lock: ## Re-pin requirements/*.txt from the .in files (pip-tools)
	$(VENV)/bin/pip-compile -q --strip-extras --no-header --no-emit-index-url --no-emit-find-links requirements/base.in -o requirements/base.txt
	$(VENV)/bin/pip-compile -q --strip-extras --no-header --no-emit-index-url --no-emit-find-links requirements/dev.in -o requirements/dev.txt
