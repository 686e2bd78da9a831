"""FlushPolicy (sans-I/O): a segment is due after ``interval`` s of its oldest pending item, at
once at ``rows`` pending events, never when nothing is pending; FlushOptions bounds."""

from __future__ import annotations

import pytest
from _helpers import FakeClock

from wsnotebook.errors import ConfigError
from wsnotebook.recording import FlushOptions, FlushPolicy


def test_nothing_pending_is_never_due() -> None:
    clock = FakeClock()
    policy = FlushPolicy(FlushOptions(interval=1.0, rows=10), clock)
    clock.now += 100
    assert not policy.due() and policy.deadline() is None
    policy.added(rows=0)
    assert not policy.due()


def test_due_after_the_interval_of_the_oldest_item() -> None:
    clock = FakeClock(10.0)
    policy = FlushPolicy(FlushOptions(interval=1.0, rows=10), clock)
    policy.added(rows=1)
    clock.now = 10.5
    policy.added(rows=1)  # a later item does not move the deadline
    assert policy.deadline() == 11.0 and not policy.due()
    clock.now = 11.0
    assert policy.due()
    policy.flushed()
    assert not policy.due() and policy.pending_rows == 0 and policy.flushes == 1


def test_due_at_once_when_rows_pile_up() -> None:
    clock = FakeClock()
    policy = FlushPolicy(FlushOptions(interval=60.0, rows=100), clock)
    policy.added(rows=99)
    assert not policy.due()
    policy.added(rows=1)
    assert policy.due()


def test_a_gap_record_alone_is_flushed_after_the_interval() -> None:
    clock = FakeClock()
    policy = FlushPolicy(FlushOptions(interval=0.5), clock)
    policy.added(gaps=1)
    clock.now += 0.5
    assert policy.due() and policy.pending_gaps == 1


def test_buffer_rows_is_at_least_rows() -> None:
    assert FlushOptions(rows=10, buffer_rows=10).buffer_rows == 10
    assert FlushOptions().buffer_rows == 200_000
    with pytest.raises(ConfigError):
        FlushOptions(rows=100, buffer_rows=99)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"interval": 0.0},
        {"interval": 4000.0},
        {"rows": 0},
        {"rows": 2_000_000},
        {"rows": 1.5},
        {"interval": "1"},
    ],
)
def test_options_are_bounded(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        FlushOptions(**kwargs)  # type: ignore[arg-type]
