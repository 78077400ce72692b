# shellcheck shell=bash
# Shared by scaling.sh, streams.sh and syscalls.sh (sourced, not run): `die`, and a
# temporary directory with the PIDs of the processes the script started,
# stopped by PID and removed when the script exits.
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
