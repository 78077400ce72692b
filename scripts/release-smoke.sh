#!/usr/bin/env bash
# Smoke test of the release executable (the one `make run` starts, which the
# test suite does not run: the tests use the sanitizer build). It starts
# build/release/pw-router on config.example.yaml on a free loopback port,
# checks that mimalloc is the allocator in the running process (when the
# build links it), sends one chat request to the echo model, and stops the
# process it started. Used by .ci/run.
#
#   scripts/release-smoke.sh [path/to/pw-router]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/build/release/pw-router}
[ -x "$bin" ] || { echo "release-smoke: no executable at $bin" >&2; exit 1; }

out=$(mktemp /tmp/pw-release-smoke.XXXXXX)
# Port 0: the kernel picks a free one; the "listening" line says which.
PW_ROUTER_PORT=0 "$bin" --config "$root/config.example.yaml" \
  --host 127.0.0.1 > "$out" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2> /dev/null || true
  wait "$pid" 2> /dev/null || true
  rm -f "$out"
}
trap cleanup EXIT
fail() {
  echo "release-smoke: $*" >&2
  cat "$out" >&2
  exit 1
}

ready=0
port=
for _ in $(seq 1 100); do
  [ -n "$port" ] || port=$(grep -o '"event":"listening".*' "$out" |
    grep -o '"port":[0-9]*' | head -1 | cut -d: -f2 || true)
  if [ -n "$port" ] && curl -fs -o /dev/null "http://127.0.0.1:$port/health/ready"; then
    ready=1
    break
  fi
  kill -0 "$pid" 2> /dev/null || fail "the gateway exited"
  sleep 0.1
done
[ "$ready" = 1 ] || fail "not ready within 10 s"

if readelf -d "$bin" | grep -q 'libmimalloc'; then
  grep -q 'libmimalloc' "/proc/$pid/maps" || fail "linked with mimalloc, but it is not loaded"
  echo "release-smoke: mimalloc loaded"
fi

answer=$(curl -fs "http://127.0.0.1:$port/v1/chat/completions" \
  -H 'Authorization: Bearer sk-pw-local-dev' -H 'Content-Type: application/json' \
  -d '{"model":"echo","messages":[{"role":"user","content":"smoke"}]}') ||
  fail "the chat request failed"
case "$answer" in
  *'"content":"smoke"'*) echo "release-smoke: echo answered" ;;
  *) fail "unexpected answer: $answer" ;;
esac
