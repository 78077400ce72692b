# shellcheck shell=bash
# Shared by endpoints.sh, scaling.sh, streams.sh and syscalls.sh (sourced,
# not run): `die`, a temporary directory with the PIDs of the processes
# the script started, stopped by PID and removed when the script exits,
# `wait_ready`, and the checks, gateway configuration and wrk script of the
# pass-through benchmarks.
#
#   . "$(dirname "$0")/lib.sh"
#   bench_setup pw-name      # sets $dir; append started PIDs to pids

die() {
  echo "$(basename "$0"): $*" >&2
  exit 1
}

bench_setup() { # name
  dir=$(mktemp -d "/tmp/$1.XXXXXX")
  pids=()
  trap bench_cleanup EXIT
}

bench_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2> /dev/null || true; done
  rm -rf "$dir"
}

# Dies unless the gateway binary, the harness's mock template, nginx and wrk
# are there.
require_passthrough() { # bin bench_dir nginx
  [ -x "$1" ] || die "no gateway binary at $1 (build the release preset, or set PW_ROUTER_BIN)"
  [ -f "$2/mock/nginx-mock.conf.tmpl" ] || die "no mock template under $2 (set BENCH_DIR)"
  [ -x "$3" ] || die "no nginx (apt-get install -y nginx-light, or set NGINX)"
  command -v wrk > /dev/null || die "no wrk (apt-get install -y wrk)"
}

wait_ready() { # url: true once it answers 2xx, within 10 s
  for _ in $(seq 1 100); do
    curl -fs -o /dev/null "$1" && return 0
    sleep 0.1
  done
  return 1
}

# Writes $dir/gw.yaml (one OpenAI pass-through model, mock-openai, on the
# mock at MOCK_PORT; the actors on a pool of ACTOR_THREADS CAF threads if
# given) and $dir/post.lua (wrk's chat request for it, with KEY).
write_passthrough() { # port mock_port key [actor_threads]
  local port=$1 mock_port=$2 key=$3 actor_threads=${4:-}
  cat > "$dir/gw.yaml" << YAML
server:
  host: 127.0.0.1
  port: $port
${actor_threads:+  actor_threads: $actor_threads
}  api_keys:
    - {key: "$key", name: bench, allowed_models: ["*"]}
models:
  mock-openai:
    provider: openai
    model: gpt-4o-mini
    api_key: sk-upstream-mock
    base_url: "http://127.0.0.1:$mock_port/v1"
    timeout_seconds: 30
routing: {default_model: mock-openai}
health: {check_interval_seconds: 3600}
logging: {level: warning}
YAML
  cat > "$dir/post.lua" << LUA
wrk.method = "POST"
wrk.body = '{"model":"mock-openai","messages":[{"role":"user","content":"hello there, how are you"}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $key"
LUA
}
