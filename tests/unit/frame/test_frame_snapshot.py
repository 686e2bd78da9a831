"""EventFrame snapshots: the typed DataFrame of .df/snapshot() and what it shows
(wsnotebook.frame.snapshot)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from _helpers import T0_MS, make_hook_event

import wsnotebook.frame.categories as categories_module
from wsnotebook.errors import ConfigError
from wsnotebook.frame import EventFrame
from wsnotebook.frame.snapshot import build

UTC_NS = "datetime64[ns, UTC]"


# The shared valid hook event (tests/_helpers.py): stamps server +1.5 ms, client +4 ms.
ev = make_hook_event


def ids_of(df: pd.DataFrame) -> list[int]:
    return df["id"].tolist()


def test_empty_frame_has_typed_empty_columns() -> None:
    frame = EventFrame()
    df = frame.df
    assert len(frame) == 0 and len(df) == 0
    assert df["id"].dtype == np.int64
    assert str(df["timestamp"].dtype) == UTC_NS
    assert isinstance(df["source_app"].dtype, pd.CategoricalDtype)
    assert df["latency_ms"].dtype == np.float64
    assert list(df.columns[-5:]) == [
        "server_received",
        "client_received",
        "latency_ms",
        "ingest_ms",
        "transit_ms",
    ]
    assert len(frame.tail(5)) == 0 and len(frame.filter(search="x")) == 0


def test_df_has_real_dtypes_and_values() -> None:
    frame = EventFrame()
    frame.extend([ev(1, summary="s1", model_name="m", chat=[{"role": "user"}]), ev(2)])
    frame.append({k: v for k, v in ev(3).items() if k not in ("id", "client_received")})
    df = frame.df
    assert df["id"].dtype == np.int64 and ids_of(df) == [1, 2, -1]
    for col in ("timestamp", "server_received", "client_received"):
        assert str(df[col].dtype) == UTC_NS
    for col in ("source_app", "session_id", "hook_event_type"):
        assert isinstance(df[col].dtype, pd.CategoricalDtype)
    for col in ("payload", "summary", "model_name", "chat"):
        assert df[col].dtype == object
    assert df["payload"][0] == {"tool_name": "Bash", "tool_input": {"command": "echo 1"}, "n": 1}
    assert df["summary"].tolist() == ["s1", None, None]
    assert df["model_name"].tolist() == ["m", None, None]
    assert df["chat"][0] == [{"role": "user"}] and df["chat"][1] is None
    assert df["timestamp"][0] == pd.Timestamp(int(T0_MS) + 1, unit="ms", tz="UTC")
    assert df["latency_ms"].tolist()[:2] == [4.0, 4.0]
    assert df["ingest_ms"].tolist()[:2] == [1.5, 1.5]
    assert df["transit_ms"].tolist()[:2] == [2.5, 2.5]
    assert pd.isna(df["client_received"][2]) and np.isnan(df["latency_ms"][2])
    assert df["ingest_ms"][2] == 1.5


def test_sub_millisecond_timestamps_convert_exactly() -> None:
    frame = EventFrame()
    frame.append(ev(1, timestamp=1_760_000_000_123.25))
    stamp = frame.df["timestamp"][0]
    assert stamp.value == 1_760_000_000_123_250_000


def test_unknown_top_level_fields_become_object_columns() -> None:
    frame = EventFrame()
    frame.extend([ev(1, region="eu", nested={"a": [1, 2]}), ev(2), ev(3, region="us")])
    frame.append(ev(4, region="ap"))
    df = frame.df
    assert df["region"].tolist() == ["eu", None, "us", "ap"]
    assert df["nested"][0] == {"a": [1, 2]} and df["nested"][1] is None
    assert df["region"].dtype == object


def test_payload_dicts_in_df_are_copies() -> None:
    frame = EventFrame()
    frame.append(ev(1))
    frame.df["payload"][0]["n"] = "mutated"
    assert frame.df["payload"][0]["n"] == 1


@pytest.fixture
def compact_at_8(monkeypatch: pytest.MonkeyPatch) -> None:
    """Category columns are checked for dead values from 8 values on (65536 by default)."""
    monkeypatch.setattr(categories_module, "COMPACT_MIN", 8)


def test_a_snapshot_taken_before_a_compaction_reads_its_own_values(compact_at_8: None) -> None:
    frame = EventFrame(max_rows=8, chunk_rows=4)
    for i in range(1, 13):  # one by one: checked at 8 values (all live), next check at 16
        frame.append(ev(i, session_id=f"s{i}"))
    pieces, values = frame._pieces()  # what .df / filter hold between the lock and building
    before = build(pieces, values)
    assert before["session_id"].tolist() == [f"s{i}" for i in range(5, 13)]
    for i in range(13, 17):
        frame.append(ev(i, session_id=f"s{i}"))
    # At 16 values, s1..s8 are dead: compacted.  The retained chunk of s9..s12 was re-coded;
    # the snapshot above still holds that chunk with its old codes and the old values.
    assert frame._store.cats[1].values == [f"s{i}" for i in range(9, 17)]
    pd.testing.assert_frame_equal(build(pieces, values), before)
    assert frame.df["session_id"].tolist() == [f"s{i}" for i in range(9, 17)]


def test_snapshot_can_keep_payload_as_json_text_or_leave_it_out() -> None:
    import orjson

    frame = EventFrame(max_rows=10, chunk_rows=3)
    events = [ev(i, payload={"i": i, "s": "é\n"}) for i in range(1, 9)]
    frame.extend(events)
    as_json = frame.snapshot(payload="json")
    assert as_json["payload"].tolist() == [orjson.dumps(e["payload"]).decode() for e in events]
    assert as_json["payload"].dtype == object
    without = frame.snapshot(payload="none")
    assert "payload" not in without.columns
    pd.testing.assert_frame_equal(without, frame.df.drop(columns=["payload"]))
    pd.testing.assert_frame_equal(frame.snapshot(), frame.df)
    with pytest.raises(ConfigError):
        frame.snapshot(payload="xml")


def test_snapshots_during_eviction_are_contiguous_runs() -> None:
    """One writer appends ids 1..N in order into a small frame; every snapshot taken meanwhile
    must be a contiguous run of ids ending no earlier than the previous snapshot's end."""
    total = 20_000
    frame = EventFrame(max_rows=700, chunk_rows=64)
    done = threading.Event()

    def write() -> None:
        for b in range(1, total + 1, 100):
            frame.extend([ev(i) for i in range(b, b + 100)])
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    last_end = 0
    checks = 0
    while not done.is_set() or checks < 3:
        views = ((frame.df, 1), (frame.tail(50), 1), (frame.filter(source_app="app1", limit=20), 2))
        for df, step in views:  # app1 holds the odd ids
            ids = df["id"].tolist()
            if ids:
                assert ids == list(range(ids[0], ids[0] + step * len(ids), step))
                assert [p["n"] for p in df["payload"]] == ids
        ids = frame.df["id"].tolist()
        assert len(ids) <= 700
        if ids:
            assert ids[-1] >= last_end
            last_end = ids[-1]
        checks += 1
    writer.join(timeout=60)
    assert frame.df["id"].tolist() == list(range(total - 699, total + 1))
    assert frame.dropped == total - 700


