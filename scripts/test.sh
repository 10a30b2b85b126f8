#!/usr/bin/env bash
# The whole test suite: installs what the tests need (Debian's HAProxy and
# carbon-c-relay, Consul 1.8.7 from Debian bullseye, moto_server from PyPI, Prometheus and promtool from Debian 12 and
# tansu 0.6.0 built from crates.io into the cache, which the integration tests start on loopback), then runs
# formatting and lint checks and every test of the workspace, then the
# integration tests that talk to HAProxy (reload, backends, query, pull,
# process and the runtime client) once more on HAProxy 3.0, built once from Debian
# trixie's source into the cache by scripts/haproxy30.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib.sh
[ -x "${HAPROXY_BIN:-/usr/sbin/haproxy}" ] || need_packages haproxy
# systemd-analyze checks the units of dist/systemd; tmux is the terminal top is tested in.
need_packages carbon-c-relay systemd tmux
need_cargo
# A real Consul for the backends tests, fetched once into the cache.
CONSUL_BIN=$(bash scripts/consul.sh)
export CONSUL_BIN
# moto_server, the AWS API the backends tests' Auto Scaling groups live in,
# installed once into a virtualenv in the cache.
MOTO_BIN=$(bash scripts/moto.sh)
export MOTO_BIN
# A real Kafka-protocol broker for the logs tests, built once into the cache
# (10 to 16 minutes the first time on 2 cores).
TANSU_BIN=$(bash scripts/tansu.sh)
export TANSU_BIN
# Prometheus 2.42 and promtool (one Debian package, extracted): promtool checks every
# /metrics exposition; the prometheus sink's tests scrape with the real server.
PROMTOOL_BIN=$(bash scripts/promtool.sh)
export PROMTOOL_BIN
echo "== $("${HAPROXY_BIN:-/usr/sbin/haproxy}" -v | head -1)"
# The build and its test binaries need about 2 GB; say what the disk has, so
# that a link that fails for space is told apart from one that fails for code.
echo "== disk: $(df -h --output=avail . | tail -1 | tr -d ' ') free where the build goes"

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace 2>&1 | tee "$log"

HAPROXY_30=$(bash scripts/haproxy30.sh)
echo "== cargo test (the HAProxy integration tests) on $("$HAPROXY_30" -v | head -1)"
HAPROXY_BIN=$HAPROXY_30 cargo test -p haproxy --test client -p haproxide \
    --test reload --test backends --test query --test pull --test process 2>&1 | tee -a "$log"
# One closing line for the whole run: the sum of every test binary's results.
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "%d passed, %d failed\n", passed, failed }' "$log"
