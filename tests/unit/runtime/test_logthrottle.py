"""The rate-limited logging helper: LogThrottle (sans-I/O, injected clock) and its wrappers."""

from __future__ import annotations

import logging

import pytest
from _helpers import FakeClock

from wsnotebook.runtime.logthrottle import LogThrottle, ThrottledLog, ThrottledLoggerAdapter


def test_at_most_n_lines_per_key_per_period_then_the_next_period_reports_the_suppressed() -> None:
    clock = FakeClock()
    t = LogThrottle(3, 10.0, clock=clock)
    assert [t.admit("a") for _ in range(5)] == [0, 0, 0, None, None]
    assert t.suppressed_total == 2
    clock.now += 9.9
    assert t.admit("a") is None
    clock.now += 0.1  # the period is over: the first line carries the count
    assert t.admit("a") == 3
    assert t.admit("a") == 0


def test_keys_are_limited_independently() -> None:
    t = LogThrottle(1, 60.0, clock=FakeClock())
    assert t.admit("a") == 0
    assert t.admit("a") is None
    assert t.admit("b") == 0


def test_expired_hands_out_counts_once_and_they_are_not_repeated_on_the_next_line() -> None:
    clock = FakeClock()
    t = LogThrottle(1, 10.0, clock=clock)
    t.admit("a")
    t.admit("a")
    t.admit("a")
    t.admit("b")
    assert t.expired() == []  # period not over yet
    clock.now += 10
    assert t.expired() == [("a", 2)]
    assert t.expired() == []
    assert t.admit("a") == 0


def test_keys_are_bounded_least_recently_used_forgotten_first() -> None:
    t = LogThrottle(1, 60.0, clock=FakeClock(), max_keys=2)
    t.admit("a")
    t.admit("b")
    t.admit("a")  # a is now the most recent
    t.admit("c")  # evicts b
    assert len(t) == 2
    assert t.admit("b") == 0  # forgotten: admitted again (and a, now least recent, forgotten)
    assert t.admit("c") is None  # remembered: over its rate
    assert t.admit("a") == 0
    assert len(t) == 2


@pytest.mark.parametrize(
    ("per_period", "period", "max_keys"), [(0, 1.0, 1), (1, 0.0, 1), (1, 1.0, 0)]
)
def test_bad_settings_are_refused(per_period: int, period: float, max_keys: int) -> None:
    with pytest.raises(ValueError):
        LogThrottle(per_period, period, max_keys=max_keys)


def test_throttled_log_appends_the_suppressed_count_and_flush_logs_one_summary(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    log = ThrottledLog(logging.getLogger("wsnotebook.test.throttle"), 2, 5.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="wsnotebook.test.throttle"):
        results = [log.info("bad", "bad request %d", i) for i in range(100)]
        assert results[:3] == [True, True, False]
        assert [r.getMessage() for r in caplog.records] == ["bad request 0", "bad request 1"]
        clock.now += 5
        assert log.info("bad", "bad request %d", 100)
        assert caplog.records[-1].getMessage() == "bad request 100 (98 more suppressed)"
        for _ in range(10):
            log.info("bad", "again")
        clock.now += 5
        assert log.flush() == 1
        assert caplog.records[-1].getMessage() == "wsnotebook: bad: 9 more suppressed"
        assert log.flush() == 0


def test_a_disabled_level_is_neither_logged_nor_counted(caplog: pytest.LogCaptureFixture) -> None:
    log = ThrottledLog(logging.getLogger("wsnotebook.test.disabled"), 1, 5.0, clock=FakeClock())
    with caplog.at_level(logging.INFO, logger="wsnotebook.test.disabled"):
        assert not log.debug("k", "x")
        assert log.info("k", "y")
    assert [r.getMessage() for r in caplog.records] == ["y"]


def test_adapter_logs_client_errors_as_one_line_without_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    name = "wsnotebook.test.adapter"
    adapter = ThrottledLoggerAdapter(
        ThrottledLog(logging.getLogger(name), 3, 60.0, clock=FakeClock()), quiet=(ConnectionError,)
    )
    with caplog.at_level(logging.DEBUG, logger=name):
        for _ in range(50):
            try:
                raise ConnectionResetError("peer went away\nsecond line")
            except ConnectionError as exc:
                adapter.exception("Error handling request from %s", "1.2.3.4", exc_info=exc)
        try:
            raise RuntimeError("a bug")
        except RuntimeError:
            adapter.exception("Unhandled exception")
    quiet = [r for r in caplog.records if r.getMessage().startswith("Error handling")]
    assert len(quiet) == 3
    assert quiet[0].levelno == logging.DEBUG and quiet[0].exc_info is None
    assert (
        quiet[0].getMessage() == "Error handling request from 1.2.3.4: peer went away second line"
    )
    bug = [r for r in caplog.records if r.getMessage() == "Unhandled exception"]
    assert len(bug) == 1 and bug[0].levelno == logging.ERROR and bug[0].exc_info is not None
