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
    Every exception leaving ``LmdbCache`` is an :class:`LmdbCacheError` (or its subclass
    :class:`LmdbCacheClosedError`), or ``TypeError``/``ValueError`` for bad input; raw
    ``lmdb`` errors never escape. The writer thread never dies of a request.

    *Map growth.* A full map is grown (doubled) and the batch retried; the aborted
    transaction loses nothing. A map another process grew (``MapResizedError``) is adopted
    and the read, count, write or open retried. A small initial ``map_size`` that cannot
    even hold a fresh folder's databases is grown while opening.

    *The limit.* With ``max_map_size`` set, puts may fill the map up to ``max_map_size``
    minus a reserve (1/64 of it plus 64 KiB, at most half) that only invalidations and the
    removal of corrupt values may use: in a full LMDB map even a delete needs free pages
    (copy-on-write pages and the free list), so without the reserve a full cache could not
    be cleaned. After such a cleaning the map is shrunk back to the put limit (or to what is
    in use, if more).

    *One request fails alone.* When a batch cannot be committed (the map cannot grow, the
    disk is full, the file-size limit is reached, or one request is bad), it is applied again
    with each request in a nested transaction of one write transaction, so only the
    requests that do not fit fail; if even that cannot be committed (a full disk fails at
    commit), each request runs in a transaction of its own. A put that fails raises
    :class:`LmdbCacheError` naming the cause and writes nothing; what is stored stays
    readable.

    *Invalidation when space is short.* An invalidation that cannot be committed on its own
    falls back to dropping every row of the folder (one transaction that frees every page;
    a cache may lose data, it must not serve stale data) and returns how many rows that
    removed. If even that cannot be committed, ``invalidate_prefix`` raises
    :class:`LmdbCacheError` and this process refuses reads of keys under that prefix
    (``get`` raises :class:`LmdbCacheError`) until an invalidation covering it commits.
    Other processes are not told: they may read those rows until then.

    *Bad stored data.* A value that fails its checksum or does not decode to rows is
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
# Requests that remove data: they may use the reserve at max_map_size.
_CLEANING: Final = frozenset({_INVALIDATE, _DROP_IF_SAME})
# Tries at one write, read or open while the map fills or other processes resize it.
_ATTEMPTS: Final = 64


class LmdbCacheError(Exception):
    """The folder cannot serve as an ``LmdbCache``: corrupt, another layout, full, I/O error."""


