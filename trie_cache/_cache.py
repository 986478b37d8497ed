"""The cache contract, the read-through machinery every backend shares, and ``NoCache``.

Backend rule: a backend subclasses :class:`Cache`, calls ``super().__init__(max_age=max_age)``
and implements three coroutines, which receive input the base has already checked (``key`` and
``prefix`` are ``str``, ``rows`` is a :class:`CachedRows`)::

    async def _get(self, key) -> CachedRows | None   # the stored rows or None; no age check
    async def _put(self, key, rows) -> None           # store, replacing what was there
    async def _invalidate(self, prefix) -> int        # drop every key starting with prefix

and optionally ``aclose()``. Writes must take effect in the order they are called: a ``_put``
called before an ``_invalidate`` (or another ``_put``) lands before it, even if both await.
``MemCache`` writes synchronously; ``LmdbCache`` feeds one writer thread through a queue. The
base provides the public API on top of those three and keeps
all bookkeeping: ``get`` (``max_age``, hit and miss counts), ``put``, ``invalidate_prefix``,
``get_or_fetch`` (single-flight, no stale fills) and ``stats``. Backends do not override the
public methods; the exceptions are ``MemCache.get`` and ``put``, the same logic inlined for speed.

How stale fills are refused. Each key with a fetch in flight has a *registration* in a radix
trie (``_flights``). ``invalidate_prefix(p)`` first detaches every registration under ``p`` with
the trie's own ``invalidate_prefix`` -- O(len(p)), however many fetches are pending -- and
``put(key, ...)`` drops the registration of ``key``. A fetch stores its result only if its
registration is still the one in the trie (one O(len(key)) lookup) before the write. An
invalidation or put called while that write is in progress lands after it (the ordering rule
above), so it removes or replaces the fill, and nothing needs undoing. This is
the per-prefix generation counter of the issue in trie form: detaching a subtree ends the
generation of every fetch under it, and nothing needs pruning afterwards.
"""

from __future__ import annotations

import abc
import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._core import RadixTrie
from ._rows import CachedRows

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "Cache",
    "CacheStats",
    "Fetch",
    "NoCache",
    "check_key",
    "check_max_age",
    "check_prefix",
    "check_rows",
]

#: What ``get_or_fetch`` accepts as ``fetch``: an async callable returning rows.
Fetch = Callable[[], Awaitable["CachedRows | Mapping[str, Mapping[str, Any]]"]]


def check_key(key: object) -> str:
    if not isinstance(key, str):
        raise TypeError(f"cache keys must be str, not {type(key).__name__}")
    return key


def check_prefix(prefix: object) -> str:
    if not isinstance(prefix, str):
        raise TypeError(f"prefixes must be str, not {type(prefix).__name__}")
    return prefix


def check_rows(rows: object) -> CachedRows:
    if not isinstance(rows, CachedRows):
        raise TypeError(f"cache values must be CachedRows, not {type(rows).__name__}")
    return rows


def check_max_age(max_age: object) -> float | None:
    """``None`` or a non-negative number of seconds (``math.inf``: no limit)."""
    if max_age is None:
        return None
    if isinstance(max_age, bool) or not isinstance(max_age, (int, float)):
        raise TypeError(
            f"max_age must be a number of seconds or None, not {type(max_age).__name__}"
        )
    value = float(max_age)
    if math.isnan(value) or value < 0:
        raise ValueError(f"max_age must be a non-negative number of seconds, not {max_age!r}")
    return value


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters since the cache was created; a snapshot, taken by :meth:`Cache.stats`.

    Counters are plain integers updated without locks: exact for one event loop, and may
    miss an increment when several threads use one cache at the same moment.
    """

    hits: int = 0
    """``get`` (also inside ``get_or_fetch``) found rows young enough."""
    misses: int = 0
    """``get`` found nothing, or rows older than ``max_age``."""
    fetches: int = 0
    """Calls of a ``fetch`` function started by ``get_or_fetch``."""
    coalesced: int = 0
    """``get_or_fetch`` calls that joined a fetch already in flight instead of starting one."""
    fills: int = 0
    """Fetched rows stored in the cache."""
    stale_fills_prevented: int = 0
    """Fetched rows not stored because the key was invalidated or put while fetching."""
    fetch_errors: int = 0
    """Fetches that raised (or returned something that is not rows); nothing is stored."""
    invalidations: int = 0
    """Calls of ``invalidate_prefix``."""
    keys_removed: int = 0
    """Keys those calls removed, in total."""
    evictions: int = 0
    """Entries removed to make room under ``max_entries`` / ``max_bytes`` (MemCache)."""
    expirations: int = 0
    """Entries removed by the eviction hand because older than the cache's ``max_age``."""
    oversized: int = 0
    """Rows not stored because heavier than ``max_bytes`` on their own."""


