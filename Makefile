# Lingxi developer tasks (GNU make). Run `make help` for the list.

VENV        := .venv
PY          ?= $(VENV)/bin/python
STAMP       := $(VENV)/.installed
# Interpreter used to create the venv: prefer python3.11, else python3.
BOOTSTRAP_PY ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)
PIP_FLAGS   ?= --quiet --disable-pip-version-check
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv run migrate serve test clean

help: ## Show this help
	@echo "Lingxi make targets:"
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  %-10s %s\n", $$1, $$2}'
	@echo ""
	@echo "Variables: PY=$(PY)  PYTEST_ARGS='...' (e.g. make test PYTEST_ARGS='-k chat -x')"

venv: $(STAMP) ## Create .venv and install requirements(-dev).txt

$(STAMP): requirements.txt requirements-dev.txt requirements.lock
	@if [ ! -x "$(VENV)/bin/python" ]; then \
		test -n "$(BOOTSTRAP_PY)" || { echo "error: python3 not found" >&2; exit 1; }; \
		echo "Creating $(VENV) with $(BOOTSTRAP_PY)"; \
		"$(BOOTSTRAP_PY)" -m venv "$(VENV)"; \
	fi
	$(VENV)/bin/python -m pip install $(PIP_FLAGS) --upgrade pip
	$(VENV)/bin/python -m pip install $(PIP_FLAGS) -c requirements.lock -r requirements.txt -r requirements-dev.txt
	@touch $@

migrate: venv ## Apply database migrations (app.py migrate)
	$(PY) app.py migrate

run: venv ## Migrate, then start the app (app.py serve)
	$(PY) app.py migrate
	$(PY) app.py serve

serve: venv ## Start the app without migrating
	$(PY) app.py serve

test: venv ## Run the test suite (pass extra args via PYTEST_ARGS=...)
	$(PY) -m pytest $(PYTEST_ARGS)

clean: ## Remove the virtualenv (keeps data/)
	rm -rf $(VENV)
