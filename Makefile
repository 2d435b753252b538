# `make serve` bakes the default project and serves it; `make test` runs the template's tests.
# Both work from a clean checkout: they create the virtualenvs they need.

PYTHON ?= python3
VENV := .venv
TOOLS_STAMP := $(VENV)/.tools-installed
SCRATCH := .scratch
SLUG := haystack_service

# Haystack sends anonymous usage statistics unless told not to; keep local runs and tests quiet.
export HAYSTACK_TELEMETRY_ENABLED := False

.PHONY: serve test lint format clean constraints

# Tools for baking and testing the template; reinstalled when this Makefile changes.
$(TOOLS_STAMP): Makefile
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet "cookiecutter>=2.6,<3" "cruft>=2.15,<3" "pytest>=8" "ruff>=0.9"
	touch $@

# Bake with the default answers into .scratch/, install it, and serve it in development mode, as its README says:
# `python -m $(SLUG) --reload` in the bake's folder, with its hypercorn.toml (access log, graceful shutdown), restarted
# when you edit its wrappers/, llm.py, streaming.py or .env. An existing bake is kept, with your edits in it:
# `make serve REBAKE=1` bakes a fresh one and moves the old one, with your wrappers, .env and data, to
# .scratch/$(SLUG).<date-time> (nothing is deleted; `make clean` deletes .scratch/ whole).
# Settings come from .scratch/$(SLUG)/.env; exported variables (e.g. OPENAI_API_KEY) take precedence; PORT=8000 on
# the command line serves on another port.
# It installs the versions CI tested (the bake's constraints.txt; `make constraints` below), and again only when
# the bake's pyproject.toml or constraints.txt changed since (INSTALL_STAMP).
INSTALL_STAMP := $(SCRATCH)/venv/.installed-$(SLUG)
serve: $(TOOLS_STAMP)
	@if [ -n "$(REBAKE)" ] && [ -d $(SCRATCH)/$(SLUG) ]; then \
		kept=$(SCRATCH)/$(SLUG).$$(date +%Y%m%d-%H%M%S); \
		mv $(SCRATCH)/$(SLUG) $$kept && echo "The previous bake, with your edits, .env and data, is now in $$kept"; \
	fi
	@if [ ! -d $(SCRATCH)/$(SLUG) ]; then \
		$(VENV)/bin/cookiecutter "$(CURDIR)" --no-input --output-dir $(SCRATCH); \
	else \
		echo "Serving the existing bake in $(SCRATCH)/$(SLUG) (make serve REBAKE=1 for a fresh one; this one is kept)"; \
	fi
	@test -x $(SCRATCH)/venv/bin/python || $(PYTHON) -m venv $(SCRATCH)/venv
	@if [ ! -f $(INSTALL_STAMP) ] || [ $(SCRATCH)/$(SLUG)/pyproject.toml -nt $(INSTALL_STAMP) ] \
		|| [ $(SCRATCH)/$(SLUG)/constraints.txt -nt $(INSTALL_STAMP) ]; then \
		echo "Installing $(SCRATCH)/$(SLUG) into $(SCRATCH)/venv"; \
		$(SCRATCH)/venv/bin/python -m pip install --quiet -c $(SCRATCH)/$(SLUG)/constraints.txt -e "$(SCRATCH)/$(SLUG)[pdf]" \
			&& touch $(INSTALL_STAMP); \
	fi
	cd $(SCRATCH)/$(SLUG) && $(if $(filter command line,$(origin PORT)),PORT=$(PORT) )../venv/bin/python -m $(SLUG) --reload

# The engine tests' frozen copies of the examples (tests/engine/examples of the baked project), from src/: after
# changing an example, llm.py or streaming.py (a template test fails until they match).
.PHONY: freeze-examples
freeze-examples: $(TOOLS_STAMP)
	$(VENV)/bin/python tests/freeze_examples.py

test: $(TOOLS_STAMP)
	$(VENV)/bin/python -m pytest tests -q

lint: $(TOOLS_STAMP)
	$(VENV)/bin/python -m ruff check .
	$(VENV)/bin/python -m ruff format --check .

format: $(TOOLS_STAMP)
	$(VENV)/bin/python -m ruff check --fix .
	$(VENV)/bin/python -m ruff format .

# The versions CI tests, pinned in the template's {{cookiecutter.project_slug}}/constraints.txt: a fresh bake in a fresh
# venv, `pip install -e '.[dev]'` without constraints (the newest versions the pyproject.toml ranges allow), then
# `pip freeze`. Run it when pyproject.toml's dependencies change or to move to newer releases; `make test` checks it.
CONSTRAINTS := {{cookiecutter.project_slug}}/constraints.txt
CONSTRAINTS_WORK := $(SCRATCH)/constraints

constraints: $(TOOLS_STAMP)
	rm -rf $(CONSTRAINTS_WORK)
	$(VENV)/bin/cookiecutter "$(CURDIR)" --no-input --output-dir $(CONSTRAINTS_WORK)
	$(PYTHON) -m venv $(CONSTRAINTS_WORK)/venv
	$(CONSTRAINTS_WORK)/venv/bin/python -m pip install --quiet -e "$(CONSTRAINTS_WORK)/$(SLUG)[dev]"
	@python=$(CONSTRAINTS_WORK)/venv/bin/python; \
	version=$$($$python -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	{ \
		echo '# The versions the template'"'"'s CI tested with this engine: every package that'; \
		echo "# pip install -e '.[dev]' installs (pypdf, the pdf extra, included), as pip resolved them for Python $$version."; \
		echo '#'; \
		echo '# Install with them:'; \
		echo "#     pip install -c constraints.txt -e '.[dev]'"; \
		echo '# pyproject.toml keeps the ranges the project accepts; this file picks the tested versions inside them.'; \
		echo "# Without -c constraints.txt pip takes the newest versions the ranges allow (the template's CI tests that too)."; \
		echo '# A dependency you add to pyproject.toml is not pinned here.'; \
		echo '#'; \
		echo '# This file belongs to the template and is updated with the engine (cruft update); do not edit it.'; \
		echo '# The template regenerates it with `make constraints`: a fresh bake in a fresh venv,'; \
		echo "# pip install -e '.[dev]' without constraints, then pip freeze --exclude-editable."; \
		$$python -m pip freeze --exclude-editable; \
	} > "$(CONSTRAINTS).new"
	mv "$(CONSTRAINTS).new" "$(CONSTRAINTS)"
	rm -rf $(CONSTRAINTS_WORK)
	@echo "wrote $(CONSTRAINTS); review the diff (git diff) and run make test"

clean:
	rm -rf $(SCRATCH) $(VENV) .pytest_cache .ruff_cache

# The benchmark (see bench/README.md): our service against hayhooks and bare-Quart floors, on loopback.
# `bench` is the full run (results in bench/results/); `bench-smoke` is a few requests per scenario, for CI.
.PHONY: bench bench-smoke
bench: $(TOOLS_STAMP)
	$(VENV)/bin/python bench/run.py

bench-smoke: $(TOOLS_STAMP)
	$(VENV)/bin/python bench/run.py --smoke
