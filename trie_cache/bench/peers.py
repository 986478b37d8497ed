"""The systems compared: trie_cache and the caches a Python user would pick instead.

Each adapter drives one system the way its documentation recommends and drops a prefix the
best way the system offers. The timed methods (``get_batch``, ``put_batch``, ``invalidate``,
``mixed``) run their loop inside the adapter, with bound methods hoisted, so the per-operation
overhead around the system's own call is the same for every system. The untimed methods
(``load``, ``delete_batch``, ``count``, ``lookup``, ``settle``) serve setup and checks.

A system whose module is not installed reports why through :func:`missing_reason`; callers
skip it and print that reason.
"""

from __future__ import annotations

import abc
import asyncio
import importlib
import shutil
import string
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, TypeVar

__all__ = [
    "SYSTEMS",
    "System",
    "get_system",
    "loop_clock",
    "missing_reason",
]

_T = TypeVar("_T")
_AGet = Callable[[str], Awaitable[Any]]
_APut = Callable[[str, Any], Awaitable[object]]
_ADrop = Callable[[str], Awaitable[object]]

#: The operations a benchmark can time.
OPERATIONS = ("get", "miss", "put", "invalidate", "mixed")


class System(abc.ABC):
    """One store, filled and probed through the same calls for every system."""

    #: Short id used on the command line and in pytest ids.
    name: ClassVar[str]
    #: Name shown in tables and plots.
    title: ClassVar[str]
    #: How the system drops every key under a prefix.
    how: ClassVar[str]
    #: Modules the system needs.
    requires: ClassVar[tuple[str, ...]] = ()
    #: Stores bytes (a value must be encoded) rather than Python objects.
    binary: ClassVar[bool] = False
    #: Its API is ``async``.
    is_async: ClassVar[bool] = False
    #: The trie_cache system whose times this one's ratio is taken against.
    baseline: ClassVar[str] = "radix"
    #: Operations it takes part in.
    operations: ClassVar[tuple[str, ...]] = OPERATIONS
    #: Needs prefixes that end at a "/" key segment.
    segment_prefixes_only: ClassVar[bool] = False
    #: The most keys a store of this system can be filled with in reasonable time, and why.
    max_keys: ClassVar[int | None] = None
    max_keys_reason: ClassVar[str] = ""

    def __init__(self, capacity: int) -> None:
        """An empty store with room for ``capacity`` entries without evicting any."""
        self.capacity = capacity

    @abc.abstractmethod
    def load(self, keys: Sequence[str], values: Sequence[Any]) -> None:
        """Bulk fill (untimed), by the fastest documented route."""

    @abc.abstractmethod
    def get_batch(self, keys: Sequence[str]) -> int:
        """Look every key up; return how many were found."""

    @abc.abstractmethod
    def put_batch(self, keys: Sequence[str], values: Sequence[Any]) -> None:
        """Store each value under its key, one put per key."""

    @abc.abstractmethod
    def delete_batch(self, keys: Sequence[str]) -> None:
        """Remove the keys (untimed cleanup between rounds)."""

    @abc.abstractmethod
    def invalidate(self, prefix: str) -> None:
        """Drop every key starting with ``prefix``."""

    @abc.abstractmethod
    def mixed(self, ops: Sequence[tuple[bool, str]], value: Any) -> int:
        """Replay a mixed stream: reads (a miss is filled by a put) and prefix
        invalidations; return the number of read hits."""

    @abc.abstractmethod
    def count(self) -> int:
        """Entries stored now, as the system counts them."""

    @abc.abstractmethod
    def lookup(self, key: str) -> Any:
        """The value stored under ``key`` or ``None`` (untimed checks)."""

    def lookup_many(self, keys: Sequence[str]) -> list[Any]:
        """:meth:`lookup` of each key (untimed checks)."""
        return [self.lookup(k) for k in keys]

    def settle(self) -> None:
        """Finish deferred work before a timed round (untimed); most have none."""

    def close(self) -> None:
        """Release the store."""


def _import(name: str) -> Any:
    return importlib.import_module(name)


def _count_found(get: Callable[[str], Any], keys: Sequence[str]) -> int:
    """How many of ``keys`` the bound ``get`` finds (returns other than ``None`` for)."""
    hits = 0
    for k in keys:
        if get(k) is not None:
            hits += 1
    return hits


