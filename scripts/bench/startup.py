#!/usr/bin/env python3
"""Time from exec to the first 200 on /health/ready.

Starts the gateway RUNS times (default 20) on CONFIG with --port PORT, and
for each start connects every 0.5 ms until GET /health/ready answers 200;
prints the median, min and max in milliseconds. Stops each gateway it
started (SIGTERM, by its PID).

    scripts/bench/startup.py build/release/pw-router config.example.yaml 18600 20
"""
import socket
import statistics
import subprocess
import sys
import time


def ready(port):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=0.5)
    except OSError:
        return False
    try:
        s.sendall(b"GET /health/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False
    finally:
        s.close()


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    binary, config, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 20
    times = []
    for _ in range(runs):
        t0 = time.monotonic()
        p = subprocess.Popen([binary, "--config", config, "--port", str(port)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while not ready(port):
                if time.monotonic() - t0 > 10 or p.poll() is not None:
                    sys.exit("the gateway did not get ready within 10 s")
                time.sleep(0.0005)
            times.append((time.monotonic() - t0) * 1000)
        finally:
            p.terminate()
            p.wait()
    times.sort()
    print("exec to the first 200 on /health/ready, ms: median %.1f, min %.1f, max %.1f (%d starts)"
          % (statistics.median(times), times[0], times[-1], len(times)))


if __name__ == "__main__":
    main()
