"""Helpers of the widget tests: hook events, the ids a monitor's table shows, a monitor that
only ticks when a test says so, and a polling wait."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

from _helpers import FakeClock

import wsnotebook.widget as W
from wsnotebook.frame import EventFrame


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
    return [int(x) for x in re.findall(r"<tr><td>(\d+)</td>", mon.table.value)]


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