def _segment(key: str) -> str:
    """The first "/" segment of a key, "/" included: the tag diskcache groups it under."""
    return key[: key.index("/") + 1]


def _check_segment_prefix(prefix: str) -> str:
    if not prefix.endswith("/") or prefix.count("/") != 1:
        raise ValueError(
            f"this system drops only first-segment prefixes like 'db3/', not {prefix!r}"
        )
    return prefix


# --- trie_cache -------------------------------------------------------------------------


_LOOP_TIME = [0.0]


def loop_clock() -> float:
    """Seconds spent inside the timed coroutines of async systems, summed: a clock that
    does not advance while the event loop starts or stops, as it does not for a caller
    that awaits from a running loop. Time async systems with it, sync ones with
    ``time.perf_counter``."""
    return _LOOP_TIME[0]


class _AsyncSystem(System):
    is_async = True

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self._loop = asyncio.new_event_loop()

    @abc.abstractmethod
    def ops(self) -> tuple[_AGet, _APut, _ADrop]:
        """The store's bound ``get``, ``put`` and drop-a-prefix coroutine functions."""

    def _run(self, coro: Awaitable[_T]) -> _T:
        return self._loop.run_until_complete(coro)

    def lookup(self, key: str) -> Any:
        return self._run(self.ops()[0](key))

    def lookup_many(self, keys: Sequence[str]) -> list[Any]:
        get = self.ops()[0]

        async def run() -> list[Any]:
            return [await get(k) for k in keys]

        return self._run(run())

    def _timed(self, coro: Awaitable[_T]) -> _T:
        """Run ``coro`` on the loop, adding the time spent inside it to :func:`loop_clock`."""

        async def timed() -> _T:
            start = time.perf_counter()
            try:
                return await coro
            finally:
                _LOOP_TIME[0] += time.perf_counter() - start

        return self._loop.run_until_complete(timed())

    def get_batch(self, keys: Sequence[str]) -> int:
        get = self.ops()[0]

        async def run() -> int:
            hits = 0
            for k in keys:
                if await get(k) is not None:
                    hits += 1
            return hits

        return self._timed(run())

    def put_batch(self, keys: Sequence[str], values: Sequence[Any]) -> None:
        put = self.ops()[1]

        async def run() -> None:
            for k, v in zip(keys, values):
                await put(k, v)

        self._timed(run())

    def invalidate(self, prefix: str) -> None:
        self._timed(self.ops()[2](prefix))

    def mixed(self, ops: Sequence[tuple[bool, str]], value: Any) -> int:
        get, put, drop = self.ops()

        async def run() -> int:
            hits = 0
            for is_write, text in ops:
                if is_write:
                    await drop(text)
                elif await get(text) is None:
                    await put(text, value)
                else:
                    hits += 1
            return hits

        return self._timed(run())

    def close(self) -> None:
        self._loop.close()


class MemCacheSystem(_AsyncSystem):
    name = "memcache"
    title = "trie_cache.MemCache"
    how = "await invalidate_prefix(p) (RadixTrie inside)"
    baseline = "memcache"

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        from .._memcache import MemCache

        self.cache = MemCache()

    def ops(self) -> tuple[_AGet, _APut, _ADrop]:
        c = self.cache
        return c.get, c.put, c.invalidate_prefix

    def load(self, keys: Sequence[str], values: Sequence[Any]) -> None:
        self.put_batch(keys, values)

    def delete_batch(self, keys: Sequence[str]) -> None:
        # The Cache contract has no single-key delete; this untimed cleanup uses the trie.
        trie = self.cache._trie
        for k in keys:
            del trie[k]

    def count(self) -> int:
        return len(self.cache)

    def settle(self) -> None:
        # MemCache keeps its trie private; releasing pending entries is an untimed chore.
        self.cache._trie.reclaim()


# --- dict-like peers that scan to invalidate -----------------------------------------------


