#!/usr/bin/env bash
# A check against a real Graphite store, run by hand (it is not part of the
# test suite, which uses carbon-c-relay): `process --once` sends a round to
# carbon-cache (Debian's graphite-carbon), and every value local-store wrote
# for it must be in carbon's whisper files, read back with python3-whisper.
#
#   bash scripts/check-carbon-cache.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_packages graphite-carbon python3-whisper
build_release
start_lab haproxide-carbon-cache

line_port=$(free_port)
pickle_port=$(free_port)
query_port=$(free_port)
CARBON=$DIR/carbon
mkdir -p "$CARBON/conf" "$CARBON/storage/whisper" "$CARBON/log"
cat >"$CARBON/conf/carbon.conf" <<CONF
[cache]
STORAGE_DIR = $CARBON/storage/
LOCAL_DATA_DIR = $CARBON/storage/whisper/
WHITELISTS_DIR = $CARBON/storage/lists/
CONF_DIR = $CARBON/conf/
LOG_DIR = $CARBON/log/
PID_DIR = $CARBON/
ENABLE_LOGROTATION = False
USER =
MAX_CACHE_SIZE = inf
MAX_UPDATES_PER_SECOND = 100000
MAX_CREATES_PER_MINUTE = inf
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = $line_port
ENABLE_UDP_LISTENER = False
PICKLE_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_PORT = $pickle_port
CACHE_QUERY_INTERFACE = 127.0.0.1
CACHE_QUERY_PORT = $query_port
WHISPER_AUTOFLUSH = True
CARBON_METRIC_INTERVAL = 0
CONF
printf '[default]\npattern = .*\nretentions = 1s:1h,1m:1d\n' >"$CARBON/conf/storage-schemas.conf"
carbon-cache --config="$CARBON/conf/carbon.conf" --pidfile="$CARBON/carbon.pid" --nodaemon \
    --logdir="$CARBON/log" start >"$CARBON/console.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 200); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $line_port), 0.1)" 2>/dev/null && break
    sleep 0.05
done

# A round of the synthetic fixture, named for now: whisper keeps 1 h of seconds.
round=$(date +%s)
mkdir -p "$DIR/incoming"
cp -r fixtures/haproxystats/synthetic-1700000000 "$DIR/incoming/$round"
printf '[process]\nsrc-dir = %s/incoming\n[local-store]\ndir = %s/local-store\n[graphite]\nserver = 127.0.0.1\nport = %s\nnamespace = check\nprefix-hostname = false\n' \
    "$DIR" "$DIR" "$line_port" >"$DIR/haproxystats.conf"
"$BIN" process --once -f "$DIR/haproxystats.conf"
echo "round $round: $(wc -l <"$DIR/local-store/$round/stats") lines in local-store, sent to carbon-cache on port $line_port"

# Debian's own python: python3-whisper is installed for it.
/usr/bin/python3 - "$DIR/local-store/$round/stats" "$CARBON/storage/whisper" <<'PY'
import os, sys, time
import whisper

stats, root = sys.argv[1], sys.argv[2]
expected = []
with open(stats) as lines:
    for line in lines:
        path, value, timestamp = line.split()
        expected.append((path, float(value), int(timestamp)))

def stored(path, timestamp):
    file = os.path.join(root, *path.split(".")) + ".wsp"
    if not os.path.exists(file):
        return None
    (start, _end, step), values = whisper.fetch(file, timestamp - 1, timestamp + 1)
    return values[(timestamp - start) // step]

deadline = time.time() + 30
while True:
    missing = [(p, v, t) for p, v, t in expected if stored(p, t) != v]
    if not missing or time.time() > deadline:
        break
    time.sleep(0.5)
found = len(expected) - len(missing)
print(f"{found} of {len(expected)} values found in whisper files, equal to local-store's")
for path in ("check.haproxy.frontend.fe_http.stot", "check.haproxy.backend.be_app.server.srv_two.stot",
             "check.haproxy.daemon.StdCpuUsagePct"):
    for p, v, t in expected:
        if p == path:
            print(f"  {p}: local-store {v:g}, whisper {stored(p, t):g}")
for p, v, t in missing[:10]:
    print(f"  missing or different: {p} {v} {t}: whisper has {stored(p, t)}", file=sys.stderr)
sys.exit(1 if missing else 0)
PY
