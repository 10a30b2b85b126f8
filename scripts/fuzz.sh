#!/usr/bin/env bash
# Fuzzes every parser of untrusted input with libFuzzer (cargo-fuzz, on the
# nightly toolchain), each target seeded from the fixtures. Two runs with
# disjoint TARGETs can share the two cores.
#
#   bash scripts/fuzz.sh [SECONDS] [RUNS] [TARGET...]
#
# Each target runs until RUNS executions (default 10,000,000) or SECONDS
# (default 600) have passed, whichever comes first; MAX_LEN (default 4096)
# bounds an input's size. Corpora grow in
# ${XDG_CACHE_HOME:-$HOME/.cache}/haproxide/fuzz/corpus/<target> and are
# reused. A crash stops the script with the input's path: copy it to
# fuzz/regressions/<target>/ so that `cargo test -p fuzzing` keeps it as a
# regression test. The closing table gives each target's executions.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-600}
RUNS=${2:-10000000}
# Inputs are cut to MAX_LEN bytes (seeds too): mutations of a few kilobytes
# reach the parsers' every branch at a hundred times the speed of 300 KB ones.
MAX_LEN=${MAX_LEN:-4096}
shift $(( $# > 2 ? 2 : $# ))
TARGETS=("$@")

source scripts/lib.sh
need_cargo
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/haproxide/fuzz
mkdir -p "$CACHE/logs"

# Seeds: every fixture, for every target (each takes what it can parse).
seed() {
    local corpus=$CACHE/corpus/$1
    mkdir -p "$corpus"
    find fixtures -type f ! -name '*.md' -exec cp -n {} "$corpus/" \;
    [ ! -d "fuzz/regressions/$1" ] || cp -n fuzz/regressions/"$1"/* "$corpus/" 2>/dev/null || true
}

# No sanitizer: the code has no `unsafe` (the workspace denies it), so what
# a fuzzer can find is a panic, a hang or runaway memory, which libFuzzer
# catches without one, at several times the speed.
cargo +nightly fuzz build --sanitizer none
# Every target fuzz/Cargo.toml declares, unless some were named.
[ ${#TARGETS[@]} -gt 0 ] || mapfile -t TARGETS < <(cargo +nightly fuzz list)
results=()
for target in "${TARGETS[@]}"; do
    seed "$target"
    log=$CACHE/logs/$target.log
    echo "== $target (at most $RUNS runs or $SECONDS_EACH s)"
    if ! cargo +nightly fuzz run --sanitizer none "$target" "$CACHE/corpus/$target" -- \
        -runs="$RUNS" -max_total_time="$SECONDS_EACH" -max_len="$MAX_LEN" -print_final_stats=1 \
        -artifact_prefix="$CACHE/artifacts-$target-" >"$log" 2>&1; then
        echo "$target CRASHED; see $log and $CACHE/artifacts-$target-*" >&2
        tail -30 "$log" >&2
        exit 1
    fi
    runs=$(awk '/stat::number_of_executed_units:/ { print $2 }' "$log" | tail -1)
    took=$(awk '/^Done [0-9]+ runs in/ { print $(NF-1) }' "$log" | tail -1)
    corpus=$(find "$CACHE/corpus/$target" -type f | wc -l)
    results+=("$(printf '%-14s %12s runs %6s s  corpus %5s  crashes 0' "$target" "$runs" "${took:-?}" "$corpus")")
done
printf '%s\n' "${results[@]}"
