"""``LmdbCache``: the cache contract on an LMDB folder, rows stored as CBOR.

The store (environment, writer thread, group commit, map growth) and the backend. The bytes
on disk -- key encoding, payload forms, trailer and checksum -- are ``_lmdb_format.py``'s.

Concurrency
    Writes never run on the event loop. One writer thread per cache takes requests from a
    queue, applies everything queued so far in one write transaction (group commit) and
    resolves each caller's future only after that transaction committed (and, with
    ``durable=True``, was synced). A cancelled ``put`` is not withdrawn. Reads run inline: an
    LMDB read of a cached page is a memory-mapped lookup of about 2 microseconds, while a
    hop to a thread and back costs about 100 (both measured on the bench machine), and a
    read takes no lock a writer holds across I/O. Opening the folder also happens on the
    writer thread, so the constructor does no disk I/O; the first ``get`` waits for it.

    Reads in this process see its own writes in call order: a put still queued is served
    from memory, and a ``get`` issued while an invalidation is queued waits for it. Other
    processes see a write once it committed.

    A read holds ``read_lock`` for its short transaction; the writer takes it only to remap
    (``set_mapsize`` must not run while any transaction of the process is open).

Faults
    A full map is grown (doubled, up to ``max_map_size``) and the batch retried; the aborted
    transaction loses nothing. A value that fails its checksum or does not decode to rows is
    logged as a warning naming the key, removed (only if still the same bytes) and reported
    as a miss. A payload with a format version this code does not know is a miss and is left
    alone, for the newer code that wrote it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import queue
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import lmdb

from ._cache import Cache, check_key
from ._lmdb_format import (
    DECODE_ERRORS,
    HEAD_BYTES,
    LAYOUT,
    LAYOUT_KEY,
    LONG_LEN,
    NS,
    TABLE_VERSION,
    UnknownVersion,
    check_value,
    decode_payload,
    encode_key,
    encode_value,
    stored_tail,
    successor,
)
from ._rows import CBOR_FORMAT_VERSION, CachedRows

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["LmdbCache", "LmdbCacheClosedError", "LmdbCacheError"]

logger = logging.getLogger("trie_cache.lmdb")

_MAX_BATCH: Final = 4096
# get's fast path could not decide; _get takes over.
_SLOW: Final = object()
# Writer requests: (kind, key bytes, argument, loop or None, future).
_PUT: Final = 0
_INVALIDATE: Final = 1
_DROP_IF_SAME: Final = 2
_REMAP: Final = 3
_STOP: Final = 4
_SYNC: Final = 5
# A fill: (value, guard); stored only if guard() holds inside the write transaction.
_PUT_IF: Final = 6


class LmdbCacheError(Exception):
    """The folder cannot serve as an ``LmdbCache``: corrupt, another layout, or full."""


class LmdbCacheClosedError(RuntimeError):
    """The ``LmdbCache`` was closed; open a new one to go on."""


def _settle_on_loop(items: list[tuple[asyncio.Future[Any], BaseException | None, object]]) -> None:
    for fut, exc, result in items:
        if fut.done():
            continue  # the caller was cancelled; the write stands regardless
        if exc is None:
            fut.set_result(result)
        else:
            fut.set_exception(exc)


class _Store:
    """The LMDB environment, its writer thread and the read path.

    Kept apart from ``LmdbCache`` so the thread holds no reference to the cache: a cache
    dropped without ``close()`` is finalised and its thread stopped.
    """

    def __init__(self, path: Path, map_size: int, max_map_size: int | None, durable: bool) -> None:
        self.path = path
        self.durable = durable
        self._map_size = map_size
        self._max_map_size = max_map_size
        self.env: lmdb.Environment | None = None
        self.rows_db: Any = None
        # Resolved (always with None) once opening succeeded or failed.
        self.opened = _running_future()
        self.open_error: LmdbCacheError | None = None
        self.closed = False
        self._queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        # Guards "closed" against a request sneaking in behind the stop request.
        self._submit_lock = threading.Lock()
        # Held by every read and by a remap: set_mapsize needs no transaction open.
        self.read_lock = threading.Lock()
        self.batches = 0
        # Read-your-writes in this process: queued puts not committed yet (LMDB key to
        # value), and how many invalidations are queued. Changed under _submit_lock.
        self.pending: dict[bytes, bytes] = {}
        self.pending_invalidations = 0
        self.thread = threading.Thread(target=self._run, name=f"LmdbCache({path})", daemon=True)
        self.thread.start()

    # -- requests -------------------------------------------------------------------

    def submit(self, kind: int, lkey: bytes, arg: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        with self._submit_lock:
            if self.closed:
                raise self.closed_error()
            if kind == _PUT:
                self.pending[lkey] = arg
            elif kind == _INVALIDATE:
                self.pending_invalidations += 1
            self._queue.put((kind, lkey, arg, loop, fut))
        return fut

    def _retire(self, batch: list[tuple[Any, ...]]) -> None:
        """Forget ``batch`` as pending: it is committed (or failed)."""
        pending = self.pending
        with self._submit_lock:
            for kind, lkey, arg, _, _ in batch:
                if kind == _PUT:
                    if pending.get(lkey) is arg:
                        del pending[lkey]
                elif kind == _INVALIDATE:
                    self.pending_invalidations -= 1

    def stop(self) -> concurrent.futures.Future[None]:
        """Ask the writer to finish what is queued, close the environment and exit."""
        fut = _running_future()
        with self._submit_lock:
            if self.closed:
                fut.set_result(None)
                return fut
            self.closed = True
            self._queue.put((_STOP, b"", None, None, fut))
        return fut

    # -- reads (any thread, inline) ---------------------------------------------------

    def closed_error(self) -> Exception:
        """What a call on a store that is not open raises: the open error, or closed."""
        if self.open_error is not None:
            exc = LmdbCacheError(*self.open_error.args)
            exc.__cause__ = self.open_error.__cause__
            return exc
        return LmdbCacheClosedError(f"LmdbCache at {str(self.path)!r} is closed")

    def read(self, lkey: bytes) -> bytes | None:
        """The stored value, or ``None``; ``lmdb.MapResizedError`` if a remap is due."""
        lock = self.read_lock
        lock.acquire()  # acquire/release and a positional db: cheaper than "with" and db=
        try:
            env = self.env
            if env is None:
                raise self.closed_error()
            txn = env.begin(self.rows_db)
            try:
                return txn.get(lkey)
            finally:
                txn.abort()
        finally:
            lock.release()

    def count(self) -> int:
        with self.read_lock:
            env = self.env
            if env is None:
                raise self.closed_error()
            with env.begin(db=self.rows_db) as txn:
                return int(txn.stat(self.rows_db)["entries"])

    # -- the writer thread ------------------------------------------------------------

    def _open(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            env = lmdb.open(
                str(self.path),
                map_size=self._map_size,
                max_dbs=2,
                sync=self.durable,
                metasync=self.durable,
            )
        except lmdb.Error as exc:
            raise LmdbCacheError(
                f"cannot open LMDB folder {str(self.path)!r}: {type(exc).__name__}: {exc}"
            ) from exc
        try:
            # Reader slots of processes that died (kill -9) are freed here.
            env.reader_check()
            meta = env.open_db(b"meta")
            rows_db = env.open_db(b"rows")
            with env.begin(write=True, db=meta) as txn:
                layout = txn.get(LAYOUT_KEY)
                if layout is None:
                    txn.put(LAYOUT_KEY, LAYOUT)
                elif layout != LAYOUT:
                    raise LmdbCacheError(
                        f"LMDB folder {str(self.path)!r} has another layout: {bytes(layout)!r}"
                    )
        except lmdb.Error as exc:
            env.close()
            raise LmdbCacheError(
                f"cannot use LMDB folder {str(self.path)!r}: {type(exc).__name__}: {exc}"
            ) from exc
        except BaseException:
            env.close()
            raise
        self.rows_db = rows_db
        self.env = env

    def _run(self) -> None:
        try:
            self._open()
        except BaseException as exc:  # noqa: BLE001 - handed to every caller, never lost
            if isinstance(exc, LmdbCacheError):
                self.open_error = exc
            else:
                self.open_error = LmdbCacheError(
                    f"cannot open LMDB folder {str(self.path)!r}: {type(exc).__name__}: {exc}"
                )
                self.open_error.__cause__ = exc
            self._fail_queued()
            self.opened.set_result(None)
            return
        self.opened.set_result(None)
        get, get_nowait = self._queue.get, self._queue.get_nowait
        stop: tuple[Any, ...] | None = None
        while stop is None:
            batch = [get()]
            while len(batch) < _MAX_BATCH:
                try:
                    batch.append(get_nowait())
                except queue.Empty:
                    break
            if batch[-1][0] == _STOP:
                stop = batch.pop()
            if any(req[0] == _REMAP for req in batch):
                self._remap_adopt()
            outcomes = self._apply(batch) if batch else []
            self._retire(batch)
            self._settle(batch, outcomes)
        self._shutdown(stop[4])

    def _fail_queued(self) -> None:
        """After a failed open: refuse new requests and fail the queued ones."""
        with self._submit_lock:
            self.closed = True
        while True:
            try:
                req = self._queue.get_nowait()
            except queue.Empty:
                return
            if req[0] == _STOP:
                req[4].set_result(None)
            else:
                self._retire([req])
                self._settle([req], [(self.closed_error(), None)])

    def _shutdown(self, done: concurrent.futures.Future[None]) -> None:
        env = self.env
        self.env = None
        try:
            if env is not None:
                with self.read_lock:
                    if not self.durable:
                        env.sync(True)
                    env.close()
        finally:
            done.set_result(None)

    @staticmethod
    def _settle(
        batch: list[tuple[Any, ...]], outcomes: list[tuple[BaseException | None, object]]
    ) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        for req, (exc, result) in zip(batch, outcomes):
            by_loop.setdefault(req[3], []).append((req[4], exc, result))
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle_on_loop, items)
            except RuntimeError:
                pass  # that loop is closed; nobody is waiting any more

    def _apply(self, batch: list[tuple[Any, ...]]) -> list[tuple[BaseException | None, object]]:
        """Run ``batch`` in one write transaction; one outcome per request."""
        env = self.env
        assert env is not None
        while True:
            try:
                with env.begin(write=True, db=self.rows_db) as txn:
                    results = [self._do(txn, req) for req in batch]
                self.batches += 1
                return [(None, r) for r in results]
            except lmdb.MapFullError:
                try:
                    self._grow()
                except LmdbCacheError as exc:
                    return [(exc, None)] * len(batch)
            except lmdb.MapResizedError:
                self._remap(0)
            except Exception as exc:  # noqa: BLE001 - becomes the callers' exception
                if len(batch) == 1:
                    return [(exc, None)]
                # One bad request must not fail the others: retry them one by one.
                return [self._apply([req])[0] for req in batch]

    def _do(self, txn: lmdb.Transaction[bytes], req: tuple[Any, ...]) -> object:
        kind, lkey, arg = req[0], req[1], req[2]
        if kind == _PUT:
            txn.put(lkey, arg)
            return None
        if kind == _PUT_IF:
            # Evaluated here, where the order of writes is decided: see Cache._put_if.
            value, guard = arg
            if not guard():
                return False
            txn.put(lkey, value)
            return True
        if kind == _INVALIDATE:
            return self._delete_range(txn, lkey, arg)
        if kind == _DROP_IF_SAME:
            if txn.get(lkey) == arg:
                return txn.delete(lkey)
            return False
        if kind == _REMAP or kind == _SYNC:
            return None  # a barrier; _REMAP was done before the transaction began
        raise AssertionError(f"unknown request kind {kind!r}")

    def _delete_range(self, txn: lmdb.Transaction[bytes], start: bytes, tail: bytes) -> int:
        """Delete every key under ``start`` (and, if ``tail``, whose stored tail starts so)."""
        if start == NS:
            count = int(txn.stat(self.rows_db)["entries"])
            txn.drop(self.rows_db, delete=False)
            return count
        cursor = txn.cursor()
        if not cursor.set_range(start):
            return 0
        key, delete = cursor.key, cursor.delete
        if not tail:
            # The tight loop: one comparison with the first key past the range and one
            # delete (which moves to the next key, or unpositions the cursor: key() is then
            # b"" and delete() False). The count comes from the entry counter.
            end = successor(start)
            before = txn.stat(self.rows_db)["entries"]
            while key() < end and delete():
                pass
            return int(before - txn.stat(self.rows_db)["entries"])
        removed = 0
        # A prefix longer than HEAD_BYTES: only long keys under its head can match.
        value, advance = cursor.value, cursor.next
        while True:
            k = key()
            if not k.startswith(start):
                return removed
            if len(k) == LONG_LEN:
                stored = stored_tail(k, value())
                if stored is None or stored.startswith(tail):
                    # A value too damaged to tell its key is dropped with the range.
                    delete()
                    removed += 1
                    continue
            if not advance():
                return removed

    def _grow(self) -> None:
        env = self.env
        assert env is not None
        current = int(env.info()["map_size"])
        new = current * 2
        if self._max_map_size is not None:
            if current >= self._max_map_size:
                raise LmdbCacheError(
                    f"LMDB folder {str(self.path)!r} is full at max_map_size="
                    f"{self._max_map_size}; nothing was written by this request"
                )
            new = min(new, self._max_map_size)
        try:
            self._remap(new)
        except (lmdb.Error, OSError) as exc:
            raise LmdbCacheError(
                f"cannot grow LMDB map of {str(self.path)!r} to {new} bytes: {exc}"
            ) from exc
        logger.info("grew LMDB map of %s from %d to %d bytes", self.path, current, new)

    def _remap_adopt(self) -> None:
        """Adopt a map another process grew; a failure shows up again on the next read."""
        try:
            self._remap(0)
        except lmdb.Error as exc:
            logger.warning("cannot adopt the grown LMDB map of %s: %s", self.path, exc)

    def _remap(self, size: int) -> None:
        env = self.env
        assert env is not None
        with self.read_lock:
            env.set_mapsize(size)


def _running_future() -> concurrent.futures.Future[None]:
    """A future the writer resolves; running already, so a waiter's cancel cannot touch it."""
    fut: concurrent.futures.Future[None] = concurrent.futures.Future()
    fut.set_running_or_notify_cancel()
    return fut


