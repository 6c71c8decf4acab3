# Paydesk developer commands. `make` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Ports of the bundled simulators on the first run (loopback only).
LOCALSTRIPE_PORT ?= 8420
TWILIO_SIM_PORT ?= 8425

.PHONY: help install run worker services browser test lint format bench lock

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements/base.txt requirements/dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/base.txt -r requirements/dev.txt
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the pinned requirements

# Prism (npm) checks every Twilio request against Twilio's published spec in the tests.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: install ## First look: SQLite, in-process tasks, simulators, demo tenant, http://127.0.0.1:8000
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	@trap 'kill $$(jobs -p) 2>/dev/null' EXIT INT TERM; \
	$(PY) -m simulators.localstripe_server --host 127.0.0.1 --port $(LOCALSTRIPE_PORT) --quiet & \
	$(PY) -m simulators.twilio_pay serve --host 127.0.0.1 --port $(TWILIO_SIM_PORT) \
		--stripe-api-base http://127.0.0.1:$(LOCALSTRIPE_PORT) & \
	$(PY) manage.py runserver 127.0.0.1:8000

worker: install ## A Celery worker and beat (needs REDIS_URL)
	$(VENV)/bin/celery -A config worker --beat --loglevel=INFO

services: ## Make sure PostgreSQL and Redis answer on loopback; start them if not
	@if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then \
		echo "starting PostgreSQL"; \
		pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start; \
	fi
	@if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then \
		echo "starting Redis"; \
		redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no; \
	fi
	@for i in $$(seq 1 100); do \
		pg_isready -q -h 127.0.0.1 -p 5432 && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && exit 0; \
		sleep 0.1; \
	done; echo "PostgreSQL or Redis did not come up" >&2; exit 1

browser: ## Debian's chromium and chromium-driver for the browser tests (tests/browser/), if missing
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver)

test: install node_modules/.installed services browser ## Install what the tests need and run them (what CI runs)
	$(VENV)/bin/ruff check --quiet .
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -n 2 -q

lint: install ## ruff lint and format check, import contracts
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/ruff format --check .

format: install ## Apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install services ## Benchmarks: ratios measured side by side in one run
	@for script in bench/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

lock: ## Re-pin requirements/*.txt from the .in files (pip-tools)
	$(VENV)/bin/pip-compile -q --strip-extras --no-header --no-emit-index-url --no-emit-find-links requirements/base.in -o requirements/base.txt
	$(VENV)/bin/pip-compile -q --strip-extras --no-header --no-emit-index-url --no-emit-find-links requirements/dev.in -o requirements/dev.txt
