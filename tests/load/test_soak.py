"""Soak: mixed valid, hostile and idle traffic against one server process (issue 23).

For ``SOAK_S`` seconds (15 in CI, 60 with ``WSN_FULL=1``) a server child process with a small
byte budget gets, all at once:

* two keep-alive posters of small events (the "normal" traffic; every reply must be a 200);
* a poster of ~200 KB events, so the byte budget evicts all the time;
* hostile HTTP: bad JSON, a wrong content type, an oversized body, a foreign ``Host``, a
  corrupt gzip body, a client that disconnects mid-body;
* hostile WebSocket: clients that send garbage until the server closes them with 1008;
* 60 idle TCP connections that never send a byte (closed by the header timeout);
* one live ``wsnotebook.connect`` subscriber.

Checked: every normal POST got its 200 (none starved: each has a 10 s timeout), the subscriber
holds every acknowledged normal event exactly once and recorded no gap, the store stayed within
its byte budget, the server's RSS grew by less than a generous bound, every hostile request got
its documented status and none a 500.  The normal POST p99 under the soak and its quiet value
are printed (and written to ``artifacts/soak.json``), not asserted: tests here assert no
wall-clock timing (2 shared cores; the issue's "within 5x" is reported instead).
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

import wsnotebook as wsn

FULL = os.environ.get("WSN_FULL") == "1"
SOAK_S = 60.0 if FULL else 15.0
RETAIN_BYTES = 16 << 20
MAX_MESSAGE_BYTES = 1 << 20
IDLE_CONNECTIONS = 60
NORMAL_RATE = 150.0  # events/s per normal poster
BIG_RATE = 10.0  # ~200 KB events/s
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


def _event(kind: str, i: int, pad: int = 0) -> dict[str, Any]:
    return {
        "source_app": "soak",
        "session_id": kind,
        "hook_event_type": "PostToolUse",
        "payload": {"i": i, "pad": "x" * pad},
    }


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * 0.99) - 1)] if ordered else float("nan")


class Poster:
    """A keep-alive HTTP client posting events at a paced rate; records replies and timings."""

    def __init__(self, port: int, kind: str, rate: float, pad: int = 0) -> None:
        self.port, self.kind, self.rate, self.pad = port, kind, rate, pad
        self.acked: list[int] = []
        self.latencies: list[float] = []
        self.failures: list[str] = []

    def post(self, conn: http.client.HTTPConnection, i: int) -> None:
        body = orjson.dumps(_event(self.kind, i, self.pad))
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


def _raw_request(port: int, head: bytes, body: bytes = b"", *, read: bool = True) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head + body)
        if not read:
            return b""
        chunks = []
        with contextlib.suppress(OSError):
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)


def _status(reply: bytes) -> int:
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
        return _raw_request(port, head, body)

    while not stop.is_set():
        seen.setdefault("bad_json", set()).add(_status(post(b"{not json")))
        seen.setdefault("content_type", set()).add(_status(post(b"{}", ctype=b"text/plain")))
        big = b'{"pad": "' + b"x" * (MAX_MESSAGE_BYTES + 10) + b'"}'
        seen.setdefault("oversized", set()).add(_status(post(big)))
        foreign = b"GET /events/recent HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
        seen.setdefault("foreign_host", set()).add(_status(_raw_request(port, foreign)))
        corrupt = gzip.compress(orjson.dumps(_event("gz", 0)))[:-6] + b"garbage"
        seen.setdefault("corrupt_gzip", set()).add(
            _status(post(corrupt, extra=b"Content-Encoding: gzip\r\n"))
        )
        abort = (
            b"POST /events HTTP/1.1\r\nHost: " + host
            + b"\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
        )  # fmt: skip
        _raw_request(port, abort, b'{"source_app"', read=False)
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


@pytest.mark.slow
def test_mixed_valid_hostile_and_idle_traffic_loses_nothing_and_stays_in_budget(
    server_process: Any,
) -> None:
    sp = server_process(
        retain_bytes=RETAIN_BYTES,
        max_message_bytes=MAX_MESSAGE_BYTES,
        max_event_bytes=512 << 10,
        header_timeout=2,
    )
    port = sp.port
    # quiet: the normal POST's latency with nothing else going on
    quiet = Poster(port, "quiet", rate=1e9)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for i in range(300):
        quiet.post(conn, i)
    conn.close()
    assert not quiet.failures
    rss_before = sp.rss()

    client = wsn.connect(sp.url, max_rows=1_000_000)
    assert client.wait_state("open", 30)
    idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(60)]
    stop = threading.Event()
    normals = [Poster(port, f"normal{k}", NORMAL_RATE) for k in range(2)]
    big = Poster(port, "big", BIG_RATE, pad=200_000)
    seen: dict[str, set[int]] = {}
    ws_closes: list[int] = []
    threads = [threading.Thread(target=p.run, args=(stop,), daemon=True) for p in [*normals, big]]
    threads.append(threading.Thread(target=hostile_http, args=(port, stop, seen), daemon=True))
    threads.append(threading.Thread(target=hostile_ws, args=(sp.url, stop, ws_closes), daemon=True))
    try:
        for t in threads:
            t.start()
        stop.wait(SOAK_S)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        for s in idle:
            s.close()
    assert not any(t.is_alive() for t in threads)

    acked = {i for p in normals for i in p.acked}
    try:
        # the subscriber holds every acknowledged normal event, exactly once, no gap recorded
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            held = set(client.frame.df["id"].tolist()) if len(client.frame) else set()
            if acked <= held:
                break
            time.sleep(0.2)
        df = client.frame.df
        ids = df["id"].tolist()
        assert acked <= set(ids), f"{len(acked - set(ids))} acknowledged events missing"
        assert len(ids) == len(set(ids))
        assert client.frame.gaps.empty, client.frame.gaps
        rss_after = sp.rss()
    finally:
        client.close()
    metrics = sp.stop()

    for p in normals:
        assert not p.failures, p.failures[:5]
        assert len(p.acked) >= NORMAL_RATE * SOAK_S * 0.5  # not starved (paced, 1 s slack)
    assert big.acked and not big.failures, big.failures[:5]
    assert seen["bad_json"] == {400}
    assert seen["content_type"] == {415}
    assert seen["oversized"] == {413}
    assert seen["foreign_host"] == {421}
    assert seen["corrupt_gzip"] == {400}
    assert ws_closes and set(ws_closes) == {1008}
    assert "500" not in metrics.get("rejected", {})
    store = metrics["store"]
    assert store["retained_bytes"] <= RETAIN_BYTES
    growth = rss_after - rss_before
    # queues, the ring, aiohttp buffers and allocator slack: far under what an unbounded store
    # would take (the ~200 KB events alone add up to hundreds of MB over the soak)
    assert growth < RETAIN_BYTES + (160 << 20), f"RSS grew by {growth >> 20} MiB"

    normal_lat = [x for p in normals for x in p.latencies]
    figures = {
        "soak_s": SOAK_S,
        "normal_posts": len(normal_lat),
        "big_posts": len(big.acked),
        "quiet_p99_ms": round(_p99(quiet.latencies) * 1000, 2),
        "soak_p99_ms": round(_p99(normal_lat) * 1000, 2),
        "p99_ratio": round(_p99(normal_lat) / _p99(quiet.latencies), 2),
        "rss_before_mib": rss_before >> 20,
        "rss_after_mib": rss_after >> 20,
        "retained_bytes": store["retained_bytes"],
        "ws_1008_closes": len(ws_closes),
        "rejected": metrics.get("rejected"),
        "admission": metrics.get("admission"),
    }
    print("\nsoak:", json.dumps(figures, default=str))
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "soak.json").write_text(json.dumps(figures, indent=2, default=str))
