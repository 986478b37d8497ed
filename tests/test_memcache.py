"""``MemCache`` specifics on both trie cores: the trie it uses, size, identity, and sharing one
instance between threads that each run their own event loop."""

from __future__ import annotations

import asyncio
import gc
import math
import threading
import time
import weakref
from typing import Any

import pytest
from threads import run_threads

import trie_cache
from trie_cache import CachedRows, MemCache

ROWS = CachedRows({"r": {"v": 1}}, 1_700_000_000.0)


def test_default_trie_is_the_selected_core() -> None:
    assert type(MemCache()._trie) is trie_cache.RadixTrie


def test_trie_class_can_be_chosen(trie_cls: Any) -> None:
    assert type(MemCache(_trie_cls=trie_cls)._trie) is trie_cls


async def test_len_counts_keys(trie_cls: Any) -> None:
    cache = MemCache(_trie_cls=trie_cls)
    assert len(cache) == 0
    for i in range(10):
        await cache.put(f"t/{i}", ROWS)
    await cache.put("t/0", ROWS)
    assert len(cache) == 10
    assert await cache.invalidate_prefix("t/1") == 1
    assert len(cache) == 9


async def test_get_returns_the_stored_object(trie_cls: Any) -> None:
    cache = MemCache(_trie_cls=trie_cls)
    await cache.put("k", ROWS)
    assert await cache.get("k") is ROWS


async def test_get_and_base_get_agree(trie_cls: Any) -> None:
    # MemCache.get is Cache.get inlined, plus the removal of the expired rows it meets; both
    # must answer and count the same.
    cache = MemCache(_trie_cls=trie_cls, max_age=60)
    base_get = trie_cache.Cache.get
    await cache.put("new", CachedRows({}))
    for key, max_age in [("new", None), ("new", 30.0), ("x", None), ("x", 5.0)]:
        assert await cache.get(key, max_age) == await base_get(cache, key, max_age)
    assert (cache.stats().hits, cache.stats().misses) == (4, 4)
    await cache.put("old", ROWS)  # expired already, but never by the write that stores it
    assert await base_get(cache, "old", None) is None  # a miss that removes nothing
    assert await base_get(cache, "old", math.inf) is ROWS
    assert await cache.get("old", math.inf) is ROWS  # an explicit limit removes nothing
    assert await cache.get("old") is None  # the default limit: expired, removed
    assert await base_get(cache, "old", math.inf) is None
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.expirations) == (6, 7, 1)


def _run_in_threads(count: int, work: Any) -> list[BaseException]:
    return run_threads(lambda n: asyncio.run(work(n)), count, timeout=60)


def test_threads_with_their_own_loops_share_one_cache(trie_cls: Any) -> None:
    cache = MemCache(_trie_cls=trie_cls)

    async def work(n: int) -> None:
        for i in range(300):
            key = f"w{n}/k{i % 50}"
            await cache.put(key, ROWS)
            got = await cache.get(key)
            assert got is None or got is ROWS  # another thread may invalidate "" meanwhile
            await cache.get_or_fetch(f"shared/{i % 7}", _fetch_rows)
            if i % 60 == 59:
                await cache.invalidate_prefix(f"w{n}/")
            if n == 0 and i % 100 == 99:
                await cache.invalidate_prefix("")

    assert _run_in_threads(4, work) == []
    keys = list(cache._trie)
    assert len(cache) == len(keys)
    assert asyncio.run(cache.invalidate_prefix("")) == len(keys)
    assert len(cache) == 0


async def _fetch_rows() -> CachedRows:
    await asyncio.sleep(0)
    return ROWS


def test_invalidation_from_another_thread_prevents_the_fill(trie_cls: Any) -> None:
    cache = MemCache(_trie_cls=trie_cls)
    started = threading.Event()
    release = threading.Event()

    async def slow_fetch() -> CachedRows:
        started.set()
        await asyncio.get_running_loop().run_in_executor(None, release.wait, 30)
        return ROWS

    async def reader(n: int) -> None:
        assert await cache.get_or_fetch("t/k", slow_fetch) == ROWS

    thread = threading.Thread(target=lambda: asyncio.run(reader(0)))
    thread.start()
    assert started.wait(30)
    asyncio.run(cache.invalidate_prefix("t/"))
    release.set()
    thread.join(30)
    assert not thread.is_alive()
    assert asyncio.run(cache.get("t/k")) is None
    assert cache.stats().stale_fills_prevented == 1


