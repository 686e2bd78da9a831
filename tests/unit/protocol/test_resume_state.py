"""ResumeState: the resume point and the gaps it records (wsnotebook.protocol.reconnect)."""

from __future__ import annotations

from _protocol_helpers import ev

from wsnotebook.protocol import (
    Gap,
    ResumeState,
    ServerMessage,
)


def initial(
    events: list[int], *, seq: int | None = None, epoch: str | None = None, reset: bool = False
) -> ServerMessage:
    return ServerMessage("initial", [ev(i) for i in events], seq=seq, epoch=epoch, reset=reset)


def test_resume_tracks_last_id() -> None:
    state = ResumeState()
    assert state.since() is None
    assert state.on_initial(initial([1, 2, 3], seq=3, epoch="e")) == []
    assert state.since() == 3 and state.epoch == "e"
    state.on_events([ev(5), ev(4)])
    assert state.since() == 5
    state.on_events([ev(2)])  # older ids never move it back
    state.on_events([])
    assert state.since() == 5


def test_resume_on_empty_store_starts_at_zero() -> None:
    state = ResumeState()
    state.on_initial(initial([], seq=0, epoch="e"))
    assert state.since() == 0  # reconnect asks ?since=0: nothing published meanwhile is lost


def test_new_epoch_records_an_open_ended_gap_and_restarts_tracking() -> None:
    state = ResumeState()
    state.on_initial(initial([1, 2], seq=2, epoch="old"))
    gaps = state.on_initial(initial([1], seq=1, epoch="new"))
    assert gaps == [Gap(3, -1, "new epoch")]
    assert state.epoch == "new" and state.since() == 1


def test_reset_reports_the_evicted_range() -> None:
    state = ResumeState()
    state.on_initial(initial([1, 2, 3], seq=3, epoch="e"))
    gaps = state.on_initial(initial([10, 11], seq=11, epoch="e", reset=True))
    assert gaps == [Gap(4, 9, "evicted")] and state.since() == 11
    # everything after our id was evicted and nothing is retained: the gap ends at seq
    assert state.on_initial(initial([], seq=20, epoch="e", reset=True)) == [Gap(12, 20, "evicted")]


def test_reset_without_loss_reports_nothing() -> None:
    state = ResumeState()
    state.on_initial(initial([1, 2, 3], seq=3, epoch="e"))
    assert state.on_initial(initial([4, 5], seq=5, epoch="e", reset=True)) == []
    assert state.on_initial(initial([6], seq=6, epoch="e")) == []


def test_seed_server_without_epoch_never_reports_gaps() -> None:
    state = ResumeState()
    state.on_initial(initial([1, 2]))
    assert state.on_initial(initial([50])) == [] and state.since() == 50


def test_gap_message_advances_resume_point() -> None:
    state = ResumeState()
    state.on_gap(4, 9)
    assert state.since() == 9
    state.on_gap(1, 2)
    assert state.since() == 9
