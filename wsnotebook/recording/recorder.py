"""The recorder: a reconnecting client whose events (and gap records) go to a recording on disk
in crash-safe segments.  A thin asyncio shell around :class:`~.flush.FlushPolicy` (when) and
:class:`~.fileformat.SegmentWriter` (how).

It is an ordinary :func:`wsnotebook.connect` client (resume with ``since``/``epoch``, gaps,
backoff) feeding a private :class:`~wsnotebook.frame.EventFrame`.  A flush runs on the
background loop, where the client appends: the pending rows are written with
``EventFrame.to_parquet`` to the segment's temporary file and the frame is cleared in one step
(no append can fall between them: same thread, no ``await``), then the segment is made durable
(``fsync`` + rename) in a worker thread.  The frame keeps remembering ids across flushes, so a
resumed connection's replay is not recorded twice.  Rows evicted before a flush (the frame holds
``FlushOptions.buffer_rows`` at most) are recorded as a gap with reason ``recorder overflow``.

Nothing raises from the background: a failed write or a client that gave up ends the recording
with :attr:`Recorder.error` set (and logged once); what was flushed before stays readable.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..client import Client, connect
from ..errors import RecordingError, WaitTimeout, WsnError
from ..frame import EventFrame
from ..runtime import Registry
from ..runtime import loop as _loop
from .fileformat import SegmentWriter
from .flush import FlushOptions, FlushPolicy

__all__ = ["Recorder", "record", "running_recorders", "stop_recorders", "wait_recorded"]

log = logging.getLogger("wsnotebook")

#: Recorders from start() until their task ends (keyed by ``id``).
_recorders: Registry[Recorder] = Registry("recorders")


class Recorder:
    """Record ``url``'s stream into ``out`` (a new recording directory); see :func:`record`."""

    def __init__(
        self,
        url: Any,
        out: str | Path,
        *,
        flush: FlushOptions | None = None,
        max_events: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        **client_options: Any,
    ) -> None:
        self.flush_options = flush or FlushOptions()
        if max_events is not None and max_events < 1:
            raise RecordingError(f"max_events must be >= 1 or None, got {max_events}")
        self.max_events = max_events
        self.policy = FlushPolicy(self.flush_options, clock)
        self.frame = EventFrame(max_rows=self.flush_options.buffer_rows)
        source = getattr(url, "url", url)
        # the source without its query: a ?token= never lands in the file
        self.writer = SegmentWriter(out, source=_without_query(str(source)))
        self.path = self.writer.path
        self._url = url
        self._client_options = client_options
        self.client: Client | None = None
        #: events written to committed segments, gap records written
        self.recorded = 0
        self.gaps_written = 0
        self.error: WsnError | None = None
        self._gaps_seen = 0
        self._dropped_seen = 0
        self._stopping = threading.Event()
        self._wake: asyncio.Event | None = None
        self._future: concurrent.futures.Future[None] | None = None

    # ------------------------------------------------------------------ public

    def start(self) -> Recorder:
        """Create the recording (``RecordingError`` when it cannot be), connect, and record in
        the background; returns at once."""
        try:
            # loaded now, not at the first flush: a flush at interpreter exit cannot import
            import pandas  # noqa: F401
            import pyarrow.parquet  # noqa: F401
        except ImportError as exc:
            raise RecordingError(
                f"recording needs pyarrow and pandas ({exc}): pip install 'wsnotebook[parquet]'"
            ) from None
        self.writer.create()
        # subscribed first: the rows of the first message are counted too
        unsubscribe = self.frame.subscribe(self._on_rows)
        try:
            self.client = connect(self._url, frame=self.frame, **self._client_options)
        except BaseException:
            unsubscribe()
            raise
        _recorders.add(id(self), self)
        self._future = _loop.submit(self._run())
        return self

    @property
    def running(self) -> bool:
        return self._future is not None and not self._future.done()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop: close the client, flush what is pending, wait up to ``timeout`` s."""
        self._stopping.set()
        if self.client is not None:
            self.client.close(timeout)
        _loop.call_soon(self._poke)
        self.wait(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the recording ended (stopped, ``max_events`` reached, or failed)."""
        fut = self._future
        if fut is None:
            return True
        try:
            fut.result(timeout)
        except concurrent.futures.TimeoutError:
            return False
        return True

    def stats(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "recorded": self.recorded,
            "pending": self.policy.pending_rows,
            "segments": self.writer.segments,
            "bytes": self.writer.bytes_written,
            "gaps": self.gaps_written,
            "flushes": self.policy.flushes,
            "client_state": self.client.state if self.client is not None else "closed",
            "error": str(self.error) if self.error is not None else None,
        }

    # ------------------------------------------------------------------ loop side

    def _on_rows(self, frame: EventFrame, n: int) -> None:
        # on the appending thread: the client's, i.e. the loop thread
        self.policy.added(rows=n)
        if self.max_events is not None and self.recorded + self.policy.pending_rows >= (
            self.max_events
        ):
            self._stopping.set()
            self._poke()
        elif self.policy.pending_rows >= self.flush_options.rows:
            self._poke()

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _poll_gaps(self) -> None:
        total = self.frame.gaps_total
        dropped = self.frame.dropped
        new = (total - self._gaps_seen) + (1 if dropped > self._dropped_seen else 0)
        if new > 0:
            self.policy.added(gaps=new)

    async def _run(self) -> None:
        self._wake = asyncio.Event()
        try:
            while not self._stopping.is_set():
                self._poll_gaps()
                client = self.client
                if client is not None and client.state == "closed":
                    self.error = client.error
                    break
                if self.policy.due():
                    await self._flush()
                    continue
                deadline = self.policy.deadline()
                timeout = self.flush_options.interval
                if deadline is not None:
                    timeout = max(0.0, min(timeout, deadline - self.policy.clock()))
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
                self._wake.clear()
            if self.client is not None and self.max_events is not None:
                await self.client.aclose()
            self._poll_gaps()
            await self._flush()
        except WsnError as exc:
            self.error = exc
            log.error("wsnotebook record: %s", exc)
        except Exception as exc:  # never escapes the background task
            self.error = RecordingError(f"recording to {self.path} failed: {exc!r}")
            log.exception("wsnotebook record: recording to %s failed", self.path)
        finally:
            _recorders.remove(id(self), self)
            if self.client is not None and self.error is not None:
                await self.client.aclose()

    def _take_gaps(self) -> list[dict[str, Any]]:
        frame = self.frame
        out: list[dict[str, Any]] = []
        if frame.stats()["gaps"]:
            gaps = frame.gaps
            for from_id, to_id, reason, when in zip(
                gaps["from_id"].tolist(),
                gaps["to_id"].tolist(),
                gaps["reason"].tolist(),
                [t.isoformat() for t in gaps["time"]],
            ):
                out.append(
                    {
                        "from_id": int(from_id),
                        "to_id": int(to_id),
                        "reason": str(reason),
                        "time": when,
                    }
                )
        dropped = frame.dropped
        if dropped > self._dropped_seen:
            out.append(
                {
                    "from_id": -1,
                    "to_id": -1,
                    "reason": f"recorder overflow: {dropped - self._dropped_seen} events "
                    "evicted before they were written",
                    "time": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
                }
            )
        self._dropped_seen = dropped
        self._gaps_seen = frame.gaps_total
        return out

    async def _flush(self) -> None:
        frame = self.frame
        rows = len(frame)
        gaps = self._take_gaps()
        if not rows and not gaps:
            self.policy.flushed()
            return
        tmp = None
        if rows:
            tmp = self.writer.temp_path()
            try:
                # on the loop thread, with no await before clear(): the client cannot append
                # between the two, so every row is written exactly once
                frame.to_parquet(tmp)
            except OSError as exc:
                raise RecordingError(f"cannot write {self.path}: {exc.strerror or exc!r}") from None
        frame.clear()
        self.policy.flushed()
        try:
            try:
                await asyncio.to_thread(self.writer.commit, tmp, gaps)
            except RuntimeError:
                # at interpreter exit the default executor takes no new work ("cannot
                # schedule new futures after interpreter shutdown"): the last flush runs here
                self.writer.commit(tmp, gaps)
        except OSError as exc:
            raise RecordingError(f"cannot write {self.path}: {exc.strerror or exc!r}") from None
        self.recorded += rows
        self.gaps_written += len(gaps)