class _MappingSystem(System):
    """A mutable mapping with ``get``; a prefix is dropped by scanning every key."""

    how = "scan all keys, delete those with the prefix"
    store: Any

    def load(self, keys: Sequence[str], values: Sequence[Any]) -> None:
        self.store.update(zip(keys, values))

    def get_batch(self, keys: Sequence[str]) -> int:
        return _count_found(self.store.get, keys)

    def put_batch(self, keys: Sequence[str], values: Sequence[Any]) -> None:
        s = self.store
        for k, v in zip(keys, values):
            s[k] = v

    def delete_batch(self, keys: Sequence[str]) -> None:
        s = self.store
        for k in keys:
            del s[k]

    def _scan(self) -> Any:
        return self.store

    def dropper(self) -> Callable[[str], object]:
        """The callable that drops every key under a prefix, hoisted out of the timed loops."""
        s = self.store
        scan = self._scan

        def drop(prefix: str) -> None:
            for k in [k for k in scan() if k.startswith(prefix)]:
                del s[k]

        return drop

    def invalidate(self, prefix: str) -> None:
        self.dropper()(prefix)

    def mixed(self, ops: Sequence[tuple[bool, str]], value: Any) -> int:
        s = self.store
        get = s.get
        drop = self.dropper()
        hits = 0
        for is_write, text in ops:
            if is_write:
                drop(text)
            elif get(text) is None:
                s[text] = value
            else:
                hits += 1
        return hits

    def count(self) -> int:
        return len(self.store)

    def lookup(self, key: str) -> Any:
        return self.store.get(key)


class RadixSystem(_MappingSystem):
    name = "radix"
    title = "trie_cache.RadixTrie"
    how = "invalidate_prefix(p): detach the subtree; memory released later"

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        from .._core import RadixTrie

        self.store = RadixTrie()

    def dropper(self) -> Callable[[str], object]:
        return self.store.invalidate_prefix  # type: ignore[no-any-return]

    def invalidate(self, prefix: str) -> None:
        self.store.invalidate_prefix(prefix)

    def settle(self) -> None:
        self.store.reclaim()


class RadixReclaimSystem(RadixSystem):
    name = "radix+reclaim"
    title = "RadixTrie + reclaim()"
    how = "invalidate_prefix(p) then reclaim(): the removed entries released at once"
    operations = ("invalidate",)

    def invalidate(self, prefix: str) -> None:
        self.store.invalidate_prefix(prefix)
        self.store.reclaim()


class DictSystem(_MappingSystem):
    name = "dict"
    title = "dict + scan"

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.store = {}


class CachetoolsSystem(_MappingSystem):
    name = "cachetools"
    title = "cachetools.LRUCache"
    requires = ("cachetools",)

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.store = _import("cachetools").LRUCache(maxsize=capacity)


class CacheboxSystem(_MappingSystem):
    name = "cachebox"
    title = "cachebox.LRUCache"
    requires = ("cachebox",)

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.store = _import("cachebox").LRUCache(maxsize=capacity)

    def _scan(self) -> Any:
        return self.store.keys()


class TheineSystem(System):
    name = "theine"
    title = "theine.Cache"
    how = "no key listing: a side set of keys is scanned, matches deleted"
    requires = ("theine",)

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.cache: Any = _import("theine").Cache(capacity)
        self.keys: set[str] = set()

    def load(self, keys: Sequence[str], values: Sequence[Any]) -> None:
        self.put_batch(keys, values)

    def get_batch(self, keys: Sequence[str]) -> int:
        get = self.cache.get
        hits = 0
        for k in keys:
            if get(k)[1]:
                hits += 1
        return hits

    def put_batch(self, keys: Sequence[str], values: Sequence[Any]) -> None:
        put = self.cache.set
        add = self.keys.add
        for k, v in zip(keys, values):
            put(k, v)
            add(k)

    def delete_batch(self, keys: Sequence[str]) -> None:
        for k in keys:
            self.cache.delete(k)
            self.keys.discard(k)

    def invalidate(self, prefix: str) -> None:
        delete = self.cache.delete
        dead = [k for k in self.keys if k.startswith(prefix)]
        for k in dead:
            delete(k)
        self.keys.difference_update(dead)

    def mixed(self, ops: Sequence[tuple[bool, str]], value: Any) -> int:
        get = self.cache.get
        put = self.cache.set
        delete = self.cache.delete
        known = self.keys
        hits = 0
        for is_write, text in ops:
            if is_write:
                dead = [k for k in known if k.startswith(text)]
                for k in dead:
                    delete(k)
                known.difference_update(dead)
            elif get(text)[1]:
                hits += 1
            else:
                put(text, value)
                known.add(text)
        return hits

    def count(self) -> int:
        return len(self.cache)

    def lookup(self, key: str) -> Any:
        value, found = self.cache.get(key)
        return value if found else None

    def close(self) -> None:
        self.cache.close()


