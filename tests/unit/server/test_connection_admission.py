"""AdmissionPolicy (sans-I/O, injected clock): the connection cap with its reserve, the
header-read and keep-alive idle timeouts, and what descriptor exhaustion closes."""

from __future__ import annotations

import pytest

from wsnotebook.server import admission
from wsnotebook.server.admission import AdmissionPolicy, effective_cap


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def policy(clock: Clock, cap: int = 10, reserve: int = 2) -> AdmissionPolicy[str]:
    return AdmissionPolicy(
        cap=cap, reserve=reserve, header_timeout=10.0, keepalive_timeout=15.0, clock=clock
    )


def test_connections_below_the_soft_limit_are_all_kept() -> None:
    clock = Clock()
    p = policy(clock)
    for i in range(8):
        assert p.opened(f"c{i}") == []
        clock.t += 1
    assert len(p) == 8 and p.idle == 8


def test_beyond_cap_minus_reserve_the_longest_idle_connection_is_closed_first() -> None:
    clock = Clock()
    p = policy(clock)
    for i in range(8):
        p.opened(f"c{i}")
        clock.t += 1
    p.started("c0")  # busy: never shed
    p.started("c1")
    p.finished("c1")  # idle again since now: the most recently idle
    assert p.opened("new") == ["c2"]
    assert p.opened("new2") == ["c3"]
    assert len(p) == 8
    assert p.counts["shed_idle"] == 2
    assert "c0" in set(p.keys()) and "c1" in set(p.keys())


def test_when_every_other_connection_is_busy_the_one_beyond_cap_is_refused() -> None:
    clock = Clock()
    p = policy(clock, cap=4, reserve=1)
    for i in range(4):
        p.opened(f"ws{i}")
        p.started(f"ws{i}")  # WebSockets: a request in flight for their whole life
    assert p.opened("late") == ["late"]
    assert p.counts["refused"] == 1
    assert len(p) == 4


def test_a_new_connection_is_kept_while_older_idle_ones_make_room() -> None:
    clock = Clock()
    p = policy(clock, cap=4, reserve=1)
    p.opened("idle")
    for i in range(2):
        p.opened(f"ws{i}")
        p.started(f"ws{i}")
    clock.t += 1
    assert p.opened("health") == ["idle"]  # health check gets in, the idle one goes
    assert set(p.keys()) == {"ws0", "ws1", "health"}


def test_a_connection_without_complete_headers_is_closed_after_header_timeout() -> None:
    clock = Clock()
    p = policy(clock)
    p.opened("slow")
    clock.t += 5
    p.opened("later")
    clock.t += 4.9
    assert p.expired() == []
    clock.t += 0.2
    assert p.expired() == ["slow"]
    clock.t += 5
    assert p.expired() == ["later"]
    assert p.counts["header_timeout"] == 2
    assert len(p) == 0


def test_a_keepalive_connection_is_closed_after_idle_timeout_since_its_last_reply() -> None:
    clock = Clock()
    p = policy(clock)
    p.opened("k")
    p.started("k")
    clock.t += 100  # a long request (or a WebSocket) is never timed out
    assert p.expired() == []
    p.finished("k")
    clock.t += 14.9
    assert p.expired() == []
    clock.t += 0.2
    assert p.expired() == ["k"]
    assert p.counts["keepalive_timeout"] == 1


def test_zero_timeouts_disable_expiry() -> None:
    clock = Clock()
    p = AdmissionPolicy[str](cap=10, reserve=1, header_timeout=0, keepalive_timeout=0, clock=clock)
    p.opened("a")
    p.opened("b")
    p.started("b")
    p.finished("b")
    clock.t += 1e6
    assert p.expired() == []


