"""``LmdbCache``: the cache contract on an LMDB folder, rows stored as CBOR.

On-disk layout (layout version 1)
---------------------------------
The folder holds one LMDB environment with two named databases:

``meta``
    ``b"layout"`` -> the CBOR map ``{"layout": 1, "head": 480, "digest": 16}``. A folder
    written with another layout is refused on open instead of being misread.
``rows``
    One record per cache key. Let ``b`` be the key encoded as UTF-8 with ``surrogatepass``
    (so lone surrogates work; this encoding is prefix-free per character, hence ``p`` is a
    string prefix of ``k`` exactly when ``b(p)`` is a byte prefix of ``b(k)``).

    * short key, ``len(b) <= 480``: LMDB key ``b"k" + b``;
    * long key: LMDB key ``b"k" + b[:480] + blake2b(b[480:], 16 bytes)`` (497 bytes, under
      LMDB's 511-byte limit), and the tail ``b[480:]`` is stored in the value.

    The leading ``b"k"`` makes ``""`` a legal LMDB key. A short LMDB key is at most 481
    bytes, a long one exactly 497, so the two never collide.

    The value is ``payload + trailer``. ``payload`` is a CBOR array whose first item is
    its format version:

    * ``2``, the table form, for a page with rows:
      ``[2, fetched_at, [field, ...], [row_id, cell, ..., row_id, cell, ...]]``, one cell
      per field and row in the field list's order, ``undefined`` (CBOR simple value 23)
      where the record lacks the field. Field names are written, and decoded, once per
      page rather than once per record. If some records list their fields in another
      order than the field list, a fifth item ``{row number: [field index, ...]}`` gives
      their order.
    * ``1``, the map form, which is ``CachedRows.to_cbor()``:
      ``[1, fetched_at, {row_id: {field: value}}]``; written for a page without rows and
      for one with a field whose value is ``undefined`` (it would read as a missing field).

    The trailer is, for a long key, ``tail`` and ``len(tail)`` (4 bytes, little-endian);
    then one flags byte (bit 0: every field value is a scalar, so decoding needs no deep
    freeze); then ``crc32`` of everything before it (4 bytes, little-endian). A CRC-32
    over data followed by its own little-endian CRC is a fixed constant, so a value is
    checked in one pass, and CBOR decoding reads the first item and stops at the trailer,
    so nothing is sliced on the way.

Why this keeps prefix semantics exact
    Every key, short or long, sorts under the first 480 bytes of its encoding, so for a
    prefix of at most 480 bytes the keys starting with it are exactly the LMDB keys
    starting with ``b"k" + b(prefix)``: one cursor range, deleted in one write transaction
    without looking at values. A longer prefix can only match long keys sharing its first
    480 bytes; that range is walked once (same transaction) and each entry's stored tail is
    compared with the rest of the prefix. ``get`` of a long key compares the stored tail, so a
    digest collision reads as a miss, never as another key's rows.

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
import hashlib
import logging
import os
import queue
import struct
import threading
import weakref
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import cbor2
import lmdb

from ._cache import Cache, check_key
from ._core import rows_from_map, rows_from_table
from ._rows import (
    CBOR_FORMAT_VERSION,
    NO_SHARED_VALUES,
    CachedRows,
    _freeze,
    _thaw,
    dumps_payload,
)

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["LmdbCache", "LmdbCacheClosedError", "LmdbCacheError"]

logger = logging.getLogger("trie_cache.lmdb")

#: Bytes of the encoded key kept verbatim in the LMDB key; the rest is hashed.
HEAD_BYTES: Final = 480
#: Size of the blake2b digest of a long key's tail.
DIGEST_BYTES: Final = 16
#: Layout of the folder (not of the payload, which has its own version).
LAYOUT_VERSION: Final = 1

_NS: Final = b"k"
_LONG_LEN: Final = len(_NS) + HEAD_BYTES + DIGEST_BYTES
_LAYOUT_KEY: Final = b"layout"
_LAYOUT: Final = cbor2.dumps({"layout": LAYOUT_VERSION, "head": HEAD_BYTES, "digest": DIGEST_BYTES})
_MAX_BATCH: Final = 4096
#: Payload version of the table form (``CBOR_FORMAT_VERSION`` is the map form's).
TABLE_VERSION: Final = 2
#: A table cell of a field the record does not have.
_ABSENT: Final = cbor2.undefined
# get's fast path could not decide; _get takes over.
_SLOW: Final = object()

# Writer requests: (kind, key bytes, argument, loop or None, future).
_PUT: Final = 0
_INVALIDATE: Final = 1
_DROP_IF_SAME: Final = 2
_REMAP: Final = 3
_STOP: Final = 4
_SYNC: Final = 5


class LmdbCacheError(Exception):
    """The folder cannot serve as an ``LmdbCache``: corrupt, another layout, or full."""


class LmdbCacheClosedError(RuntimeError):
    """The ``LmdbCache`` was closed; open a new one to go on."""


def encode_key(key: str) -> tuple[bytes, bytes]:
    """The LMDB key for ``key`` and the tail kept in the value (``b""`` for a short key)."""
    b = key.encode("utf-8", "surrogatepass")
    if len(b) <= HEAD_BYTES:
        return _NS + b, b""
    tail = b[HEAD_BYTES:]
    return _NS + b[:HEAD_BYTES] + hashlib.blake2b(tail, digest_size=DIGEST_BYTES).digest(), tail


def frame_value(tail: bytes, payload: bytes, flat: bool = False) -> bytes:
    """The stored value: payload, (for a long key) tail and its length, flags, checksum."""
    flags = b"\x01" if flat else b"\x00"
    body = payload + flags if not tail else payload + tail + _U32.pack(len(tail)) + flags
    return body + _U32.pack(zlib.crc32(body))


_FLAT: Final = 1
_U32: Final = struct.Struct("<I")
# crc32(data + crc32(data) as 4 little-endian bytes) is this constant for any data, so a
# value is checked in one pass without slicing off its checksum.
_CRC_RESIDUE: Final = 0x2144DF1C


class _UnknownVersion(Exception):
    pass


class _Corrupt(Exception):
    pass


def _check_value(lkey: bytes, value: bytes) -> tuple[bytes, int]:
    """``(tail, flags)`` of a stored value; ``_Corrupt`` if it fails its checksum."""
    size = len(value)
    if size < 6 or zlib.crc32(value) != _CRC_RESIDUE:
        raise _Corrupt("checksum mismatch")
    if len(lkey) != _LONG_LEN:
        return b"", value[-5]
    end = size - 9
    start = end - _U32.unpack_from(value, end)[0]
    if start < 1:
        raise _Corrupt("tail longer than the value")
    return value[start:end], value[-5]


def _successor(prefix: bytes) -> bytes:
    """The least byte string greater than every string that starts with ``prefix``."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        raise ValueError("a prefix of only 0xff bytes has no successor")
    return stripped[:-1] + bytes([stripped[-1] + 1])