class AiocacheSystem(_AsyncSystem):
    name = "aiocache"
    title = "aiocache.SimpleMemoryCache"
    how = "await clear(namespace=p): scans all keys"
    requires = ("aiocache",)
    baseline = "memcache"

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        # timeout=None: MemCache has no per-call timeout either, and aiocache's default one
        # (5 s, through asyncio) made each call about 5 times slower here.
        self.cache: Any = _import("aiocache").SimpleMemoryCache(timeout=None)

    def ops(self) -> tuple[_AGet, _APut, _ADrop]:
        c = self.cache
        clear = c.clear

        def drop(prefix: str) -> Awaitable[object]:
            return clear(namespace=prefix)  # type: ignore[no-any-return]

        return c.get, c.set, drop

    def load(self, keys: Sequence[str], values: Sequence[Any]) -> None:
        self._run(self.cache.multi_set(list(zip(keys, values))))

    def delete_batch(self, keys: Sequence[str]) -> None:
        async def run() -> None:
            for k in keys:
                await self.cache.delete(k)

        self._run(run())

    def count(self) -> int:
        return int(self._run(self.cache.raw("__len__")))

    def close(self) -> None:
        self._run(self.cache.close())
        super().close()


# --- tries ---------------------------------------------------------------------------------


class PygtrieSystem(_MappingSystem):
    name = "pygtrie"
    title = "pygtrie.StringTrie"
    how = "del t[p:] removes the subtrie (prefixes must end at a '/' segment)"
    requires = ("pygtrie",)
    segment_prefixes_only = True

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.store = _import("pygtrie").StringTrie(separator="/")

    def dropper(self) -> Callable[[str], object]:
        s = self.store

        def drop(prefix: str) -> None:
            if not prefix:
                s.clear()
                return
            if not prefix.endswith("/"):
                raise ValueError(
                    f"pygtrie.StringTrie drops only whole '/' segments, not {prefix!r}"
                )
            try:
                del s[prefix[:-1] :]
            except KeyError:
                pass

        return drop


class DatrieSystem(_MappingSystem):
    name = "datrie"
    title = "datrie.Trie"
    how = "keys(p) lists the keys under the prefix, each deleted"
    requires = ("datrie",)
    max_keys = 10_000
    max_keys_reason = (
        "datrie's insertion time grows with the trie's size (pytries/datrie#32): here "
        "loading 20k keys of this shape took 30 s and 10k new keys into 10k took 39 s"
    )

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.store = _import("datrie").Trie(string.ascii_letters + string.digits + "/")

    def load(self, keys: Sequence[str], values: Sequence[Any]) -> None:
        s = self.store
        for k, v in zip(keys, values):
            s[k] = v

    def dropper(self) -> Callable[[str], object]:
        s = self.store
        listing = s.keys

        def drop(prefix: str) -> None:
            for k in listing(prefix):
                del s[k]

        return drop


# --- persistent stores ---------------------------------------------------------------------


class DiskcacheSystem(System):
    name = "diskcache"
    title = "diskcache.Cache"
    how = "each key tagged with its first segment; evict(tag) with the tag index"
    requires = ("diskcache",)
    binary = True
    segment_prefixes_only = True

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.directory = tempfile.mkdtemp(prefix="trie_cache_bench_diskcache_")
        self.cache: Any = _import("diskcache").Cache(self.directory, tag_index=True)

    def load(self, keys: Sequence[str], values: Sequence[Any]) -> None:
        put = self.cache.set
        with self.cache.transact():
            for k, v in zip(keys, values):
                put(k, v, tag=_segment(k))

    def get_batch(self, keys: Sequence[str]) -> int:
        return _count_found(self.cache.get, keys)

    def put_batch(self, keys: Sequence[str], values: Sequence[Any]) -> None:
        put = self.cache.set
        for k, v in zip(keys, values):
            put(k, v, tag=k[: k.index("/") + 1])

    def delete_batch(self, keys: Sequence[str]) -> None:
        with self.cache.transact():
            for k in keys:
                del self.cache[k]

    def invalidate(self, prefix: str) -> None:
        self.cache.evict(_check_segment_prefix(prefix))

    def mixed(self, ops: Sequence[tuple[bool, str]], value: Any) -> int:
        get = self.cache.get
        put = self.cache.set
        evict = self.cache.evict
        hits = 0
        for is_write, text in ops:
            if is_write:
                evict(text)
            elif get(text) is None:
                put(text, value, tag=text[: text.index("/") + 1])
            else:
                hits += 1
        return hits

    def count(self) -> int:
        return len(self.cache)

    def lookup(self, key: str) -> Any:
        return self.cache.get(key)

    def close(self) -> None:
        self.cache.close()
        shutil.rmtree(self.directory, ignore_errors=True)


