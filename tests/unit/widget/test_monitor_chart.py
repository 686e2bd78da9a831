"""The monitor's throughput chart (wsnotebook.widget.chart) as the monitor drives it: a y axis
from 0 with steady ticks, at most one recompute a second, one line per event type, and a
window that ends now whatever one event's clock says."""

from __future__ import annotations

import time

import numpy as np
import pytest
from _helpers import FakeClock
from _monitor_helpers import make_events, new_monitor

import wsnotebook.widget as W
from wsnotebook.frame import EventFrame

pytestmark = pytest.mark.timeout(60)


def bqplot_y_ticks(mon: W.Monitor, plot_height: float = 150.0) -> list[float]:
    """The y tick values the bqplot 0.13 front end draws for the monitor's chart (a model of its
    JS, which no Python test can run): ``Figure.padded_range`` shrinks the scale's pixel range by
    the ``Lines`` padding (``stroke_width / 2``) when the scale allows padding, the axis then
    widens its domain to the full plot height (``LinearScale.expandDomain``), and with
    ``num_ticks`` and no ``tick_values`` it spaces the ticks from that domain's lower end
    (``Axis.get_ticks_from_array_or_length``)."""
    ys = mon._throughput.yscale
    (axis,) = [a for a in mon.chart.axes if a.scale is ys]
    if axis.tick_values is not None and len(axis.tick_values):
        return [float(v) for v in axis.tick_values]
    pad = mon._throughput.lines.stroke_width / 2 if ys.allow_padding else 0.0
    per_px = (ys.max - ys.min) / (plot_height - 2 * pad)
    lo, hi = ys.min - pad * per_px, ys.max + pad * per_px
    step = (hi - lo) / (axis.num_ticks - 1)
    return [float(v) for v in np.arange(lo, hi + 0.5 * step, step)]


@pytest.mark.parametrize("split", [False, True])
def test_rate_axis_starts_at_zero_after_zero_and_nonzero_rates(
    wire: list, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, split: bool
):
    frame = EventFrame()
    frame.extend(make_events(3))
    mon = new_monitor(frame, clock, split_by_type=split)
    x = np.datetime64("2026-01-01T00:00:00", "ms") + np.arange(30) * np.timedelta64(1, "s")
    shape = (3, 30) if split else (30,)
    labels = ["PostToolUse", "PreToolUse", "Stop"] if split else ["all"]
    zero = np.zeros(shape)
    busy = np.zeros(shape)
    busy[..., -5:] = 37.0
    for y, top in ((zero, 1.0), (busy, 50.0), (zero, 1.0), (busy * 1e-3, 1.0), (busy * 3, 200.0)):
        monkeypatch.setattr(mon.model, "chart_data", lambda *args, y=y: (x, y, labels))
        clock.now += 1.0
        mon.refresh()
        assert mon.errors == 0
        ys = mon._throughput.yscale
        assert (ys.min, ys.max) == (0.0, top)
        assert ys.allow_padding is False
        ticks = bqplot_y_ticks(mon)
        assert ticks[0] == 0.0 and min(ticks) >= 0.0, ticks
        assert ticks[-1] == pytest.approx(top)


def test_chart_recomputes_at_most_once_a_second(
    wire: list, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
):
    frame = EventFrame()
    frame.extend(make_events(10))
    mon = new_monitor(frame, clock)
    calls = []
    real = mon.model.chart_data
    monkeypatch.setattr(mon.model, "chart_data", lambda *args: calls.append(1) or real(*args))
    for _ in range(4):
        clock.now += 0.25
        frame.extend(make_events(1, start=100 + len(calls) * 10 + int(clock.now * 4)))
        mon.refresh()
    assert len(calls) == 1


def test_chart_splits_by_event_type(wire: list, clock: FakeClock):
    frame = EventFrame()
    frame.extend(make_events(30))
    mon = new_monitor(frame, clock, split_by_type=True)
    lines = mon._throughput.lines
    assert sorted(lines.labels) == ["PostToolUse", "PreToolUse", "Stop"]
    assert lines.display_legend is True
    assert np.asarray(lines.y).sum() == 30
    mon.split.value = False
    clock.now += 1.0
    mon.refresh()
    assert lines.display_legend is False and np.asarray(lines.y).sum() == 30


@pytest.mark.parametrize(
    "stray",
    [time.time() * 1e6, 1e17, (time.time() + 75 * 365 * 86400) * 1000],
    ids=["microseconds", "beyond datetime64", "year 2100"],
)
def test_one_event_with_a_wrong_clock_does_not_break_or_move_the_chart(
    wire: list, clock: FakeClock, stray: float
):
    frame = EventFrame()
    frame.extend(make_events(30))
    frame.extend([{**make_events(1, start=99)[0], "timestamp": stray}])
    mon = new_monitor(frame, clock)
    for _ in range(3):
        clock.now += 1.0
        mon.refresh()
    assert mon.errors == 0
    chart = mon._throughput
    assert np.asarray(chart.lines.y).sum() == 30  # the 30 real events, in a window ending now
    assert np.datetime64(chart.xscale.max) <= np.datetime64(int(time.time() * 1000) + 5000, "ms")
