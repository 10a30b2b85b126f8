#!/usr/bin/env bash
# Benchmark: processing one large snapshot, haproxide against haproxystats
# 0.5.1, side by side on the same input in one run.
#
#   bash bench/process.sh ROUND_DIR [RUNS]
#
# ROUND_DIR is one round as pull writes it (<socket>_info / <socket>_stat
# files), e.g. the benchmark generator's default snapshot: 4 sockets, 200
# frontends, 1,000 backends x 10 servers. RUNS defaults to 5; medians reported.
# With BASELINE=/path/to/an/older/haproxide, that binary is timed too on the
# Graphite path, run for run alternating with this one, for a before/after in
# one run.
#
# haproxystats 0.5.1 (installed in a venv with pandas<2 and numpy<2, which it
# needs): its daemon watches src-dir and always sends to Graphite, so a
# loopback TCP sink that only reads is given to it, and it is timed from the
# moment a copy of the round is renamed into src-dir until the round
# directory is removed. haproxide: the whole `process --once` command (the
# round already in src-dir, removed when it exits), wall time and peak RSS,
# on the Graphite path (only the Graphite sink, to the same kind of sink) and
# on the local-store path (which fsyncs its file).
#
# Printed beside them: the floor of the Graphite path (the round's files read
# by cat and the bytes haproxide sent written to the sink by socat), the
# floor of local-store (the same bytes written with fsync by dd), the ratios,
# and the instructions of one Graphite-path round counted by callgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_packages socat time bc
start_round_bench haproxide-process-bench "$@"


# One loopback Graphite sink that reads and throws away, for both programs.
port=$(free_port)
socat -u "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr" /dev/null &
PIDS+=($!)

# haproxide: the Graphite path (only the Graphite sink, to the sink above)
# and the local-store path (only local-store, which fsyncs its file).
mkdir -p "$DIR/ours/incoming"
printf '[DEFAULT]\nloglevel = warning\n[process]\nsrc-dir = %s/ours/incoming\n[graphite]\nserver = 127.0.0.1\nport = %s\n' \
    "$DIR" "$port" >"$DIR/graphite.conf"
printf '[DEFAULT]\nloglevel = warning\n[process]\nsrc-dir = %s/ours/incoming\n[local-store]\ndir = %s/ours/local-store\n[graphite]\nenabled = false\n' \
    "$DIR" "$DIR" >"$DIR/local-store.conf"
# One `process --once` of the round by binary $1 with configuration $2;
# appends to the arrays named $3 (ms) and $4 (kB).
time_process() {
    local -n ms=$3 rss=$4
    rm -rf "$DIR/ours/local-store"
    cp -r "$ROUND" "$DIR/ours/incoming/1700000000"
    start=$(now_ns)
    /usr/bin/time -f '%M' -o "$DIR/time.txt" "$1" process --once -f "$2"
    ms+=("$(ms_between "$start" "$(now_ns)")")
    rss+=("$(cat "$DIR/time.txt")")
    [ ! -e "$DIR/ours/incoming/1700000000" ] || { echo "$1 left the round behind" >&2; exit 1; }
}
graphite_ms=()
graphite_rss=()
ours_ms=()
ours_rss=()
base_ms=()
base_rss=()
# Which goes first alternates, so that none always runs on a cold cache.
for run in $(seq 1 "$RUNS"); do
    [ -z "${BASELINE:-}" ] || [ $((run % 2)) -eq 0 ] || time_process "$BASELINE" "$DIR/graphite.conf" base_ms base_rss
    if [ $((run % 2)) -eq 0 ]; then
        time_process "$BIN" "$DIR/graphite.conf" graphite_ms graphite_rss
        time_process "$BIN" "$DIR/local-store.conf" ours_ms ours_rss
    else
        time_process "$BIN" "$DIR/local-store.conf" ours_ms ours_rss
        time_process "$BIN" "$DIR/graphite.conf" graphite_ms graphite_rss
    fi
    [ -z "${BASELINE:-}" ] || [ $((run % 2)) -eq 1 ] || time_process "$BASELINE" "$DIR/graphite.conf" base_ms base_rss
