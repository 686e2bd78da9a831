"""Token-bucket pacing, ingest URLs and the demo producer publishing into a server."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from wsnotebook.demo import producer as _demo
from wsnotebook.demo.producer import DemoProducer, DemoPublishError, TokenBucket, events_url
from wsnotebook.errors import ConfigError, WsnError


def test_token_bucket_paces_to_the_rate() -> None:
    bucket = TokenBucket(100.0, 10.0, now=0.0)
    assert bucket.take(5, now=0.0) == 0
    assert bucket.wait_time(5, now=0.0) == pytest.approx(0.05)
    assert bucket.take(5, now=0.05) == 5
    # simulate one second of 10 ms steps taking what is available: ~100 tokens
    total = 0
    for step in range(1, 101):
        total += bucket.take(10, now=0.05 + step * 0.01)
    assert 95 <= total <= 101


def test_token_bucket_caps_the_burst_after_a_stall() -> None:
    bucket = TokenBucket(1000.0, 50.0, now=0.0)
    assert bucket.available(now=60.0) == 50.0
    assert bucket.take(10_000, now=60.0) == 50
    assert bucket.wait_time(500, now=60.0) == pytest.approx(0.05)  # capped at capacity


def test_token_bucket_rejects_bad_bounds() -> None:
    with pytest.raises(ConfigError):
        TokenBucket(0, 10, now=0)
    with pytest.raises(ConfigError):
        TokenBucket(10, 0.5, now=0)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ws://127.0.0.1:4000/stream", "http://127.0.0.1:4000/events"),
        ("wss://host:9/stream?batch=5&token=abc", "https://host:9/events?token=abc"),
        ("http://localhost:4000", "http://localhost:4000/events"),
        ("http://h/user/x/proxy/4000/stream", "http://h/user/x/proxy/4000/events"),
    ],
)
def test_events_url_maps_server_urls_to_the_ingest_endpoint(url: str, expected: str) -> None:
    assert events_url(url) == expected


def test_events_url_rejects_other_schemes() -> None:
    with pytest.raises(ConfigError):
        events_url("ftp://x/y")


class RecordingServer:
    """Stands in for an in-process server: records what is published."""

    def __init__(self, fail_first: int = 0) -> None:
        self.events: list[dict[str, Any]] = []
        self.calls = 0
        self.fail_first = fail_first
        self.got = threading.Event()

    def publish(self, events: list[dict[str, Any]]) -> None:
        self.calls += 1
        if self.calls <= self.fail_first:
            raise RuntimeError("boom")
        self.events.extend(events)
        self.got.set()


def test_producer_publishes_batches_into_a_server_and_stops_by_itself() -> None:
    server = RecordingServer()
    prod = DemoProducer(server, rate=2000, batch=25, seed=1, max_events=200)
    assert prod.join(timeout=30)
    assert not prod.running
    assert prod.sent == 200 == len(server.events)
    assert server.calls == 8
    assert prod not in _demo.active_producers()


def test_producer_errors_are_counted_not_raised() -> None:
    server = RecordingServer(fail_first=2)
    prod = DemoProducer(server, rate=5000, batch=10, seed=1, max_events=50)
    assert prod.join(timeout=30)
    assert prod.errors == 2 and prod.failed == 20
    assert prod.sent == 50
    assert prod.metrics()["last_error"] == "RuntimeError: boom"


def test_stop_all_stops_running_producers() -> None:
    server = RecordingServer()
    prod = _demo.start_demo(server, rate=200, seed=3)
    assert server.got.wait(10)
    assert prod in _demo.active_producers()
    assert _demo.stop_all(timeout=10) >= 1
    assert not prod.running
    sent = prod.sent
    assert len(server.events) == sent


@pytest.mark.parametrize(
    "kwargs", [{"rate": 0}, {"rate": 1e6}, {"batch": 0}, {"max_events": 0}, {"duration": 0}]
)
def test_producer_rejects_out_of_bounds_options(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        DemoProducer(RecordingServer(), **kwargs)


def test_producer_rejects_a_target_without_publish() -> None:
    with pytest.raises(ConfigError):
        DemoProducer(object())


def test_a_fast_producer_wakes_at_most_once_per_min_wake_and_sends_every_batch() -> None:
    # 10k ev/s in batches of 10 is a batch due every 1 ms.  Each timer sleep lasts at least
    # MIN_WAKE (10 ms), after which >= 100 tokens wait, so 3000 events need <= 31 wake-ups
    # whatever the machine's speed (one per batch, ~300, before MIN_WAKE).
    server = RecordingServer()
    prod = DemoProducer(server, rate=10_000, batch=10, seed=1, max_events=3000)
    assert prod.join(timeout=60)
    assert prod.sent == 3000 == len(server.events)
    assert server.calls == 300  # still one publish per batch of 10
    assert DemoProducer.wake_floor(10_000) == DemoProducer.MIN_WAKE == 0.01
    assert 1 <= prod.wakeups <= 3000 // 100 + 1
    assert prod.metrics()["wakeups"] == prod.wakeups


@pytest.mark.parametrize(
    ("rate", "floor"), [(50, 0.025), (1000, 0.025), (4000, 0.025), (5000, 0.02), (1e5, 0.01)]
)
def test_wake_floor_waits_for_wake_events_between_min_and_max_wake(
    rate: float, floor: float
) -> None:
    assert DemoProducer.wake_floor(rate) == pytest.approx(floor)


def test_a_slower_producer_wakes_at_most_once_per_max_wake() -> None:
    # 1k ev/s in batches of 5: a batch is due every 5 ms, but each sleep lasts at least
    # MAX_WAKE (25 ms, WAKE_EVENTS at this rate would be 100 ms), after which >= 25 tokens wait:
    # 500 events need <= 21 wake-ups (<= 51 with the 10 ms floor), still in batches of 5.
    server = RecordingServer()
    prod = DemoProducer(server, rate=1000, batch=5, seed=1, max_events=500)
    assert prod.join(timeout=60)
    assert prod.sent == 500 == len(server.events)
    assert server.calls == 100
    assert DemoProducer.MAX_WAKE == 0.025
    assert 1 <= prod.wakeups <= 500 // 25 + 1


def test_a_fast_producer_yields_after_each_wake_up_and_then_every_yield_every_seconds() -> None:
    # Yielding (and checking the CPU budget) after every batch cost a loop iteration per batch.
    # Back-to-back batches now go out for up to YIELD_EVERY seconds between yields: with an
    # interval nothing reaches, the producer yields exactly once at the start and once after
    # each timer wake-up; with 0 it yields before every batch.
    class NeverWithin(DemoProducer):
        YIELD_EVERY = 1e9

    class EveryBatch(DemoProducer):
        YIELD_EVERY = 0.0

    assert DemoProducer.YIELD_EVERY == 0.002
    coarse = NeverWithin(RecordingServer(), rate=10_000, batch=10, seed=1, max_events=3000)
    assert coarse.join(timeout=60) and coarse.sent == 3000
    assert coarse.yields == coarse.wakeups + 1 == coarse.metrics()["yields"]
    fine_server = RecordingServer()
    fine = EveryBatch(fine_server, rate=10_000, batch=10, seed=1, max_events=3000)
    assert fine.join(timeout=60) and fine.sent == 3000
    assert fine.yields >= fine_server.calls == 300


def test_a_refused_http_post_is_counted_as_a_demo_publish_error_not_raised() -> None:
    from aiohttp import web

    from wsnotebook.runtime import loop as _loop

    async def refuse(request: web.Request) -> web.Response:
        return web.Response(status=503, text="store full")

    async def start() -> tuple[web.AppRunner, int]:
        app = web.Application()
        app.router.add_post("/events", refuse)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, runner.addresses[0][1]

    runner, port = _loop.run(start())
    prod = DemoProducer(f"http://127.0.0.1:{port}", rate=100, seed=1)
    try:
        deadline = time.monotonic() + 10
        while prod.errors < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        prod.stop(timeout=10)
        _loop.run(runner.cleanup())
    assert prod.errors >= 1 and prod.sent == 0
    assert prod.metrics()["last_error"] == "DemoPublishError: HTTP 503: store full"
    assert issubclass(DemoPublishError, WsnError) and issubclass(DemoPublishError, RuntimeError)
