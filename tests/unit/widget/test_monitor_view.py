"""The monitor widget as the browser sees it (wsnotebook.widget.view), without a kernel: it is a
widget (composes in a VBox), each tick sends only the rows added since the last one as binary
columns, search matches, status and the detail/export/answer requests; bad input is a message in
the widget, never an exception in the cell."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import ipywidgets
import pandas as pd
import pytest
from _helpers import FakeClock
from _monitor_helpers import customs, make_events, new_monitor, sent_ids, state_updates

import wsnotebook.widget as W
from wsnotebook.frame import EventFrame
from wsnotebook.runtime import loop


def test_the_monitor_is_a_widget_that_composes_in_boxes(wire: list, clock: FakeClock) -> None:
    mon = new_monitor(EventFrame(), clock)
    box = ipywidgets.VBox([ipywidgets.HTML("above"), mon])
    tab = ipywidgets.Tab(children=[mon])
    assert box.children[1] is mon and tab.children[0] is mon and mon.widget is mon
    bundle = mon._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "application/vnd.jupyter.widget-view+json" in data
    assert "text/html" in data  # a static table for renderers without widgets
    esm = Path(W.view.__file__).parent / "static" / "monitor.js"
    assert esm.is_file() and "http" not in esm.read_text().split("\n", 8)[-1][:0]


def test_the_first_tick_sends_a_reset_then_only_new_rows(wire: list, clock: FakeClock) -> None:
    frame = EventFrame()
    frame.extend(make_events(5))
    mon = new_monitor(frame, clock)
    mon.refresh()
    (reset,) = customs(wire, "reset")
    assert reset["first"] == 0 and reset["total"] == 5
    assert list(reset["columns"]["id"]) == [1, 2, 3, 4, 5]
    assert reset["dicts"]["app"] == ["alpha", "beta"] or set(reset["dicts"]["app"]) == {
        "alpha",
        "beta",
    }
    assert int(reset["columns"]["hist_count"].sum()) == 5  # the chart's history
    frame.extend(make_events(3, start=6))
    mon.refresh()
    (rows,) = customs(wire, "rows")
    assert rows["first"] == 5 and rows["n"] == 3
    assert list(rows["columns"]["id"]) == [6, 7, 8]
    assert sent_ids(wire) == [1, 2, 3, 4, 5, 6, 7, 8]  # each row once


def test_a_tick_costs_the_new_rows_not_the_rows_held(wire: list, clock: FakeClock) -> None:
    frame = EventFrame()
    frame.extend(make_events(50_000))
    mon = new_monitor(frame, clock, window_rows=50_000)
    for _ in range(4):  # reset page + older pages fill the window
        mon.refresh()
    assert len(sent_ids(wire)) == 50_000
    del wire[:]
    frame.extend(make_events(7, start=50_001))
    mon.refresh()
    assert [m["n"] for m in customs(wire)] == [7]


def test_nothing_is_sent_when_nothing_changed(wire: list, clock: FakeClock) -> None:
    frame = EventFrame()
    frame.extend(make_events(3))
    mon = new_monitor(frame, clock)
    mon.refresh()
    mon.refresh()  # the status settles (rates)
    n = len(wire)
    assert not mon.refresh()
    assert len(wire) == n


def test_row_texts_prefer_the_summary_and_drop_hook_boilerplate(
    wire: list, clock: FakeClock
) -> None:
    frame = EventFrame()
    frame.extend(make_events(1, summary="did a thing"))
    frame.extend(
        make_events(
            1,
            start=2,
            payload={"session_id": "x" * 36, "cwd": "/tmp", "tool_name": "Read", "big": "y" * 999},
        )
    )
    mon = new_monitor(frame, clock)
    mon.refresh()
    texts = customs(wire, "reset")[0]["columns"]["texts"]
    assert texts[0] == "did a thing"
    assert texts[1].startswith('{"tool_name":"Read","big":"yyy')
    assert len(texts[1]) == W.packing.HEAD_BYTES  # cut in the browser, in characters


def test_search_is_literal_unless_re_and_a_bad_regex_is_a_message(
    wire: list, clock: FakeClock
) -> None:
    frame = EventFrame()
    frame.extend(make_events(30))
    mon = new_monitor(frame, clock)
    mon.refresh()
    mon.search = '"n":1'  # literal: the braces and quotes are text
    mon.refresh()
    match = customs(wire, "match")[-1]
    assert match["searching"] and set(match["columns"]["match"]) == {1, 10, 11, 12, 13} | {
        14,
        15,
        16,
        17,
        18,
        19,
    }
    sent = len(customs(wire, "match"))
    mon.search = "re:("
    assert mon.notice.startswith("bad regex")  # shown, not raised
    assert mon.search_error == mon.notice  # the box is marked
    mon.refresh()
    # the search in use stays (a regex being typed is often incomplete): no new match set
    assert len(customs(wire, "match")) == sent and mon.model.pattern == re.escape('"n":1')
    assert "bad regex" not in str(mon.status.get("note"))  # said once, not also in the status
    mon.search = 're:"n":2\\d'
    mon.refresh()
    assert set(customs(wire, "match")[-1]["columns"]["match"]) == set(range(20, 30))
    assert mon.notice == ""
    frame.extend(make_events(2, start=29))  # 29 is a duplicate; 30 is new
    frame.extend(make_events(1, start=31, payload={"n": 25}))
    mon.refresh()
    rows = customs(wire, "rows")[-1]
    assert list(rows["columns"]["match"]) == [31]  # matches among the new rows only


def test_clear_pause_and_a_reloaded_view_each_send_a_fresh_window(
    wire: list, clock: FakeClock
) -> None:
    frame = EventFrame()
    frame.extend(make_events(4))
    mon = new_monitor(frame, clock)
    mon.refresh()
    mon.clear()
    mon.refresh()
    assert customs(wire, "reset")[-1]["n"] == 0
    mon.pause()
    frame.extend(make_events(2, start=5))
    del wire[:]
    mon.refresh()
    assert customs(wire) == []  # paused: nothing sent
    mon.resume()
    mon.refresh()
    assert list(customs(wire, "reset")[-1]["columns"]["id"]) == [5, 6]
    mon._on_msg(mon, {"kind": "hello"}, [])  # a view (re)loaded
    mon.refresh()
    assert list(customs(wire, "reset")[-1]["columns"]["id"]) == [5, 6]


def test_detail_sends_the_pretty_payload_and_the_chat(wire: list, clock: FakeClock) -> None:
    frame = EventFrame()
    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    frame.extend(make_events(2, chat=chat))
    mon = new_monitor(frame, clock)
    mon._send_detail(2)
    (detail,) = customs(wire, "detail")
    assert detail["id"] == 2 and detail["payload"] == '{\n  "tool_name": "Bash",\n  "n": 2\n}'
    assert detail["chat"] == chat and detail["fields"]["hook_event_type"] == "Stop"
    mon._send_detail(999)
    assert customs(wire, "detail")[-1]["error"] == "no longer in the frame"


def test_detail_marks_where_the_search_in_use_matches(wire: list, clock: FakeClock) -> None:
    frame = EventFrame()
    payload = {"tool_name": "Bash", "n": 2, "out": "Bash again"}
    frame.extend(make_events(1, start=2, payload=payload, summary="Running Bash ls"))
    mon = new_monitor(frame, clock)
    mon._send_detail(2)
    assert "hits" not in customs(wire, "detail")[-1]  # no search: nothing marked

    def marked(search: str) -> tuple[list[str], list[str]]:
        mon.search = search
        mon._send_detail(2)
        d = customs(wire, "detail")[-1]
        return [d["payload"][a:b] for a, b in d["hits"]], [
            d["fields"]["summary"][a:b] for a, b in d["summary_hits"]
        ]

    assert marked("Bash") == (["Bash", "Bash"], ["Bash"])
    # the filter searches the compact text ('"n":2'): its match is marked on the pretty text,
    # at the same characters, the indentation's space included
    assert marked('"n":2') == (['"n": 2'], [])
    assert marked('re:"out":"\\w+') == (['"out": "Bash'], [])
    assert marked("ls") == ([], ["ls"])  # in the summary only
    assert marked("re:(") == ([], ["ls"])  # a bad regex is not used: the search in use stays


def test_export_writes_the_current_filter_or_says_why_not(
    wire: list, clock: FakeClock, tmp_path: Path
) -> None:
    frame = EventFrame()
    frame.extend(make_events(9))
    mon = new_monitor(frame, clock)
    mon._export({"format": "csv", "path": str(tmp_path / "x.csv"), "apps": ["alpha"]})
    assert mon.notice.startswith("wrote 4 rows")
    assert set(pd.read_csv(tmp_path / "x.csv")["source_app"]) == {"alpha"}
    mon.search = '"n":9'
    mon._export({"format": "parquet", "path": str(tmp_path / "x.parquet")})
    assert list(pd.read_parquet(tmp_path / "x.parquet")["id"]) == [9]
    mon._export({"format": "csv", "path": str(tmp_path / "missing" / "x.csv")})
    assert mon.notice.startswith("export: no such directory")
    mon._export({"format": "xlsx", "path": "x"})
    assert "csv or parquet" in mon.notice
    assert not mon.notice_ok  # drawn as a problem, a written file as a success
    # the CSV button with a .parquet path: refused (CSV text under a Parquet name)
    mon._export({"format": "csv", "path": str(tmp_path / "y.parquet")})
    assert "ends in .parquet" in mon.notice and not (tmp_path / "y.parquet").exists()
    # no extension: the format's is added; the message names the absolute path, and says
    # when a file was replaced
    mon._export({"format": "csv", "path": str(tmp_path / "plain")})
    assert mon.notice_ok and mon.notice.endswith(f"to {tmp_path / 'plain.csv'}")
    mon._export({"format": "csv", "path": str(tmp_path / "plain.csv")})
    assert mon.notice.endswith("(replaced the file there)")


def test_status_counts_and_the_cpu_budget_note(
    wire: list, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = EventFrame()
    frame.extend(make_events(3))
    frame.mark_gap(4, 9, "evicted")
    mon = new_monitor(frame, clock)
    # the process-wide budget may have throttled in an earlier test: start from a quiet one
    stats: dict[str, Any] = {"cpu_budget": 0.5, "throttle_pauses": 0, "throttled_s": 0.0}
    monkeypatch.setattr(loop, "budget_stats", lambda: stats)
    mon.refresh()
    assert mon.status["state"] == "frame" and mon.status["events"] == 3
    assert mon.status["gaps"] == 1 and "note" not in mon.status
    stats.update(throttle_pauses=3, throttled_s=1.25)
    clock.now += 1.0
    mon.refresh()
    assert mon.status["note"].startswith(
        "keeping to 0.5 core so cells stay responsive: paused 1.2 s"
    )
    clock.now += W.viewmodel.BUDGET_NOTE_S  # no throttling since: the note goes
    mon.refresh()
    assert "note" not in mon.status
    mon.stop()
    assert mon.status["state"] == "stopped"
    assert state_updates(wire, "status")[-1]["state"] == "stopped"


def test_answers_go_through_the_panel_and_come_back_as_a_note(wire: list, clock: FakeClock) -> None:
    mon = new_monitor(EventFrame(), clock)
    mon._on_msg(mon, {"kind": "answer", "id": 3, "permission": True}, [])
    assert mon.question_note.startswith("read-only")
