#!/usr/bin/env bash
# Upload-to-callable time of the Meta connector against the real release binary: the bundled
# meta-cloud component repacked as a new version, uploaded to host A (checked, compiled cold,
# stored, loaded: callable on A when the 201 comes back), then polled on host B, a second
# process on the same database, until B lists it loaded (B compiles it too, on its own).
# Usage: host/benches/plugin_upload.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs="${1:-3}"
cargo build --release -q -p switchyard
target="${CARGO_TARGET_DIR:-target}"
bin="$target/release/switchyard"
raw="$target/switchyard-plugins/wasm32-wasip2/release/meta_cloud.wasm"
packed=$(ls -t "$target"/release/build/switchyard-*/out/meta-cloud.wasm | head -1)
dir=$(mktemp -d); pa=$((20000 + RANDOM % 20000)); pb=$((pa + 1))
export SWITCHYARD_LOG=warn SWITCHYARD_OPERATOR_TOKEN=bench-operator
export SWITCHYARD_MASTER_KEY=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
export SWITCHYARD_DATABASE_URL="sqlite://$dir/a/switchyard.db?mode=rwc"
mkdir -p "$dir/a" "$dir/b"
SWITCHYARD_DATA_DIR="$dir/a" SWITCHYARD_LISTEN="127.0.0.1:$pa" "$bin" serve & a=$!
trap 'kill $a ${b:-} 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
until curl -sf "127.0.0.1:$pa/healthz" >/dev/null; do sleep 0.2; done
SWITCHYARD_DATA_DIR="$dir/b" SWITCHYARD_LISTEN="127.0.0.1:$pb" "$bin" serve & b=$!
until curl -sf "127.0.0.1:$pb/healthz" >/dev/null; do sleep 0.2; done
# The bundled manifest, with the connection shape, for repacking.
"$bin" plugin inspect "$packed" 2>/dev/null > "$dir/manifest.json"
python3 - "$dir/manifest.json" "$dir/connection.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
json.dump(m["connection"], open(sys.argv[2], "w"))
print(" ".join([f"--egress-host {h}" for h in m["egress"]] + [f"--credential-host {h}" for h in m.get("credentials", [])]), file=open(sys.argv[2] + ".args", "w"))
PY
for i in $(seq 1 "$runs"); do
  version="9.0.$i"
  # shellcheck disable=SC2046
  "$bin" plugin pack "$raw" --name meta-cloud --version "$version" --world connector \
    $(cat "$dir/connection.json.args") --connection "$dir/connection.json" -o "$dir/m.wasm" >/dev/null
  start=$(date +%s.%N)
  code=$(curl -s -o "$dir/up.json" -w '%{http_code} %{time_total}' -X POST "127.0.0.1:$pa/api/v1/plugins" \
    -H "authorization: Bearer bench-operator" -H 'content-type: application/wasm' --data-binary @"$dir/m.wasm")
  until curl -sf "127.0.0.1:$pb/api/v1/plugins/meta-cloud/$version" -H "authorization: Bearer bench-operator" \
      | grep -q '"loaded":true'; do sleep 0.02; done
  end=$(date +%s.%N)
  echo "run $i: upload $code s (callable on A); callable on B after $(python3 -c "print(round($end-$start, 3))") s"
done