class _Flight:
    """One fetch in flight for one key on one event loop, and how many callers await it."""

    __slots__ = ("abandoned", "fetching", "loop", "slot", "task", "waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop, slot: dict[Any, _Flight]) -> None:
        self.loop = loop
        #: The registration of the key in ``Cache._flights`` this fetch belongs to.
        self.slot = slot
        self.task: asyncio.Task[CachedRows] | None = None
        self.waiters = 0
        #: True until ``fetch()`` returned or raised; only then may the last caller cancel it.
        self.fetching = True
        #: Its last caller cancelled it; a later caller must not join it but start anew.
        self.abandoned = False


def _retrieve(task: asyncio.Task[CachedRows]) -> None:
    # Mark the outcome as seen, so a fetch whose callers all left logs no "never retrieved".
    if not task.cancelled():
        task.exception()


class Cache(abc.ABC):
    """An async cache of :class:`CachedRows` under ``str`` keys.

    A miss is ``None``; exceptions are for real faults and bad input. Keys are opaque:
    ``invalidate_prefix(p)`` drops every key that starts with ``p`` as a plain string.
    ``max_age`` (seconds) is the default age limit of ``get`` and ``get_or_fetch``: rows
    whose ``fetched_at`` is older count as a miss. ``None`` means no limit.
    """

    def __init__(self, *, max_age: float | None = None) -> None:
        self._max_age = check_max_age(max_age)
        # key -> {event loop: _Flight}; see the module docstring.
        self._flights: Any = RadixTrie()
        self._hits = 0
        self._misses = 0
        self._fetches = 0
        self._coalesced = 0
        self._fills = 0
        self._stale_fills_prevented = 0
        self._fetch_errors = 0
        self._invalidations = 0
        self._keys_removed = 0

    # -- what a backend implements ------------------------------------------------------

    @abc.abstractmethod
    async def _get(self, key: str) -> CachedRows | None:
        """The rows stored under ``key`` or ``None``, whatever their age."""

    @abc.abstractmethod
    async def _put(self, key: str, rows: CachedRows) -> None:
        """Store ``rows`` under ``key``, replacing what was there."""

    @abc.abstractmethod
    async def _invalidate(self, prefix: str) -> int:
        """Drop every key starting with ``prefix`` (``""``: all); return how many."""

    # -- the public API -------------------------------------------------------------------

    @property
    def max_age(self) -> float | None:
        """The default age limit in seconds, or ``None``."""
        return self._max_age

    async def get(self, key: str, max_age: float | None = None) -> CachedRows | None:
        """The rows stored under ``key``, or ``None`` (also when older than ``max_age``).

        ``max_age=None`` uses the cache's default; ``math.inf`` lifts it for this call.
        """
        return self._tally(await self._get(check_key(key)), max_age)

    def _tally(self, rows: CachedRows | None, max_age: float | None) -> CachedRows | None:
        """What ``get`` returns for the stored ``rows``, counted as hit or miss."""
        if rows is None:
            self._misses += 1
            if max_age is not None:
                check_max_age(max_age)
            return None
        if max_age is None and self._max_age is None:
            self._hits += 1
            return rows
        return self._aged(rows, max_age)

    def _aged(self, rows: CachedRows, max_age: float | None) -> CachedRows | None:
        """``rows`` if young enough for ``max_age`` (or the default), counted as hit or miss."""
        limit = self._max_age if max_age is None else check_max_age(max_age)
        if limit is not None and time.time() - rows.fetched_at > limit:
            self._misses += 1
            return None
        self._hits += 1
        return rows

    async def put(self, key: str, rows: CachedRows) -> None:
        """Store ``rows`` under ``key``, replacing what was there.

        A fetch in flight for ``key`` will not overwrite it: the newer write wins.
        """
        check_key(key)
        check_rows(rows)
        if self._flights:
            self._flights.pop(key, None)
        await self._put(key, rows)

    async def invalidate_prefix(self, prefix: str) -> int:
        """Drop every key starting with ``prefix`` (``""``: all); return how many.

        Fetches in flight for those keys still answer their callers but store nothing.
        """
        check_prefix(prefix)
        if self._flights:
            self._flights.invalidate_prefix(prefix)
        removed = await self._invalidate(prefix)
        self._invalidations += 1
        self._keys_removed += removed
        return removed

    async def get_or_fetch(
        self, key: str, fetch: Fetch, *, max_age: float | None = None
    ) -> CachedRows:
        """Cached rows for ``key``, or else the result of ``await fetch()``, stored.

        ``fetch`` returns :class:`CachedRows` or a mapping of rows (wrapped with
        ``fetched_at`` = when the fetch started). Concurrent calls for one key on one
        event loop share one fetch and its result or exception; a failed fetch stores
        nothing. Cancelling a caller leaves the fetch running for the others; cancelling
        the last one cancels the fetch (a fetch that already returned still stores). If the
        key is invalidated (or put) while the fetch runs, its result is returned but not
        stored, and later callers start a new fetch.
        """
        rows = await self.get(key, max_age)
        if rows is not None:
            return rows
        loop = asyncio.get_running_loop()
        slot: dict[Any, _Flight] | None = self._flights.get(key)
        flight = None if slot is None else slot.get(loop)
        if flight is None or flight.abandoned or flight.task is None or flight.task.done():
            flight = self._start(key, fetch, loop)
        else:
            self._coalesced += 1
        task = flight.task
        assert task is not None
        flight.waiters += 1
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if flight.waiters == 1 and flight.fetching and not task.done():
                flight.abandoned = True
                task.cancel()
            raise
        finally:
            flight.waiters -= 1

    def stats(self) -> CacheStats:
        """A snapshot of the counters (see :class:`CacheStats`)."""
        return CacheStats(
            hits=self._hits,
            misses=self._misses,
            fetches=self._fetches,
            coalesced=self._coalesced,
            fills=self._fills,
            stale_fills_prevented=self._stale_fills_prevented,
            fetch_errors=self._fetch_errors,
            invalidations=self._invalidations,
            keys_removed=self._keys_removed,
        )

    async def aclose(self) -> None:
        """Release what the backend holds; the base has nothing to release."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- the read-through machinery -------------------------------------------------------

    def _start(self, key: str, fetch: Fetch, loop: asyncio.AbstractEventLoop) -> _Flight:
        """Register a new fetch for ``key`` on ``loop`` and start it in its own task."""
        slot: dict[Any, _Flight] | None = self._flights.get(key)
        if slot is None:
            # setdefault is one trie call: two threads racing here share one registration.
            slot = self._flights.setdefault(key, {})
        assert slot is not None
        flight = _Flight(loop, slot)
        slot[loop] = flight
        self._fetches += 1
        flight.task = loop.create_task(self._fill(key, fetch, flight))
        flight.task.add_done_callback(_retrieve)
        return flight

    def _registered(self, key: str, flight: _Flight) -> bool:
        """Whether nothing invalidated or put ``key`` since ``flight`` registered."""
        return self._flights.get(key) is flight.slot and flight.slot.get(flight.loop) is flight

    async def _fill(self, key: str, fetch: Fetch, flight: _Flight) -> CachedRows:
        """The body of a flight: fetch, then store unless the key went stale meanwhile."""
        try:
            started = time.time()
            try:
                rows = _as_rows(await fetch(), started)
            except Exception:
                self._fetch_errors += 1
                raise
            finally:
                flight.fetching = False
            # From here on the flight finishes its write even if every caller has left.
            if not self._registered(key, flight):
                self._stale_fills_prevented += 1
                return rows
            await self._put(key, rows)
            if self._registered(key, flight):
                self._fills += 1
            else:
                # An invalidation or put called during the write lands after it (backends
                # keep call order), so it has already removed or replaced the fill.
                self._stale_fills_prevented += 1
            return rows
        finally:
            if flight.slot.get(flight.loop) is flight:
                del flight.slot[flight.loop]
                if not flight.slot and self._flights.get(key) is flight.slot:
                    self._flights.pop(key, None)


def _as_rows(result: object, started: float) -> CachedRows:
    if isinstance(result, CachedRows):
        return result
    if isinstance(result, Mapping):
        return CachedRows(result, started)
    raise TypeError(
        f"fetch must return CachedRows or a mapping of rows, not {type(result).__name__}"
    )


class NoCache(Cache):
    """Stores nothing: every ``get`` misses, and ``get_or_fetch`` always fetches (single-flight)."""

    async def _get(self, key: str) -> CachedRows | None:
        return None

    async def _put(self, key: str, rows: CachedRows) -> None:
        return None

    async def _invalidate(self, prefix: str) -> int:
        return 0