def _stored_tail(lkey: bytes, value: bytes) -> bytes | None:
    try:
        return _check_value(lkey, value)[0]
    except (_Corrupt, struct.error):
        return None


def _decode_payload(payload: bytes, flags: int) -> CachedRows:
    """Rows from a checksummed payload; ``ValueError``/``TypeError`` if it is not rows.

    The checksum says these bytes are what ``put`` wrote for a valid ``CachedRows``, so
    the per-field checks of ``CachedRows.from_cbor`` are skipped (they would double the
    cost of a ``get``): the core's decoders check the shape and freeze nested values as
    the constructor does, which flat rows (flag bit 0) do not need.
    """
    # Reads the first CBOR item; the trailer follows it.
    data = cbor2.loads(payload, semantic_decoders=NO_SHARED_VALUES)
    slow = None if flags & _FLAT else _freeze
    if type(data) is list and data:
        version = data[0]
        if version == TABLE_VERSION and type(version) is int:
            rows = rows_from_table(data, TABLE_VERSION, CachedRows, _ABSENT, slow)
            if rows is None:
                raise ValueError("not a table of rows")
            return rows
        if version == CBOR_FORMAT_VERSION and type(version) is int:
            rows = rows_from_map(data, CBOR_FORMAT_VERSION, CachedRows, slow)
            if rows is None:
                raise ValueError("not [version, fetched_at, {row id: record}]")
            return rows
        raise _UnknownVersion(version)
    raise ValueError("not a CBOR array that starts with a format version")


#: What decoding a stored value may raise when the value is not rows this code can read.
_DECODE_ERRORS: Final = (
    _UnknownVersion,
    _Corrupt,
    struct.error,
    ValueError,
    TypeError,
    AttributeError,
    RecursionError,
    cbor2.CBORDecodeError,
)


