#!/usr/bin/env bash
# Generated clients against a live server: the served OpenAPI document is turned into a Python
# client (openapi-python-client) and a TypeScript client (openapi-typescript + openapi-fetch),
# each type-checked (mypy, tsc --noEmit) and run through a short scenario
# (scripts/clients/{python,typescript}/). Generators and checkers are pinned and installed from
# PyPI and npm into target/clients/. Any error fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."

OPENAPI_PYTHON_CLIENT_VERSION=0.29.1
MYPY_VERSION=1.19.1
PYTHON_DATEUTIL_VERSION=2.9.0.post0
TYPES_PYTHON_DATEUTIL_VERSION=2.9.0.20261122
work=target/clients
mkdir -p "$work"

# Tools (kept between runs; reinstalled when a pin changes).
if ! "$work/pyenv/bin/openapi-python-client" --version 2>/dev/null | grep -qF "$OPENAPI_PYTHON_CLIENT_VERSION" ||
   ! "$work/pyenv/bin/mypy" --version 2>/dev/null | grep -qF "$MYPY_VERSION"; then
  python3 -m venv "$work/pyenv"
  "$work/pyenv/bin/pip" install --quiet --disable-pip-version-check \
    "openapi-python-client==$OPENAPI_PYTHON_CLIENT_VERSION" "mypy==$MYPY_VERSION" \
    "python-dateutil==$PYTHON_DATEUTIL_VERSION" "types-python-dateutil==$TYPES_PYTHON_DATEUTIL_VERSION"
fi
mkdir -p "$work/ts"
cp scripts/clients/typescript/package.json scripts/clients/typescript/package-lock.json \
  scripts/clients/typescript/tsconfig.json scripts/clients/typescript/scenario.ts "$work/ts/"
[ -d "$work/ts/node_modules/openapi-fetch" ] && cmp -s scripts/clients/typescript/package-lock.json "$work/ts/.installed-lock" ||
  { (cd "$work/ts" && npm ci --silent --no-audit --no-fund) && cp scripts/clients/typescript/package-lock.json "$work/ts/.installed-lock"; }

cargo build --locked --quiet --bin omi-server
binary=target/debug/omi-server

# A server on a fresh SQLite file, loopback only, rate limits off; one user with every scope.
data=$(mktemp -d "${TMPDIR:-/tmp}/omi-clients-XXXXXX")
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$data"
}
trap cleanup EXIT
export OMI_DATABASE_URL="sqlite://$data/omi.db" OMI_LOG="warn,omi_server::app=info"
scopes=conversations:read,conversations:write,memories:read,memories:write,action_items:read,action_items:write,goals:read,goals:write
"$binary" users create clients --json >/dev/null
OMI_API_KEY=$("$binary" keys create --user clients --name clients --scopes "$scopes" --json |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["key"])')
OMI_LISTEN=127.0.0.1:0 OMI_RATE_LIMIT_PER_MINUTE=0 OMI_RATE_LIMIT_PER_DAY=0 OMI_WEBHOOKS=false \
  "$binary" serve >/dev/null 2>"$data/server.log" &
server_pid=$!
address=
for _ in $(seq 1 120); do
  address=$(sed -n 's/.*listening address=\([^ ]*\).*/\1/p' "$data/server.log" | head -n 1)
  [ -n "$address" ] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.5
done
[ -n "$address" ] || { cat "$data/server.log" >&2; echo "FATAL: the server did not start" >&2; exit 1; }
export OMI_BASE_URL="http://$address" OMI_API_KEY
curl -fsS "$OMI_BASE_URL/v1/openapi.json" -o "$work/openapi.json"

echo "== Python client (openapi-python-client $OPENAPI_PYTHON_CLIENT_VERSION)"
rm -rf "$work/python"
"$work/pyenv/bin/openapi-python-client" generate --path "$work/openapi.json" \
  --output-path "$work/python/omi_client" --meta none \
  >"$work/python-generate.log" 2>&1 || { cat "$work/python-generate.log" >&2; exit 1; }
cp scripts/clients/python/scenario.py "$work/python/"
(cd "$work/python" && "../pyenv/bin/mypy" --strict --no-incremental scenario.py)
"$work/pyenv/bin/python" "$work/python/scenario.py"

echo "== TypeScript client (openapi-typescript + openapi-fetch)"
# `tsc` type-checks the generated types and the scenario together (strict, no output on any
# error), then node runs the emitted scenario.
(cd "$work/ts" && rm -rf dist schema.d.ts &&
  npx --no-install openapi-typescript ../openapi.json -o schema.d.ts --silent &&
  npx --no-install tsc -p . && node dist/scenario.js)
echo "clients: both scenarios passed"
