"""``get_or_fetch``: single-flight, no stale fills after invalidation, ``max_age``, stats.

Run over every storing backend through the ``cache`` fixture (tests/conftest.py); the tests
marked ``ALL`` (``also_nocache``) also run on ``NoCache``, which always fetches but still
single-flights.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from dict_cache import DictCache
from steered_fetch import SteeredFetch

from trie_cache import Cache, CachedRows, CacheStats

ALL = pytest.mark.also_nocache
# asyncio.timeout (what these tests put inside a fetch) is new in Python 3.11.
NEEDS_ASYNCIO_TIMEOUT = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="asyncio.timeout is new in Python 3.11"
)
# Where a miss runs its fetch (trie_cache/_cache.py's module docstring): in a task of its own,
# started eagerly, on Python 3.12+; in its first caller's task on 3.10 and 3.11, which have no
# eager task start. CI runs 3.10-3.13, so each kind of test runs somewhere.
FETCH_IN_A_TASK = pytest.mark.skipif(
    sys.version_info < (3, 12),
    reason="Python 3.10/3.11 run the fetch in its first caller's task (no eager task start)",
)
FETCH_IN_THE_CALLERS_TASK = pytest.mark.skipif(
    sys.version_info >= (3, 12),
    reason="Python 3.12+ runs the fetch in a task of its own, started eagerly",
)

ROWS = CachedRows({"r1": {"v": 1}}, 1_700_000_000.0)
NEW = CachedRows({"r1": {"v": 2}}, 1_700_000_100.0)


class Fetcher(SteeredFetch):
    """The module's default fetch: returns ``ROWS``."""

    def __init__(self, result: object = ROWS, *, gated: bool = False) -> None:
        super().__init__(result, gated=gated)


