"""The soak's traffic: paced keep-alive posters, hostile HTTP and WebSocket clients, idle sockets.

One definition of the mixed traffic of issue 23, used by the soak test (``tests/load/test_soak.py``,
threads in the test process, checks that nothing is lost) and by the soak benchmark
(``bench_soak.py``, each side in its own process, measures the normal POST's p99).

As a process (the benchmark's load generators; every run bounded, loopback only)::

    python soak_traffic.py measured PORT RATE SECONDS   # one paced poster -> RESULT {json}
    python soak_traffic.py hostile PORT                 # READY, traffic until QUIT -> RESULT {json}

``hostile`` runs, all at once: two more paced posters of small events (valid background
traffic), one poster of ~200 KB events (so a small byte budget evicts all the time), a cycle of
hostile HTTP requests (bad JSON, wrong content type, oversized body, foreign ``Host``, corrupt
gzip, a client that disconnects mid-body), WebSocket clients that send garbage until closed with
1008, and ``IDLE_CONNECTIONS`` TCP connections that never send a byte (reopened as the server's
header timeout closes them).
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import socket
import sys
import threading
import time
from typing import Any

import orjson
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

MAX_MESSAGE_BYTES = 1 << 20  # the server's max_message_bytes in the soak (oversized = more)
IDLE_CONNECTIONS = 60
NORMAL_RATE = 150.0  # events/s per normal poster
BIG_RATE = 10.0  # ~200 KB events/s
BIG_PAD = 200_000

#: The server options the soak runs with: a small byte budget so eviction never stops, and a
#: short header timeout so idle connections churn.
SOAK_SERVER_OPTIONS: dict[str, Any] = {
    "retain_bytes": 16 << 20,
    "max_message_bytes": MAX_MESSAGE_BYTES,
    "max_event_bytes": 512 << 10,
    "header_timeout": 2,
}


def event(kind: str, i: int, pad: int = 0) -> dict[str, Any]:
    return {
        "source_app": "soak",
        "session_id": kind,
        "hook_event_type": "PostToolUse",
        "payload": {"i": i, "pad": "x" * pad},
    }


def p99(values: list[float]) -> float:
    """Nearest-rank p99 (``nan`` when empty)."""
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * 99 // 100) - 1)] if ordered else float("nan")


class Poster:
    """A keep-alive HTTP client posting events at a paced rate; records replies and timings."""

    def __init__(self, port: int, kind: str, rate: float, pad: int = 0) -> None:
        self.port, self.kind, self.rate, self.pad = port, kind, rate, pad
        self.acked: list[int] = []
        self.latencies: list[float] = []
        self.failures: list[str] = []

    def post(self, conn: http.client.HTTPConnection, i: int) -> None:
        body = orjson.dumps(event(self.kind, i, self.pad))
        t0 = time.perf_counter()
        conn.request("POST", "/events", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        self.latencies.append(time.perf_counter() - t0)
        if resp.status == 200:
            self.acked.append(int(orjson.loads(data)["id"]))
        else:
            self.failures.append(f"{resp.status}: {data[:200]!r}")

    def run(self, stop: threading.Event) -> None:
        """Post at ``rate`` until ``stop`` is set (a failed connection is reopened)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        t0, i = time.monotonic(), 0
        try:
            while not stop.is_set():
                due = (time.monotonic() - t0) * self.rate
                if i >= due:
                    stop.wait(min(0.05, (i - due + 1) / self.rate))
                    continue
                try:
                    self.post(conn, i)
                except (OSError, http.client.HTTPException) as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                i += 1
        finally:
            conn.close()


def raw_request(port: int, head: bytes, body: bytes = b"", *, read: bool = True) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head + body)
        if not read:
            return b""
        chunks = []
        with contextlib.suppress(OSError):
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)


