"""The monitor's lifetime (wsnotebook.widget.view, wsnotebook.widget.running): the tick on the
background loop, one running monitor per target (re-running a cell replaces it; ``new=True``
keeps both), stopping when its views close, errors counted not raised, options checked."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from _monitor_helpers import make_events, sent_ids, wait_until

import wsnotebook.widget as W
from wsnotebook.errors import ConfigError
from wsnotebook.frame import EventFrame

pytestmark = pytest.mark.timeout(60)


def test_tick_on_background_loop_sends_rows_and_stops_on_stop(wire: list) -> None:
    frame = EventFrame()
    mon = W.monitor(frame, refresh_hz=20)
    assert mon.running
    frame.extend(make_events(4))
    assert wait_until(lambda: sent_ids(wire)[-1:] == [4])
    mon.stop()
    assert wait_until(lambda: not mon.running)
    ticks = mon.ticks
    frame.extend(make_events(2, start=5))
    assert mon not in W.running_monitors()
    assert sent_ids(wire)[-1] == 4 and mon.ticks == ticks
    assert mon.status["state"] == "stopped"


def test_stop_sends_the_rows_added_since_the_last_tick(wire: list) -> None:
    # a stopped view must hold every row its final status counts (it showed ~50 fewer)
    frame = EventFrame()
    mon = W.monitor(frame, refresh_hz=0.2)  # a tick every 5 s: the stop comes between two
    frame.extend(make_events(3))
    mon.refresh()
    assert sent_ids(wire)[-1:] == [3]
    frame.extend(make_events(2, start=4))
    mon.stop()
    assert sent_ids(wire)[-2:] == [4, 5] and len(set(sent_ids(wire))) == 5
    assert mon.status["state"] == "stopped" and mon.status["events"] == 5


def test_monitoring_the_same_target_again_replaces_the_previous_one(wire: list) -> None:
    frame = EventFrame()
    first = W.monitor(frame, refresh_hz=20)
    second = W.monitor(frame, refresh_hz=20)
    assert wait_until(lambda: not first.running)
    assert first.comm is None  # closed: its view goes away with it
    assert second.running and W.running_monitors() == [second]
    third = W.monitor(frame, refresh_hz=20, new=True)  # explicitly a second one
    assert second.running and third.running
    assert set(W.running_monitors()) == {second, third}


def test_tick_stops_when_every_view_is_closed_and_restarts_with_a_view(wire: list) -> None:
    mon = W.monitor(EventFrame(), refresh_hz=20)
    assert mon._view_count == 0 and mon.running  # no view yet: keeps ticking
    mon._view_count = 2  # the front end reports views
    mon._view_count = 0  # ...then every view closed
    assert wait_until(lambda: not mon.running)
    mon._view_count = 1
    assert mon.running


def test_close_stops_the_tick_and_closes_the_widget(wire: list) -> None:
    mon = W.monitor(EventFrame(), refresh_hz=20)
    comm = mon.comm
    mon.close()
    assert not mon.running and comm.closed and mon.comm is None
    with pytest.raises(ConfigError):
        mon.start()


def test_a_failing_tick_is_logged_and_counted_not_raised(
    wire: list, caplog: pytest.LogCaptureFixture
) -> None:
    frame = EventFrame()
    mon = W.monitor(frame, refresh_hz=20)

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("frame exploded")

    with caplog.at_level(logging.ERROR, logger="wsnotebook"):
        frame.tail_columns = boom  # type: ignore[method-assign]
        frame.extend(make_events(1))
        assert wait_until(lambda: mon.errors >= 1)
    assert mon.running  # keeps ticking
    assert "frame exploded" in caplog.text
    assert wait_until(lambda: mon.status.get("errors", 0) >= 1)


def test_bad_options_raise_config_error(wire: list) -> None:
    frame = EventFrame()
    for kwargs in (
        {"refresh_hz": 0},
        {"refresh_hz": True},
        {"window": "2h"},
        {"split_by_type": "yes"},
        {"window_rows": 10},
        {"window_rows": True},
    ):
        with pytest.raises(ConfigError):
            W.monitor(frame, **kwargs)
    with pytest.raises(ConfigError, match="Client, Server or EventFrame"):
        W.monitor(object())
