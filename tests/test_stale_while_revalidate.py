"""Stale-while-revalidate on ``get_or_fetch``: rows older than ``max_age`` but inside the
stale window are served at once while one background refresh runs.

Run over every storing backend through the ``cache`` / ``make_cache`` fixtures
(tests/conftest.py); NoCache stores nothing, so it never has stale rows to serve.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any

import pytest
from steered_fetch import SteeredFetch

from trie_cache import Cache, CachedRows, MemCache

OLD = CachedRows({"r": {"v": "old"}}, time.time() - 100)
NEW = CachedRows({"r": {"v": "new"}})
# Rows 100 s old are stale (older than max_age) but inside the window (100 <= 10 + 1000).
SWR = {"max_age": 10, "stale_while_revalidate": 1000}


class Fetcher(SteeredFetch):
    """The module's default fetch: returns ``NEW``, waiting on its gate."""

    def __init__(self, result: object = NEW, *, gated: bool = True) -> None:
        super().__init__(result, gated=gated)


async def _refreshes_done(cache: Cache) -> None:
    deadline = time.monotonic() + 10
    while cache._refresh_tasks:
        assert time.monotonic() < deadline, "a refresh never finished"
        await asyncio.sleep(0.001)


async def test_stale_rows_are_served_at_once_while_the_refresh_waits(cache: Cache) -> None:
    await cache.put("k", OLD)
    fetch = Fetcher()
    # The refresh is blocked on the gate; the caller must not wait for it.
    got = await asyncio.wait_for(cache.get_or_fetch("k", fetch, **SWR), 5)
    assert got == OLD
    await fetch.started.wait()
    assert await cache.get("k") == OLD  # still the stale rows while the refresh runs
    fetch.gate.set()
    await _refreshes_done(cache)
    assert await cache.get("k") == NEW
    stats = cache.stats()
    assert (stats.stale_served, stats.refreshes, stats.fetches, stats.fills) == (1, 1, 1, 1)


async def test_one_refresh_for_100_concurrent_stale_reads(cache: Cache) -> None:
    await cache.put("k", OLD)
    fetch = Fetcher()
    got = await asyncio.gather(*(cache.get_or_fetch("k", fetch, **SWR) for _ in range(100)))
    assert all(rows == OLD for rows in got)
    fetch.gate.set()
    await _refreshes_done(cache)
    assert fetch.calls == 1
    stats = cache.stats()
    assert (stats.stale_served, stats.refreshes, stats.fills) == (100, 1, 1)
    assert await cache.get_or_fetch("k", fetch, **SWR) == NEW  # fresh now: a hit


async def test_a_refresh_joins_a_fetch_already_in_flight(cache: Cache) -> None:
    await cache.put("k", OLD)
    fetch = Fetcher()
    # A caller with a stricter window misses and starts a fetch ...
    missing = asyncio.create_task(
        cache.get_or_fetch("k", fetch, max_age=10, stale_while_revalidate=0)
    )
    await fetch.started.wait()
    # ... so a stale read starts no second one.
    assert await cache.get_or_fetch("k", fetch, **SWR) == OLD
    fetch.gate.set()
    assert await missing == NEW
    assert fetch.calls == 1
    assert cache.stats().refreshes == 0


async def test_a_miss_joins_the_refresh_in_flight(cache: Cache) -> None:
    await cache.put("k", OLD)
    fetch = Fetcher()
    assert await cache.get_or_fetch("k", fetch, **SWR) == OLD
    await fetch.started.wait()
    strict = asyncio.create_task(cache.get_or_fetch("k", fetch, max_age=10))
    await asyncio.sleep(0.01)
    fetch.gate.set()
    assert await strict == NEW
    assert fetch.calls == 1
    assert cache.stats().coalesced == 1


async def test_an_invalidation_during_a_refresh_wins(cache: Cache) -> None:
    await cache.put("t/k", OLD)
    fetch = Fetcher()
    assert await cache.get_or_fetch("t/k", fetch, **SWR) == OLD
    await fetch.started.wait()
    await cache.invalidate_prefix("t/")
    fetch.gate.set()
    await _refreshes_done(cache)
    assert await cache.get("t/k") is None
    stats = cache.stats()
    assert (stats.fills, stats.stale_fills_prevented) == (0, 1)


async def test_a_put_during_a_refresh_wins(cache: Cache) -> None:
    await cache.put("k", OLD)
    fetch = Fetcher(CachedRows({"r": {"v": "refreshed"}}))
    assert await cache.get_or_fetch("k", fetch, **SWR) == OLD
    await fetch.started.wait()
    await cache.put("k", NEW)
    fetch.gate.set()
    await _refreshes_done(cache)
    assert await cache.get("k") == NEW


