"""Sans-I/O protocol core: messages, parsers, Batcher, RateMeter, LatencyStats, IdSet, resume."""

from __future__ import annotations

import itertools
import math
import random
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsnotebook.errors import ConfigError, ProtocolError
from wsnotebook.frame.idset import IdSet
from wsnotebook.protocol import (
    CLOSE_POLICY,
    CLOSE_TRY_AGAIN,
    ENVELOPE_BYTES,
    MAX_ERROR_CHARS,
    RETRYABLE_CLOSE_CODES,
    Batcher,
    ClientMessage,
    Gap,
    RateLimiter,
    ResumeState,
    ServerMessage,
    batch_message,
    encode_event,
    error_message,
    event_message,
    event_room,
    fit_newest,
    fit_oldest,
    gap_message,
    heartbeat_message,
    initial_message,
    parse_client_message,
    parse_server_message,
)
from wsnotebook.stats import LatencyStats, RateMeter


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def ev(i: int | None, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "source_app": "app",
        "session_id": "s",
        "hook_event_type": "Stop",
        "payload": {"i": i},
    }
    if i is not None:
        event["id"] = i
    event.update(fields)
    return event


# --------------------------------------------------------------------------- encoders


def test_event_and_batch_messages_wrap_pre_encoded_events() -> None:
    a, b = encode_event(ev(1)), encode_event(ev(2, extra="kept"))
    assert orjson.loads(event_message(a)) == {"type": "event", "data": ev(1)}
    assert orjson.loads(batch_message([a, b])) == {
        "type": "batch",
        "data": [ev(1), ev(2, extra="kept")],
    }
    assert orjson.loads(batch_message([])) == {"type": "batch", "data": []}


def test_initial_message_is_seed_shaped_unless_extended() -> None:
    encoded = [encode_event(ev(1)), encode_event(ev(2))]
    assert orjson.loads(initial_message(encoded, seq=2, epoch="e")) == {
        "type": "initial",
        "data": [ev(1), ev(2)],
    }
    assert orjson.loads(initial_message(encoded, seq=2, epoch="e", reset=True, extended=True)) == {
        "type": "initial",
        "data": [ev(1), ev(2)],
        "seq": 2,
        "epoch": "e",
        "reset": True,
    }
    empty = orjson.loads(initial_message([], extended=True))
    assert empty == {"type": "initial", "data": [], "seq": 0, "epoch": None, "reset": False}


def test_control_messages() -> None:
    assert orjson.loads(heartbeat_message(1234.9)) == {"type": "heartbeat", "timestamp": 1234}
    assert orjson.loads(gap_message(3, 9, "evicted", epoch="e")) == {
        "type": "gap",
        "data": {"from_id": 3, "to_id": 9, "reason": "evicted", "epoch": "e"},
    }
    assert orjson.loads(error_message("bad", "invalid_event")) == {
        "type": "error",
        "data": {"message": "bad", "code": "invalid_event"},
    }


def test_close_codes() -> None:
    assert CLOSE_TRY_AGAIN in RETRYABLE_CLOSE_CODES
    assert CLOSE_POLICY not in RETRYABLE_CLOSE_CODES  # auth/origin problems are not retried
    assert 1006 in RETRYABLE_CLOSE_CODES


# --------------------------------------------------------------------------- client messages


