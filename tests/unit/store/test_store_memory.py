"""The memory store: increasing ids, eviction, facets across folds, untracked retained events."""

from __future__ import annotations

import asyncio
from unittest import mock

from _store_helpers import ev, ids
from hypothesis import given, settings
from hypothesis import strategies as st

from wsnotebook.store import MemoryStore, StoredEvent
from wsnotebook.store import memory as _memory


def test_memory_store_assigns_increasing_ids_and_evicts_oldest() -> None:
    async def main() -> None:
        store = MemoryStore(retain=5)
        assert (store.last_id, store.first_id, len(store)) == (0, None, 0)
        assert ids(await store.append([ev() for _ in range(3)])) == [1, 2, 3]
        assert ids(await store.append([ev() for _ in range(4)])) == [4, 5, 6, 7]
        assert (store.last_id, store.first_id, len(store)) == (7, 3, 5)
        assert ids(await store.recent(2)) == [6, 7]
        assert ids(await store.recent(100)) == [3, 4, 5, 6, 7]
        assert ids(await store.since(4, 10)) == [5, 6, 7]
        assert ids(await store.since(0, 2)) == [3, 4]
        assert ids(await store.since(7, 10)) == []

    asyncio.run(main())


def test_memory_store_facets_follow_eviction() -> None:
    async def main() -> None:
        store = MemoryStore(retain=2)
        await store.append([ev(source_app="old", session_id="x")])
        await store.append([ev(source_app="b"), ev(source_app="a", hook_event_type="Stop")])
        assert await store.filter_options() == {
            "source_apps": ["a", "b"],
            "session_ids": ["s1"],
            "hook_event_types": ["PreToolUse", "Stop"],
        }

    asyncio.run(main())


def test_memory_store_facets_match_the_retained_events_across_folds() -> None:
    """Facet counts are folded in lazily, in C-level passes; whenever they are read they equal
    the distinct values of the events still retained, including across evictions of values."""

    async def main() -> None:
        store = MemoryStore(retain=300)
        for batch in range(2 * _memory.FOLD_EVERY // 10):
            await store.append(
                [
                    ev(
                        source_app=f"app{batch // 40}",
                        session_id=f"s{(batch * 10 + i) // 7}",
                        hook_event_type=f"h{i % 3}" if batch % 50 else "rare",
                    )
                    for i in range(10)
                ]
            )
            if batch % 97 == 0 or batch % 100 == 99:
                kept = await store.recent(1000)
                assert await store.filter_options() == {
                    "source_apps": sorted({s.source_app for s in kept}),
                    "session_ids": sorted({s.session_id for s in kept}),
                    "hook_event_types": sorted({s.hook_event_type for s in kept}),
                }
        assert len(store) == 300

    asyncio.run(main())


def test_retained_events_are_not_tracked_by_the_cyclic_gc() -> None:
    """A kernel's full collections walk every tracked object with the GIL held; a store
    retaining 100,000 tracked events made them ~85 ms long.  Retained events must add none."""
    import gc

    async def main() -> None:
        store = MemoryStore(retain=5000)
        gc.collect()
        before = len(gc.get_objects())
        for start in range(0, 5000, 100):
            await store.append([ev(n=start + i) for i in range(100)])
        gc.collect()
        assert len(store) == 5000
        assert not any(gc.is_tracked(s) for s in await store.recent(5000))
        assert len(gc.get_objects()) - before < 100

    asyncio.run(main())


def test_memory_stores_have_distinct_epochs() -> None:
    assert MemoryStore().epoch != MemoryStore().epoch


@settings(max_examples=200, deadline=None)
@given(
    size=st.integers(1, 6),
    max_bytes=st.sampled_from([0, 40, 100, 300]),
    facets=st.booleans(),
    events=st.lists(st.tuples(st.integers(1, 150), st.sampled_from("abc")), max_size=40),
)
def test_ring_add_one_keeps_what_add_of_one_keeps(
    size: int, max_bytes: int, facets: bool, events: list[tuple[int, str]]
) -> None:
    """``Ring.add_one`` (the per-event hot path) = ``add([event])``: the same events, bytes,
    evictions for bytes and facet counts, folds included (``FOLD_EVERY`` made small)."""
    fast = _memory.Ring(size, facets=facets, max_bytes=max_bytes)
    ref = _memory.Ring(size, facets=facets, max_bytes=max_bytes)
    with (
        mock.patch.object(_memory, "FOLD_EVERY", 5),
        mock.patch.object(_memory, "FOLD_BYTES", 200),
    ):
        for i, (nbytes, app) in enumerate(events, 1):
            stored = StoredEvent(i, b"x" * nbytes, app, "s", "h")
            fast.add_one(stored)
            ref.add([stored])
            assert list(fast.items) == list(ref.items)
            assert (fast.bytes, fast.evicted_by_bytes) == (ref.bytes, ref.evicted_by_bytes)
            assert (fast._added, fast._evicted) == (ref._added, ref._evicted)
        if facets:
            assert fast.facet_values() == ref.facet_values()
