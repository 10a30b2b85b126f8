#!/usr/bin/env bash
# Benchmark: agent-check replies per second, latency and memory, haproxide's
# agent against Datawave's HAProxy agent 1.0.0, side by side in one run.
#
#   bash bench/agent.sh [SECONDS]
#
# The load generator and both agents are in crates/haproxide/benches/agent.rs
# (1,000 concurrent clients: closed loop, then paced at 50,000 and 10,000
# checks a second); this script installs Datawave's agent in a cached venv
# and runs it. SECONDS per phase defaults to 5.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_cargo
need_venv datawave-venv "datawave_haproxy_agent==1.0.0"
DATAWAVE_AGENT="$VENV_DIR/bin/datawave-haproxy-agent" cargo bench -q -p haproxide --bench agent -- "${1:-5}"
