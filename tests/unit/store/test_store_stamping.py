"""Stamping: ids, timestamps, server fields, size limits and snapshots, as every store applies
them."""

from __future__ import annotations

import asyncio
import copy
import decimal
import enum
from typing import Any

import orjson
import pytest
from _store_helpers import ev, ids
from hypothesis import given, settings
from hypothesis import strategies as st

from wsnotebook.errors import EventValidationError, LimitExceeded, ProtocolError
from wsnotebook.protocol import encode_event
from wsnotebook.store import MemoryStore, memory, snapshot_events, stamp, stamp_all, stamping
from wsnotebook.store.stamping import stamp_one


def test_stamp_sets_id_fills_timestamp_and_keeps_unknown_fields() -> None:
    original = ev(extra={"a": 1}, id=99)
    s = stamp(original, 7, 1000.5)
    assert s.id == 7 and s.event["id"] == 7
    assert s.event["timestamp"] == 1000 and s.event["server_received"] == 1000.5
    assert s.event["extra"] == {"a": 1}
    assert orjson.loads(s.encoded) == s.event
    assert original["id"] == 99  # the input is not mutated
    assert stamp(ev(timestamp=5), 1, 2.0).event["timestamp"] == 5


def test_stamp_all_refuses_an_unencodable_event_naming_it_and_its_field() -> None:
    with pytest.raises(EventValidationError) as info:
        stamp_all([ev(), ev(payload={"d": decimal.Decimal(1)})], 1, 1.0)
    assert str(info.value).startswith("events[1].payload: cannot encode as JSON: ")
    assert info.value.field == "payload"
    with pytest.raises(EventValidationError, match=r"^extra: cannot encode as JSON"):
        stamp_all([ev(extra={1, 2})], 1, 1.0)  # one event: no index


def test_every_ingest_path_holds_events_to_max_bytes_without_the_server_fields() -> None:
    """The limit is on an event's compact JSON without ``id``/``server_received`` (and a
    filled timestamp): exactly ``max_bytes`` passes, one more byte fails, whether the event is
    stamped from its dict (POST, ``publish``) or from a snapshot (``publish_nowait``)."""
    for extra in ({}, {"id": "client-" * 40}, {"timestamp": None}, {"timestamp": 5}):
        for pad in range(880, 1000):
            event = ev(payload={"b": "x" * pad}, **extra)
            unstamped = {k: v for k, v in event.items() if k not in ("id", "server_received")}
            if unstamped.get("timestamp", 0) is None:
                del unstamped["timestamp"]
            size = len(orjson.dumps(unstamped))
            for limit in (size, size - 1):
                fits = limit >= size
                for path in ("dict", "snapshot"):
                    try:
                        if path == "dict":
                            stamp_all([event], 1, 1795736432259.8413, max_bytes=limit)
                        else:
                            stamp_all(snapshot_events([event], limit), 1, 1795736432259.8413)
                    except LimitExceeded as exc:
                        assert not fits, (path, extra, size, limit)
                        assert str(exc) == (
                            f"event: {size} bytes as JSON exceeds the limit of {limit}"
                        )
                        assert (exc.limit, exc.value, exc.bound) == ("max_event_bytes", size, limit)
                    else:
                        assert fits, (path, extra, size, limit)
    # in a batch: the index of the biggest event over the limit, as snapshot_events names it
    small, big = ev(payload={"b": "x" * 100}), ev(payload={"b": "x" * 900})
    size = len(orjson.dumps(big))
    message = rf"^events\[1\]: {size} bytes as JSON exceeds the limit of {size - 1}$"
    with pytest.raises(LimitExceeded, match=message):
        stamp_all([small, big, small], 1, 1.0, max_bytes=size - 1)
    with pytest.raises(LimitExceeded, match=message):
        snapshot_events([small, big, small], size - 1)
    assert stamp_all([small, big], 1, 1.0, max_bytes=size)  # stamped, both are over `size`


def test_a_refused_append_uses_no_id() -> None:
    async def main() -> None:
        store = MemoryStore(retain=5)
        store.max_event_bytes = 1024
        with pytest.raises(LimitExceeded):
            await store.append([ev(), ev(payload={"b": "x" * 2000})])
        with pytest.raises(EventValidationError):
            await store.append([ev(payload={"d": decimal.Decimal(1)})])
        assert ids(await store.append([ev()])) == [1]

    asyncio.run(main())