done

# The bytes the Graphite path sends, caught once by a sink that keeps them.
catch_port=$(free_port)
socat -u "TCP-LISTEN:$catch_port,bind=127.0.0.1,reuseaddr" "OPEN:$DIR/graphite.out,creat,trunc" &
catcher=$!
sed "s/^port = .*/port = $catch_port/" "$DIR/graphite.conf" >"$DIR/catch.conf"
cp -r "$ROUND" "$DIR/ours/incoming/1700000000"
"$BIN" process --once -f "$DIR/catch.conf"
wait "$catcher"

# The floor of the Graphite path, what no implementation can skip: the
# round's files read from the page cache (cat) and the same output bytes
# written to the same sink (socat, in 1 MiB writes), one after the other.
floor_ms=()
for run in $(seq 1 "$RUNS"); do
    start=$(now_ns)
    cat "$ROUND"/* >/dev/null
    socat -u -b 1048576 "OPEN:$DIR/graphite.out" "TCP:127.0.0.1:$port"
    floor_ms+=("$(ms_between "$start" "$(now_ns)")")
done

# The local-store path's floor: the same output bytes written to the same
# filesystem and fsynced, with nothing computed.
fsync_ms=()
for run in $(seq 1 "$RUNS"); do
    rm -f "$DIR/floor"
    start=$(now_ns)
    dd if="$DIR/graphite.out" of="$DIR/floor" bs=1M conv=fsync status=none
    fsync_ms+=("$(ms_between "$start" "$(now_ns)")")
done

# Instructions of one Graphite-path round, counted by callgrind: a figure
# that does not move with the machine's load.
need_packages valgrind
cp -r "$ROUND" "$DIR/ours/incoming/1700000000"
instructions=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN" process --once -f "$DIR/graphite.conf" 2>&1 |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p')

# haproxystats 0.5.1
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

echo "input: $(ls "$ROUND" | wc -l) files, $(du -sb "$ROUND" | cut -f1) bytes; haproxide sent Graphite $(wc -l <"$DIR/graphite.out") lines, $(stat -c %s "$DIR/graphite.out") bytes"
echo "haproxystats 0.5.1, Graphite (ms):          ${theirs_ms[*]}"
echo "haproxide --once, Graphite (ms):            ${graphite_ms[*]}"
echo "haproxide --once, local-store (ms):         ${ours_ms[*]}"
echo "floor, cat of the round + the bytes to the sink (ms): ${floor_ms[*]}"
echo "floor of local-store, dd with fsync (ms):   ${fsync_ms[*]}"
t=$(median "${theirs_ms[@]}")
g=$(median "${graphite_ms[@]}")
o=$(median "${ours_ms[@]}")
f=$(median "${floor_ms[@]}")
d=$(median "${fsync_ms[@]}")
peak() { printf '%s\n' "$@" | sort -g | tail -1; }
rg=$(peak "${graphite_rss[@]}")
ro=$(peak "${ours_rss[@]}")
echo "medians: haproxystats $t ms; haproxide Graphite $g ms, local-store $o ms; floor $f ms (local-store's $d ms)"
echo "ratios: haproxystats / haproxide Graphite $(echo "scale=1; $t / $g" | bc)x; haproxide Graphite / floor $(echo "scale=2; $g / $f" | bc)x; haproxystats / haproxide local-store $(echo "scale=1; $t / $o" | bc)x"
echo "haproxide peak RSS: Graphite $((rg / 1024)) MB ($rg kB), local-store $((ro / 1024)) MB ($ro kB)"
echo "haproxide Graphite round under callgrind: $instructions instructions"
if [ -n "${BASELINE:-}" ]; then
    b=$(peak "${base_rss[@]}")
    echo "baseline $BASELINE, Graphite (ms): ${base_ms[*]}"
    echo "baseline median $(median "${base_ms[@]}") ms, peak RSS $((b / 1024)) MB ($b kB); this build $g ms, $((rg / 1024)) MB"
fi
