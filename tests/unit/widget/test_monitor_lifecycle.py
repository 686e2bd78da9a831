"""The monitor's lifetime (wsnotebook.widget.view, wsnotebook.widget.running): the tick on the
background loop, one running monitor per target, stopping when its views close, closing every
widget model, errors counted not raised, options checked."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest
from _monitor_helpers import make_events, table_ids, wait_until

import wsnotebook.widget as W
from wsnotebook.errors import ConfigError
from wsnotebook.frame import EventFrame
from wsnotebook.widget.traits import walk

pytestmark = pytest.mark.timeout(60)


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
    comms = [w.comm for w in walk(mon.widget)]
    mon.close()
    assert not mon.running
    assert all(c is None or c.closed for c in comms)
    assert all(w.comm is None for w in walk(mon.widget))
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
