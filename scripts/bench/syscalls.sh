#!/usr/bin/env bash
# System calls per request, by name, for the gateway and for nginx
# proxy_pass, against the shared harness's nginx mock upstream (OpenAI
# pass-through, non-streamed).
#
# Each target runs pinned to CPU 1 (the mock and wrk on CPU 0) with its
# default threads; after a 1 s warm-up, `strace -c -f` is attached to it
# (nginx: its worker) for a DURATION-second wrk run, and each call's count
# is divided by the requests wrk completed. strace slows the target down
# a great deal, so the counts per request are the figure, not the rate.
#
#   cmake --preset release && cmake --build --preset release
#   scripts/bench/syscalls.sh              # about 15 seconds
#
# Env: PW_ROUTER_BIN (build/release/pw-router), DURATION (3), CONNECTIONS
# (16), PORT (29450; the mock gets PORT+1, nginx PORT+2), BENCH_DIR
# (../shared/bench, for the mock and nginx's proxy configuration), NGINX.
# It stops only the processes it started, by PID.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$root/scripts/bench/lib.sh"
bin=${PW_ROUTER_BIN:-$root/build/release/pw-router}
bench_dir=${BENCH_DIR:-$root/../shared/bench}
duration=${DURATION:-3}
conns=${CONNECTIONS:-16}
port=${PORT:-29450}
mock_port=$((port + 1))
nginx_port=$((port + 2))
nginx=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
key=sk-bench-0123456789abcdef

require_passthrough "$bin" "$bench_dir" "$nginx"
command -v strace > /dev/null || die "no strace (apt-get install -y strace)"
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (the target on one, the load on the other)"
bench_setup pw-syscalls

sed -e "s/{port}/$mock_port/g" -e "s#{run_dir}#$dir#g" \
  "$bench_dir/mock/nginx-mock.conf.tmpl" > "$dir/mock.conf"
taskset -c 0 "$nginx" -p "$dir" -c "$dir/mock.conf" -g 'daemon off;' 2> "$dir/mock.err" &
pids+=($!)

mkdir -p "$dir/proxy"
sed -e "s/{port}/$nginx_port/g" -e "s/{mock_port}/$mock_port/g" \
  -e "s#{run_dir}#$dir/proxy#g" "$bench_dir/proxy/nginx-proxy.conf.tmpl" > "$dir/proxy.conf"

write_passthrough "$port" "$mock_port" "$key"

# Counts one target's calls into $dir/NAME.calls ("name count/request").
measure() { # name url pid-to-trace
  local name=$1 url=$2 traced=$3
  taskset -c 0 wrk -t1 -c"$conns" -d1s -s "$dir/post.lua" "$url" > /dev/null
  strace -c -f -q -p "$traced" -o "$dir/$name.strace" &
  local tracer=$!
  # strace has attached once the target's threads show it as their tracer.
  for _ in $(seq 1 100); do
    [ "$(awk '/^TracerPid/ {print $2}' "/proc/$traced/status")" != 0 ] && break
    sleep 0.05
  done
  taskset -c 0 wrk -t1 -c"$conns" -d"${duration}s" -s "$dir/post.lua" "$url" > "$dir/$name.wrk"
  kill -INT "$tracer"
  wait "$tracer" || true
  grep -q "Non-2xx" "$dir/$name.wrk" && die "$name: wrk saw non-2xx answers"
  local n
  n=$(awk '/requests in/ {print $1}' "$dir/$name.wrk")
  awk -v n="$n" '$4 ~ /^[0-9]+$/ && $NF != "total" {printf "%s %.3f\n", $NF, $4 / n}' \
    "$dir/$name.strace" > "$dir/$name.calls"
  echo "$n" > "$dir/$name.n"
}

wait_ready "http://127.0.0.1:$mock_port/v1/models" || die "the mock did not start: $(cat "$dir/mock.err")"

taskset -c 1 "$bin" --config "$dir/gw.yaml" > "$dir/gw.log" 2>&1 &
gw=$!
pids+=("$gw")
wait_ready "http://127.0.0.1:$port/health/ready" ||
  die "the gateway did not get ready; its output: $(cat "$dir/gw.log")"
measure gw "http://127.0.0.1:$port/v1/chat/completions" "$gw"
kill "$gw"
wait "$gw" 2> /dev/null || true

taskset -c 1 "$nginx" -p "$dir/proxy" -c "$dir/proxy.conf" -g 'daemon off;' 2> "$dir/proxy.err" &
ngx=$!
pids+=("$ngx")
wait_ready "http://127.0.0.1:$nginx_port/v1/models" || die "nginx did not start: $(cat "$dir/proxy.err")"
worker=$(pgrep -P "$ngx" | head -1)
[ -n "$worker" ] || die "no nginx worker under PID $ngx"
measure nginx "http://127.0.0.1:$nginx_port/v1/chat/completions" "$worker"

echo "# system calls per request (strace -c -f), wrk -t1 -c$conns, ${duration}s; targets on CPU 1"
echo "# requests traced: gw $(cat "$dir/gw.n"), nginx $(cat "$dir/nginx.n")"
printf "%-18s %8s %8s\n" call gw nginx
# Every call either side made at least 0.01 times per request, most
# frequent first, then the sums.
awk '
  FNR == 1 { side++ }
  { v[$1, side] = $2; names[$1] = 1 }
  END {
    for (c in names) {
      g = v[c, 1] + 0; x = v[c, 2] + 0
      if (g >= 0.01 || x >= 0.01) printf "%-18s %8.2f %8.2f\n", c, g, x
    }
  }' "$dir/gw.calls" "$dir/nginx.calls" | sort -k2,2nr -k3,3nr
awk '
  FNR == 1 { side++ }
  { t[side] += $2 }
  END { printf "%-18s %8.2f %8.2f\n", "total", t[1], t[2] }' "$dir/gw.calls" "$dir/nginx.calls"
