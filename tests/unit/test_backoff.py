"""Backoff timing (fake clock, seeded RNG, no sleeping) and what the client retries."""

from __future__ import annotations

import random

import pytest
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosedError, InvalidMessage, InvalidStatus, InvalidURI
from websockets.frames import Close
from websockets.http11 import Response

from wsnotebook.client.client import classify_close, classify_exception
from wsnotebook.errors import AuthError, ClientError, ConfigError
from wsnotebook.protocol import Backoff


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_delays_follow_full_jitter_under_an_exponential_ceiling() -> None:
    clock = FakeClock()
    b = Backoff(base=0.1, factor=2.0, cap=10.0, min_delay=0.0, rng=random.Random(1), clock=clock)
    ref = random.Random(1)
    expected_ceilings = [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0, 10.0]
    for ceiling in expected_ceilings:
        assert b.next_delay() == pytest.approx(ref.uniform(0, ceiling))
    assert b.attempts == len(expected_ceilings)


def test_delays_are_bounded_by_cap_and_min_delay_over_many_attempts() -> None:
    b = Backoff(base=0.05, cap=0.5, min_delay=0.01, rng=random.Random(3), clock=FakeClock())
    delays = [b.next_delay() for _ in range(2000)]
    assert all(0.01 <= d <= 0.5 for d in delays)
    # full jitter: late delays spread over the whole [0, cap] range, not clustered at cap
    late = delays[100:]
    assert min(late) < 0.1 and max(late) > 0.4


def test_same_seed_gives_the_same_schedule() -> None:
    a = Backoff(rng=random.Random(42), clock=FakeClock())
    b = Backoff(rng=random.Random(42), clock=FakeClock())
    assert [a.next_delay() for _ in range(20)] == [b.next_delay() for _ in range(20)]


def test_attempts_reset_only_after_a_stable_connection() -> None:
    clock = FakeClock()
    b = Backoff(stable_after=5.0, rng=random.Random(0), clock=clock)
    for _ in range(4):
        b.next_delay()
    b.connected()
    clock.t += 4.9
    b.disconnected()  # flapping: not stable, keep growing
    assert b.attempts == 4
    b.connected()
    clock.t += 5.0
    b.disconnected()
    assert b.attempts == 0


def test_max_attempts_exhausts() -> None:
    b = Backoff(max_attempts=2, rng=random.Random(0), clock=FakeClock())
    assert not b.exhausted()
    b.next_delay()
    b.next_delay()
    assert b.exhausted()
    assert Backoff(max_attempts=0, clock=FakeClock()).exhausted()


def test_huge_attempt_counts_do_not_overflow() -> None:
    b = Backoff(cap=3.0, clock=FakeClock())
    assert b.ceiling(10**9) == 3.0


@pytest.mark.parametrize(
    "kwargs", [{"base": 0}, {"factor": 0.5}, {"cap": 0.01}, {"max_attempts": -1}]
)
def test_invalid_backoff_settings_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        Backoff(clock=FakeClock(), **kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- retry policy


def _status(code: int) -> InvalidStatus:
    return InvalidStatus(Response(code, "x", Headers()))


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(),
        ConnectionResetError(),
        TimeoutError(),
        OSError("network unreachable"),
        _status(500),
        _status(503),
        _status(429),
    ],
)
def test_transient_failures_are_retried(exc: Exception) -> None:
    v = classify_exception(exc)
    assert v.retry and v.error is None


def test_eof_during_handshake_is_retried() -> None:
    exc = InvalidMessage("did not receive a valid HTTP response")
    exc.__cause__ = EOFError()
    assert classify_exception(exc).retry


@pytest.mark.parametrize("code", [401, 403])
def test_auth_refusals_stop_with_auth_error(code: int) -> None:
    v = classify_exception(_status(code))
    assert not v.retry
    assert isinstance(v.error, AuthError)
    assert str(code) in str(v.error)


def test_other_http_statuses_and_bad_urls_stop_with_client_error() -> None:
    v = classify_exception(_status(404))
    assert not v.retry and isinstance(v.error, ClientError)
    assert not isinstance(v.error, AuthError)
    v = classify_exception(InvalidURI("htp://x", "scheme isn't ws or wss"))
    assert not v.retry and isinstance(v.error, ClientError)


@pytest.mark.parametrize("code", [1000, 1001, 1011, 1012, 1013])
def test_retryable_close_codes(code: int) -> None:
    v = classify_close(ConnectionClosedError(Close(code, "bye"), None))
    assert v.retry
    assert v.kind == f"close_{code}"


def test_abnormal_close_and_ping_timeout_are_retried() -> None:
    assert classify_close(ConnectionClosedError(None, None)).kind == "closed_abnormally"
    v = classify_close(ConnectionClosedError(None, Close(1011, "keepalive ping timeout")))
    assert v.retry and v.kind == "ping_timeout"


def test_policy_close_stops_with_auth_error_naming_the_reason() -> None:
    v = classify_close(ConnectionClosedError(Close(1008, "bad token"), None))
    assert not v.retry
    assert isinstance(v.error, AuthError)
    assert "bad token" in str(v.error)


@pytest.mark.parametrize("code", [1002, 1003, 1007, 4000])
def test_unexpected_close_codes_stop(code: int) -> None:
    v = classify_close(ConnectionClosedError(Close(code, "nope"), None))
    assert not v.retry and isinstance(v.error, ClientError)


def test_message_too_big_stops() -> None:
    v = classify_close(ConnectionClosedError(None, Close(1009, "over size limit")))
    assert not v.retry and isinstance(v.error, ClientError)


@pytest.mark.parametrize(
    "bad",
    [{"cap": float("nan")}, {"base": float("inf"), "cap": float("inf")},
     {"stable_after": float("nan")}, {"factor": float("nan")}, {"min_delay": float("inf")},
     {"base": True}],
)  # fmt: skip
def test_backoff_refuses_settings_that_are_not_finite_numbers(bad: dict) -> None:
    """cap=nan gave a 10 ms reconnect storm, inf an endless wait, stable_after=nan never reset."""
    with pytest.raises(ConfigError, match="backoff"):
        Backoff(clock=lambda: 0.0, **bad)
