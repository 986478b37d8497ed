"""``MemCache`` specifics on both trie cores: the trie it uses, size, identity, and sharing one
instance between threads that each run their own event loop."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

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
    # MemCache.get is Cache.get inlined; both must answer and count the same.
    cache = MemCache(_trie_cls=trie_cls, max_age=60)
    base_get = trie_cache.Cache.get
    await cache.put("old", ROWS)
    await cache.put("new", CachedRows({}))
    for key, max_age in [("old", None), ("new", None), ("old", float("inf")), ("x", None)]:
        assert await cache.get(key, max_age) == await base_get(cache, key, max_age)
    stats = cache.stats()
    assert (stats.hits, stats.misses) == (4, 4)


def _run_in_threads(count: int, work: Any) -> list[BaseException]:
    errors: list[BaseException] = []

    def target(n: int) -> None:
        try:
            asyncio.run(work(n))
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    return errors


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
