"""Hostile input against the sans-I/O core: event decoding, client and server message parsers,
batching, resume bookkeeping and id dedupe.

Every decoder must either return a valid value or raise one of the package's documented errors
(:class:`~wsnotebook.errors.WsnError` subclasses) — never anything else.  Example counts: CI uses
the numbers below; ``WSN_FULL=1`` multiplies them by 20.
"""

from __future__ import annotations

import itertools
import os
import random

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from wsnotebook.errors import EventValidationError, LimitExceeded, ProtocolError, WsnError
from wsnotebook.events import (
    REQUIRED_FIELDS,
    decode_events,
    decode_json,
    encode_json,
    validate_event,
    validate_events,
)
from wsnotebook.frame.idset import IdSet
from wsnotebook.protocol import (
    Batcher,
    ResumeState,
    ServerMessage,
    parse_client_message,
    parse_server_message,
)

FULL = os.environ.get("WSN_FULL") == "1"
N = 20 if FULL else 1

# a strategy touching the global ``random`` module makes draws irreproducible: fail on it
pytestmark = pytest.mark.filterwarnings("error::hypothesis.errors.HypothesisDeprecationWarning")


def examples(n: int) -> settings:
    return settings(
        max_examples=n * N,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --------------------------------------------------------------------------- strategies

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
nonempty = st.text(min_size=1, max_size=30)
valid_events = st.fixed_dictionaries(
    {
        "source_app": nonempty,
        "session_id": nonempty,
        "hook_event_type": nonempty,
        "payload": st.dictionaries(st.text(max_size=8), json_values, max_size=5),
    },
    optional={
        "timestamp": st.integers(min_value=0, max_value=2**53)
        | st.floats(min_value=0, max_value=1e15, allow_nan=False),
        "summary": st.none() | st.text(max_size=40),
        "model_name": st.none() | st.text(max_size=20),
        "chat": st.none() | st.lists(json_values, max_size=3),
        "extra_field": json_values,
    },
)
#: Almost-valid events: one field replaced by a value of an arbitrary (often wrong) type.
mutated_events = st.tuples(
    valid_events,
    st.sampled_from([*REQUIRED_FIELDS, "timestamp", "summary", "chat", "id"]),
    json_values,
).map(lambda t: {**t[0], t[1]: t[2]})

hostile_texts = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300),
    json_values.map(lambda v: orjson.dumps(v)),
    st.integers(min_value=1, max_value=3000).map(lambda d: b"[" * d + b"]" * d),
    st.integers(min_value=1, max_value=3000).map(lambda d: b'{"a":' * d + b"1" + b"}" * d),
    st.integers(min_value=20, max_value=400).map(lambda d: b"9" * d),
    st.sampled_from(
        [
            b"\xff\xfe",
            b'{"source_app":"\xc3\x28"}',
            b"NaN",
            b"[Infinity]",
            b"1e999",
            b"-1e999",
            b'{"a":1}garbage',
            b"\x00",
            b"\xef\xbb\xbf{}",
            "\ud800",
            '{"x":"\udfff"}',
        ]
    ),
)

DOCUMENTED = (LimitExceeded, ProtocolError, EventValidationError)


# --------------------------------------------------------------------------- events


@examples(400)
@given(hostile_texts)
def test_decode_events_returns_valid_events_or_raises_a_documented_error(data):
    try:
        events = decode_events(data)
    except DOCUMENTED as exc:
        assert str(exc)  # a message naming the problem
        return
    assert isinstance(events, list) and events
    for ev in events:
        assert validate_event(ev) is ev


@examples(300)
@given(st.one_of(mutated_events, st.lists(mutated_events, min_size=1, max_size=4)))
def test_wrong_typed_fields_are_rejected_with_a_message_naming_the_field(obj):
    body = encode_json(obj)
    try:
        events = decode_events(body)
    except EventValidationError as exc:
        assert exc.field == "" or exc.field in str(exc)
        return
    for ev in events:
        validate_event(ev)


@examples(200)
@given(st.one_of(valid_events, st.lists(valid_events, min_size=1, max_size=5)))
def test_valid_events_survive_a_round_trip_unchanged_including_unknown_fields(obj):
    decoded = decode_events(encode_json(obj))
    expected = [obj] if isinstance(obj, dict) else obj
    assert decoded == orjson.loads(orjson.dumps(expected))


