"""The message sink: server messages in, rows (and gaps) in the :class:`EventFrame` out.

Owns the per-message work of the client, all on the loop thread: parsing
(:func:`~wsnotebook.protocol.parse_server_message`), the columnar fast path for big ``batch``
messages from a wsnotebook server (:func:`~wsnotebook.events.columns.decode_batch_columns` then
``frame.extend_columns``), stamping ``client_received`` and latency, the burst queue of live
events, resume bookkeeping (:class:`~wsnotebook.protocol.ResumeState`), gap accounting and the
message counters shown in ``client.metrics()``.  No I/O: the session feeds it raw messages.

Invariants and drop policies:

* arrival order is kept: queued events are flushed before a columnar batch, a gap, an
  ``initial`` snapshot or a reset is applied;
* live events reach the frame in one ``extend`` per burst: at most ``_FLUSH_EVENTS`` are queued,
  the rest of a burst is flushed by a ``call_soon`` once the connection's queue is drained;
* an undecodable message is dropped and counted (``decode_failures``), an invalid event dropped
  and counted (``invalid_events``), an event the frame cannot store (e.g. an id beyond int64)
  dropped alone, never the rest of its message;
* a new epoch's gap never claims an end the client cannot know (``to_id == -1``) unless the old
  server announced its final id.
"""

from __future__ import annotations

import asyncio
import logging
import operator
import threading
from array import array
from collections.abc import Callable, Sequence
from itertools import repeat
from typing import Any

import numpy as np

from ..errors import WsnError
from ..events import (
    BATCH_PREFIX,
    COLUMNS_PREFIX,
    EVENT_PREFIX,
    Event,
    EventColumns,
    EventRecord,
    columns_from_records,
    columns_message_batch,
    decode_batch_columns,
    decode_columns_message,
    decode_event_burst,
    decode_event_message,
    decode_json,
    now_ms,
)
from ..frame import EventFrame
from ..protocol import Gap, ResumeState, ServerMessage, parse_server_message
from ..runtime import gc_paused
from ..stats import LatencyStats, RateMeter
from .classify import ErrorCounts
from .traffic import TrafficLog

__all__ = ["MessageSink"]

log = logging.getLogger("wsnotebook")

#: Live events queued at most before they are appended to the frame in one go.
_FLUSH_EVENTS = 1000

#: Smallest ``batch`` message sent down the columnar fast path (:mod:`wsnotebook.events.columns`).
#: That path has a fixed cost of ~30 numpy calls per message; measured here it breaks even
#: with the dict path at ~10 events of 270 B and is 2.5x faster at 1000.
_COLUMNS_MIN_BYTES = 4096

#: Smallest ``columns`` message decoded with the cyclic GC paused (~200 events): below it the
#: pause's own cost (a context manager, two locks) is more than the collections it avoids.
_GC_PAUSE_BYTES = 65536

#: Fewest per-event messages appended to the frame as one batch of columns; a smaller burst
#: takes the dict path.  Measured here (bursts in a running loop, best of 3, busy machine): the
#: columnar append's fixed cost (~30 numpy calls) makes one message 2.2x slower than the dict
#: path, 2-4 messages break even, 8 are ~2x faster, 32 ~3x.
_RECORDS_MIN = 8

#: Fewest events of a columns append whose latencies are computed with numpy (fewer: a list
#: comprehension, cheaper than numpy's fixed cost per call with cold caches).
_NUMPY_MIN = 128


def new_epoch_gap(
    from_id: int, old_seq: int | None, epoch: str | None, final_seq: int | None
) -> tuple[Gap, int] | None:
    """The gap of a lost (in-memory) old epoch, events ``from_id..``, and its known lower
    bound of lost events; ``None`` when nothing was lost.

    When the old server stopped gracefully it announced its last id (``final_seq``, from a
    heartbeat with ``"final": true``): the loss is then exactly ``from_id..final_seq`` — and
    nothing at all when ``final_seq < from_id``.  Otherwise (a crash, or the final heartbeat
    never reached us) the client only knows a lower bound: the last ``seq`` it heard from the
    old server (``initial``/heartbeat).  The old server may have accepted more after that
    heartbeat (and a heartbeat can overtake queued events), so the end is never claimed: the
    gap is ``from_id .. -1`` and its reason states the bound, e.g. ``"new epoch B: at least 10
    events lost (last seq heard 20); end unknown"``.
    """
    if final_seq is not None:
        if final_seq < from_id:
            return None
        n = final_seq - from_id + 1
        reason = f"new epoch {epoch}: {n} events lost (old server's final id {final_seq})"
        return Gap(from_id, final_seq, reason), n
    known = old_seq - from_id + 1 if old_seq is not None and old_seq >= from_id else 0
    heard = f"last seq heard {old_seq}" if old_seq is not None else "no seq heard"
    if known:
        reason = f"new epoch {epoch}: at least {known} events lost ({heard}); end unknown"
    else:
        reason = (
            f"new epoch {epoch}: events after id {from_id - 1} lost, if any ({heard}); end unknown"
        )
    return Gap(from_id, -1, reason), known