def record(
    url: Any,
    out: str | Path,
    *,
    flush_interval: float = 1.0,
    flush_rows: int = 20_000,
    buffer_rows: int = 200_000,
    max_events: int | None = None,
    **client_options: Any,
) -> Recorder:
    """Record the stream at ``url`` into a new recording directory ``out``; returns a running
    :class:`Recorder` at once (``.stop()``, ``.wait()``, ``.stats()``, ``.error``).

    ``flush_interval`` (s, 0.01..3600), ``flush_rows`` (1..1,000,000) and ``buffer_rows``
    (``flush_rows``..10,000,000): see :class:`~.flush.FlushOptions`.  ``max_events``: stop by
    itself once that many events were received (``None``: until ``stop()``).  Other keywords
    go to :func:`wsnotebook.connect` (``token``, ``ssl``, backoff options ...).  Raises
    ``RecordingError`` when ``out`` exists or cannot be created, ``ClientError`` /
    ``ConfigError`` for a bad URL or option."""
    flush = FlushOptions(interval=flush_interval, rows=flush_rows, buffer_rows=buffer_rows)
    return Recorder(url, out, flush=flush, max_events=max_events, **client_options).start()


def wait_recorded(recorder: Recorder, n: int, timeout: float) -> None:
    """Block until ``recorder`` committed at least ``n`` events (``WaitTimeout`` after
    ``timeout`` s); for scripts and tests."""
    deadline = time.monotonic() + timeout
    while recorder.recorded < n:
        if time.monotonic() > deadline or not recorder.running:
            raise WaitTimeout(f"recorded {recorder.recorded} of {n} events")
        time.sleep(0.02)


def _without_query(url: str) -> str:
    try:
        return urllib.parse.urlsplit(url)._replace(query="", fragment="").geturl()
    except ValueError:
        return ""


def running_recorders() -> list[Recorder]:
    """Recorders started in this process and still recording."""
    return _recorders.items(lambda r: r.running)


def stop_recorders(timeout: float = 10.0) -> int:
    """Stop every running recorder (final flush included); also run at interpreter exit,
    before the clients are closed.  Returns how many were running."""
    recorders = running_recorders()
    for recorder in recorders:
        try:
            recorder.stop(timeout)
        except Exception as exc:  # never raise at exit
            log.warning("wsnotebook: could not stop the recorder of %s: %r", recorder.path, exc)
    return len(recorders)


_loop.add_shutdown_hook(stop_recorders)
