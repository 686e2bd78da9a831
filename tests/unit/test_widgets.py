"""The monitor widget without a kernel: ipywidgets talk to a recording dummy comm.

Every message a widget would send to the front end is recorded, so "nothing is sent when nothing
changed" is checked on the wire, not on our own counters.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wsnotebook.widget.view as W
from wsnotebook.errors import ConfigError
from wsnotebook.frame import EventFrame

pytestmark = pytest.mark.timeout(60)


class RecordingComm:
    """Stands in for a kernel comm: records what would go to the front end."""

    kernel = True  # ipywidgets only sends when the comm has a kernel

    def __init__(self, log: list[dict[str, Any]], **kwargs: Any) -> None:
        self.comm_id = kwargs.get("comm_id") or f"comm-{len(log)}-{id(self)}"
        self.log = log
        self.closed = False

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        self.log.append({"comm": self.comm_id, "data": data})

    def close(self, *args: Any, **kwargs: Any) -> None:
        self.closed = True

    def on_msg(self, callback: Any) -> None:
        pass

    def on_close(self, callback: Any) -> None:
        pass


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    import ipywidgets.comm

    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(ipywidgets.comm, "create_comm", lambda **kw: RecordingComm(sent, **kw))
    return sent


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(autouse=True)
def _no_leftover_monitors() -> Iterator[None]:
    yield
    W.stop_all()


def make_events(n: int, *, start: int = 1, **fields: Any) -> list[dict[str, Any]]:
    now = time.time() * 1000 - 10_000  # complete seconds: the chart shows every bin
    out = []
    for i in range(start, start + n):
        ev = {
            "id": i,
            "timestamp": now - (start + n - i) * 10,
            "source_app": ("alpha", "beta")[i % 2],
            "session_id": f"s{i % 3}",
            "hook_event_type": ("PreToolUse", "PostToolUse", "Stop")[i % 3],
            "payload": {"tool_name": "Bash", "n": i},
            "summary": None,
        }
        ev.update(fields)
        out.append(ev)
    return out


def table_ids(mon: W.Monitor) -> list[int]:
    import re

    return [int(x) for x in re.findall(r"<tr><td>(\d+)</td>", mon.table.value)]


def new_monitor(frame: EventFrame, clock: FakeClock, **kw: Any) -> W.Monitor:
    return W.Monitor(frame, start=False, clock=clock, **kw)


# --------------------------------------------------------------------------- rendering


def test_table_shows_newest_rows_first_and_only_as_many_as_asked(wire: list, clock: FakeClock):
    frame = EventFrame()
    frame.extend(make_events(50))
    mon = new_monitor(frame, clock, rows=7)
    assert table_ids(mon) == list(range(50, 43, -1))
    mon.rows.value = 3
    mon.refresh()
    assert table_ids(mon) == [50, 49, 48]


def test_values_are_html_escaped_in_table_and_status():
    import pandas as pd

    df = pd.DataFrame(
        {
            "id": [1],
            "source_app": ["<script>alert(1)</script>"],
            "session_id": ["a&b"],
            "hook_event_type": ["<img src=x onerror=alert(1)>"],
            "summary": ["'quoted' \"text\" <b>bold</b>"],
            "payload": [{}],
        }
    )
    html = W.render_table(df)
    assert "<script>" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "a&amp;b" in html
    assert "&#x27;quoted&#x27; &quot;text&quot;" in html
    status = W.render_status({"state": "<open>", "events": 3, "note": "<i>x</i>"})
    assert "<open>" not in status and "<i>" not in status and "&lt;i&gt;x&lt;/i&gt;" in status


def test_long_payload_text_is_cut_with_an_ellipsis():
    import pandas as pd

    df = pd.DataFrame({"id": [1], "summary": [None], "payload": [{"text": "x" * 5000}]})
    html = W.render_table(df)
    assert "…" in html and "x" * W.MAX_CELL_CHARS not in html


def test_empty_frame_renders_placeholder(wire: list, clock: FakeClock):
    mon = new_monitor(EventFrame(), clock)
    assert "no events yet" in mon.table.value
    assert "wsn-state-frame" in mon.status.value


# --------------------------------------------------------------------------- filters


def test_dropdowns_are_fed_by_frame_categories(wire: list, clock: FakeClock):
    frame = EventFrame()
    frame.extend(make_events(12))
    mon = new_monitor(frame, clock)
    assert [v for _, v in mon.source_app.options] == ["", "alpha", "beta"]
    assert {v for _, v in mon.hook_event_type.options} == {"", "PreToolUse", "PostToolUse", "Stop"}
    frame.extend(make_events(1, start=13, source_app="gamma"))
    clock.now += 1.0  # options refresh at most once a second
    mon.refresh()
    assert "gamma" in [v for _, v in mon.source_app.options]


def test_dropdown_offers_at_most_max_options_newest_sessions_first(
    wire: list, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(W, "MAX_OPTIONS", 5)
    frame = EventFrame()
    frame.extend([dict(ev, session_id=f"sess-{ev['id']:03d}") for ev in make_events(40)])
    mon = new_monitor(frame, clock)
    values = [v for _, v in mon.session_id.options]
    assert values == ["", "sess-040", "sess-039", "sess-038", "sess-037", "sess-036"]
    mon.session_id.value = "sess-038"
    mon.refresh()
    assert table_ids(mon) == [38]


def test_nice_chart_ceiling():
    assert [W._nice_ceiling(v) for v in (0.0, 0.5, 1.5, 23.0, 170.0, 1000.0, float("nan"))] == [
        1.0,
        1.0,
        2.0,
        50.0,
        200.0,
        1000.0,
        1.0,
    ]


def bqplot_y_ticks(mon: W.Monitor, plot_height: float = 150.0) -> list[float]:
    """The y tick values the bqplot 0.13 front end draws for the monitor's chart (a model of its
    JS, which no Python test can run): ``Figure.padded_range`` shrinks the scale's pixel range by
    the ``Lines`` padding (``stroke_width / 2``) when the scale allows padding, the axis then
    widens its domain to the full plot height (``LinearScale.expandDomain``), and with
    ``num_ticks`` and no ``tick_values`` it spaces the ticks from that domain's lower end
    (``Axis.get_ticks_from_array_or_length``)."""
    ys = mon._yscale
    (axis,) = [a for a in mon.chart.axes if a.scale is ys]
    if axis.tick_values is not None and len(axis.tick_values):
        return [float(v) for v in axis.tick_values]
    pad = mon._lines.stroke_width / 2 if ys.allow_padding else 0.0
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
        monkeypatch.setattr(mon, "_chart_data", lambda y=y: (x, y, labels))
        clock.now += 1.0
        mon.refresh()
        assert mon.errors == 0
        ys = mon._yscale
        assert (ys.min, ys.max) == (0.0, top)
        assert ys.allow_padding is False
        ticks = bqplot_y_ticks(mon)
        assert ticks[0] == 0.0 and min(ticks) >= 0.0, ticks
        assert ticks[-1] == pytest.approx(top)


def test_filters_narrow_the_table(wire: list, clock: FakeClock):
    frame = EventFrame()
    frame.extend(make_events(60))
    mon = new_monitor(frame, clock, rows=10)
    mon.hook_event_type.value = "Stop"
    mon.source_app.value = "beta"
    mon.refresh()
    ids = table_ids(mon)
    assert ids and all(i % 3 == 2 and i % 2 == 1 for i in ids)
    assert ids == sorted(ids, reverse=True) and len(ids) == 10
    mon.hook_event_type.value = ""
    mon.source_app.value = ""
    mon.session_id.value = "s1"
    mon.refresh()
    assert table_ids(mon) and all(i % 3 == 1 for i in table_ids(mon))


def test_regex_search_filters_and_a_bad_regex_is_shown_not_raised(wire: list, clock: FakeClock):
    frame = EventFrame()
    frame.extend(make_events(20))
    frame.extend(make_events(1, start=21, summary="deploy to prod"))
    mon = new_monitor(frame, clock)
    mon.search.value = "re:dep.oy"
    mon.refresh()
    assert table_ids(mon) == [21]
    mon.search.value = "re:([unclosed"
    mon.refresh()
    assert "bad regex" in mon.status.value
    assert mon.errors == 0
    assert len(table_ids(mon)) == 20  # the bad pattern is ignored, not applied


def test_the_search_box_text_is_literal_unless_written_as_a_regex(wire: list, clock: FakeClock):
    """A pattern with nested quantifiers typed by accident must not stall the kernel (re has
    no timeout and holds the GIL): plain text is searched literally; re: opts into regex."""
    frame = EventFrame()
    frame.extend(make_events(3, summary="deploy to prod"))
    frame.extend(make_events(1, start=4, summary="call f(a+b) then x.y in /tmp/a+b/"))
    frame.extend(make_events(1, start=5, summary="aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!"))
    mon = new_monitor(frame, clock)
    for text, want in (
        ("dep.oy", []),  # not a regex: "." is a dot
        ("f(a+b)", [4]),  # would not even compile as a regex
        ("x.y", [4]),
        ("/tmp/a+b/", [4]),  # a path, not a /regex/
        ("(a+)+$", []),  # catastrophic as a regex on row 5; literal: instant, no match
        ("re:dep.oy", [3, 2, 1]),
        ("re:", [5, 4, 3, 2, 1]),  # an empty pattern: no filter
    ):
        mon.search.value = text
        clock.now += 0.25
        mon.refresh()
        assert table_ids(mon) == want, text
        assert "bad regex" not in mon.status.value
    assert W._search_regex("") is None


# --------------------------------------------------------------------------- throttling


def test_no_message_is_sent_when_nothing_changed(wire: list, clock: FakeClock):
    frame = EventFrame()
    frame.extend(make_events(30))
    mon = new_monitor(frame, clock)
    mon.refresh()
    clock.now += 2.0
    mon.refresh()  # the rate window may move once
    before = len(wire)
    for _ in range(5):
        clock.now += 0.25
        assert mon.refresh() is False
    assert len(wire) == before


def test_new_events_are_sent_on_the_next_tick_only(wire: list, clock: FakeClock):
    frame = EventFrame()
    frame.extend(make_events(5))
    mon = new_monitor(frame, clock)
    before = len(wire)
    frame.extend(make_events(3, start=6))
    assert len(wire) == before  # appending sends nothing by itself
    clock.now += 0.25
    assert mon.refresh() is True
    assert len(wire) > before
    assert table_ids(mon)[0] == 8
    assert ">8<" in mon.status.value  # events total


def test_chart_recomputes_at_most_once_a_second(
    wire: list, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
):
    frame = EventFrame()
    frame.extend(make_events(10))
    mon = new_monitor(frame, clock)
    calls = []
    real = mon._chart_data
    monkeypatch.setattr(mon, "_chart_data", lambda: calls.append(1) or real())
    for _ in range(4):
        clock.now += 0.25
        frame.extend(make_events(1, start=100 + len(calls) * 10 + int(clock.now * 4)))
        mon.refresh()
    assert len(calls) == 1


def test_chart_splits_by_event_type(wire: list, clock: FakeClock):
    frame = EventFrame()
    frame.extend(make_events(30))
    mon = new_monitor(frame, clock, split_by_type=True)
    lines = mon._lines
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
    assert np.asarray(mon._lines.y).sum() == 30  # the 30 real events, in a window ending now
    assert np.datetime64(mon._xscale.max) <= np.datetime64(int(time.time() * 1000) + 5000, "ms")


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


def test_the_search_box_looks_at_the_newest_rows_only_and_says_so(
    wire: list, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(W, "SEARCH_SCAN_ROWS", 10)
    frame = EventFrame()
    frame.extend(make_events(30, summary="needle"))
    mon = new_monitor(frame, clock)
    mon.search.value = "needle"
    clock.now += 0.25
    mon.refresh()
    assert sorted(table_ids(mon)) == list(range(21, 31))  # not 1..30: a bounded scan
    assert "search: newest 10 rows" in mon.status.value
    mon.search.value = ""
    clock.now += 0.25
    mon.refresh()
    assert "search: newest" not in mon.status.value


def test_the_status_line_shows_the_losses_the_client_recorded(wire: list, clock: FakeClock):
    frame = EventFrame()
    frame.extend(make_events(3))
    mon = new_monitor(frame, clock)
    mon.refresh()
    assert "gaps</span> <span class='wsn-v'>0<" in mon.status.value
    frame.mark_gap(4, 9, "evicted")
    clock.now += 0.25
    mon.refresh()
    assert "gaps</span> <span class='wsn-v'>1<" in mon.status.value


# --------------------------------------------------------------------------- buttons


def test_pause_freezes_table_and_resume_catches_up(wire: list, clock: FakeClock):
    frame = EventFrame()
    frame.extend(make_events(5))
    mon = new_monitor(frame, clock)
    mon.pause()
    frame.extend(make_events(5, start=6))
    clock.now += 0.25
    mon.refresh()
    assert table_ids(mon)[0] == 5 and "paused" in mon.status.value
    assert mon.pause_button.description == "resume"
    mon.resume()
    mon.refresh()
    assert table_ids(mon)[0] == 10 and "paused" not in mon.status.value


def test_clear_button_empties_the_frame_and_the_table(wire: list, clock: FakeClock):
    frame = EventFrame()
    frame.extend(make_events(5))
    mon = new_monitor(frame, clock)
    mon.clear_button.click()
    mon.refresh()
    assert len(frame) == 0 and table_ids(mon) == []


# --------------------------------------------------------------------------- tick and teardown


def wait_until(pred: Any, timeout: float = 15.0) -> bool:
    cond = threading.Condition()
    deadline = time.monotonic() + timeout
    with cond:
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            cond.wait(min(0.02, left))
    return True


def test_tick_on_background_loop_updates_and_stops_on_stop(wire: list):
    frame = EventFrame()
    mon = W.monitor(frame, refresh_hz=20)
    assert mon.running
    frame.extend(make_events(4))
    assert wait_until(lambda: table_ids(mon)[:1] == [4])
    mon.stop()
    assert wait_until(lambda: not mon.running)
    ticks = mon.ticks
    frame.extend(make_events(2, start=5))
    assert mon not in W.running_monitors()
    assert table_ids(mon)[0] == 4 and mon.ticks == ticks


def test_monitoring_the_same_target_again_stops_the_previous_tick(wire: list):
    frame = EventFrame()
    first = W.monitor(frame, refresh_hz=20)
    second = W.monitor(frame, refresh_hz=20)
    assert wait_until(lambda: not first.running)
    assert second.running and W.running_monitors() == [second]


def test_tick_stops_when_every_view_is_closed_and_restarts_with_a_view(wire: list):
    mon = W.monitor(EventFrame(), refresh_hz=20)
    assert mon.widget._view_count == 0 and mon.running  # no view yet: keeps ticking
    mon.widget._view_count = 2  # the front end reports views
    mon.widget._view_count = 0  # ...then every view closed
    assert wait_until(lambda: not mon.running)
    mon.widget._view_count = 1
    assert mon.running


def test_close_stops_the_tick_and_closes_every_widget(wire: list):
    mon = W.monitor(EventFrame(), refresh_hz=20)
    comms = [w.comm for w in W._walk(mon.widget)]
    mon.close()
    assert not mon.running
    assert all(c is None or c.closed for c in comms)
    assert all(w.comm is None for w in W._walk(mon.widget))
    with pytest.raises(ConfigError):
        mon.start()


def test_close_leaves_no_widget_model_of_the_monitor_open(wire: list) -> None:
    from ipywidgets.widgets.widget import _instances

    frame = EventFrame()
    W.monitor(frame).close()  # warm-up: classes and shared defaults
    before = set(_instances)
    mon = W.monitor(frame, split_by_type=True)
    created = set(_instances) - before
    assert len(created) > 40  # layouts, styles, the chart's marks, axes and scales too
    mon.close()
    assert not (set(_instances) & created)  # each one closed (was: 36 of 53 left open)


def test_the_monitor_table_renders_the_same_without_pandas(wire: list) -> None:
    frame = EventFrame(max_rows=50, chunk_rows=8)
    events = make_events(40)
    for i, e in enumerate(events):
        if i % 3 == 0:
            e["summary"] = f"did <thing> {i}"
        if i % 4 == 0:
            e["payload"] = {"session_id": "x", "cwd": "/tmp", "tool_name": "Édit", "n": i}
        if i % 5 == 0:
            e["client_received"] = e["timestamp"] + 12.5
        if i % 7 == 0:
            e["session_id"] = "0b5e1c9a-1234-4bcd-9ef0-123456789abc"
    events[5]["timestamp"] = None
    # large payloads: previewed from their text (PREVIEW_SCAN_BYTES), never decoded whole
    events[38]["payload"] = {"cwd": "/w", "tool_response": {"content": 'é"x' * 20_000}}
    events[39]["payload"] = {"tool_name": "Read", "session_id": "s", "out": ["ok"] * 9_000}
    assert all(len(orjson.dumps(e["payload"])) >= W.PREVIEW_SCAN_BYTES for e in events[38:])
    frame.extend(events)
    frame.extend([{**make_events(1)[0], "id": -1}])  # a row without an id
    for kw in ({}, {"limit": 7}, {"hook_event_type": "Stop", "limit": 5}, {"search": "Édit"}):
        cond = [kw.get(k) for k in ("source_app", "session_id", "hook_event_type")]
        plain = frame.plain_table(*cond, search=kw.get("search"), limit=kw.get("limit"))
        assert W.render_table(plain) == W.render_table(frame.filter(**kw))
        assert len(plain) == len(frame.filter(**kw))
    assert W.render_table(frame.plain_table(limit=0)) == W.render_table(frame.filter(limit=0))


def test_a_failing_tick_is_logged_and_counted_not_raised(
    wire: list, caplog: pytest.LogCaptureFixture
):
    frame = EventFrame()
    mon = W.monitor(frame, refresh_hz=20)

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("frame exploded")

    with caplog.at_level(logging.ERROR, logger="wsnotebook"):
        frame.plain_table = boom  # type: ignore[method-assign]
        frame.extend(make_events(1))
        assert wait_until(lambda: mon.errors >= 1)
    assert mon.running  # keeps ticking
    assert "frame exploded" in caplog.text
    # the status line still updates and shows the count
    assert wait_until(lambda: "errors</span> <span class='wsn-v'>0<" not in mon.status.value)


def test_bad_options_raise_config_error(wire: list):
    frame = EventFrame()
    for kwargs in (
        {"rows": 0},
        {"rows": 5000},
        {"rows": True},
        {"refresh_hz": 0},
        {"refresh_hz": True},
        {"window": "2h"},
        {"split_by_type": "yes"},  # was a TraitError from ipywidgets
        {"chart": 1},
    ):
        with pytest.raises(ConfigError):
            W.monitor(frame, **kwargs)
    assert W.monitor(frame, rows=np.int64(5)).rows.value == 5  # numpy ints are ints
    with pytest.raises(ConfigError, match="Client, Server or EventFrame"):
        W.monitor(object())


def test_latency_percentiles_come_from_the_newest_rows_without_building_a_dataframe(
    wire: list, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
):
    frame = EventFrame(max_rows=5000, chunk_rows=512)
    events = make_events(W.LATENCY_SAMPLE + 700)
    for i, e in enumerate(events):  # latencies 0..99 ms repeating, a few rows without a stamp
        e["client_received"] = None if i % 97 == 0 else e["timestamp"] + (i % 100)
    frame.extend(events)
    lat = frame.df["latency_ms"].tail(W.LATENCY_SAMPLE).dropna()
    expected = (float(lat.quantile(0.5)), float(lat.quantile(0.99)))
    mon = new_monitor(frame, clock)
    monkeypatch.setattr(EventFrame, "tail", None)  # not used: numeric columns only
    assert mon._latency_now() == pytest.approx(expected)
    assert new_monitor(EventFrame(), clock)._latency_now() == (None, None)


def test_status_line_says_when_the_cpu_budget_deferred_work(
    wire: list, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
):
    mon = new_monitor(EventFrame(), clock)
    stats: dict[str, Any] = {"cpu_budget": 0.5, "throttle_pauses": 0, "producer_waits": 0}
    monkeypatch.setattr(W._loop, "budget_stats", lambda: stats)
    assert "note" not in mon._status(0)  # nothing deferred: no note
    stats.update(
        throttle_pauses=3,
        throttled_s=1.25,
        producer_waits=2,
        producer_wait_s=0.5,
        coalesced_ticks=40,
    )
    note = mon._status(0)["note"]
    assert note == ("CPU budget 0.5 core: throttled 1.2 s, producers held 0.5 s, 40 sends batched")
    stats.update(throttle_pauses=0, producer_waits=0)  # batching alone is worth saying too
    assert "40 sends batched" in mon._status(0)["note"]


_JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=300),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=30,
)
_PAYLOAD_KEYS = st.one_of(
    st.sampled_from([*sorted(W._BOILERPLATE_KEYS), "tool_name", "tool_input"]), st.text(max_size=8)
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_PAYLOAD_KEYS, _JSON_VALUES, max_size=8))
def test_the_payload_preview_from_json_text_equals_the_preview_of_the_decoded_payload(
    payload: dict[str, Any],
) -> None:
    text = orjson.dumps(payload)
    assert W._preview_json(text) == W._preview(None, orjson.loads(text))


def test_the_payload_preview_reads_only_what_the_cell_shows() -> None:
    """A 0.9 MB tool output is not decoded to show 160 characters: the scan stops once the
    cell is full, so text past that point is never read (here it is not even JSON)."""
    head = b'{"session_id":"s","cwd":"/w","tool_name":"Read","tool_response":"'
    text = head + b"x" * 900_000 + b"<not json"
    preview = W._preview_json(text)
    assert preview == ('{"tool_name":"Read","tool_response":"' + "x" * 200)[:159] + "…"
    # cut inside a 4-byte character: still a full cell, and marked as cut
    wide = orjson.dumps({"a": "\U0001f600" * 170})
    assert W._preview_json(wide) == W._preview(None, orjson.loads(wide))
    # not a compact object: None, and the table decodes it instead
    for text in (b"[1]", b'{ "a": 1 }', b'{"a": 1}', b'{"a":1', b'{"a":}', b'{"a":1]'):
        assert W._preview_json(text) is None
    # a huge value under a key the preview skips is not walked token by token (187 ms for
    # 100k numbers; decoding is faster)
    assert W._preview_json(orjson.dumps({"session_id": list(range(100_000)), "a": 1})) is None


def test_the_table_previews_payload_text_it_cannot_scan_by_decoding_it() -> None:
    class Plain:
        columns = ("id", "summary", "payload_json")

        def __len__(self) -> int:
            return 1

        def __getitem__(self, name: str) -> list[Any]:
            return {"id": [7], "summary": [None], "payload_json": [b'{ "cwd": "/w", "a": 1 }']}[
                name
            ]

    assert "{&quot;a&quot;:1}" in W.render_table(Plain())
