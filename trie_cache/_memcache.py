"""``MemCache``: the cache contract on the in-process radix trie."""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable
from typing import Any

from ._cache import OVERSIZED, Cache, CacheStats, check_key, check_max_age, check_rows
from ._core import RadixTrie
from ._limits import check_limit
from ._rows import CachedRows

__all__ = ["MemCache"]

#: The trie's weight limit of a cache bounded by entries alone: never reached (an entry
#: weighs at most 2**48), it only makes the trie keep the weights ``nbytes`` sums.
_NO_BYTE_LIMIT = 1 << 62


def _put_weighed(trie: Any, oversized: list[int], key: str, rows: CachedRows) -> Any:
    """A bounded cache's store: weigh the entry (key UTF-8 length + ``rows.nbytes``); rows
    too heavy to keep are counted in ``oversized[0]`` and answered ``OVERSIZED``."""
    check_key(key)
    size = len(key) if key.isascii() else len(key.encode("utf-8", "surrogatepass"))
    if trie.put(key, rows, size + rows.nbytes):
        return True
    oversized[0] += 1
    return OVERSIZED


def _older_than(max_age: float) -> Callable[[CachedRows], bool]:
    """The trie's ``expired`` predicate for rows older than ``max_age`` seconds."""
    now = time.time

    def expired(rows: CachedRows) -> bool:
        return now() - rows.fetched_at > max_age

    return expired


