"""TrafficLog: bounded ring, lifetime totals, rates over a window (fake clock), DataFrame."""

from __future__ import annotations

import pandas as pd
import pytest

from wsnotebook.client.traffic import TrafficLog
from wsnotebook.errors import ConfigError


class FakeClock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_ring_keeps_newest_entries_and_counts_dropped_but_totals_never_drop() -> None:
    log = TrafficLog(size=3, clock=FakeClock())
    for i in range(5):
        log.record("in", "event", 100 + i, decoded_bytes=200, n_events=1)
    assert len(log) == 3
    assert log.dropped == 2
    assert [e.bytes for e in log.entries()] == [102, 103, 104]
    assert [e.bytes for e in log.entries(last=2)] == [103, 104]
    st = log.stats()
    assert st["in"]["messages"] == 5
    assert st["in"]["bytes"] == sum(range(100, 105))
    assert st["in"]["events"] == 5
    assert log.total == 5


def test_stats_rates_cover_only_the_window_and_split_directions() -> None:
    clock = FakeClock()
    log = TrafficLog(clock=clock)
    clock.t += 100  # the log has existed for 100 s
    log.record("in", "batch", 1000, decoded_bytes=4000, n_events=10, at=clock.t - 50)  # old
    for _ in range(20):
        log.record("in", "event", 50, decoded_bytes=100, n_events=1, at=clock.t - 1)
    log.record("out", "publish", 30, n_events=2, at=clock.t - 1)
    st = log.stats(window=10.0)
    assert st["window_s"] == 10.0
    assert st["in"]["messages_per_s"] == pytest.approx(2.0)
    assert st["in"]["bytes_per_s"] == pytest.approx(100.0)
    assert st["in"]["events_per_s"] == pytest.approx(2.0)
    assert st["out"]["messages_per_s"] == pytest.approx(0.1)
    # lifetime totals include the old entry
    assert st["in"]["messages"] == 21
    assert st["in"]["avg_bytes"] == pytest.approx((1000 + 20 * 50) / 21)
    assert st["in"]["compression_ratio"] == pytest.approx((1000 + 1000) / (4000 + 2000))
    assert st["out"]["compression_ratio"] == 1.0  # decoded defaults to wire bytes


def test_rate_divides_by_the_log_age_when_younger_than_the_window() -> None:
    clock = FakeClock()
    log = TrafficLog(clock=clock)
    clock.t += 2.0
    for _ in range(4):
        log.record("in", "event", 10)
    assert log.stats(window=10.0)["in"]["messages_per_s"] == pytest.approx(2.0)


def test_empty_log_stats_have_no_ratio_and_zero_rates() -> None:
    st = TrafficLog(clock=FakeClock()).stats()
    assert st["in"]["compression_ratio"] is None
    assert st["in"]["avg_bytes"] is None
    assert st["out"]["messages_per_s"] == 0.0


def test_df_has_typed_columns_in_order() -> None:
    log = TrafficLog(clock=FakeClock(1_700_000_000.0))
    log.record("in", "initial", 500, decoded_bytes=900, n_events=3)
    log.record("out", "publish", 40, n_events=1)
    df = log.df
    assert list(df.columns) == ["time", "direction", "type", "bytes", "decoded_bytes", "n_events"]
    assert str(df["time"].dtype).startswith("datetime64") and df["time"].dt.tz is not None
    assert df["time"].iloc[0] == pd.Timestamp(1_700_000_000, unit="s", tz="UTC")
    assert isinstance(df["direction"].dtype, pd.CategoricalDtype)
    assert df["bytes"].tolist() == [500, 40]
    assert df["decoded_bytes"].tolist() == [900, 40]
    assert df["n_events"].dtype == "int64"


def test_empty_df_still_has_the_columns() -> None:
    df = TrafficLog().df
    assert len(df) == 0
    assert "bytes" in df.columns


def test_invalid_arguments_are_rejected() -> None:
    with pytest.raises(ConfigError):
        TrafficLog(size=0)
    log = TrafficLog()
    with pytest.raises(ValueError):
        log.record("sideways", "event", 1)
    with pytest.raises(ConfigError):
        log.stats(window=0)