class TimesOut:
    """A fetch whose rows never come: an ``asyncio.timeout`` inside it fires after ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls = 0

    async def __call__(self) -> CachedRows:
        self.calls += 1
        async with asyncio.timeout(self.seconds):
            await asyncio.Event().wait()
        return ROWS


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def _all_joined(cache: Cache, callers: int) -> None:
    """Wait until ``callers`` concurrent callers share one flight (a backend's ``get`` may
    await, so they reach it over several loop iterations)."""
    deadline = time.monotonic() + 10
    while cache.stats().coalesced < callers - 1:
        assert time.monotonic() < deadline, cache.stats()
        await asyncio.sleep(0.001)


async def _callers_first_cancelled(cache: Cache, fetch: Any) -> list[asyncio.Task[Any]]:
    """Three callers of ``get_or_fetch("k", fetch)`` sharing one flight, the first cancelled."""
    callers = [asyncio.create_task(cache.get_or_fetch("k", fetch)) for _ in range(3)]
    await _all_joined(cache, 3)
    callers[0].cancel()
    return callers


# -- basic read-through ----------------------------------------------------------------------


async def test_miss_fetches_stores_and_returns(cache: Cache) -> None:
    fetch = Fetcher()
    assert await cache.get_or_fetch("t/a", fetch) == ROWS
    assert await cache.get("t/a") == ROWS
    assert await cache.get_or_fetch("t/a", fetch) == ROWS
    assert fetch.calls == 1


@ALL
async def test_a_hit_does_not_fetch(cache: Cache, cache_backend: str) -> None:
    await cache.put("t/a", NEW)
    fetch = Fetcher()
    got = await cache.get_or_fetch("t/a", fetch)
    if cache_backend == "nocache":
        assert (got, fetch.calls) == (ROWS, 1)
    else:
        assert (got, fetch.calls) == (NEW, 0)


@ALL
async def test_nocache_fetches_on_every_call_and_the_others_once(
    cache: Cache, cache_backend: str
) -> None:
    fetch = Fetcher()
    for _ in range(3):
        assert await cache.get_or_fetch("k", fetch) == ROWS
    assert fetch.calls == (3 if cache_backend == "nocache" else 1)


async def test_mapping_result_is_wrapped_with_the_fetch_start_time(cache: Cache) -> None:
    async def fetch() -> Mapping[str, Mapping[str, Any]]:
        await asyncio.sleep(0.02)
        return {"b": {"x": 1}, "a": {"x": 2}}

    before = time.time()
    got = await cache.get_or_fetch("k", fetch)
    assert list(got.rows) == ["b", "a"]
    assert before <= got.fetched_at <= before + 0.015
    assert await cache.get("k") == got


async def test_non_str_key_is_type_error_before_fetching(cache: Cache) -> None:
    fetch = Fetcher()
    with pytest.raises(TypeError, match="int"):
        await cache.get_or_fetch(5, fetch)  # type: ignore[arg-type]
    assert fetch.calls == 0


# -- single-flight ---------------------------------------------------------------------------


@ALL
async def test_concurrent_misses_share_one_fetch(cache: Cache) -> None:
    fetch = Fetcher(gated=True)
    callers = [asyncio.create_task(cache.get_or_fetch("t/a", fetch)) for _ in range(100)]
    await _all_joined(cache, 100)
    fetch.gate.set()
    results = await asyncio.gather(*callers)
    assert fetch.calls == 1
    assert all(r is results[0] for r in results)
    stats = cache.stats()
    assert (stats.fetches, stats.coalesced) == (1, 99)


@ALL
async def test_different_keys_fetch_separately(cache: Cache) -> None:
    # Gated, so that the 30 calls overlap: a fetch that does not suspend completes inline,
    # before the next call starts, and on NoCache that next call fetches again.
    fetch = Fetcher(gated=True)
    callers = [asyncio.create_task(cache.get_or_fetch(f"t/{i % 3}", fetch)) for i in range(30)]
    await _all_joined(cache, 28)
    fetch.gate.set()
    await asyncio.gather(*callers)
    assert fetch.calls == 3


@ALL
async def test_concurrent_callers_share_the_exception(cache: Cache) -> None:
    error = LookupError("database down")
    fetch = Fetcher(error, gated=True)
    callers = [asyncio.create_task(cache.get_or_fetch("k", fetch)) for _ in range(10)]
    await _all_joined(cache, 10)
    fetch.gate.set()
    outcomes = await asyncio.gather(*callers, return_exceptions=True)
    assert fetch.calls == 1
    assert all(o is error for o in outcomes)
    assert cache.stats().fetch_errors == 1


@ALL
async def test_failed_fetch_is_not_cached_and_the_next_call_fetches_again(cache: Cache) -> None:
    failing = Fetcher(LookupError("down"))
    with pytest.raises(LookupError):
        await cache.get_or_fetch("k", failing)
    assert await cache.get("k") is None
    working = Fetcher()
    assert await cache.get_or_fetch("k", working) == ROWS
    assert working.calls == 1
    stats = cache.stats()
    assert (stats.fetches, stats.fetch_errors) == (2, 1)


@ALL
@pytest.mark.parametrize("bad", [None, [("r", {})], "rows"])
async def test_fetch_returning_no_rows_is_type_error_and_not_cached(
    cache: Cache, bad: object
) -> None:
    with pytest.raises(TypeError, match=type(bad).__name__):
        await cache.get_or_fetch("k", Fetcher(bad))
    assert await cache.get("k") is None
    assert cache.stats().fetch_errors == 1


@ALL
@pytest.mark.parametrize("ready", [False, True])
async def test_a_fetch_returning_a_future_is_awaited(
    cache: Cache, cache_backend: str, ready: bool
) -> None:
    # Any awaitable will do, not only a coroutine (on 3.12+ a coroutine wraps it for the task).
    future: asyncio.Future[CachedRows] = asyncio.get_running_loop().create_future()
    if ready:
        future.set_result(ROWS)
    else:
        asyncio.get_running_loop().call_later(0.01, future.set_result, ROWS)
    callers = [asyncio.create_task(cache.get_or_fetch("k", lambda: future)) for _ in range(3)]
    assert await asyncio.gather(*callers) == [ROWS] * 3
    # A done future does not suspend: on NoCache, which stores nothing, each call fetches.
    assert cache.stats().fetches == (3 if ready and cache_backend == "nocache" else 1)


@ALL
async def test_fetch_that_is_not_async_is_type_error(cache: Cache) -> None:
    with pytest.raises(TypeError):
        await cache.get_or_fetch("k", lambda: ROWS)  # type: ignore[arg-type,return-value]
    assert cache.stats().fetch_errors == 1


@ALL
@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
async def test_a_fetch_raising_keyboard_interrupt_at_once_leaves_no_flight(
    cache: Cache, exc_type: type[BaseException]
) -> None:
    async def fetch() -> CachedRows:
        raise exc_type

    with pytest.raises(exc_type):
        await cache.get_or_fetch("k", fetch)
    assert not cache._flights  # a later caller must not join a flight nobody will finish
    assert await asyncio.wait_for(cache.get_or_fetch("k", Fetcher()), 10) == ROWS
    stats = cache.stats()
    assert (stats.fetches, stats.fetches_cancelled) == (2, 1)


@ALL
async def test_cancelling_a_caller_that_joined_does_not_cancel_the_fetch(
    cache: Cache, cache_backend: str
) -> None:
    fetch = Fetcher(gated=True)
    callers = [asyncio.create_task(cache.get_or_fetch("k", fetch)) for _ in range(3)]
    await _all_joined(cache, 3)
    callers[1].cancel()
    callers[2].cancel()
    await _settle()
    assert callers[1].cancelled() and callers[2].cancelled()
    fetch.gate.set()
    assert await callers[0] == ROWS
    assert not fetch.cancelled
    assert fetch.calls == 1
    if cache_backend != "nocache":
        assert await cache.get("k") == ROWS


@ALL
@FETCH_IN_A_TASK
async def test_cancelling_the_first_caller_leaves_the_fetch_to_the_others(
    cache: Cache, cache_backend: str
) -> None:
    fetch = Fetcher(gated=True)
    callers = await _callers_first_cancelled(cache, fetch)
    await _settle()
    assert callers[0].cancelled()
    assert not fetch.cancelled
    fetch.gate.set()
    assert await asyncio.gather(*callers[1:]) == [ROWS, ROWS]
    assert fetch.calls == 1
    stats = cache.stats()
    assert (stats.fetches, stats.fetches_cancelled, stats.coalesced) == (1, 0, 2)
    if cache_backend != "nocache":
        assert await cache.get("k") == ROWS


@ALL
@FETCH_IN_A_TASK
async def test_the_first_caller_cancelled_then_the_fetch_fails_the_others_get_the_error(
    cache: Cache,
) -> None:
    error = LookupError("database down")
    fetch = Fetcher(error, gated=True)
    callers = await _callers_first_cancelled(cache, fetch)
    await _settle()
    fetch.gate.set()
    outcomes = await asyncio.gather(*callers, return_exceptions=True)
    assert isinstance(outcomes[0], asyncio.CancelledError)
    assert outcomes[1:] == [error, error]
    assert fetch.calls == 1
    assert cache.stats().fetch_errors == 1


class Unwinding(Fetcher):
    """Records when its ``finally`` ran."""

    def __init__(self) -> None:
        super().__init__(gated=True)
        self.unwound = asyncio.Event()

    async def __call__(self) -> Any:
        try:
            return await super().__call__()
        finally:
            self.unwound.set()


@ALL
@FETCH_IN_A_TASK
async def test_the_last_caller_to_leave_cancels_the_fetch(cache: Cache) -> None:
    fetch = Unwinding()
    callers = [asyncio.create_task(cache.get_or_fetch("k", fetch)) for _ in range(3)]
    await _all_joined(cache, 3)
    for caller in callers[:2]:
        caller.cancel()
        await _settle()
        assert caller.cancelled()
        assert not fetch.unwound.is_set()  # someone still waits: the fetch goes on
    callers[2].cancel()
    await asyncio.wait_for(fetch.unwound.wait(), 10)  # the fetch's finally runs
    assert fetch.cancelled and callers[2].cancelled()
    await _settle()
    stats = cache.stats()
    assert (stats.fetches, stats.fetches_cancelled) == (1, 1)
    assert not cache._flights
    assert await cache.get("k") is None


@ALL
@FETCH_IN_THE_CALLERS_TASK
async def test_cancelling_the_first_caller_cancels_its_fetch_and_the_others_fetch_anew(
    cache: Cache, cache_backend: str
) -> None:
    # The fetch runs in its first caller's task, so that a timeout inside it (which cancels
    # the current task) reaches it; the callers still waiting are not cancelled with it.
    fetch = Fetcher(gated=True)
    callers = await _callers_first_cancelled(cache, fetch)
    await _settle()
    assert callers[0].cancelled() and fetch.cancelled
    assert fetch.calls == 2  # one of the others started a new fetch, the last joined it
    fetch.gate.set()
    assert await asyncio.gather(*callers[1:]) == [ROWS, ROWS]
    stats = cache.stats()
    assert (stats.fetches, stats.fetches_cancelled, stats.coalesced) == (2, 1, 3)
    if cache_backend != "nocache":
        assert await cache.get("k") == ROWS


@ALL
@pytest.mark.parametrize("in_turn", [False, True], ids=["at-once", "in-turn"])
async def test_cancelling_every_caller_cancels_the_fetch_and_leaves_nothing(
    cache: Cache, in_turn: bool
) -> None:
    fetch = Fetcher(gated=True)
    callers = [asyncio.create_task(cache.get_or_fetch("k", fetch)) for _ in range(3)]
    await _all_joined(cache, 3)
    for caller in callers:
        caller.cancel()
        if in_turn:
            await _settle()
    await _settle()
    assert all(c.cancelled() for c in callers)
    assert fetch.cancelled
    assert not cache._flights
    assert cache.stats().fetches == cache.stats().fetches_cancelled
    assert await cache.get("k") is None
    # The flight is gone: the next caller starts a fresh fetch.
    again = Fetcher(NEW)
    assert await cache.get_or_fetch("k", again) == NEW
    assert again.calls == 1
    assert cache.stats().fetch_errors == 0


@ALL
async def test_a_caller_arriving_as_the_last_waiter_cancels_starts_a_new_fetch(
    cache: Cache,
) -> None:
    old = Fetcher(gated=True)
    first = asyncio.create_task(cache.get_or_fetch("k", old))
    await old.started.wait()
    first.cancel()
    # Arrives while the abandoned fetch is still being cancelled: it must not inherit that
    # cancellation, since nobody cancelled this caller.
    second = asyncio.create_task(cache.get_or_fetch("k", Fetcher(NEW)))
    outcomes = await asyncio.gather(first, second, return_exceptions=True)
    assert isinstance(outcomes[0], asyncio.CancelledError)
    assert outcomes[1] == NEW
    assert old.cancelled
    assert cache.stats().fetches == 2


class Returned(Fetcher):
    """Sets ``returned`` as the fetch hands back its rows."""

    def __init__(self) -> None:
        super().__init__()
        self.returned = asyncio.Event()

    async def __call__(self) -> Any:
        try:
            return await super().__call__()
        finally:
            self.returned.set()


async def test_cancelling_the_last_waiter_after_the_fetch_returned_still_stores(
    cache: Cache,
) -> None:
    fetch = Returned()
    caller = asyncio.create_task(cache.get_or_fetch("k", fetch))
    await fetch.returned.wait()
    caller.cancel()  # the flight may still be writing (a backend's _put can await)
    await asyncio.gather(caller, return_exceptions=True)
    deadline = time.monotonic() + 10
    while cache.stats().fills == 0:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.001)
    assert await cache.get("k") == ROWS


# -- no stale fills --------------------------------------------------------------------------


@pytest.mark.parametrize("suspends", [False, True], ids=["at-once", "suspends-after"])
@pytest.mark.parametrize("writer", ["invalidate", "put"])
async def test_a_write_inside_the_fetchs_first_step_prevents_the_fill(
    cache: Cache, writer: str, suspends: bool
) -> None:
    # No flight is registered while the fetch's first step runs (the generation stands in
    # for it): a write made there must still refuse the fill, whether the fetch then returns
    # at once or suspends first (its flight must then not register).
    async def fetch() -> CachedRows:
        if writer == "invalidate":
            await cache.invalidate_prefix("t1/")
        else:
            await cache.put("t1/k", NEW)
        if suspends:
            await asyncio.sleep(0)
        return ROWS

    assert await cache.get_or_fetch("t1/k", fetch) == ROWS
    assert await cache.get("t1/k") == (None if writer == "invalidate" else NEW)
    stats = cache.stats()
    assert (stats.fills, stats.stale_fills_prevented) == (0, 1)
    assert not cache._flights
    # A later call fetches (or hits the put) and stores as usual.
    assert await cache.get_or_fetch("t1/k", Fetcher(NEW)) == NEW
    assert await cache.get("t1/k") == NEW


async def test_invalidation_during_fetch_prevents_the_stale_fill(cache: Cache) -> None:
    # The race: the fetch reads the old rows, a write invalidates, then the fetch finishes.
    fetch = Fetcher(ROWS, gated=True)
    reader = asyncio.create_task(cache.get_or_fetch("t1/clients/page_1", fetch))
    await fetch.started.wait()
    assert await cache.invalidate_prefix("t1/clients/") == 0
    fetch.gate.set()
    assert await reader == ROWS  # the callers still get their answer ...
    assert await cache.get("t1/clients/page_1") is None  # ... but it is not stored
    stats = cache.stats()
    assert (stats.fills, stats.stale_fills_prevented) == (0, 1)
    # The next read fetches the new rows and stores them.
    assert await cache.get_or_fetch("t1/clients/page_1", Fetcher(NEW)) == NEW
    assert await cache.get("t1/clients/page_1") == NEW


@pytest.mark.parametrize("prefix", ["", "t", "t1/", "t1/clients/page_1"])
async def test_any_prefix_of_the_key_prevents_the_fill(cache: Cache, prefix: str) -> None:
    fetch = Fetcher(gated=True)
    reader = asyncio.create_task(cache.get_or_fetch("t1/clients/page_1", fetch))
    await fetch.started.wait()
    await cache.invalidate_prefix(prefix)
    fetch.gate.set()
    await reader
    assert await cache.get("t1/clients/page_1") is None


@pytest.mark.parametrize("prefix", ["t2", "t1/clients/page_10", "t1/orders", "u"])
async def test_other_prefixes_leave_the_fill(cache: Cache, prefix: str) -> None:
    fetch = Fetcher(gated=True)
    reader = asyncio.create_task(cache.get_or_fetch("t1/clients/page_1", fetch))
    await fetch.started.wait()
    await cache.invalidate_prefix(prefix)
    fetch.gate.set()
    await reader
    assert await cache.get("t1/clients/page_1") == ROWS
    assert cache.stats().stale_fills_prevented == 0


async def test_callers_after_the_invalidation_do_not_join_the_stale_fetch(cache: Cache) -> None:
    old = Fetcher(ROWS, gated=True)
    first = asyncio.create_task(cache.get_or_fetch("t/k", old))
    await old.started.wait()
    await cache.invalidate_prefix("t/")
    new = Fetcher(NEW, gated=True)
    second = asyncio.create_task(cache.get_or_fetch("t/k", new))
    await new.started.wait()
    new.gate.set()
    assert await second == NEW
    old.gate.set()
    assert await first == ROWS
    assert await cache.get("t/k") == NEW  # the older fetch, finishing last, did not overwrite
    assert cache.stats().fetches == 2


async def test_put_during_fetch_wins_over_the_fetch(cache: Cache) -> None:
    fetch = Fetcher(ROWS, gated=True)
    reader = asyncio.create_task(cache.get_or_fetch("k", fetch))
    await fetch.started.wait()
    await cache.put("k", NEW)
    fetch.gate.set()
    assert await reader == ROWS
    assert await cache.get("k") == NEW
    assert cache.stats().stale_fills_prevented == 1


class SlowWriteCache(DictCache):
    """A backend whose writes really await, and land in call order as the backend rule asks.

    Every write goes through one FIFO lock; ``_put`` holds it until ``write_gate`` is set.
    """

    def __init__(self) -> None:
        super().__init__()
        self.writing = asyncio.Event()
        self.write_gate = asyncio.Event()
        self.order = asyncio.Lock()

    async def _put(self, key: str, rows: CachedRows) -> None:
        async with self.order:
            self.writing.set()
            await self.write_gate.wait()
            await super()._put(key, rows)

    async def _invalidate(self, prefix: str) -> int:
        async with self.order:
            return await super()._invalidate(prefix)


async def test_invalidation_called_during_the_write_removes_the_fill() -> None:
    cache = SlowWriteCache()
    cache.write_gate.set()
    await cache.put("t/other", NEW)
    cache.write_gate.clear()
    cache.writing.clear()
    reader = asyncio.create_task(cache.get_or_fetch("t/k", Fetcher(ROWS)))
    await cache.writing.wait()
    invalidation = asyncio.create_task(cache.invalidate_prefix("t/"))
    await asyncio.sleep(0)
    cache.write_gate.set()
    assert await reader == ROWS
    assert await invalidation == 2
    assert cache.data == {}
    assert cache.stats().stale_fills_prevented == 1


async def test_put_during_the_write_wins_and_leaves_other_keys() -> None:
    cache = SlowWriteCache()
    cache.write_gate.set()
    await cache.put("k/other", NEW)
    cache.write_gate.clear()
    cache.writing.clear()
    reader = asyncio.create_task(cache.get_or_fetch("k", Fetcher(ROWS)))
    await cache.writing.wait()
    newer = asyncio.create_task(cache.put("k", NEW))
    await asyncio.sleep(0)
    cache.write_gate.set()
    assert await reader == ROWS
    await newer
    assert cache.data == {"k/other": NEW, "k": NEW}
    assert cache.stats().stale_fills_prevented == 1


async def test_cancelling_the_caller_during_the_write_still_stores() -> None:
    cache = SlowWriteCache()
    caller = asyncio.create_task(cache.get_or_fetch("k", Fetcher(ROWS)))
    await cache.writing.wait()
    caller.cancel()
    await asyncio.gather(caller, return_exceptions=True)
    assert caller.cancelled()
    cache.write_gate.set()
    await _settle()
    assert cache.data["k"] == ROWS
    assert cache.stats().fills == 1


# -- the miss path: inline, a task only when needed (issue 14) --------------------------------


@ALL
@FETCH_IN_THE_CALLERS_TASK
async def test_a_lone_miss_runs_the_fetch_in_the_callers_task(cache: Cache) -> None:
    seen: list[Any] = []

    async def fetch() -> CachedRows:
        seen.append((asyncio.current_task(), len(asyncio.all_tasks())))
        await asyncio.sleep(0)
        seen.append((asyncio.current_task(), len(asyncio.all_tasks())))
        return ROWS

    caller = asyncio.create_task(cache.get_or_fetch("k", fetch))
    assert await caller == ROWS
    # No task of its own: the fetch ran in the caller's task (the test's task plus it).
    assert seen == [(caller, 2), (caller, 2)]


# Backends whose read and store never await (LmdbCache's go through its threads).
SYNCHRONOUS_BACKENDS = pytest.mark.parametrize(
    "cache_backend", ["mem-cython", "mem-python", "nocache"], indirect=True
)


@SYNCHRONOUS_BACKENDS
@FETCH_IN_A_TASK
async def test_a_fetch_runs_in_a_task_of_its_own_started_at_once(cache: Cache) -> None:
    ran: list[str] = []
    seen: list[Any] = []

    async def bystander() -> None:
        ran.append("bystander")

    async def fetch() -> CachedRows:
        seen.append((asyncio.current_task(), list(ran)))
        await asyncio.sleep(0)
        seen.append((asyncio.current_task(), list(ran)))
        return ROWS

    other = asyncio.create_task(bystander())  # runs at the loop's next iteration
    me = asyncio.current_task()
    assert await cache.get_or_fetch("k", fetch) == ROWS
    await other
    (first, ran_before), (second, ran_after) = seen
    assert first is second and first is not me  # one task of its own ...
    assert ran_before == []  # ... whose first step ran inside the call, before the loop
    assert ran_after == ["bystander"]


@SYNCHRONOUS_BACKENDS
@pytest.mark.parametrize("outcome", ["rows", "error"])
async def test_a_fetch_that_never_suspends_costs_no_loop_iteration(
    cache: Cache, outcome: str
) -> None:
    error = LookupError("not found")
    fetch = Fetcher(ROWS if outcome == "rows" else error)  # its gate is open: no suspension
    ran: list[str] = []

    async def bystander() -> None:
        ran.append("bystander")

    other = asyncio.create_task(bystander())  # runs at the loop's next iteration
    if outcome == "rows":
        assert await cache.get_or_fetch("k", fetch) == ROWS
    else:
        with pytest.raises(LookupError) as raised:
            await cache.get_or_fetch("k", fetch)
        assert raised.value is error
    assert ran == []  # the miss came and went without the loop running anything else
    assert fetch.calls == 1
    await other
    assert ran == ["bystander"]


@ALL
async def test_a_fetch_that_reads_through_the_cache_itself(cache: Cache) -> None:
    # Nested misses (eagerly started tasks inside an eagerly started task, on 3.12+): each
    # gets its rows, and the current task is the caller's again afterwards.
    me = asyncio.current_task()

    async def inner() -> CachedRows:
        return NEW

    async def inner_suspending() -> CachedRows:
        await asyncio.sleep(0)
        return NEW

    async def outer() -> CachedRows:
        assert await cache.get_or_fetch("inner/1", inner) == NEW
        assert await cache.get_or_fetch("inner/2", inner_suspending) == NEW
        return ROWS

    assert await cache.get_or_fetch("outer", outer) == ROWS
    assert asyncio.current_task() is me
    assert cache.stats().fetches == 3


@ALL
async def test_a_fetch_that_raises_cancelled_itself_is_shared_not_retried(
    cache: Cache,
) -> None:
    # Nobody cancelled the callers: the fetch's CancelledError is its outcome, shared like
    # any exception, and nobody starts the fetch again.
    gate = asyncio.Event()
    calls = 0

    async def fetch() -> CachedRows:
        nonlocal calls
        calls += 1
        await gate.wait()
        raise asyncio.CancelledError

    callers = [asyncio.create_task(cache.get_or_fetch("k", fetch)) for _ in range(3)]
    await _all_joined(cache, 3)
    gate.set()
    outcomes = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(o, asyncio.CancelledError) for o in outcomes), outcomes
    assert calls == 1
    assert cache.stats().fetches_cancelled == 1


CALLER = contextvars.ContextVar[str]("CALLER")


@FETCH_IN_A_TASK
async def test_a_fetch_sees_a_copy_of_the_callers_context(cache: Cache) -> None:
    seen: list[str] = []

    async def fetch() -> CachedRows:
        seen.append(CALLER.get())
        CALLER.set("set by the fetch")
        await asyncio.sleep(0)
        return ROWS

    CALLER.set("the caller's")
    assert await cache.get_or_fetch("k", fetch) == ROWS
    assert seen == ["the caller's"]
    assert CALLER.get() == "the caller's"  # the fetch's own set stayed in its copy


@FETCH_IN_THE_CALLERS_TASK
async def test_a_fetch_runs_in_the_callers_context(cache: Cache) -> None:
    async def fetch() -> CachedRows:
        assert CALLER.get() == "the caller's"
        CALLER.set("set by the fetch")
        await asyncio.sleep(0)
        return ROWS

    CALLER.set("the caller's")
    assert await cache.get_or_fetch("k", fetch) == ROWS
    assert CALLER.get() == "set by the fetch"  # as if the caller had awaited it directly


@ALL
@NEEDS_ASYNCIO_TIMEOUT
async def test_a_timeout_inside_the_fetch_reaches_every_caller(cache: Cache) -> None:
    fetch = TimesOut(0.05)
    outcomes = await asyncio.wait_for(
        asyncio.gather(*(cache.get_or_fetch("k", fetch) for _ in range(3)), return_exceptions=True),
        10,
    )
    assert fetch.calls == 1
    assert all(isinstance(o, TimeoutError) for o in outcomes), outcomes
    assert cache.stats().fetch_errors == 1


@ALL
@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.TaskGroup is new in Python 3.11")
@pytest.mark.parametrize("fails", [False, True])
async def test_a_task_group_inside_the_fetch(cache: Cache, fails: bool) -> None:
    error = LookupError("one query failed")
    gate = asyncio.Event()
    calls = 0

    async def part(n: int) -> dict[str, int]:
        await gate.wait()
        if fails and n == 1:
            raise error
        return {"n": n}

    async def fetch() -> Mapping[str, Mapping[str, Any]]:
        nonlocal calls
        calls += 1
        async with asyncio.TaskGroup() as group:
            parts = [group.create_task(part(n)) for n in range(3)]
        return {f"r{n}": p.result() for n, p in enumerate(parts)}

    callers = [asyncio.create_task(cache.get_or_fetch("k", fetch)) for _ in range(3)]
    await _all_joined(cache, 3)
    gate.set()
    outcomes = await asyncio.gather(*callers, return_exceptions=True)
    assert calls == 1
    if fails:
        # One ExceptionGroup (new in 3.11, hence no name here), the same for every caller.
        assert outcomes[0] is outcomes[1] is outcomes[2]
        assert getattr(outcomes[0], "exceptions", None) == (error,), outcomes
    else:
        assert all(o == outcomes[0] for o in outcomes)
        assert list(outcomes[0].rows) == ["r0", "r1", "r2"]  # type: ignore[union-attr]


@ALL
@FETCH_IN_A_TASK
async def test_a_timeout_inside_the_fetch_after_its_first_caller_left(cache: Cache) -> None:
    # The timeout acts on the fetch's task, not on the caller that started it.
    fetch = TimesOut(0.1)
    callers = await _callers_first_cancelled(cache, fetch)
    outcomes = await asyncio.wait_for(asyncio.gather(*callers, return_exceptions=True), 10)
    assert isinstance(outcomes[0], asyncio.CancelledError)
    assert all(isinstance(o, TimeoutError) for o in outcomes[1:]), outcomes
    assert fetch.calls == 1
    assert cache.stats().fetch_errors == 1


@ALL
@FETCH_IN_A_TASK
async def test_a_timeout_around_the_first_call_leaves_the_fetch_to_the_others(
    cache: Cache,
) -> None:
    fetch = Fetcher(gated=True)

    async def impatient() -> Any:
        async with asyncio.timeout(0.05):
            return await cache.get_or_fetch("k", fetch)

    first = asyncio.create_task(impatient())
    await fetch.started.wait()
    patient = asyncio.create_task(cache.get_or_fetch("k", fetch))
    with pytest.raises(TimeoutError):
        await first
    assert not fetch.cancelled
    fetch.gate.set()
    assert await patient == ROWS
    assert fetch.calls == 1


@ALL
async def test_a_fetch_that_yields_many_times(cache: Cache) -> None:
    async def fetch() -> CachedRows:
        for _ in range(5):
            await asyncio.sleep(0)
        await asyncio.sleep(0.001)
        return ROWS

    got = await asyncio.gather(*(cache.get_or_fetch("k", fetch) for _ in range(10)))
    assert got == [ROWS] * 10
    assert cache.stats().fetches == 1


# -- max_age ---------------------------------------------------------------------------------


async def test_get_or_fetch_refetches_rows_older_than_max_age(cache: Cache) -> None:
    await cache.put("k", CachedRows({}, time.time() - 100))
    fresh = CachedRows({"r": {}})
    fetch = Fetcher(fresh)
    assert await cache.get_or_fetch("k", fetch, max_age=30) == fresh
    assert await cache.get("k") == fresh
    assert await cache.get_or_fetch("k", fetch, max_age=30) == fresh
    assert fetch.calls == 1


async def test_get_or_fetch_uses_the_default_max_age(make_cache: Any) -> None:
    cache = make_cache(max_age=30)
    await cache.put("old", CachedRows({}, time.time() - 100))
    await cache.put("new", CachedRows({}, time.time()))
    fetch = Fetcher()
    assert await cache.get_or_fetch("old", fetch) == ROWS
    assert (await cache.get_or_fetch("new", fetch)).rows == {}
    assert fetch.calls == 1


# -- stats -----------------------------------------------------------------------------------


async def test_stats_count_a_read_through_session(cache: Cache) -> None:
    await cache.get_or_fetch("a", Fetcher())  # miss, fetch, fill
    await cache.get_or_fetch("a", Fetcher())  # hit
    with pytest.raises(LookupError):
        await cache.get_or_fetch("b", Fetcher(LookupError()))  # miss, fetch, error
    gated = Fetcher(gated=True)
    readers = [asyncio.create_task(cache.get_or_fetch("c", gated)) for _ in range(4)]
    await _all_joined(cache, 4)  # 4 misses, 1 fetch, 3 coalesced
    await cache.invalidate_prefix("c")
    gated.gate.set()
    await asyncio.gather(*readers)  # stale fill prevented
    assert cache.stats() == CacheStats(
        hits=1,
        misses=6,
        fetches=3,
        coalesced=3,
        fills=1,
        stale_fills_prevented=1,
        fetch_errors=1,
        invalidations=1,
        keys_removed=0,
    )


# -- stale fills across threads (issue 12, item 1) -------------------------------------------


def _pause_after_the_store_check(cache: Any) -> tuple[threading.Event, threading.Event]:
    """Make the fill's first "still current?" check that answers yes block until told.

    Returns (``checked``: the filling thread is paused right after that check, ``resume``).
    The pause sits where a thread switch could fall between the check and the store: a
    fetch that returned in its first step checks the cache's generation under the lock in
    ``_miss`` (the pause returns the value read before it); one that suspended checks its
    registration, one lookup in the registry.
    """
    checked, resume = threading.Event(), threading.Event()

    def pause() -> None:
        if not checked.is_set():
            checked.set()
            assert resume.wait(30)

    class PausingTrie(type(cache._flights)):  # type: ignore[misc]
        def get(self, key: str, default: Any = None) -> Any:
            answer = super().get(key, default)
            if answer is not None:
                pause()
            return answer

    class PausingCache(type(cache)):  # type: ignore[misc]
        @property
        def _generation(self) -> int:
            value: int = self.__dict__["_generation_value"]
            frame = sys._getframe(1)
            if frame.f_code.co_name == "_miss" and "lock" in frame.f_locals:
                pause()  # the check under the lock, not the read before the fetch
            return value

        @_generation.setter
        def _generation(self, value: int) -> None:
            self.__dict__["_generation_value"] = value

    assert not cache._flights
    cache._flights = PausingTrie()
    cache.__dict__["_generation_value"] = cache.__dict__.pop("_generation")
    cache.__class__ = PausingCache
    return checked, resume


class Yielding(Fetcher):
    """A fetch that suspends (a bare yield) before it returns: the miss path's general case."""

    async def __call__(self) -> Any:
        await asyncio.sleep(0)
        return await super().__call__()


