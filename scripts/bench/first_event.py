#!/usr/bin/env python3
"""Time to the first streamed event, OpenAI's and Anthropic's formats alike.

For each target NAME=URL=BODY (BODY a JSON text), N times, interleaved
(for i in range(N): for each target), on a new connection per request
(HTTP/1.1, Connection: close), from just before connect():
  first - the first SSE `data:` line received,
  end   - the stream's end (`data: [DONE]` or Anthropic's `message_stop`).
A probe that is not a 200 stream ending properly counts as failed. Prints
one line per target (p50 / p99 in ms, and the difference to the first
target's p50 / p99 when --base is given) and writes nothing else.
Stdlib only; every loop is bounded (--max-seconds, a 10 s socket timeout).

  first_event.py -n 300 --key KEY --base direct NAME=URL=BODY ...
"""
import argparse
import socket
import sys
import time
from urllib.parse import urlsplit


def pct(xs, p):
    s = sorted(xs)
    k = (len(s) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def probe(host, port, path, body, key):
    req = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
           f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
           f"Accept: text/event-stream\r\nContent-Length: {len(body)}\r\n"
           f"Connection: close\r\n\r\n").encode() + body
    clock = time.perf_counter
    t0 = clock()
    s = socket.create_connection((host, port), timeout=10.0)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(req)
        buf = b""
        head_end = -1
        first = end = None
        while True:
            data = s.recv(65536)
            now = clock()
            if not data:
                break
            buf += data
            if head_end < 0:
                head_end = buf.find(b"\r\n\r\n")
                if head_end < 0:
                    continue
            if first is None and buf.find(b"data:", head_end) >= 0:
                first = now
            if (buf.find(b"data: [DONE]", head_end) >= 0
                    or buf.find(b"event: message_stop", head_end) >= 0):
                end = now
                break
        ok = buf.startswith(b"HTTP/1.1 200") and end is not None
        return ok, (first - t0) * 1e3 if first else None, (end - t0) * 1e3 if end else None
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=300)
    ap.add_argument("--key", default="sk-bench")
    ap.add_argument("--base", help="the target the others are compared with")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--max-seconds", type=float, default=120.0)
    ap.add_argument("targets", nargs="+")
    a = ap.parse_args()
    targets = []
    for spec in a.targets:
        name, url, body = spec.split("=", 2)
        u = urlsplit(url)
        targets.append((name, u.hostname, u.port or 80, u.path, body.encode()))
    res = {t[0]: {"first": [], "end": [], "fail": 0} for t in targets}
    for _ in range(a.warmup):
        for name, host, port, path, body in targets:
            try:
                probe(host, port, path, body, a.key)
            except OSError:
                pass
    deadline = time.monotonic() + a.max_seconds
    for i in range(a.n):
        if time.monotonic() > deadline:
            print(f"first_event: time bound hit after {i} rounds", file=sys.stderr)
            break
        for name, host, port, path, body in targets:
            r = res[name]
            try:
                ok, first, end = probe(host, port, path, body, a.key)
            except OSError:
                ok = False
            if not ok:
                r["fail"] += 1
                continue
            r["first"].append(first)
            r["end"].append(end)
    base = res.get(a.base) if a.base else None
    print(f"{'target':22s} {'ok':>5s} {'fail':>5s} {'first p50':>10s} {'first p99':>10s} "
          f"{'+base p50':>10s} {'+base p99':>10s} {'end p50':>9s}")
    for name, r in res.items():
        if not r["first"]:
            print(f"{name:22s} {0:5d} {r['fail']:5d}")
            continue
        p50, p99 = pct(r["first"], 50), pct(r["first"], 99)
        over = ""
        if base and base["first"]:
            over = (f"{p50 - pct(base['first'], 50):+10.3f} "
                    f"{p99 - pct(base['first'], 99):+10.3f}")
        else:
            over = f"{'':10s} {'':10s}"
        print(f"{name:22s} {len(r['first']):5d} {r['fail']:5d} {p50:10.3f} {p99:10.3f} "
              f"{over} {pct(r['end'], 50):9.3f}")
    if any(r["fail"] for r in res.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