def test_parse_client_publish_and_heartbeat() -> None:
    assert parse_client_message(b'{"type":"publish","data":[1]}') == ClientMessage("publish", [1])
    assert parse_client_message('{"type":"heartbeat"}') == ClientMessage("heartbeat", None)
    assert parse_client_message(b'{"type":"publish","data":null}').data is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"[1]", "message: expected object, got array"),
        (b'"x"', "message: expected object, got string"),
        (b"{}", "type: expected string, got null"),
        (b'{"type":1}', "type: expected string, got number"),
        (
            b'{"type":"subscribe"}',
            "type: unknown message type 'subscribe' (expected publish or heartbeat)",
        ),
        (b'{"type":"event"}', "type: unknown message type 'event'"),
        (b'{"type":"publish"}', "data: missing required field"),
        (b"{", "invalid JSON"),
    ],
)
def test_parse_client_message_errors(raw: bytes, message: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_client_message(raw)
    assert str(info.value).startswith(message)


# --------------------------------------------------------------------------- server messages


def test_parse_server_initial_with_extensions() -> None:
    raw = b'{"type":"initial","data":[%s],"seq":7,"epoch":"e1","reset":true}' % encode_event(ev(7))
    msg = parse_server_message(raw)
    assert (msg.type, msg.events, msg.seq, msg.epoch, msg.reset, msg.invalid) == (
        "initial",
        [ev(7)],
        7,
        "e1",
        True,
        0,
    )


def test_parse_server_initial_from_seed_server_has_no_resume_info() -> None:
    msg = parse_server_message(b'{"type":"initial","data":[]}')
    assert (msg.events, msg.seq, msg.epoch, msg.reset) == ([], None, None, False)
    odd = parse_server_message(b'{"type":"initial","data":[],"seq":true,"epoch":5,"reset":"yes"}')
    assert (odd.seq, odd.epoch, odd.reset) == (None, None, False)


def test_parse_server_event_and_batch_drop_and_count_invalid_events() -> None:
    msg = parse_server_message(orjson.dumps({"type": "event", "data": ev(3)}))
    assert msg.events == [ev(3)] and msg.invalid == 0
    bad = [ev(None), ev(4, payload="x"), "junk", ev(5)]  # no id / bad payload / not an object
    msg = parse_server_message(orjson.dumps({"type": "batch", "data": bad}))
    assert msg.events == [ev(5)] and msg.invalid == 3
    msg = parse_server_message(orjson.dumps({"type": "event", "data": ev(None)}))
    assert msg.events == [] and msg.invalid == 1


def test_parse_server_unknown_and_control_types_carry_data() -> None:
    msg = parse_server_message(b'{"type":"heartbeat","timestamp":5}')
    assert msg == ServerMessage("heartbeat")
    gap = parse_server_message(gap_message(1, 2, "evicted"))
    assert gap.type == "gap" and gap.data["from_id"] == 1 and gap.events == []
    assert parse_server_message(b'{"type":"future","data":{"x":1}}').data == {"x": 1}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"[]", "message: expected object, got array"),
        (b'{"data":[]}', "type: expected string, got null"),
        (b'{"type":"batch","data":{}}', "data: expected array, got object"),
        (b'{"type":"initial"}', "data: expected array, got null"),
        (b"nope", "invalid JSON"),
    ],
)
def test_parse_server_message_errors(raw: bytes, message: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_server_message(raw)
    assert str(info.value).startswith(message)


# --------------------------------------------------------------------------- Batcher


@pytest.mark.parametrize(("size", "interval"), [(0, 0.05), (100_001, 0.05), (1, -0.1), (1, 61)])
def test_batcher_bounds(size: int, interval: float) -> None:
    with pytest.raises(ConfigError):
        Batcher(size, interval, clock=FakeClock())


def test_batcher_flushes_on_size() -> None:
    b = Batcher(3, 10.0, clock=FakeClock())
    assert b.add(1) is None and b.add(2) is None
    assert len(b) == 2
    assert b.add(3) == [1, 2, 3]
    assert len(b) == 0 and b.deadline() is None


def test_batcher_flushes_on_age_of_oldest_item() -> None:
    clock = FakeClock(100.0)
    b = Batcher(100, 0.5, clock=clock)
    assert b.poll() is None and b.deadline() is None
    b.add("a")
    assert b.deadline() == 100.5
    clock.now = 100.4
    b.add("b")  # a later item does not move the deadline
    assert b.deadline() == 100.5 and b.poll() is None
    clock.now = 100.5
    assert b.poll() == ["a", "b"]
    assert b.poll() is None
    clock.now = 200.0
    b.add("c")
    assert b.deadline() == 200.5


def test_batcher_zero_interval_flushes_on_every_poll_and_flush_empties() -> None:
    b = Batcher(10, 0, clock=FakeClock())
    b.add(1)
    assert b.poll() == [1]
    b.add(2)
    assert b.flush() == [2] and b.flush() == []


def test_batcher_with_max_bytes_flushes_once_the_items_add_up_to_it() -> None:
    b = Batcher(1000, 10.0, clock=FakeClock(), max_bytes=10)
    assert b.add(b"abcd") is None and b.add(b"efgh") is None
    assert b.add(b"ij") == [b"abcd", b"efgh", b"ij"]  # 10 bytes reached
    assert b.add(b"x" * 50) == [b"x" * 50]  # one big item is a batch of its own
    assert b.add(b"abc") is None and b.flush() == [b"abc"]
    assert b.add(b"abcdefgh") is None  # the count restarted with the flush
    with pytest.raises(ConfigError):
        Batcher(10, clock=FakeClock(), max_bytes=0)


# --------------------------------------------------------------------------- message size fit


def test_fit_newest_keeps_the_latest_events_within_the_message_limit() -> None:
    limit = 228
    assert event_room(limit) == 100  # 128 bytes kept for the envelope at small limits
    assert event_room(1 << 20) == (1 << 20) - ENVELOPE_BYTES
    assert fit_newest([], limit) == 0
    assert fit_newest([b"x" * 10] * 5, limit) == 5  # all fit
    assert fit_newest([b"x" * 30] * 5, limit) == 3  # 3 x (30 + 1 separator) <= 100 < 4 x 31
    assert fit_newest([b"x" * 90, b"y" * 10, b"z" * 50], limit) == 2  # from the newest: 51+11
    assert fit_newest([b"x" * 500], limit) == 1  # never none: the event was bounded at ingest


def test_fit_oldest_keeps_the_first_events_within_the_message_limit() -> None:
    limit = 228
    assert fit_oldest([], limit) == 0
    assert fit_oldest([b"x" * 30] * 5, limit) == 3
    assert fit_oldest([b"x" * 90, b"y" * 10, b"z" * 50], limit) == 1  # 91 + 11 > 100
    assert fit_oldest([b"x" * 500, b"y"], limit) == 1


@given(
    st.lists(st.integers(1, 300), max_size=40), st.integers(ENVELOPE_BYTES, ENVELOPE_BYTES + 3000)
)
@settings(max_examples=200, deadline=None)
def test_fitted_messages_never_exceed_the_limit_unless_one_event_alone_does(
    sizes: list[int], limit: int
) -> None:
    events = [b"x" * n for n in sizes]
    newest, oldest = fit_newest(events, limit), fit_oldest(events, limit)
    for k, kept, rest in (
        (newest, events[len(events) - newest :], events[: len(events) - newest][::-1]),
        (oldest, events[:oldest], events[oldest:]),
    ):
        assert (k == 0) == (not events)
        if k > 1:
            assert len(batch_message(kept)) <= limit
        if rest and k >= 1:  # the next event would not have fitted
            assert sum(map(len, kept)) + len(rest[0]) + k + 1 > limit - ENVELOPE_BYTES


# --------------------------------------------------------------------------- RateMeter


def test_rate_meter_counts_over_a_sliding_window() -> None:
    clock = FakeClock(1000.0)
    meter = RateMeter(window=10, clock=clock)
    assert meter.rate() == 0
    meter.add(5)
    assert meter.rate() == 5.0  # covered time is at least one second
    for _ in range(4):
        clock.now += 1
        meter.add(10)
    clock.now += 0.5  # 4.5 s since start
    assert meter.rate() == pytest.approx(45 / 4.5)
    clock.now += 20  # everything has left the window
    assert meter.rate() == 0 and meter.total == 45
    meter.add()
    assert meter.rate() == pytest.approx(0.1)  # window fully covered: count / 10 s


def test_rate_meter_memory_is_bounded_by_window() -> None:
    clock = FakeClock(0.0)
    meter = RateMeter(window=3, clock=clock)
    for _ in range(100):
        clock.now += 1
        meter.add()
    assert len(meter._buckets) <= 3


def test_rate_meter_window_bound() -> None:
    with pytest.raises(ConfigError):
        RateMeter(window=0.5, clock=FakeClock())


# --------------------------------------------------------------------------- LatencyStats


def test_latency_stats_nearest_rank_percentiles() -> None:
    stats = LatencyStats()
    assert stats.percentile(0.5) is None
    assert stats.summary() == {"p50": None, "p90": None, "p99": None}
    stats.extend([float(v) for v in range(100, 0, -1)])
    stats.add(0.0)
    assert stats.count == 101
    assert stats.percentile(0.0) == 0.0 and stats.percentile(1.0) == 100.0
    assert stats.percentile(0.5) == 50.0
    assert stats.summary((0.5, 0.999)) == {"p50": 50.0, "p99.9": 100.0}


def test_latency_stats_partial_sort_gives_exactly_the_sorted_nearest_rank() -> None:
    rng = random.Random(7)
    for size in (1, 2, 3, 10, 999, 10_000):
        stats = LatencyStats(size=size)
        values = [rng.choice((rng.random() * 50, float(rng.randint(0, 5)))) for _ in range(size)]
        stats.extend(values)
        ordered = sorted(values)
        qs = (0.0, 0.001, 0.5, 0.5, 0.9, 0.99, 0.999, 1.0)
        expected = [ordered[min(size - 1, max(0, math.ceil(q * size) - 1))] for q in qs]
        assert [stats.percentile(q) for q in qs] == expected
        assert list(stats.summary((0.5, 0.9, 0.99, 0.999)).values()) == [
            expected[2],
            expected[4],
            expected[5],
            expected[6],
        ]
        assert all(type(v) is float for v in stats.summary().values())


def test_latency_stats_keep_only_the_last_samples() -> None:
    stats = LatencyStats(size=3)
    stats.extend([100.0, 1.0, 2.0, 3.0])
    assert stats.percentile(1.0) == 3.0 and stats.count == 4
    with pytest.raises(ConfigError):
        LatencyStats(size=0)


# --------------------------------------------------------------------------- IdSet


def test_idset_merges_intervals() -> None:
    ids = IdSet()
    assert ids.max() is None and len(ids) == 0 and 1 not in ids
    for i in (1, 2, 3, 7, 5):
        assert ids.add(i)
    assert ids.intervals == [(1, 3), (5, 5), (7, 7)]
    assert not ids.add(2) and not ids.add(7)
    assert ids.add(6)  # joins both neighbours
    assert ids.intervals == [(1, 3), (5, 7)]
    assert ids.add(0) and ids.add(4)
    assert ids.intervals == [(0, 7)] and len(ids) == 8 and ids.max() == 7
    ids.add_run(8, 100)
    ids.add_run(200, 300)
    assert ids.intervals == [(0, 100), (200, 300)] and 150 not in ids and 250 in ids


def test_idset_keeps_at_most_max_intervals_by_filling_the_lowest_holes() -> None:
    ids = IdSet(max_intervals=3)
    for i in (2, 4, 6, 8):  # every other id: one interval each
        assert ids.add(i)
    assert ids.intervals == [(2, 4), (6, 6), (8, 8)] and ids.holes_filled == 1
    assert 3 in ids  # the filled hole now counts as seen (a very late 3 is a duplicate)
    assert ids.add(20) and ids.intervals == [(2, 6), (8, 8), (20, 20)]
    assert ids.add(10) and ids.intervals == [(2, 8), (10, 10), (20, 20)]  # inserted, then bounded
    ids.add_run(30, 40)
    assert len(ids.intervals) == 3 and ids.holes_filled == 4 and ids.max() == 40
    for ident in (2, 8, 10, 20, 35):
        assert not ids.add(ident)
    with pytest.raises(ConfigError):
        IdSet(max_intervals=0)


def test_sparse_ids_keep_the_dedupe_memory_bounded() -> None:
    from wsnotebook.frame.idset import MAX_ID_INTERVALS

    ids = IdSet()
    for i in range(0, 2 * (MAX_ID_INTERVALS + 500), 2):
        ids.add(i)
    assert len(ids.intervals) == MAX_ID_INTERVALS and ids.holes_filled == 500


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=-50, max_value=50), max_size=80))
def test_idset_behaves_like_a_python_set(values: list[int]) -> None:
    ids = IdSet()
    model: set[int] = set()
    for v in values:
        assert ids.add(v) == (v not in model)
        model.add(v)
    assert len(ids) == len(model)
    assert ids.max() == (max(model) if model else None)
    for probe in range(-52, 53):
        assert (probe in ids) == (probe in model)
    spans = ids.intervals
    assert all(lo <= hi for lo, hi in spans)
    assert all(a[1] + 1 < b[0] for a, b in itertools.pairwise(spans))  # disjoint, not touching