class LmdbCacheClosedError(LmdbCacheError, RuntimeError):
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
        # Puts stop here; the rest of max_map_size is kept for cleaning (module docstring).
        self._put_limit = None if max_map_size is None else max_map_size - _reserve(max_map_size)
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
        # Encoded prefixes whose invalidation could not be committed at all: reads under
        # them are refused. Each also counts in pending_invalidations, which sends get to
        # its slow path. Changed by the writer under _submit_lock.
        self.refused: list[bytes] = []
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

    def read_error(self, exc: BaseException) -> LmdbCacheError:
        err = LmdbCacheError(
            f"cannot read LMDB folder {str(self.path)!r}: {type(exc).__name__}: {exc}"
        )
        err.__cause__ = exc
        return err

    def resized_error(self) -> LmdbCacheError:
        return LmdbCacheError(
            f"cannot read LMDB folder {str(self.path)!r}: its map was resized by another "
            f"process {_ATTEMPTS} times in a row, or this process cannot adopt the new size"
        )

    def check_refused(self, key: str) -> None:
        """Raise if an invalidation covering ``key`` could not be committed."""
        b = key.encode("utf-8", "surrogatepass")
        for prefix in self.refused:
            if b.startswith(prefix):
                raise LmdbCacheError(
                    f"LmdbCache at {str(self.path)!r}: invalidating prefix "
                    f"{prefix.decode('utf-8', 'surrogatepass')!r} could not be committed, so "
                    f"key {key!r} may be stale; reads under it are refused until an "
                    "invalidation covering it succeeds"
                )

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
        except lmdb.MapResizedError:
            raise
        except lmdb.Error as exc:
            raise self.read_error(exc) from exc
        finally:
            lock.release()

    def count(self) -> int:
        """How many rows are stored; ``lmdb.MapResizedError`` if a remap is due."""
        with self.read_lock:
            env = self.env
            if env is None:
                raise self.closed_error()
            try:
                with env.begin(db=self.rows_db) as txn:
                    return int(txn.stat(self.rows_db)["entries"])
            except lmdb.MapResizedError:
                raise
            except lmdb.Error as exc:
                raise self.read_error(exc) from exc

    # -- the writer thread ------------------------------------------------------------

    def _open(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        size = self._map_size
        for _ in range(_ATTEMPTS):
            try:
                env = lmdb.open(
                    str(self.path),
                    map_size=size,
                    max_dbs=2,
                    sync=self.durable,
                    metasync=self.durable,
                )
            except lmdb.MapResizedError:
                continue  # another process grew the map meanwhile: opening again adopts it
            except lmdb.Error as exc:
                raise LmdbCacheError(
                    f"cannot open LMDB folder {str(self.path)!r}: {type(exc).__name__}: {exc}"
                ) from exc
            try:
                current = int(env.info()["map_size"])
                rows_db = self._prepare(env)
            except lmdb.MapResizedError:
                env.close()
                continue
            except lmdb.MapFullError as exc:
                # A fresh folder's databases do not fit a small map_size: grow it.
                env.close()
                size = current * 2
                if self._max_map_size is not None:
                    if current >= self._max_map_size:
                        raise LmdbCacheError(
                            f"cannot open LMDB folder {str(self.path)!r}: its databases do not "
                            f"fit in max_map_size={self._max_map_size}"
                        ) from exc
                    size = min(size, self._max_map_size)
                continue
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
            self._shrink()
            return
        raise LmdbCacheError(
            f"cannot open LMDB folder {str(self.path)!r}: its map was resized by another "
            f"process {_ATTEMPTS} times in a row"
        )

    def _prepare(self, env: lmdb.Environment) -> Any:
        """Open the databases (writing the layout of a fresh folder); the rows database."""
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
        return rows_db

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
            try:
                outcomes = self._apply(batch) if batch else []
            except Exception as exc:  # noqa: BLE001 - the writer must outlive any request
                outcomes = [(self._failure(exc), None)] * len(batch)
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
        error: LmdbCacheError | None = None
        try:
            if env is not None:
                with self.read_lock:
                    try:
                        if not self.durable:
                            env.sync(True)
                    except lmdb.Error as exc:
                        error = LmdbCacheError(
                            f"cannot sync LMDB folder {str(self.path)!r} on close (it is closed "
                            f"anyway; commits since the last sync may be lost if the OS "
                            f"crashes): {type(exc).__name__}: {exc}"
                        )
                        error.__cause__ = exc
                    finally:
                        env.close()
        finally:
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)

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
        for _ in range(_ATTEMPTS):
            try:
                with env.begin(write=True, db=self.rows_db) as txn:
                    results = [self._do(txn, req) for req in batch]
            except lmdb.MapFullError:
                if self._grow(self._put_limit) is not None:
                    break  # the map cannot grow: find the requests that do not fit
            except lmdb.MapResizedError:
                if self._adopt() is not None:
                    break
            except Exception:  # noqa: BLE001 - a bad request or a full disk: split the batch
                break
            else:
                self.batches += 1
                self._cleared(batch)
                return [(None, r) for r in results]
        return self._apply_nested(batch)

    def _apply_nested(
        self, batch: list[tuple[Any, ...]]
    ) -> list[tuple[BaseException | None, object]]:
        """``batch`` with each put in a nested transaction: only the failing ones fail.

        A cleaning request that fails here runs alone (it may use the reserve) after what
        came before it is committed, so the batch keeps its order.
        """
        if len(batch) == 1:
            return [self._apply_alone(batch[0])]
        env = self.env
        assert env is not None
        outcomes: list[tuple[BaseException | None, object]] = []
        rest: list[tuple[Any, ...]] = []
        try:
            with env.begin(write=True, db=self.rows_db) as txn:
                for i, req in enumerate(batch):
                    try:
                        with env.begin(write=True, parent=txn, db=self.rows_db) as child:
                            result = self._do(child, req)
                    except Exception as exc:  # noqa: BLE001 - this request's outcome
                        if req[0] in _CLEANING:
                            rest = batch[i:]
                            break
                        outcomes.append((self._failure(exc), None))
                    else:
                        outcomes.append((None, result))
        except Exception:  # noqa: BLE001 - the commit failed (a full disk): one by one
            return [self._apply_alone(req) for req in batch]
        self.batches += 1
        self._cleared(batch[: len(outcomes)])
        if rest:
            outcomes.append(self._apply_alone(rest[0]))
            if len(rest) > 1:
                outcomes.extend(self._apply(rest[1:]))
        return outcomes

    def _apply_alone(self, req: tuple[Any, ...]) -> tuple[BaseException | None, object]:
        """``req`` in a write transaction of its own; cleaning may use the whole map."""
        kind = req[0]
        if kind not in _CLEANING:
            return self._run_alone(req, self._put_limit)
        try:
            outcome = self._run_alone(req, self._max_map_size)
            if outcome[0] is not None and kind == _INVALIDATE:
                outcome = self._drop_everything(req, outcome[0])
            return outcome
        finally:
            self._shrink()

    def _run_alone(
        self, req: tuple[Any, ...], limit: int | None
    ) -> tuple[BaseException | None, object]:
        env = self.env
        assert env is not None
        error: LmdbCacheError | None = None
        for _ in range(_ATTEMPTS):
            try:
                with env.begin(write=True, db=self.rows_db) as txn:
                    result = self._do(txn, req)
            except lmdb.MapFullError:
                error = self._grow(limit)
                if error is not None:
                    break
            except lmdb.MapResizedError:
                error = self._adopt()
                if error is not None:
                    break
            except Exception as exc:  # noqa: BLE001 - becomes the caller's exception
                error = self._failure(exc)
                break
            else:
                self.batches += 1
                self._cleared([req])
                return None, result
        if error is None:
            error = LmdbCacheError(
                f"cannot write to LMDB folder {str(self.path)!r}: gave up after {_ATTEMPTS} "
                "attempts (the map kept filling or being resized)"
            )
        return error, None

    def _drop_everything(
        self, req: tuple[Any, ...], error: BaseException
    ) -> tuple[BaseException | None, object]:
        """The invalidation ``req`` could not be committed: drop every row instead."""
        prefix = req[1][len(NS) :] + req[2]
        shown = prefix.decode("utf-8", "surrogatepass")
        outcome = self._run_alone((_INVALIDATE, NS, b"", None, None), self._max_map_size)
        if outcome[0] is None:
            logger.warning(
                "LmdbCache %s: invalidating prefix %r could not be committed (%s); "
                "dropped all %d rows instead",
                self.path,
                shown,
                error,
                outcome[1],
            )
            return outcome
        with self._submit_lock:
            self.refused.append(prefix)
            self.pending_invalidations += 1
        failure = LmdbCacheError(
            f"cannot invalidate prefix {shown!r} in LMDB folder {str(self.path)!r} ({error}), "
            f"nor drop every row ({outcome[0]}); this process refuses reads under that prefix "
            "until an invalidation covering it succeeds"
        )
        failure.__cause__ = error
        return failure, None

    def _cleared(self, committed: list[tuple[Any, ...]]) -> None:
        """Committed invalidations end the refusal of the prefixes they cover."""
        if not self.refused:
            return
        for req in committed:
            if req[0] != _INVALIDATE:
                continue
            prefix = req[1][len(NS) :] + req[2]
            with self._submit_lock:
                kept = [p for p in self.refused if not p.startswith(prefix)]
                self.pending_invalidations -= len(self.refused) - len(kept)
                self.refused = kept

    def _failure(self, exc: BaseException) -> LmdbCacheError:
        """What a caller gets for ``exc`` raised by its request."""
        if isinstance(exc, LmdbCacheError):
            return exc
        if isinstance(exc, lmdb.MapFullError):
            err = self._full_error(self._put_limit)
        else:
            err = LmdbCacheError(
                f"cannot write to LMDB folder {str(self.path)!r}: {type(exc).__name__}: {exc}; "
                "nothing was written by this request"
            )
        err.__cause__ = exc
        return err

    def _full_error(self, limit: int | None) -> LmdbCacheError:
        reserve = ""
        if limit is not None and limit != self._max_map_size:
            reserve = f" (puts stop at {limit} bytes; the rest is kept for invalidations)"
        return LmdbCacheError(
            f"LMDB folder {str(self.path)!r} is full at max_map_size={self._max_map_size}"
            f"{reserve}; nothing was written by this request"
        )

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

    def _grow(self, limit: int | None) -> LmdbCacheError | None:
        """Double the map, up to ``limit``; the error to report if it cannot grow."""
        env = self.env
        assert env is not None
        try:
            current = int(env.info()["map_size"])
        except lmdb.Error as exc:
            return self._failure(exc)
        new = current * 2
        if limit is not None:
            if current >= limit:
                return self._full_error(limit)
            new = min(new, limit)
        try:
            self._remap(new)
        except (lmdb.Error, OSError) as exc:
            err = LmdbCacheError(
                f"cannot grow LMDB map of {str(self.path)!r} to {new} bytes: {exc}"
            )
            err.__cause__ = exc
            return err
        logger.info("grew LMDB map of %s from %d to %d bytes", self.path, current, new)
        return None

    def _shrink(self) -> None:
        """Bring a map grown into the reserve back to the put limit (or what is in use)."""
        env = self.env
        limit = self._put_limit
        if env is None or limit is None:
            return
        try:
            if int(env.info()["map_size"]) > limit:
                self._remap(limit)  # LMDB keeps at least the pages in use
        except lmdb.Error as exc:
            logger.warning("cannot shrink the LMDB map of %s: %s", self.path, exc)

    def _adopt(self) -> LmdbCacheError | None:
        """Adopt a map another process grew; the error to report if that fails."""
        try:
            self._remap(0)
        except lmdb.Error as exc:
            err = LmdbCacheError(
                f"cannot adopt the LMDB map of {str(self.path)!r} another process grew: {exc}"
            )
            err.__cause__ = exc
            return err
        return None

    def _remap_adopt(self) -> None:
        """Adopt a map another process grew; a failure shows up again on the next read."""
        error = self._adopt()
        if error is not None:
            logger.warning("%s", error)

    def _remap(self, size: int) -> None:
        env = self.env
        assert env is not None
        with self.read_lock:
            env.set_mapsize(size)


