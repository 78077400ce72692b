#!/usr/bin/env bash
# How the gateway scales over cores, and what its threads wait on.
#
# For k = 1 .. K the release gateway runs pinned to k CPUs with its default
# threads (io_threads counts the CPUs it may run on, and the actors run on
# the io threads),
# against the shared harness's nginx mock upstream (OpenAI pass-through,
# non-streamed). wrk and the mock run on the CPUs left; K is all the CPUs
# but LOAD_CPUS (default 1). Then one more run, "all": the gateway unpinned
# with its default threads, sharing every CPU with the load. For each run it
# prints req/s, gateway CPU time per request, context switches per request
# (voluntary and involuntary, summed over the gateway's threads from
# /proc/PID/task/*/status) and futex calls per request (perf stat on the
# syscalls:sys_enter_futex tracepoint, attached to the gateway during the
# measured window). On a 2-core machine that is k = 1 and "all".
#
#   cmake --preset release && cmake --build --preset release
#   scripts/bench/scaling.sh                    # about 1 minute on 2 cores
#
# Env: PW_ROUTER_BIN (build/release/pw-router), DURATION (10 s measured per
# run, after a 3 s warm-up), CONNECTIONS (64), LOAD_CPUS (1), PORT (29400;
# the mock gets PORT+1), BENCH_DIR (../shared/bench, for the mock), NGINX,
# ACTOR_THREADS (unset; N runs the actors on a pool of N CAF threads, the
# `sharing` scheduler of server.actor_threads, for comparison).
# It stops only the processes it started, by PID.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$root/scripts/bench/lib.sh"
bin=${PW_ROUTER_BIN:-$root/build/release/pw-router}
bench_dir=${BENCH_DIR:-$root/../shared/bench}
duration=${DURATION:-10}
conns=${CONNECTIONS:-64}
actor_threads=${ACTOR_THREADS:-}
load_cpus=${LOAD_CPUS:-1}
port=${PORT:-29400}
mock_port=$((port + 1))
nginx=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
key=sk-bench-0123456789abcdef

require_passthrough "$bin" "$bench_dir" "$nginx"
command -v perf > /dev/null || die "no perf (apt-get install -y linux-perf)"

cpus=$(nproc)
max_k=$((cpus - load_cpus))
[ "$max_k" -ge 1 ] || max_k=1
bench_setup pw-scaling

# The load (and the mock) run on the CPUs after the gateway's k.
load_set() { # k
  local first=$1
  [ "$first" -ge "$cpus" ] && first=$((cpus - 1))
  echo "$first-$((cpus - 1))"
}

sed -e "s/{port}/$mock_port/g" -e "s#{run_dir}#$dir#g" \
  "$bench_dir/mock/nginx-mock.conf.tmpl" > "$dir/mock.conf"
taskset -c "$(load_set "$max_k")" "$nginx" -p "$dir" -c "$dir/mock.conf" \
  -g 'daemon off;' 2> "$dir/mock.err" &
pids+=($!)

write_passthrough "$port" "$mock_port" "$key" "$actor_threads"

# Clock ticks of a process's user + system time.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Voluntary + involuntary context switches over all of a process's threads.
switches() {
  cat /proc/"$1"/task/*/status 2> /dev/null |
    awk '/^(non)?voluntary_ctxt_switches/ {s += $2} END {print s + 0}'
}
threads() { ls /proc/"$1"/task | wc -l; }


run_point() { # label cpuset(empty = unpinned) load-cpuset
  local label=$1 gw_set=$2 wrk_set=$3 gw
  if [ -n "$gw_set" ]; then
    taskset -c "$gw_set" "$bin" --config "$dir/gw.yaml" > "$dir/gw-$label.log" 2>&1 &
  else
    "$bin" --config "$dir/gw.yaml" > "$dir/gw-$label.log" 2>&1 &
  fi
  gw=$!
  pids+=("$gw")
  wait_ready "http://127.0.0.1:$port/health/ready" ||
    die "the gateway did not get ready; its output: $(cat "$dir/gw-$label.log")"
  local url="http://127.0.0.1:$port/v1/chat/completions"
  taskset -c "$wrk_set" wrk -t1 -c"$conns" -d3s -s "$dir/post.lua" "$url" > /dev/null
  local t0 s0
  t0=$(ticks "$gw")
  s0=$(switches "$gw")
  perf stat -x, -e syscalls:sys_enter_futex -p "$gw" -o "$dir/futex-$label" \
    -- sleep "$duration" &
  local perf_pid=$!
  taskset -c "$wrk_set" wrk -t1 -c"$conns" -d"${duration}s" -s "$dir/post.lua" \
    "$url" > "$dir/wrk-$label"
  wait "$perf_pid" || true
  local t1 s1 n hz futex
  t1=$(ticks "$gw")
  s1=$(switches "$gw")
  n=$(awk '/requests in/ {print $1}' "$dir/wrk-$label")
  grep -q "Non-2xx" "$dir/wrk-$label" && die "$label: wrk saw non-2xx answers"
  hz=$(getconf CLK_TCK)
  futex=$(awk -F, '/sys_enter_futex/ {print $1}' "$dir/futex-$label")
  awk -v label="$label" -v n="$n" -v d="$duration" -v dt=$((t1 - t0)) -v hz="$hz" \
    -v ds=$((s1 - s0)) -v f="$futex" -v th="$(threads "$gw")" 'BEGIN {
      printf "%-6s %7s %9.0f %11.1f %11.3f %10.3f\n", label, th, n / d,
        dt / hz / n * 1e6, ds / n, f / n }'
  kill "$gw"
  wait "$gw" 2> /dev/null || true
}

wait_ready "http://127.0.0.1:$mock_port/v1/models" || die "the mock did not start: $(cat "$dir/mock.err")"
echo "# $(basename "$bin") on $cpus CPUs; wrk -t1 -c$conns, ${duration}s per run after 3s of warm-up"
printf "%-6s %7s %9s %11s %11s %10s\n" k threads "req/s" "CPU/req us" "ctxsw/req" "futex/req"
for k in $(seq 1 "$max_k"); do
  run_point "$k" "0-$((k - 1))" "$(load_set "$k")"
done
run_point all "" "0-$((cpus - 1))"