class MemCache(Cache):
    """In-memory cache; ``invalidate_prefix`` costs O(len(prefix)).

    Every trie operation is a single call that completes without awaiting, so tasks on
    one loop and threads running other loops can share an instance; reads take no lock.
    A fill checks its registration (or the cache's generation) and stores under the base's
    ``_write_lock``, which ``put`` and ``invalidate_prefix`` hold only to detach
    registrations, and only while fetches are in flight or a fill is being stored.
    ``max_age`` and ``stale_while_revalidate`` are the defaults of ``get``/``get_or_fetch``;
    ``bus`` a ``RedisBus`` (see :class:`Cache`).

    ``max_entries`` and ``max_bytes`` bound the cache: after every ``put`` and every fill
    by ``get_or_fetch`` returns, ``len(cache) <= max_entries`` and
    ``cache.nbytes <= max_bytes``. The trie evicts with SIEVE; an entry weighs its key's
    UTF-8 length plus ``rows.nbytes``, and rows heavier than ``max_bytes`` on their own are
    not stored (what the key held is removed).

    With ``max_age`` set, rows older than ``max_age`` plus the default
    ``stale_while_revalidate`` window are *expired* (no default caller can be served them)
    and leave the cache, counted in ``stats().expirations``, without a sweeper thread or a
    scan: a ``get`` with the default ``max_age`` that meets them removes them (unless the key
    was stored again meanwhile); in an unbounded cache every ``put`` and fill also examines
    the two oldest entries and removes them if expired, so entries nobody reads again drain
    at up to two per write; in a bounded cache the eviction hand removes the expired rows it
    meets first, whatever their visited bit. :meth:`remove_expired` removes the expired rows
    at the oldest end on demand. A ``get`` with an explicit ``max_age`` applies that limit and
    removes nothing, so ``get(key, max_age=math.inf)`` still reads rows the cache has not
    removed yet.
    """

    #: Rows a default ``get`` found expired and removed (a class default: see ``Cache``).
    _expired_on_get = 0

    def __init__(
        self,
        *,
        max_age: float | None = None,
        max_entries: int | None = None,
        max_bytes: int | None = None,
        stale_while_revalidate: float | None = None,
        bus: Any = None,
        _trie_cls: Any = None,
    ) -> None:
        # ``_trie_cls`` picks the trie core (the tests run both); the default is ``CORE``'s.
        super().__init__(max_age=max_age, stale_while_revalidate=stale_while_revalidate, bus=bus)
        max_entries = check_limit(max_entries, "max_entries")
        max_bytes = check_limit(max_bytes, "max_bytes")
        self._bounded = max_entries is not None or max_bytes is not None
        # Rows refused as too heavy to keep: a list, shared with the store (below).
        self._oversized = [0]
        # Rows past max_age but inside the default stale window may still be served.
        self._expire_after = math.inf
        expired = None
        if self._max_age is not None:
            self._expire_after = self._max_age + (self._stale or 0.0)
        if math.isfinite(self._expire_after):
            expired = _older_than(self._expire_after)
        trie_cls = RadixTrie if _trie_cls is None else _trie_cls
        self._max_bytes = max_bytes
        # A trie records weights only with a max_weight: nbytes needs them in every bounded
        # cache, so a cache bounded by entries alone gives its trie an unreachable one.
        max_weight = _NO_BYTE_LIMIT if max_bytes is None and self._bounded else max_bytes
        self._trie: Any = trie_cls(max_entries=max_entries, max_weight=max_weight, expired=expired)
        if _trie_cls is not None:
            self._flights = _trie_cls()  # the base built its registry on the default core
        # get_or_fetch's read: the trie's own get, without a Python frame around it. A read
        # path that must do more on a hit (an eviction policy's mark) replaces this.
        self._set_reader(self._trie.get)
        # get_or_fetch's store of a fill: the trie's own __setitem__ in an unbounded cache;
        # in a bounded one the store that weighs the entry. Neither refers to the cache (no
        # reference cycle: the cache is freed as soon as it is dropped).
        self._set_now = (
            functools.partial(_put_weighed, self._trie, self._oversized)
            if self._bounded
            else self._trie.__setitem__
        )

    @property
    def max_entries(self) -> int | None:
        """The most entries the cache holds after a write returns, or ``None``."""
        return self._trie.max_entries  # type: ignore[no-any-return]

    @property
    def max_bytes(self) -> int | None:
        """The most ``nbytes`` the cache holds after a write returns, or ``None``."""
        return self._max_bytes

    @property
    def nbytes(self) -> int | None:
        """The weight of the live entries (key UTF-8 length + ``rows.nbytes`` each).

        ``None`` for a cache with neither ``max_entries`` nor ``max_bytes``: an unbounded
        cache keeps no weights (and pays nothing for them).
        """
        return self._trie.weight if self._bounded else None

    def stats(self) -> CacheStats:
        """A snapshot of the counters (see :class:`CacheStats`)."""
        return dataclasses.replace(
            super().stats(),
            evictions=self._trie.evictions,
            expirations=self._trie.expirations + self._expired_on_get,
            oversized=self._oversized[0],
        )

    async def get(self, key: str, max_age: float | None = None) -> CachedRows | None:
        """The rows stored under ``key``, or ``None`` (also when older than ``max_age``).

        ``max_age=None`` uses the cache's default; ``math.inf`` lifts it for this call.
        """
        # Cache.get inlined: one coroutine, one trie call (which rejects a non-str key).
        if self._lagging:
            self._bypass(key, max_age)
            return None
        rows: CachedRows | None = self._trie.get(key)
        if rows is None:
            self._misses += 1
            if max_age is not None:
                check_max_age(max_age)
            return None
        if max_age is not None:
            return self._aged(rows, max_age)
        limit = self._max_age
        if limit is None:
            self._hits += 1
            return rows
        age = time.time() - rows.fetched_at
        if age <= limit:
            self._hits += 1
            return rows
        self._misses += 1
        # Expired: remove these very rows, unless the key was stored again meanwhile.
        if age > self._expire_after and self._trie.remove_if_is(key, rows):
            self._expired_on_get += 1
        return None

    def remove_expired(self) -> int:
        """Remove the expired rows (see the class) at the oldest end of the cache's queue,
        stopping at the first that is not expired; return how many (in
        ``stats().expirations``). Never called by the cache itself; 0 without ``max_age``.

        The queue is in store order in an unbounded cache; in a bounded one a replaced key
        keeps its place, so rows stored again may stop the walk early.
        """
        return self._trie.remove_expired()  # type: ignore[no-any-return]

    async def put(self, key: str, rows: CachedRows) -> None:
        """Store ``rows`` under ``key``, replacing what was there.

        A fetch in flight for ``key`` will not overwrite it: the newer write wins.
        """
        # Cache.put inlined: the trie rejects a non-str key before anything changes.
        check_rows(rows)
        self._generation += 1
        if self._flights or self._checking:
            with self._write_lock:  # a fetch in flight for key must not overwrite this
                self._flights.pop(key, None)
        self._store(key, rows)

    def _store(self, key: str, rows: CachedRows) -> Any:
        """Store through the bound: ``OVERSIZED`` if the rows are too heavy to keep."""
        if not self._bounded:
            self._trie[key] = rows
            return True
        return _put_weighed(self._trie, self._oversized, key, rows)

    def _put_if_now(self, key: str, rows: CachedRows, flight: Any) -> Any:
        lock = self._write_lock
        lock.acquire()  # acquire/release: cheaper than "with" on the miss path
        try:
            if not self._registered(key, flight):
                return False
            stored = self._store(key, rows)
        finally:
            lock.release()
        return OVERSIZED if stored is OVERSIZED else True

    async def _put_if(self, key: str, rows: CachedRows, guard: Callable[[], bool]) -> Any:
        with self._write_lock:
            if not guard():
                return False
            stored = self._store(key, rows)
        return OVERSIZED if stored is OVERSIZED else True

    async def _get(self, key: str) -> CachedRows | None:
        return self._trie.get(key)  # type: ignore[no-any-return]

    async def _put(self, key: str, rows: CachedRows) -> None:
        self._store(key, rows)

    async def _invalidate(self, prefix: str) -> int:
        return self._trie.invalidate_prefix(prefix)  # type: ignore[no-any-return]

    def __len__(self) -> int:
        return len(self._trie)
