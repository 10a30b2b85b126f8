#!/usr/bin/env bash
# Benchmark: central processing through Kafka, on one large round (e.g. the
# benchmark generator's default: 4 sockets, 200 frontends, 1,000 backends x
# 10 servers, 28 MB of `show stat`), with a real tansu broker on loopback.
#
#   bash bench/central.sh ROUND_DIR [RUNS] [ROUNDS]
#
# 1. The load balancer's CPU per round (user + sys, /usr/bin/time), RUNS
#    times alternating: `process --once` whose only sink is [kafka-rounds]
#    (pack, compress, produce, wait for every delivery report) against
#    `process --once` whose only sink is Graphite, to a loopback TCP sink
#    that reads and discards (socat).
# 2. Central: ROUNDS copies of the round (default 8, under 8 host names) are
#    shipped to a 2-partition topic first; then one central instance, and
#    then two in one group (a new group each time, so each reads every
#    round), consume them with Graphite to the same sink. Rounds per second
#    from the first round put together to the last delivered (their log
#    lines), and metrics per CPU-second of the instances' whole CPU time;
#    the broker's CPU over the same run beside it, since it shares the cores.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_packages socat time bc
ROUND=${1:?usage: bash $0 ROUND_DIR [RUNS] [ROUNDS]}
ROUND=$(cd "$ROUND" && pwd)
RUNS=${2:-5}
ROUNDS=${3:-8}
TANSU_BIN=${TANSU_BIN:-$(bash scripts/tansu.sh)}
build_release
start_lab haproxide-central-bench

