#!/usr/bin/env bash
# Installs Debian's chromium when it is missing: the browser tests drive /usr/bin/chromium.
set -euo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "chromium is missing and this user cannot install it: apt-get install chromium" >&2; exit 1; }
  sudo="sudo"
fi
echo "installing chromium (Debian package) for the browser tests..."
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