def _finalize(store: _Store) -> None:
    store.stop()


class LmdbCache(Cache):
    """A persistent cache in the folder ``path``, shared by processes that open it.

    ``map_size`` is the initial map size in bytes; the map grows (doubling) when it fills,
    up to ``max_map_size`` if given, after which ``put`` raises :class:`LmdbCacheError`.
    ``durable=True`` syncs every commit to disk before a write's ``await`` returns;
    ``durable=False`` leaves flushing to the OS (a process crash loses nothing committed,
    an OS crash may lose recent writes). ``max_age`` is the default age limit of ``get``.

    The folder is opened on a background thread; open errors (:class:`LmdbCacheError`)
    surface from the first awaited call or from ``async with``. Close with ``await
    aclose()`` (or ``async with``), or ``close()`` from synchronous code; afterwards every
    call raises :class:`LmdbCacheClosedError`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        map_size: int = 64 << 20,
        max_map_size: int | None = None,
        durable: bool = True,
        max_age: float | None = None,
        stale_while_revalidate: float | None = None,
    ) -> None:
        super().__init__(max_age=max_age, stale_while_revalidate=stale_while_revalidate)
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be str or os.PathLike, not {type(path).__name__}")
        for name, size in (("map_size", map_size), ("max_map_size", max_map_size)):
            if size is None and name == "max_map_size":
                continue
            if isinstance(size, bool) or not isinstance(size, int):
                raise TypeError(f"{name} must be int, not {type(size).__name__}")
            if size <= 0:
                raise ValueError(f"{name} must be positive, not {size!r}")
        if max_map_size is not None and max_map_size < map_size:
            raise ValueError(f"max_map_size {max_map_size} is below map_size {map_size}")
        if not isinstance(durable, bool):
            raise TypeError(f"durable must be bool, not {type(durable).__name__}")
        self._store = _Store(Path(path), map_size, max_map_size, durable)
        self._open_waiters: dict[asyncio.AbstractEventLoop, asyncio.Future[None]] = {}
        self._finalizer = weakref.finalize(self, _finalize, self._store)

    @property
    def path(self) -> Path:
        return self._store.path

    @property
    def durable(self) -> bool:
        return self._store.durable

    @property
    def closed(self) -> bool:
        return self._store.closed

    # -- the backend primitives -------------------------------------------------------

    async def _ready(self) -> _Store:
        store = self._store
        if store.env is None:
            if not store.opened.done():
                # One future per loop: every call waiting for the open resumes in the same
                # loop iteration, in call order, as if the open had never been waited for.
                loop = asyncio.get_running_loop()
                waiter = self._open_waiters.get(loop)
                if waiter is None:
                    waiter = self._open_waiters[loop] = asyncio.wrap_future(store.opened)
                await asyncio.shield(waiter)
                self._open_waiters.pop(loop, None)
            if store.env is None:
                raise store.closed_error()
        return store

    async def get(self, key: str, max_age: float | None = None) -> CachedRows | None:
        # _get without its awaits, for the common case: the folder is open, no invalidation
        # is queued and the value reads as rows. Anything else (a MapResizedError too) goes
        # to _get, which reads again and handles it.
        store = self._store
        rows: Any = _SLOW
        if type(key) is str and store.env is not None and not store.pending_invalidations:
            lkey, tail = encode_key(key)
            value = store.pending.get(lkey)
            if value is None:
                try:
                    value = store.read(lkey)
                except lmdb.MapResizedError:
                    pass
                else:
                    if value is None:
                        rows = None
            if value is not None:
                try:
                    found_tail, flags = check_value(lkey, value)
                    # Another long key with the same head and digest reads as a miss.
                    rows = decode_payload(value, flags) if found_tail == tail else None
                except DECODE_ERRORS:
                    pass
        if rows is _SLOW:
            rows = await self._get(check_key(key))
        return self._tally(rows, max_age)

    async def _get(self, key: str) -> CachedRows | None:
        lkey, tail = encode_key(key)
        store = self._store
        if store.env is None:
            store = await self._ready()
        if store.pending_invalidations:
            # Let queued invalidations land first, so reads follow call order.
            await store.submit(_SYNC, b"", None)
        # A put still queued is what this process reads (it commits in call order).
        value = store.pending.get(lkey)
        if value is None:
            try:
                value = store.read(lkey)
            except lmdb.MapResizedError:
                # Another process grew the map; the writer adopts the new size between batches.
                await store.submit(_REMAP, b"", None)
                value = store.read(lkey)
            if value is None:
                return None
        try:
            found_tail, flags = check_value(lkey, value)
            if found_tail != tail:
                return None  # another long key with the same head and digest
            return decode_payload(value, flags)
        except UnknownVersion as exc:
            logger.warning(
                "LmdbCache %s: key %r holds payload format version %r, not one of %r; "
                "treated as a miss",
                store.path,
                key,
                exc.args[0],
                (CBOR_FORMAT_VERSION, TABLE_VERSION),
            )
            return None
        except DECODE_ERRORS as exc:
            reason = f"{type(exc).__name__}: {exc}"
        logger.warning(
            "LmdbCache %s: key %r holds a value that is not CachedRows (%s); removed",
            store.path,
            key,
            reason,
        )
        await store.submit(_DROP_IF_SAME, lkey, value)
        return None

    async def _put(self, key: str, rows: CachedRows) -> None:
        lkey, value = encode_value(key, rows)
        # Writes queue up even while the folder is still opening.
        await self._store.submit(_PUT, lkey, value)

    async def _put_if(self, key: str, rows: CachedRows, guard: Callable[[], bool]) -> bool:
        # Not served from ``pending`` meanwhile: the guard may still refuse it.
        lkey, value = encode_value(key, rows)
        stored: bool = await self._store.submit(_PUT_IF, lkey, (value, guard))
        return stored

    async def _invalidate(self, prefix: str) -> int:
        b = prefix.encode("utf-8", "surrogatepass")
        start, tail = (
            (NS + b, b"") if len(b) <= HEAD_BYTES else (NS + b[:HEAD_BYTES], b[HEAD_BYTES:])
        )
        removed: int = await self._store.submit(_INVALIDATE, start, tail)
        return removed

    # -- lifetime ------------------------------------------------------------------------

    async def count(self) -> int:
        """How many keys are stored (one metadata read)."""
        store = await self._ready()
        return store.count()

    async def __aenter__(self) -> Self:
        await self._ready()
        return self

    async def aclose(self) -> None:
        """Cancel refreshes, finish queued writes, close the folder, stop the writer thread."""
        await super().aclose()
        await asyncio.wrap_future(self._store.stop())
        await asyncio.to_thread(self._store.thread.join)

    def close(self) -> None:
        """``aclose`` for synchronous code: blocks until queued writes are committed."""
        self._stop_refreshing()
        self._store.stop().result()
        self._store.thread.join()