def test_descriptor_exhaustion_closes_idle_connections_once_per_interval() -> None:
    clock = Clock()
    p = policy(clock, cap=100, reserve=2)
    for i in range(20):
        p.opened(f"old{i}")
    p.started("old0")  # busy: kept
    clock.t += 5
    for i in range(3):
        p.opened(f"young{i}")  # idle for less than EXHAUSTED_MIN_IDLE: spared
    shed = p.exhausted()
    assert shed == [f"old{i}" for i in range(1, 20)]
    assert p.exhausted() == []  # within SHED_INTERVAL: nothing more
    clock.t += admission.SHED_INTERVAL
    # only young ones left idle: at least SHED_MIN of the oldest go even when young
    assert p.exhausted() == ["young0", "young1", "young2"]
    assert p.counts["shed_exhausted"] == 22
    assert set(p.keys()) == {"old0"}


def test_closed_and_unknown_connections_are_forgotten_quietly() -> None:
    clock = Clock()
    p = policy(clock)
    p.opened("a")
    p.closed("a")
    p.closed("a")
    p.started("ghost")
    p.finished("ghost")
    p.finished("a")
    assert len(p) == 0 and p.idle == 0


@pytest.mark.parametrize(
    ("max_open", "nofile", "cap", "reserve"),
    [
        (4096, 1024, 768, 64),
        (4096, 256, 96, 9),
        (4096, 65536, 4096, 64),
        (100, 65536, 100, 10),
        (4096, 40, 16, 2),
    ],
)
def test_the_cap_leaves_descriptor_headroom(
    max_open: int, nofile: int, cap: int, reserve: int
) -> None:
    assert effective_cap(max_open, nofile) == (cap, reserve)


class _Sock:
    def __init__(self, fd: int) -> None:
        self.fd = fd

    def fileno(self) -> int:
        return self.fd


def test_accept_errors_reach_the_hooks_and_log_one_line_per_period(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from wsnotebook.runtime import loop

    seen: list[int] = []
    before_unhandled, before_accept = loop.unhandled_errors, loop.accept_errors
    loop.add_accept_error_hook(seen.append)
    try:
        with caplog.at_level("WARNING", logger="wsnotebook"):
            for _ in range(500):
                loop._exception_handler(
                    None,  # type: ignore[arg-type]
                    {
                        "message": loop.ACCEPT_ERROR_MESSAGE,
                        "exception": OSError(24, "Too many open files"),
                        "socket": _Sock(7),
                    },
                )
    finally:
        loop.remove_accept_error_hook(seen.append)
    assert seen == [7] * 500
    assert loop.accept_errors - before_accept == 500
    assert loop.unhandled_errors == before_unhandled  # handled, not "unhandled"
    lines = [r for r in caplog.records if "socket.accept() failed" in r.getMessage()]
    assert len(lines) <= 1  # at most one per ACCEPT_LOG_PERIOD (0 if one was logged just now)
    assert all(r.levelname == "WARNING" for r in lines)


def test_an_accept_retry_after_the_listener_closed_is_not_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from wsnotebook.runtime import loop

    class Handle:
        def _start_serving(self) -> None: ...

        def __init__(self) -> None:
            self._callback = self._start_serving

    before = loop.unhandled_errors
    with caplog.at_level("WARNING", logger="wsnotebook"):
        loop._exception_handler(
            None,  # type: ignore[arg-type]
            {
                "message": "Exception in callback BaseSelectorEventLoop._start_serving(...)",
                "exception": ValueError("Invalid file descriptor: -1"),
                "handle": Handle(),
            },
        )
    assert loop.unhandled_errors == before
    assert not caplog.records


def test_the_descriptor_limit_is_raised_toward_the_hard_limit_unless_disabled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    monkeypatch.setenv(admission.NOFILE_ENV, "0")
    assert admission.raise_nofile_limit() == (soft, soft)
    monkeypatch.delenv(admission.NOFILE_ENV)
    try:
        before, after = admission.raise_nofile_limit(target=soft)  # already there: unchanged
        assert (before, after) == (soft, soft)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
