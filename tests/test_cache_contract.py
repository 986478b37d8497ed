"""The ``Cache`` contract, run over every storing backend (``cache`` fixture, tests/conftest.py),
plus ``NoCache`` and the rule that three primitives give a backend the whole API."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import pytest
from dict_cache import DictCache

from trie_cache import Cache, CachedRows, CacheStats, NoCache

ROWS = CachedRows({"r1": {"name": "a"}, "r2": {"name": "b"}}, 1_700_000_000.5)
OTHER = CachedRows({"r3": {"name": "c"}}, 1_700_000_001.25)
STRANGE_KEYS = ["", "\x00", "a\x00b", "é/ü", "\U0001f600/x", "\ud800", "k" * 100_000]


async def test_get_missing_key_is_none(cache: Cache) -> None:
    assert await cache.get("tenant/clients/page_1") is None


async def test_put_then_get_returns_equal_rows(cache: Cache) -> None:
    await cache.put("t/clients/page_1", ROWS)
    got = await cache.get("t/clients/page_1")
    assert got == ROWS
    assert got is not None and list(got.rows) == ["r1", "r2"]
    assert got.fetched_at == ROWS.fetched_at


async def test_put_replaces(cache: Cache) -> None:
    await cache.put("k", ROWS)
    await cache.put("k", OTHER)
    assert await cache.get("k") == OTHER


@pytest.mark.parametrize("key", STRANGE_KEYS, ids=range(len(STRANGE_KEYS)))
async def test_any_str_key_works(cache: Cache, key: str) -> None:
    await cache.put(key, ROWS)
    assert await cache.get(key) == ROWS
    assert await cache.invalidate_prefix(key) == 1
    assert await cache.get(key) is None


@pytest.mark.parametrize("bad", [{"r": {}}, None, b"rows", ROWS.rows])
async def test_put_non_cached_rows_is_type_error_and_stores_nothing(cache: Cache, bad: Any) -> None:
    with pytest.raises(TypeError, match=type(bad).__name__):
        await cache.put("k", bad)
    assert await cache.get("k") is None


async def test_put_non_cached_rows_keeps_the_old_value(cache: Cache) -> None:
    await cache.put("k", ROWS)
    with pytest.raises(TypeError):
        await cache.put("k", {"r": {}})  # type: ignore[arg-type]
    assert await cache.get("k") == ROWS


@pytest.mark.parametrize("bad", [1, b"k", None, ("k",)])
async def test_non_str_key_is_type_error(cache: Cache, bad: Any) -> None:
    await cache.put("k", ROWS)
    with pytest.raises(TypeError, match=type(bad).__name__):
        await cache.get(bad)
    with pytest.raises(TypeError, match=type(bad).__name__):
        await cache.put(bad, ROWS)
    with pytest.raises(TypeError, match=type(bad).__name__):
        await cache.invalidate_prefix(bad)
    assert await cache.get("k") == ROWS
    assert cache.stats().invalidations == 0


async def test_invalidate_prefix_removes_keys_under_it_and_counts_them(cache: Cache) -> None:
    for n in range(3):
        await cache.put(f"t1/clients/page_{n}", ROWS)
    await cache.put("t1/orders/id/1", ROWS)
    await cache.put("t2/clients/page_0", ROWS)
    assert await cache.invalidate_prefix("t1/clients/") == 3
    for n in range(3):
        assert await cache.get(f"t1/clients/page_{n}") is None
    assert await cache.get("t1/orders/id/1") == ROWS
    assert await cache.get("t2/clients/page_0") == ROWS


async def test_invalidate_prefix_is_a_plain_string_prefix(cache: Cache) -> None:
    for key in ("clients", "clientsX", "clients/1", "client", "t1/x", "t10/x"):
        await cache.put(key, ROWS)
    assert await cache.invalidate_prefix("clients") == 3
    assert await cache.get("client") == ROWS
    assert await cache.invalidate_prefix("t1") == 2


async def test_invalidate_empty_prefix_removes_everything(cache: Cache) -> None:
    for key in ("", "a", "b/c", "\U0001f600"):
        await cache.put(key, ROWS)
    assert await cache.invalidate_prefix("") == 4
    for key in ("", "a", "b/c", "\U0001f600"):
        assert await cache.get(key) is None


async def test_invalidate_nothing_returns_zero(cache: Cache) -> None:
    assert await cache.invalidate_prefix("nothing/") == 0
    await cache.put("a", ROWS)
    assert await cache.invalidate_prefix("b") == 0
    assert await cache.get("a") == ROWS


async def test_put_after_invalidate_is_visible(cache: Cache) -> None:
    await cache.put("t/a", ROWS)
    await cache.invalidate_prefix("t/")
    await cache.put("t/a", OTHER)
    assert await cache.get("t/a") == OTHER


async def test_many_tasks_at_once(cache: Cache) -> None:
    async def worker(n: int) -> None:
        for i in range(20):
            rows = CachedRows({f"r{n}": {"i": i}}, float(i))
            await cache.put(f"w{n}/k{i}", rows)
            assert await cache.get(f"w{n}/k{i}") == rows

    await asyncio.gather(*(worker(n) for n in range(20)))
    assert await cache.invalidate_prefix("w1") == 20 * 11  # w1, w10 .. w19
    assert await cache.invalidate_prefix("") == 20 * 9


async def test_async_with_returns_the_cache(cache: Cache) -> None:
    async with cache as entered:
        assert entered is cache


# -- max_age on get ------------------------------------------------------------------------


async def test_get_with_max_age_treats_older_rows_as_miss(cache: Cache) -> None:
    await cache.put("old", CachedRows({}, time.time() - 100))
    await cache.put("new", CachedRows({}))
    assert await cache.get("old", max_age=30) is None
    assert await cache.get("new", max_age=30) is not None
    assert await cache.get("old") is not None  # still stored: another caller may accept it


async def test_default_max_age_applies_and_get_can_lift_it(
    make_cache: Any, cache_backend: str
) -> None:
    cache = make_cache(max_age=30)
    assert cache.max_age == 30.0
    await cache.put("old", CachedRows({}, time.time() - 100))
    assert await cache.get("old", max_age=200) is not None  # an explicit limit removes nothing
    assert await cache.get("old", max_age=math.inf) is not None
    assert await cache.get("old") is None
    if cache_backend.startswith("mem-"):
        # MemCache: the default get met rows past max_age (no stale window): it removed them.
        assert await cache.get("old", max_age=math.inf) is None
        assert cache.stats().expirations == 1
    else:
        # LmdbCache removes nothing on read: another caller may still lift max_age.
        assert await cache.get("old", max_age=math.inf) is not None
        assert cache.stats().expirations == 0


async def test_max_age_zero_accepts_only_rows_from_the_future(cache: Cache) -> None:
    await cache.put("past", CachedRows({}, time.time() - 1))
    await cache.put("future", CachedRows({}, time.time() + 60))
    assert await cache.get("past", max_age=0) is None
    assert await cache.get("future", max_age=0) is not None


@pytest.mark.parametrize(
    ("bad", "exc"), [("30", TypeError), (True, TypeError), (-1, ValueError), (math.nan, ValueError)]
)
async def test_bad_max_age_on_get_is_rejected(cache: Cache, bad: Any, exc: type[Exception]) -> None:
    await cache.put("k", ROWS)
    with pytest.raises(exc, match="max_age"):
        await cache.get("k", max_age=bad)
    with pytest.raises(exc, match="max_age"):
        await cache.get("missing", max_age=bad)


@pytest.mark.parametrize(("bad", "exc"), [("30", TypeError), (-0.5, ValueError)])
def test_bad_default_max_age_is_rejected(make_cache: Any, bad: Any, exc: type[Exception]) -> None:
    with pytest.raises(exc, match="max_age"):
        make_cache(max_age=bad)


# -- stats ---------------------------------------------------------------------------------


async def test_stats_start_at_zero(cache: Cache) -> None:
    assert cache.stats() == CacheStats()


async def test_stats_count_hits_misses_invalidations_and_keys_removed(cache: Cache) -> None:
    await cache.put("a/1", ROWS)
    await cache.put("a/2", CachedRows({}, time.time() - 100))
    await cache.get("a/1")
    await cache.get("a/1")
    await cache.get("b")
    await cache.get("a/2", max_age=10)  # too old: a miss
    await cache.invalidate_prefix("a/")
    await cache.invalidate_prefix("zzz")
    stats = cache.stats()
    assert (stats.hits, stats.misses) == (2, 2)
    assert (stats.invalidations, stats.keys_removed) == (2, 2)
    assert (stats.fetches, stats.fills, stats.fetch_errors) == (0, 0, 0)


async def test_stats_is_a_snapshot(cache: Cache) -> None:
    before = cache.stats()
    await cache.get("x")
    assert before.misses == 0
    assert cache.stats().misses == 1
    with pytest.raises(AttributeError):
        before.misses = 5  # type: ignore[misc]


# -- NoCache -------------------------------------------------------------------------------


async def test_nocache_stores_nothing() -> None:
    cache = NoCache()
    await cache.put("k", ROWS)
    assert await cache.get("k") is None
    assert await cache.invalidate_prefix("") == 0
    assert cache.stats() == CacheStats(misses=1, invalidations=1)


async def test_nocache_checks_its_input() -> None:
    cache = NoCache()
    with pytest.raises(TypeError, match="dict"):
        await cache.put("k", {"r": {}})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="int"):
        await cache.get(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="NoneType"):
        await cache.invalidate_prefix(None)  # type: ignore[arg-type]


# -- the backend rule ----------------------------------------------------------------------


def test_cache_is_abstract() -> None:
    with pytest.raises(TypeError, match="abstract"):
        Cache()  # type: ignore[abstract]


async def test_three_primitives_give_the_whole_api() -> None:
    cache = DictCache(max_age=60)
    await cache.put("t/a", ROWS)
    assert await cache.get("t/a", max_age=math.inf) == ROWS
    assert await cache.get("t/a") is None  # ROWS is from 2023: older than the default
    fetched = await cache.get_or_fetch("t/b", _fetch_other)
    assert fetched == OTHER
    assert cache.data["t/b"] == OTHER
    assert await cache.invalidate_prefix("t/") == 2
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.fetches, stats.fills) == (1, 2, 1, 1)
    with pytest.raises(TypeError):
        await cache.put(3, ROWS)  # type: ignore[arg-type]


async def _fetch_other() -> CachedRows:
    return OTHER
