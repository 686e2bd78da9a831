"""Analysis: numeric summaries of the retained rows without building a DataFrame of them:
``numeric_columns``, ``throughput`` (events per second in time bins) and ``latency``
(percentiles of the three latency columns) (:class:`AnalysisMixin`, mixed into
:class:`~.frame.EventFrame`).

Only numeric columns are copied under the frame's lock (never the open chunk's payload text);
the arithmetic runs outside it.  A frozen chunk's throughput bin counts are cached on the chunk
(immutable, so the cache stays valid) when dense: a live chart over 200k rows then costs ~0.3
instead of ~3.5 ms a second of GIL.  Bound: at most :data:`MAX_THROUGHPUT_BINS` bins per call
(beyond: :class:`~wsnotebook.errors.ConfigError` pointing to ``window=``).  pandas is imported
only by the methods that return pandas objects.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigError
from .chunks import CAT_COLUMNS, Chunk, concat
from .ingest import NAN
from .snapshot import ms_to_datetime
from .storage import ChunkStore

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MAX_THROUGHPUT_BINS", "AnalysisMixin"]

#: Most bins :meth:`AnalysisMixin.throughput` builds (beyond: ``ConfigError``, use ``window=``).
MAX_THROUGHPUT_BINS = 100_000


class AnalysisMixin:
    """Throughput and latency of the retained rows; needs the frame's ``_lock`` and
    ``_store``."""

    _lock: threading.RLock
    _store: ChunkStore

    def numeric_columns(
        self, names: Sequence[str], *, last: int | None = None
    ) -> tuple[dict[str, np.ndarray], list[list[str]]]:
        """The numeric columns ``names`` of the retained rows, oldest first, without building a
        DataFrame (the monitor's charts call this every tick), and the category values.

        ``names``: any of ``timestamp``, ``server_received``, ``client_received`` (float64
        epoch ms, NaN when absent) and ``source_app``, ``session_id``, ``hook_event_type``,
        ``model_name`` (int32 codes, -1 when absent, indexing the matching list of the returned
        category values: ``values[CAT_COLUMNS.index(name)]``).  ``last``: only the newest
        ``last`` rows.  Columns and values are taken together under the lock;
        no payload text is copied."""
        with self._lock:
            if last is None:
                pieces, values = self._store.pieces(text=False)
            else:
                pieces, values = self._store.tail_pieces(last, text=False)
        out: dict[str, np.ndarray] = {}
        for name in names:
            arrays = [_numeric_column(c, name)[sl] for c, sl in pieces]
            dtype = np.int32 if name in CAT_COLUMNS else np.float64
            out[name] = np.concatenate(arrays) if arrays else np.empty(0, dtype=dtype)
        return out, values

    def throughput(
        self,
        freq: str | pd.Timedelta = "1s",
        *,
        window: str | pd.Timedelta | None = None,
        by: str | None = None,
        end: float | None = None,
    ) -> pd.Series | pd.DataFrame:
        """Events per second in bins of ``freq``, by event ``timestamp`` (rows without one are
        skipped).  ``window`` keeps only the last ``ceil(window / freq)`` bins, ending with the
        bin of the newest timestamp (a fixed number of bins, handy for live charts).  ``end``
        (epoch ms, e.g. ``wsnotebook.events.now_ms()``) makes the bins end at that time
        instead and leaves later timestamps out: a live chart is then not moved into the future
        by one event with a wrong clock (or microseconds sent as milliseconds).
        ``by`` (one of the category columns) gives a DataFrame with one column per value.
        Empty bins count zero; the index holds the bin starts (UTC).  A row's bin is
        ``floor(timestamp / freq)``, and ``end`` and ``window`` select whole bins.  Cost: without
        ``by``, O(rows of the open chunk) per call plus a small sum per frozen chunk (whose
        counts are computed once per ``freq`` and kept with it); with ``by``, O(rows).

        At most ``MAX_THROUGHPUT_BINS`` (100,000) bins: without ``window`` there is one bin per
        ``freq`` from the oldest to the newest timestamp, so a single stray old timestamp (say
        0) next to current ones would need billions; beyond the bound a
        :class:`~wsnotebook.errors.ConfigError` says how many bins it would take; pass
        ``window`` (or a larger ``freq``)."""
        import pandas as pd

        try:
            step = pd.Timedelta(freq)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"throughput: invalid freq {freq!r}: {exc}") from None
        if step <= pd.Timedelta(0):
            raise ConfigError(f"throughput: freq must be positive, got {freq!r}")
        if by is not None and by not in CAT_COLUMNS:
            raise ConfigError(f"throughput: by must be one of {', '.join(CAT_COLUMNS)}")
        step_ms = step.total_seconds() * 1000.0
        per_s = 1000.0 / step_ms
        if end is not None and (
            isinstance(end, bool) or not isinstance(end, (int, float)) or not math.isfinite(end)
        ):
            raise ConfigError(f"throughput: end must be a finite epoch in ms, got {end!r}")
        # Rows are binned by floor(timestamp / freq) and every condition below is on those
        # bins, so a row is counted in exactly the bin it falls in.  Without ``by``, each
        # frozen chunk's bin counts are computed once and cached on the chunk (chunks are
        # immutable): a live chart over 200k rows costs ~0.3 instead of ~3.5 ms a second, time
        # during which a worker thread held the GIL the kernel's cells were waiting for.
        codes: np.ndarray | None = None
        if by is None:
            with self._lock:
                pieces, _ = self._store.pieces(text=False)
            parts = [_bin_counts(chunk, sl, step_ms) for chunk, sl in pieces]
            bins = concat([b for b, _ in parts], np.float64)
            weights = concat([w for _, w in parts], np.int64)
        else:
            cols, cat_values = self.numeric_columns(["timestamp", by])
            ts = cols["timestamp"]
            ok = np.isfinite(ts)
            bins = np.floor(ts[ok] / step_ms)
            codes = cols[by][ok]
            weights = np.ones(len(bins), dtype=np.int64)
        if end is not None:
            keep = bins <= math.floor(end / step_ms)  # up to the end of end's bin
            bins, weights = bins[keep], weights[keep]
            codes = None if codes is None else codes[keep]
        if not len(bins):
            index = pd.DatetimeIndex([], dtype="datetime64[ns, UTC]", name="time")
            if by:
                return pd.DataFrame(index=index, dtype=np.float64)
            return pd.Series([], index=index, dtype=np.float64, name="events_per_s")
        last = float(math.floor(end / step_ms)) if end is not None else float(bins.max())
        if window is not None:
            try:
                span = pd.Timedelta(window)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"throughput: invalid window {window!r}: {exc}") from None
            if span <= pd.Timedelta(0):
                raise ConfigError(f"throughput: window must be positive, got {window!r}")
            first = last - max(1, math.ceil(span.total_seconds() * 1000.0 / step_ms)) + 1
            keep = bins >= first
            bins, weights = bins[keep], weights[keep]
            codes = None if codes is None else codes[keep]
        else:
            first = float(bins.min())
        needed = float(last - first + 1)
        if needed > MAX_THROUGHPUT_BINS:
            count = f"{needed:,.0f}" if needed < 1e15 else f"{needed:.3g}"
            if window is None:
                where = "oldest timestamp"
                hint = "window= (e.g. window='10min') to count only the newest bins"
            else:
                where = "window start"
                hint = "a shorter window"
            raise ConfigError(
                f"throughput: {count} bins of {freq!r} would be needed from the {where} to the "
                f"newest, more than MAX_THROUGHPUT_BINS ({MAX_THROUGHPUT_BINS:,}); "
                f"pass {hint} or a larger freq"
            )
        offsets = (bins - first).astype(np.int64)
        nbins = int(last - first) + 1
        index = ms_to_datetime((first + np.arange(nbins)) * step_ms)
        index.name = "time"
        if codes is None:
            counts = np.bincount(offsets, weights=weights, minlength=nbins) * per_s
            return pd.Series(counts, index=index, name="events_per_s")
        values = cat_values[CAT_COLUMNS.index(by)]
        data: dict[str, np.ndarray] = {}
        for code in np.unique(codes):
            label = values[code] if code >= 0 else "(none)"
            data[label] = np.bincount(offsets[codes == code], minlength=nbins) * per_s
        return pd.DataFrame(data, index=index)

    def latency(self, percentiles: Sequence[float] = (0.5, 0.9, 0.99, 0.999)) -> pd.DataFrame:
        """Latency statistics in ms.  Rows ``latency_ms`` (client_received - timestamp),
        ``ingest_ms`` (server_received - timestamp), ``transit_ms`` (client_received -
        server_received); columns ``count``, ``mean``, ``min``, ``p50``..., ``max`` (NaN when
        no row has both stamps).  Percentiles use linear interpolation."""
        import pandas as pd

        for q in percentiles:
            if not 0 <= q <= 1:
                raise ConfigError(f"latency: percentiles must be in [0, 1], got {q}")
        cols, _ = self.numeric_columns(["timestamp", "server_received", "client_received"])
        ts, sr, cr = cols["timestamp"], cols["server_received"], cols["client_received"]
        series = {"latency_ms": cr - ts, "ingest_ms": sr - ts, "transit_ms": cr - sr}
        labels = [f"p{_pname(q)}" for q in percentiles]
        rows = []
        for values in series.values():
            v = values[np.isfinite(values)]
            if len(v):
                pct = np.percentile(v, [q * 100 for q in percentiles]) if percentiles else []
                rows.append([len(v), v.mean(), v.min(), *pct, v.max()])
            else:
                rows.append([0, *([NAN] * (len(labels) + 3))])
        out = pd.DataFrame(
            rows, index=list(series), columns=["count", "mean", "min", *labels, "max"]
        )
        out["count"] = out["count"].astype(np.int64)
        return out


def _pname(q: float) -> str:
    return f"{q * 100:.3f}".rstrip("0").rstrip(".")


def _bin_counts(
    chunk: Chunk, sl: slice | np.ndarray, step_ms: float
) -> tuple[np.ndarray, np.ndarray]:
    """The distinct bins ``floor(timestamp / step_ms)`` (float64, ascending) of the piece's rows
    with a finite timestamp, and how many rows each holds.  A whole chunk's result is cached on
    it when dense (at most one entry per 16 rows; one step at a time: the last one asked for);
    a part of a chunk (the oldest, partly evicted) is counted afresh."""
    whole = isinstance(sl, slice) and sl.indices(chunk.n) == (0, chunk.n, 1)
    cached = chunk.bins  # read once: another thread may store another step meanwhile
    if whole and cached is not None and cached[0] == step_ms:
        return cached[1], cached[2]
    ts = chunk.ts[sl]
    b = np.floor(ts[np.isfinite(ts)] / step_ms)
    if len(b) > 1 and not (b[1:] >= b[:-1]).all():  # arrival order is nearly time order
        b.sort()
    if len(b):
        starts = np.flatnonzero(np.concatenate(([True], b[1:] != b[:-1])))
        counts = np.diff(np.append(starts, len(b)))
        b = b[starts]
    else:
        counts = np.empty(0, dtype=np.int64)
    if whole and len(b) <= max(64, chunk.n // 16):
        # Dense counts only: a slow stream (about one row per bin) would cache ~16 B per row,
        # memory stats() does not count, to save a recount that is cheap at that rate.
        chunk.bins = (step_ms, b, counts)
    return b, counts


def _numeric_column(chunk: Chunk, name: str) -> np.ndarray:
    if name in CAT_COLUMNS:
        return chunk.cats[CAT_COLUMNS.index(name)]
    attr = {"timestamp": "ts", "server_received": "sr", "client_received": "cr"}[name]
    arr: np.ndarray = getattr(chunk, attr)
    return arr