@pytest.mark.parametrize("fetcher", [Fetcher, Yielding])
@pytest.mark.parametrize("writer", ["invalidate", "put"])
async def test_a_write_from_another_thread_between_check_and_store_wins(
    cache: Cache, writer: str, fetcher: type[Fetcher]
) -> None:
    await cache.put("t/other", NEW)
    checked, resume = _pause_after_the_store_check(cache)
    filler = threading.Thread(
        target=lambda: asyncio.run(cache.get_or_fetch("t/k", fetcher(ROWS))), daemon=True
    )
    filler.start()
    assert await asyncio.to_thread(checked.wait, 30)

    def write() -> None:
        if writer == "invalidate":
            asyncio.run(cache.invalidate_prefix("t/"))
        else:
            asyncio.run(cache.put("t/k", NEW))

    other = threading.Thread(target=write, daemon=True)
    other.start()
    # The write either completes now (it must then win) or waits for the store to finish.
    await asyncio.to_thread(other.join, 0.3)
    resume.set()
    await asyncio.to_thread(filler.join, 30)
    await asyncio.to_thread(other.join, 30)
    assert not filler.is_alive() and not other.is_alive()
    expected = None if writer == "invalidate" else NEW
    assert await cache.get("t/k") == expected


# -- every outcome counted once (issue 12, item 13) ------------------------------------------


