#!/usr/bin/env bash
# Load benchmark of orrery-local (issue #5): wrk on loopback against the release binary on the
# embedded (durable, group-committed) store, on this machine's two cores, load generator
# included. Prints one table row per scenario, then checks that every acknowledged chart was
# counted by the quota (acknowledged counts are never lost).
#
#   scripts/bench/load.sh [duration=20s] [connections=32]
#
# Needs wrk (Debian package `wrk`; installed here if missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${1:-20s}
CONNECTIONS=${2:-32}
THREADS=2

if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then APT=apt-get; else APT="sudo apt-get"; fi
  $APT update -qq && $APT install -y -qq wrk >/dev/null
fi
cargo build --release --locked -p orrery-local >/dev/null

WORK=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
# The bench account's tier must not run out mid-run: raise every limit.
python3 - "$WORK/tiers.json" <<'PY'
import json, sys
limits = {c: 100_000_000 for c in ["charts", "readings", "batch_items", "webhook_tests", "analytics", "management", "realtime_connections"]}
json.dump({t: limits for t in ["free", "basic", "premium", "unlimited"]}, open(sys.argv[1], "w"))
PY
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
ADMIN=orr_admin_bench_$(date +%s)
ORRERY_TIERS_FILE="$WORK/tiers.json" ORRERY_ADMIN_KEY=$ADMIN RUST_LOG=warn \
  "${CARGO_TARGET_DIR:-target}/release/orrery-local" --addr "127.0.0.1:$PORT" --data-dir "$WORK/data" >"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 100); do curl -fs "127.0.0.1:$PORT/health" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "127.0.0.1:$PORT/health" >/dev/null || { echo "orrery-local did not start:"; cat "$WORK/server.log"; exit 1; }

ACCOUNT=$(curl -fs -X POST "127.0.0.1:$PORT/v1/admin/accounts" -H "authorization: Bearer $ADMIN" \
  -H 'content-type: application/json' -d '{"name": "bench", "tier": "unlimited"}')
export ORRERY_BENCH_KEY=$(echo "$ACCOUNT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"]["key"])')
KEY_ID=$(echo "$ACCOUNT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"]["id"])')

row() { # name, wrk output
  python3 - "$1" "$2" <<'PY'
import re, sys
name, out = sys.argv[1], sys.argv[2]
m = re.search(r"RESULT (.*)", out)
f = dict(kv.split("=") for kv in m.group(1).split())
print(f"| {name} | {float(f['rps']):,.0f} | {int(f['p50_us'])/1000:.2f} | {int(f['p90_us'])/1000:.2f} | {int(f['p99_us'])/1000:.2f} | {f['requests']} | {f['non2xx']} | {f['errors']} |")
PY
}

echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION on 127.0.0.1 (orrery-local release, embedded store, $(nproc) cores)"
echo
echo "| scenario | req/s | p50 ms | p90 ms | p99 ms | requests | non-2xx | socket errors |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
# Warm-up: page in the binary and the ephemeris blocks.
WARMUP=$(wrk -t$THREADS -c$CONNECTIONS -d3s -s scripts/bench/charts.lua "http://127.0.0.1:$PORT")
HEALTH=$(wrk -t$THREADS -c$CONNECTIONS -d"$DURATION" -s scripts/bench/health.lua "http://127.0.0.1:$PORT/health")
row "GET /health (no auth, no IO)" "$HEALTH"
UNIQUE=$(ORRERY_BENCH_MODE=unique wrk -t$THREADS -c$CONNECTIONS -d"$DURATION" -s scripts/bench/charts.lua "http://127.0.0.1:$PORT")
row "POST /v1/charts, every chart new (auth + quota write + compute + JSON)" "$UNIQUE"
SAME=$(ORRERY_BENCH_MODE=same wrk -t$THREADS -c$CONNECTIONS -d"$DURATION" -s scripts/bench/charts.lua "http://127.0.0.1:$PORT")
row "POST /v1/charts, one chart repeated (cache hits)" "$SAME"

# Every acknowledged chart is in the quota counter: counted >= acknowledged (the difference is
# requests still in flight when wrk stopped, at most one per connection).
ACKED=$(python3 - "$WARMUP" "$UNIQUE" "$SAME" <<'PY'
import re, sys
total = 0
for out in sys.argv[1:]:
    f = dict(kv.split("=") for kv in re.search(r"RESULT (.*)", out).group(1).split())
    total += int(f["requests"]) - int(f["non2xx"])
print(total)
PY
)
sleep 1
COUNTED=$(curl -fs "127.0.0.1:$PORT/v1/api-keys/$KEY_ID/usage?days=1" -H "authorization: Bearer $ORRERY_BENCH_KEY" \
  | python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(day["counts"].get("charts", 0) for day in d["days"]))')
echo
echo "quota check: $ACKED charts acknowledged to wrk, $COUNTED counted by the quota"
if [ "$COUNTED" -lt "$ACKED" ]; then echo "LOST: fewer counted than acknowledged"; exit 1; fi
