# Two commands do all the set-up: `make run` and `make test`. Each creates .venv when it is
# missing and installs the project into it; a second call installs nothing and starts at once.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
DEV_STAMP := $(VENV)/.dev-installed-stamp
PORT   ?= 8501

# What the sandbox loads of llama.cpp is libllama and libggml: the multimodal library (llava/mtmd)
# is never loaded, so it is not built. pip keeps the wheel it builds, so this cost is paid once.
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: run test install system-deps bench sandbox clean

run: $(STAMP)
	$(VENV)/bin/streamlit run app.py --server.port $(PORT)

# -rs: every skip is listed with its reason, so a skipped check is never silent.
test: $(DEV_STAMP) system-deps
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -rs $(PYTEST_ARGS)

install: $(STAMP)

# Reinstall only when the project's requirements change. `make run` installs the app and its
# local model; `make test` adds the test tools (the dev extra).
# Measured on a warm pip cache (2 cores): pip byte-compiles every installed file one by one, 22 of
# the install's 47 s; compileall does it on every core instead. (Not compiling at all is no saving:
# where PYTHONDONTWRITEBYTECODE is set, as in many containers, every start of the app or the sandbox
# would compile streamlit, pandas... again, 4 s each.) A venv made without pip, given the newest pip
# by the system's pip, skips ensurepip's copy (7 s), whose pip 23 then took 43 s to install what
# pip 25+ installs in 25 s. Without a system pip: ensurepip.
PIP_INSTALL := $(PY) -m pip install -q --no-compile
# a file that does not compile (a template, old syntax) is skipped, as pip skips it
COMPILE_ALL := $(PY) -m compileall -q -j 0 $(VENV)/lib >/dev/null 2>&1 || true

define venv_with_pip
@test -x $(PY) || $(PYTHON) -m venv --without-pip $(VENV)
@if ! $(PY) -m pip --version >/dev/null 2>&1; then \
  $(PYTHON) -m pip --python $(PY) install -q --no-compile --upgrade pip 2>/dev/null || \
  { $(PY) -m ensurepip >/dev/null && $(PIP_INSTALL) --upgrade pip; }; \
fi
@$(PY) -m pip show -q llama-cpp-python >/dev/null 2>&1 || echo "compiling llama.cpp for the local model: a few minutes, once; pip keeps the result"
endef

$(STAMP): pyproject.toml
	$(venv_with_pip)
	$(PIP_INSTALL) -e '.[sandbox]'
	@$(COMPILE_ALL)
	@touch $(STAMP)

# One install of everything, not the app's and then everything again (a second resolve and build).
$(DEV_STAMP): pyproject.toml
	$(venv_with_pip)
	@echo "installing the app, its local model and the test tools (pytest, Playwright, hypothesis, the SDKs the wire tests use)"
	$(PIP_INSTALL) -e '.[sandbox,dev]'
	@$(COMPILE_ALL)
	@touch $(STAMP) $(DEV_STAMP)

# The Debian packages the tests drive: chromium (browser tests) and curl (generated code).
system-deps:
	@bash scripts/ensure-system-deps.sh

sandbox: $(STAMP)
	$(PY) -m playground.sandbox

bench: $(DEV_STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
