#!/usr/bin/env bash
# Benchmark: lines per second from `process` to a Graphite sink on loopback
# that only reads and counts (bench/count_lines.py), haproxide against
# haproxystats 0.5.1, side by side on the same input in one run.
#
#   bash bench/graphite.sh ROUND_DIR [RUNS]
#
# ROUND_DIR is one round as pull writes it, e.g. the benchmark generator's
# default snapshot. RUNS defaults to 5; medians reported.
#
# Each delivery of the round is one burst at the sink; the rate is the burst's
# lines over the time from its first byte received to its last. haproxide runs
# `process --once` with the Graphite sink only, and its wall time is given
# too, to show the share of the whole job the sending takes. haproxystats
# sends each line with a sendall() of its own while it processes, so its burst
# spans most of its processing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_packages python3 bc
start_round_bench haproxide-graphite-bench "$@"


python3 bench/count_lines.py "$DIR/port" >"$DIR/bursts" &
PIDS+=($!)
for _ in $(seq 1 500); do [ -s "$DIR/port" ] && break; sleep 0.01; done
port=$(cat "$DIR/port")

# Waits until the sink reported burst number $1; prints it.
burst() {
    for _ in $(seq 1 6000); do
        [ "$(wc -l <"$DIR/bursts")" -ge "$1" ] && { sed -n "$1p" "$DIR/bursts"; return; }
        sleep 0.01
    done
    echo "no burst $1 at the sink within 60 s" >&2
    exit 1
}
rate() { echo "$1 / $3" | bc; }

# haproxide
mkdir -p "$DIR/ours/incoming"
printf '[DEFAULT]\nloglevel = warning\n[process]\nsrc-dir = %s/ours/incoming\n[graphite]\nserver = 127.0.0.1\nport = %s\n' \
    "$DIR" "$port" >"$DIR/ours.conf"
ours_ms=()
ours_rate=()
ours_burst_ms=()
bursts=0
for run in $(seq 1 "$RUNS"); do
    cp -r "$ROUND" "$DIR/ours/incoming/1700000000"
    start=$(now_ns)
    "$BIN" process --once -f "$DIR/ours.conf"
    ours_ms+=("$(ms_between "$start" "$(now_ns)")")
    bursts=$((bursts + 1))
    read -r lines bytes seconds < <(burst "$bursts")
    ours_rate+=("$(rate "$lines" "$bytes" "$seconds")")
    ours_burst_ms+=("$(echo "$seconds * 1000 / 1" | bc)")
done

# haproxystats 0.5.1
mkdir -p "$DIR/theirs/incoming"
printf '[DEFAULT]\nloglevel = warning\n[process]\nsrc-dir = %s/theirs/incoming\nworkers = 1\n[graphite]\nserver = 127.0.0.1\nport = %s\n' \
    "$DIR" "$port" >"$DIR/theirs.conf"
"$HAPROXYSTATS_VENV/bin/haproxystats-process" -f "$DIR/theirs.conf" 2>"$DIR/theirs.log" &
PIDS+=($!)
sleep 5 # its worker starts and connects to the sink
theirs_rate=()
theirs_burst_ms=()
for run in $(seq 1 "$RUNS"); do
    cp -r "$ROUND" "$DIR/theirs/staging"
    mv "$DIR/theirs/staging" "$DIR/theirs/incoming/1700000000"
    bursts=$((bursts + 1))
    read -r their_lines bytes seconds < <(burst "$bursts")
    theirs_rate+=("$(rate "$their_lines" "$bytes" "$seconds")")
    theirs_burst_ms+=("$(echo "$seconds * 1000 / 1" | bc)")
    for _ in $(seq 1 12000); do [ -e "$DIR/theirs/incoming/1700000000" ] || break; sleep 0.005; done
done

echo "input: $(ls "$ROUND" | wc -l) files, $(du -sb "$ROUND" | cut -f1) bytes"
echo "haproxide: $lines lines a round; sending took (ms) ${ours_burst_ms[*]}; whole process --once (ms) ${ours_ms[*]}"
echo "haproxide lines/s: ${ours_rate[*]}"
echo "haproxystats 0.5.1: $their_lines lines a round; sending took (ms) ${theirs_burst_ms[*]}"
echo "haproxystats lines/s: ${theirs_rate[*]}"
echo "median lines/s: haproxide $(median "${ours_rate[@]}"), haproxystats $(median "${theirs_rate[@]}")"
