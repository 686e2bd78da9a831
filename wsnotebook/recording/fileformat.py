"""Recordings on disk: the crash-safe segment writer and the reader that tolerates a torn tail.

A recording is a **Parquet dataset directory** (``--out session.parquet`` creates the folder
``session.parquet/``), or a single Parquet file (what :func:`compact` writes; the shipped demo
session is one)::

    session.parquet/
        _recording.json          {"format": "wsnotebook.recording/1", "source", "started"}
        part-000001.parquet      one flushed segment: EventFrame rows (wsnotebook.eventframe/1)
        _gaps-000001.json        gap records found in that segment, when there were any
        .part-000002.parquet.tmp a segment being written (ignored by every reader)

Each segment is written under a hidden temporary name, ``fsync``-ed, then renamed into place
(and the directory ``fsync``-ed), so a segment is either complete or absent: whatever was
flushed before a crash (even SIGKILL) stays readable, and the file being written is skipped.
Names starting with ``_`` or ``.`` are what pyarrow's dataset discovery ignores, so
``pandas.read_parquet(dir)`` and ``EventFrame.from_parquet(dir)`` read the events directly.

Why not one file with a row group per flush: a Parquet file is readable only once its footer
(at the end) is written, so a recorder killed before ``close()`` leaves nothing readable;
rewriting the whole file per flush costs O(n) per flush.  One file per segment costs one small
file per flush (``FlushOptions.interval``, 1 s by default; a long recording can be merged with
:func:`compact`).  The reader still tolerates a damaged *last* segment (a file system without
atomic rename, a copy cut short): it is skipped and counted in :attr:`Recording.torn_parts`;
a damaged segment before the last is a :class:`~wsnotebook.errors.RecordingError`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import RecordingError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from ..frame import EventFrame

__all__ = [
    "FRAME_FORMAT",
    "MANIFEST",
    "RECORDING_FORMAT",
    "Recording",
    "SegmentWriter",
    "compact",
    "probe",
    "read_recording",
]

RECORDING_FORMAT = "wsnotebook.recording/1"
#: the schema tag of every segment (EventFrame.to_parquet's format)
FRAME_FORMAT = "wsnotebook.eventframe/1"
MANIFEST = "_recording.json"
#: schema metadata key of a compacted recording file: the manifest plus every gap, as JSON
META_KEY = b"wsnotebook.recording"

_PART = re.compile(r"part-(\d{6,})\.parquet")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SegmentWriter:
    """Creates the recording directory and commits segments atomically (see module doc).

    :meth:`create` raises :class:`RecordingError` (one line) when ``path`` cannot be created
    or written, or already holds something that is not an empty directory.  Not thread-safe:
    one flush at a time (the recorder serialises them).
    """

    def __init__(self, path: str | Path, *, source: str = "") -> None:
        self.path = Path(path)
        self.source = source
        self.segments = 0
        self.bytes_written = 0

    def create(self) -> None:
        path = self.path
        try:
            if path.exists() and not (path.is_dir() and not any(path.iterdir())):
                raise RecordingError(
                    f"cannot record to {path}: it exists (give a new path or an empty directory)"
                )
            path.mkdir(parents=True, exist_ok=True)
            manifest = {
                "format": RECORDING_FORMAT,
                "source": self.source,
                "started": time.time(),
            }
            self._atomic_write(path / MANIFEST, json.dumps(manifest).encode())
        except OSError as exc:
            raise RecordingError(
                f"cannot record to {path}: {exc.strerror or type(exc).__name__}"
            ) from None

    def temp_path(self) -> Path:
        """Where the next segment's Parquet is written before :meth:`commit` renames it."""
        return self.path / f".part-{self.segments + 1:06d}.parquet.tmp"

    def commit(self, tmp: Path | None, gaps: Sequence[dict[str, Any]]) -> Path | None:
        """Make the segment durable: its gaps first, then the Parquet file (fsync, rename,
        fsync the directory).  ``tmp=None``: a segment with gaps only.  Returns the final path
        of the Parquet file (``None`` when there was none)."""
        self.segments += 1
        n = self.segments
        if gaps:
            self._atomic_write(self.path / f"_gaps-{n:06d}.json", json.dumps(list(gaps)).encode())
        if tmp is None:
            return None
        final = self.path / f"part-{n:06d}.parquet"
        _fsync_file(tmp)
        self.bytes_written += tmp.stat().st_size
        os.replace(tmp, final)
        _fsync_dir(self.path)
        return final

    def _atomic_write(self, final: Path, data: bytes) -> None:
        tmp = final.with_name("." + final.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        _fsync_dir(final.parent)
        self.bytes_written += len(data)


# --------------------------------------------------------------------------- reading


@dataclass
class Recording:
    """A recording read back: ``table`` (pyarrow, EventFrame schema, every row in recorded
    order, ids as recorded: they restart when the source's epoch changed), ``gaps`` (dicts
    ``from_id``, ``to_id``, ``reason``, ``time``), ``info`` (the manifest), ``parts`` (segments
    read) and ``torn_parts`` (damaged last segments skipped)."""

    path: Path
    table: pa.Table
    gaps: list[dict[str, Any]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    parts: int = 0
    torn_parts: int = 0

    def __len__(self) -> int:
        return int(self.table.num_rows)

    @property
    def df(self) -> pd.DataFrame:
        """Every recorded row as a DataFrame (times as epoch-ms floats, JSON columns as text)."""
        return self.table.to_pandas()

    def times_ms(self) -> list[float]:
        """The arrival time of each row, epoch ms: ``server_received`` (when the source's
        server stored it), else ``client_received`` (when the recorder got it), else the
        event's ``timestamp``; 0.0 when a row has none."""
        cols = [self.table.column(c).to_pylist() for c in ARRIVAL_COLUMNS]
        out: list[float] = []
        for values in zip(*cols):
            out.append(next((float(v) for v in values if v is not None), 0.0))
        return out

    def to_frame(self, *, max_rows: int | None = None) -> EventFrame:
        """An :class:`EventFrame` of the rows (ids deduplicated as on append: a recording that
        spans a new epoch repeats ids, use :attr:`df` to see every row)."""
        import tempfile

        import pyarrow.parquet as pq

        from ..frame import EventFrame

        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / "frame.parquet"
            pq.write_table(_tagged(self.table), str(target))
            return EventFrame.from_parquet(target, max_rows=max_rows)


#: the columns :meth:`Recording.times_ms` takes an arrival time from, first non-null wins
ARRIVAL_COLUMNS = ("server_received", "client_received", "timestamp")


def _tagged(table: pa.Table, extra: dict[bytes, bytes] | None = None) -> pa.Table:
    return table.replace_schema_metadata({b"format": FRAME_FORMAT.encode(), **(extra or {})})


def _read_part(path: Path) -> pa.Table:
    import pyarrow.parquet as pq

    table = pq.read_table(str(path))
    meta = table.schema.metadata or {}
    if meta.get(b"format") != FRAME_FORMAT.encode():
        raise RecordingError(f"{path}: not a wsnotebook recording (no {FRAME_FORMAT} schema tag)")
    return table


def read_recording(path: str | Path) -> Recording:
    """Read a recording directory or a single recording file (see the module doc).

    Raises :class:`RecordingError` (one line) when ``path`` does not exist, is not a recording,
    or is truncated (a single file, or a segment other than the last)."""
    import pyarrow as pa

    path = Path(path)
    if path.is_dir():
        return _read_dir(path)
    if not path.exists():
        raise RecordingError(f"{path}: no such file or directory")
    try:
        table = _read_part(path)
    except RecordingError:
        raise
    except (pa.ArrowException, OSError) as exc:
        raise RecordingError(f"{path}: not a recording, or truncated ({_one_line(exc)})") from None
    meta = table.schema.metadata or {}
    gaps: list[dict[str, Any]] = []
    info: dict[str, Any] = {"format": RECORDING_FORMAT}
    if META_KEY in meta:
        try:
            doc = json.loads(meta[META_KEY])
            gaps, info = list(doc.get("gaps", [])), dict(doc.get("info", info))
        except (ValueError, AttributeError, TypeError):
            raise RecordingError(f"{path}: damaged recording metadata") from None
    return Recording(path, _tagged(table), gaps=gaps, info=info, parts=1)


def _read_dir(path: Path) -> Recording:
    import pyarrow as pa

    try:
        info = json.loads((path / MANIFEST).read_text())
        if info.get("format") != RECORDING_FORMAT:
            raise ValueError(info.get("format"))
    except (OSError, ValueError, AttributeError):
        raise RecordingError(
            f"{path}: not a recording (no {MANIFEST} with format {RECORDING_FORMAT})"
        ) from None
    parts = sorted((p for p in path.iterdir() if _PART.fullmatch(p.name)), key=lambda p: p.name)
    tables: list[pa.Table] = []
    torn = 0
    for i, part in enumerate(parts):
        try:
            tables.append(_read_part(part))
        except (pa.ArrowException, OSError) as exc:
            if i == len(parts) - 1:
                torn += 1  # a damaged tail: what was flushed before it is intact
                continue
            raise RecordingError(f"{part}: truncated segment ({_one_line(exc)})") from None
    gaps: list[dict[str, Any]] = []
    for gap_file in sorted(path.glob("_gaps-*.json")):
        try:
            gaps.extend(json.loads(gap_file.read_text()))
        except (OSError, ValueError):
            raise RecordingError(f"{gap_file}: damaged gap records") from None
    table = pa.concat_tables(tables, promote_options="permissive") if tables else _empty()
    return Recording(path, _tagged(table), gaps=gaps, info=info, parts=len(tables), torn_parts=torn)


def _empty() -> pa.Table:
    import tempfile

    import pyarrow.parquet as pq

    from ..frame import EventFrame

    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "empty.parquet"
        EventFrame(max_rows=1).to_parquet(target)
        return pq.read_table(str(target))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def probe(path: str | Path) -> None:
    """A cheap check that ``path`` looks like a recording (a directory with the manifest, or a
    file with Parquet's magic at both ends: a truncated file lacks the trailing one); raises
    :class:`RecordingError` (one line) otherwise.  :func:`read_recording` checks fully."""
    path = Path(path)
    if path.is_dir():
        if not (path / MANIFEST).is_file():
            raise RecordingError(f"{path}: not a recording (no {MANIFEST})")
        return
    try:
        with open(path, "rb") as f:
            head = f.read(4)
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 4))
            tail = f.read(4)
    except OSError as exc:
        raise RecordingError(f"{path}: {exc.strerror or exc}") from None
    if head != b"PAR1":
        raise RecordingError(f"{path}: not a recording (not a Parquet file)")
    if size < 12 or tail != b"PAR1":
        raise RecordingError(f"{path}: truncated recording (no Parquet footer)")


def compact(src: str | Path, dst: str | Path) -> Path:
    """Write recording ``src`` (directory or file) as one Parquet file ``dst`` (gaps and
    manifest in its schema metadata), atomically; returns ``dst``.  ``dst`` is readable by
    :func:`read_recording`, ``EventFrame.from_parquet`` and ``pandas.read_parquet``."""
    import pyarrow.parquet as pq

    rec = read_recording(src)
    dst = Path(dst)
    doc = json.dumps({"info": rec.info, "gaps": rec.gaps}).encode()
    table = _tagged(rec.table, {META_KEY: doc})
    tmp = dst.with_name("." + dst.name + ".tmp")
    try:
        pq.write_table(table, str(tmp), compression="zstd")
        os.replace(tmp, dst)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise RecordingError(f"cannot write {dst}: {exc.strerror or exc}") from None
    return dst
