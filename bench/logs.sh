#!/usr/bin/env bash
# Benchmark: `haproxide logs` end to end, from datagrams written into its
# socket to messages Kafka confirmed, with a real broker (tansu, built once
# by scripts/tansu.sh, SQLite storage) on loopback.
#
#   bash bench/logs.sh [SECONDS] [RATE...]
#
# For each RATE (lines per second; default 10000 20000 50000) a sender
# replays the five datagrams HAProxy 2.6 wrote in the fixture
# log_rfc5424_sd_unixdgram.txt at that fixed rate for SECONDS (default 60),
# then waits until the daemon's counters settle. Per rate: lines sent,
# confirmed by Kafka (haproxykafka_valid_messages_total), dropped (every
# saturation channel), left in the disk buffer, the daemon's CPU per 100,000
# lines (utime + stime from /proc) and its peak RSS (VmHWM). "0 lost" means
# every line sent was confirmed by Kafka. The sender, the broker and the
# daemon share the machine's two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_packages python3
SECONDS_EACH=${1:-60}
shift $(( $# > 0 ? 1 : 0 ))
RATES=("$@")
[ ${#RATES[@]} -gt 0 ] || RATES=(10000 20000 50000)
TANSU=$(bash scripts/tansu.sh)
build_release

DIR=$(mktemp -d "${TMPDIR:-/tmp}/haproxide-bench-logs.XXXXXX")
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT

BROKER=$(free_port)
(cd "$DIR" && exec "$TANSU" broker --listener-url "tcp://127.0.0.1:$BROKER" \
    --advertised-listener-url "tcp://127.0.0.1:$BROKER" --storage-engine sqlite://tansu.db) >"$DIR/tansu.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do "$TANSU" topic list --broker "tcp://127.0.0.1:$BROKER" >/dev/null 2>&1 && break; sleep 0.1; done
"$TANSU" topic create webrequest_text --partitions 1 --broker "tcp://127.0.0.1:$BROKER" >/dev/null
"$TANSU" topic create webrequest_errors --partitions 1 --broker "tcp://127.0.0.1:$BROKER" >/dev/null

echo "== $(date -u +%F), $(nproc) cores, $SECONDS_EACH s per rate, tansu 0.6.0 (SQLite) on loopback"
printf '%8s %10s %10s %8s %8s %12s %10s\n' rate sent confirmed dropped buffered "CPU/100k" "peak RSS"
for rate in "${RATES[@]}"; do
    run=$DIR/run-$rate
    mkdir -p "$run"
    METRICS=$(free_port)
    cat >"$run/logs.conf" <<CONF
[logs]
hostname = bench.example
[logs-socket]
path = $run/log.sock
[logs-kafka]
topic = webrequest_text
dlq-topic = webrequest_errors
flush-timeout = 5s
[logs-rdkafka]
bootstrap.servers = 127.0.0.1:$BROKER
acks = all
compression.codec = zstd
linger.ms = 20
[logs-buffer]
dir = $run/buffer
# A broker that falls behind at the highest rates fills the default 1G.
max-size = 4G
[logs-monitoring]
server-bind = 127.0.0.1:$METRICS
CONF
    "$BIN" logs -f "$run/logs.conf" >"$run/daemon.log" 2>&1 &
    DAEMON=$!
    PIDS+=("$DAEMON")
    for _ in $(seq 1 100); do [ -S "$run/log.sock" ] && break; sleep 0.1; done
    python3 bench/send_logs.py "$run/log.sock" "$rate" "$SECONDS_EACH" \
        fixtures/haproxy-2.6.12-debian/log_rfc5424_sd_unixdgram.txt >"$run/sent"
    python3 bench/settle_logs.py "127.0.0.1:$METRICS" "$(cat "$run/sent")" "$DAEMON" "$rate"
    kill -TERM "$DAEMON"; wait "$DAEMON" || true
done
