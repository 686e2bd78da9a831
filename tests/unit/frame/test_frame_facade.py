"""EventFrame facade: counters, version, clear, gap records, subscribers, threads, stats and
method arguments (wsnotebook.frame.frame, .args)."""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _helpers import T0_MS, make_hook_event

from wsnotebook.errors import ConfigError
from wsnotebook.frame import EventFrame
from wsnotebook.frame.frame import MAX_GAPS

UTC_NS = "datetime64[ns, UTC]"


# The shared valid hook event (tests/_helpers.py): stamps server +1.5 ms, client +4 ms.
ev = make_hook_event


def ids_of(df: pd.DataFrame) -> list[int]:
    return df["id"].tolist()


def test_ev_is_the_shared_helper_behind_the_hook_event_fixture(hook_event):
    """No private copy of the event builder here: the conftest fixture and this module use the
    one in tests/_helpers.py."""
    assert ev is make_hook_event
    assert hook_event is ev
    e = ev(5, summary="s")
    assert e["timestamp"] == T0_MS + 5 and e["client_received"] - e["server_received"] == 2.5
    assert e["summary"] == "s"


def test_clear_drops_rows_but_keeps_counters_and_ids() -> None:
    frame = EventFrame()
    frame.extend([ev(1), ev(2)])
    frame.mark_gap(3, 4, "evicted")
    version = frame.version
    frame.clear()
    assert len(frame) == 0 and frame.total == 2 and frame.version > version
    assert len(frame.gaps) == 0 and frame.categories("source_app") == []
    assert frame.append(ev(2)) is False and frame.append(ev(3)) is True


def test_version_bumps_on_every_change() -> None:
    frame = EventFrame()
    seen = [frame.version]
    for action in (
        lambda: frame.append(ev(1)),
        lambda: frame.extend([ev(2)]),
        lambda: frame.append(ev(2)),  # duplicate: counted, so a change
        lambda: frame.mark_gap(5, 6, "x"),
        frame.clear,
    ):
        action()
        seen.append(frame.version)
    assert seen == sorted(set(seen))


def test_gaps_are_recorded_as_a_typed_dataframe() -> None:
    frame = EventFrame()
    assert list(frame.gaps.columns) == ["from_id", "to_id", "reason", "time"]
    frame.mark_gap(5, 9, "evicted")
    frame.mark_gap(12, -1, "new epoch")
    gaps = frame.gaps
    assert gaps["from_id"].tolist() == [5, 12] and gaps["to_id"].tolist() == [9, -1]
    assert gaps["reason"].tolist() == ["evicted", "new epoch"]
    assert gaps["from_id"].dtype == np.int64 and str(gaps["time"].dtype) == UTC_NS
    assert frame.stats()["gaps"] == 2


def test_gap_records_are_bounded_to_the_newest_and_all_are_counted() -> None:
    frame = EventFrame()
    for i in range(MAX_GAPS + 5):
        frame.mark_gap(10 * i, 10 * i + 3, "evicted")
    gaps = frame.gaps
    assert len(gaps) == MAX_GAPS
    assert gaps["from_id"].iloc[0] == 50 and gaps["from_id"].iloc[-1] == 10 * (MAX_GAPS + 4)
    assert frame.stats()["gaps"] == MAX_GAPS and frame.stats()["gaps_total"] == MAX_GAPS + 5
    frame.clear()
    assert len(frame.gaps) == 0 and frame.stats()["gaps_total"] == MAX_GAPS + 5


def test_subscribers_get_batch_sizes_and_errors_are_counted_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    frame = EventFrame()
    calls: list[tuple[int, int]] = []

    def good(f: EventFrame, n: int) -> None:
        calls.append((n, len(f)))  # may read the frame: called outside the lock

    def bad(f: EventFrame, n: int) -> None:
        raise RuntimeError("boom")

    unsubscribe = frame.subscribe(good)
    frame.subscribe(bad)
    with caplog.at_level(logging.ERROR, logger="wsnotebook"):
        assert frame.extend([ev(1), ev(2)]) == 2
        assert frame.append(ev(3))
    frame.append(ev(3))  # duplicate: no rows added, no call
    assert calls == [(2, 2), (1, 3)]
    assert frame.callback_errors == 2 and frame.stats()["callback_errors"] == 2
    assert "boom" in caplog.text
    unsubscribe()
    unsubscribe()  # idempotent
    frame.append(ev(4))
    assert calls == [(2, 2), (1, 3)]
    with pytest.raises(ConfigError):
        frame.subscribe("not callable")  # type: ignore[arg-type]


