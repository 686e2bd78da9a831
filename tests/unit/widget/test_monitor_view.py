"""The monitor widget (wsnotebook.widget.view) without a kernel: the table, the filter
dropdowns and search box, the status line, pause and clear, and nothing sent when nothing
changed (checked on the recorded wire)."""

from __future__ import annotations

from typing import Any

import pytest
from _helpers import FakeClock
from _monitor_helpers import make_events, new_monitor, table_ids

from wsnotebook.frame import EventFrame
from wsnotebook.runtime import loop
from wsnotebook.widget import viewmodel as VM

pytestmark = pytest.mark.timeout(60)


def test_table_shows_newest_rows_first_and_only_as_many_as_asked(wire: list, clock: FakeClock):
    frame = EventFrame()
    frame.extend(make_events(50))
    mon = new_monitor(frame, clock, rows=7)
    assert table_ids(mon) == list(range(50, 43, -1))
    mon.rows.value = 3
    mon.refresh()
    assert table_ids(mon) == [50, 49, 48]


def test_empty_frame_renders_placeholder(wire: list, clock: FakeClock):
    mon = new_monitor(EventFrame(), clock)
    assert "no events yet" in mon.table.value
    assert "wsn-state-frame" in mon.status.value


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
    monkeypatch.setattr(VM, "MAX_OPTIONS", 5)
    frame = EventFrame()
    frame.extend([dict(ev, session_id=f"sess-{ev['id']:03d}") for ev in make_events(40)])
    mon = new_monitor(frame, clock)
    values = [v for _, v in mon.session_id.options]
    assert values == ["", "sess-040", "sess-039", "sess-038", "sess-037", "sess-036"]
    mon.session_id.value = "sess-038"
    mon.refresh()
    assert table_ids(mon) == [38]


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
    assert VM.search_regex("") is None


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


def test_the_search_box_looks_at_the_newest_rows_only_and_says_so(
    wire: list, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(VM, "SEARCH_SCAN_ROWS", 10)
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


def test_status_line_says_when_the_cpu_budget_deferred_work(
    wire: list, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
):
    mon = new_monitor(EventFrame(), clock)
    stats: dict[str, Any] = {"cpu_budget": 0.5, "throttle_pauses": 0, "producer_waits": 0}
    monkeypatch.setattr(loop, "budget_stats", lambda: stats)
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