@pytest.mark.parametrize(
    ("kwargs", "body_events", "limit"),
    [
        ({"max_message_bytes": 1000}, 20, "max_message_bytes"),
        ({"max_event_bytes": 100}, 1, "max_event_bytes"),
        ({"max_batch": 3}, 4, "max_batch_events"),
    ],
)
def test_each_size_limit_raises_limit_exceeded_naming_the_limit(kwargs, body_events, limit):
    ev = {"source_app": "a", "session_id": "s", "hook_event_type": "t", "payload": {"k": "v" * 50}}
    body = encode_json(ev if body_events == 1 else [ev] * body_events)
    with pytest.raises(LimitExceeded) as info:
        decode_events(body, **kwargs)
    assert info.value.limit == limit
    assert info.value.value > info.value.bound


def test_deep_nesting_huge_numbers_and_invalid_utf8_are_protocol_errors():
    for bad in (b"[" * 5000 + b"]" * 5000, b"1e999", b'{"s":"\xff"}', "\ud800"):
        with pytest.raises(ProtocolError):
            decode_events(bad)


def test_integers_beyond_64_bits_decode_as_floats_and_never_crash_encoding():
    # orjson parses integers past 64 bits as floats (precision is lost) rather than failing;
    # re-encoding such an event works.  Python-side 2**70 cannot be encoded: a ProtocolError.
    ev = decode_events(
        b'{"source_app":"a","session_id":"s","hook_event_type":"t","payload":{"n":'
        + b"9" * 30
        + b"}}"
    )[0]
    assert isinstance(ev["payload"]["n"], float)
    encode_json(ev)
    with pytest.raises(ProtocolError):
        encode_json({"n": 2**70})


@examples(200)
@given(json_values)
def test_validate_events_on_arbitrary_json_raises_only_documented_errors(obj):
    try:
        validate_events(obj)
    except DOCUMENTED:
        pass


# --------------------------------------------------------------------------- messages

client_messages = st.one_of(
    hostile_texts,
    st.fixed_dictionaries(
        {"type": st.sampled_from(["publish", "heartbeat", "event", "", "PUBLISH"]) | json_values},
        optional={"data": json_values | valid_events | st.lists(valid_events, max_size=3)},
    ).map(orjson.dumps),
)


@examples(400)
@given(client_messages)
def test_parse_client_message_yields_publish_or_heartbeat_or_a_protocol_error(raw):
    try:
        msg = parse_client_message(raw)
    except ProtocolError as exc:
        assert str(exc)
        return
    assert msg.type in ("publish", "heartbeat")


server_messages = st.one_of(
    hostile_texts,
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["initial", "event", "batch", "gap", "heartbeat", "x"])
            | json_values
        },
        optional={
            "data": json_values
            | valid_events.map(lambda e: {**e, "id": 1})
            | st.lists(
                st.tuples(valid_events, st.integers(-5, 2**63 - 1) | json_values).map(
                    lambda t: {**t[0], "id": t[1]}
                ),
                max_size=5,
            ),
            "seq": json_values,
            "epoch": json_values,
            "reset": json_values,
        },
    ).map(orjson.dumps),
)


@examples(400)
@given(server_messages)
def test_client_decoder_facing_a_hostile_server_drops_and_counts_bad_events(raw):
    try:
        msg = parse_server_message(raw)
    except ProtocolError:
        return
    for ev in msg.events:
        assert isinstance(ev["id"], int) and not isinstance(ev["id"], bool)
    if msg.type in ("initial", "batch", "event"):
        data = orjson.loads(raw).get("data")
        n = 1 if msg.type == "event" else len(data)
        assert len(msg.events) + msg.invalid == n
    # resume bookkeeping must swallow whatever survived parsing
    state = ResumeState()
    state.on_initial(ServerMessage("initial", epoch="a"))
    state.on_events([{"id": 3}])
    if msg.type == "initial":
        state.on_initial(msg)


# --------------------------------------------------------------------------- batching / dedupe


@examples(150)
@given(
    st.integers(1, 50),
    st.floats(0, 1),
    st.lists(st.tuples(st.sampled_from(["add", "poll", "tick"]), st.floats(0, 0.5)), max_size=200),
)
def test_batcher_never_loses_reorders_or_duplicates_items(size, interval, ops):
    now = [0.0]
    b = Batcher(size, interval, clock=lambda: now[0])
    out: list[int] = []
    added = 0
    for op, dt in ops:
        if op == "add":
            got = b.add(added)
            added += 1
            if got is not None:
                assert len(got) == size
                out.extend(got)
        elif op == "poll":
            got = b.poll()
            if got is not None:
                assert 0 < len(got) <= size
                out.extend(got)
        else:
            now[0] += dt
        assert len(b) < size
        deadline = b.deadline()
        assert (deadline is None) == (len(b) == 0)
    out.extend(b.flush())
    assert out == list(range(added))


