#!/usr/bin/env bash
# Creates .venv-clients/ with the pinned packages of the Python client walkthrough (docs/clients.md), which
# the test command runs. Idempotent: a venv holding exactly these requirements is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
req=docs/clients/requirements.txt
venv=.venv-clients
if [ -x "$venv/bin/python" ] && cmp -s "$req" "$venv/requirements.txt"; then
  echo "python client packages: present ($venv)"
  exit 0
fi
echo "python client packages: installing into $venv"
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
cp "$req" "$venv/requirements.txt"
