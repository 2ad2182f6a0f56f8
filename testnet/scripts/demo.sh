#!/usr/bin/env bash
# Builds shardex and runs the narrated demo on a local testnet of shard nodes and the coordinator (started
# if not running).
# Extra arguments go to `testnet demo`, e.g. --down-after, --base-port 0, --epoch-ms 100 or
# --shards BTC-PERP,ETH-PERP.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --locked --bins
exec "${CARGO_TARGET_DIR:-target}/release/testnet" demo "$@"