def test_loops_in_different_threads_fetch_separately(trie_cls: Any) -> None:
    # A flight belongs to one event loop; another loop cannot await it, so it fetches itself.
    cache = MemCache(_trie_cls=trie_cls)
    both_started = threading.Barrier(2, timeout=30)
    calls = 0

    async def fetch() -> CachedRows:
        nonlocal calls
        calls += 1
        await asyncio.get_running_loop().run_in_executor(None, both_started.wait)
        return ROWS

    async def reader(n: int) -> None:
        assert await cache.get_or_fetch("k", fetch) is ROWS

    assert _run_in_threads(2, reader) == []
    assert calls == 2
    assert asyncio.run(cache.get("k")) is ROWS


# -- the bound (issue 10) ------------------------------------------------------------------------


def _rows(n: int, fetched_at: float | None = None) -> CachedRows:
    return CachedRows({f"r{i}": {"v": i, "s": "x" * 20} for i in range(n)}, fetched_at)


def _weight(key: str, rows: CachedRows) -> int:
    return len(key.encode("utf-8", "surrogatepass")) + int(rows.nbytes)


@pytest.mark.parametrize("name", ["max_entries", "max_bytes"])
@pytest.mark.parametrize(
    ("bad", "error"),
    [(0, ValueError), (-5, ValueError), (True, TypeError), (2.0, TypeError), ("9", TypeError)],
)
def test_bad_bounds_are_refused(trie_cls: Any, name: str, bad: object, error: type) -> None:
    with pytest.raises(error, match=name):
        MemCache(_trie_cls=trie_cls, **{name: bad})  # type: ignore[arg-type]


async def test_max_entries_holds_after_every_put(trie_cls: Any) -> None:
    cache = MemCache(_trie_cls=trie_cls, max_entries=10)
    for i in range(100):
        await cache.put(f"t/{i}", ROWS)
        assert len(cache) <= 10
    assert len(cache) == 10
    assert cache.stats().evictions == 90
    assert cache.max_entries == 10


async def test_nbytes_of_a_cache_bounded_by_entries_alone_is_the_live_weight(
    trie_cls: Any,
) -> None:
    cache = MemCache(_trie_cls=trie_cls, max_entries=20)
    for i in range(60):
        await cache.put(f"tenant/é/{i}", _rows(1 + i % 5))
    live = dict(cache._trie.items())
    assert len(live) == 20
    assert cache.nbytes == sum(_weight(key, rows) for key, rows in live.items())
    assert cache.max_bytes is None
    assert cache.stats().evictions == 40


async def test_max_bytes_holds_after_every_put_and_nbytes_is_the_live_weight(
    trie_cls: Any,
) -> None:
    cache = MemCache(_trie_cls=trie_cls, max_bytes=20_000)
    stored: dict[str, CachedRows] = {}
    for i in range(200):
        key = f"tenant/é/{i}"
        rows = _rows(1 + i % 7)
        await cache.put(key, rows)
        stored[key] = rows
        assert cache.nbytes is not None
        assert cache.nbytes <= 20_000
    live = dict(cache._trie.items())
    assert cache.nbytes == sum(_weight(key, rows) for key, rows in live.items())
    assert cache.stats().evictions == 200 - len(live)
    assert cache.max_bytes == 20_000


async def test_fills_by_get_or_fetch_respect_the_bound(trie_cls: Any) -> None:
    cache = MemCache(_trie_cls=trie_cls, max_entries=5, max_bytes=5_000)

    async def fetch() -> CachedRows:
        return _rows(2)

    for i in range(40):
        await cache.get_or_fetch(f"k/{i}", fetch)
        assert len(cache) <= 5
        assert cache.nbytes is not None and cache.nbytes <= 5_000
    assert cache.stats().fills == 40
    live = dict(cache._trie.items())
    assert cache.nbytes == sum(_weight(key, rows) for key, rows in live.items())


async def test_rows_heavier_than_max_bytes_are_not_stored_and_drop_the_older_rows(
    trie_cls: Any,
) -> None:
    small = _rows(1)
    big = _rows(100)
    limit = _weight("k", small) * 3
    assert _weight("k", big) > limit
    cache = MemCache(_trie_cls=trie_cls, max_bytes=limit)
    await cache.put("k", small)
    await cache.put("other", small)
    await cache.put("k", big)
    assert await cache.get("k") is None  # never the older rows after a newer put
    assert await cache.get("other") is small
    stats = cache.stats()
    assert (stats.oversized, stats.evictions) == (1, 0)
    assert cache.nbytes == _weight("other", small)


async def test_the_hand_removes_rows_older_than_max_age_first(trie_cls: Any) -> None:
    cache = MemCache(_trie_cls=trie_cls, max_age=60, max_entries=3)
    now = time.time()
    await cache.put("fresh/1", _rows(1, now))
    await cache.put("stale", _rows(1, now - 3600))
    await cache.put("fresh/2", _rows(1, now))
    assert await cache.get("stale", max_age=math.inf) is not None  # visited, yet expired
    assert await cache.get("fresh/1") is not None
    await cache.put("fresh/3", _rows(1, now))
    assert await cache.get("stale", max_age=math.inf) is None
    assert sorted(cache._trie) == ["fresh/1", "fresh/2", "fresh/3"]
    stats = cache.stats()
    assert (stats.expirations, stats.evictions) == (1, 0)


