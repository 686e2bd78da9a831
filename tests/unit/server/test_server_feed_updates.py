"""``FedBroadcaster`` and updates (human-in-the-loop answers on a Redis store): an update is a
new stream entry whose JSON keeps an older event's ``id``; the broadcaster orders and dedupes by
the stream position (``StoredEvent.id``), never by the JSON's id, so the update goes out once."""

from __future__ import annotations

from typing import Any

import orjson

from wsnotebook.server.feed import FedBroadcaster, make_broadcaster
from wsnotebook.server.metrics import ServerCounters
from wsnotebook.store import RedisStore, StoredEvent


class FakeConn:
    extended = True

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.controls: list[dict[str, Any]] = []

    def push_event(self, encoded: bytes, emsg: bytes, frame: bytes | None = None) -> None:
        self.events.append(orjson.loads(encoded))

    def push_auto(self, encoded: bytes) -> bool:
        return False  # record through push_event

    def push_many(self, run: Any) -> None:
        self.events += [orjson.loads(e) for e in run.encoded]

    def send_control(self, msg: bytes) -> None:
        self.controls.append(orjson.loads(msg))


def entry(seq: int, ident: int | None = None) -> StoredEvent:
    if ident is None:
        return StoredEvent(seq, b'{"id":%d}' % seq, "", "", "")
    return StoredEvent(seq, b'{"id":%d,"update_seq":%d}' % (ident, seq), "", "", "")


def test_an_update_of_an_older_event_is_broadcast_once_in_stream_order() -> None:
    store = RedisStore("redis://h/0")
    fed = make_broadcaster(store, ServerCounters())
    assert isinstance(fed, FedBroadcaster)
    conn = FakeConn()
    fed.clients.add(conn)  # type: ignore[arg-type]
    fed.deliver([entry(1), entry(2), entry(3)])
    fed.deliver([entry(4, ident=1)])  # event 1 answered: position 4, id 1
    assert fed.broadcast_last == 4
    fed.deliver([entry(3), entry(4, ident=1), entry(5)])  # a re-read: only 5 is new
    fed.deliver([entry(6, ident=2), entry(7)])
    assert [(e["id"], e.get("update_seq")) for e in conn.events] == [
        (1, None),
        (2, None),
        (3, None),
        (1, 4),
        (5, None),
        (2, 6),
        (7, None),
    ]
    assert conn.controls == [] and fed.gaps_sent == 0  # an old id is no gap
    fed.deliver([entry(9, ident=1)])  # position 8 was evicted unread: a gap of positions
    assert conn.controls[0]["data"]["from_id"] == 8 and conn.controls[0]["data"]["to_id"] == 8
    assert conn.events[-1] == {"id": 1, "update_seq": 9}
