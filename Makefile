# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
RECOVERY_KEY := recovery-key.demo.txt
DEMO_RECEIPTS := demo-receipts.txt

.PHONY: run test lint install clean-demo

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# axe-core from npm (package-lock.json), injected into pages by tests/e2e for accessibility checks.
# Without npm those checks skip locally, and fail where PORTAL_REQUIRE_BROWSER is set (CI).
$(NPM_STAMP): package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --no-audit --no-fund --loglevel=error && touch $(NPM_STAMP); \
	else echo "npm is not installed: the accessibility checks in tests/e2e cannot run (apt-get install npm)"; fi

# First use: secrets, database at head, queues and keys, demo cases. Then serve on 127.0.0.1:5000.
run: $(STAMP)
	@if [ ! -f instance/secrets.json ]; then \
	  $(BIN)/flask portal init --recovery-key-out $(RECOVERY_KEY) && \
	  $(BIN)/flask portal demo --recovery-key $(RECOVERY_KEY) > $(DEMO_RECEIPTS); \
	else $(BIN)/flask portal init > /dev/null; fi
	@echo; echo "Demo data (fake; real receipts are never stored anywhere):"; cat $(DEMO_RECEIPTS) 2>/dev/null || true
	@echo; echo "The portal: http://127.0.0.1:5000  (stop with Ctrl-C)"
	$(BIN)/flask run --host 127.0.0.1 --port 5000

# The whole suite; also against PostgreSQL when TEST_DATABASE_URL is set. One pytest-xdist worker per core, each
# with its own template and databases (tests/factories.py); --dist loadgroup keeps each xdist_group on one
# worker (the browser tests: one live server and one chromium).
test: $(STAMP) $(NPM_STAMP)
	$(BIN)/python -m pytest -q -n auto --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check .

clean-demo:
	rm -rf instance $(RECOVERY_KEY) $(DEMO_RECEIPTS)