def test_concurrent_appenders_and_snapshots_lose_and_tear_nothing() -> None:
    writers, per_writer, batch = 4, 3000, 50
    frame = EventFrame(max_rows=1_000_000, chunk_rows=256)
    start = threading.Barrier(writers + 1)
    errors: list[BaseException] = []

    def write(w: int) -> None:
        try:
            start.wait(timeout=30)
            base = w * per_writer
            for b in range(0, per_writer, batch):
                events = [
                    ev(base + i + 1, session_id=f"w{w}", payload={"w": w, "i": base + i + 1})
                    for i in range(b, b + batch)
                ]
                if b % (batch * 4) == 0:
                    for e in events:
                        frame.append(e)
                else:
                    frame.extend(events)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    start.wait(timeout=30)
    snapshots = 0
    while any(t.is_alive() for t in threads) or snapshots < 3:
        df = frame.df if snapshots % 2 == 0 else frame.tail(500)
        snapshots += 1
        assert df["id"].dtype == np.int64 and isinstance(
            df["session_id"].dtype, pd.CategoricalDtype
        )
        # no torn rows: every column of a row comes from the same event
        payload_ids = [p["i"] for p in df["payload"]]
        assert payload_ids == df["id"].tolist()
        writer_of_row = [f"w{p['w']}" for p in df["payload"]]
        assert writer_of_row == df["session_id"].astype(str).tolist()
        assert (df["latency_ms"] == 4.0).all()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    df = frame.df
    assert len(frame) == frame.total == writers * per_writer == len(df)
    assert sorted(df["id"]) == list(range(1, writers * per_writer + 1))  # no lost rows
    for w in range(writers):  # per-writer order preserved
        ids = df.loc[df["session_id"] == f"w{w}", "id"].tolist()
        assert ids == sorted(ids)


def test_stats_and_repr_report_counters() -> None:
    frame = EventFrame(max_rows=3, chunk_rows=1)
    frame.extend([ev(1), ev(2), ev(3), ev(4), ev(4)])
    stats = frame.stats()
    assert {k: stats[k] for k in ("rows", "total", "dropped", "duplicates", "max_rows")} == {
        "rows": 3,
        "total": 4,
        "dropped": 1,
        "duplicates": 1,
        "max_rows": 3,
    }
    assert stats["memory_bytes"] > 0 and stats["version"] == frame.version
    assert repr(frame).startswith("<EventFrame rows=3 total=4 max_rows=3 dropped=1")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda f: f.tail(None), "tail: n must be an integer, got null"),
        (lambda f: f.tail("3"), "tail: n must be an integer, got string '3'"),
        (lambda f: f.tail(2.5), "tail: n must be an integer"),
        (lambda f: f.tail(True), "tail: n must be an integer"),
        (lambda f: f.tail(-1), "tail: n must be >= 0"),
        (lambda f: f.filter(limit="2"), "filter: limit must be an integer"),
        (lambda f: f.filter(limit=-1), "filter: limit must be >= 0"),
        (lambda f: f.filter(search=b"x"), "filter: search must be a str"),
        (lambda f: f.filter(search=__import__("re").compile(b"x")), "filter: search must be"),
        (lambda f: f.filter(search="("), "filter: invalid search pattern"),
        (lambda f: f.filter(source_app=3), "filter: source_app must be a string or an iterable"),
        (lambda f: f.filter(session_id=b"s"), "filter: session_id must be a string or"),
        (lambda f: f.filter(hook_event_type=["Stop", 1]), "filter: hook_event_type values"),
        (lambda f: f.plain_table(source_app=3), "filter: source_app must be"),
        (lambda f: f.mark_gap("a", 2, "r"), "mark_gap: from_id must be an integer"),
        (lambda f: f.mark_gap(1, None, "r"), "mark_gap: to_id must be an integer"),
        (lambda f: f.throughput("abc"), "throughput: invalid freq 'abc'"),
        (lambda f: f.throughput("1s", window="abc"), "throughput: invalid window 'abc'"),
    ],
)
def test_bad_arguments_raise_config_errors_naming_the_argument(call: Any, message: str) -> None:
    import re

    frame = EventFrame(chunk_rows=2)
    frame.extend([ev(i) for i in range(1, 6)])
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}"):
        call(frame)


def test_integer_like_arguments_are_accepted() -> None:
    frame = EventFrame(chunk_rows=2)
    frame.extend([ev(i) for i in range(1, 6)])
    assert ids_of(frame.tail(np.int64(2))) == [4, 5]
    assert ids_of(frame.filter(limit=np.int32(1), source_app=("app0", "app1"))) == [5]
    assert ids_of(frame.filter(session_id=iter(["session-1"]))) == [1, 4]
    frame.mark_gap(np.int64(7), -1, "lost")
    assert frame.gaps["from_id"].tolist() == [7]
