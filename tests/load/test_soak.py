"""Soak: mixed valid, hostile and idle traffic against one server process (issue 23).

For ``SOAK_S`` seconds (15 in CI, 60 with ``WSN_FULL=1``) a server child process with a small
byte budget gets, all at once:

* two keep-alive posters of small events (the "normal" traffic; every reply must be a 200);
* a poster of ~200 KB events, so the byte budget evicts all the time;
* hostile HTTP: bad JSON, a wrong content type, an oversized body, a foreign ``Host``, a
  corrupt gzip body, a client that disconnects mid-body;
* hostile WebSocket: clients that send garbage until the server closes them with 1008;
* 60 idle TCP connections that never send a byte (closed by the header timeout, reopened);
* one live ``wsnotebook.connect`` subscriber.

The traffic is ``benchmarks/soak_traffic.py``, shared with the soak benchmark.

Checked: every normal POST got its 200 (none starved: each has a 10 s timeout), the subscriber
holds every acknowledged normal event exactly once and recorded no gap, the store stayed within
its byte budget, the server's RSS grew by less than a generous bound, every hostile request got
its documented status and none a 500.  The normal POST p99 under the soak and its quiet value
are printed (and written to ``artifacts/soak.json``), not asserted: tests here assert no
wall-clock timing (2 shared cores).  The issue's "p99 within 5x of quiet" is measured by
``benchmarks/bench_soak.py`` (row 8 of the benchmark table), with the measured poster and the
hostile traffic in processes of their own; here they share one GIL with the test.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import wsnotebook as wsn

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

from soak_traffic import (  # noqa: E402  (the traffic is shared with benchmarks/bench_soak.py)
    NORMAL_RATE,
    SOAK_SERVER_OPTIONS,
    HostileTraffic,
    Poster,
    p99,
)

FULL = os.environ.get("WSN_FULL") == "1"
SOAK_S = 60.0 if FULL else 15.0
RETAIN_BYTES = SOAK_SERVER_OPTIONS["retain_bytes"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


@pytest.mark.slow
def test_mixed_valid_hostile_and_idle_traffic_loses_nothing_and_stays_in_budget(
    server_process: Any,
) -> None:
    sp = server_process(**SOAK_SERVER_OPTIONS)
    port = sp.port
    # quiet: the normal POST's latency with nothing else going on
    quiet = Poster(port, "quiet", rate=NORMAL_RATE)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for i in range(300):
        quiet.post(conn, i)
    conn.close()
    assert not quiet.failures
    rss_before = sp.rss()

    client = wsn.connect(sp.url, max_rows=1_000_000)
    assert client.wait_state("open", 30)
    traffic = HostileTraffic(port)
    try:
        traffic.start()
        traffic.stop_event.wait(SOAK_S)
    finally:
        assert traffic.stop(), "a traffic thread did not stop"

    normals, big = traffic.normals, traffic.big
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
    assert traffic.seen["bad_json"] == {400}
    assert traffic.seen["content_type"] == {415}
    assert traffic.seen["oversized"] == {413}
    assert traffic.seen["foreign_host"] == {421}
    assert traffic.seen["corrupt_gzip"] == {400}
    assert traffic.ws_closes and set(traffic.ws_closes) == {1008}
    assert traffic.idle_opened[0] >= 60
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
        "quiet_p99_ms": round(p99(quiet.latencies) * 1000, 2),
        "soak_p99_ms": round(p99(normal_lat) * 1000, 2),
        "p99_ratio": round(p99(normal_lat) / p99(quiet.latencies), 2),
        "note": "posters share this process's GIL with the hostile threads; "
        "benchmarks/bench_soak.py measures the ratio with each side in its own process",
        "rss_before_mib": rss_before >> 20,
        "rss_after_mib": rss_after >> 20,
        "retained_bytes": store["retained_bytes"],
        "ws_1008_closes": len(traffic.ws_closes),
        "rejected": metrics.get("rejected"),
        "admission": metrics.get("admission"),
    }
    print("\nsoak:", json.dumps(figures, default=str))
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "soak.json").write_text(json.dumps(figures, indent=2, default=str))
