#!/usr/bin/env bash
# Many slow streams at once: what each open stream costs in memory and each
# relayed event in CPU, for the gateway and for nginx proxy_pass with
# `proxy_buffering off` in the same run.
#
# A slow OpenAI-compatible upstream (scripts/bench/slow_sse.py, on CPU 0)
# answers every streamed chat completion with EVENTS chunks, one every
# INTERVAL_MS, then [DONE]. For each N in STREAMS, N clients (on CPU 0 too)
# open a stream each at once through the target (pinned to CPU 1) and read
# it to its end. Per target and N it prints: streams complete / failed,
# memory per stream = (the target's peak RSS during the run - its RSS
# before) / N, and CPU per relayed event = the target's CPU time during the
# run / events the clients received. nginx's RSS is its master's plus its
# worker's.
#
#   cmake --preset release && cmake --build --preset release
#   scripts/bench/streams.sh            # about 1 minute on 2 cores
#
# With HOLD=1 a third target, gw-hold, is the gateway with a post pii
# redact entry, which holds every stream (docs/plugins.md): it sends fewer,
# larger events, so compare the CPU per upstream event (the last column;
# the same as per relayed event for the other two).
#
# Env: PW_ROUTER_BIN (build/release/pw-router), STREAMS ("1000 5000"),
# EVENTS (50), INTERVAL_MS (100), PORT (29500; the upstream gets PORT+1,
# nginx PORT+2), NGINX, PYTHON (python3). The open files limit must allow
# 3 N + 100 descriptors (ulimit -n). It stops only the processes it
# started, by PID.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$root/scripts/bench/lib.sh"
bin=${PW_ROUTER_BIN:-$root/build/release/pw-router}
counts=${STREAMS:-"1000 5000"}
events=${EVENTS:-50}
interval=${INTERVAL_MS:-100}
port=${PORT:-29500}
up_port=$((port + 1))
nginx_port=$((port + 2))
nginx=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
python=${PYTHON:-python3}
key=sk-bench-streams

[ -x "$bin" ] || die "no gateway binary at $bin (build the release preset, or set PW_ROUTER_BIN)"
[ -x "$nginx" ] || die "no nginx (apt-get install -y nginx-light, or set NGINX)"
max_n=0
for n in $counts; do [ "$n" -gt "$max_n" ] && max_n=$n; done
# nginx is given room for 3 N connections (at 2 N + 100 it ran out at
# N = 5,000: "worker_connections are not enough, reusing connections").
[ "$(ulimit -n)" -ge $((3 * max_n + 100)) ] ||
  die "ulimit -n is $(ulimit -n); $((3 * max_n + 100)) descriptors are needed for $max_n streams"

bench_setup pw-streams

taskset -c 0 "$python" "$root/scripts/bench/slow_sse.py" upstream "$up_port" \
  "$events" "$interval" &
pids+=($!)

conns=$((2 * max_n + 100))
cat > "$dir/gw.yaml" << YAML
server:
  host: 127.0.0.1
  port: $port
  max_connections: $conns
  api_keys:
    - {key: "$key", name: bench, allowed_models: ["*"]}
models:
  slow:
    provider: openai
    model: slow
    api_key: sk-upstream-slow
    base_url: "http://127.0.0.1:$up_port/v1"
    timeout_seconds: 300
routing: {default_model: slow}
health: {check_interval_seconds: 3600}
logging: {level: warning}
YAML
{
  cat "$dir/gw.yaml"
  printf 'middleware:\n  post_response:\n    - {plugin: pii, config: {action: redact}}\n'
} > "$dir/gw-hold.yaml"
mkdir -p "$dir/nginx"
cat > "$dir/nginx.conf" << CONF
worker_processes 1;
worker_rlimit_nofile $((conns + max_n));
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log warn;
events { worker_connections $((conns + max_n)); }
http {
    access_log off;
    client_body_temp_path $dir/nginx/body;
    proxy_temp_path $dir/nginx/proxy;
    fastcgi_temp_path $dir/nginx/fastcgi;
    uwsgi_temp_path $dir/nginx/uwsgi;
    scgi_temp_path $dir/nginx/scgi;
    server {
        listen 127.0.0.1:$nginx_port backlog=8192;
        location / {
            proxy_pass http://127.0.0.1:$up_port;
            proxy_http_version 1.1;
            proxy_buffering off;
            proxy_read_timeout 300s;
        }
    }
}
CONF