async def _hit(cache: Cache) -> None:
    await cache.put("k", ROWS)
    await cache.get_or_fetch("k", Fetcher())


async def _fill(cache: Cache) -> None:
    await cache.get_or_fetch("k", Fetcher())


async def _fill_after_suspending(cache: Cache) -> None:
    fetch = Fetcher(gated=True)
    caller = asyncio.create_task(cache.get_or_fetch("k", fetch))
    await fetch.started.wait()
    fetch.gate.set()
    await caller


async def _coalesced(cache: Cache) -> None:
    fetch = Fetcher(gated=True)
    callers = [asyncio.create_task(cache.get_or_fetch("k", fetch)) for _ in range(2)]
    await _all_joined(cache, 2)
    fetch.gate.set()
    await asyncio.gather(*callers)


async def _fetch_error(cache: Cache) -> None:
    with pytest.raises(LookupError):
        await cache.get_or_fetch("k", Fetcher(LookupError()))


async def _fetch_error_after_suspending(cache: Cache) -> None:
    fetch = Fetcher(LookupError(), gated=True)
    caller = asyncio.create_task(cache.get_or_fetch("k", fetch))
    await fetch.started.wait()
    fetch.gate.set()
    with pytest.raises(LookupError):
        await caller


async def _stale_fill(cache: Cache) -> None:
    fetch = Fetcher(gated=True)
    caller = asyncio.create_task(cache.get_or_fetch("k", fetch))
    await fetch.started.wait()
    await cache.invalidate_prefix("k")
    fetch.gate.set()
    await caller


