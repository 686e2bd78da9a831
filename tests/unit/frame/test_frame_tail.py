"""EventFrame.tail_columns / match_ids / row: what the monitor reads per tick (numpy columns of
the rows added since a total, with the counters read together), the ids a search selects, one
row by id with its updates applied."""

from __future__ import annotations

from typing import Any

import numpy as np

from wsnotebook.frame import EventFrame


def events(n: int, start: int = 1) -> list[dict[str, Any]]:
    return [
        {
            "id": i,
            "timestamp": 1_000.0 + i,
            "source_app": f"app{i % 2}",
            "session_id": "s",
            "hook_event_type": "T",
            "payload": {"n": i},
            "summary": "sum" if i % 5 == 0 else None,
        }
        for i in range(start, start + n)
    ]


def test_tail_columns_since_a_total_and_older_pages() -> None:
    frame = EventFrame(chunk_rows=4)  # rows span frozen chunks and the open one
    frame.extend(events(10))
    tail = frame.tail_columns(100, since=7)
    assert list(tail.id) == [8, 9, 10] and tail.total == 10 and tail.retained == 10
    assert [tail.values["source_app"][c] for c in tail.codes["source_app"]] == [
        "app0",
        "app1",
        "app0",
    ]
    assert tail.payload_json == [b'{"n":8}', b'{"n":9}', b'{"n":10}']
    assert tail.summary == [None, None, "sum"]
    assert list(frame.tail_columns(3, skip=4).id) == [4, 5, 6]
    assert len(frame.tail_columns(5, since=10)) == 0
    assert frame.tail_columns(2, payload=False).payload_json is None


def test_counters_come_with_the_rows_after_eviction_and_clear() -> None:
    frame = EventFrame(max_rows=8, chunk_rows=4)
    frame.extend(events(12))
    tail = frame.tail_columns(100)
    assert tail.retained == len(tail) == 8 and tail.dropped == 4 and tail.total == 12
    frame.clear()
    assert frame.tail_columns(100, since=12).retained == 0


def test_match_ids_and_row() -> None:
    frame = EventFrame(chunk_rows=4)
    frame.extend(events(20))
    assert list(frame.match_ids(search='"n":1\\d')) == list(range(10, 20))
    assert list(frame.match_ids(search='"n":1', scan=5)) == [16, 17, 18, 19]
    assert frame.match_ids(search="nothing").dtype == np.int64
    row = frame.row(7)
    assert row is not None and row["payload"] == {"n": 7} and row["source_app"] == "app1"
    assert frame.row(999) is None


def test_payload_heads_cut_each_row_across_chunks_and_skip_masked_rows() -> None:
    frame = EventFrame(chunk_rows=4)  # frozen (compressed) chunks and the open one
    evs = events(10)
    evs[5]["payload"] = {"big": "b" * 3000}
    frame.extend(evs)
    tail = frame.tail_columns(100, since=2)
    full = tail.payload_json
    assert full is not None and len(full) == 8 and full[3] == b'{"big":"' + b"b" * 3000 + b'"}'
    assert tail.payload_heads(6) == [p[:6] for p in full]
    assert tail.payload_heads(10_000) == full
    mask = np.array([i % 3 == 0 for i in range(8)])
    assert tail.payload_heads(8, mask) == [p[:8] for p, m in zip(full, mask) if m]
    assert tail.payload_heads(8, np.zeros(8, dtype=bool)) == []
    assert frame.tail_columns(0).payload_heads(8) == []
    # older pages (``skip``) and a tail that is all in the open chunk
    assert frame.tail_columns(3, skip=4).payload_heads(4) == [b'{"n"', b'{"n"', b'{"bi']
    assert frame.tail_columns(2).payload_heads(100) == [b'{"n":9}', b'{"n":10}']


def test_payload_head_runs_copy_adjacent_rows_in_one_slice() -> None:
    frame = EventFrame(chunk_rows=8)
    evs = events(14)
    evs[10]["payload"] = {"big": "b" * 100}  # cut at k: its run ends with it
    frame.extend(evs)  # rows 1-8 frozen, 9-14 open
    tail = frame.tail_columns(100)
    full = tail.payload_json
    assert full is not None
    parts, start, length = tail.payload_head_runs(20)
    blob = b"".join(parts)
    assert [blob[s : s + n] for s, n in zip(start, length)] == [p[:20] for p in full]
    assert len(parts) == 3  # the frozen chunk's rows; 9-11 (11 cut); 12-14
    assert parts[0] == b"\n,\n".join(full[:8])  # separators copied with the run
    mask = np.ones(14, dtype=bool)
    mask[[2, 12]] = False  # a row left out splits its run
    parts, start, length = tail.payload_head_runs(20, mask)
    blob = b"".join(parts)
    assert len(parts) == 5 and len(start) == 12
    assert [blob[s : s + n] for s, n in zip(start, length)] == [
        p[:20] for p, m in zip(full, mask) if m
    ]


def test_the_newest_frozen_chunk_serves_its_last_rows_without_decompressing(
    monkeypatch: Any,
) -> None:
    """A monitor's tick reads the rows added since the last tick; when a chunk froze in
    between, those rows are at the end of the newest frozen chunk, which keeps its last
    ``RECENT_BYTES`` uncompressed until the next chunk freezes (at most one per frame)."""
    from wsnotebook.frame import chunks

    decompressed: list[int] = []
    real = chunks.Codec.decompress

    def counting(self: Any, data: bytes, size: int) -> bytes:
        decompressed.append(size)
        return real(self, data, size)

    monkeypatch.setattr(chunks.Codec, "decompress", counting)
    monkeypatch.setattr(chunks, "RECENT_BYTES", 40)  # the last ~4 rows' text of a chunk
    frame = EventFrame(chunk_rows=8, compress="zlib")
    frame.extend(events(14))  # rows 1-8 frozen (compressed), 9-14 open
    first = frame._store.frozen[-1]
    assert first.recent is not None and first.recent_at > 0 and len(first.recent) == 40
    heads = frame.tail_columns(100, since=6).payload_heads(20)  # rows 7-14: in the tail
    assert heads == [f'{{"n":{i}}}'.encode() for i in range(7, 15)]
    assert decompressed == []
    heads = frame.tail_columns(100, since=1).payload_heads(20)  # rows 2-14: before the tail
    assert heads == [f'{{"n":{i}}}'.encode() for i in range(2, 15)] and len(decompressed) == 1
    frame.extend(events(4, start=15))  # rows 9-16 freeze: the first chunk drops its tail
    assert first.recent is None and frame._store.frozen[-1].recent is not None
    assert sum(c.recent is not None for c in frame._store.frozen) == 1
    decompressed.clear()
    assert frame.tail_columns(100, since=7).payload_heads(20)[0] == b'{"n":8}'
    assert len(decompressed) == 2  # row 8 (older chunk) and 9-12 (before the tail): as before
    decompressed.clear()
    assert len(frame.tail_columns(100, since=14).payload_heads(20)) == 4  # 15-16 frozen tail
    assert decompressed == []