# tansu, with topics in SQLite, and the loopback Graphite sink.
kafka_port=$(free_port)
(cd "$DIR" && exec "$TANSU_BIN" broker --listener-url "tcp://127.0.0.1:$kafka_port" \
    --advertised-listener-url "tcp://127.0.0.1:$kafka_port" --storage-engine sqlite://tansu.db) >"$DIR/tansu.log" 2>&1 &
TANSU_PID=$!
PIDS+=("$TANSU_PID")
# The broker's CPU seconds so far (utime + stime, in clock ticks).
broker_cpu() { awk -v tick="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / tick }' "/proc/$TANSU_PID/stat"; }
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$kafka_port") 2>/dev/null && break; sleep 0.1; done
"$TANSU_BIN" topic create rounds --partitions 2 --broker "tcp://127.0.0.1:$kafka_port" >/dev/null
graphite_port=$(free_port)
socat -u "TCP-LISTEN:$graphite_port,bind=127.0.0.1,fork,reuseaddr" /dev/null &
PIDS+=($!)
sleep 0.3
BROKERS=127.0.0.1:$kafka_port

# $1: config name; $2: its sink sections.
write_config() {
    printf '[DEFAULT]\nloglevel = warning\n[paths]\nbase-dir = %s/%s\n[process]\nsrc-dir = %s/%s/incoming\n%s\n' \
        "$DIR" "$1" "$DIR" "$1" "$2" >"$DIR/$1.conf"
    mkdir -p "$DIR/$1/incoming"
}
write_config graphite "$(printf '[graphite]\nserver = 127.0.0.1\nport = %s\n' "$graphite_port")"
write_config rounds "$(printf '[graphite]\nenabled = false\n[kafka-rounds]\nenabled = true\nbrokers = %s\ntopic = rounds\n' "$BROKERS")"

# One `process --once` of config $1 on a copy of the round named $2 for host
# $3 (its manifest); prints its CPU seconds.
once() {
    local staging=$DIR/$1/staging
    cp -r "$ROUND" "$staging"
    printf '{"round": "%s", "host": "%s", "failed": []}\n' "$2" "$3" >"$staging/manifest.json"
    mv "$staging" "$DIR/$1/incoming/$2"
    /usr/bin/time -f '%U %S %M' -o "$DIR/time.txt" "$BIN" process --once -f "$DIR/$1.conf"
    [ ! -e "$DIR/$1/incoming/$2" ] || { echo "$1 left the round behind" >&2; exit 1; }
    awk '{ printf "%.3f %d\n", $1 + $2, $3 }' "$DIR/time.txt"
}

echo "== load balancer: CPU per round, $RUNS runs each, alternating"
graphite_cpu=(); rounds_cpu=(); graphite_rss=(); rounds_rss=()
for run in $(seq 1 "$RUNS"); do
    read -r cpu rss < <(once graphite "$((1700000000 + run))" lb-bench)
    graphite_cpu+=("$cpu"); graphite_rss+=("$rss")
    read -r cpu rss < <(once rounds "$((1700000000 + run))" "lb$run")
    rounds_cpu+=("$cpu"); rounds_rss+=("$rss")
done
echo "process with Graphite only:      CPU s ${graphite_cpu[*]}; median $(median "${graphite_cpu[@]}") s, peak RSS median $(( $(median "${graphite_rss[@]}") / 1024 )) MB"
echo "process with [kafka-rounds] only: CPU s ${rounds_cpu[*]}; median $(median "${rounds_cpu[@]}") s, peak RSS median $(( $(median "${rounds_rss[@]}") / 1024 )) MB"

# More rounds for the central runs, shipped before they start.
for n in $(seq $((RUNS + 1)) "$ROUNDS"); do once rounds "$((1700000000 + n))" "lb$n" >/dev/null; done
total=$(( ROUNDS > RUNS ? ROUNDS : RUNS ))

# $1: instances; runs them in group central-$1 until every round is delivered.
central() {
    local count=$1 index logs=() pids=() start end cpu broker_before
    broker_before=$(broker_cpu)
    for index in $(seq 1 "$count"); do
        write_config "central-$count-$index" "$(printf 'source = kafka\nworkers = 2\n[kafka-rounds]\nbrokers = %s\ntopic = rounds\ngroup = central-%s\n[graphite]\nserver = 127.0.0.1\nport = %s\n' \
            "$BROKERS" "$count" "$graphite_port")"
        sed -i 's/^loglevel = warning/loglevel = info/' "$DIR/central-$count-$index.conf"
        logs+=("$DIR/central-$count-$index.log")
        /usr/bin/time -f '%U %S' -o "$DIR/central-$count-$index.time" \
            "$BIN" process -f "$DIR/central-$count-$index.conf" >"$DIR/central-$count-$index.log" 2>&1 &
        pids+=($!)
    done
    for _ in $(seq 1 1200); do
        [ "$(cat "${logs[@]}" | grep -c ' metrics delivered in ')" -ge "$total" ] && break
        sleep 0.25
    done
    # The instances are /usr/bin/time's children: signalled themselves, so that time reports.
    for pid in "${pids[@]}"; do pkill -TERM -P "$pid"; done
    for pid in "${pids[@]}"; do wait "$pid" || true; done
    start=$(cat "${logs[@]}" | grep ' put together as ' | cut -c1-26 | sort | head -1)
    end=$(cat "${logs[@]}" | grep ' metrics delivered in ' | cut -c1-26 | sort | tail -1)
    delivered=$(cat "${logs[@]}" | grep -c ' metrics delivered in ')
    per_round=$(cat "${logs[@]}" | grep ' metrics delivered in ' | head -1 | sed 's/.*: \([0-9]*\) metrics delivered.*/\1/')
    cpu=$(cat "$DIR"/central-"$count"-*.time | awk '{ s += $1 + $2 } END { printf "%.2f", s }')
    seconds=$(echo "$(date -d "$end" +%s.%N) - $(date -d "$start" +%s.%N)" | bc)
    echo "$count central instance(s): $delivered rounds of $per_round metrics in $seconds s: $(echo "scale=2; $delivered / $seconds" | bc) rounds/s; CPU $cpu s: $(echo "scale=0; $delivered * $per_round / $cpu" | bc) metrics per CPU-second; the broker's CPU meanwhile $(echo "$(broker_cpu) - $broker_before" | bc) s"
}
echo "== central: $total rounds from Kafka, Graphite to a loopback sink"
central 1
central 2