class LmdbSystem(System):
    name = "lmdb"
    title = "lmdb (raw)"
    how = "cursor.set_range(p), delete while the key has the prefix (one write txn)"
    requires = ("lmdb",)
    binary = True

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.directory = tempfile.mkdtemp(prefix="trie_cache_bench_lmdb_")
        # A cache needs no durability: no fsync at commit, as for LmdbCache.
        self.env: Any = _import("lmdb").open(
            self.directory, map_size=1 << 33, sync=False, metasync=False
        )

    def load(self, keys: Sequence[str], values: Sequence[Any]) -> None:
        with self.env.begin(write=True) as txn:
            txn.cursor().putmulti([(k.encode(), v) for k, v in zip(keys, values)])

    def get_batch(self, keys: Sequence[str]) -> int:
        begin = self.env.begin
        hits = 0
        for k in keys:
            with begin() as txn:
                if txn.get(k.encode()) is not None:
                    hits += 1
        return hits

    def put_batch(self, keys: Sequence[str], values: Sequence[Any]) -> None:
        begin = self.env.begin
        for k, v in zip(keys, values):
            with begin(write=True) as txn:
                txn.put(k.encode(), v)

    def delete_batch(self, keys: Sequence[str]) -> None:
        with self.env.begin(write=True) as txn:
            for k in keys:
                txn.delete(k.encode())

    def _drop(self, txn: Any, prefix: bytes) -> None:
        cursor = txn.cursor()
        if not cursor.set_range(prefix):
            return
        while cursor.key().startswith(prefix):
            if not cursor.delete():
                break

    def invalidate(self, prefix: str) -> None:
        with self.env.begin(write=True) as txn:
            self._drop(txn, prefix.encode())

    def mixed(self, ops: Sequence[tuple[bool, str]], value: Any) -> int:
        begin = self.env.begin
        drop = self._drop
        hits = 0
        for is_write, text in ops:
            raw = text.encode()
            if is_write:
                with begin(write=True) as txn:
                    drop(txn, raw)
                continue
            with begin() as txn:
                found = txn.get(raw) is not None
            if found:
                hits += 1
            else:
                with begin(write=True) as txn:
                    txn.put(raw, value)
        return hits

    def count(self) -> int:
        return int(self.env.stat()["entries"])

    def lookup(self, key: str) -> Any:
        with self.env.begin() as txn:
            return txn.get(key.encode())

    def close(self) -> None:
        self.env.close()
        shutil.rmtree(self.directory, ignore_errors=True)


#: Every system, trie_cache's first.
SYSTEMS: dict[str, type[System]] = {
    cls.name: cls
    for cls in (
        RadixSystem,
        RadixReclaimSystem,
        MemCacheSystem,
        DictSystem,
        CachetoolsSystem,
        CacheboxSystem,
        TheineSystem,
        PygtrieSystem,
        DatrieSystem,
        AiocacheSystem,
        DiskcacheSystem,
        LmdbSystem,
    )
}


def get_system(name: str) -> type[System]:
    try:
        return SYSTEMS[name]
    except KeyError:
        raise KeyError(f"unknown system {name!r}; known: {', '.join(SYSTEMS)}") from None


def missing_reason(system: type[System]) -> str | None:
    """Why ``system`` cannot run here (a module it needs fails to import), or ``None``."""
    for module in system.requires:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            return f"{module} is not installed ({exc}); pip install -e '.[bench]' installs it"
    return None
