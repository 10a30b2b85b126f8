#!/usr/bin/env bash
# Benchmark: convergence time of `haproxide backends`, from a change in
# Consul (the agent's registration API answered) to HAProxy's `show stat`
# showing it, over CHANGES changes (default 20: instances registered and
# deregistered in turn), median and max.
#
#   bash bench/backends.sh [CHANGES] [RELOADS]
#
# Two runs, side by side: blocking queries (the default, consul-wait = 30),
# and polling every 5 s (consul-wait = 0, poll-interval = 5), which is
# ElasticPyProxy's schedule with its default sleep_before_next_run = 5.
# Then RELOADS (default 10) master-CLI reloads of HAProxy, each timed until
# the new worker serves every instance again: in a backend of dynamic
# servers (which the controller adds again) and in one of server-template
# slots with `state-file` as HAProxy's server-state-file (back at once).
# EP2 itself cannot be run here: it is not on PyPI and GitHub is out of
# reach, so its schedule is reproduced with haproxide's polling mode.
#
# Real peers on loopback: Consul 1.8.7 (scripts/consul.sh), Debian's HAProxy
# (or $HAPROXY_BIN) in master-worker mode, whose own frontends play the
# service's instances.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_packages haproxy python3
CHANGES=${1:-20}
RELOADS=${2:-10}
HAPROXY=${HAPROXY_BIN:-/usr/sbin/haproxy}
CONSUL=$(bash scripts/consul.sh)
build_release
start_lab haproxide-backends-bench

ports=()
for _ in $(seq 1 6); do ports+=("$(free_port)"); done
"$CONSUL" agent -dev -node=bench -bind=127.0.0.1 -client=127.0.0.1 -log-level=error \
    -http-port="${ports[0]}" -dns-port="${ports[1]}" -serf-lan-port="${ports[2]}" \
    -serf-wan-port="${ports[3]}" -server-port="${ports[4]}" -grpc-port="${ports[5]}" \
    -data-dir="$DIR/consul" >"$DIR/consul.log" 2>&1 &
PIDS+=($!)
CONSUL_ADDRESS=127.0.0.1:${ports[0]}

# Ten instances: HAProxy frontends answering 200, and the backend under test.
instance_ports=()
for _ in $(seq 1 10); do instance_ports+=("$(free_port)"); done
fe=$(free_port)
{
    printf 'global\n    stats socket %s/run/hap.sock mode 600 level admin\n' "$DIR"
    printf '    server-state-file %s/hap.state\n' "$DIR"
    printf 'defaults\n    mode http\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n'
    printf '    load-server-state-from-file global\n'
    printf 'frontend fe_dyn\n    bind 127.0.0.1:%s\n    default_backend be_dyn\n' "$fe"
    printf 'backend be_dyn\n    balance roundrobin\n'
    printf 'backend be_slot\n    balance roundrobin\n'
    printf '    server-template slot 1-12 placeholder.invalid:1 init-addr last,0.0.0.0 disabled\n'
    printf 'frontend instances\n'
    for port in "${instance_ports[@]}"; do printf '    bind 127.0.0.1:%s\n' "$port"; done
    printf '    http-request return status 200 content-type text/plain string ok\n'
} >"$DIR/hap.cfg"
"$HAPROXY" -W -S "$DIR/master.sock" -db -f "$DIR/hap.cfg" >"$DIR/hap.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do [ -S "$DIR/run/hap.sock" ] && break; sleep 0.05; done
for _ in $(seq 1 100); do
    curl -sf "http://$CONSUL_ADDRESS/v1/status/leader" | grep -q 127.0.0.1 && break
    sleep 0.1
done

section() { # backend, extra lines
    printf '[backend:%s]\nconsul-address = %s\nconsul-service = web\nsockets = %s/run/hap.sock\ndrain-timeout = 1\n%b\n' \
        "$1" "$CONSUL_ADDRESS" "$DIR" "$2"
}
controller() { # sections...: starts the controller on them
    { printf '[DEFAULT]\nloglevel = warning\n[backends]\nlock-file = %s/backends.lock\n' "$DIR"; printf '%s\n' "$@"; } >"$DIR/backends.conf"
    "$BIN" backends -f "$DIR/backends.conf" 2>>"$DIR/backends.log" &
    CONTROLLER=$!
}
stop_controller() {
    kill -TERM "$CONTROLLER"
    wait "$CONTROLLER"
}
run() { # label, extra [backend:be_dyn] lines
    controller "$(section be_dyn "$2")"
    python3 bench/converge.py changes "$CONSUL_ADDRESS" "$DIR/run/hap.sock" be_dyn "$CHANGES" "$1" "${instance_ports[@]}"
    stop_controller
}

echo "== convergence over $CHANGES Consul changes ($("$HAPROXY" -v | head -1 | cut -d' ' -f1-3), Consul $("$CONSUL" version | head -1 | cut -d' ' -f2))"
run "haproxide, blocking queries (consul-wait = 30)" ""
run "EP2's schedule: a poll every 5 s (consul-wait = 0, poll-interval = 5)" 'consul-wait = 0\npoll-interval = 5\n'

echo "== $RELOADS reloads by the master CLI, 4 instances registered"
controller "$(section be_dyn "")" "$(section be_slot "state-file = $DIR/hap.state\n")"
python3 bench/converge.py reloads "$CONSUL_ADDRESS" "$DIR/run/hap.sock" "$DIR/master.sock" "$RELOADS" \
    be_dyn be_slot -- "${instance_ports[@]:0:4}"
stop_controller