def _reserve(max_map_size: int) -> int:
    """Bytes of ``max_map_size`` kept for invalidations: 1/64 plus 64 KiB, at most half."""
    return min(max_map_size // 2, max_map_size // 64 + (64 << 10))


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
    up to ``max_map_size`` if given: puts stop a reserve below it (1/64 of it plus 64 KiB,
    at most half), kept so that invalidations still commit in a full cache.
    ``durable=True`` syncs every commit to disk before a write's ``await`` returns;
    ``durable=False`` leaves flushing to the OS (a process crash loses nothing committed,
    an OS crash may lose recent writes). ``max_age`` is the default age limit of ``get``;
    rows older than it are a miss but stay stored (a read removes nothing, unlike
    ``MemCache``) until a put replaces them or an invalidation drops them.
    ``bus`` a ``RedisBus`` that shares invalidations with other processes (see :class:`Cache`).

    The folder is opened on a background thread; open errors (:class:`LmdbCacheError`)
    surface from the first awaited call or from ``async with``. Close with ``await
    aclose()`` (or ``async with``), or ``close()`` from synchronous code; afterwards every
    call raises :class:`LmdbCacheClosedError`.

    Exceptions. Nothing else leaves a method; in particular no raw ``lmdb`` error.

    * ``LmdbCache(...)``: ``TypeError``/``ValueError`` for a bad argument (no disk I/O).
    * every awaited method, ``count`` included: :class:`LmdbCacheError` if the folder could
      not be opened (not an LMDB folder, another layout, no permission, databases too big
      for ``max_map_size``), :class:`LmdbCacheClosedError` after closing.
    * ``get``: ``TypeError`` for a non-``str`` key or a bad ``max_age`` type,
      ``ValueError`` for a negative one; :class:`LmdbCacheError` if LMDB cannot read, or if
      an invalidation covering the key could not be committed at all (see ``Faults`` in
      the module). A stored value that is not rows is a miss, never an error.
    * ``put``: ``TypeError``/``ValueError`` for a bad key, rows, or a value CBOR cannot
      encode (naming the key); :class:`LmdbCacheError` naming the cause if it cannot be
      committed (full at the limit, disk full, file-size limit, I/O error). Nothing is
      written then, and the other requests of its batch are unaffected.
    * ``invalidate_prefix``: ``TypeError`` for a non-``str`` prefix;
      :class:`LmdbCacheError` only if neither the invalidation nor dropping every row
      could be committed (then reads under the prefix are refused in this process).
    * ``get_or_fetch``: those of ``get`` and ``put``, and whatever ``fetch`` raises.
    * ``count``: :class:`LmdbCacheError` if LMDB cannot read.
    * ``aclose``/``close``: :class:`LmdbCacheError` if the final sync of a
      ``durable=False`` cache fails; the folder is closed anyway.
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
        bus: Any = None,
    ) -> None:
        super().__init__(max_age=max_age, stale_while_revalidate=stale_while_revalidate, bus=bus)
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
        """The LMDB folder, as given to the constructor."""
        return self._store.path

    @property
    def durable(self) -> bool:
        """Whether a write is synced to disk before its ``await`` returns."""
        return self._store.durable

    @property
    def closed(self) -> bool:
        """Whether the cache was closed (``aclose()``, ``close()`` or ``async with``)."""
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
        """The rows stored under ``key``, or ``None`` (also when older than ``max_age``).

        Read inline, without a thread hop; a put or invalidation still queued in this process
        is seen. ``max_age=None`` uses the cache's default; ``math.inf`` lifts it for this call.
        """
        # _get without its awaits, for the common case: the folder is open, no invalidation
        # is queued and the value reads as rows. Anything else (a MapResizedError too) goes
        # to _get, which reads again and handles it.
        if self._lagging:
            self._bypass(key, max_age)
            return None
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
            if store.pending_invalidations > len(store.refused):
                # Let queued invalidations land first, so reads follow call order.
                await store.submit(_SYNC, b"", None)
            if store.refused:
                store.check_refused(key)
        # A put still queued is what this process reads (it commits in call order).
        value = store.pending.get(lkey)
        if value is None:
            value = await self._read(store, lkey)
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
        try:
            await store.submit(_DROP_IF_SAME, lkey, value)
        except LmdbCacheClosedError:
            raise
        except LmdbCacheError as exc:
            logger.warning("LmdbCache %s: cannot remove key %r: %s", store.path, key, exc)
        return None

    @staticmethod
    async def _read(store: _Store, lkey: bytes) -> bytes | None:
        """``store.read``, adopting a map another process grew (the writer remaps)."""
        for _ in range(_ATTEMPTS):
            try:
                return store.read(lkey)
            except lmdb.MapResizedError:
                await store.submit(_REMAP, b"", None)
        raise store.resized_error()

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
        for _ in range(_ATTEMPTS):
            try:
                return store.count()
            except lmdb.MapResizedError:
                # Another process grew the map; the writer adopts the new size between batches.
                await store.submit(_REMAP, b"", None)
        raise store.resized_error()

    async def __aenter__(self) -> Self:
        await self._ready()
        return self

    async def aclose(self) -> None:
        """Cancel refreshes, finish queued writes, close the folder, stop the writer thread.

        Raises :class:`LmdbCacheError` if the final sync of a ``durable=False`` cache
        fails; the folder is closed and the thread stopped all the same.
        """
        await super().aclose()
        try:
            await asyncio.wrap_future(self._store.stop())
        finally:
            await asyncio.to_thread(self._store.thread.join)

    def close(self) -> None:
        """``aclose`` for synchronous code: blocks until queued writes are committed."""
        self._stop_refreshing()
        try:
            self._store.stop().result()
        finally:
            self._store.thread.join()
