"""ServerCounters: the ingest rate folded per loop tick still counts every event."""

from __future__ import annotations

from wsnotebook.server.metrics import ServerCounters
from wsnotebook.stats import RateMeter


def test_events_counted_per_tick_are_in_the_rate_at_every_read() -> None:
    now = [100.0]
    counters = ServerCounters()
    counters.rate = RateMeter(window=10.0, clock=lambda: now[0])
    counters.rate_pending = 7  # the per-event path's tick count, not folded yet
    assert counters.snapshot([])["events_per_s"] == 7.0  # a read folds first
    assert counters.rate_pending == 0
    counters.rate_pending = 3
    counters.fold_rate()
    counters.fold_rate()  # nothing more to fold
    assert counters.rate.total == 10
    now[0] += 20.0
    assert counters.snapshot([])["events_per_s"] == 0.0  # out of the window
