#!/usr/bin/env bash
# Installs every build, test and benchmark dependency from Debian bookworm
# packages. Idempotent: packages already present are left as they are.
set -euo pipefail

packages=(
  # toolchain
  cmake ninja-build g++ make pkg-config
  # libraries (design: CAF 0.17, Beast/Asio, yaml-cpp, nlohmann, OpenSSL 3, RE2;
  # simdjson for the JSON reader, core/json/reader.cpp; mimalloc as the
  # release executable's allocator, docs/performance.md)
  libcaf-dev libboost1.81-dev libyaml-cpp-dev nlohmann-json3-dev libssl-dev
  libre2-dev libsimdjson-dev libmimalloc-dev
  # shared usage state (`state.backend: redis`, actors/redis_store.cpp)
  libhiredis-dev
  # tests: Catch2 v2, curl for smoke checks; a real Redis for the shared
  # usage state and nginx as the load balancer of the multi-replica tests
  catch2 curl ca-certificates redis-server nginx-light
  # tooling
  clang-format
)

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  sudo_cmd=(sudo)
fi

# The official openai npm client runs in the integration tests. A machine
# that already has Node.js with npm (for example from NodeSource) keeps it;
# Debian's npm package would conflict with that.
if ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
