# Two commands do all the set-up: `make run` and `make test`. Each creates .venv when it is
# missing and installs the project into it; a second call installs nothing and starts at once.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PORT   ?= 8501

.PHONY: run test install system-deps bench sandbox clean

run: $(STAMP)
	$(VENV)/bin/streamlit run app.py --server.port $(PORT)

# -rs: every skip is listed with its reason, so a skipped check is never silent.
test: $(STAMP) system-deps
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -rs $(PYTEST_ARGS)

install: $(STAMP)

# Reinstall only when the project's requirements change.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[sandbox,dev]'
	@touch $(STAMP)

# The Debian packages the tests drive: chromium (browser tests) and curl (generated code).
system-deps:
	@bash scripts/ensure-system-deps.sh

sandbox: $(STAMP)
	$(PY) -m playground.sandbox

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
