"""Pure wire helpers of the server: WebSocket text frames and the shared per-ingest ``Run``.

Owns no state and does no I/O (sans-I/O): given encoded events it builds the bytes that go on
the wire.  Invariants:

* A frame built here is a final, unmasked RFC 6455 text frame (servers never mask).
* ``EVENT_PREFIX + encoded + b"}"`` is exactly ``event_message(encoded)``: the connection's
  queue strips that envelope back off (``[len(EVENT_PREFIX):-1]``) to regroup queued events.
* A :class:`Run` builds its ``event`` messages and frames at most once, however many clients
  share it (encode once).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from ..events import encode_json
from ..protocol import event_message

__all__ = [
    "EVENT_OVERHEAD",
    "EVENT_PREFIX",
    "KIND_BATCH",
    "KIND_CONTROL",
    "KIND_EVENT",
    "KIND_RUN",
    "Run",
    "initial_message",
    "text_frame",
    "text_header",
    "utf8_size_over",
]

EVENT_PREFIX = b'{"type":"event","data":'
#: Bytes the ``event`` envelope adds around one encoded event.
EVENT_OVERHEAD = len(EVENT_PREFIX) + 1
_H1 = struct.Struct("!BB").pack
_H2 = struct.Struct("!BBH").pack
_H3 = struct.Struct("!BBQ").pack
#: Kinds of a connection's queue entries: one event, a batch, a control message, and a
#: ``batch=auto`` run of queued single events (sent as one message).
KIND_EVENT, KIND_BATCH, KIND_CONTROL, KIND_RUN = 0, 1, 2, 3


def text_header(n: int) -> bytes:
    """Header of a final, unmasked WebSocket text frame with ``n`` payload bytes (RFC 6455)."""
    if n < 126:
        return _H1(0x81, n)
    if n < 65536:
        return _H2(0x81, 126, n)
    return _H3(0x81, 127, n)


def text_frame(msg: bytes) -> bytes:
    return text_header(len(msg)) + msg


def initial_message(
    encoded: Sequence[bytes], *, extended: bool, seq: int, epoch: str, reset: bool, more: bool
) -> bytes:
    """The ``initial`` message (its ``seq``/``epoch``/``reset``/``more`` only for extended
    clients: seed clients get the plain snapshot)."""
    head = b'{"type":"initial","data":[' + b",".join(encoded) + b"]"
    if extended:
        extra = {"seq": seq, "epoch": epoch, "reset": reset, "more": more}
        head += b"," + encode_json(extra)[1:-1]
    return head + b"}"


def utf8_size_over(data: str | bytes, limit: int) -> int:
    """``data``'s size in UTF-8 bytes when it exceeds ``limit``, else 0 (cheap for small str:
    a str of n characters encodes to n..4n bytes)."""
    n = len(data)
    if isinstance(data, bytes):
        return n if n > limit else 0
    if n * 4 <= limit:
        return 0
    size = len(data.encode("utf-8", "surrogatepass"))
    return size if size > limit else 0


class Run:
    """One ingest's encoded events, as every client's ``push_many`` shares them.  Their
    ``event`` messages and WebSocket frames are built on first use, once for all clients: a
    ``batch=auto`` client on the direct path (the default) needs only ``encoded``."""

    __slots__ = ("_emsgs", "_frames", "enc_bytes", "encoded", "msg_bytes")

    def __init__(self, encoded: list[bytes]) -> None:
        self.encoded = encoded
        self.enc_bytes = sum(map(len, encoded))
        self.msg_bytes = self.enc_bytes + EVENT_OVERHEAD * len(encoded)
        self._emsgs: list[bytes] | None = None
        self._frames: list[bytes] | None = None

    def emsgs(self) -> list[bytes]:
        if self._emsgs is None:
            self._emsgs = [event_message(e) for e in self.encoded]
        return self._emsgs

    def frames(self) -> list[bytes]:
        if self._frames is None:
            self._frames = [text_frame(m) for m in self.emsgs()]
        return self._frames
