#!/usr/bin/env bash
# Benchmark: a real HAProxy as the checker. 1,000 servers with
# `agent-check agent-inter INTER_MS` (20 ms: 50,000 checks a second asked
# for) point at one haproxide agent on loopback. Reports the checks per second the kernel
# saw accepted (TcpPassiveOpens), the CPU both processes used, and HAProxy's
# own `agent_duration` (whole ms) of every server, sampled 5 times.
#
#   bash bench/agent-haproxy.sh [SECONDS] [INTER_MS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_RUN=${1:-5}
INTER_MS=${2:-20}
source scripts/lib.sh
need_packages haproxy socat python3
build_release
start_lab haproxide-agent-haproxy-bench

port=$(free_port)
printf '[agent]\nloglevel = warning\nbind = 127.0.0.1\nport = %s\nsource = local\ninterval = 1\n' "$port" >"$DIR/agent.conf"
{
    printf 'global\n    maxconn 4000\n    stats socket %s/run/hap.sock mode 600 level admin\n' "$DIR"
    printf 'defaults\n    mode http\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n    timeout check 1s\n'
    printf 'backend be_many\n    balance roundrobin\n'
    for i in $(seq 0 999); do
        printf '    server s%s 127.0.0.1:9 weight 100 agent-check agent-port %s agent-inter %sms\n' "$i" "$port" "$INTER_MS"
    done
} >"$DIR/haproxy.cfg"

"$BIN" agent -f "$DIR/agent.conf" &
agent=$!
PIDS+=("$agent")
sleep 0.5
haproxy -f "$DIR/haproxy.cfg" -db >"$DIR/haproxy.log" 2>&1 &
haproxy=$!
PIDS+=("$haproxy")
sleep 2

passive() { awk '/^Tcp:/ { getline; print $7 }' /proc/net/snmp; }
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
opens=$(passive); agent_cpu=$(cpu "$agent"); haproxy_cpu=$(cpu "$haproxy")
durations=()
for _ in 1 2 3 4 5; do
    sleep "$(echo "$SECONDS_RUN / 5" | bc -l)"
    durations+=("$(echo "show stat" | socat - "UNIX:$DIR/run/hap.sock" | python3 -c '
import csv, sys
rows = list(csv.reader(sys.stdin))
column = rows[0].index("agent_duration")
print(" ".join(row[column] for row in rows[1:] if len(row) > column and row[1].startswith("s")))')")
done
opens=$(( $(passive) - opens )); agent_cpu=$(( $(cpu "$agent") - agent_cpu )); haproxy_cpu=$(( $(cpu "$haproxy") - haproxy_cpu ))
echo "1,000 servers at agent-inter ${INTER_MS}ms: $((opens / SECONDS_RUN)) checks accepted per second over ${SECONDS_RUN} s"
echo "CPU used: agent $(echo "scale=2; $agent_cpu / 100" | bc) s, haproxy $(echo "scale=2; $haproxy_cpu / 100" | bc) s"
printf '%s\n' "${durations[@]}" | tr ' ' '\n' | sort -n | awk '{ v[NR] = $1 } END {
    printf "agent_duration over %d samples (ms): p50 %s p90 %s p99 %s max %s\n", NR, v[int(NR * 0.5)], v[int(NR * 0.9)], v[int(NR * 0.99)], v[NR] }'
echo "the agent's peak RSS: $(awk '/VmHWM/ { print $2 }' "/proc/$agent/status") kB"
