"""EventFrame analysis: throughput, latency, numeric columns (wsnotebook.frame.analysis)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from _helpers import T0_MS, make_hook_event

from wsnotebook.errors import ConfigError
from wsnotebook.frame import EventFrame
from wsnotebook.frame.analysis import MAX_THROUGHPUT_BINS

UTC_NS = "datetime64[ns, UTC]"


# The shared valid hook event (tests/_helpers.py): stamps server +1.5 ms, client +4 ms.
ev = make_hook_event


def _timed_events(rates: dict[str, int], seconds: int) -> list[dict[str, Any]]:
    out = []
    i = 0
    for sec in range(seconds):
        for kind, n in rates.items():
            for j in range(n):
                i += 1
                out.append(ev(i, hook_event_type=kind, timestamp=T0_MS + sec * 1000 + j))
    return out


def test_throughput_counts_events_per_second_with_zero_bins() -> None:
    frame = EventFrame()
    events = _timed_events({"A": 3, "B": 1}, 4)
    events.append(ev(999, hook_event_type="A", timestamp=T0_MS + 6000))
    frame.extend(events)
    series = frame.throughput("1s")
    assert series.tolist() == [4.0, 4.0, 4.0, 4.0, 0.0, 0.0, 1.0]
    assert str(series.index.dtype) == UTC_NS
    assert series.index[0] == pd.Timestamp(int(T0_MS), unit="ms", tz="UTC")
    assert frame.throughput("2s").tolist() == [4.0, 4.0, 0.0, 0.5]  # events per second
    # the window covers whole bins ending with the newest one: always window/freq bins
    assert frame.throughput("1s", window="3s").tolist() == [0.0, 0.0, 1.0]
    assert frame.throughput("1s", window="10s").tolist() == [0.0] * 3 + series.tolist()
    by = frame.throughput("1s", by="hook_event_type")
    assert by["A"].tolist() == [3.0, 3.0, 3.0, 3.0, 0.0, 0.0, 1.0]
    assert by["B"].tolist()[:4] == [1.0] * 4
    with pytest.raises(ConfigError):
        frame.throughput("0s")
    with pytest.raises(ConfigError):
        frame.throughput(by="payload")


def test_throughput_of_empty_frame_is_empty() -> None:
    assert len(EventFrame().throughput()) == 0
    assert len(EventFrame().throughput(by="source_app")) == 0


def test_latency_summarises_the_three_latency_columns() -> None:
    frame = EventFrame()
    frame.extend(
        [ev(i, client_received=T0_MS + i + i, server_received=T0_MS + i + 1) for i in range(1, 101)]
    )
    frame.append({k: v for k, v in ev(500).items() if k != "client_received"})
    lat = frame.latency((0.5, 0.99))
    assert list(lat.index) == ["latency_ms", "ingest_ms", "transit_ms"]
    assert list(lat.columns) == ["count", "mean", "min", "p50", "p99", "max"]
    assert lat.loc["latency_ms", "count"] == 100 and lat.loc["ingest_ms", "count"] == 101
    assert lat.loc["latency_ms", "min"] == 1.0 and lat.loc["latency_ms", "max"] == 100.0
    assert lat.loc["latency_ms", "p50"] == pytest.approx(50.5)
    assert lat.loc["ingest_ms", "mean"] == pytest.approx((100 * 1.0 + 1.5) / 101)
    assert lat.loc["transit_ms", "max"] == 99.0
    empty = EventFrame().latency()
    assert (empty["count"] == 0).all() and empty["mean"].isna().all()
    with pytest.raises(ConfigError):
        frame.latency((1.5,))


def _reference_throughput(
    stamps: list[Any], step_ms: float, window_bins: int | None, end: float | None
) -> dict[float, int]:
    """Rows per bin, plainly: bins are floor(timestamp / step); ``end`` keeps bins up to end's;
    a window keeps its last ``window_bins`` bins (empty bins included, as zeros)."""
    import math
    from collections import Counter

    bins = [math.floor(t / step_ms) for t in stamps if t is not None and math.isfinite(t)]
    if end is not None:
        bins = [b for b in bins if b <= math.floor(end / step_ms)]
    if not bins:
        return {}
    last = math.floor(end / step_ms) if end is not None else max(bins)
    first = last - window_bins + 1 if window_bins is not None else min(bins)
    counts = Counter(b for b in bins if b >= first)
    return {float(b): counts.get(b, 0) for b in range(first, last + 1)}


def test_throughput_matches_a_plain_count_across_chunks_evictions_and_cached_bins() -> None:
    """throughput() caches each frozen chunk's bin counts; whatever the chunking, eviction
    (a partly evicted oldest chunk), disorder, missing stamps or freq changes (the cache holds
    one step), it equals a plain per-row count."""
    rng = np.random.default_rng(7)
    frame = EventFrame(max_rows=500, chunk_rows=64)
    stamps: list[Any] = []
    for i in range(1, 1401):
        t: Any = T0_MS + i * 7 + float(rng.integers(-900, 900))  # out of order near edges
        if i % 97 == 0:
            t = None
        elif i % 89 == 0:
            t = T0_MS + 1000 * int(rng.integers(0, 9))  # exactly on a bin edge
        frame.append(ev(i, timestamp=t))
        stamps.append(t)
        if i % 173 == 0:
            kept = stamps[-len(frame) :]
            for freq, step_ms in (("1s", 1000.0), ("250ms", 250.0), ("1s", 1000.0)):
                for window, window_bins in ((None, None), ("3s", int(3000 // step_ms))):
                    for end in (None, T0_MS + i * 7 - 2000.0):
                        got = frame.throughput(freq, window=window, end=end)
                        want = _reference_throughput(kept, step_ms, window_bins, end)
                        per_s = 1000.0 / step_ms
                        assert got.tolist() == [n * per_s for n in want.values()], (i, freq)
                        assert [ts.value // 1_000_000 for ts in got.index] == [
                            b * step_ms for b in want
                        ]
    frozen = frame._store.frozen
    assert len(frozen) > 2
    assert all(chunk.bins is not None for chunk in list(frozen)[1:])  # whole chunks: cached


def test_throughput_refuses_more_bins_than_the_bound_and_points_to_window() -> None:
    """One stray old timestamp next to current ones used to allocate one bin per second since
    1970 (12.7 GiB); beyond MAX_THROUGHPUT_BINS it is a ConfigError naming the count."""
    frame = EventFrame()
    frame.extend([ev(1, timestamp=0), ev(2, timestamp=T0_MS), ev(3, timestamp=T0_MS + 2500)])
    with pytest.raises(ConfigError, match=r"1,760,000,003 bins .*MAX_THROUGHPUT_BINS.*window="):
        frame.throughput("1s")
    assert frame.throughput("1s", window="5s").tolist() == [0, 0, 1, 0, 1]
    with pytest.raises(ConfigError, match="bins"):
        frame.throughput("1ms", window="24h")  # 86.4M bins even with a window
    frame.extend([ev(4, timestamp=1e300)])
    with pytest.raises(ConfigError, match=r"1e\+297 bins"):
        frame.throughput("1s")
    few = EventFrame()
    few.extend(
        [
            ev(1, timestamp=T0_MS),
            ev(2, timestamp=T0_MS + (MAX_THROUGHPUT_BINS - 1) * 1000),
        ]
    )
    assert len(few.throughput("1s")) == MAX_THROUGHPUT_BINS


def test_throughput_caches_only_dense_bin_counts() -> None:
    """About one row per bin (a slow stream) would cache ~16 B per row that stats() does not
    count: such chunks are recounted instead; dense ones keep their counts."""
    sparse = EventFrame(max_rows=1000, chunk_rows=200)
    sparse.extend([ev(i, timestamp=T0_MS + i * 1000) for i in range(1, 601)])  # 1 per second
    dense = EventFrame(max_rows=1000, chunk_rows=200)
    dense.extend([ev(i, timestamp=T0_MS + i) for i in range(1, 601)])  # 1 per millisecond
    for frame in (sparse, dense):
        assert frame.throughput("1s").sum() == 600
    assert all(chunk.bins is None for chunk in sparse._store.frozen)
    assert all(chunk.bins is not None for chunk in dense._store.frozen)
