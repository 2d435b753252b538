# `make serve` bakes the default project and serves it; `make test` runs the template's tests.
# Both work from a clean checkout: they create the virtualenvs they need.

PYTHON ?= python3
VENV := .venv
TOOLS_STAMP := $(VENV)/.tools-installed
SCRATCH := .scratch
SLUG := haystack_service
PORT := 1416

# Haystack sends anonymous usage statistics unless told not to; keep local runs and tests quiet.
export HAYSTACK_TELEMETRY_ENABLED := False

.PHONY: serve test lint format clean

# Tools for baking and testing the template; reinstalled when this Makefile changes.
$(TOOLS_STAMP): Makefile
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet "cookiecutter>=2.6,<3" "cruft>=2.15,<3" "pytest>=8" "ruff>=0.9"
	touch $@

# Bake with the default answers into .scratch/, install it, and serve it. An existing bake is kept, with your edits
# in it: `make serve REBAKE=1` replaces it with a fresh one.
# Settings come from .scratch/$(SLUG)/.env; exported variables (e.g. OPENAI_API_KEY) take precedence.
serve: $(TOOLS_STAMP)
	@if [ -n "$(REBAKE)" ] || [ ! -d $(SCRATCH)/$(SLUG) ]; then \
		rm -rf $(SCRATCH)/$(SLUG) && $(VENV)/bin/cookiecutter "$(CURDIR)" --no-input --output-dir $(SCRATCH); \
	else \
		echo "Serving the existing bake in $(SCRATCH)/$(SLUG) (make serve REBAKE=1 for a fresh one)"; \
	fi
	test -x $(SCRATCH)/venv/bin/python || $(PYTHON) -m venv $(SCRATCH)/venv
	$(SCRATCH)/venv/bin/python -m pip install --quiet -e $(SCRATCH)/$(SLUG)
	cd $(SCRATCH)/$(SLUG) && ../venv/bin/hypercorn $(SLUG).asgi:app --bind 127.0.0.1:$(PORT)

test: $(TOOLS_STAMP)
	$(VENV)/bin/python -m pytest tests -q

lint: $(TOOLS_STAMP)
	$(VENV)/bin/python -m ruff check .
	$(VENV)/bin/python -m ruff format --check .

format: $(TOOLS_STAMP)
	$(VENV)/bin/python -m ruff check --fix .
	$(VENV)/bin/python -m ruff format .

clean:
	rm -rf $(SCRATCH) $(VENV) .pytest_cache .ruff_cache

# The benchmark (see bench/README.md): our service against hayhooks and bare-Quart floors, on loopback.
# `bench` is the full run (results in bench/results/); `bench-smoke` is a few requests per scenario, for CI.
.PHONY: bench bench-smoke
bench: $(TOOLS_STAMP)
	$(VENV)/bin/python bench/run.py

bench-smoke: $(TOOLS_STAMP)
	$(VENV)/bin/python bench/run.py --smoke
