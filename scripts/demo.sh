#!/usr/bin/env bash
# The haproxide demo: builds haproxide, starts two real HAProxy instances on
# loopback in a temporary directory (the second in master-worker mode with a
# master CLI), sends them some HTTP traffic, shows `haproxide query` and one
# screen of `haproxide top` at work,
# then runs `haproxide pull` and shows the spool filling, and `haproxide
# process`, which aggregates the rounds into the local store, then a
# cluster of the two instances pulled as two load balancers, served to
# Prometheus as well, and finally
# `haproxide reload` of the master-worker instance while traffic runs
# through it: a good reload, a broken file that changes nothing, JSON steps;
# then `haproxide backends`, which fills an empty backend from a targets file
# and follows the file's edits, at run time and then through a template
# rendered into the configuration and reloaded; the agent run as Datawave's
# `datawave-haproxy-agent -c config.yml`; last `haproxide logs`. The Nagios
# checks judge the pipeline, the agent and the logs daemon on the way.
# Everything it starts is stopped and removed when it exits.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib.sh
need_packages haproxy curl tmux
HAPROXY=/usr/sbin/haproxy
echo "== building haproxide (release)"
build_release
start_lab haproxide-demo

start_instance() { # index, extra haproxy flags...
    local index=$1; shift
    local fe app1 app2
    fe=$(free_port); app1=$(free_port); app2=$(free_port)
    cat >"$DIR/hap$index.cfg" <<EOF
global
    stats socket $DIR/run/hap$index.sock mode 600 level admin expose-fd listeners
    server-state-file $DIR/hap$index.state
defaults
    mode http
    load-server-state-from-file global
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend fe_main
    bind 127.0.0.1:$fe
    default_backend be_app
backend be_app
    balance roundrobin
    server s1 127.0.0.1:$app1 check inter 1s
    server s2 127.0.0.1:$app2 check inter 1s
backend be_pool
    balance roundrobin
frontend app
    bind 127.0.0.1:$app1
    bind 127.0.0.1:$app2
    http-request return status 200 content-type text/plain string "hello from instance $index"
EOF
    "$HAPROXY" -c -q -f "$DIR/hap$index.cfg"
    "$HAPROXY" "$@" -db -f "$DIR/hap$index.cfg" >"$DIR/hap$index.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 100); do [ -S "$DIR/run/hap$index.sock" ] && break; sleep 0.05; done
    echo "$fe" >"$DIR/hap$index.port"
    echo "$app1 $app2" >"$DIR/hap$index.apps"
}

get() { # port: one HTTP/1.0 request
    exec 3<>"/dev/tcp/127.0.0.1/$1"
    printf 'GET / HTTP/1.0\r\nHost: demo\r\n\r\n' >&3
    cat <&3 >/dev/null
    exec 3>&-
}

echo "== starting two HAProxy instances in $DIR ($("$HAPROXY" -v | head -1))"
start_instance 1
start_instance 2 -W -S "$DIR/master.sock,mode,600" -p "$DIR/hap2.pid"
sleep 1.2 # let the first health checks pass
for _ in $(seq 1 12); do get "$(cat "$DIR/hap1.port")"; done
for _ in $(seq 1 30); do get "$(cat "$DIR/hap2.port")"; done

show() { echo; echo "\$ haproxide $*"; "$BIN" "$@"; }

show query --socket-dir "$DIR/run" --format table "show stat"
show query --socket-dir "$DIR/run" --format table --columns pxname,svname,status,stot,hrsp_2xx,lbtot "show stat"
echo; echo "\$ haproxide query --socket-dir $DIR/run --format json 'show stat' | head -3"
"$BIN" query --socket-dir "$DIR/run" --format json "show stat" | head -3 | cut -c1-220

