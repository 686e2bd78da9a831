"""HTML rendering of the monitor's table and status line (wsnotebook.widget.render): escaping,
cut cells, and the same table from the frame's plain columns as from a DataFrame."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from _monitor_helpers import make_events

from wsnotebook.frame import EventFrame
from wsnotebook.widget import preview as P
from wsnotebook.widget import render as R

pytestmark = pytest.mark.timeout(60)


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
    html = R.render_table(df)
    assert "<script>" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "a&amp;b" in html
    assert "&#x27;quoted&#x27; &quot;text&quot;" in html
    status = R.render_status({"state": "<open>", "events": 3, "note": "<i>x</i>"})
    assert "<open>" not in status and "<i>" not in status and "&lt;i&gt;x&lt;/i&gt;" in status


def test_long_payload_text_is_cut_with_an_ellipsis():
    import pandas as pd

    df = pd.DataFrame({"id": [1], "summary": [None], "payload": [{"text": "x" * 5000}]})
    html = R.render_table(df)
    assert "…" in html and "x" * P.MAX_CELL_CHARS not in html


def test_the_monitor_table_renders_the_same_without_pandas() -> None:
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
    assert all(len(orjson.dumps(e["payload"])) >= P.PREVIEW_SCAN_BYTES for e in events[38:])
    frame.extend(events)
    frame.extend([{**make_events(1)[0], "id": -1}])  # a row without an id
    for kw in ({}, {"limit": 7}, {"hook_event_type": "Stop", "limit": 5}, {"search": "Édit"}):
        cond = [kw.get(k) for k in ("source_app", "session_id", "hook_event_type")]
        plain = frame.plain_table(*cond, search=kw.get("search"), limit=kw.get("limit"))
        assert R.render_table(plain) == R.render_table(frame.filter(**kw))
        assert len(plain) == len(frame.filter(**kw))
    assert R.render_table(frame.plain_table(limit=0)) == R.render_table(frame.filter(limit=0))


def test_the_table_previews_payload_text_it_cannot_scan_by_decoding_it() -> None:
    class Plain:
        columns = ("id", "summary", "payload_json")

        def __len__(self) -> int:
            return 1

        def __getitem__(self, name: str) -> list[Any]:
            return {"id": [7], "summary": [None], "payload_json": [b'{ "cwd": "/w", "a": 1 }']}[
                name
            ]

    assert "{&quot;a&quot;:1}" in R.render_table(Plain())
