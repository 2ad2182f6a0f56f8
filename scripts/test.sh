#!/usr/bin/env bash
# The whole test suite: formatting, lints, then every unit, property, integration and multi-process test.
# Builds go to $CARGO_TARGET_DIR (default: ./target).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== browser test tools (Chromium, playwright-core)"
./scripts/browser-setup.sh
echo "== python client packages"
./scripts/client-setup.sh
echo "== cargo test"
cargo test --workspace --locked