# --------------------------------------------------------------------------- ResumeState


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


@pytest.mark.parametrize("limit", [1024, 2048, 4096, 8192])
def test_small_message_limits_still_carry_the_events_that_fit(limit: int) -> None:
    """A fixed 4 KiB envelope reserve left room for one event whatever the limit <= 4 KiB."""
    events = [orjson.dumps({"id": i, "pad": "x" * 30}) for i in range(300)]  # ~50 bytes each
    for fit in (fit_newest, fit_oldest):
        k = fit(events, limit)
        picked = events[-k:] if fit is fit_newest else events[:k]
        message = initial_message(picked, seq=300, epoch="e" * 16, reset=False, extended=True)
        assert len(message) <= limit
        assert k * 52 >= 0.8 * limit  # all but the envelope's share of the limit is used


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda v: Batcher(v, clock=FakeClock()), "batch size"),
        (lambda v: Batcher(10, v, clock=FakeClock()), "batch interval"),
        (lambda v: Batcher(10, clock=FakeClock(), max_bytes=v), "batch max_bytes"),
        (lambda v: RateMeter(window=v, clock=FakeClock()), "rate window"),
        (lambda v: LatencyStats(v), "latency sample size"),
        (lambda v: IdSet(v), "max_intervals"),
        (lambda v: RateLimiter(v, 10, clock=FakeClock()), "rate"),
        (lambda v: RateLimiter(1.0, v, clock=FakeClock()), "burst"),
        (lambda v: RateLimiter(1.0, 10, max_keys=v, clock=FakeClock()), "max_keys"),
    ],
)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), True, 2.5, "3", 0])
def test_sans_io_bounds_refuse_nan_inf_bools_and_wrong_types(
    build: Any, name: str, bad: Any
) -> None:
    """NaN passed every '< 1' check (IdSet(nan) kept no bound, RateMeter(window=nan) every
    bucket); 2.5 as a size was a TypeError deep inside, not a ConfigError naming it."""
    if name in ("batch interval", "rate") and (bad == 0 or bad == 2.5):
        build(bad)  # 0 and 2.5 are fine there
        return
    if name == "rate window" and bad == 2.5:
        build(bad)
        return
    with pytest.raises(ConfigError, match=name):
        build(bad)


def test_an_error_reply_never_quotes_more_than_max_error_chars() -> None:
    """Review: an error quoting a 2 KB unknown type made a 6 KB reply, over a 4 KiB limit."""
    reply = orjson.loads(error_message("unknown type: " + "\\u0000" * 2000, "unknown_type"))
    assert len(reply["data"]["message"]) == MAX_ERROR_CHARS
    assert reply["data"]["message"].endswith("…")
    assert orjson.loads(error_message("short", "x"))["data"]["message"] == "short"


@pytest.mark.parametrize("q", [-0.1, 1.5, float("nan"), True])
def test_latency_percentiles_outside_0_1_are_refused_not_clamped(q: Any) -> None:
    stats = LatencyStats(10)
    stats.extend([1.0, 2.0, 3.0])
    with pytest.raises(ConfigError, match="percentile q"):
        stats.percentile(q)
    with pytest.raises(ConfigError, match="percentile q"):
        stats.summary((0.5, q))
    assert stats.percentile(1) == 3.0 and stats.percentile(0) == 1.0