def test_stored_facets_of_str_subclasses_are_their_text() -> None:
    class App(str, enum.Enum):
        WEB = "web"

    s = stamp(ev(source_app=App.WEB), 1, 1.0)
    assert type(s.source_app) is str and s.source_app == "web"
    assert s.event["source_app"] == "web"


def test_snapshots_store_what_was_handed_over_and_are_checked_like_stamp_all() -> None:
    original = ev(payload={"tool": {"n": 1}})
    items = snapshot_events([original])
    original["payload"]["tool"]["n"] = 2  # the caller changes its dict afterwards
    (stored,) = stamp_all(items, 7, 1000.5)
    assert stored.event == {**ev(payload={"tool": {"n": 1}}), "id": 7, "timestamp": 1000,
                            "server_received": 1000.5}  # fmt: skip
    with pytest.raises(EventValidationError, match=r"^events\[0\]\.payload: "):
        snapshot_events([ev(payload={"d": decimal.Decimal(1)}), ev()])
    with pytest.raises(LimitExceeded, match=r"^event: \d+ bytes as JSON exceeds the limit of 100"):
        snapshot_events([ev(payload={"b": "x" * 200})], 100)


@pytest.mark.parametrize(
    "event",
    [
        ev(),
        ev(timestamp=5),
        ev(timestamp=5.5, extra=[1, {"a": None}]),
        ev(timestamp=None),
        ev(id=99, server_received=1.0, timestamp=3),
        ev(id="not even an int", summary="s", chat=[]),
        ev(source_app="é✓", payload={"k": '\u2028 "quoted"'}),
    ],
)
def test_a_snapshot_is_stored_with_exactly_the_fields_and_values_of_the_dict_path(
    event: dict[str, Any],
) -> None:
    (spliced,) = stamp_all(snapshot_events([event]), 3, 1795736432259.8413)
    (direct,) = stamp_all([event], 3, 1795736432259.8413)
    assert spliced.event == direct.event  # key order may differ: a replaced id moves last
    assert orjson.loads(spliced.encoded) == orjson.loads(direct.encoded)
    assert (spliced.id, spliced.source_app, spliced.session_id, spliced.hook_event_type) == (
        direct.id, direct.source_app, direct.session_id, direct.hook_event_type,
    )  # fmt: skip


# ---------------------------------------------------------------- stamp_one (the hot path)

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from([decimal.Decimal(1), "\ud800", {1: "x"}]),  # unencodable, non-str key
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)


class _Facet(str):
    """A str subclass facet value (intern refuses it: the careful path)."""


_one_event = st.builds(
    lambda payload, extra, ts, facet: {
        "source_app": facet("app"),
        "session_id": "s",
        "hook_event_type": "T",
        "payload": payload,
        **extra,
        **ts,
    },
    st.dictionaries(st.text(max_size=6), _json, max_size=4),
    st.dictionaries(
        st.sampled_from(["id", "server_received", "chat", "summary", "x", "é\u2028"]),
        _json,
        max_size=3,
    ),
    st.sampled_from([{}, {"timestamp": None}, {"timestamp": 5}, {"timestamp": 1.5e12}]),
    st.sampled_from([str, _Facet]),
)


def _outcome(fn: Any) -> tuple[str, Any]:
    try:
        s = fn()
    except (EventValidationError, LimitExceeded) as exc:
        return type(exc).__name__, str(exc)
    return "ok", (s.id, s.encoded, s.source_app, s.session_id, s.hook_event_type)


@settings(max_examples=400, deadline=None)
@given(
    event=_one_event,
    ident=st.integers(1, 2**40),
    received=st.floats(0, 4e12),
    slack=st.none() | st.integers(-3, 3),
)
def test_stamp_one_writes_the_bytes_and_raises_the_errors_of_stamp_all(
    event: dict[str, Any], ident: int, received: float, slack: int | None
) -> None:
    """The per-event splice stores exactly what the dict path stores (the same bytes, facets,
    id), and refuses what it refuses with the same message, at and around ``max_bytes``."""
    max_bytes = None
    if slack is not None:
        try:
            max_bytes = max(1, len(orjson.dumps(event)) + slack)
        except TypeError:
            max_bytes = 100
    snapshot = copy.deepcopy(event)
    one = _outcome(lambda: stamp_one(event, ident, received, max_bytes))
    assert one == _outcome(lambda: stamp_all([event], ident, received, max_bytes)[0])
    assert event == snapshot  # the caller's dict is not modified
    if one[0] == "ok":
        assert type(one[1][2]) is str  # facets interned as exact str


