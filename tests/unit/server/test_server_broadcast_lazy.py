"""A single-event broadcast builds the ``event`` message and its frame only for clients that
need them (``push_auto`` False), once for all of them."""

from __future__ import annotations

from typing import Any

import pytest

from wsnotebook.protocol import event_message
from wsnotebook.server import broadcast as bmod
from wsnotebook.server.broadcast import Broadcaster
from wsnotebook.server.metrics import ServerCounters
from wsnotebook.server.wire import text_frame
from wsnotebook.store import StoredEvent


def _counting(built: list[bytes]) -> Any:
    def build(enc: bytes) -> bytes:
        built.append(enc)
        return event_message(enc)

    return build


class Client:
    def __init__(self, auto: bool) -> None:
        self.auto = auto
        self.taken: list[bytes] = []
        self.pushed: list[tuple[bytes, bytes, bytes | None]] = []

    def push_auto(self, encoded: bytes) -> bool:
        if self.auto:
            self.taken.append(encoded)
        return self.auto

    def push_event(self, encoded: bytes, emsg: bytes, frame: bytes | None = None) -> None:
        self.pushed.append((encoded, emsg, frame))


def _stored(i: int) -> list[StoredEvent]:
    enc = b'{"id":%d,"source_app":"a","session_id":"s","hook_event_type":"t","payload":{}}' % i
    return [StoredEvent(id=i, encoded=enc, source_app="a", session_id="s", hook_event_type="t")]


def test_batching_clients_get_the_bytes_and_no_message_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[bytes] = []
    monkeypatch.setattr(bmod, "event_message", _counting(built))
    hub = Broadcaster(ServerCounters())
    clients: list[Any] = [Client(True), Client(True)]
    hub.clients.update(clients)
    hub.broadcast(_stored(1))
    assert built == [] and all(c.taken == [_stored(1)[0].encoded] for c in clients)


def test_per_event_clients_share_one_message_and_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[bytes] = []
    monkeypatch.setattr(bmod, "event_message", _counting(built))
    hub = Broadcaster(ServerCounters())
    auto, one, two = Client(True), Client(False), Client(False)
    hub.clients.update([auto, one, two])  # type: ignore[list-item]
    hub.broadcast(_stored(7))
    enc = _stored(7)[0].encoded
    emsg = event_message(enc)
    assert built == [enc]  # once, for both per-event clients
    assert one.pushed == two.pushed == [(enc, emsg, text_frame(emsg))]
    assert auto.taken == [enc] and auto.pushed == []