def _latencies(timestamps: Sequence[float], received: float) -> list[float]:
    """``received - t`` for each stamp ``t`` that is not NaN (missing): a list comprehension
    below ``_NUMPY_MIN`` stamps (no numpy call's fixed cost, ~10-25 us cold), numpy above."""
    if len(timestamps) < _NUMPY_MIN:
        return [received - t for t in timestamps if t == t]  # NaN is not equal to itself
    latency = received - np.asarray(timestamps, dtype=np.float64)
    out: list[float] = latency[~np.isnan(latency)].tolist()
    return out


def _append_decoded(
    sink: MessageSink,
    decode: Callable[[bytes], EventColumns | None],
    raw: bytes,
    received: float,
) -> EventColumns | None:
    """``raw`` decoded into columns and appended by ``sink``; ``None`` when the decoder or the
    frame refused it (nothing added: take the dict path).  The cyclic GC is paused for a big
    message (it builds and frees thousands of tuples, which would otherwise trigger ~1.5
    young collections per 1000-event batch: ~40 % slower); a small one (the paced case, below
    ``_GC_PAUSE_BYTES``) skips the pause's own cost, a context manager and two locks."""
    if len(raw) >= _GC_PAUSE_BYTES:
        with gc_paused():
            cols = decode(raw)
            return cols if cols is not None and sink.append_columns(cols, received) else None
    cols = decode(raw)
    return cols if cols is not None and sink.append_columns(cols, received) else None


