"""Parquet: an EventFrame's retained rows written to and read from a Parquet file
(:class:`ParquetMixin`, mixed into :class:`~.frame.EventFrame`; needs ``pyarrow``, imported
only when called).

File format ``wsnotebook.eventframe/1`` (schema metadata ``format``): ``id`` int64,
``timestamp``/``server_received``/``client_received`` float64 epoch ms (null when absent),
the category columns dictionary-encoded strings, ``payload``/``chat``/``extra`` JSON text (so
any schema survives), ``summary`` string.  Reading refuses a file without that format tag,
dedupes ids as on append and applies the new frame's ``max_rows`` (oldest rows evicted).
Rows are read into the store in slices of 65,536, each under the lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ..errors import ConfigError
from .chunks import CAT_COLUMNS, Columns, concat, object_column, rows
from .ingest import stamp_list
from .storage import ChunkStore

__all__ = ["PARQUET_FORMAT", "ParquetMixin"]

PARQUET_FORMAT = "wsnotebook.eventframe/1"

_F = TypeVar("_F", bound="ParquetMixin")


class ParquetMixin:
    """``to_parquet`` and ``from_parquet``; needs the frame's ``_lock`` and ``_store``."""

    _lock: threading.RLock
    _store: ChunkStore

    def to_parquet(self, path: str | Path) -> None:
        """Write retained rows to Parquet (needs ``pyarrow``).  ``payload``, ``chat`` and the
        unknown fields are stored as JSON text so any schema survives; times as epoch ms."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        with self._lock:
            pieces, values = self._store.pieces()
        n = sum(len(rows(c, sl)) for c, sl in pieces)
        arrays: dict[str, Any] = {}
        arrays["id"] = concat([c.ids[sl] for c, sl in pieces], np.int64)
        for name, attr in (
            ("timestamp", "ts"),
            ("server_received", "sr"),
            ("client_received", "cr"),
        ):
            arrays[name] = concat([getattr(c, attr)[sl] for c, sl in pieces], np.float64)
        for j, name in enumerate(CAT_COLUMNS):
            codes = concat([c.cats[j][sl] for c, sl in pieces], np.int32)
            lookup = np.array([*values[j], None], dtype=object)
            arrays[name] = lookup[codes]
        payloads: list[str] = []
        for c, sl in pieces:
            text = c.text()
            payloads.extend(c.row_text(text, i).decode() for i in rows(c, sl))
        arrays["payload"] = payloads
        for name in ("summary", "chat", "extra"):
            arrays[name] = object_column(pieces, name, n)
        table = pa.table(
            {
                "id": pa.array(arrays["id"], pa.int64()),
                "timestamp": pa.array(arrays["timestamp"], pa.float64(), from_pandas=True),
                **{
                    name: pa.array(arrays[name], pa.string()).dictionary_encode()
                    for name in CAT_COLUMNS
                },
                "payload": pa.array(arrays["payload"], pa.string()),
                "summary": pa.array(arrays["summary"], pa.string()),
                "chat": pa.array(arrays["chat"], pa.string()),
                "extra": pa.array(arrays["extra"], pa.string()),
                "server_received": pa.array(
                    arrays["server_received"], pa.float64(), from_pandas=True
                ),
                "client_received": pa.array(
                    arrays["client_received"], pa.float64(), from_pandas=True
                ),
            }
        )
        table = table.replace_schema_metadata({"format": PARQUET_FORMAT})
        pq.write_table(table, str(path))

    @classmethod
    def from_parquet(
        cls: type[_F],
        path: str | Path,
        *,
        max_rows: int | None = None,
        chunk_rows: int | None = None,
        compress: str | None = "auto",
    ) -> _F:
        """Read a file written by :meth:`to_parquet` into a new frame (ids are deduplicated as
        on append; ``max_rows`` defaults to ``max(1_000_000, rows in the file)``; ``max_rows``
        and ``chunk_rows`` are checked as by the constructor)."""
        import pyarrow.parquet as pq

        table = pq.read_table(str(path))
        meta = table.schema.metadata or {}
        if meta.get(b"format") != PARQUET_FORMAT.encode():
            raise ConfigError(f"{path}: not an EventFrame parquet file (format {PARQUET_FORMAT})")
        n = table.num_rows
        new: Callable[..., _F] = cls  # the frame's constructor (EventFrame.__init__)
        frame = new(
            max_rows=max(1_000_000, n) if max_rows is None else max_rows,
            chunk_rows=chunk_rows,
            compress=compress,
        )
        ids = table.column("id").to_numpy()
        ts = table.column("timestamp").to_numpy()
        sr = table.column("server_received").to_numpy()
        cr = table.column("client_received").to_numpy()
        cat_values = [table.column(name).to_pylist() for name in CAT_COLUMNS]
        payload = table.column("payload").to_pylist()
        summary = table.column("summary").to_pylist()
        chat = table.column("chat").to_pylist()
        extra = table.column("extra").to_pylist()
        step = 65536
        for a in range(0, n, step):
            b = min(n, a + step)
            sl = slice(a, b)
            with frame._lock:
                store = frame._store
                codes = [
                    [cats.codes[v] if v in cats.codes else cats.add(name, v) for v in vals[sl]]
                    for name, cats, vals in zip(CAT_COLUMNS, store.cats, cat_values)
                ]
                idl = ids[sl].tolist()
                keep = [i for i, ident in enumerate(idl) if ident == -1 or store.ids.add(ident)]
                store.duplicates += len(idl) - len(keep)
                cols = Columns(
                    [idl[i] for i in keep],
                    stamp_list("timestamp", ts[sl][keep]),
                    stamp_list("server_received", sr[sl][keep]),
                    stamp_list("client_received", cr[sl][keep]),
                    [payload[a + i].encode() for i in keep],
                    [summary[a + i] for i in keep],
                    [chat[a + i] for i in keep],
                    [extra[a + i] for i in keep],
                )
                store.write(cols, [[c[i] for i in keep] for c in codes])
                store.total += len(keep)
                store.evict()
                store.version += 1
        return frame


# --------------------------------------------------------------------------- building frames
