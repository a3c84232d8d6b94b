#!/usr/bin/env bash
# Load on the management API's hot path (bearer auth → key lookup → tenant access → scoped read)
# against the real release binary, with wrk (Debian: apt-get install wrk).
# Usage: host/benches/api_load.sh [duration] [connections]   e.g. host/benches/api_load.sh 10s 32
set -euo pipefail
cd "$(dirname "$0")/../.."
duration="${1:-10s}"; conns="${2:-32}"
cargo build --release -q -p switchyard
bin="${CARGO_TARGET_DIR:-target}/release/switchyard"
dir=$(mktemp -d); port=$((20000 + RANDOM % 20000))
export SWITCHYARD_DATA_DIR="$dir" SWITCHYARD_LISTEN="127.0.0.1:$port" SWITCHYARD_LOG=warn
export SWITCHYARD_OPERATOR_TOKEN=bench-operator SWITCHYARD_MASTER_KEY=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
"$bin" serve & pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
until curl -sf "127.0.0.1:$port/healthz" >/dev/null; do sleep 0.2; done
json() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
tenant=$(curl -sf -X POST "127.0.0.1:$port/api/v1/tenants" -H "authorization: Bearer bench-operator" \
  -H 'content-type: application/json' -d '{"name":"bench"}')
id=$(echo "$tenant" | json id); key=$(echo "$tenant" | json api_key)
for path in "/api/v1/tenants/$id" "/api/v1/tenants/$id/connections"; do
  echo "== GET $path ($conns connections, $duration)"
  wrk -t2 -c"$conns" -d"$duration" --latency -H "authorization: Bearer $key" "http://127.0.0.1:$port$path" \
    | grep -E "Requests/sec|Latency|50%|99%|Non-2xx"
done