async def _cancelled(cache: Cache) -> None:
    fetch = Fetcher(gated=True)
    caller = asyncio.create_task(cache.get_or_fetch("k", fetch))
    await fetch.started.wait()
    caller.cancel()
    await asyncio.gather(caller, return_exceptions=True)
    await _settle()  # on 3.12+ the fetch's own task ends at a later loop iteration
    assert fetch.cancelled


async def _stale_served(cache: Cache) -> None:
    await cache.put("k", CachedRows({}, time.time() - 100))
    await cache.get_or_fetch("k", Fetcher(), max_age=10, stale_while_revalidate=1000)
    deadline = time.monotonic() + 10
    while cache._refresh_tasks:  # the refresh runs in the background
        assert time.monotonic() < deadline
        await asyncio.sleep(0.001)


# (scenario, counters on a storing backend, counters on NoCache); puts and invalidations
# the scenario makes are left out of the comparison.
OUTCOMES = [
    (_hit, {"hits": 1}, {"misses": 1, "fetches": 1}),
    (_fill, {"misses": 1, "fetches": 1, "fills": 1}, {"misses": 1, "fetches": 1}),
    (
        _fill_after_suspending,
        {"misses": 1, "fetches": 1, "fills": 1},
        {"misses": 1, "fetches": 1},
    ),
    (
        _coalesced,
        {"misses": 2, "fetches": 1, "coalesced": 1, "fills": 1},
        {"misses": 2, "fetches": 1, "coalesced": 1},
    ),
    (_fetch_error, {"misses": 1, "fetches": 1, "fetch_errors": 1}, None),
    (_fetch_error_after_suspending, {"misses": 1, "fetches": 1, "fetch_errors": 1}, None),
    (
        _stale_fill,
        {"misses": 1, "fetches": 1, "stale_fills_prevented": 1},
        {"misses": 1, "fetches": 1},
    ),
    (_cancelled, {"misses": 1, "fetches": 1, "fetches_cancelled": 1}, None),
    (
        _stale_served,
        {"stale_served": 1, "refreshes": 1, "fetches": 1, "fills": 1},
        {"misses": 1, "fetches": 1},
    ),
]


