"""The ``columns`` wire format on the server side (``/stream?format=columns``).

A client that asks for it gets every live ``batch`` as a ``columns`` message
(:func:`wsnotebook.events.columns_message`: one JSON array per field, the payload objects copied
as stored), which a wsnotebook client appends to its frame without building a row.  Everything
else (``initial`` and replay pages, single ``event`` messages, control messages) is unchanged,
and so is every other client.

Encode once: the clients of one tick get the same events in the same stored ``bytes`` objects,
so the last message built is kept with the first and last of its events and their count; a
batch of the very same objects (identity, not equality: ids are unique and broadcast in order)
reuses it.  Events the columns cannot hold (an unknown top-level field, e.g. a
human-in-the-loop question) make the message a plain ``batch``.  Loop thread only.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..events import columns_message
from ..protocol import batch_message

__all__ = ["ColumnsEncoder", "batch_or_columns"]


class ColumnsEncoder:
    """``columns`` messages with a one-entry cache (see the module docstring)."""

    def __init__(self) -> None:
        self.key: tuple[bytes, bytes, int] | None = None
        self.msg = b""
        self.built = 0  # messages encoded
        self.reused = 0  # messages served from the cache
        self.fallbacks = 0  # batches sent as ``batch`` (events the columns cannot hold)

    def __call__(self, encoded_events: Sequence[bytes]) -> bytes:
        encoded = encoded_events
        key = (encoded[0], encoded[-1], len(encoded))
        cached = self.key
        if (
            cached is not None
            and cached[0] is key[0]
            and cached[1] is key[1]
            and cached[2] == key[2]
        ):
            self.reused += 1
            return self.msg
        msg = columns_message(encoded)
        if msg is None:
            self.fallbacks += 1
            msg = batch_message(encoded)
        else:
            self.built += 1
        self.key, self.msg = key, msg
        return msg


#: The process's encoder (one loop thread): every ``format=columns`` connection's batches.
batch_or_columns = ColumnsEncoder()
