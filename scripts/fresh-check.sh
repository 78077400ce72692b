#!/usr/bin/env bash
# Runs the README's two commands as a new user on a stock Debian bookworm
# machine would: in a clean bookworm root made by debootstrap (minbase, the
# archive's bookworm, bookworm-updates and bookworm-security suites, Debian
# packages only), with nothing installed but what the README asks for (git
# and make), on a clone of this repository's HEAD.
#
#   1. `make run`: waits for the gateway's `listening` line, asks the echo
#      model for a chat completion with curl, then stops it (SIGTERM).
#   2. `make test`: must exit 0.
#
# A missing install step, or a test client that only works with a Node.js
# from elsewhere, fails here before a user finds it. Takes about 30 minutes
# on 2 cores (two full builds). Needs root (debootstrap, mount, chroot).
#
# Usage: scripts/fresh-check.sh [--root DIR] [--keep] [--skip-run]
#                               [--skip-test] [--mirror URL]
#   --root DIR   where to build the root (default: a new /var/tmp/pw-fresh.*);
#                an existing root from --keep is reused as it is
#   --keep       leave the root in place afterwards (to look inside)
#   --skip-run / --skip-test   leave out one of the two commands
#   --mirror URL the Debian archive (default http://deb.debian.org/debian)
#
# The machine's own CA certificates in /usr/local/share/ca-certificates are
# copied into the root, so that npm reaches its registry through a proxy
# that re-signs TLS. Logs: <root>/fresh-check-{run,test}.log.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
root=""
keep=false
do_run=true
do_test=true
mirror=http://deb.debian.org/debian
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root=$2; shift 2 ;;
    --keep) keep=true; shift ;;
    --skip-run) do_run=false; shift ;;
    --skip-test) do_test=false; shift ;;
    --mirror) mirror=$2; shift 2 ;;
    *) echo "usage: $0 [--root DIR] [--keep] [--skip-run] [--skip-test] [--mirror URL]" >&2
       exit 2 ;;
  esac
done
if [ "$(id -u)" -ne 0 ]; then
  echo "fresh-check: needs root (debootstrap, mount, chroot)" >&2
  exit 2
fi
[ -n "$root" ] || root=$(mktemp -d /var/tmp/pw-fresh.XXXXXX)
mkdir -p "$root"
root=$(cd "$root" && pwd)
started=$(date +%s)
say() { echo "fresh-check [$(( $(date +%s) - started ))s]: $*"; }

gateway_pid=""
cleanup() {
  set +e
  if [ -n "$gateway_pid" ] && kill -0 "$gateway_pid" 2>/dev/null; then
    kill -TERM -- "-$gateway_pid" 2>/dev/null
    wait "$gateway_pid" 2>/dev/null
  fi
  for m in dev/pts dev proc; do
    mountpoint -q "$root/$m" && umount -l "$root/$m"
  done
  if ! $keep; then
    rm -rf --one-file-system "$root"
  else
    echo "fresh-check: the root stays in $root"
  fi
}
trap cleanup EXIT

# -- the root: a minimal bookworm, as a new machine has it ----------------------
if [ ! -x "$root/usr/bin/apt-get" ]; then
  command -v debootstrap >/dev/null || {
    say "installing debootstrap on this machine"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null
  }
  say "debootstrap --variant=minbase bookworm into $root"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.debootstrap.log" 2>&1 \
    || { tail -20 "$root.debootstrap.log" >&2; exit 1; }
  rm -f "$root.debootstrap.log"
  security=${mirror%/debian}/debian-security
  cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
EOF
fi
cp /etc/resolv.conf "$root/etc/resolv.conf"
# The Debian installer writes /etc/hosts; debootstrap does not. Without it
# "localhost" does not resolve (the TLS tests name it).
if [ ! -f "$root/etc/hosts" ]; then
  printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' \
    "$(cat "$root/etc/hostname" 2>/dev/null || echo debian)" >"$root/etc/hosts"
fi
if compgen -G "/usr/local/share/ca-certificates/*" >/dev/null; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/* "$root/usr/local/share/ca-certificates/"
fi
mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
mountpoint -q "$root/dev" || mount --bind /dev "$root/dev"
mountpoint -q "$root/dev/pts" || mount --bind /dev/pts "$root/dev/pts"

# Runs a command inside the root with a clean environment.
in_root() {
  chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive bash -c "$1"
}

say "installing what the README asks for first: git and make"
in_root "apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends git make >/dev/null"

rm -rf "$root/src/pw-router"
mkdir -p "$root/src"
git clone -q --no-local "$repo" "$root/src/pw-router"
say "cloned $(git -C "$repo" rev-parse --short HEAD) into /src/pw-router"

# -- make run -------------------------------------------------------------------
if $do_run; then
  say "make run (installs, builds the release binary, starts the gateway)"
  log="$root/fresh-check-run.log"
  setsid chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
    bash -c "cd /src/pw-router && exec make run" </dev/null >"$log" 2>&1 &
  gateway_pid=$!
  # Two builds' worth of time at most; the loop ends early if make fails.
  for _ in $(seq 1 3600); do
    grep -q '"event":"listening"' "$log" && break
    kill -0 "$gateway_pid" 2>/dev/null || break
    sleep 1
  done
  if ! grep -q '"event":"listening"' "$log"; then
    tail -40 "$log" >&2
    say "FAIL: make run did not start the gateway"
    exit 1
  fi
  answer=$(in_root "curl -s --max-time 10 http://127.0.0.1:8100/v1/chat/completions \
    -H 'Authorization: Bearer sk-pw-local-dev' -H 'Content-Type: application/json' \
    -d '{\"model\": \"echo\", \"messages\": [{\"role\": \"user\", \"content\": \"Hello!\"}]}'")
  kill -TERM -- "-$gateway_pid" 2>/dev/null || true
  wait "$gateway_pid" 2>/dev/null || true
  gateway_pid=""
  case "$answer" in
    *'"content":"Hello!"'*) say "make run: the echo model answered: $answer" ;;
    *) say "FAIL: make run: unexpected answer: $answer"; exit 1 ;;
  esac
fi

# -- make test ------------------------------------------------------------------
if $do_test; then
  say "make test (installs, builds the dev preset, runs every test)"
  log="$root/fresh-check-test.log"
  if ! in_root "cd /src/pw-router && make test" </dev/null >"$log" 2>&1; then
    tail -60 "$log" >&2
    say "FAIL: make test"
    exit 1
  fi
  tail -5 "$log"
  say "make test passed with $(in_root 'node --version') from Debian"
fi
say "ok"
