#!/usr/bin/env bash
# Benchmark: one scrape of haproxide's Prometheus endpoint, serving the
# benchmark generator's default round (4 sockets x 11,200 rows, aggregated
# into one), side by side in one run with the same scrape of:
#   - PROMEX, HAProxy's own exporter, of one real HAProxy (Debian's 2.6)
#     with the generator's shape: 200 frontends, 1,000 backends x 10 servers;
#   - Debian's prometheus-haproxy-exporter 0.14 reading that HAProxy's
#     stats socket (fetched once into the cache, never installed).
#
#   bash bench/prometheus.sh ROUND_DIR [SCRAPES]
#
# Each endpoint is scraped SCRAPES times (default 20) by curl, one after
# the other: time to first byte, total time and bytes, medians printed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_packages haproxy curl
ROUND=${1:?usage: bash $0 ROUND_DIR [SCRAPES]}
ROUND=$(cd "$ROUND" && pwd)
SCRAPES=${2:-20}
EXPORTER_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/haproxide/haproxy-exporter-0.14
fetch_deb bookworm prometheus-haproxy-exporter "$EXPORTER_CACHE" usr/bin/prometheus-haproxy-exporter --version
EXPORTER=$EXPORTER_CACHE/usr/bin/prometheus-haproxy-exporter
build_release
start_lab haproxide-prometheus-bench

# haproxide: the round in a spool, `process` serving it.
ours=$(free_port)
mkdir -p "$DIR/incoming"
cp -r "$ROUND" "$DIR/staging"
mv "$DIR/staging" "$DIR/incoming/1700000000"
printf '[DEFAULT]\nloglevel = warning\n[process]\nsrc-dir = %s/incoming\n[graphite]\nenabled = false\n[prometheus]\nenabled = true\nbind = 127.0.0.1:%s\n' \
    "$DIR" "$ours" >"$DIR/haproxide.conf"
"$BIN" process -f "$DIR/haproxide.conf" >"$DIR/process.log" 2>&1 &
PROCESS_PID=$!
PIDS+=("$PROCESS_PID")

# HAProxy with the generator's shape and PROMEX; the exporter on its socket.
promex=$(free_port)
generator_shaped_haproxy "$DIR/run/hap.sock" \
    "$(printf 'frontend fe_promex\n    bind 127.0.0.1:%s\n    http-request use-service prometheus-exporter if { path /metrics }\n' "$promex")
" >"$DIR/haproxy.cfg"
haproxy -db -f "$DIR/haproxy.cfg" >"$DIR/haproxy.log" 2>&1 &
PIDS+=($!)
exporter=$(free_port)
"$EXPORTER" --haproxy.scrape-uri="unix:$DIR/run/hap.sock" --web.listen-address="127.0.0.1:$exporter" \
    >"$DIR/exporter.log" 2>&1 &
PIDS+=($!)

# Ready: haproxide serves the round, HAProxy and the exporter answer.
ready() { curl -sf "$1" 2>/dev/null | grep -q "$2"; }
for _ in $(seq 1 600); do
    ready "http://127.0.0.1:$ours/metrics" '^haproxy_server_sessions_total' &&
        ready "http://127.0.0.1:$promex/metrics" '^haproxy_server_sessions_total' &&
        ready "http://127.0.0.1:$exporter/metrics" '^haproxy_up 1' && break
    sleep 0.2
done

# $1: label, $2: URL. SCRAPES scrapes; medians of first byte and total (ms), bytes.
measure() {
    local label=$1 url=$2 first=() total=() bytes=() line
    for _ in $(seq 1 "$SCRAPES"); do
        line=$(curl -s -o /dev/null -w '%{time_starttransfer} %{time_total} %{size_download}' "$url")
        read -r f t b <<<"$line"
        first+=("$(echo "$f * 1000" | bc -l)"); total+=("$(echo "$t * 1000" | bc -l)"); bytes+=("$b")
    done
    printf '%-58s first byte %7.1f ms, total %7.1f ms, %9d bytes, %7d series\n' "$label" \
        "$(median "${first[@]}")" "$(median "${total[@]}")" "$(median "${bytes[@]}")" \
        "$(curl -s "$url" | grep -vc '^#')"
}
echo "== one scrape, median of $SCRAPES, one after the other"
measure "haproxide, the round of 4 processes aggregated" "http://127.0.0.1:$ours/metrics"
measure "PROMEX of one HAProxy (200 fe, 1,000 be x 10 srv)" "http://127.0.0.1:$promex/metrics"
measure "prometheus-haproxy-exporter 0.14 on that HAProxy" "http://127.0.0.1:$exporter/metrics"
echo "== haproxide: rendering the round when it arrived (once a round), and its memory"
curl -s "http://127.0.0.1:$ours/metrics" | grep '^haproxide_prometheus_render_seconds'
grep -E '^Vm(HWM|RSS)' "/proc/$PROCESS_PID/status"
