#!/usr/bin/env bash
# Installs what the explorer's browser test needs: Debian's Chromium (/usr/bin/chromium) and the pinned
# playwright-core that drives it (explorer/browser/node_modules, from package-lock.json). Idempotent: a
# second run finds both and does nothing. Needs root (or sudo) for apt-get, and Node.js with npm.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -x "${SHARDEX_CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "chromium: $("${SHARDEX_CHROMIUM:-/usr/bin/chromium}" --version 2>/dev/null || echo present)"
else
  echo "chromium: installing Debian's package (apt-get)"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
  echo "chromium: $(/usr/bin/chromium --version)"
fi

if ! command -v npm >/dev/null; then
  echo "error: the explorer's browser test needs Node.js and npm (e.g. apt-get install nodejs npm)" >&2
  exit 1
fi
if [ -f explorer/browser/node_modules/playwright-core/package.json ] \
  && cmp -s explorer/browser/package-lock.json explorer/browser/node_modules/.package-lock.json 2>/dev/null; then
  echo "playwright-core: present"
else
  echo "playwright-core: npm ci in explorer/browser"
  (cd explorer/browser && npm ci --no-audit --no-fund --loglevel=error)
fi
