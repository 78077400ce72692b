#!/usr/bin/env bash
# What inbound TLS costs: the release gateway with the echo model (no
# upstream), plain HTTP against TLS, keep-alive and one connection per
# request. The gateway runs pinned to CPU 1 (one io thread, one actor
# thread), wrk to CPU 0; 3 s warm-up, then three 8 s runs per point.
#
#   cmake --build --preset release && scripts/bench/tls-echo.sh
set -euo pipefail
bin=${PW_ROUTER_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/build/release/pw-router}
port=${PORT:-18443}
dir=$(mktemp -d /tmp/pw-tls-bench.XXXXXX)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout key.pem -out cert.pem -days 2 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
cat > plain.yaml <<YAML
server:
  host: 127.0.0.1
  port: $port
  io_threads: 1
  actor_threads: 1
  api_keys:
    - {key: "sk-bench", name: bench, allowed_models: ["*"]}
models:
  echo: {provider: echo}
routing: {default_model: echo}
logging: {level: warning}
YAML
cp plain.yaml tls.yaml
printf '  tls: {cert_file: %s/cert.pem, key_file: %s/key.pem}\n' "$dir" "$dir" > tls.part
sed -i "/^  actor_threads: 1/r tls.part" tls.yaml
for close in no yes; do
  {
    echo 'wrk.method = "POST"'
    echo "wrk.body = '{\"model\":\"echo\",\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}]}'"
    echo 'wrk.headers["Content-Type"] = "application/json"'
    echo 'wrk.headers["Authorization"] = "Bearer sk-bench"'
    if [ "$close" = yes ]; then echo 'wrk.headers["Connection"] = "close"'; fi
  } > "close-$close.lua"
done

point() {  # point CONFIG SCHEME CLOSE CONC
  taskset -c 1 "$bin" --config "$1" > gw.log 2>&1 &
  local gw=$! i
  for i in $(seq 100); do grep -q '"listening"' gw.log && break; sleep 0.05; done
  local url="$2://127.0.0.1:$port/v1/chat/completions"
  taskset -c 0 wrk -t1 -c"$4" -d3s -s "close-$3.lua" "$url" > /dev/null
  local out=()
  for i in 1 2 3; do
    out+=("$(taskset -c 0 wrk -t1 -c"$4" -d8s -s "close-$3.lua" --latency "$url" \
      | awk '/Requests\/sec/ {r=$2} / 50%/ {p=$2} /Non-2xx|Socket errors/ {e=e" "$0} END {printf "%.0f req/s p50 %s%s", r, p, e}')")
  done
  kill -TERM "$gw"; wait "$gw" || true
  printf '| %s | %s | %s | %s | %s |\n' "${1%.yaml}" "$3" "$4" "${out[0]}" "${out[1]}; ${out[2]}"
}

echo "| listener | Connection: close | c | run 1 | runs 2, 3 |"
echo "|---|---|---:|---|---|"
for c in 1 16; do
  point plain.yaml http no "$c"
  point tls.yaml https no "$c"
done
point plain.yaml http yes 16
point tls.yaml https yes 16
