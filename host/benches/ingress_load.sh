#!/usr/bin/env bash
# Load on webhook ingress: distinct signed Meta text-message webhooks, posted by wrk against the
# release binary (SQLite), measuring acknowledged requests/s and ack latency; then how long the
# workers take to process the backlog; then the same load against two baselines: a bare axum
# handler (the empty floor) and a bare axum handler that checks the signature and commits the
# body and a job to SQLite in groups before answering (the floor of a durable ack). Needs wrk (Debian: apt-get install wrk), python3, sqlite3; psql for postgres.
# Usage: host/benches/ingress_load.sh [duration] [connections] [sqlite|postgres]
#   e.g. host/benches/ingress_load.sh 10s 32 sqlite
# postgres: a fresh database `bench_ingress` on 127.0.0.1:5432 (user postgres), run with
# SWITCHYARD_INSECURE_DB_ROLE (one role; the benchmark measures speed, not isolation).
set -euo pipefail
cd "$(dirname "$0")/../.."
duration="${1:-10s}"; conns="${2:-32}"; db="${3:-sqlite}"
cargo build --release -q -p switchyard --bin switchyard --example bare_axum --example bare_axum_durable
bin="${CARGO_TARGET_DIR:-target}/release/switchyard"
bare="${CARGO_TARGET_DIR:-target}/release/examples/bare_axum"
durable="${CARGO_TARGET_DIR:-target}/release/examples/bare_axum_durable"
dir=$(mktemp -d); port=$((20000 + RANDOM % 20000)); gport=$((port + 1)); bport=$((port + 2))
if [ "$db" = postgres ]; then
  psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS bench_ingress" -c "CREATE DATABASE bench_ingress"
  export SWITCHYARD_DATABASE_URL="postgres://postgres@127.0.0.1:5432/bench_ingress" SWITCHYARD_INSECURE_DB_ROLE=true
  pending() { psql -tA -h 127.0.0.1 -U postgres -d bench_ingress -c "$1"; }
else
  pending() { sqlite3 "$dir/switchyard.db" "$1"; }
fi
# A fake Graph API for the connect-time credential check.
python3 -c "
import http.server, json
class H(http.server.BaseHTTPRequestHandler):
    # The credential check proves the number: its id, its listing under the WABA, the app's
    # subscription to the WABA's webhooks.
    def do_GET(self):
        if '/phone_numbers' in self.path:
            o = {'data': [{'id': '106540352242922'}]}
        elif '/subscribed_apps' in self.path:
            o = {'data': [{'whatsapp_business_api_data': {'id': '1', 'name': 'Bench'}}]}
        else:
            o = {'id': '106540352242922', 'display_phone_number': '+1 555', 'verified_name': 'Bench', 'quality_rating': 'GREEN'}
        b = json.dumps(o).encode()
        self.send_response(200); self.send_header('content-type', 'application/json'); self.send_header('content-length', str(len(b))); self.end_headers(); self.wfile.write(b)
    def log_message(self, *a): pass
