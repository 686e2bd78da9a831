"""Helpers of the widget tests: hook events, the rows a monitor sent to the browser (decoded
from its binary messages, as monitor.js reads them), a monitor that only ticks when a test says
so, and a polling wait."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
from _helpers import FakeClock

import wsnotebook.widget as W
from wsnotebook.frame import EventFrame

_DTYPES = {
    "id": "<f8",
    "text_pos": "<u4",
    "text_len": "<u4",
    "ts": "<f8",
    "lat": "<f4",
    "app": "<i4",
    "session": "<i4",
    "type": "<i4",
    "match": "<f8",
    "hist_sec": "<f8",
    "hist_type": "<i4",
    "hist_count": "<u4",
}


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


def customs(wire: list[dict[str, Any]], kind: str | None = None) -> list[dict[str, Any]]:
    """The custom messages sent (content plus decoded ``columns``), oldest first."""
    out = []
    for m in wire:
        data = m["data"] or {}
        if data.get("method") != "custom":
            continue
        content = dict(data["content"])
        if kind is not None and content.get("kind") != kind:
            continue
        cols: dict[str, Any] = {}
        for name, buf in zip(content.get("buffers", []), m["buffers"]):
            raw = bytes(buf)
            cols[name] = raw if name == "text" else np.frombuffer(raw, dtype=_DTYPES[name])
        if "text" in cols:
            pos, size, text = cols["text_pos"], cols["text_len"], cols["text"]
            assert len(pos) == len(size) == content["n"]
            assert all(p + k <= len(text) for p, k in zip(pos.tolist(), size.tolist()))
            cols["texts"] = [shown_text(text[p : p + k]) for p, k in zip(pos, size)]
        content["columns"] = cols
        out.append(content)
    return out


def shown_text(entry: bytes) -> str:
    """What monitor.js shows for one entry of a batch's ``text`` (``Store.text``): a summary
    after its mark, else the payload head without the boilerplate keys, cut to 200 characters
    (the browser's ``rowHead``, written here with the kernel's reference regex)."""
    if entry[:1] == W.packing.SUMMARY_MARK:
        return entry[1:].decode("utf-8", "replace")
    raw = entry.decode("utf-8", "replace").encode("utf-8")  # as the browser decodes a cut
    stripped = W.packing._BOILERPLATE.sub(b"\n{", b"\n" + raw)[1:]
    return stripped.decode("utf-8")[: W.packing.HEAD_BYTES]


def sent_ids(wire: list[dict[str, Any]]) -> list[int]:
    """Ids of every row sent (reset, rows and older pages), in the order sent."""
    ids: list[int] = []
    for msg in customs(wire):
        if msg.get("kind") in ("reset", "rows", "older"):
            ids += [int(x) for x in msg["columns"]["id"]]
    return ids


def state_updates(wire: list[dict[str, Any]], name: str) -> list[Any]:
    return [
        m["data"]["state"][name]
        for m in wire
        if (m["data"] or {}).get("method") == "update" and name in m["data"]["state"]
    ]


def new_monitor(frame: EventFrame, clock: FakeClock, **kw: Any) -> W.Monitor:
    return W.Monitor(frame, start=False, clock=clock, **kw)


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
