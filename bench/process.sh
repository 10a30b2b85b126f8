#!/usr/bin/env bash
# Benchmark: processing one large snapshot, haproxide against haproxystats
# 0.5.1, side by side on the same input in one run.
#
#   bash bench/process.sh ROUND_DIR [RUNS]
#
# ROUND_DIR is one round as pull writes it (<socket>_info / <socket>_stat
# files), e.g. the benchmark generator's default snapshot: 4 sockets, 200
# frontends, 1,000 backends x 10 servers. RUNS defaults to 5; medians reported.
# With BASELINE=/path/to/an/older/haproxide, that binary is timed too, run
# for run alternating with this one, for a before/after in one run.
#
# haproxide: `process --once` with local-store, wall time and peak RSS of the
# whole command. haproxystats 0.5.1 (installed in a venv with pandas<2 and
# numpy<2, which it needs): its daemon watches src-dir and always sends to
# Graphite, so a loopback TCP sink that only reads is given to it, and it is
# timed from the moment a copy of the round is renamed into src-dir until the
# round directory is removed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_packages socat time bc
start_round_bench haproxide-process-bench "$@"


# haproxide
mkdir -p "$DIR/ours/incoming"
printf '[DEFAULT]\nloglevel = warning\n[process]\nsrc-dir = %s/ours/incoming\n[local-store]\ndir = %s/ours/local-store\n[graphite]\nenabled = false\n' \
    "$DIR" "$DIR" >"$DIR/ours.conf"
# One `process --once` of the round by binary $1; appends to the arrays named $2 (ms) and $3 (kB).
time_process() {
    local -n ms=$2 rss=$3
    rm -rf "$DIR/ours/local-store"
    cp -r "$ROUND" "$DIR/ours/incoming/1700000000"
    start=$(now_ns)
    /usr/bin/time -f '%M' -o "$DIR/time.txt" "$1" process --once -f "$DIR/ours.conf"
    ms+=("$(ms_between "$start" "$(now_ns)")")
    rss+=("$(cat "$DIR/time.txt")")
    [ ! -e "$DIR/ours/incoming/1700000000" ] || { echo "$1 left the round behind" >&2; exit 1; }
}
ours_ms=()
ours_rss=()
base_ms=()
base_rss=()
# Which of the two goes first alternates, so neither always runs on a cold cache.
for run in $(seq 1 "$RUNS"); do
    [ -z "${BASELINE:-}" ] || [ $((run % 2)) -eq 0 ] || time_process "$BASELINE" base_ms base_rss
    time_process "$BIN" ours_ms ours_rss
    [ -z "${BASELINE:-}" ] || [ $((run % 2)) -eq 1 ] || time_process "$BASELINE" base_ms base_rss
done
lines=$(wc -l <"$DIR/ours/local-store/1700000000/stats")

# The floor under any local-store: writing the same bytes to the same
# filesystem and fsyncing them, with nothing computed.
floor_ms=()
for run in $(seq 1 "$RUNS"); do
    rm -f "$DIR/floor"
    start=$(now_ns)
    dd if="$DIR/ours/local-store/1700000000/stats" of="$DIR/floor" bs=1M conv=fsync status=none
    floor_ms+=("$(ms_between "$start" "$(now_ns)")")
done

# haproxystats 0.5.1
port=$(free_port)
socat -u "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr" /dev/null &
PIDS+=($!)
mkdir -p "$DIR/theirs/incoming"
printf '[DEFAULT]\nloglevel = warning\n[process]\nsrc-dir = %s/theirs/incoming\nworkers = 1\n[graphite]\nserver = 127.0.0.1\nport = %s\n' \
    "$DIR" "$port" >"$DIR/theirs.conf"
"$HAPROXYSTATS_VENV/bin/haproxystats-process" -f "$DIR/theirs.conf" 2>"$DIR/theirs.log" &
PIDS+=($!)
sleep 5 # its workers start and connect to the sink
theirs_ms=()
for run in $(seq 1 "$RUNS"); do
    cp -r "$ROUND" "$DIR/theirs/staging"
    start=$(now_ns)
    mv "$DIR/theirs/staging" "$DIR/theirs/incoming/1700000000"
    for _ in $(seq 1 12000); do [ -e "$DIR/theirs/incoming/1700000000" ] || break; sleep 0.005; done
    [ ! -e "$DIR/theirs/incoming/1700000000" ] || { echo "haproxystats did not finish within 60 s" >&2; tail "$DIR/theirs.log" >&2; exit 1; }
    theirs_ms+=("$(ms_between "$start" "$(now_ns)")")
done

echo "input: $(ls "$ROUND" | wc -l) files, $(du -sb "$ROUND" | cut -f1) bytes; haproxide wrote $lines lines"
echo "haproxide process --once (ms):   ${ours_ms[*]}"
echo "haproxystats 0.5.1 (ms):          ${theirs_ms[*]}"
o=$(median "${ours_ms[@]}")
t=$(median "${theirs_ms[@]}")
r=$(printf '%s\n' "${ours_rss[@]}" | sort -g | tail -1)
echo "median: haproxide $o ms, haproxystats $t ms, speed-up $(echo "scale=1; $t / $o" | bc)x"
echo "haproxide peak RSS: $((r / 1024)) MB ($r kB)"
if [ -n "${BASELINE:-}" ]; then
    b=$(printf '%s\n' "${base_rss[@]}" | sort -g | tail -1)
    echo "baseline $BASELINE (ms):    ${base_ms[*]}"
    echo "baseline median $(median "${base_ms[@]}") ms, peak RSS $((b / 1024)) MB ($b kB); this build median $o ms, peak RSS $((r / 1024)) MB"
fi
echo "writing and fsyncing the $(du -m "$DIR/floor" | cut -f1) MB output alone (dd, ms): ${floor_ms[*]}; median $(median "${floor_ms[@]}") ms"
