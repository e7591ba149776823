#!/usr/bin/env bash
# A newcomer's first minutes, measured: from `git clone` to the first token the local model streams,
# through what `make run` does (create .venv, install the app and the sandbox) and then the sandbox
# answering a streamed request.
#
#   scripts/newcomer-time.sh          both: cold (an empty pip cache: llama.cpp is compiled) and warm
#   scripts/newcomer-time.sh cold|warm
#
# Each run works in a fresh temporary clone of this repository's HEAD; nothing here is touched.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
unset PYTHONDONTWRITEBYTECODE  # as the Makefile does for the app and the sandbox it starts
[ $# -eq 0 ] && set -- cold warm

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

measure() {
  local mode=$1 tmp start port pid elapsed
  tmp=$(mktemp -d)
  start=$(python3 -c 'import time; print(time.time())')
  git clone -q "$repo" "$tmp/pg"
  cd "$tmp/pg"
  if [ "$mode" = cold ]; then
    export PIP_CACHE_DIR="$tmp/pip-cache"  # empty: every wheel downloaded, llama-cpp-python compiled
    export UV_CACHE_DIR="$tmp/uv-cache"
  else
    unset PIP_CACHE_DIR UV_CACHE_DIR
  fi
  make install >"$tmp/install.log" 2>&1 || { echo "install failed, see $tmp/install.log" >&2; return 1; }
  port=$(free_port)
  .venv/bin/python -m playground.sandbox --port "$port" >"$tmp/sandbox.log" 2>&1 &
  pid=$!
  # The first streamed token: the first `data:` line of a streamed chat completion.
  until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do sleep 0.1; done
  # (grep stops at the first line and curl then gets SIGPIPE: the pipeline's status is grep's)
  set +o pipefail
  curl -sN "http://127.0.0.1:$port/v1/chat/completions" -H 'content-type: application/json' \
    -d '{"model": "local/smollm2-135m-instruct", "stream": true, "max_tokens": 8,
         "messages": [{"role": "user", "content": "Say hello."}]}' | grep -m1 -q '^data:'
  set -o pipefail
  elapsed=$(python3 -c "import time; print(time.time() - $start)")
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  cd "$repo"
  rm -rf "$tmp"
  printf '%s: clone to first streamed token in %.0f s\n' "$mode" "$elapsed"
}

for mode in "$@"; do
  measure "$mode"
done
