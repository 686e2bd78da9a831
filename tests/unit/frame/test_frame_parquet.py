"""EventFrame Parquet round trips (wsnotebook.frame.parquet)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from _helpers import make_hook_event

from wsnotebook.errors import ConfigError, EventValidationError
from wsnotebook.frame import EventFrame

# The shared valid hook event (tests/_helpers.py): stamps server +1.5 ms, client +4 ms.
ev = make_hook_event


def ids_of(df: pd.DataFrame) -> list[int]:
    return df["id"].tolist()


def test_parquet_round_trip_keeps_rows_types_and_extras(tmp_path: Any) -> None:
    pytest.importorskip("pyarrow")
    frame = EventFrame(max_rows=50, chunk_rows=8)
    frame.extend(
        [
            ev(i, summary=f"s{i}" if i % 2 else None, chat=[i] if i % 5 == 0 else None)
            for i in range(1, 60)
        ]
    )
    frame.append({**ev(100, region="eu"), "payload": {"ü": "ñ", "list": [1, None]}})
    frame.append({k: v for k, v in ev(0).items() if k not in ("id", "timestamp")})
    path = tmp_path / "events.parquet"
    frame.to_parquet(path)
    back = EventFrame.from_parquet(path)
    # category order is first-seen order, which eviction before the export can change
    pd.testing.assert_frame_equal(back.df, frame.df, check_categorical=False)
    assert back.append(ev(100)) is False  # ids restored into the dedupe set
    small = EventFrame.from_parquet(path, max_rows=5)
    pd.testing.assert_frame_equal(
        small.df, frame.df.tail(5).reset_index(drop=True), check_categorical=False
    )


def test_from_parquet_rejects_foreign_files(tmp_path: Any) -> None:
    pytest.importorskip("pyarrow")
    path = tmp_path / "other.parquet"
    pd.DataFrame({"a": [1]}).to_parquet(path)
    with pytest.raises(ConfigError, match="not an EventFrame parquet file"):
        EventFrame.from_parquet(path)


def test_a_frame_offered_a_lone_surrogate_keeps_its_bounds_and_writes_parquet(
    tmp_path: Any,
) -> None:
    pytest.importorskip("pyarrow")
    frame = EventFrame(max_rows=8, chunk_rows=4)
    with pytest.raises(EventValidationError, match="summary"):
        frame.extend([ev(1, summary="bad \ud800")])
    for i in range(2, 30):
        assert frame.append(ev(i)) is True
    assert frame.extend([ev(100), ev(101)]) == 2
    assert len(frame) == 8 and ids_of(frame.df) == [*range(24, 30), 100, 101]
    frame.to_parquet(tmp_path / "f.parquet")
    assert ids_of(EventFrame.from_parquet(tmp_path / "f.parquet").df) == ids_of(frame.df)


def test_from_parquet_checks_max_rows_like_the_constructor(tmp_path: Any) -> None:
    pytest.importorskip("pyarrow")
    frame = EventFrame()
    frame.extend([ev(1), ev(2)])
    frame.to_parquet(tmp_path / "f.parquet")
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="max_rows"):
            EventFrame.from_parquet(tmp_path / "f.parquet", max_rows=bad)
    assert EventFrame.from_parquet(tmp_path / "f.parquet").max_rows == 1_000_000
    assert EventFrame.from_parquet(tmp_path / "f.parquet", max_rows=1).df["id"].tolist() == [2]
