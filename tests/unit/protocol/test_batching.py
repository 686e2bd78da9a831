"""Batcher: flushes on count, bytes and age (wsnotebook.protocol.batching)."""

from __future__ import annotations

import pytest
from _helpers import FakeClock

from wsnotebook.errors import ConfigError
from wsnotebook.protocol import (
    Batcher,
)

# --------------------------------------------------------------------------- Batcher


@pytest.mark.parametrize(("size", "interval"), [(0, 0.05), (100_001, 0.05), (1, -0.1), (1, 61)])
def test_batcher_bounds(size: int, interval: float) -> None:
    with pytest.raises(ConfigError):
        Batcher(size, interval, clock=FakeClock())


def test_batcher_flushes_on_size() -> None:
    b = Batcher(3, 10.0, clock=FakeClock())
    assert b.add(1) is None and b.add(2) is None
    assert len(b) == 2
    assert b.add(3) == [1, 2, 3]
    assert len(b) == 0 and b.deadline() is None


def test_batcher_flushes_on_age_of_oldest_item() -> None:
    clock = FakeClock(100.0)
    b = Batcher(100, 0.5, clock=clock)
    assert b.poll() is None and b.deadline() is None
    b.add("a")
    assert b.deadline() == 100.5
    clock.now = 100.4
    b.add("b")  # a later item does not move the deadline
    assert b.deadline() == 100.5 and b.poll() is None
    clock.now = 100.5
    assert b.poll() == ["a", "b"]
    assert b.poll() is None
    clock.now = 200.0
    b.add("c")
    assert b.deadline() == 200.5


def test_batcher_zero_interval_flushes_on_every_poll_and_flush_empties() -> None:
    b = Batcher(10, 0, clock=FakeClock())
    b.add(1)
    assert b.poll() == [1]
    b.add(2)
    assert b.flush() == [2] and b.flush() == []


def test_batcher_with_max_bytes_flushes_once_the_items_add_up_to_it() -> None:
    b = Batcher(1000, 10.0, clock=FakeClock(), max_bytes=10)
    assert b.add(b"abcd") is None and b.add(b"efgh") is None
    assert b.add(b"ij") == [b"abcd", b"efgh", b"ij"]  # 10 bytes reached
    assert b.add(b"x" * 50) == [b"x" * 50]  # one big item is a batch of its own
    assert b.add(b"abc") is None and b.flush() == [b"abc"]
    assert b.add(b"abcdefgh") is None  # the count restarted with the flush
    with pytest.raises(ConfigError):
        Batcher(10, clock=FakeClock(), max_bytes=0)