echo; echo "\$ haproxide top --socket-dir $DIR/run    # a live view of both; here one screen of it, in a 100x14 tmux"
TMUX_SERVER=haproxide-demo-$$
tmux -L "$TMUX_SERVER" -f /dev/null new-session -d -x 100 -y 14 "$BIN" top --socket-dir "$DIR/run" --interval 0.5
sleep 1.5 # two refreshes: rates need two replies
tmux -L "$TMUX_SERVER" capture-pane -p | sed -e 's/ *$//'
tmux -L "$TMUX_SERVER" kill-server
echo; echo "\$ haproxide query --socket-dir $DIR/run --format table 'show info' | head -12"
"$BIN" query --socket-dir "$DIR/run" --format table "show info" | head -12
echo; echo "\$ haproxide query -s $DIR/master.sock '@1 show info' | head -8   # master CLI, routed to worker 1"
"$BIN" query -s "$DIR/master.sock" "@1 show info" | head -8

printf '[pull]\nsocket-dir = %s/run\ndst-dir = %s/spool/incoming\ntmp-dst-dir = %s/spool/incoming.tmp\npull-interval = 1\n[process]\nsrc-dir = %s/spool/incoming\n[local-store]\ndir = %s/local-store\n[graphite]\nenabled = false\n' \
    "$DIR" "$DIR" "$DIR" "$DIR" "$DIR" >"$DIR/haproxystats.conf"
echo; echo "\$ cat $DIR/haproxystats.conf"; cat "$DIR/haproxystats.conf"
show check-config -f "$DIR/haproxystats.conf"
# A typo and a value Graphite could not take: both named with file and line.
printf '[graphite]\nnamespace = lb prod\nprefix_hostname = false\n' >"$DIR/typo.conf"
show check-config -f "$DIR/typo.conf" || echo "(exit status $?: the configuration is invalid)"
echo; echo "\$ haproxide pull -f $DIR/haproxystats.conf    # runs 3.5 s, then SIGTERM"
"$BIN" pull -f "$DIR/haproxystats.conf" &
PULL=$!
sleep 3.5
kill -TERM "$PULL"
wait "$PULL" && echo "(pull exited with status 0)"
first=$(ls "$DIR/spool/incoming" | head -1)
echo; echo "\$ ls $DIR/spool/incoming; ls -l $DIR/spool/incoming/$first"
ls "$DIR/spool/incoming"
ls -l "$DIR/spool/incoming/$first"

echo; echo "\$ haproxide process -f $DIR/haproxystats.conf --once    # aggregate every round into local-store"
"$BIN" process -f "$DIR/haproxystats.conf" --once
echo; echo "\$ grep -e fe_main.stot -e be_app.server -e CurrConns $DIR/local-store/$first/stats | head"
grep -e 'frontend.fe_main.stot' -e 'be_app.server.s1.stot' -e 'be_app.server.s2.stot' -e 'daemon.CurrConns' \
    "$DIR/local-store/$first/stats"
echo; echo "# Nagios/Icinga checks of the pipeline (exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN):"
show check spool -f "$DIR/haproxystats.conf"
show check process -f "$DIR/haproxystats.conf"

echo; echo "== a cluster: each instance pulled as a load balancer of its own (lb1, lb2), then added up"
for n in 1 2; do
    printf '[pull]\nservers = unix://%s/run/hap%s.sock\nhostname = lb%s\ndst-dir = %s/cluster/incoming\ntmp-dst-dir = %s/cluster/incoming.tmp\n' \
        "$DIR" "$n" "$n" "$DIR" "$DIR" >"$DIR/lb$n.conf"
    "$BIN" pull -f "$DIR/lb$n.conf" --once 2>/dev/null
done
PROMETHEUS_PORT=$(free_port)
printf '[process]\nsrc-dir = %s/cluster/incoming\n[local-store]\ndir = %s/cluster/local-store\n[graphite]\nenabled = false\n[cluster:demo]\nhosts = lb1 lb2\nwindow = 60\ngrace = 0\n[prometheus]\nenabled = true\nbind = 127.0.0.1:%s\n' \
    "$DIR" "$DIR" "$PROMETHEUS_PORT" >"$DIR/cluster.conf"
