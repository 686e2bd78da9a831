"""Query: the read side of an EventFrame that shows rows: ``df``, ``snapshot``, ``tail``,
``filter``, ``plain_table`` and ``categories`` (:class:`QueryMixin`, mixed into
:class:`~.frame.EventFrame`).

Each method takes the frame's lock only to copy references to the rows it needs
(:meth:`~.storage.ChunkStore.pieces`: frozen chunks are shared, only open rows are copied) and
builds its result outside it (:mod:`.snapshot`, :mod:`.search`), so a reader never stalls the
appending thread for long and never sees a torn row.  ``tail(n)`` and ``filter(limit=n)``
without conditions copy only the open chunk's last ``n`` rows, never its whole payload text:
megabytes copied in one GIL-holding call showed up in a busy kernel as a ~5-10 ms tail on cell
round trips.  pandas is imported only by the methods that return a DataFrame.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from itertools import compress
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError
from .args import category_arg, count_arg, search_pattern
from .chunks import CAT_COLUMNS, Piece, concat
from .questions import apply_updates
from .search import select_rows
from .snapshot import PlainColumns, build
from .storage import ChunkStore
from .tail import TailColumns, drop_last

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["QueryMixin"]


class QueryMixin:
    """Snapshots and queries of the retained rows; needs the frame's ``_lock`` and ``_store``."""

    _lock: threading.RLock
    _store: ChunkStore

    def _pieces(self, *, text: bool = True) -> tuple[list[Piece], list[list[str]]]:
        """Under the lock: every retained row, oldest first, as (chunk, slice) pieces.
        ``text=False``: the open chunk's numeric columns only (no copy of its payload text)."""
        with self._lock:
            return self._store.pieces(text=text)

    @property
    def df(self) -> pd.DataFrame:
        """A pandas snapshot of every retained row (oldest first), typed:

        ``id`` int64 (-1 when absent); ``timestamp``, ``server_received``, ``client_received``
        datetime64[ns, UTC] (NaT when absent, and for epochs beyond what datetime64[ns] holds,
        about 1677-09-21 .. 2262-04-11: the latency columns and Parquet keep the raw numbers);
        ``source_app``, ``session_id``, ``hook_event_type`` category; ``payload`` dicts;
        ``summary``, ``model_name``, ``chat`` and unknown top-level fields objects;
        ``latency_ms`` (client_received - timestamp), ``ingest_ms`` (server_received -
        timestamp), ``transit_ms`` (client_received - server_received) float64.  Cost:
        O(rows); the payload dicts are decoded each call.

        Name clash: an unknown top-level field named ``latency_ms``, ``ingest_ms`` or
        ``transit_ms`` does not get a column here, the computed column of that name wins; the
        field's value is kept (in :meth:`to_parquet`'s ``extra`` JSON column, and back through
        :meth:`from_parquet`).
        """
        pieces, values = self._pieces()
        return self._updated(build(pieces, values))

    def _updated(self, df: pd.DataFrame) -> pd.DataFrame:
        """``df`` with the fields replaced by updates (:mod:`.questions`)."""
        with self._lock:
            fields = self._store.updates.fields
            fields = {i: fields[i] for i in fields} if fields else {}
        return apply_updates(df, fields)

    def snapshot(self, *, payload: str = "dict") -> pd.DataFrame:
        """Like :attr:`df`, choosing how ``payload`` is materialised: ``"dict"`` (as ``.df``),
        ``"json"`` (the compact JSON text of each payload, a ``str``: ~4x faster for large
        frames, no million dicts for the GC to scan) or ``"none"`` (column left out)."""
        if payload not in ("dict", "json", "none"):
            raise ConfigError(
                f"snapshot: payload must be 'dict', 'json' or 'none', got {payload!r}"
            )
        pieces, values = self._pieces()
        return self._updated(build(pieces, values, payload=payload))

    def tail(self, n: int = 10) -> pd.DataFrame:
        """The last ``n`` rows (``n`` an ``int >= 0``; oldest first) as a DataFrame like
        :attr:`df`; O(n)."""
        n = count_arg("tail", "n", n)
        pieces, values = self._tail_pieces(n)
        return self._updated(build(pieces, values))

    def _tail_pieces(self, n: int, *, text: bool = True) -> tuple[list[Piece], list[list[str]]]:
        """Under the lock: the last ``n`` retained rows, oldest first, as pieces (the open
        chunk's part copied alone, O(n)), and the category values."""
        with self._lock:
            return self._store.tail_pieces(n, text=text)

    def tail_columns(
        self, n: int, *, since: int | None = None, skip: int = 0, payload: bool = True
    ) -> TailColumns:
        """The last ``n`` retained rows (oldest first) as raw numpy columns and lists, for a
        live view that sends them on (:class:`~.tail.TailColumns`): no DataFrame, no
        Timestamps, payloads as JSON text (``payload=False``: left out).  ``since``: a
        :attr:`total` seen before; only rows added after it (still at most ``n``).  ``skip``:
        leave out the newest ``skip`` rows (older pages of a long tail).  The
        result's ``total``, ``retained`` and ``dropped`` are read with the rows.  O(n)."""
        n = count_arg("tail_columns", "n", n)
        with self._lock:
            store = self._store
            total, retained, dropped = store.total, len(store), store.dropped
            if since is not None:
                n = max(0, min(n, total - int(since)))
            skip = min(count_arg("tail_columns", "skip", skip), retained)
            n = min(n, retained - skip)
            pieces, values = self._tail_pieces(n + skip, text=payload)
        out = TailColumns(drop_last(pieces, skip), values, payload=payload)
        out.total, out.retained, out.dropped = total, retained, dropped
        return out

    def match_ids(
        self,
        source_app: str | Iterable[str] | None = None,
        session_id: str | Iterable[str] | None = None,
        hook_event_type: str | Iterable[str] | None = None,
        *,
        search: str | re.Pattern[str] | None = None,
        limit: int | None = None,
        scan: int | None = None,
    ) -> np.ndarray:
        """The ids (int64, oldest first) of the rows :meth:`plain_table` selects with the same
        arguments: nothing but the matching rows' ids is built."""
        pieces, _ = self._filter_pieces(
            source_app, session_id, hook_event_type, search=search, limit=limit, scan=scan
        )
        return concat([c.ids[sl] for c, sl in pieces], np.int64)

    def row(self, event_id: int) -> dict[str, Any] | None:
        """The retained row with id ``event_id`` as a dict like a row of :attr:`df` (payload
        decoded, updates applied), or ``None``.  Looks newest first; O(rows) at worst."""
        event_id = int(event_id)
        with self._lock:
            store = self._store
            chunks = store.chunks()
            if store.open.n:
                chunks.append((store.open.view(frozen=False), 0))
            values = [list(c.values) for c in store.cats]
        for chunk, start in reversed(chunks):
            hit = np.flatnonzero(chunk.ids[start:] == event_id)
            if len(hit):
                df = self._updated(build([(chunk, hit[-1:] + start)], values))
                return {str(k): v for k, v in df.to_dict("records")[0].items()}
        return None

    def categories(self, column: str) -> list[str]:
        """Distinct values of ``source_app``/``session_id``/``hook_event_type``/``model_name``
        among retained rows, in first-seen order.  Cheap: O(categories + open chunk)."""
        try:
            idx = CAT_COLUMNS.index(column)
        except ValueError:
            raise ConfigError(
                f"categories: column must be one of {', '.join(CAT_COLUMNS)}, got {column!r}"
            ) from None
        with self._lock:
            store = self._store
            cats = store.cats[idx]
            return list(compress(cats.values, cats.live(store.open.codes(idx)).tolist()))

    def filter(
        self,
        *,
        source_app: str | Iterable[str] | None = None,
        session_id: str | Iterable[str] | None = None,
        hook_event_type: str | Iterable[str] | None = None,
        search: str | re.Pattern[str] | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Rows matching every given condition, oldest first, as a DataFrame like :attr:`df`.

        Category conditions take one string or an iterable of strings.  ``search`` is a regular
        expression (a ``str`` or a compiled ``str`` pattern) searched in ``summary`` and in the
        compact JSON text of ``payload`` (as sent, e.g. ``"tool_name":"Bash"``; quotes inside
        strings appear escaped); each row's texts are searched alone, so anchors (``^``,
        ``\\A``, ``$``, ``\\Z``) and lookarounds see only that row.  ``limit`` is an ``int >= 0``.
        Bad arguments raise :class:`~wsnotebook.errors.ConfigError`.  With ``limit``, chunks
        are scanned newest first and the scan stops after ``limit`` matches (cost follows the
        rows shown, not the frame size); the result is the newest ``limit`` matches.  An invalid
        pattern raises :class:`~wsnotebook.errors.ConfigError`.
        """
        pieces, values = self._filter_pieces(
            source_app, session_id, hook_event_type, search=search, limit=limit
        )
        return self._updated(build(pieces, values))

    def plain_table(
        self,
        source_app: str | Iterable[str] | None = None,
        session_id: str | Iterable[str] | None = None,
        hook_event_type: str | Iterable[str] | None = None,
        *,
        search: str | re.Pattern[str] | None = None,
        limit: int | None = None,
        scan: int | None = None,
    ) -> PlainColumns:
        """The rows :meth:`filter` selects, as plain columns for the monitor's table: the same
        rows, without building a DataFrame (that was most of a monitor tick, in Python holding
        the GIL).  Arguments as for :meth:`filter`, plus ``scan``: look at the newest ``scan``
        rows only (bounds the per-call search cost; ``None``: every retained row).

        The result has ``len()``, ``columns`` and ``[name]`` (a list per column): ``id``,
        ``timestamp`` (pandas ``Timestamp``/``NaT``), ``source_app``, ``session_id``,
        ``hook_event_type``, ``summary``, ``payload_json`` (each payload's JSON text as
        ``bytes``, not decoded) and ``latency_ms``."""
        pieces, values = self._filter_pieces(
            source_app,
            session_id,
            hook_event_type,
            search=search,
            limit=limit,
            scan=scan,
        )
        return PlainColumns(pieces, values)

    def _filter_pieces(
        self,
        source_app: str | Iterable[str] | None = None,
        session_id: str | Iterable[str] | None = None,
        hook_event_type: str | Iterable[str] | None = None,
        *,
        search: str | re.Pattern[str] | None = None,
        limit: int | None = None,
        scan: int | None = None,
    ) -> tuple[list[Piece], list[list[str]]]:
        """Under the lock: the rows :meth:`filter` selects, as pieces, and the category
        values.  ``scan``: look at the newest ``scan`` rows only (the monitor bounds its
        per-tick search cost with it; ``None``: every retained row)."""
        if limit is not None:
            limit = count_arg("filter", "limit", limit)
        pattern = search_pattern(search)
        wanted = (
            category_arg("source_app", source_app),
            category_arg("session_id", session_id),
            category_arg("hook_event_type", hook_event_type),
        )
        with self._lock:
            store = self._store
            chunks = store.chunks()
            op = store.open
            if op.n:
                if limit is not None and pattern is None and wanted == (None, None, None):
                    # The newest ``limit`` rows: copy only those of the open chunk (O(limit)).
                    if limit:
                        chunks.append((op.tail_view(min(limit, op.n)), 0))
                else:
                    chunks.append((op.view(frozen=False), 0))
            values = [list(c.values) for c in store.cats]
            code_sets: list[np.ndarray | None] = []
            for items, cats in zip(wanted, store.cats):
                if items is None:
                    code_sets.append(None)
                    continue
                code_sets.append(
                    np.array([cats.codes[v] for v in items if v in cats.codes], dtype=np.int32)
                )
        return select_rows(chunks, code_sets, pattern, limit, scan), values