@ALL
@pytest.mark.parametrize(
    ("scenario", "storing", "nocache"), OUTCOMES, ids=[o[0].__name__[1:] for o in OUTCOMES]
)
async def test_each_outcome_is_counted_exactly_once(
    cache: Cache,
    cache_backend: str,
    scenario: Any,
    storing: dict[str, int],
    nocache: dict[str, int] | None,
) -> None:
    await scenario(cache)
    expected = storing if cache_backend != "nocache" or nocache is None else nocache
    got = cache.stats()
    counted = {
        name: value
        for name, value in vars(CacheStats)["__dataclass_fields__"].items()
        if name not in ("invalidations", "keys_removed")
    }
    assert {name: getattr(got, name) for name in counted} == {
        name: expected.get(name, 0) for name in counted
    }


@ALL
async def test_nocache_reports_no_fill(cache: Cache, cache_backend: str) -> None:
    await cache.get_or_fetch("k", Fetcher())
    assert cache.stats().fills == (0 if cache_backend == "nocache" else 1)


class FailingStoreCache(DictCache):
    """A backend written to the rule whose store fails (a full disk, say)."""

    async def _put(self, key: str, rows: CachedRows) -> None:
        raise OSError("no space left on device")


@pytest.mark.parametrize("suspend", [False, True])
async def test_a_fill_whose_store_fails_is_counted_and_raised(suspend: bool) -> None:
    cache = FailingStoreCache()
    fetch = Fetcher(gated=suspend)
    caller = asyncio.create_task(cache.get_or_fetch("k", fetch))
    await fetch.started.wait()
    fetch.gate.set()
    with pytest.raises(OSError, match="no space"):
        await caller
    assert cache.stats() == CacheStats(misses=1, fetches=1, fill_errors=1)
    assert not cache._flights  # nothing left registered: the next call fetches again
    fetch2 = Fetcher()
    with pytest.raises(OSError):
        await cache.get_or_fetch("k", fetch2)
    assert fetch2.calls == 1


