"""The demo producer into an in-process server: whole due batches merged into one call, the
validation skipped only for the package's own generator, every event stored exactly once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from wsnotebook.demo import DemoProducer, EventGenerator
from wsnotebook.runtime import loop as _loop
from wsnotebook.server import Server


def _counting(server: Server, sizes: list[int]) -> None:
    """Record the size of every skip-validation publish call the producer makes."""
    inner = server._publish_valid_now

    def publish(events: list[dict[str, Any]]) -> int:
        sizes.append(len(events))
        return inner(events)

    server._publish_valid_now = publish  # type: ignore[method-assign]


def _stored(server: Server) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        return [s.event for s in await server.store.since(0, 100_000)]

    return _loop.run(read())


def test_due_batches_go_out_as_one_call_and_every_event_is_stored_in_order(
    server_factory: Callable[..., Server],
) -> None:
    server = server_factory()
    sizes: list[int] = []
    _counting(server, sizes)
    prod = DemoProducer(server, rate=10_000, batch=10, seed=1, max_events=3000)
    assert prod.join(timeout=60)
    assert prod.sent == 3000 == server.store.last_id == sum(sizes)
    assert prod.errors == 0
    # whole batches of 10, up to MERGE_EVENTS per call: ~one call per wake-up, not ~300
    assert all(n % 10 == 0 and 10 <= n <= DemoProducer.MERGE_EVENTS for n in sizes)
    assert len(sizes) < 300 // 2
    stored = _stored(server)
    expected = EventGenerator(seed=1).take(3000)
    assert [s["id"] for s in stored] == list(range(1, 3001))
    key = ("source_app", "session_id", "hook_event_type", "payload", "summary", "model_name")
    assert [tuple(s.get(k) for k in key) for s in stored] == [
        tuple(e.get(k) for k in key) for e in expected
    ]


def test_max_events_cuts_a_merged_call(server_factory: Callable[..., Server]) -> None:
    server = server_factory()
    sizes: list[int] = []
    _counting(server, sizes)
    prod = DemoProducer(server, rate=20_000, batch=7, seed=2, max_events=1001)
    assert prod.join(timeout=60)
    assert prod.sent == 1001 == server.store.last_id == sum(sizes)
    assert all(n % 7 == 0 for n in sizes[:-1])


class _Invalid(EventGenerator):
    """The package's generator, subclassed: anything it yields is validated again."""

    def __next__(self) -> dict[str, Any]:
        event = super().__next__()
        event["payload"] = "not an object"
        return event


def test_a_subclass_or_a_foreign_generator_is_validated(
    server_factory: Callable[..., Server], wait_until: Callable[..., Any]
) -> None:
    server = server_factory()
    calls: list[int] = []
    _counting(server, calls)

    def foreign() -> Iterator[dict[str, Any]]:
        while True:
            yield {"source_app": "a", "session_id": "s", "hook_event_type": "T"}  # no payload

    for gen in (_Invalid(seed=1), foreign()):
        prod = DemoProducer(server, rate=1000, batch=5, generator=gen, max_events=10)
        wait_until(lambda p=prod: p.errors >= 1)
        prod.stop()
        assert prod.errors >= 1 and prod.sent == 0
        assert "payload" in (prod.last_error or "")
    assert calls == [] and server.store.last_id == 0


def test_a_stopped_server_refuses_the_demo_which_stops_and_says_why(
    server_factory: Callable[..., Server],
) -> None:
    # it stored events nobody could read, and the producer ran on with no error
    server = server_factory()
    prod = DemoProducer(server, rate=200, batch=5, seed=1)
    started = threading.Event()
    deadline = time.monotonic() + 30
    while server.store.last_id < 5 and time.monotonic() < deadline:
        started.wait(0.02)  # a bounded poll of the store's counter, not a timing assumption
    assert server.store.last_id >= 5
    server.stop()
    stored = server.store.last_id
    assert prod.join(timeout=30)  # stopped by itself
    assert prod.errors >= 1 and "is stopped" in str(prod.metrics()["last_error"])
    assert server.store.last_id == stored  # nothing more taken once stopped