# The pids of a process and its children (nginx: master and worker).
tree() { echo "$1" $(pgrep -P "$1" || true); }
# The sum over pids of one number from each /proc/PID/FILE, picked by an
# awk program.
sum_proc() { # file awk-program pids...
  local file=$1 prog=$2 s=0 p v
  shift 2
  for p in "$@"; do
    v=$(awk "$prog" "/proc/$p/$file" 2> /dev/null || echo 0)
    s=$((s + ${v:-0}))
  done
  echo "$s"
}
rss_kb() { sum_proc status '/^VmRSS/ {print $2}' "$@"; }
ticks() { sum_proc stat '{print $14 + $15}' "$@"; }
wait_port() { # port
  for _ in $(seq 1 100); do
    (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null && return 0
    sleep 0.1
  done
  return 1
}

hz=$(getconf CLK_TCK)
printf "# %s streams of %s events, one every %s ms; target on CPU 1, upstream and clients on CPU 0\n" \
  "$counts" "$events" "$interval"
printf "%-7s %6s %9s %7s %14s %14s %14s %9s\n" target N complete failed "KB/stream" "CPU us/event" "us/up-event" seconds

run_target() { # label url pid n log
  local label=$1 url=$2 top=$3 n=$4 log=$5 ps idle t0 peak out
  read -r -a ps <<< "$(tree "$top")"
  idle=$(rss_kb "${ps[@]}")
  t0=$(ticks "${ps[@]}")
  rm -f "$dir/ready"
  taskset -c 0 "$python" "$root/scripts/bench/slow_sse.py" clients "$url" "$key" \
    slow "$n" "$dir/ready" > "$dir/out" &
  local client=$!
  peak=$idle
  while kill -0 "$client" 2> /dev/null; do
    local now
    now=$(rss_kb "${ps[@]}")
    [ "$now" -gt "$peak" ] && peak=$now
    sleep 0.1
  done
  wait "$client" || die "$label: the clients failed"
  local t1
  t1=$(ticks "${ps[@]}")
  out=$(cat "$dir/out")
  "$python" - "$label" "$n" "$idle" "$peak" "$((t1 - t0))" "$hz" "$out" "$events" << 'PY'
import json, sys
label, n, idle, peak, dt, hz, out, events = sys.argv[1:9]
n, idle, peak, dt, hz, events = int(n), int(idle), int(peak), int(dt), int(hz), int(events)
r = json.loads(out)
per_event = dt / hz / r["events"] * 1e6 if r["events"] else float("nan")
per_up = dt / hz / (r["complete"] * events) * 1e6 if r["complete"] else float("nan")
print("%-7s %6d %9d %7d %14.1f %14.1f %14.1f %9.1f" % (label, n, r["complete"], r["failed"],
      (peak - idle) / n, per_event, per_up, r["seconds"]))
PY
  # Failed streams: the target's own account of them, to stderr.
  if ! grep -q '"failed": 0' <<< "$out"; then
    echo "$label, $n streams: the last lines of $(basename "$log"):" >&2
    tail -n 5 "$log" >&2 || true
  fi
}

for n in $counts; do
  taskset -c 1 "$bin" --config "$dir/gw.yaml" > "$dir/gw.log" 2>&1 &
  gw=$!
  pids+=("$gw")
  wait_port "$port" || die "the gateway did not start: $(cat "$dir/gw.log")"
  run_target gw "http://127.0.0.1:$port/v1/chat/completions" "$gw" "$n" \
    "$dir/gw.log"
  kill "$gw"
  wait "$gw" 2> /dev/null || true

  if [ "${HOLD:-0}" = 1 ]; then
    taskset -c 1 "$bin" --config "$dir/gw-hold.yaml" > "$dir/gw-hold.log" 2>&1 &
    gw=$!
    pids+=("$gw")
    wait_port "$port" || die "the gateway did not start: $(cat "$dir/gw-hold.log")"
    run_target gw-hold "http://127.0.0.1:$port/v1/chat/completions" "$gw" \
      "$n" "$dir/gw-hold.log"
    kill "$gw"
    wait "$gw" 2> /dev/null || true
  fi

  taskset -c 1 "$nginx" -p "$dir/nginx" -c "$dir/nginx.conf" -g 'daemon off;' \
    2> "$dir/nginx.err" &
  ng=$!
  pids+=("$ng")
  wait_port "$nginx_port" || die "nginx did not start: $(cat "$dir/nginx.err")"
  run_target nginx "http://127.0.0.1:$nginx_port/v1/chat/completions" "$ng" \
    "$n" "$dir/nginx/error.log"
  kill "$ng"
  wait "$ng" 2> /dev/null || true
done
