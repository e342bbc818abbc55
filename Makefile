# Two commands on a fresh machine: `make serve` and `make test` (each installs what it needs).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_WORKERS ?= 2

.PHONY: serve test check bench package clean web

$(STAMP): pyproject.toml requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade uv
	$(VENV)/bin/uv pip install --python $(PY) -q -e '.[dev]'
	touch $(STAMP)

# State lives in .devdata/ (NT2_DATA_DIR, or ARGS="--data-dir DIR"); ARGS=--in-memory keeps none.
serve: $(STAMP)
	$(PY) -m devserver $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile --durations=15

check: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy app.py chalicelib devserver nt2sync

bench: $(STAMP)
	$(PY) -m bench

package: $(STAMP)
	$(PY) -m infra.package

# Rebuild the committed web/vendor/ bundles from npm (needs node; serve and test do not).
web:
	cd web && npm ci --no-audit --no-fund && node build-vendor.mjs

clean:
	rm -rf $(VENV) build
