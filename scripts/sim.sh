#!/usr/bin/env bash
# Runs seeds of the whole-cluster simulation in parallel child processes and lists the failing ones.
#
#   scripts/sim.sh [N] [FIRST]      N seeds (default 8) from FIRST (default 1)
#   MIROIR_SIM_SEEDS=5,17 scripts/sim.sh          replays exactly these seeds
#   MIROIR_SIM_MUTATION=ack-in-flight scripts/sim.sh 200   a deliberately broken variant
#   MIROIR_SIM_JOBS=4                              children at once (default: the number of cores)
#
# Each seed's output is kept in target-madsim/sim-runs/<seed>.log. Exit status 1 if any seed failed.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CARGO_TARGET_DIR:=target}"
export CARGO_TARGET_DIR="${MADSIM_TARGET_DIR:-${CARGO_TARGET_DIR}-madsim}"
export RUSTFLAGS="--cfg madsim"

n="${1:-8}"
first="${2:-1}"
if [[ -n "${MIROIR_SIM_SEEDS:-}" ]]; then
  seeds=$(tr ',' '\n' <<<"$MIROIR_SIM_SEEDS")
else
  seeds=$(seq "$first" $((first + n - 1)))
fi
bin=$(cargo test -p miroir-sim --test sim --no-run --message-format=json 2>/dev/null |
  grep '"name":"sim"' | grep -o '"executable":"[^"]*"' | sed 's/"executable":"\(.*\)"/\1/' | tail -1)
[[ -x "$bin" ]] || { echo "scripts/sim.sh: the simulation test binary did not build" >&2; exit 2; }
logs="$CARGO_TARGET_DIR/sim-runs"
rm -rf "$logs" && mkdir -p "$logs"
export bin logs
start=$(date +%s)
# shellcheck disable=SC2016
printf '%s\n' $seeds | xargs -P "${MIROIR_SIM_JOBS:-$(nproc)}" -I{} sh -c \
  'if MIROIR_SIM_ONE_SEED={} "$bin" cluster::one_seed --exact --ignored --nocapture --test-threads=1 >"$logs/{}.log" 2>&1;
   then echo "seed {} ok"; else echo "seed {} FAILED"; touch "$logs/{}.failed"; fi' | sort -n -k2 >"$logs/summary"
failed=$(find "$logs" -name '*.failed' -printf '%f\n' | sed 's/\.failed$//' | sort -n | tr '\n' ' ')
total=$(wc -l <"$logs/summary")
echo "${total} seeds in $(( $(date +%s) - start )) s${MIROIR_SIM_MUTATION:+ (mutation ${MIROIR_SIM_MUTATION})}; failed: ${failed:-none}"
if [[ -n "$failed" ]]; then
  first_failed=${failed%% *}
  echo "first failure ($logs/$first_failed.log):"
  grep -m3 -E "panicked|lost|never" "$logs/$first_failed.log" || true
  echo "replay: MIROIR_SIM_SEEDS=$first_failed scripts/sim.sh"
  exit 1
fi
