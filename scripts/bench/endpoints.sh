#!/usr/bin/env bash
# Requests per second and latency of the model endpoints (chat, text
# completions, embeddings, and Anthropic's Messages API, passed through to
# an anthropic model and translated to an OpenAI-compatible one) through
# the gateway, beside the same requests to the mock upstream directly and
# through nginx proxy_pass, all non-streamed. The chat line is the
# yardstick for the others: the gateway's req/s on an endpoint divided by
# its chat req/s shows what the endpoint itself costs. Then streams, one
# at a time (scripts/bench/first_event.py): the first event and the end
# of a chat stream and of a Messages stream (translated from the mock's
# OpenAI chunks, and relayed from its Anthropic events), beside the mock's
# own stream directly and through nginx.
#
# The mock is the shared harness's nginx mock with three more fixed
# answers: a text_completion as large as its chat answer, an embeddings
# list of one 256-number vector (text-embedding-3-small with `dimensions:
# 256`), 3.3 KB of JSON, and Bedrock's Converse answer with the chat
# answer's text (the `bedrock` line: a chat request translated to Converse
# and signed with SigV4, the answer translated back). Each target runs pinned to CPU 1 with its default
# threads, the mock, wrk and the stream probe on CPU 0; wrk -t1
# -cCONNECTIONS for DURATION seconds per endpoint and target, after a 1 s
# warm-up; PROBES streams per target after 20 unmeasured ones.
#
#   cmake --preset release && cmake --build --preset release
#   scripts/bench/endpoints.sh              # about 2 minutes
#
# Env: PW_ROUTER_BIN (build/release/pw-router), DURATION (5), PROBES
# (300), CONNECTIONS (16), PORT (29460; the mock gets PORT+1, nginx PORT+2), BENCH_DIR
# (../shared/bench, for the mock and nginx's proxy configuration), NGINX.
# It stops only the processes it started, by PID.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$root/scripts/bench/lib.sh"
bin=${PW_ROUTER_BIN:-$root/build/release/pw-router}
bench_dir=${BENCH_DIR:-$root/../shared/bench}
duration=${DURATION:-5}
probes=${PROBES:-300}
conns=${CONNECTIONS:-16}
port=${PORT:-29460}
mock_port=$((port + 1))
nginx_port=$((port + 2))
nginx=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
key=sk-bench-0123456789abcdef

require_passthrough "$bin" "$bench_dir" "$nginx"
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (the target on one, the load on the other)"
bench_setup pw-endpoints

# The mock's two extra answers, in front of its catch-all location.
python3 - "$dir/extra.conf" << 'PY'
import json, math, sys
vec = [round(math.sin(i * 0.7) * 0.1, 9) for i in range(256)]
embeddings = {"object": "list",
              "data": [{"object": "embedding", "index": 0, "embedding": vec}],
              "model": "text-embedding-3-small",
              "usage": {"prompt_tokens": 8, "total_tokens": 8}}