def status_of(reply: bytes) -> int:
    try:
        return int(reply.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return -1


def hostile_http(port: int, stop: threading.Event, seen: dict[str, set[int]]) -> None:
    """Cycle through the hostile requests; ``seen`` collects the status each kind got."""
    host = f"127.0.0.1:{port}".encode()

    def post(body: bytes, *, ctype: bytes = b"application/json", extra: bytes = b"") -> bytes:
        head = (
            b"POST /events HTTP/1.1\r\nHost: " + host + b"\r\nContent-Type: " + ctype
            + b"\r\nContent-Length: " + str(len(body)).encode()
            + b"\r\nConnection: close\r\n" + extra + b"\r\n"
        )  # fmt: skip
        return raw_request(port, head, body)

    while not stop.is_set():
        seen.setdefault("bad_json", set()).add(status_of(post(b"{not json")))
        seen.setdefault("content_type", set()).add(status_of(post(b"{}", ctype=b"text/plain")))
        big = b'{"pad": "' + b"x" * (MAX_MESSAGE_BYTES + 10) + b'"}'
        seen.setdefault("oversized", set()).add(status_of(post(big)))
        foreign = b"GET /events/recent HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
        seen.setdefault("foreign_host", set()).add(status_of(raw_request(port, foreign)))
        corrupt = gzip.compress(orjson.dumps(event("gz", 0)))[:-6] + b"garbage"
        seen.setdefault("corrupt_gzip", set()).add(
            status_of(post(corrupt, extra=b"Content-Encoding: gzip\r\n"))
        )
        abort = (
            b"POST /events HTTP/1.1\r\nHost: " + host
            + b"\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
        )  # fmt: skip
        raw_request(port, abort, b'{"source_app"', read=False)
        stop.wait(0.05)


def hostile_ws(url: str, stop: threading.Event, closes: list[int]) -> None:
    """Clients that send garbage until the server closes them (1008), again and again."""
    while not stop.is_set():
        try:
            with ws_connect(url, open_timeout=10) as ws:
                ws.recv(timeout=10)  # initial
                for _ in range(10):
                    ws.send("garbage")
                with contextlib.suppress(TimeoutError):
                    while True:
                        ws.recv(timeout=10)
        except ConnectionClosed as exc:
            if exc.rcvd is not None:
                closes.append(exc.rcvd.code)
        except OSError:
            pass
        stop.wait(0.2)


def idle_sockets(port: int, stop: threading.Event, count: int, opened: list[int]) -> None:
    """Hold ``count`` connections that never send a byte; reopen each one the server closes."""
    held: list[socket.socket] = []
    try:
        while not stop.is_set():
            alive = []
            for s in held:
                try:
                    s.setblocking(False)
                    gone = s.recv(1) == b""
                except BlockingIOError:
                    gone = False
                except OSError:
                    gone = True
                if gone:
                    s.close()
                else:
                    alive.append(s)
            held = alive
            while len(held) < count and not stop.is_set():
                with contextlib.suppress(OSError):
                    held.append(socket.create_connection(("127.0.0.1", port), timeout=10))
                    opened[0] += 1
            stop.wait(0.2)
    finally:
        for s in held:
            s.close()


class HostileTraffic:
    """Everything but the measured poster, on threads: start(), then stop() -> figures."""

    def __init__(self, port: int, *, idle: int = IDLE_CONNECTIONS) -> None:
        self.port = port
        self.stop_event = threading.Event()
        self.normals = [Poster(port, f"normal{k}", NORMAL_RATE) for k in range(2)]
        self.big = Poster(port, "big", BIG_RATE, pad=BIG_PAD)
        self.seen: dict[str, set[int]] = {}
        self.ws_closes: list[int] = []
        self.idle_opened = [0]
        url = f"ws://127.0.0.1:{port}/stream"
        stop = self.stop_event
        self.threads = [
            threading.Thread(target=p.run, args=(stop,), daemon=True)
            for p in (*self.normals, self.big)
        ]
        self.threads += [
            threading.Thread(target=hostile_http, args=(port, stop, self.seen), daemon=True),
            threading.Thread(target=hostile_ws, args=(url, stop, self.ws_closes), daemon=True),
            threading.Thread(
                target=idle_sockets, args=(port, stop, idle, self.idle_opened), daemon=True
            ),
        ]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def stop(self, timeout: float = 30) -> bool:
        """Stop every thread; True when all of them ended within ``timeout`` each."""
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout)
        return not any(t.is_alive() for t in self.threads)

    def figures(self) -> dict[str, Any]:
        return {
            "normal_acked": sum(len(p.acked) for p in self.normals),
            "normal_failures": sum(len(p.failures) for p in self.normals),
            "big_acked": len(self.big.acked),
            "big_failures": len(self.big.failures),
            "hostile_statuses": {k: sorted(v) for k, v in self.seen.items()},
            "ws_closes": len(self.ws_closes),
            "ws_close_codes": sorted(set(self.ws_closes)),
            "idle_opened": self.idle_opened[0],
        }


def _measured(port: int, rate: float, seconds: float) -> dict[str, Any]:
    poster = Poster(port, "measured", rate)
    stop = threading.Event()
    t = threading.Thread(target=poster.run, args=(stop,), daemon=True)
    t.start()
    stop.wait(seconds)
    stop.set()
    t.join(30)
    return {
        "posts": len(poster.latencies),
        "acked": len(poster.acked),
        "failures": poster.failures[:5],
        "failure_count": len(poster.failures),
        "latencies_ms": [round(x * 1000, 4) for x in poster.latencies],
    }


def main(argv: list[str]) -> int:
    if len(argv) >= 4 and argv[0] == "measured":
        res = _measured(int(argv[1]), float(argv[2]), float(argv[3]))
        print("RESULT " + json.dumps(res), flush=True)
        return 0
    if len(argv) >= 2 and argv[0] == "hostile":
        traffic = HostileTraffic(int(argv[1]))
        traffic.start()
        print("READY", flush=True)
        for line in sys.stdin:  # QUIT or EOF ends the traffic
            if line.strip() == "QUIT":
                break
        stopped = traffic.stop()
        print("RESULT " + json.dumps({**traffic.figures(), "stopped": stopped}), flush=True)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