async def test_lmdb_fill_into_a_full_map_is_a_fill_error(tmp_path: Any) -> None:
    from trie_cache import LmdbCache, LmdbCacheError

    big = CachedRows({f"r{i}": {"pad": "x" * 1000} for i in range(50)}, 1.0)
    async with LmdbCache(
        tmp_path / "db", map_size=1 << 17, max_map_size=1 << 18, durable=False
    ) as cache:
        with pytest.raises(LmdbCacheError, match="full"):
            for i in range(100):
                await cache.get_or_fetch(f"k{i}", Fetcher(big))
        stats = cache.stats()
        assert stats.fill_errors == 1
        assert stats.fetches == stats.fills + stats.fill_errors


@ALL
@pytest.mark.parametrize("options", [{}, {"max_age": 60.0, "stale_while_revalidate": 5.0}])
async def test_a_cache_sets_at_most_30_attributes_after_use(
    make_cache: Callable[..., Any], options: dict[str, Any]
) -> None:
    """CPython shares the attribute names of a class's instances in a table of 30; an instance
    with more keeps a plain dict, and then no method call on it is specialised (each
    ``self._miss(...)`` looks the method up: about 4% of a miss). Rare counters are class
    defaults for that reason; this holds after a hit, a miss and an invalidation."""
    cache = make_cache(**options)
    await cache.put("t/a", ROWS)
    await cache.get_or_fetch("t/a", Fetcher())
    await cache.get_or_fetch("t/b", Fetcher())
    await cache.get("t/a")
    await cache.invalidate_prefix("t/")
    assert len(vars(cache)) <= 30, sorted(vars(cache))