completion = {"id": "cmpl-AbCdEfGhIjKlMnOpQrStUvWxYz012", "object": "text_completion",
              "created": 1717171717, "model": "gpt-3.5-turbo-instruct",
              "choices": [{"text": " A reverse proxy authenticates the caller, picks an upstream "
                                   "model and forwards the request; the response is streamed "
                                   "back, so it adds only parsing cost.",
                           "index": 0, "logprobs": None, "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 61, "completion_tokens": 44, "total_tokens": 105}}
# Bedrock's Converse answer with the chat answer's text and usage.
converse = {"output": {"message": {"role": "assistant", "content": [
                {"text": "A reverse proxy authenticates the caller, picks an upstream model "
                         "and forwards the request; the response is streamed back, so it "
                         "adds only parsing cost."}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 61, "outputTokens": 44, "totalTokens": 105},
            "metrics": {"latencyMs": 312}}
with open(sys.argv[1], "w") as out:
    for path, body in (("/v1/embeddings", embeddings), ("/v1/completions", completion),
                       ("/bedrock/model/mock/converse", converse)):
        text = json.dumps(body, separators=(",", ":"))
        out.write("        location = %s {\n            default_type application/json;\n"
                  "            return 200 '%s';\n        }\n" % (path, text))
PY
sed -e "s/{port}/$mock_port/g" -e "s#{run_dir}#$dir#g" \
  "$bench_dir/mock/nginx-mock.conf.tmpl" |
  awk -v extra="$dir/extra.conf" '
    /^        location \/ \{/ { while ((getline line < extra) > 0) print line }
    { print }' > "$dir/mock.conf"
taskset -c 0 "$nginx" -p "$dir" -c "$dir/mock.conf" -g 'daemon off;' 2> "$dir/mock.err" &
pids+=($!)

mkdir -p "$dir/proxy"
sed -e "s/{port}/$nginx_port/g" -e "s/{mock_port}/$mock_port/g" \
  -e "s#{run_dir}#$dir/proxy#g" "$bench_dir/proxy/nginx-proxy.conf.tmpl" > "$dir/proxy.conf"

cat > "$dir/gw.yaml" << YAML
server:
  host: 127.0.0.1
  port: $port
  api_keys:
    - {key: "$key", name: bench, allowed_models: ["*"]}
models:
  mock-openai:
    provider: openai
    model: gpt-4o-mini
    api_key: sk-upstream-mock
    base_url: "http://127.0.0.1:$mock_port/v1"
    endpoints: [chat, completions, embeddings, messages]
    timeout_seconds: 30
  mock-openai-stream:
    provider: openai
    model: gpt-4o-mini
    api_key: sk-upstream-mock
    base_url: "http://127.0.0.1:$mock_port/stream/v1"
    endpoints: [chat, messages]
    timeout_seconds: 30
  mock-claude-stream:
    provider: anthropic
    model: claude-sonnet-4-20250514
    api_key: sk-ant-mock
    base_url: "http://127.0.0.1:$mock_port/anthropic-stream"
    endpoints: [messages]
    timeout_seconds: 30
  mock-bedrock:
    provider: bedrock
    model: mock
    region: us-east-1
    base_url: "http://127.0.0.1:$mock_port/bedrock"
    timeout_seconds: 30
  mock-claude:
    provider: anthropic
    model: claude-sonnet-4-20250514
    api_key: sk-ant-mock
    base_url: "http://127.0.0.1:$mock_port/anthropic"
    endpoints: [messages]
    timeout_seconds: 30
routing: {default_model: mock-openai}
health: {check_interval_seconds: 3600}
logging: {level: warning}
YAML

# One wrk script per endpoint: its path at the gateway, its path at the
# mock (and nginx), its body; the key.
bodies=(
  'chat /v1/chat/completions /v1/chat/completions {"model":"mock-openai","messages":[{"role":"user","content":"hello there, how are you"}]}'
  'completions /v1/completions /v1/completions {"model":"mock-openai","prompt":"hello there, how are you","max_tokens":64}'
  'embeddings /v1/embeddings /v1/embeddings {"model":"mock-openai","input":"hello there, how are you","dimensions":256}'
  'messages /v1/messages /anthropic/v1/messages {"model":"mock-claude","max_tokens":64,"messages":[{"role":"user","content":"hello there, how are you"}]}'
  'messages-chat /v1/messages /v1/chat/completions {"model":"mock-openai","max_tokens":64,"messages":[{"role":"user","content":"hello there, how are you"}]}'
  'bedrock /v1/chat/completions /bedrock/model/mock/converse {"model":"mock-bedrock","messages":[{"role":"user","content":"hello there, how are you"}]}'
)
for line in "${bodies[@]}"; do
  read -r name _ _ body <<< "$line"
  cat > "$dir/$name.lua" << LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $key"
LUA
done

# Runs every endpoint against one target: "target endpoint req/s p50 p99".
measure() { # target base_url
  local target=$1 base=$2 name path upstream_path
  for line in "${bodies[@]}"; do
    read -r name path upstream_path _ <<< "$line"
    [ "$target" = gw ] || path=$upstream_path
    local url="$base$path" out="$dir/$target.$name.wrk"
    taskset -c 0 wrk -t1 -c"$conns" -d1s -s "$dir/$name.lua" "$url" > /dev/null
    taskset -c 0 wrk -t1 -c"$conns" -d"${duration}s" --latency -s "$dir/$name.lua" "$url" > "$out"
    grep -q "Non-2xx" "$out" && die "$target $name: wrk saw non-2xx answers: $(cat "$out")"
    awk -v t="$target" -v e="$name" '
      function us(x) {
        if (x ~ /us$/) return x + 0
        if (x ~ /ms$/) return x * 1000
        return x * 1000000
      }
      /Requests\/sec/ { rps = $2 }
      $1 == "50%" { p50 = us($2) }
      $1 == "99%" { p99 = us($2) }
      END { printf "%s %s %.0f %.0f %.0f\n", t, e, rps, p50, p99 }' "$out" >> "$dir/results"
  done
}

wait_ready "http://127.0.0.1:$mock_port/v1/models" || die "the mock did not start: $(cat "$dir/mock.err")"
measure direct "http://127.0.0.1:$mock_port"

taskset -c 1 "$nginx" -p "$dir/proxy" -c "$dir/proxy.conf" -g 'daemon off;' 2> "$dir/proxy.err" &
ngx=$!
pids+=("$ngx")
wait_ready "http://127.0.0.1:$nginx_port/v1/models" || die "nginx did not start: $(cat "$dir/proxy.err")"
measure nginx "http://127.0.0.1:$nginx_port"
kill "$ngx"
wait "$ngx" 2> /dev/null || true

# The bedrock model signs with these (the mock does not check them).
AWS_ACCESS_KEY_ID=AKIDBENCH AWS_SECRET_ACCESS_KEY=bench-secret-key \
  taskset -c 1 "$bin" --config "$dir/gw.yaml" > "$dir/gw.log" 2>&1 &
gw=$!
pids+=("$gw")
wait_ready "http://127.0.0.1:$port/health/ready" ||
  die "the gateway did not get ready; its output: $(cat "$dir/gw.log")"
measure gw "http://127.0.0.1:$port"

# Streams, one at a time: the first event and the end of each, with nginx
# and the gateway both up and the targets probed in turn.
taskset -c 1 "$nginx" -p "$dir/proxy" -c "$dir/proxy.conf" -g 'daemon off;' 2> "$dir/proxy.err" &
pids+=($!)
wait_ready "http://127.0.0.1:$nginx_port/v1/models" || die "nginx did not start: $(cat "$dir/proxy.err")"
chat_body='{"model":"%s","stream":true,"messages":[{"role":"user","content":"hello there, how are you"}]}'
messages_body='{"model":"%s","stream":true,"max_tokens":64,"messages":[{"role":"user","content":"hello there, how are you"}]}'
# shellcheck disable=SC2059
taskset -c 0 python3 "$root/scripts/bench/first_event.py" -n "$probes" --key "$key" --base direct \
  "direct=http://127.0.0.1:$mock_port/stream/v1/chat/completions=$(printf "$chat_body" gpt-4o-mini)" \
  "nginx=http://127.0.0.1:$nginx_port/stream/v1/chat/completions=$(printf "$chat_body" gpt-4o-mini)" \
  "gw-chat=http://127.0.0.1:$port/v1/chat/completions=$(printf "$chat_body" mock-openai-stream)" \
  "gw-messages-to-openai=http://127.0.0.1:$port/v1/messages=$(printf "$messages_body" mock-openai-stream)" \
  "gw-messages-relay=http://127.0.0.1:$port/v1/messages=$(printf "$messages_body" mock-claude-stream)" \
  > "$dir/streams"

echo "# non-streamed, wrk -t1 -c$conns, ${duration}s each; targets on CPU 1, the mock and wrk on CPU 0"
printf "%-14s %-8s %9s %9s %9s %9s %9s\n" endpoint target "req/s" "p50 us" "p99 us" "gw/nginx" "gw/chat"
awk '
  { rps[$2, $1] = $3; p50[$2, $1] = $4; p99[$2, $1] = $5; seen[$2] = 1 }
  END {
    n = split("chat completions embeddings messages messages-chat bedrock", order, " ")
    for (i = 1; i <= n; i++) {
      e = order[i]
      if (!(e in seen)) continue
      split("direct nginx gw", targets, " ")
      for (j = 1; j <= 3; j++) {
        t = targets[j]
        ratio = (t == "gw" && rps[e, "nginx"] > 0) ? sprintf("%.2fx", rps[e, "gw"] / rps[e, "nginx"]) : ""
        chat = (t == "gw" && rps["chat", "gw"] > 0) ? sprintf("%.2fx", rps[e, "gw"] / rps["chat", "gw"]) : ""
        printf "%-14s %-8s %9d %9d %9d %9s %9s\n", e, t, rps[e, t], p50[e, t], p99[e, t], ratio, chat
      }
    }
  }' "$dir/results"
echo
echo "# streamed, one at a time, $probes probes per target, first event and end over a new connection (ms)"
cat "$dir/streams"
