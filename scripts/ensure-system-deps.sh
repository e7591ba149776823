#!/usr/bin/env bash
# Installs the Debian packages the tests drive when they are missing, with one apt-get update:
# chromium (the browser tests run /usr/bin/chromium; Playwright cannot download its own here)
# curl (tests/test_codegen.py runs the generated curl commands) and postgresql (the store tests
# start a PostgreSQL server of their own: tests/postgres_support.py; Debian keeps initdb in
# /usr/lib/postgresql/VERSION/bin, off the PATH).
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v curl >/dev/null 2>&1 || missing+=(curl)
{ command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; } \
  || missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || {
    echo "missing ${missing[*]} and this user cannot install them: apt-get install ${missing[*]}" >&2
    exit 1
  }
  sudo="sudo"
fi
echo "installing ${missing[*]} (Debian packages) for the tests..."
$sudo apt-get update -qq
# through env: sudo resets the environment, so a plain VAR=value prefix would not reach apt-get
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
