"""The monitor's view-model and packing, sans-I/O (no widget, no comm): older pages fill the
browser's window, category codes stay stable when the frame renumbers, failure reasons read
well, live latency comes from the client's live events."""

from __future__ import annotations

from typing import Any

import numpy as np
from _helpers import FakeClock
from _monitor_helpers import make_events

from wsnotebook.frame import EventFrame
from wsnotebook.widget import packing as P
from wsnotebook.widget import viewmodel as V


def kinds(msgs: list[Any]) -> list[tuple[str, int]]:
    return [(h["kind"], h["n"]) for h, _ in msgs]


def test_a_reset_then_older_pages_fill_the_window_newest_first(monkeypatch: Any) -> None:
    monkeypatch.setattr(V, "RESET_ROWS", 100)
    monkeypatch.setattr(V, "PAGE_ROWS", 100)
    frame = EventFrame()
    frame.extend(make_events(350))
    model = V.MonitorModel(frame, None, None, FakeClock(), window_rows=300)
    assert kinds(model.messages()) == [("reset", 100), ("older", 100)]
    frame.extend(make_events(5, start=351))
    msgs = model.messages()
    assert kinds(msgs) == [("rows", 5), ("older", 95)]
    assert msgs[1][0]["first"] == 55  # frame index of the oldest row of the page
    assert kinds(model.messages()) == []  # the window (300) is full


def test_codes_stay_stable_when_the_frame_renumbers_its_dictionary() -> None:
    cm = P.CodeMap()
    codes, new = cm.remap(np.array([0, 1, -1, 1], dtype=np.int32), ["a", "b"])
    assert list(codes) == [0, 1, -1, 1] and new == ["a", "b"]
    codes, new = cm.remap(np.array([0, 1], dtype=np.int32), ["b", "c"])  # renumbered
    assert list(codes) == [1, 2] and new == ["c"]
    codes, new = cm.remap(np.array([2, 0, 2], dtype=np.int32), ["b", "c", "d"])  # grown
    assert list(codes) == [3, 1, 3] and new == ["d"]
    codes, new = cm.remap(np.array([0, 1, 2], dtype=np.int32), ["a", "d", "e"])  # same size
    assert list(codes) == [0, 3, 4] and new == ["e"]
    codes, new = cm.remap(np.array([-1, 1], dtype=np.int32), ["a", "d", "e"])
    assert list(codes) == [-1, 3] and new == [] and cm.values == ["a", "b", "c", "d", "e"]


def test_histogram_counts_per_second_and_type_skipping_rows_without_time() -> None:
    ts = np.array([1000.0, 1500.0, 2100.0, np.nan])
    header, (sec, _typ, cnt) = P.histogram(ts, np.array([0, 0, 1, 1], dtype=np.int32))
    assert header["n"] == 2
    assert list(np.frombuffer(sec, "<f8")) == [1, 2]
    assert list(np.frombuffer(cnt, "<u4")) == [2, 1]


def test_failure_reasons_read_well() -> None:
    refused = "refused: [Errno 111] Connect call failed ('127.0.0.1', 9)"
    assert V.reason_text(refused) == "connection refused"
    assert V.reason_text("network: [Errno -2] Name or service not known") == "host not found"
    assert V.reason_text(None) is None


class FakeClient:
    state = "reconnecting"
    error = None

    def __init__(self) -> None:
        self.frame = EventFrame()

    def metrics(self) -> dict[str, Any]:
        return {
            "url": "ws://127.0.0.1:9/stream",
            "last_disconnect": "refused: [Errno 111] Connect call failed",
            "events": 120,
            "live_events": 20,
            "latency_ms": {"p50": 1.5, "p99": 4.0},
        }


def test_status_has_the_reason_the_url_and_live_apart_from_backfill() -> None:
    client = FakeClient()
    model = V.MonitorModel(client.frame, client, None, FakeClock())
    status = model.status(stopped=False, errors=0)
    assert status["state"] == "reconnecting" and status["reason"] == "connection refused"
    assert status["url"] == "ws://127.0.0.1:9/stream"
    assert (status["live"], status["backfill"]) == (20, 100)
    assert (status["p50_ms"], status["p99_ms"]) == (1.5, 4.0)  # live events only


class StoppedServer:
    url = "ws://127.0.0.1:1/stream"
    running = False

    def publish(self, event: Any) -> None:
        pass

    def metrics(self) -> dict[str, Any]:
        return {}


def test_a_stopped_server_says_so() -> None:
    model = V.MonitorModel(None, None, StoppedServer(), FakeClock())
    assert model.status(stopped=False, errors=0)["state"] == "server stopped"
    assert model.messages() == []


def test_row_heads_take_the_summary_else_the_payload_without_its_boilerplate() -> None:
    payloads = [
        b'{"session_id":"s1","transcript_path":"~/t.jsonl","cwd":"/p","hook_event_name":"Stop",'
        b'"permission_mode":"default","tool_name":"Grep"}',
        b'{"session_id":"a\\"b","cwd":"/p","prompt":"hi"}',  # an escaped quote in a value
        b'{"prompt":"first","session_id":"s"}',  # boilerplate only at a row's start
        b'{"session_id":"s","prompt":"' + b"x" * 900 + b'"}',  # a long row is cut
        b'{"session_id":"s","n":1}',
    ]
    none = [None] * len(payloads)
    plain = P.row_heads(none, payloads)
    assert plain[:3] == [b'{"tool_name":"Grep"}', b'{"prompt":"hi"}', payloads[2]]
    assert plain[3] == (b'{"prompt":"' + b"x" * 900)[: P.HEAD_BYTES]
    assert plain[4] == b'{"n":1}'
    # rows with a summary show it (cut to the limit, UTF-8) and the others their payload head
    mixed = P.row_heads(["sum é", None, "", "z" * 500, None], payloads)
    assert mixed == ["sum é".encode(), plain[1], plain[2], b"z" * P.HEAD_BYTES, plain[4]]
    assert P.row_heads(["s", None], None) == [b"s", b""]
    assert P.row_heads(none, payloads, limit=5) == [h[:5] for h in plain]
