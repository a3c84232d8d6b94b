#!/usr/bin/env bash
# End to end throughput (issue 15): distinct signed Meta webhooks into the release binary, each
# answered by the echo policy, until the reply is accepted by a fake Graph API; beside it the
# bare_axum_durable baseline on the same load. Prints ingress acks/s and its ratio to the
# baseline, end-to-end messages/s and drain time, ack → reply latency at a paced rate, peak RSS.
# Usage: host/benches/throughput.sh [options of host/examples/throughput.rs]
#   host/benches/throughput.sh                                  # 40,000 messages, 1 tenant, SQLite
#   host/benches/throughput.sh --tenants 10000                  # the load spread over 10,000 tenants
#   host/benches/throughput.sh --database postgres://postgres@127.0.0.1:5432
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p switchyard --bin switchyard --example bare_axum_durable --example throughput
dir="${CARGO_TARGET_DIR:-target}/release"
exec "$dir/examples/throughput" --bin "$dir/switchyard" --durable "$dir/examples/bare_axum_durable" "$@"