def test_snapshot_of_the_open_chunk_follows_appends() -> None:
    frame = EventFrame(max_rows=100, chunk_rows=50)
    frame.extend([ev(1), ev(2)])
    assert ids_of(frame.df) == [1, 2] and ids_of(frame.tail(1)) == [2]
    frame.extend([ev(3)])
    assert ids_of(frame.df) == [1, 2, 3] and ids_of(frame.tail(1)) == [3]
    frame.append(ev(4))
    assert ids_of(frame.filter(source_app="app0")) == [2, 4]


def test_epochs_beyond_the_datetime64_range_show_as_nat_and_keep_their_numbers(
    tmp_path: Any,
) -> None:
    """int64 nanoseconds end in 2262: larger epochs (or 1e300) used to wrap around into
    plausible wrong dates (1680, 1906, 1970) with a numpy RuntimeWarning."""
    import warnings

    stamps = [9.2e12, 9.3e12, 1.7e15, 1e300, -1e13, T0_MS]
    frame = EventFrame()
    frame.extend(
        [ev(i, timestamp=t, server_received=t, client_received=t + 1) for i, t in enumerate(stamps)]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = frame.df
        table = frame.plain_table()
        tail = frame.tail(6)
    expected = [pd.Timestamp(9.2e12, unit="ms", tz="UTC"), pd.NaT, pd.NaT, pd.NaT, pd.NaT]
    expected.append(pd.Timestamp(T0_MS, unit="ms", tz="UTC"))
    for name in ("timestamp", "server_received"):
        assert df[name].tolist() == expected and tail[name].tolist() == expected
    assert table["timestamp"] == expected
    assert df["client_received"].isna().tolist() == [False, True, True, True, True, False]
    assert df["latency_ms"].tolist() == [1.0, 1.0, 1.0, 0.0, 1.0, 1.0]  # raw numbers
    assert frame.latency().loc["transit_ms", "count"] == 6
    pq = pytest.importorskip("pyarrow.parquet")
    frame.to_parquet(tmp_path / "t.parquet")
    assert pq.read_table(tmp_path / "t.parquet").column("timestamp").to_pylist() == stamps


def test_unknown_fields_named_like_computed_latency_columns_lose_in_df_but_are_kept(
    tmp_path: Any,
) -> None:
    """The computed ``latency_ms``/``ingest_ms``/``transit_ms`` win in ``.df`` (documented);
    the event's own values stay in Parquet's ``extra`` and come back with from_parquet."""
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    own = {"latency_ms": 5, "ingest_ms": 6, "transit_ms": 7, "custom": 1}
    frame = EventFrame()
    frame.extend([ev(1, **own), ev(2)])
    df = frame.df
    assert df["latency_ms"].tolist() == [4.0, 4.0] and df["ingest_ms"].tolist() == [1.5, 1.5]
    assert df["transit_ms"].tolist() == [2.5, 2.5] and df["custom"].tolist() == [1, None]
    doc = " ".join((EventFrame.df.__doc__ or "").split())
    assert "``transit_ms`` does not get a column here, the computed column of that name wins" in doc
    frame.to_parquet(tmp_path / "e.parquet")
    extra = pq.read_table(tmp_path / "e.parquet").column("extra").to_pylist()
    assert [None if e is None else orjson.loads(e) for e in extra] == [own, None]
    again = EventFrame.from_parquet(tmp_path / "e.parquet")
    again.to_parquet(tmp_path / "again.parquet")
    assert pq.read_table(tmp_path / "again.parquet").column("extra").to_pylist() == extra