async def test_rows_inside_the_stale_window_are_not_expired_by_the_hand(trie_cls: Any) -> None:
    cache = MemCache(_trie_cls=trie_cls, max_age=60, stale_while_revalidate=3600, max_entries=2)
    now = time.time()
    await cache.put("stale-but-servable", _rows(1, now - 600))
    await cache.put("too-old", _rows(1, now - 7200))
    await cache.get("stale-but-servable", max_age=math.inf)
    await cache.get("too-old", max_age=math.inf)
    await cache.put("new", _rows(1, now))
    assert sorted(cache._trie) == ["new", "stale-but-servable"]
    assert (cache.stats().expirations, cache.stats().evictions) == (1, 0)


async def test_unbounded_cache_keeps_no_weights(trie_cls: Any) -> None:
    cache = MemCache(_trie_cls=trie_cls)
    for i in range(50):
        await cache.put(f"k{i}", ROWS)
    assert len(cache) == 50
    assert cache.nbytes is None
    assert (cache.max_entries, cache.max_bytes) == (None, None)
    stats = cache.stats()
    assert (stats.evictions, stats.expirations, stats.oversized) == (0, 0, 0)


async def test_bounded_put_refuses_a_non_str_key(trie_cls: Any) -> None:
    cache = MemCache(_trie_cls=trie_cls, max_bytes=10_000)
    with pytest.raises(TypeError, match="int"):
        await cache.put(5, ROWS)  # type: ignore[arg-type]
    assert len(cache) == 0


def test_threads_keep_the_bound(trie_cls: Any) -> None:
    cache = MemCache(_trie_cls=trie_cls, max_entries=30, max_bytes=30_000)

    async def work(n: int) -> None:
        for i in range(300):
            await cache.put(f"w{n}/k{i % 80}", _rows(1 + i % 3))
            await cache.get(f"w{(n + 1) % 4}/k{i % 80}")
            await cache.get_or_fetch(f"shared/{i % 40}", _fetch_rows)
            if i % 50 == 49:
                await cache.invalidate_prefix(f"w{n}/")

    assert _run_in_threads(4, work) == []
    asyncio.run(cache.put("last", ROWS))
    assert len(cache) <= 30
    assert cache.nbytes is not None and cache.nbytes <= 30_000


async def test_a_fill_too_heavy_to_keep_counts_as_oversized_not_as_a_fill(trie_cls: Any) -> None:
    small = _rows(1)
    big = _rows(100)
    cache = MemCache(_trie_cls=trie_cls, max_bytes=_weight("k", small) * 3)

    async def fetch_big() -> CachedRows:
        return big

    async def fetch_paused() -> CachedRows:
        await asyncio.sleep(0)  # the general (suspending) path of the fill
        return big

    assert await cache.get_or_fetch("k", fetch_big) is big
    assert await cache.get_or_fetch("k2", fetch_paused) is big
    assert await cache.get("k") is None and await cache.get("k2") is None
    stats = cache.stats()
    assert (stats.fills, stats.stale_fills_prevented, stats.oversized) == (0, 0, 2)


@pytest.mark.parametrize(
    "options", [{}, {"max_entries": 10}, {"max_bytes": 10_000}, {"max_age": 60.0}]
)
def test_a_dropped_cache_is_freed_at_once(trie_cls: Any, options: dict[str, Any]) -> None:
    """No reference cycle runs through a cache (the read and store callables it keeps for
    ``get_or_fetch`` do not refer to it): dropped after use, it is freed by reference
    counting alone (its trie with it), without waiting for the cycle collector."""
    rows = CachedRows({"r": {"v": 1}})  # fetched now: young enough for max_age

    async def at_once() -> CachedRows:
        return rows

    async def suspending() -> CachedRows:
        await asyncio.sleep(0)
        return rows

    async def use(cache: MemCache) -> None:
        await cache.put("a", rows)
        assert await cache.get_or_fetch("a", at_once) is rows  # a hit
        await cache.get_or_fetch("b", at_once)  # a miss filled at once
        await cache.get_or_fetch("c", suspending)  # a miss filled after a suspension
        assert await cache.get("b") is rows and await cache.get("c") is rows

    enabled = gc.isenabled()
    gc.disable()
    try:
        cache = MemCache(_trie_cls=trie_cls, **options)
        asyncio.run(use(cache))
        ref = weakref.ref(cache)
        del cache
        assert ref() is None
    finally:
        if enabled:
            gc.enable()