def test_clear_forgets_entries_but_keeps_totals() -> None:
    log = TrafficLog()
    log.record("in", "event", 10)
    log.clear()
    assert len(log) == 0
    assert log.stats()["in"]["messages"] == 1


def test_totals_match_the_lifetime_part_of_stats() -> None:
    clock = FakeClock()
    log = TrafficLog(clock=clock)
    log.record("in", "batch", 1000, decoded_bytes=4000, n_events=10)
    log.record("in", "event", 50, n_events=1)
    log.record("out", "publish", 30, n_events=2)
    totals, st = log.totals(), log.stats()
    for d in ("in", "out"):
        for key, value in totals[d].items():
            assert st[d][key] == value
    assert totals["in"]["messages"] == 2 and totals["in"]["events"] == 11
    assert TrafficLog().totals()["out"]["compression_ratio"] is None


def test_client_metrics_do_not_walk_the_traffic_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """metrics() runs on every monitor tick: it must stay O(1) in the traffic log's size."""
    from wsnotebook.client import Client

    client = Client("ws://127.0.0.1:9/stream")
    for _ in range(100):
        client.traffic.record("in", "event", 10, n_events=1)

    def walk(*a: object, **k: object) -> None:
        raise AssertionError("metrics() called TrafficLog.stats()")

    monkeypatch.setattr(client.traffic, "stats", walk)
    assert client.metrics()["bytes_in_wire"] == 1000


def test_rates_stay_true_after_the_wall_clock_is_set_back() -> None:
    """Rates run on a monotonic clock (entries keep wall time for ``df``): after an hour at
    10 msg/s and a 60 s step back of the wall clock, the rate read 70 msg/s."""
    wall, mono = FakeClock(), FakeClock(5.0)
    log = TrafficLog(clock=wall, rate_clock=mono)
    young = TrafficLog(clock=wall, rate_clock=mono)
    for _ in range(3600 * 10):
        log.record("in", "event", 10, n_events=1)
        wall.t += 0.1
        mono.t += 0.1
    wall.t -= 60.0
    for _ in range(100):  # 10 s at 10 msg/s after the step
        log.record("in", "event", 10, n_events=1)
        wall.t += 0.1
        mono.t += 0.1
    assert log.stats(window=10.0)["in"]["messages_per_s"] == pytest.approx(10.0, rel=0.02)
    assert log.entries()[-1].time < log.entries()[0].time + 3600  # wall time as recorded
    assert young.stats(window=10.0)["window_s"] == 10.0
    for bad in (float("nan"), float("inf"), 0, -1, "10"):
        with pytest.raises(ConfigError):
            log.stats(window=bad)
    # default clocks: wall time for entries, a monotonic clock for rates
    default = TrafficLog()
    assert default._rate_clock is not default._clock


def test_an_entry_dated_in_the_past_is_not_counted_as_now_with_separate_clocks() -> None:
    wall, mono = FakeClock(), FakeClock(5.0)
    log = TrafficLog(clock=wall, rate_clock=mono)
    log.record("in", "event", 10, n_events=1, at=wall.t - 3600)  # an hour ago
    log.record("in", "event", 10, n_events=1, at=wall.t - 1)
    assert log.stats(window=10.0)["in"]["events"] == 2  # lifetime totals
    assert log.stats(window=10.0)["in"]["messages_per_s"] == pytest.approx(1 / 10.0)


def test_record_many_adds_one_entry_per_message_like_record_does() -> None:
    clock = FakeClock()
    one, many = TrafficLog(size=4, clock=clock), TrafficLog(size=4, clock=clock)
    sizes = [(90 + i, 100 + i) for i in range(6)]
    for nbytes, decoded in sizes:
        one.record("in", "event", nbytes, decoded_bytes=decoded, n_events=1)
    many.record_many("in", "event", [n for n, _ in sizes], [d for _, d in sizes])
    assert many.entries() == one.entries()
    assert many.dropped == one.dropped == 2
    assert many.stats() == one.stats()
    many.record_many("in", "event", [], [])
    assert many.total == 6
    with pytest.raises(ConfigError):
        many.record_many("sideways", "event", [1], [1])
    with pytest.raises(ValueError):
        many.record_many("in", "event", [1, 2], [1])
    assert many.total == 6
