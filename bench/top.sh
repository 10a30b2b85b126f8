#!/usr/bin/env bash
# Benchmark: the CPU and memory of one `haproxide top` refresh over 4 real
# HAProxy instances (Debian's 2.6) of the benchmark generator's shape, 200
# frontends and 1,000 backends x 10 servers each: 4 sockets x 11,200 rows.
# The issue's goal: under 20 ms of CPU per refresh, under 32 MB of memory.
#
#   bash bench/top.sh [REFRESHES]
#
# Runs crates/haproxide/benches/top.rs (release build) on their sockets:
# the refresh, then the floor (the same replies read and thrown away) and
# one reply read into rows in memory. Then the refresh alone under
# valgrind's callgrind with 2 and with 6 refreshes: the difference over 4
# is the instructions of one refresh, a figure that does not move with
# what else the machine does (the CPU time does, by half).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_packages haproxy valgrind
need_cargo
REFRESHES=${1:-20}
start_lab haproxide-top-bench
for n in 0 1 2 3; do
    generator_shaped_haproxy "$DIR/run/hap$n.sock" >"$DIR/hap$n.cfg"
    haproxy -db -f "$DIR/hap$n.cfg" >"$DIR/hap$n.log" 2>&1 &
    PIDS+=($!)
done
for _ in $(seq 1 300); do
    [ "$(ls "$DIR/run" | wc -l)" -eq 4 ] && break
    sleep 0.1
done
echo "== $(haproxy -v | head -1); $(ls "$DIR/run" | wc -l) instances"
TOP_SOCKET_DIR=$DIR/run cargo bench -q -p haproxide --bench top -- "$REFRESHES" 2>&1 | grep -v '^$'
BENCH=$(cargo bench -p haproxide --bench top --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p')
instructions() {
    TOP_SOCKET_DIR=$DIR/run valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BENCH" "$1" --refresh-only 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
two=$(instructions 2)
six=$(instructions 6)
echo "top refresh under callgrind: $(((six - two) / 4)) instructions per refresh"
