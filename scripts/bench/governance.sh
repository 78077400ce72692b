#!/usr/bin/env bash
# What usage limits cost: requests per second and latency of non-streamed
# chat through the gateway with no limits, with a key's limits in the
# embedded LEDGER, and with the same limits kept in Redis (a Debian
# redis-server 7 on loopback), all in one run. The limits are set so high
# that nothing is refused: every request reserves and settles, which is
# the work being measured (docs/governance.md).
#
# The mock is the shared harness's nginx mock. The gateway runs pinned to
# CPU 1 with its default threads (with Redis, its last io thread drives
# the LEDGER's Redis link); the mock, Redis and wrk run on CPU 0. wrk -t1
# -cCONNECTIONS for DURATION seconds per configuration after a 1 s
# warm-up, ROUNDS rounds taking the three configurations in turn; the
# table shows each one's median over the rounds, the median over the
# rounds of its ratio to "off" in the same round, and, medians over the
# rounds: the gateway's CPU time per request (user and system, all its
# threads, from /proc), redis-server's CPU time per request, how busy
# CPU 0 (the load's) was, and requests per script call (Redis's INFO
# commandstats: how many requests a batch carried).
#
#   cmake --preset release && cmake --build --preset release
#   scripts/bench/governance.sh             # about 1 minute
#
# Env: PW_ROUTER_BIN (build/release/pw-router), DURATION (5), ROUNDS (3),
# CONNECTIONS (16), PORT (29480; the mock gets PORT+1, Redis PORT+2),
# BENCH_DIR (../shared/bench), NGINX, REDIS_SERVER. It stops only the
# processes it started, by PID.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$root/scripts/bench/lib.sh"
bin=${PW_ROUTER_BIN:-$root/build/release/pw-router}
bench_dir=${BENCH_DIR:-$root/../shared/bench}
duration=${DURATION:-5}
rounds=${ROUNDS:-3}
conns=${CONNECTIONS:-16}
port=${PORT:-29480}
mock_port=$((port + 1))
redis_port=$((port + 2))
nginx=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
redis_server=${REDIS_SERVER:-$(command -v redis-server || echo /usr/bin/redis-server)}
key=sk-bench-0123456789abcdef

require_passthrough "$bin" "$bench_dir" "$nginx"
[ -x "$redis_server" ] || die "no redis-server (apt-get install -y redis-server, or set REDIS_SERVER)"
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (the target on one, the load on the other)"
bench_setup pw-governance

sed -e "s/{port}/$mock_port/g" -e "s#{run_dir}#$dir#g" \
  "$bench_dir/mock/nginx-mock.conf.tmpl" > "$dir/mock.conf"
taskset -c 0 "$nginx" -p "$dir" -c "$dir/mock.conf" -g 'daemon off;' 2> "$dir/mock.err" &
pids+=($!)
taskset -c 0 "$redis_server" --port "$redis_port" --bind 127.0.0.1 --save '' \
  --appendonly no > "$dir/redis.log" 2>&1 &
redis_pid=$!
pids+=($!)

write_passthrough "$port" "$mock_port" "$key"
cp "$dir/gw.yaml" "$dir/off.yaml"
# Limits nothing reaches: each request is still checked, reserved and
# settled in the key's scope and its team's.
limits='limits: {requests_per_minute: 1000000000, tokens_per_minute: 1000000000000, tokens_per_day: 1000000000000000, budget_usd_per_month: 1000000}'
sed -e "s|allowed_models: \[\"\*\"\]}|allowed_models: [\"*\"], team: bench, $limits}|" \
  "$dir/off.yaml" > "$dir/embedded.yaml"
cat >> "$dir/embedded.yaml" << YAML
teams:
  bench:
    limits: {max_concurrent: 100000, tokens_per_month: 1000000000000000}
YAML
grep -q "team: bench" "$dir/embedded.yaml" || die "could not add limits to the configuration"
sed -i 's|^    timeout_seconds: 30|    timeout_seconds: 30\n    pricing: {input: 0.15, output: 0.60}|' "$dir/embedded.yaml"
cp "$dir/embedded.yaml" "$dir/redis.yaml"
cat >> "$dir/redis.yaml" << YAML
state:
  backend: redis
  redis: {host: 127.0.0.1, port: $redis_port, key_prefix: bench}
YAML

wait_ready "http://127.0.0.1:$mock_port/v1/models" || die "the mock did not start: $(cat "$dir/mock.err")"

