#!/usr/bin/env python3
"""Resilience figures for docs/performance.md: what a failing upstream costs.

Two nginx mock upstreams (the bench harness's template) serve models `a` and
`b`; the gateway routes `a` with the fallback chain [a, b].  Measured:

  fallback   per-request latency (persistent connection, c=1) for model b
             directly, for model a while a refuses connections (fallback to b,
             breaker kept closed), and for a while a accepts and never answers
             (first_byte_timeout_seconds 0.2).
  dark       wrk -c16 on model a; after 2 s upstream a is SIGKILLed (refused)
             or SIGSTOPped (silent).  Reported: ms from that moment to the
             breaker-open log line, and the client-visible non-2xx count.

Usage: scripts/bench-resilience.py [--gw build/release/pw-router]
Needs nginx, wrk and taskset (the bench harness's dependencies); pins the
clients to CPU 0 and the gateway to CPU 1.
"""

import argparse
import datetime
import http.client
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
BENCH = HERE.parent.parent / "shared" / "bench"
KEY = "sk-bench-0123456789abcdef"
PORT_A, PORT_B, PORT_GW = 29301, 29300, 29310

CONFIG = """\
server:
  api_keys: [{{key: "{key}", name: bench, allowed_models: ["*"]}}]
  io_threads: 1
  actor_threads: 1
models:
  a: {{provider: openai, model: gpt-4o-mini, base_url: "http://127.0.0.1:{pa}/v1",
      first_byte_timeout_seconds: 0.2}}
  b: {{provider: openai, model: gpt-4o-mini, base_url: "http://127.0.0.1:{pb}/v1"}}
routing:
  default_model: a
  fallback_chains: {{main: [a, b]}}
health: {{check_interval_seconds: 0, unhealthy_threshold: {threshold}, cooldown_seconds: 30}}
logging: {{level: WARNING}}
"""


def body(model):
    text = (BENCH / "body" / "chat.json.tmpl").read_text()
    return text.replace("{model}", model).replace("{stream}", "false").encode()


def wait_port(port):
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    sys.exit(f"nothing listens on {port} after 5 s")


def wait_closed(port):
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.05)
    sys.exit(f"{port} still accepts after 5 s")


def signal_all(pids, sig):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


class Rig:
    """Two mocks and a gateway in a temporary directory; stop() ends them."""

    def __init__(self, gw, threshold, blackhole_a=False):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="pw-res-"))
        self.procs = []
        self.blackhole = None
        self.mocks = {}  # name -> nginx master and worker PIDs
        tmpl = (BENCH / "mock" / "nginx-mock.conf.tmpl").read_text()
        for name, port in (("b", PORT_B), ("a", PORT_A)):
            if name == "a" and blackhole_a:
                self.blackhole = socket.socket()
                self.blackhole.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                self.blackhole.bind(("127.0.0.1", port))
                self.blackhole.listen(4096)  # accepts in the kernel, never answers
                continue
            rd = self.dir / name
            rd.mkdir()
            conf = rd / "nginx.conf"
            conf.write_text(tmpl.replace("{port}", str(port)).replace("{run_dir}", str(rd)))
            p = subprocess.Popen(["nginx", "-p", str(rd), "-c", str(conf), "-g", "daemon off;"])
            self.procs.append(p)
            wait_port(port)
            kids = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True)
            self.mocks[name] = [p.pid] + [int(x) for x in kids.stdout.split()]
        cfg = self.dir / "gw.yaml"
        cfg.write_text(CONFIG.format(key=KEY, pa=PORT_A, pb=PORT_B, threshold=threshold))
        self.log = self.dir / "gw.log"
        self.gw = subprocess.Popen(
            ["taskset", "-c", "1", gw, "--config", str(cfg), "--host", "127.0.0.1",
             "--port", str(PORT_GW)],
            stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        self.procs.append(self.gw)
        wait_port(PORT_GW)

    def breaker_open_at(self):
        for line in self.log.read_text().splitlines():
            try:
                j = json.loads(line)
            except ValueError:
                continue
            if j.get("event") == "breaker" and j.get("circuit") == "open":
                ts = datetime.datetime.strptime(j["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
                return ts.replace(tzinfo=datetime.timezone.utc).timestamp(), j.get("cause")
        return None, None

    def stop(self):
        for pids in self.mocks.values():  # a stopped nginx must run again to exit
            signal_all(pids, signal.SIGCONT)
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM if p is self.gw else signal.SIGQUIT)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for pids in self.mocks.values():  # a SIGKILLed master leaves its worker behind
            signal_all(pids[1:], signal.SIGKILL)
        if self.blackhole:
            self.blackhole.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def latency(model, n):
    c = http.client.HTTPConnection("127.0.0.1", PORT_GW, timeout=10)
    h = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    b = body(model)
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        c.request("POST", "/v1/chat/completions", b, h)
        r = c.getresponse()
        r.read()
        samples.append(time.perf_counter() - t)
        if r.status != 200:
            sys.exit(f"model {model}: HTTP {r.status}")
    samples.sort()
    return samples[n // 2] * 1e6, samples[int(n * 0.99)] * 1e6


def fallback(gw):
    for label, model, hole, n in (("b directly", "b", False, 900),
                                  ("a refused -> b", "a", None, 900),
                                  ("a silent -> b", "a", True, 20)):
        rig = Rig(gw, 1000, blackhole_a=bool(hole))
        try:
            if hole is None:
                signal_all(rig.mocks["a"], signal.SIGQUIT)
                wait_closed(PORT_A)
            cpus = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {0})  # the client on CPU 0, as wrk in dark()
            p50, p99 = latency(model, n)
            os.sched_setaffinity(0, cpus)
            opened, _ = rig.breaker_open_at()
            print(f"fallback  {label:16} n={n:4} p50 {p50:9.0f} us  p99 {p99:9.0f} us"
                  f"  breaker {'OPENED' if opened else 'closed'}")
        finally:
            rig.stop()


def dark(gw):
    for mode, sig in (("SIGKILL (refused)", signal.SIGKILL), ("SIGSTOP (silent)", signal.SIGSTOP)):
        rig = Rig(gw, 5)
        try:
            env = dict(os.environ, BENCH_BODY=str(rig.dir / "body.json"), BENCH_KEY=KEY)
            (rig.dir / "body.json").write_bytes(body("a"))
            wrk = subprocess.Popen(
                ["taskset", "-c", "0", "wrk", "-t1", "-c16", "-d6s", "--latency", "-s",
                 str(BENCH / "lib" / "wrk-chat.lua"),
                 f"http://127.0.0.1:{PORT_GW}/v1/chat/completions"],
                env=env, stdout=subprocess.PIPE, text=True)
            time.sleep(2)
            t0 = time.time()
            signal_all(rig.mocks["a"], sig)
            out = wrk.communicate()[0]
            opened, cause = rig.breaker_open_at()
            keep = ("50%", "99%", "requests in", "Non-2xx", "Socket errors")
            stats = "; ".join(" ".join(l.split()) for l in out.splitlines()
                              if any(k in l for k in keep))
            when = f"{(opened - t0) * 1000:.1f} ms" if opened else "never"
            print(f"dark      {mode:17} breaker open after {when} ({cause})\n          {stats}")
        finally:
            rig.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gw", default=str(HERE.parent / "build" / "release" / "pw-router"))
    args = ap.parse_args()
    fallback(args.gw)
    dark(args.gw)


if __name__ == "__main__":
    main()