async def test_a_failing_refresh_keeps_the_stale_rows_until_the_hard_limit(
    cache: Cache, caplog: pytest.LogCaptureFixture
) -> None:
    max_age, window = 0.2, 1.0
    stored = CachedRows({"r": {"v": "old"}})
    await cache.put("k", stored)
    failing = Fetcher(LookupError("database down"), gated=False)
    await asyncio.sleep(max_age + 0.05)
    with caplog.at_level(logging.WARNING, logger="trie_cache"):
        served = 0
        # Stale reads until the rows pass max_age + window: each starts a refresh, each
        # refresh fails, and nothing reaches the callers.
        while time.time() - stored.fetched_at < max_age + window - 0.3:
            got = await cache.get_or_fetch(
                "k", failing, max_age=max_age, stale_while_revalidate=window
            )
            assert got == stored
            served += 1
            await _refreshes_done(cache)
            await asyncio.sleep(0.05)
        assert served >= 2
        assert await cache.get("k", max_age=math.inf) == stored  # still in place
        await asyncio.sleep(max(0.0, stored.fetched_at + max_age + window - time.time()) + 0.05)
        # Past the hard limit: a miss, and the fetch's error reaches the caller.
        with pytest.raises(LookupError):
            await cache.get_or_fetch("k", failing, max_age=max_age, stale_while_revalidate=window)
    warnings = [r for r in caplog.records if "refresh of cache key 'k' failed" in r.getMessage()]
    assert len(warnings) == 1  # once per failure streak
    stats = cache.stats()
    assert stats.stale_served == served
    assert stats.refreshes == served
    assert stats.fetch_errors == served + 1


async def test_a_successful_refresh_ends_the_failure_streak(
    cache: Cache, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="trie_cache"):
        for outcome in (LookupError("a"), LookupError("b"), NEW, LookupError("c")):
            await cache.put("k", OLD)
            await cache.get_or_fetch("k", Fetcher(outcome, gated=False), **SWR)
            await _refreshes_done(cache)
    messages = [r.getMessage() for r in caplog.records if "refresh of cache key" in r.getMessage()]
    assert len(messages) == 2
    assert "LookupError: a" in messages[0] and "LookupError: c" in messages[1]


async def test_rows_past_the_window_are_a_miss(cache: Cache) -> None:
    await cache.put("k", OLD)
    fetch = Fetcher(gated=False)
    assert await cache.get_or_fetch("k", fetch, max_age=10, stale_while_revalidate=50) == NEW
    stats = cache.stats()
    assert (stats.misses, stats.stale_served, stats.refreshes) == (1, 0, 0)


async def test_the_cache_wide_default_applies(make_cache: Any) -> None:
    cache = make_cache(max_age=10, stale_while_revalidate=1000)
    assert cache.stale_while_revalidate == 1000
    await cache.put("k", OLD)
    fetch = Fetcher(gated=False)
    assert await cache.get_or_fetch("k", fetch) == OLD
    await _refreshes_done(cache)
    assert await cache.get_or_fetch("k", fetch) == NEW
    # A call can turn the window off.
    await cache.put("k", OLD)
    assert await cache.get_or_fetch("k", fetch, stale_while_revalidate=0) == NEW


async def test_closing_the_cache_cancels_refreshes_in_flight(make_cache: Any) -> None:
    cache = make_cache()
    await cache.put("k", OLD)
    fetch = Fetcher()
    assert await cache.get_or_fetch("k", fetch, **SWR) == OLD
    await fetch.started.wait()
    await cache.aclose()
    assert fetch.cancelled
    assert not cache._refresh_tasks
    assert cache.stats().fetches_cancelled == 1


async def test_a_closed_memcache_starts_no_refresh(trie_cls: Any) -> None:
    # MemCache keeps working after aclose() (a closed LmdbCache refuses every call).
    cache = MemCache(_trie_cls=trie_cls)
    await cache.put("k", OLD)
    await cache.aclose()
    fetch = Fetcher(gated=False)
    assert await cache.get_or_fetch("k", fetch, **SWR) == NEW  # a plain miss
    assert cache.stats().refreshes == 0


@pytest.mark.parametrize(
    ("bad", "exc"), [(-1, ValueError), (float("nan"), ValueError), ("1", TypeError)]
)
async def test_bad_windows_are_refused(make_cache: Any, bad: Any, exc: type[Exception]) -> None:
    cache = make_cache()
    await cache.put("k", OLD)
    with pytest.raises(exc, match="stale_while_revalidate"):
        await cache.get_or_fetch("k", Fetcher(), max_age=10, stale_while_revalidate=bad)
    with pytest.raises(exc, match="stale_while_revalidate"):
        await cache.get_or_fetch("missing", Fetcher(), stale_while_revalidate=bad)
    with pytest.raises(exc, match="stale_while_revalidate"):
        await cache.get_or_fetch("k", Fetcher(), stale_while_revalidate=bad)  # a hit
    with pytest.raises(exc, match="stale_while_revalidate"):
        make_cache(stale_while_revalidate=bad)


async def test_a_miss_joined_to_a_refresh_cancelled_by_close_fetches_itself(
    trie_cls: Any,
) -> None:
    cache = MemCache(_trie_cls=trie_cls)
    await cache.put("k", OLD)
    refresh = Fetcher()
    assert await cache.get_or_fetch("k", refresh, **SWR) == OLD
    await refresh.started.wait()
    own = Fetcher(gated=False)
    strict = asyncio.create_task(cache.get_or_fetch("k", own, max_age=10))
    deadline = time.monotonic() + 10
    while cache.stats().coalesced == 0:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.001)
    await cache.aclose()
    assert refresh.cancelled
    assert await strict == NEW  # not cancelled with the refresh: it fetched for itself
    assert own.calls == 1
