#!/usr/bin/env bash
# Starts a local Miroir cluster (3 coordinators, 3 nodes, 2 gateways on 127.0.0.1:7700 and :7701).
# Builds the binaries first; extra arguments go to miroir-dev (`--help` lists them).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/prereqs.sh
: "${CARGO_TARGET_DIR:=target}"
export CARGO_TARGET_DIR
cargo build --bins -p miroir-coordinator -p miroir-gateway -p miroir-devnode -p miroir-devtools
exec "$CARGO_TARGET_DIR/debug/miroir-dev" "$@"
