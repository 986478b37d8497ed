"""``MemCache``: the cache contract on the in-process radix trie."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._cache import Cache, check_max_age, check_rows
from ._core import RadixTrie
from ._rows import CachedRows

__all__ = ["MemCache"]


class MemCache(Cache):
    """In-memory cache; ``invalidate_prefix`` costs O(len(prefix)).

    Every trie operation is a single call that completes without awaiting, so tasks on
    one loop and threads running other loops can share an instance; reads take no lock.
    A fill checks its registration and stores under the base's ``_write_lock``, which
    ``put`` and ``invalidate_prefix`` hold only to detach registrations, and only while
    fetches are in flight. ``max_age`` and ``stale_while_revalidate`` are the defaults
    of ``get``/``get_or_fetch``; ``bus`` a ``RedisBus`` (see :class:`Cache`).
    """

    def __init__(
        self,
        *,
        max_age: float | None = None,
        stale_while_revalidate: float | None = None,
        bus: Any = None,
        _trie_cls: Any = None,
    ) -> None:
        # ``_trie_cls`` picks the trie core (the tests run both); the default is ``CORE``'s.
        super().__init__(max_age=max_age, stale_while_revalidate=stale_while_revalidate, bus=bus)
        if _trie_cls is None:
            self._trie: Any = RadixTrie()
        else:
            self._trie = _trie_cls()
            self._flights = _trie_cls()  # the base built its registry on the default core
        # get_or_fetch's read: the trie's own get, without a Python frame around it. A read
        # path that must do more on a hit (an eviction policy's mark) replaces this.
        self._peek = self._trie.get  # type: ignore[method-assign]

    async def get(self, key: str, max_age: float | None = None) -> CachedRows | None:
        # Cache.get inlined: one coroutine, one trie call (which rejects a non-str key).
        if self._lagging:
            return self._bypass(key, max_age)
        rows: CachedRows | None = self._trie.get(key)
        if rows is None:
            self._misses += 1
            if max_age is not None:
                check_max_age(max_age)
            return None
        if max_age is None and self._max_age is None:
            self._hits += 1
            return rows
        return self._aged(rows, max_age)

    async def put(self, key: str, rows: CachedRows) -> None:
        # Cache.put inlined: the trie rejects a non-str key before anything changes.
        check_rows(rows)
        if self._flights:
            with self._write_lock:  # a fetch in flight for key must not overwrite this
                self._flights.pop(key, None)
        self._trie[key] = rows

    def _put_if_now(self, key: str, rows: CachedRows, flight: Any) -> bool:
        lock = self._write_lock
        lock.acquire()  # acquire/release: cheaper than "with" on the miss path
        try:
            if not self._registered(key, flight):
                return False
            self._trie[key] = rows
        finally:
            lock.release()
        return True

    async def _put_if(self, key: str, rows: CachedRows, guard: Callable[[], bool]) -> bool:
        with self._write_lock:
            if not guard():
                return False
            self._trie[key] = rows
        return True

    async def _get(self, key: str) -> CachedRows | None:
        return self._trie.get(key)  # type: ignore[no-any-return]

    async def _put(self, key: str, rows: CachedRows) -> None:
        self._trie[key] = rows

    async def _invalidate(self, prefix: str) -> int:
        return self._trie.invalidate_prefix(prefix)  # type: ignore[no-any-return]

    def __len__(self) -> int:
        return len(self._trie)
