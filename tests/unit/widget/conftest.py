"""Fixtures of the widget tests: the monitor without a kernel, its widgets talking to a
recording dummy comm.

* ``wire`` -> the list of every message a widget would send to the front end (so "nothing is
  sent when nothing changed" is checked on the wire, not on our own counters).
* ``clock`` -> a :class:`FakeClock` (tests move ``clock.now`` by hand) for ``Monitor(clock=)``.
* every monitor a test started is stopped afterwards.

Helper functions (events, table ids, a monitor that does not tick) are in
``_monitor_helpers.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from _helpers import FakeClock

import wsnotebook.widget as W


class RecordingComm:
    """Stands in for a kernel comm: records what would go to the front end."""

    kernel = True  # ipywidgets only sends when the comm has a kernel

    def __init__(self, log: list[dict[str, Any]], **kwargs: Any) -> None:
        self.comm_id = kwargs.get("comm_id") or f"comm-{len(log)}-{id(self)}"
        self.log = log
        self.closed = False

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        self.log.append({"comm": self.comm_id, "data": data, "buffers": list(buffers or [])})

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


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(autouse=True)
def _no_leftover_monitors() -> Iterator[None]:
    yield
    W.stop_all()
