#!/usr/bin/env bash
# The test command: installs what the tests need (a Python venv with moto server and the template
# linters), starts moto on a free loopback port, runs formatting, lints and every test with the
# AWS suites pointed at moto, lints template.yaml, and stops moto. Exits non-zero on any failure;
# nothing is skipped: if moto cannot start, the run fails.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=".venv"
TOOLS_STAMP="$VENV/.orrery-tools-v3"
if [ ! -f "$TOOLS_STAMP" ]; then
  echo "==> installing test tools into $VENV (moto server, cfn-lint, aws-sam-cli, openapi-spec-validator, standardwebhooks)"
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
cleanup() {
  kill "$MOTO_PID" $REDIS_PID 2>/dev/null || true
  wait "$MOTO_PID" $REDIS_PID 2>/dev/null || true
  rm -f "$MOTO_LOG"
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
# The official Standard Webhooks library verifies real deliveries in the webhook tests.
export ORRERY_TEST_PYTHON="$PWD/$VENV/bin/python"
export ORRERY_TEST_MOTO_ENDPOINT="http://127.0.0.1:$MOTO_PORT"
export SAM_CLI_TELEMETRY=0
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> cargo test"
cargo test --workspace --locked

echo "==> OpenAPI document validation"
OPENAPI_JSON=$(mktemp --suffix=.json)
cargo run -q --locked -p orrery-openapi --example print > "$OPENAPI_JSON"
"$VENV/bin/openapi-spec-validator" "$OPENAPI_JSON"
rm -f "$OPENAPI_JSON"

echo "==> template lint"
"$VENV/bin/cfn-lint" template.yaml
"$VENV/bin/sam" validate --lint --template template.yaml --region us-east-1

echo "==> all checks passed"