def _dict_path(
    events: list[dict[str, Any]], first: int, received: float, max_bytes: int | None
) -> list[Any]:
    """The reference ``stamp_all`` for dicts: a :func:`stamp` (dict copy, encode) per event,
    then the size rule on the JSON without the server's fields (what stamp_all did before its
    per-event splice)."""
    try:
        stored = [stamp(e, first + i, received) for i, e in enumerate(events)]
    except ProtocolError:
        raise stamping._unencodable(events) from None
    if max_bytes is not None:
        sizes = [
            len(encode_event(stamping._without_server_fields(e)))
            if len(s.encoded) > max_bytes
            else 0
            for e, s in zip(events, stored)
        ]
        biggest = max(sizes)
        if biggest > max_bytes:
            raise stamping._too_large(sizes.index(biggest), len(events), biggest, max_bytes)
    return stored


def _batch_outcome(fn: Any) -> tuple[str, Any]:
    try:
        stored = fn()
    except (EventValidationError, LimitExceeded) as exc:
        return type(exc).__name__, str(exc)
    return "ok", [(s.id, s.encoded, s.source_app, s.session_id, s.hook_event_type) for s in stored]


@settings(max_examples=300, deadline=None)
@given(
    events=st.lists(_one_event, min_size=1, max_size=4),
    first=st.integers(1, 2**40),
    received=st.floats(0, 4e12),
    slack=st.none() | st.integers(-3, 3),
)
def test_stamp_all_splices_the_bytes_and_raises_the_errors_of_the_dict_path(
    events: list[dict[str, Any]], first: int, received: float, slack: int | None
) -> None:
    """A batch of dicts is stamped by splicing the server's fields into each event's JSON:
    the same bytes, facets, ids and errors as a dict copy encoded per event."""
    max_bytes = None
    if slack is not None:
        try:
            max_bytes = max(1, max(len(orjson.dumps(e)) for e in events) + slack)
        except TypeError:
            max_bytes = 100
    snapshot = copy.deepcopy(events)
    got = _batch_outcome(lambda: stamp_all(events, first, received, max_bytes))
    assert got == _batch_outcome(lambda: _dict_path(events, first, received, max_bytes))
    assert events == snapshot  # the caller's dicts are not modified


def test_stamp_all_of_demo_events_is_the_dict_path() -> None:
    from wsnotebook.demo import EventGenerator

    events = EventGenerator(seed=5, large_output_prob=0.5).take(300)
    events += EventGenerator(seed=6, clock=None).take(50)  # no timestamp: the server fills it
    got = _batch_outcome(lambda: stamp_all(events, 9, 1795736432259.8413, 1 << 20))
    assert got[0] == "ok"
    assert got == _batch_outcome(lambda: _dict_path(events, 9, 1795736432259.8413, 1 << 20))


def test_memory_store_append_one_is_append_now_of_one_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ids, retained bytes, byte and count evictions and facets as ``append_now``'s."""
    monkeypatch.setattr(memory, "now_ms", lambda: 1795736432259.8413)

    def plain(store: MemoryStore) -> list[bytes]:
        return [s.encoded for s in store._ring.items]

    a, b = MemoryStore(retain=3, retain_bytes=1024), MemoryStore(retain=3, retain_bytes=1024)
    for i in range(12):
        event = ev(payload={"pad": "x" * (i % 5 * 250)}, session_id=f"s{i % 4}", timestamp=i)
        assert a.append_one(event).id == b.append_now([event])[0].id
        assert plain(a) == plain(b)
        assert a._ring.bytes == b._ring.bytes
    assert {**a.stats(), "epoch": 0} == {**b.stats(), "epoch": 0}
    assert asyncio.run(a.filter_options()) == asyncio.run(b.filter_options())