# CPU time (user and system, in clock ticks) the gateway `pid` and its
# threads have used.
cpu_ticks() {
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# Script calls Redis has run since it started.
script_calls() {
  redis-cli -p "$redis_port" INFO commandstats |
    awk -F'[=,:]' '/^cmdstat_evalsha:/ { print $3; found = 1 } END { if (!found) print 0 }'
}

# Busy and total clock ticks of CPU 0 (the load's CPU) since boot.
cpu0_ticks() {
  awk '$1 == "cpu0" { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat
}

run() { # name round
  local name=$1 gw out="$dir/$1.$2.wrk"
  taskset -c 1 "$bin" --config "$dir/$name.yaml" > "$dir/$name.log" 2>&1 &
  gw=$!
  wait_ready "http://127.0.0.1:$port/health/ready" ||
    die "the gateway ($name) did not get ready: $(cat "$dir/$name.log")"
  taskset -c 0 wrk -t1 -c"$conns" -d1s -s "$dir/post.lua" "http://127.0.0.1:$port/v1/chat/completions" > /dev/null
  local before after redis_before redis_after load_before load_after
  before=$(cpu_ticks "$gw")
  redis_before=$(cpu_ticks "$redis_pid")
  load_before=$(cpu0_ticks)
  local calls_before calls_after
  calls_before=$(script_calls)
  taskset -c 0 wrk -t1 -c"$conns" -d"${duration}s" --latency -s "$dir/post.lua" \
    "http://127.0.0.1:$port/v1/chat/completions" > "$out"
  after=$(cpu_ticks "$gw")
  redis_after=$(cpu_ticks "$redis_pid")
  load_after=$(cpu0_ticks)
  calls_after=$(script_calls)
  grep -q "Non-2xx" "$out" && die "$name: wrk saw non-2xx answers: $(cat "$out")"
  if [ "$name" != off ]; then
    curl -fs -H "Authorization: Bearer $key" "http://127.0.0.1:$port/v1/usage" > "$dir/$name.usage" ||
      die "$name: GET /v1/usage failed"
    grep -q '"tokens_today":[1-9]' "$dir/$name.usage" || die "$name: nothing was counted: $(cat "$dir/$name.usage")"
  fi
  kill "$gw"
  wait "$gw" 2> /dev/null || true
  awk -v n="$name" -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" \
    -v redis=$((redis_after - redis_before)) -v load="$load_before $load_after" \
    -v calls=$((calls_after - calls_before)) '
    function us(x) {
      if (x ~ /us$/) return x + 0
      if (x ~ /ms$/) return x * 1000
      return x * 1000000
    }
    /Requests\/sec/ { rps = $2 }
    / requests in / { requests = $1 }
    $1 == "50%" { p50 = us($2) }
    $1 == "99%" { p99 = us($2) }
    END {
      split(load, l, " ")
      printf "%s %.0f %.0f %.0f %.1f %.1f %.0f %.1f\n", n, rps, p50, p99, ticks * 1e6 / hz / requests,
        redis * 1e6 / hz / requests, 100 * (l[3] - l[1]) / (l[4] - l[2]),
        (calls > 0 ? requests / calls : 0)
    }' "$out" >> "$dir/results"
}

for r in $(seq 1 "$rounds"); do
  for name in off embedded redis; do run "$name" "$r"; done
done

echo "# non-streamed chat, wrk -t1 -c$conns, ${duration}s x $rounds rounds; gateway on CPU 1, mock, Redis and wrk on CPU 0"
printf "%-9s %9s %9s %9s %9s %11s %13s %11s %10s\n" limits "req/s" "p50 us" "p99 us" "vs off" "CPU us/req" \
  "Redis us/req" "CPU 0 busy" "req/script"
python3 - "$dir/results" << 'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    n, *figures = line.split()
    rows.setdefault(n, []).append([float(x) for x in figures])
med = {n: [statistics.median(x[i] for x in v) for i in range(7)] for n, v in rows.items()}
# The ratio is the median of each round's ratio: the three configurations
# of a round run back to back, so a machine that drifts between rounds
# moves all three alike.
for n in ("off", "embedded", "redis"):
    rps, p50, p99, cpu, redis, load, per_call = med[n]
    ratio = statistics.median(x[0] / o[0] for x, o in zip(rows[n], rows["off"]))
    print("%-9s %9.0f %9.0f %9.0f %8.2fx %11.1f %13.1f %10.0f%% %10s" % (
        n, rps, p50, p99, ratio, cpu, redis, load, "%.1f" % per_call if per_call else "-"))
for n in ("off", "embedded", "redis"):
    print("# %s req/s by round: %s" % (n, " ".join("%.0f" % x[0] for x in rows[n])))
PY
