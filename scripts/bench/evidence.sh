#!/usr/bin/env bash
# The cost of evidence: the shared harness (../shared/bench/bench.sh) on the
# targets of evidence.conf in one run: the pass-through without and with
# tracing (every request sampled), and the audit log (fsync every) without
# and with signed checkpoints every 1,000 lines sent to a witness.
# BENCH_DIR (default ../shared/bench) holds the harness. Makes a signing
# key for the run first; other arguments go to bench.sh, for example:
#   scripts/bench/evidence.sh -d 5 -w 1 -r 2 -c "16 64" --label evidence
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${PW_ROUTER_BIN:-$root/build/release/pw-router}
keys=$(mktemp -d)
trap 'rm -rf "$keys"' EXIT
"$bin" audit-key --generate "$keys/audit.key" > /dev/null 2>&1
export PW_BENCH_AUDIT_KEY=$keys/audit.key
cd "$root"
"${BENCH_DIR:-$root/../shared/bench}/bench.sh" --bin "$bin" --no-stream \
  --targets scripts/bench/evidence.conf "$@" @gw @gw-trace @gw-audit @gw-audit-cp
