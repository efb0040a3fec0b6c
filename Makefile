# The two commands a newcomer needs: `make run` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint bench bench-slow bench-analytics bench-broadcast bench-cluster chat clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/bottega run

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python -m pytest

chat: $(STAMP)
	$(BIN)/bottega chat

lint: $(STAMP)
	$(BIN)/ruff check .

# the end-to-end benchmark runs the code of this commit (before issue 13 §1) beside this checkout's
E2E_BEFORE ?= e990924

bench: $(STAMP)
	$(BIN)/python bench/e2e.py --before $(E2E_BEFORE)
	$(BIN)/python bench/webhook_bench.py
	$(BIN)/python bench/hardening.py
	$(BIN)/python bench/slow_clients.py
	$(BIN)/python bench/analytics.py
	$(BIN)/python bench/console.py
	$(BIN)/python bench/broadcast.py
	$(BIN)/python bench/number_line.py

bench-analytics: $(STAMP)
	$(BIN)/python bench/analytics.py

bench-broadcast: $(STAMP)
	$(BIN)/python bench/broadcast.py --learners 20000 --enforced 10000

bench-slow: $(STAMP)
	$(BIN)/python bench/slow_clients.py

bench-cluster: $(STAMP)
	$(BIN)/python bench/cluster_wait.py

clean:
	rm -rf $(VENV) var .pytest_cache