def _in_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class MessageSink:
    """Turns server messages into frame rows; one per client, reused across connections.

    ``failures`` counts failures by kind (``client.errors``); ``cond`` is notified
    whenever rows were added (``client.wait_for`` waits on it).
    """

    def __init__(
        self,
        frame: EventFrame,
        traffic: TrafficLog,
        *,
        since: int | None,
        failures: ErrorCounts,
        cond: threading.Condition,
        clock: Callable[[], float],
    ) -> None:
        self.frame = frame
        self.traffic = traffic
        self.count = failures.add
        self.cond = cond
        self.resume = ResumeState()
        self.resume.last_id = since
        self.server_seq: int | None = None  # last seq the server announced in this epoch
        # The server's last id when it stopped gracefully (heartbeat with "final": true): with
        # it a new-epoch gap has a known end, and a restart that lost nothing records no gap.
        self.final_seq: int | None = None
        self._pending: list[Event] = []  # live events received but not yet in the frame
        # Per-event messages from a wsnotebook server, kept as received and decoded per burst
        # in one msgspec call (decode_event_burst), appended as one batch of columns; never
        # queued together with ``_pending``.  ``_burst_at``: the burst's arrival stamp.
        self._raws: list[bytes] = []
        self._wires: list[int] = []
        self._burst_at = 0.0
        self._flush_scheduled = False
        # Columnar fast path for ``batch`` messages: only from a wsnotebook server (decided per
        # connection by its handshake header), whose events are compact orjson output, so the
        # payload text it keeps as sent is what the dict path would store.
        self.columnar = True
        self.events = 0
        self.messages = 0
        self.decode_failures = 0
        self.invalid_events = 0
        self.unknown_messages = 0
        self.server_errors = 0
        self.duplicates_skipped = 0
        self.gaps = 0
        self.gaps_open_ended = 0  # gaps whose end the client cannot know (to_id == -1)
        self.gap_events_at_least = 0  # sum of the gaps' known lower bounds of lost events
        self.rate = RateMeter(window=10.0, clock=clock)
        self.latency = LatencyStats(10_000)  # producer -> client ms, live events only

    def handle(self, raw: bytes, wire: int) -> None:
        self.messages += 1
        if self.columnar and type(raw) is bytes and raw.startswith(EVENT_PREFIX):
            # The per-event hot path: no decode, no clock, no call per message; the burst is
            # decoded and appended when the loop has drained the messages already read.
            raws = self._raws
            if raws:
                raws.append(raw)
                self._wires.append(wire)
                if len(raws) >= _FLUSH_EVENTS:
                    self.flush()
                return
            if self._flush_scheduled or _in_loop():
                # The first message of a burst: every message handled before the loop runs
                # again was read from the socket before this one is handled (the receive loop
                # does not yield while messages are queued), so one stamp serves the burst.
                if self._pending:  # keep arrival order
                    self.flush_events()
                self._burst_at = now_ms()
                raws.append(raw)
                self._wires.append(wire)
                self.schedule_flush()
                return
            # Outside a running loop each message is appended at once (dict path, as one would).
        received = now_ms()
        if type(raw) is bytes and raw.startswith(COLUMNS_PREFIX):
            self.on_columns(raw, wire, received)
            return
        elif (
            self.columnar
            and len(raw) >= _COLUMNS_MIN_BYTES
            and type(raw) is bytes
            and raw.startswith(BATCH_PREFIX)
        ):
            cols = _append_decoded(self, decode_batch_columns, raw, received)
            if cols is not None:  # None: take the dict path below
                self.traffic.record("in", "batch", wire, decoded_bytes=len(raw), n_events=cols.n)
                return
        self.handle_message(raw, wire, received)

    def on_columns(self, raw: bytes, wire: int, received: float) -> None:
        """A ``columns`` message: appended as columns; one they refuse takes the dict path as
        the equivalent ``batch`` (which keeps what it can and counts the rest)."""
        cols = _append_decoded(self, decode_columns_message, raw, received)
        if cols is not None:
            self.traffic.record("in", "columns", wire, decoded_bytes=len(raw), n_events=cols.n)
            return
        self.handle_message(columns_message_batch(raw) or raw, wire, received)

    def handle_message(self, raw: bytes, wire: int, received: float) -> None:
        """The general path: parse into dicts, validate, dispatch by message type."""
        try:
            msg = parse_server_message(raw)
        except WsnError as exc:
            self.decode_failures += 1
            self.count("decode")
            self.traffic.record("in", "invalid", wire, decoded_bytes=len(raw))
            log.warning("wsnotebook client: undecodable message dropped: %s", exc)
            return
        n_events = len(msg.events)
        self.traffic.record(
            "in", msg.type, wire, decoded_bytes=len(raw), n_events=n_events + msg.invalid
        )
        if msg.invalid:
            self.invalid_events += msg.invalid
            self.count("invalid_event", msg.invalid)
            log.warning("wsnotebook client: %d invalid event(s) dropped", msg.invalid)
        kind = msg.type
        if kind == "initial":
            self.on_initial(msg, received)
        elif kind in ("event", "batch"):
            self.append(msg.events, received)
        elif kind == "heartbeat":
            self.on_heartbeat(raw)
        elif kind == "gap":
            self.on_gap(msg.data)
        elif kind == "error":
            self.server_errors += 1
            self.count("server_error")
            log.warning("wsnotebook client: server reported an error: %s", msg.data)
        else:
            self.unknown_messages += 1
            self.count("unknown_type")
            log.debug("wsnotebook client: unknown message type %r ignored", kind)

    def append(self, events: list[Event], received: float) -> None:
        """Stamp and queue live events; they reach the frame in one ``extend`` per burst.

        Messages already queued in the connection are handled without yielding to the loop, so
        the flush scheduled with ``call_soon`` runs once the burst is drained (one frame append
        instead of one per message), or at once after ``_FLUSH_EVENTS`` events.
        """
        if not events:
            return
        if self._raws:  # keep arrival order
            self.flush_raws()
        # Validated events: ``timestamp`` is a number or None.  C-level passes, no per-event
        # Python frame.
        if len(events) == 1:
            ev = events[0]
            ev["client_received"] = received
            ts = ev.get("timestamp")
            if ts is not None:
                self.latency.add(received - ts)
        else:
            any(map(operator.setitem, events, repeat("client_received"), repeat(received)))
            self.latency.extend(
                [received - t for t in map(dict.get, events, repeat("timestamp")) if t is not None]
            )
        self.resume.on_events(events)
        self._pending.extend(events)
        if len(self._pending) >= _FLUSH_EVENTS:
            self.flush()
        else:
            self.schedule_flush()

    def schedule_flush(self) -> None:
        """Flush once the loop has handled the messages already queued (the burst); outside a
        running loop (unit tests, the benchmark's handler) at once."""
        if self._flush_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._flush_scheduled = True
        loop.call_soon(self.flush)

    def append_columns(self, cols: EventColumns, received: float) -> bool:
        """The fast path of :meth:`append` for a batch decoded into columns (see
        :mod:`wsnotebook.events.columns`): stamped and appended at once, after anything queued.

        False when the frame refused the batch (a value it cannot store, e.g. an id beyond
        int64): nothing of it was added, and the caller takes the dict path, which keeps every
        event the frame can store and counts the others as invalid."""
        if self._raws or self._pending:  # keep arrival order: queued messages first
            self.flush()
        n = cols.n
        # array('d') and a list comprehension, not numpy, below _NUMPY_MIN events: a paced
        # message (10-100 events) runs with cold caches, where each numpy call costs ~10-25 us.
        cols.client_received = array("d", (received,)) * n
        try:
            added = self.frame.extend_columns(cols)
        except Exception as exc:
            log.debug("wsnotebook client: columnar append refused (%r); dict path", exc)
            return False
        self.latency.extend(_latencies(cols.timestamp, received))
        self.resume.on_ids(cols.id)
        self.appended(cols.n, added)
        return True

    def flush(self) -> None:
        """Move queued events into the frame (also called before gaps, resets and drops)."""
        # Events the dict path queues while this runs are flushed below, not rescheduled.
        self._flush_scheduled = True
        try:
            if self._raws:
                self.flush_raws()
            if self._pending:
                self.flush_events()
        finally:
            self._flush_scheduled = False

    def flush_raws(self) -> None:
        """Append the queued per-event messages: a burst of at least ``_RECORDS_MIN`` decoded
        in one call (:func:`~wsnotebook.events.columns.decode_event_burst`) and appended as
        one batch of columns; otherwise, or when that refuses the burst, message by message
        (:meth:`flush_singly`)."""
        raws, self._raws = self._raws, []
        wires, self._wires = self._wires, []
        received = self._burst_at
        cols = None
        if len(raws) >= _RECORDS_MIN:
            with gc_paused():
                cols = decode_event_burst(raws)
            if cols is not None and self.append_burst(cols, raws, wires, received):
                return
        self.flush_singly(raws, wires, received)

    def append_burst(
        self, cols: EventColumns, raws: list[bytes], wires: list[int], received: float
    ) -> bool:
        """:meth:`append_columns` for a burst of per-event messages (traffic: one entry each)."""
        if not self.append_columns(cols, received):
            return False
        self.traffic.record_many("in", "event", wires, list(map(len, raws)))
        return True

    def flush_singly(self, raws: list[bytes], wires: list[int], received: float) -> None:
        """A burst message by message: runs of at least ``_RECORDS_MIN`` records as columns,
        any other message (an unknown field; one the frame refuses) through the dict path
        (:meth:`handle_message`), which keeps what it can and counts the rest."""
        records: list[EventRecord] = []
        start = 0
        if len(raws) >= _RECORDS_MIN:
            for i, raw in enumerate(raws):
                record = decode_event_message(raw)
                if record is not None:
                    records.append(record)
                    continue
                self.flush_run(records, raws[start:i], wires[start:i], received)
                records = []
                start = i + 1
                self.handle_message(raw, wires[i], received)
                if self._pending:  # before the next run's columns: arrival order
                    self.flush_events()
        self.flush_run(records, raws[start:], wires[start:], received)
        if self._pending:
            self.flush_events()

    def flush_run(
        self, records: list[EventRecord], raws: list[bytes], wires: list[int], received: float
    ) -> None:
        """Messages ``raws`` (``records``: theirs, or empty: not decoded); arrival order."""
        if len(records) >= _RECORDS_MIN:
            with gc_paused():
                cols = columns_from_records(records)
            if cols is not None and self.append_burst(cols, raws, wires, received):
                return
        for raw, wire in zip(raws, wires):
            self.handle_message(raw, wire, received)

    def flush_events(self) -> None:
        """Append the queued event dicts in one ``extend`` (one by one if that fails)."""
        events, self._pending = self._pending, []
        n = len(events)
        try:
            added = self.frame.extend(events)
        except Exception:
            # One event the frame cannot store (valid on the wire, e.g. an id beyond int64)
            # must not cost the others: append one by one, drop and count only the bad ones.
            added, bad = 0, 0
            for ev in events:
                try:
                    added += self.frame.extend([ev])
                except Exception as exc:
                    bad += 1
                    log.warning("wsnotebook client: event id=%r dropped: %s", ev.get("id"), exc)
            self.invalid_events += bad
            self.count("invalid_event", bad)
            n -= bad
        self.appended(n, added)

    def appended(self, n: int, added: int) -> None:
        """Count ``added`` of ``n`` events as in the frame (the rest were duplicates)."""
        if n > added:
            self.duplicates_skipped += n - added
        self.events += added
        self.rate.add(added)
        with self.cond:
            self.cond.notify_all()

    def mark_gap(self, gap: Gap, *, at_least: int | None = None) -> None:
        """Record ``gap`` in the frame and count it.

        ``at_least``: the known lower bound of lost events; by default the gap's size when its
        end is known (``to_id >= from_id``), else 0 (open-ended: the loss may be empty).
        """
        self.flush()
        self.gaps += 1
        if gap.to_id < 0:
            self.gaps_open_ended += 1
        if at_least is None:
            at_least = gap.to_id - gap.from_id + 1 if gap.to_id >= gap.from_id else 0
        self.gap_events_at_least += max(0, at_least)
        log.warning(
            "wsnotebook client: events %d..%s lost (%s)",
            gap.from_id,
            gap.to_id if gap.to_id >= 0 else "?",
            gap.reason,
        )
        self.frame.mark_gap(gap.from_id, gap.to_id, gap.reason)

    def on_initial(self, msg: ServerMessage, received: float) -> None:
        self.flush()
        resume = self.resume
        old_epoch, old_last, old_seq = resume.epoch, resume.last_id, self.server_seq
        final_seq, self.final_seq = self.final_seq, None
        ids = [e["id"] for e in msg.events]
        if msg.epoch is None:
            # Seed-style server: no epoch.  Ids going backwards means it restarted empty.
            if old_last is not None and (not ids or max(ids) < old_last):
                self.mark_gap(Gap(old_last + 1, -1, "server restarted (ids went back)"))
                self.frame.reset_ids()
                resume.last_id = None
            elif old_last is not None and ids and min(ids) > old_last + 1:
                self.mark_gap(Gap(old_last + 1, min(ids) - 1, "not replayed by the server"))
            resume.on_initial(msg)
        else:
            new_epoch = old_epoch is not None and msg.epoch != old_epoch
            gaps = resume.on_initial(msg)
            if new_epoch:
                self.frame.reset_ids()
            for gap in gaps:
                if gap.to_id == -1 and gap.reason == "new epoch":
                    lost = new_epoch_gap(gap.from_id, old_seq, msg.epoch, final_seq)
                    if lost is not None:
                        self.mark_gap(lost[0], at_least=lost[1])
                else:
                    self.mark_gap(gap)
            self.server_seq = msg.seq
        if msg.events:
            for ev in msg.events:
                ev["client_received"] = received
            added = self.frame.extend(msg.events)
            self.duplicates_skipped += len(msg.events) - added
            self.events += added
            self.rate.add(added)
        with self.cond:
            self.cond.notify_all()

    def on_heartbeat(self, raw: bytes) -> None:
        try:
            obj = decode_json(raw)
        except WsnError:  # pragma: no cover - parse_server_message decoded it already
            return
        seq, epoch = obj.get("seq"), obj.get("epoch")
        if not isinstance(seq, int) or isinstance(seq, bool):
            return
        if epoch is not None and epoch != self.resume.epoch:
            return
        if self.server_seq is None or seq > self.server_seq:
            self.server_seq = seq
        if obj.get("final") is True:
            self.final_seq = seq

    def on_gap(self, data: Any) -> None:
        if not isinstance(data, dict):
            self.decode_failures += 1
            self.count("decode")
            return
        a, b = data.get("from_id"), data.get("to_id")
        if not (isinstance(a, int) and isinstance(b, int)) or isinstance(a, bool):
            self.decode_failures += 1
            self.count("decode")
            log.warning("wsnotebook client: malformed gap message ignored: %r", data)
            return
        epoch = data.get("epoch")
        if epoch is not None and self.resume.epoch is not None and epoch != self.resume.epoch:
            log.debug("wsnotebook client: gap for another epoch ignored")
            return
        self.mark_gap(Gap(a, b, str(data.get("reason") or "server gap")))
        self.resume.on_gap(a, b)
