"""The monitor's view-model (wsnotebook.widget.viewmodel), without widgets: chart top, the
frame's windowed throughput the chart shows, latency percentiles."""

from __future__ import annotations

import pandas as pd
import pytest
from _helpers import FakeClock
from _monitor_helpers import make_events

from wsnotebook.errors import ConfigError
from wsnotebook.frame import EventFrame
from wsnotebook.widget import viewmodel as VM

pytestmark = pytest.mark.timeout(60)


def test_nice_chart_ceiling() -> None:
    assert [VM.nice_ceiling(v) for v in (0.0, 0.5, 1.5, 23.0, 170.0, 1000.0, float("nan"))] == [
        1.0,
        1.0,
        2.0,
        50.0,
        200.0,
        1000.0,
        1.0,
    ]


def test_throughput_can_end_at_a_given_time_leaving_later_timestamps_out() -> None:
    frame = EventFrame()
    now = 1_800_000_000_000.0
    frame.extend([{**e, "timestamp": now - 500 * i} for i, e in enumerate(make_events(6))])
    frame.extend([{**make_events(1, start=50)[0], "timestamp": now + 3_600_000}])
    data = frame.throughput("1s", window="10s", end=now)
    assert len(data) == 10 and data.sum() == 6
    assert data.index[-1] == pd.Timestamp(now // 1000 * 1000, unit="ms", tz="UTC")
    with pytest.raises(ConfigError, match="end must be a finite epoch"):
        frame.throughput("1s", end=float("nan"))


def test_latency_percentiles_come_from_the_newest_rows_without_building_a_dataframe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FakeClock()
    frame = EventFrame(max_rows=5000, chunk_rows=512)
    events = make_events(VM.LATENCY_SAMPLE + 700)
    for i, e in enumerate(events):  # latencies 0..99 ms repeating, a few rows without a stamp
        e["client_received"] = None if i % 97 == 0 else e["timestamp"] + (i % 100)
    frame.extend(events)
    lat = frame.df["latency_ms"].tail(VM.LATENCY_SAMPLE).dropna()
    expected = (float(lat.quantile(0.5)), float(lat.quantile(0.99)))
    model = VM.MonitorModel(frame, None, None, clock)
    monkeypatch.setattr(EventFrame, "tail", None)  # not used: numeric columns only
    assert model.latency_now() == pytest.approx(expected)
    assert VM.MonitorModel(EventFrame(), None, None, clock).latency_now() == (None, None)