def _table(rows: CachedRows) -> list[Any] | None:
    """The table form of ``rows``, or ``None`` for a page without rows or with a field
    whose value is ``cbor2.undefined`` (the map form).

    The field list merges the records' fields, each new one placed right after the field
    before it in its record. Every row has one cell per field, ``cbor2.undefined`` for a
    field the record lacks (a value rows cannot hold, as it is not a scalar). A record that
    lists two fields in another order than the field list is rare (one query gives one
    column order) and keeps its order in a fifth item, ``{row: [field index, ...]}``.
    """
    records = rows._rows
    if not records:
        return None
    if not rows._flat and any(
        value is _ABSENT for record in records.values() for value in record.values()
    ):
        return None  # an undefined field value would read back as a missing field
    cells: list[Any] = []
    append, extend = cells.append, cells.extend
    fields = None
    for row_id, record in records.items():
        if fields is None:
            fields = tuple(record)
        elif tuple(record) != fields:
            cells.clear()
            break
        append(row_id)
        extend(record.values())
    else:  # every record lists the same fields in the same order: the common case
        if not rows._flat:
            cells = [_thaw(cell) for cell in cells]
        return [TABLE_VERSION, rows._fetched_at, list(fields or ()), cells]
    names: list[str] = []
    index: dict[str, int] = {}
    reordered: list[int] = []
    for row, record in enumerate(records.values()):
        last = -1
        deviates = False
        for field in record:
            at = index.get(field)
            if at is None:
                # A new field goes right after the record's previous one, before any later
                # (at the end once the record has left the field list's order).
                at = len(names) if deviates else last + 1
                if at == len(names):
                    index[field] = at
                    names.append(field)
                else:
                    names.insert(at, field)
                    index = {name: i for i, name in enumerate(names)}
            elif at <= last:
                deviates = True
            last = at
        if deviates:
            reordered.append(row)
    for row_id, record in records.items():
        append(row_id)
        extend([record.get(field, _ABSENT) for field in names])
    if not rows._flat:
        cells = [_thaw(cell) for cell in cells]  # read-only views back to what CBOR encodes
    table = [TABLE_VERSION, rows._fetched_at, names, cells]
    if reordered:
        items = list(records.values())
        table.append({row: [index[field] for field in items[row]] for row in reordered})
    return table


def _payload(rows: CachedRows) -> bytes:
    """The stored CBOR payload of ``rows``: the table form when it applies, else ``to_cbor``."""
    table = _table(rows)
    return rows.to_cbor() if table is None else dumps_payload(table)


def encode_value(key: str, rows: CachedRows) -> tuple[bytes, bytes]:
    """The LMDB key and value that ``put(key, rows)`` stores."""
    lkey, tail = encode_key(key)
    try:
        payload = _payload(rows)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"rows for key {key!r} cannot be stored: {exc}") from exc
    return lkey, frame_value(tail, payload, rows._flat)


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
                layout = txn.get(_LAYOUT_KEY)
                if layout is None:
                    txn.put(_LAYOUT_KEY, _LAYOUT)
                elif layout != _LAYOUT:
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
        if start == _NS:
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
            end = _successor(start)
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
            if len(k) == _LONG_LEN:
                stored = _stored_tail(k, value())
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
    ) -> None:
        super().__init__(max_age=max_age)
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
                    stored_tail, flags = _check_value(lkey, value)
                    # Another long key with the same head and digest reads as a miss.
                    rows = _decode_payload(value, flags) if stored_tail == tail else None
                except _DECODE_ERRORS:
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
            stored_tail, flags = _check_value(lkey, value)
            if stored_tail != tail:
                return None  # another long key with the same head and digest
            return _decode_payload(value, flags)
        except _UnknownVersion as exc:
            logger.warning(
                "LmdbCache %s: key %r holds CachedRows format version %r, not %r; "
                "treated as a miss",
                store.path,
                key,
                exc.args[0],
                CBOR_FORMAT_VERSION,
            )
            return None
        except _DECODE_ERRORS as exc:
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

    async def _invalidate(self, prefix: str) -> int:
        b = prefix.encode("utf-8", "surrogatepass")
        start, tail = (
            (_NS + b, b"") if len(b) <= HEAD_BYTES else (_NS + b[:HEAD_BYTES], b[HEAD_BYTES:])
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
        """Finish queued writes, close the folder and stop the writer thread."""
        await asyncio.wrap_future(self._store.stop())
        await asyncio.to_thread(self._store.thread.join)

    def close(self) -> None:
        """``aclose`` for synchronous code: blocks until queued writes are committed."""
        self._store.stop().result()
        self._store.thread.join()
