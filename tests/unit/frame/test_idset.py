"""IdSet: interval-set dedupe memory, bounded (wsnotebook.frame.idset)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsnotebook.errors import ConfigError
from wsnotebook.frame.idset import IdSet

# --------------------------------------------------------------------------- IdSet


def test_idset_merges_intervals() -> None:
    ids = IdSet()
    assert ids.max() is None and len(ids) == 0 and 1 not in ids
    for i in (1, 2, 3, 7, 5):
        assert ids.add(i)
    assert ids.intervals == [(1, 3), (5, 5), (7, 7)]
    assert not ids.add(2) and not ids.add(7)
    assert ids.add(6)  # joins both neighbours
    assert ids.intervals == [(1, 3), (5, 7)]
    assert ids.add(0) and ids.add(4)
    assert ids.intervals == [(0, 7)] and len(ids) == 8 and ids.max() == 7
    ids.add_run(8, 100)
    ids.add_run(200, 300)
    assert ids.intervals == [(0, 100), (200, 300)] and 150 not in ids and 250 in ids


def test_idset_keeps_at_most_max_intervals_by_filling_the_lowest_holes() -> None:
    ids = IdSet(max_intervals=3)
    for i in (2, 4, 6, 8):  # every other id: one interval each
        assert ids.add(i)
    assert ids.intervals == [(2, 4), (6, 6), (8, 8)] and ids.holes_filled == 1
    assert 3 in ids  # the filled hole now counts as seen (a very late 3 is a duplicate)
    assert ids.add(20) and ids.intervals == [(2, 6), (8, 8), (20, 20)]
    assert ids.add(10) and ids.intervals == [(2, 8), (10, 10), (20, 20)]  # inserted, then bounded
    ids.add_run(30, 40)
    assert len(ids.intervals) == 3 and ids.holes_filled == 4 and ids.max() == 40
    for ident in (2, 8, 10, 20, 35):
        assert not ids.add(ident)
    with pytest.raises(ConfigError):
        IdSet(max_intervals=0)


def test_sparse_ids_keep_the_dedupe_memory_bounded() -> None:
    from wsnotebook.frame.idset import MAX_ID_INTERVALS

    ids = IdSet()
    for i in range(0, 2 * (MAX_ID_INTERVALS + 500), 2):
        ids.add(i)
    assert len(ids.intervals) == MAX_ID_INTERVALS and ids.holes_filled == 500


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=-50, max_value=50), max_size=80))
def test_idset_behaves_like_a_python_set(values: list[int]) -> None:
    ids = IdSet()
    model: set[int] = set()
    for v in values:
        assert ids.add(v) == (v not in model)
        model.add(v)
    assert len(ids) == len(model)
    assert ids.max() == (max(model) if model else None)
    for probe in range(-52, 53):
        assert (probe in ids) == (probe in model)
    spans = ids.intervals
    assert all(lo <= hi for lo, hi in spans)
    assert all(a[1] + 1 < b[0] for a, b in itertools.pairwise(spans))  # disjoint, not touching