class IdSetModel(RuleBasedStateMachine):
    """IdSet behaves exactly like a Python set of ints, with O(gaps) intervals."""

    @initialize()
    def setup(self) -> None:
        self.ids = IdSet()
        self.model: set[int] = set()

    @rule(ident=st.integers(-50, 300))
    def add(self, ident: int) -> None:
        assert self.ids.add(ident) == (ident not in self.model)
        self.model.add(ident)

    @rule(first=st.integers(1, 40), length=st.integers(0, 20))
    def add_run_above_max(self, first: int, length: int) -> None:
        base = (self.ids.max() or 0) + first
        self.ids.add_run(base, base + length)
        self.model.update(range(base, base + length + 1))

    @rule(ident=st.integers(-60, 400))
    def contains(self, ident: int) -> None:
        assert (ident in self.ids) == (ident in self.model)

    @invariant()
    def same_size_and_disjoint_sorted_intervals(self) -> None:
        assert len(self.ids) == len(self.model)
        iv = self.ids.intervals
        for (lo1, hi1), (lo2, _) in itertools.pairwise(iv):
            assert lo1 <= hi1 < lo2 - 1  # disjoint and not adjacent (merged)


TestIdSetModel = IdSetModel.TestCase
TestIdSetModel.settings = settings(max_examples=60 * N, stateful_step_count=40, deadline=None)


@examples(150)
@given(st.randoms(use_true_random=False), st.integers(1, 300), st.integers(1, 6))
def test_resume_state_reports_exactly_the_events_a_client_missed(rnd: random.Random, n, drops):
    """Ids 1..n flow live with random disconnects; on each reconnect the server replays ids >
    since, or (some evicted) sends ``reset`` with the retained ones.  Subscribed while the store
    was empty, the client must end with delivered + reported gaps == 1..n, disjoint."""
    state = ResumeState()
    seen: set[int] = set()
    lost: set[int] = set()
    state.on_initial(ServerMessage("initial", seq=0, epoch="e1"))
    cuts = sorted(rnd.sample(range(1, n + 1), min(drops, n)))
    pos = 1  # next id to deliver live
    for cut in [*cuts, n + 1]:
        live = [{"id": i} for i in range(pos, cut)]
        state.on_events(live)
        seen.update(e["id"] for e in live)
        pos = max(pos, cut)
        if pos > n:
            break
        since = state.since()
        assert since is not None, "a subscribed client must always resume with ?since="
        evict_upto = rnd.choice([since, since, min(n, since + rnd.randint(1, 5))])
        first = evict_upto + 1
        replay = [{"id": i} for i in range(first, min(first + 3, n) + 1)]
        msg = ServerMessage("initial", events=replay, seq=n, epoch="e1", reset=evict_upto > since)
        for gap in state.on_initial(msg):
            assert gap.to_id != -1
            lost.update(range(gap.from_id, gap.to_id + 1))
        seen.update(e["id"] for e in replay)
        pos = replay[-1]["id"] + 1 if replay else first
    assert seen | lost == set(range(1, n + 1))
    assert not (seen & lost)


def test_a_client_subscribed_to_an_empty_store_resumes_from_zero():
    state = ResumeState()
    state.on_initial(ServerMessage("initial", seq=0, epoch="e1"))
    assert state.since() == 0


def test_a_new_epoch_reports_an_open_ended_gap_after_the_last_id():
    state = ResumeState()
    state.on_initial(ServerMessage("initial", events=[{"id": 1}, {"id": 2}], seq=2, epoch="a"))
    gaps = state.on_initial(ServerMessage("initial", events=[{"id": 1}], seq=1, epoch="b"))
    assert [(g.from_id, g.to_id, g.reason) for g in gaps] == [(3, -1, "new epoch")]
    assert state.since() == 1 and state.epoch == "b"


def test_every_error_the_decoders_raise_is_a_wsnerror_and_a_valueerror():
    for exc_type in DOCUMENTED:
        assert issubclass(exc_type, WsnError) and issubclass(exc_type, ValueError)
    with pytest.raises(WsnError):
        decode_json(b"{")
