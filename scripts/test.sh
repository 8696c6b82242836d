#!/usr/bin/env bash
# Everything CI checks, in the order a developer wants to hear about it. CI (.ci/run) calls this.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/prereqs.sh

: "${CARGO_TARGET_DIR:=target}"
export CARGO_TARGET_DIR
# The simulation build must not share artifacts with the real one: `--cfg madsim` changes tokio.
MADSIM_TARGET_DIR="${MADSIM_TARGET_DIR:-${CARGO_TARGET_DIR}-madsim}"

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test (workspace)"
cargo test --workspace

step "madsim build of the kernel, raft-store, coordinator, node client, gateway and dev node"
RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR="$MADSIM_TARGET_DIR" cargo build -p miroir -p miroir-raft-store -p miroir-coordinator -p miroir-node-client -p miroir-gateway -p miroir-devnode --lib

step "madsim simulations: coordinator quorum, one gateway, whole cluster (seeds printed; replay with MIROIR_SIM_SEEDS=<seed>)"
RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR="$MADSIM_TARGET_DIR" cargo test -p miroir-sim --test sim -- --nocapture

step "whole-cluster simulation, 8 more seeds in parallel (scripts/sim.sh)"
MADSIM_TARGET_DIR="$MADSIM_TARGET_DIR" scripts/sim.sh 8 3
