# Two commands do all the set-up: `make run` and `make test`. Each creates .venv when it is
# missing and installs the project into it; a second call installs nothing and starts at once.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
DEV_STAMP := $(VENV)/.dev-installed-stamp
PORT   ?= 8501

# What the sandbox loads of llama.cpp is libllama and libggml: the multimodal library (llava/mtmd)
# and the command-line tools' library (llama-common, more than half the compile: see the .cmake
# file) are never loaded, so they are not built. pip keeps the wheel it builds: paid once.
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF -DCMAKE_PROJECT_llama.cpp_INCLUDE=$(CURDIR)/scripts/llama-cpp-lean.cmake
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)

# Python keeps the bytecode of what it imports in the venv, even where the machine says not to (many
# containers set PYTHONDONTWRITEBYTECODE): otherwise every start of the app or the sandbox compiles
# streamlit, pandas, llama_cpp... again (3-7 s each; the suite ran 76 s slower).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run test install system-deps bench sandbox clean

run: $(STAMP)
	$(VENV)/bin/streamlit run app.py --server.port $(PORT)

# -rs: every skip is listed with its reason, so a skipped check is never silent.
# Two workers (pytest-xdist), a test file each at a time (--dist loadfile: a file's module-scoped
# app stays shared within it), handed out in the suite's own order (--no-loadscope-reorder:
# tests/conftest.py puts the files that drive Chromium or the local model first, so the workers
# end together on quick files). Both cores are busy throughout (vmstat: 0% idle), so a third
# worker does not help (-n 3 took 10 min 39 s against 11 min 3 s). What brought 1,101 tests from
# 11 min 29 s to 8 min 21 s on 2 quiet cores: apps forked from a warm zygote (tests/app_zygote.py,
# -134 s), one Chromium per worker, and the widths test resizing one page instead of opening 25.
TEST_WORKERS ?= 2
test: $(DEV_STAMP) system-deps
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -rs -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

install: $(STAMP)

# Reinstall only when the project's requirements change. `make run` installs the app and its
# local model; `make test` adds the test tools (the dev extra).
#
# Two installers, each for what it does fastest (measured on 2 cores, clone to first token):
# - pip compiles llama-cpp-python into a wheel (`pip wheel`, into the venv's wheelhouse). pip's
#   wheel cache keeps it by the source's address, so a second clone gets it in seconds. (uv's own
#   cache did not keep it here: it fetched the source again on the next install and rebuilt it.)
# - uv installs everything, that wheel included, in parallel from its cache: the warm install
#   took 48 s with pip alone, most of it pip installing and byte-compiling one file at a time.
#   It writes no bytecode: compiling every installed file took 25 of the warm install's 28 s.
#   Python compiles what a process imports and keeps it (see PYTHONDONTWRITEBYTECODE above).
# Without a system pip the venv gets one from ensurepip.
UV := $(VENV)/bin/uv
WHEELHOUSE := $(VENV)/wheelhouse
UV_INSTALL := $(UV) pip install -q --python $(PY)
LLAMA_CPP := $(shell sed -n 's/^ *"\(llama-cpp-python[^"]*\)".*/\1/p' pyproject.toml)

# uv and the llama-cpp-python wheel are fetched side by side (two pip processes: 2 s saved warm).
define venv_with_installers
@test -x $(PY) || $(PYTHON) -m venv --without-pip $(VENV)
@if $(PYTHON) -m pip --version >/dev/null 2>&1; then pip="$(PYTHON) -m pip"; else \
    $(PY) -m pip --version >/dev/null 2>&1 || $(PY) -m ensurepip >/dev/null; pip="$(PY) -m pip"; fi; \
  if test -x $(UV); then :; else $$pip --python $(PY) install -q --no-compile uv & fi; \
  if ! ls $(WHEELHOUSE)/llama_cpp_python-*.whl >/dev/null 2>&1; then \
    echo "llama.cpp for the local model: compiled on the first install (a few minutes), then taken from pip's cache"; \
    $$pip wheel -q --no-deps -w $(WHEELHOUSE) '$(LLAMA_CPP)' || exit 1; \
  fi; \
  wait $$! 2>/dev/null; test -x $(UV)
endef

$(STAMP): pyproject.toml
	$(venv_with_installers)
	$(UV_INSTALL) $(WHEELHOUSE)/llama_cpp_python-*.whl -e '.[sandbox]'
	@touch $(STAMP)

# One install of everything, not the app's and then everything again (a second resolve and build).
$(DEV_STAMP): pyproject.toml
	$(venv_with_installers)
	@echo "installing the app, its local model and the test tools (pytest, Playwright, hypothesis, the SDKs the wire tests use)"
	$(UV_INSTALL) $(WHEELHOUSE)/llama_cpp_python-*.whl -e '.[sandbox,dev]'
	@touch $(STAMP) $(DEV_STAMP)

# The Debian packages the tests drive: chromium (browser tests) and curl (generated code).
system-deps:
	@bash scripts/ensure-system-deps.sh

sandbox: $(STAMP)
	$(PY) -m playground.sandbox

# bench/_*.py are the benches' helpers (a scripted server, the floor app), not benches. Every bench
# runs; the exit status says whether any missed.
bench: $(DEV_STAMP)
	@missed=""; for b in bench/[!_]*.py; do echo "== $$b"; $(PY) $$b || missed="$$missed $$b"; done; \
	  if [ -n "$$missed" ]; then echo "missed a target:$$missed"; exit 1; fi

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
