#!/usr/bin/env bash
# `testnet chaos` with a release build.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --locked --bins
exec "${CARGO_TARGET_DIR:-target}/release/testnet" chaos "$@"
