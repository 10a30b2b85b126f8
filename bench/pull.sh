#!/usr/bin/env bash
# Benchmark: one pull round against 4 real HAProxy instances with 1,000
# backends x 10 servers each, side by side with socat dumping `show stat` of
# the slowest single socket, in the same run.
#
#   bash bench/pull.sh [ROUNDS]      (default 7 rounds; medians reported)
#
# Prints, per round: the socat time of each socket asked alone and the slowest
# of them (the issue's reference), the wall time of socat asking all four at
# once (the floor any collector faces: the four HAProxy processes share the
# machine's cores while they format their replies), and the wall time and peak
# RSS (GNU time) of `haproxide pull --once`; then medians.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-7}

source scripts/lib.sh
need_packages haproxy socat time bc
HAPROXY=/usr/sbin/haproxy
build_release
start_lab haproxide-bench

for i in 1 2 3 4; do
    {
        printf 'global\n    stats socket %s/run/hap%s.sock mode 600 level admin\n    maxconn 1000\n' "$DIR" "$i"
        printf 'defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n'
        printf 'frontend fe_main\n    bind unix@%s/fe%s.sock\n    default_backend be_000\n' "$DIR" "$i"
        for b in $(seq -w 0 999); do
            printf 'backend be_%s\n' "$b"
            for s in $(seq 1 10); do printf '    server srv%s 127.0.0.1:%s\n' "$s" $((20000 + s)); done
        done
    } >"$DIR/hap$i.cfg"
    "$HAPROXY" -db -f "$DIR/hap$i.cfg" >"$DIR/hap$i.log" 2>&1 &
    PIDS+=($!)
done
for i in 1 2 3 4; do
    for _ in $(seq 1 200); do [ -S "$DIR/run/hap$i.sock" ] && break; sleep 0.05; done
done
sleep 1

cat >"$DIR/pull.conf" <<EOF
[DEFAULT]
loglevel = warning
[pull]
socket-dir = $DIR/run
dst-dir = $DIR/spool/incoming
tmp-dst-dir = $DIR/spool/incoming.tmp
timeout = 1
read-timeout = 30
pull-timeout = 60
min-free-space = 0
EOF

bytes=$(echo "show stat" | socat -t 30 - "UNIX-CONNECT:$DIR/run/hap1.sock" | wc -c)
rows=$(echo "show stat" | socat -t 30 - "UNIX-CONNECT:$DIR/run/hap1.sock" | grep -vc -e '^#' -e '^$')
echo "HAProxy: $("$HAPROXY" -v | head -1)"
echo "4 instances, each show stat: $rows rows, $bytes bytes; $ROUNDS rounds"
printf '%-6s %-30s %-9s %-11s %-9s %-8s\n' round "socat alone, per socket (s)" slowest "socat x4 ||" pull peakRSS

now() { date +%s.%N; }
socat_all_at_once() {
    local jobs=()
    for i in 1 2 3 4; do
        (echo "show stat" | socat -t 30 - "UNIX-CONNECT:$DIR/run/hap$i.sock" >/dev/null) &
        jobs+=($!)
    done
    wait "${jobs[@]}"
}
slowest_all=()
parallel_all=()
pull_all=()
rss_all=()
for round in $(seq 1 "$ROUNDS"); do
    times=()
    for i in 1 2 3 4; do
        start=$(now)
        echo "show stat" | socat -t 30 - "UNIX-CONNECT:$DIR/run/hap$i.sock" >/dev/null
        times+=("$(echo "$(now) - $start" | bc)")
    done
    slowest=$(printf '%s\n' "${times[@]}" | sort -g | tail -1)
    start=$(now)
    socat_all_at_once
    parallel=$(echo "$(now) - $start" | bc)
    rm -rf "$DIR/spool"
    start=$(now)
    /usr/bin/time -f '%M' -o "$DIR/time.txt" "$BIN" pull --once -f "$DIR/pull.conf"
    pull_seconds=$(echo "$(now) - $start" | bc)
    read -r rss_kb <"$DIR/time.txt"
    delivered=$(ls "$DIR/spool/incoming"/*/ | grep -c _stat)
    [ "$delivered" -eq 4 ] || { echo "round $round delivered $delivered stat files, not 4" >&2; exit 1; }
    printf '%-6s %-30s %-9.3f %-11.3f %-9.3f %-8s\n' "$round" "$(printf '%.3f ' "${times[@]}")" "$slowest" \
        "$parallel" "$pull_seconds" "$((rss_kb / 1024)) MB"
    slowest_all+=("$slowest")
    parallel_all+=("$parallel")
    pull_all+=("$pull_seconds")
    rss_all+=("$rss_kb")
done

s=$(median "${slowest_all[@]}")
a=$(median "${parallel_all[@]}")
p=$(median "${pull_all[@]}")
r=$(printf '%s\n' "${rss_all[@]}" | sort -g | tail -1)
printf 'median slowest single socat dump:        %.3f s\n' "$s"
printf 'median socat, all four sockets at once:   %.3f s\n' "$a"
printf 'median haproxide pull --once:             %.3f s  (4 sockets, show info + show stat, fsynced, delivered)\n' "$p"
echo "ratio pull / slowest single socat:   $(echo "scale=2; $p / $s" | bc)"
echo "ratio pull / socat all four at once: $(echo "scale=2; $p / $a" | bc)"
echo "peak RSS of pull over all rounds: $((r / 1024)) MB ($r kB)"
