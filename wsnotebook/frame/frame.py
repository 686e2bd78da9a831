"""EventFrame: a thread-safe, bounded, columnar store of events with a pandas view.

This module is the facade users see: construction, the lock, appending (delegated to the
:class:`~.storage.ChunkStore` it holds), counters, gap records, subscribers and ``stats``.  The
read side comes from mixins, one concern each: :class:`~.query.QueryMixin` (``df``,
``snapshot``, ``tail``, ``filter``, ``plain_table``, ``categories``),
:class:`~.analysis.AnalysisMixin` (``numeric_columns``, ``throughput``, ``latency``) and
:class:`~.parquet.ParquetMixin` (``to_parquet``, ``from_parquet``).

How rows are stored (chunks of ``chunk_rows`` rows; numeric columns as numpy arrays, four
category columns as int32 codes into frame-wide dictionaries, payloads as compact JSON text,
compressed once a chunk is full) is described in :mod:`.storage` and :mod:`.chunks`.  Payload
dicts in ``.df`` are fresh objects: mutating them does not change the frame.  Until its chunk
fills, the frame holds references to the ``summary`` strings and ``chat``/extra values of
appended events (payloads are encoded at once): do not mutate events after appending them.

Locking: every public method takes the one lock briefly; readers copy references under it and
build their result outside it, so a reader never stalls the appending thread for long and
never sees a torn row.  Subscribers are called after the lock is released.

Bounds: ``1 <= max_rows <= 100_000_000``; ``1 <= chunk_rows <= 1_048_576`` and
``chunk_rows <= max_rows``; at most ``MAX_GAPS`` gap records (the newest).  Drop policy: oldest
rows are evicted first and counted in :attr:`EventFrame.dropped`; duplicate ids are ignored and
counted in :attr:`EventFrame.duplicates`.  Importing this module, creating a frame and
appending to it do not import pandas.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from itertools import repeat
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError, EventValidationError
from ..events import Event, json_type
from ..events.columns import EventColumns
from .analysis import AnalysisMixin
from .args import frame_bounds, int_arg
from .chunks import Codec, has_pyarrow
from .idset import IdSet
from .parquet import ParquetMixin
from .query import QueryMixin
from .storage import ChunkStore

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MAX_GAPS", "EventFrame"]

log = logging.getLogger("wsnotebook")

Callback = Callable[["EventFrame", int], Any]

#: Gap records an EventFrame keeps (the newest; ``stats()["gaps_total"]`` counts every one).
MAX_GAPS = 10_000


class EventFrame(QueryMixin, AnalysisMixin, ParquetMixin):
    """A thread-safe, bounded, columnar event store; ``.df`` gives a typed pandas snapshot.

    Parameters (keyword-only):

    * ``max_rows`` (default 1,000,000; 1..100,000,000): rows retained.  When full, the oldest
      rows are evicted first and counted in :attr:`dropped`.
    * ``chunk_rows`` (default ``min(16384, max_rows)``; 1..1,048,576, at most ``max_rows``):
      rows per storage chunk.  Memory held beyond the retained rows is at most one chunk.
    * ``compress`` (default ``"auto"``: ``"zstd"`` when ``pyarrow`` is installed, else
      ``"zlib"``; or ``"lz4"``, or ``None`` for no compression): how the payload text of full
      chunks is compressed.  Hook payloads shrink 5-15x: measured at 1M retained ~500-byte
      events, ~170 bytes of RSS per event with zstd or zlib instead of ~335 uncompressed, for
      ~0.2 s more per million rows in ``.df`` (see ``benchmarks/bench_frame.py``).

    Appends normally come from the client's background loop thread while the kernel thread
    reads; every method is safe to call from any thread.  An event whose integer ``id`` was
    already appended is ignored and counted in :attr:`duplicates` (ids are remembered as
    intervals, see :meth:`reset_ids`).  Events are expected to be valid
    (:func:`wsnotebook.events.validate_event`); the frame only rejects what it cannot store
    (wrong types for its typed columns, e.g. a string or boolean ``timestamp``; values that are
    not JSON-encodable; strings that are not valid UTF-8, i.e. hold a lone surrogate) with
    :class:`~wsnotebook.errors.EventValidationError` naming the field, leaving the frame
    unchanged.  Bad method arguments raise :class:`~wsnotebook.errors.ConfigError`.
    """

    def __init__(
        self,
        *,
        max_rows: int = 1_000_000,
        chunk_rows: int | None = None,
        compress: str | None = "auto",
    ) -> None:
        max_rows, chunk_rows = frame_bounds(max_rows, chunk_rows)
        self.max_rows = max_rows
        self.chunk_rows = chunk_rows
        if compress == "auto":
            compress = "zstd" if has_pyarrow() else "zlib"
        self.compress = compress
        codec = Codec(compress) if compress is not None else None
        self._lock = threading.RLock()
        self._subscribers: tuple[Callback, ...] = ()
        self.callback_errors = 0
        self._store = ChunkStore(max_rows, chunk_rows, codec)
        # Bound once: the per-event path (append, extend of one event) pays no extra lookup.
        self._append_one: Callable[[Event], bool] = self._store.append_one
        self._gaps: deque[tuple[int, int, str, datetime]] = deque(maxlen=MAX_GAPS)
        self._gaps_total = 0

    # ------------------------------------------------------------------ counters

    def __len__(self) -> int:
        with self._lock:
            return len(self._store)

    @property
    def total(self) -> int:
        """Rows ever added (monotonic; not reset by :meth:`clear`)."""
        return self._store.total

    @property
    def version(self) -> int:
        """Bumped on every change (append, eviction, clear, gap, reset_ids)."""
        return self._store.version

    @property
    def dropped(self) -> int:
        """Rows evicted because ``max_rows`` was reached."""
        return self._store.dropped

    @property
    def duplicates(self) -> int:
        """Events ignored because their ``id`` had already been appended."""
        return self._store.duplicates

    @property
    def gaps_total(self) -> int:
        """Gap records ever marked (the newest ``MAX_GAPS`` are kept in :attr:`gaps`)."""
        return self._gaps_total

    def __repr__(self) -> str:
        store = self._store
        return (
            f"<EventFrame rows={len(self)} total={store.total} max_rows={self.max_rows} "
            f"dropped={store.dropped} duplicates={store.duplicates} gaps={len(self._gaps)}>"
        )

    def stats(self) -> dict[str, Any]:
        """Counters and an estimate of the bytes held (payload text, columns, strings)."""
        with self._lock:
            store = self._store
            return {
                "rows": len(store),
                "total": store.total,
                "max_rows": self.max_rows,
                "dropped": store.dropped,
                "duplicates": store.duplicates,
                "gaps": len(self._gaps),
                "gaps_total": self._gaps_total,
                "version": store.version,
                "chunks": len(store.frozen) + (1 if store.open.n else 0),
                "id_intervals": len(store.ids.intervals),
                "id_holes_filled": store.ids.holes_filled,
                "subscribers": len(self._subscribers),
                "callback_errors": self.callback_errors,
                "memory_bytes": store.memory_bytes(),
                "compress": self.compress,
            }

    # ------------------------------------------------------------------ appending

    def append(self, event: Event) -> bool:
        """Append one event; ``False`` when its ``id`` was already seen (counted, ignored)."""
        if not isinstance(event, dict):
            raise EventValidationError(f"event: expected object, got {json_type(event)}")
        with self._lock:
            added = self._append_one(event)
            subscribers = self._subscribers
        if added and subscribers:
            self._notify(subscribers, 1)
        return added

    def extend(self, events: Iterable[Event]) -> int:
        """Append events in order; return how many rows were added (duplicates excluded).

        All-or-nothing: an event the frame cannot store raises
        :class:`~wsnotebook.errors.EventValidationError` and nothing of the batch is added.
        Subscribers are called once afterwards (on this thread) when rows were added.
        """
        batch = events if isinstance(events, (list, tuple)) else list(events)
        if not batch:
            return 0
        if len(batch) == 1:  # one event per call (per-event messages): the scalar path
            event = batch[0]
            if not isinstance(event, dict):
                raise EventValidationError(f"event: expected object, got {json_type(event)}")
            with self._lock:
                added = self._append_one(event)
                subscribers = self._subscribers
            if added and subscribers:
                self._notify(subscribers, 1)
            return int(added)
        if not all(map(isinstance, batch, repeat(dict))):
            bad = next(ev for ev in batch if not isinstance(ev, dict))
            raise EventValidationError(f"event: expected object, got {json_type(bad)}")
        with self._lock:
            kept = self._store.extend(batch)
            subscribers = self._subscribers
        if kept and subscribers:
            self._notify(subscribers, kept)
        return kept

    def extend_columns(self, cols: EventColumns) -> int:
        """Append a batch already decoded into columns; return how many rows were added.

        The client's fast path: :func:`wsnotebook.events.columns.decode_batch_columns` turns a
        ``batch`` message into an :class:`~wsnotebook.events.columns.EventColumns` without one
        dict per event, and this stores it with the same dedupe, eviction and subscriber
        notification as :meth:`extend`.  ``cols`` was validated by the decoder; values the
        frame cannot store (e.g. a stamp too large for a float) still raise
        :class:`~wsnotebook.errors.EventValidationError` with nothing of the batch added."""
        if not cols.n:
            return 0
        with self._lock:
            kept = self._store.extend_columns(cols)
            subscribers = self._subscribers
        if kept and subscribers:
            self._notify(subscribers, kept)
        return kept

    def _notify(self, subscribers: Sequence[Callback], n: int) -> None:
        for callback in subscribers:
            try:
                callback(self, n)
            except Exception:
                with self._lock:
                    self.callback_errors += 1
                log.exception("EventFrame subscriber %r failed", callback)

    # ------------------------------------------------------------------ dedupe, gaps, reset

    def reset_ids(self) -> None:
        """Forget every remembered id (call when the server's epoch changes: ids restart)."""
        with self._lock:
            self._store.ids = IdSet()
            self._store.version += 1

    def mark_gap(self, from_id: int, to_id: int, reason: str) -> None:
        """Record that events ``from_id..to_id`` (inclusive; ``to_id=-1``: unknown end) were
        lost, so the loss is visible in :attr:`gaps` instead of hidden.  The newest
        ``MAX_GAPS`` (10,000) records are kept; ``stats()["gaps_total"]`` counts all of them."""
        from_id = int_arg("mark_gap", "from_id", from_id)
        to_id = int_arg("mark_gap", "to_id", to_id)
        with self._lock:
            self._gaps.append((from_id, to_id, str(reason), datetime.now(timezone.utc)))
            self._gaps_total += 1
            self._store.version += 1

    @property
    def gaps(self) -> pd.DataFrame:
        """Recorded losses, oldest first: columns ``from_id``, ``to_id`` (int64), ``reason``,
        ``time`` (UTC).  At most the newest ``MAX_GAPS`` (10,000)."""
        import pandas as pd

        with self._lock:
            rows = list(self._gaps)
        return pd.DataFrame(
            {
                "from_id": np.array([r[0] for r in rows], dtype=np.int64),
                "to_id": np.array([r[1] for r in rows], dtype=np.int64),
                "reason": pd.Series([r[2] for r in rows], dtype=object),
                "time": pd.DatetimeIndex([r[3] for r in rows], dtype="datetime64[ns, UTC]"),
            }
        )

    def clear(self) -> None:
        """Drop every row and gap record (``total``, ``dropped``, ``duplicates``, ``gaps_total``
        and remembered ids are kept: ids that were seen stay deduplicated; call
        :meth:`reset_ids` to forget them)."""
        with self._lock:
            self._store.reset()
            self._gaps.clear()
            self._store.version += 1

    # ------------------------------------------------------------------ updates, questions
    @property
    def updates(self) -> int:
        """Updates applied to rows already held (see :mod:`.questions`: an event of a known
        id carrying ``update_seq`` or ``humanInTheLoopStatus``)."""
        return self._store.updates.applied

    def questions(self) -> list[Event]:
        """The newest version of every human-in-the-loop question the frame holds (at most
        ``MAX_QUESTIONS``), by id."""
        with self._lock:
            items = sorted(self._store.updates.questions.items())
        return [dict(event) for _, event in items]

    def pending(self, now_ms: float | None = None) -> pd.DataFrame:
        """Questions still waiting for an answer (pending, not past their deadline), one row
        each: see :func:`~.questions.pending_table` for the columns."""
        import time

        from ..events.hitl import is_pending
        from .questions import pending_table

        now = time.time() * 1000 if now_ms is None else now_ms
        return pending_table([e for e in self.questions() if is_pending(e, now)])

    # ------------------------------------------------------------------ subscribe

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        """Call ``callback(frame, n_added)`` after each append batch, on the appending thread.

        It must be cheap (it delays the appender); exceptions are logged on the ``wsnotebook``
        logger and counted in ``callback_errors``, never raised.  Returns an ``unsubscribe``
        function (idempotent).
        """
        if not callable(callback):
            raise ConfigError("subscribe: callback must be callable")
        with self._lock:
            self._subscribers = (*self._subscribers, callback)

        def unsubscribe() -> None:
            with self._lock:
                subs = list(self._subscribers)
                if callback in subs:
                    subs.remove(callback)
                    self._subscribers = tuple(subs)

        return unsubscribe
