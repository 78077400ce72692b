#!/usr/bin/env python3
"""The two ends of scripts/bench/streams.sh (standard library only).

  slow_sse.py upstream PORT EVENTS INTERVAL_MS
      An OpenAI-compatible upstream whose every chat completion is a stream
      of EVENTS chunks, one every INTERVAL_MS, then `data: [DONE]` (chunked
      transfer encoding, one connection per request).

  slow_sse.py clients URL KEY MODEL N READY_FILE
      Opens N streaming chat completions at once against URL and reads each
      to its end. Writes READY_FILE once every stream has its first event
      (so the caller can sample memory with all N open), then prints one
      line of JSON: streams complete, events received, failures, seconds.
"""
import asyncio
import json
import sys
import time


def chunk(i, last):
    delta = {} if last else {"content": "tok%d " % i}
    body = {
        "id": "chatcmpl-slow",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "slow",
        "choices": [{"index": 0, "delta": delta,
                     "finish_reason": "stop" if last else None}],
    }
    return ("data: " + json.dumps(body, separators=(",", ":")) + "\n\n").encode()


def framed(data):
    return b"%x\r\n%s\r\n" % (len(data), data)


async def serve_one(reader, writer, events, interval):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        if length:
            await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n"
                     b"Connection: close\r\n\r\n")
        for i in range(events):
            writer.write(framed(chunk(i, i == events - 1)))
            await writer.drain()
            await asyncio.sleep(interval)
        writer.write(framed(b"data: [DONE]\n\n") + b"0\r\n\r\n")
        await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def upstream(port, events, interval_ms):
    server = await asyncio.start_server(
        lambda r, w: serve_one(r, w, events, interval_ms / 1000.0),
        "127.0.0.1", port, backlog=8192)
    async with server:
        await server.serve_forever()


async def one_stream(host, port, path, key, model, first, out):
    body = json.dumps({"model": model, "stream": True,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()
    events = 0
    try:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
                     b"Content-Type: application/json\r\nContent-Length: %d\r\n"
                     b"Connection: close\r\n\r\n%s"
                     % (path.encode(), host.encode(), key.encode(), len(body), body))
        await writer.drain()
        status = await reader.readline()
        if b" 200 " not in status:
            out["failed"] += 1
            return
        done = False
        while True:
            line = await reader.readline()
            if not line:
                break
            if line.startswith(b"data: "):
                if line.startswith(b"data: [DONE]"):
                    done = True
                    continue
                events += 1
                if events == 1:
                    first()
        writer.close()
        out["events"] += events
        if done:
            out["complete"] += 1
        else:
            out["failed"] += 1
    except (ConnectionError, OSError, asyncio.IncompleteReadError):
        out["failed"] += 1
        out["events"] += events


async def clients(url, key, model, n, ready_file):
    rest = url.split("://", 1)[1]
    hostport, path = rest.split("/", 1)
    host, port = hostport.split(":")
    out = {"complete": 0, "events": 0, "failed": 0}
    started = [0]

    def first():
        started[0] += 1
        if started[0] == n:
            with open(ready_file, "w") as f:
                f.write("ready\n")

    t0 = time.monotonic()
    await asyncio.gather(*(one_stream(host, int(port), "/" + path, key, model,
                                      first, out) for _ in range(n)))
    out["seconds"] = round(time.monotonic() - t0, 2)
    print(json.dumps(out))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    if sys.argv[1] == "upstream":
        asyncio.run(upstream(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
    elif sys.argv[1] == "clients":
        asyncio.run(clients(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]),
                            sys.argv[6]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