echo "\$ cat $DIR/cluster.conf"; cat "$DIR/cluster.conf"
echo; echo "\$ haproxide process -f $DIR/cluster.conf    # lb1's round, lb2's, and the cluster's; SIGTERM once all three are delivered"
"$BIN" process -f "$DIR/cluster.conf" &
CLUSTER_PROCESS=$!
for _ in $(seq 1 100); do
    [ "$(ls "$DIR/cluster/local-store" 2>/dev/null | wc -l)" -ge 3 ] && break
    sleep 0.1
done
echo; echo "\$ grep -h -e fe_main.stot -e ClusterHosts $DIR/cluster/local-store/*/stats"
grep -h -e 'frontend.fe_main.stot' -e 'ClusterHosts ' "$DIR"/cluster/local-store/*/stats
echo; echo "\$ curl -s http://127.0.0.1:$PROMETHEUS_PORT/metrics | grep -e '^haproxy_frontend_http_requests_total' -e 'server_status.*s1.*UP'    # named as HAProxy's own exporter names them"
curl -s "http://127.0.0.1:$PROMETHEUS_PORT/metrics" | grep -e '^haproxy_frontend_http_requests_total' -e 'server_status.*s1.*UP'
kill -TERM "$CLUSTER_PROCESS"; wait "$CLUSTER_PROCESS" 2>/dev/null || true

echo; echo "== stopping instance 1: its socket file stays behind, stale"
kill "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true
show query --socket-dir "$DIR/run" --format table --columns pxname,svname,status,stot "show stat" || echo "(exit status $?: one socket failed, the other still answered)"
echo; echo "\$ haproxide pull -f $DIR/haproxystats.conf --once"
"$BIN" pull -f "$DIR/haproxystats.conf" --once || echo "(exit status $?: hap1.sock failed, hap2.sock's data was still delivered)"
last=$(ls "$DIR/spool/incoming" | sort -t. -k1,1n -k2,2n | tail -1)
echo; echo "\$ ls $DIR/spool/incoming/$last; cat $DIR/spool/incoming/$last/manifest.json"
ls "$DIR/spool/incoming/$last"
cat "$DIR/spool/incoming/$last/manifest.json"

echo; echo "== reloading the master-worker instance while HTTP traffic runs through it"
traffic() { # port, seconds: one request after the other; prints "sent failed"
    local sent=0 failed=0 end=$((SECONDS + $2))
    while [ $SECONDS -lt $end ]; do
        sent=$((sent + 1))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'GET / HTTP/1.0\r\nHost: demo\r\n\r\n' >&3 && grep -q '^HTTP/1.[01] 200' <&3) 2>/dev/null; then
            failed=$((failed + 1))
        fi
    done
    echo "$sent $failed"
}
traffic "$(cat "$DIR/hap2.port")" 6 >"$DIR/traffic.out" &
TRAFFIC=$!
RELOAD=("$BIN" reload --config "$DIR/hap2.cfg" --master-socket "$DIR/master.sock" --pid-file "$DIR/hap2.pid" --haproxy "$HAPROXY")
echo; echo "\$ haproxide query -s $DIR/run/hap2.sock 'set server be_app/s2 weight 7'   # a runtime change"
"$BIN" query -s "$DIR/run/hap2.sock" "set server be_app/s2 weight 7"
echo; echo "\$ haproxide reload --config $DIR/hap2.cfg --master-socket $DIR/master.sock"
"${RELOAD[@]}"
echo; echo "\$ haproxide query -s $DIR/run/hap2.sock 'get weight be_app/s2'   # kept through the state file"
"$BIN" query -s "$DIR/run/hap2.sock" "get weight be_app/s2"
cp "$DIR/hap2.cfg" "$DIR/hap2.cfg.good"
printf '    timeout clinet 5s\n' >>"$DIR/hap2.cfg"
echo; echo "\$ echo '    timeout clinet 5s' >> $DIR/hap2.cfg; haproxide reload ...   # a typo"
"${RELOAD[@]}" || echo "(exit status $?: HAProxy's own error is shown, nothing was changed)"
mv "$DIR/hap2.cfg.good" "$DIR/hap2.cfg"
echo; echo "\$ haproxide reload ... --format json"
"${RELOAD[@]}" --format json
wait "$TRAFFIC"
read -r sent failed <"$DIR/traffic.out"
echo; echo "== $sent HTTP requests during the reloads, $failed failed"

echo; echo "== backends: be_pool of the master-worker instance follows a targets file"
read -r app1 app2 <"$DIR/hap2.apps"
printf '# address:port [weight]\n127.0.0.1:%s\n' "$app1" >"$DIR/targets"
cat >"$DIR/backends.conf" <<EOF
[backends]
lock-file = $DIR/backends.lock

[backend:be_pool]
source = file
file = $DIR/targets
sockets = $DIR/run/hap2.sock
server-options = check inter 1s
EOF
echo; echo "\$ cat $DIR/backends.conf"; cat "$DIR/backends.conf"
show backends -f "$DIR/backends.conf" --dry-run
show backends -f "$DIR/backends.conf" --once
echo; echo "\$ haproxide backends -f $DIR/backends.conf &    # follows the file"
"$BIN" backends -f "$DIR/backends.conf" >"$DIR/backends.log" 2>&1 &
CONTROLLER=$!
sleep 0.5
echo "\$ echo '127.0.0.1:$app2 5' >> $DIR/targets    # a second server, weight 5"
printf '127.0.0.1:%s 5\n' "$app2" >>"$DIR/targets"
for _ in $(seq 1 50); do grep -q "adding srv_127.0.0.1_$app2" "$DIR/backends.log" && break; sleep 0.1; done
kill -TERM "$CONTROLLER"
wait "$CONTROLLER" || echo "(the controller exited with status $?)"
cat "$DIR/backends.log"
sleep 2 # two health checks
show query -s "$DIR/run/hap2.sock" --format table --columns pxname,svname,addr,weight,status "show stat be_pool 4 -1"

echo; echo "== backends, template path: be_pool's servers written into hap2.cfg from a template, validated, reloaded"
awk '{ print } /^backend be_pool$/ { getline; print
    print "{% for s in servers %}    server {{ s.name }} {{ s.address }}:{{ s.port }} {{ s.options }}{% if s.weight %} weight {{ s.weight }}{% endif %}"
    print "{% endfor %}" }' "$DIR/hap2.cfg" >"$DIR/hap2.cfg.j2"
cat >"$DIR/template.conf" <<EOF
[backends]
lock-file = $DIR/backends.lock

[backend:be_pool]
source = file
file = $DIR/targets
mode = template
sockets = $DIR/run/hap2.sock
server-options = check inter 1s

[template]
template = $DIR/hap2.cfg.j2
target = $DIR/hap2.cfg

[reload]
config = $DIR/hap2.cfg
master-socket = $DIR/master.sock
pid-file = $DIR/hap2.pid
haproxy = $HAPROXY
EOF
echo; echo "\$ grep -A3 'backend be_pool' $DIR/hap2.cfg.j2"; grep -A3 'backend be_pool' "$DIR/hap2.cfg.j2"
show backends -f "$DIR/template.conf" --once
echo; echo "\$ grep -A3 'backend be_pool' $DIR/hap2.cfg    # rendered, validated, renamed into place, reloaded"
grep -A3 'backend be_pool' "$DIR/hap2.cfg"
sleep 2 # two health checks of the new worker
show query -s "$DIR/run/hap2.sock" --format table --columns pxname,svname,addr,weight,status "show stat be_pool 4 -1"

echo; echo "== agent: Datawave's agent's command line and config.yml, through the datawave-haproxy-agent name"
HEALTH=$(free_port)
AGENT=$(free_port)
# The service's health endpoint, as Datawave's HealthBean answers: 80% of its connections in use, load 0.5.
mkdir -p "$DIR/health/DataWave/Common/Health"
printf '{"ConnectionUsagePercent": 80, "Status": "ready", "SystemLoad": 0.5, "SwapBytesUsed": 0}' \
    >"$DIR/health/DataWave/Common/Health/health"
python3 -m http.server --bind 127.0.0.1 --directory "$DIR/health" "$HEALTH" >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$HEALTH/DataWave/Common/Health/health" >/dev/null && break; sleep 0.1; done
cat >"$DIR/config.yml" <<EOF
bind: 127.0.0.1
port: $AGENT
dw_health_poller:
  check_url: http://127.0.0.1:$HEALTH/DataWave/Common/Health/health
  check_timeout: 10.0
  interval: 1.0
  unavailable_response: "0% drain"
  stop_timeout: 0
EOF
ln -s "$BIN" "$DIR/datawave-haproxy-agent"
echo; echo "\$ cat $DIR/config.yml"; cat "$DIR/config.yml"
echo; echo "\$ datawave-haproxy-agent -c $DIR/config.yml -p 6000 &    # the file's port wins, as with Datawave's agent"
"$DIR/datawave-haproxy-agent" -c "$DIR/config.yml" -p 6000 >"$DIR/agent.log" 2>&1 &
DATAWAVE=$!
for _ in $(seq 1 50); do grep -q "replying" "$DIR/agent.log" 2>/dev/null && break; sleep 0.1; done
# The reply HAProxy's agent-check reads: 1 - 0.8 x 0.7 - 0.5 x 0.4 = 24% of the server's weight.
show check agent --host 127.0.0.1 --port "$AGENT" || echo "(exit status $?)"
kill -TERM "$DATAWAVE"
wait "$DATAWAVE" || echo "(the agent exited with status $?)"
cat "$DIR/agent.log"

echo; echo "== logs: request logs to Kafka as JSON; Kafka is down here, so nothing is lost to the disk buffer"
METRICS=$(free_port)
cat >"$DIR/logs.conf" <<EOF
[logs]
hostname = demo.example

[logs-socket]
path = $DIR/run/log.sock

[logs-kafka]
topic = webrequest_text
dlq-topic = webrequest_errors

[logs-rdkafka]
bootstrap.servers = 127.0.0.1:9
message.timeout.ms = 1000

[logs-buffer]
dir = $DIR/logs-buffer

[logs-monitoring]
server-bind = 127.0.0.1:$METRICS
EOF
echo; echo "\$ cat $DIR/logs.conf"; cat "$DIR/logs.conf"
echo; echo "\$ haproxide logs -f $DIR/logs.conf &"
"$BIN" logs -f "$DIR/logs.conf" >"$DIR/logs.log" 2>&1 &
LOGS=$!
for _ in $(seq 1 50); do [ -S "$DIR/run/log.sock" ] && break; sleep 0.1; done
echo "\$ (five datagrams HAProxy 2.6 wrote, and one that is not syslog) > $DIR/run/log.sock"
python3 - "$DIR/run/log.sock" fixtures/haproxy-2.6.12-debian/log_rfc5424_sd_unixdgram.txt <<'PY'
import socket, sys
sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for line in open(sys.argv[2], "rb").read().splitlines():
    sender.sendto(line + b"\n", sys.argv[1])
sender.sendto(b"not a log line\n", sys.argv[1])
PY
sleep 2.5 # librdkafka gives up on each message after message.timeout.ms
echo; echo "\$ curl -s http://127.0.0.1:$METRICS/metrics | grep -E 'parsed|rejected|valid|buffered|queued'"
python3 -c "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:$METRICS/metrics').read().decode())" \
    | grep -E '^haproxykafka_(parsed|rejected|valid|buffered|kafka_queued)'
show check logs -f "$DIR/logs.conf" || echo "(exit status $?: WARNING, Kafka is down)"
kill -TERM "$LOGS"
wait "$LOGS" || echo "(logs exited with status $?)"
cat "$DIR/logs.log"