http.server.HTTPServer(('127.0.0.1', $gport), H).serve_forever()" & gpid=$!
export SWITCHYARD_DATA_DIR="$dir" SWITCHYARD_LISTEN="127.0.0.1:$port" SWITCHYARD_LOG=warn
# The load comes from one address to one endpoint: the flood limits would answer most of it 429.
export SWITCHYARD_INGRESS_CLIENT_RATE=0 SWITCHYARD_INGRESS_ENDPOINT_RATE=0
export SWITCHYARD_OPERATOR_TOKEN=bench-operator SWITCHYARD_MASTER_KEY=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
export SWITCHYARD_META_GRAPH_URL="http://127.0.0.1:$gport"
"$bin" serve & pid=$!
trap 'kill $pid $gpid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
until curl -sf "127.0.0.1:$port/healthz" >/dev/null; do sleep 0.2; done
api() { curl -sf -X POST "127.0.0.1:$port/api/v1/$1" -H "authorization: Bearer $2" -H 'content-type: application/json' -d "$3"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
endpoint=$(api endpoints bench-operator '{"connector":"meta-cloud","secrets":{"app_secret":"bench-secret","verify_token":"v"}}' | field id)
tenant=$(api tenants bench-operator '{"name":"bench"}')
tid=$(echo "$tenant" | field id); key=$(echo "$tenant" | field api_key)
api "tenants/$tid/connections" "$key" "{\"connector\":\"meta-cloud\",\"endpoint\":\"$endpoint\",\"settings\":{\"phone_number_id\":\"106540352242922\",\"waba_id\":\"1\"},\"secrets\":{\"access_token\":\"bench-access-token-0123456789\"},\"consent\":{\"document_version\":\"1\"}}" >/dev/null
# 2,000 distinct bodies with their signatures, cycled by the wrk script.
python3 - "$dir/bodies.lua" <<'PY'
import hashlib, hmac, json, sys, time
out = ["bodies = {}", "sigs = {}"]
for i in range(2000):
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "contacts": [{"profile": {"name": "Load %d" % (i % 50)}, "wa_id": "1650555%04d" % (i % 50)}],
        "messages": [{"from": "1650555%04d" % (i % 50), "id": "wamid.load.%d" % i, "timestamp": str(int(time.time())), "type": "text",
                      "text": {"body": "message %d " % i + "x" * 900}}]}}]}]})
    sig = hmac.new(b"bench-secret", body.encode(), hashlib.sha256).hexdigest()
    out.append("bodies[%d] = %s" % (i + 1, json.dumps(body)))
    out.append("sigs[%d] = \"sha256=%s\"" % (i + 1, sig))
out.append("""
counter = 0
request = function()
  counter = counter + 1
  local i = (counter % #bodies) + 1
  return wrk.format("POST", nil, {["content-type"] = "application/json", ["x-hub-signature-256"] = sigs[i]}, bodies[i])
end""")
open(sys.argv[1], "w").write("\n".join(out))
PY
echo "== POST /hooks/$endpoint (~1.1 KB signed Meta webhooks, $conns connections, $duration)"
wrk -t2 -c"$conns" -d"$duration" --latency -s "$dir/bodies.lua" "http://127.0.0.1:$port/hooks/$endpoint" \
  | grep -E "Requests/sec|Latency|50%|99%|Non-2xx|requests in"
start=$(date +%s.%N)
until [ "$(pending "select count(*) from jobs where state in ('queued','running')" 2>/dev/null || echo 1)" = 0 ]; do sleep 0.5; done
echo "backlog processed in $(python3 -c "import time; print(round(time.time() - $start, 1))") s after the load stopped"
pending "select 'receipts accepted: ' || count(*) from receipts where outcome = 'accepted'" 2>/dev/null || true
kill $pid 2>/dev/null; wait $pid 2>/dev/null || true
"$bare" "127.0.0.1:$bport" & bpid=$!
trap 'kill $bpid $gpid 2>/dev/null; rm -rf "$dir"' EXIT
until curl -s -o /dev/null "127.0.0.1:$bport/"; do sleep 0.2; done
echo "== baseline: bare axum handler, same bodies, $conns connections, $duration"
wrk -t2 -c"$conns" -d"$duration" --latency -s "$dir/bodies.lua" "http://127.0.0.1:$bport/hooks/$endpoint" \
  | grep -E "Requests/sec|Latency|50%|99%|Non-2xx|requests in"
kill $bpid 2>/dev/null; wait $bpid 2>/dev/null || true
"$durable" "127.0.0.1:$bport" "$dir/durable.db" bench-secret & dpid=$!
trap 'kill $dpid $gpid 2>/dev/null; rm -rf "$dir"' EXIT
until curl -s -o /dev/null "127.0.0.1:$bport/"; do sleep 0.2; done
echo "== baseline: bare axum + HMAC check + SQLite group commit, 200 after commit, same bodies, $conns connections, $duration"
wrk -t2 -c"$conns" -d"$duration" --latency -s "$dir/bodies.lua" "http://127.0.0.1:$bport/hooks/$endpoint" \
  | grep -E "Requests/sec|Latency|50%|99%|Non-2xx|requests in"
echo "durable receipts stored: $(sqlite3 "$dir/durable.db" 'select count(*) from receipts')"
