"""``RedisBus``: prefix invalidations shared by every process on one Redis Stream.

Needs the ``redis`` extra (``pip install 'trie_cache[redis]'``); ``import trie_cache`` does not
import this module. One bus serves any number of caches of one process, on the event loop that
opened it::

    async with RedisBus("redis://127.0.0.1:6379/0", stream="shop:invalidate") as bus:
        cache = MemCache(bus=bus)
        await cache.invalidate_prefix("t1/clients/")   # here, and in every cache on the stream

How it works. ``invalidate_prefix(p)`` drops ``p`` locally, then appends an entry
``{o: origin, p: prefix}`` to the stream (``XADD ... MAXLEN ~ maxlen``) and returns once Redis
acknowledged it. A reader task per bus follows the stream with ``XREAD BLOCK`` from the id of the
last entry it handled (its *position*) and applies every prefix of another origin through the
caches' own invalidation path, so fetches in flight under it store nothing.

No silent loss. The reader checks that the entry where an earlier read started is still in
the stream (``XRANGE id id``, pipelined before the next ``XREAD``): trimming removes the oldest
entries first, so if that entry is there, nothing between it and what the reads since returned
was lost. It checks after every reconnect and then at least every 50 ms while entries flow
(once per blocking read when idle). If the entry is gone -- the stream was trimmed past the
reader, deleted, or recreated (a restart without persistence, ``FLUSHALL``) -- the reader
cannot know what it missed, and every attached cache drops everything (a *reset*). A position
always names a real entry: a bus that finds the stream empty or absent appends a marker entry
(an origin and no prefix) and starts there.

States. *connected* (the reader heard from Redis within ``max_lag`` seconds), *lagging* (it has
not: every ``get`` of the attached caches is a miss until a read comes back with everything
pending applied), *closed*. Appends not acknowledged within ``publish_timeout`` raise
:class:`BusError` and stay queued; they are appended in order once Redis answers again.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import uuid
import warnings
import weakref
from typing import TYPE_CHECKING, Any

import redis.asyncio
import redis.exceptions

from ._cache import Cache

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Self

__all__ = ["BusClosedWarning", "BusError", "RedisBus"]

logger = logging.getLogger("trie_cache.redis")

#: What a reader or publisher survives by retrying: Redis unreachable, restarting or refusing.
_RETRIED = (redis.exceptions.RedisError, OSError, asyncio.TimeoutError)

#: Entries asked for in one XREAD; a shorter reply means the reader has caught up.
_READ_COUNT = 1000
#: ``asyncio.timeout_at`` (Python 3.11+): a deadline without wrapping the append in a task.
_timeout_at = getattr(asyncio, "timeout_at", None)

#: A reader verifies that it missed nothing at most this often (seconds), and after reconnecting.
_VERIFY_EVERY = 0.05

#: Appends sent in one pipeline by the publisher.
_PUBLISH_BATCH = 1000


class BusError(Exception):
    """The bus could not do what was asked: an append not acknowledged within
    ``publish_timeout`` (the prefix stays queued and is appended later), a bus used before
    ``start()`` or from another event loop, or Redis unreachable when the bus starts."""


class BusClosedWarning(RuntimeWarning):
    """A cache invalidated a prefix after its bus was closed; it goes on as a local cache."""


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "surrogatepass") if isinstance(value, bytes) else value


def _field(fields: Any, name: str) -> Any:
    # Replies hold bytes keys, or str keys on a client made with decode_responses=True.
    value = fields.get(name.encode())
    return fields.get(name) if value is None else value


def _entries(reply: Any) -> list[Any]:
    """The ``(id, fields)`` pairs of an XREAD reply on one stream, RESP2 or RESP3."""
    if not reply:
        return []
    # RESP2: [[stream, entries]]; RESP3: {stream: entries}, with entries wrapped in one more
    # list by redis-py 8.
    value = next(iter(reply.values())) if isinstance(reply, dict) else reply[0][1]
    if value and not isinstance(value[0][0], (bytes, str)):
        value = value[0]
    return list(value)


def _encode_prefix(prefix: str) -> dict[str, bytes | str]:
    try:
        return {"p": prefix.encode("utf-8")}
    except UnicodeEncodeError:
        # Lone surrogates: hex, so that clients decoding replies as UTF-8 can read it.
        return {"x": prefix.encode("utf-8", "surrogatepass").hex()}


def _decode_prefix(fields: Any) -> str | None:
    """The prefix an entry carries, or ``None`` for a marker entry."""
    value = _field(fields, "p")
    if value is not None:
        return _text(value)
    value = _field(fields, "x")
    if value is not None:
        return bytes.fromhex(_text(value)).decode("utf-8", "surrogatepass")
    return None


def _check_seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    seconds = float(value)
    if math.isnan(seconds) or seconds <= 0 or math.isinf(seconds):
        raise ValueError(f"{name} must be a positive, finite number of seconds, not {value!r}")
    return seconds


class RedisBus:
    """Shares ``invalidate_prefix`` between processes through the Redis Stream ``stream``.

    ``url_or_client`` is a ``redis://`` (or ``rediss://``, ``unix://``) URL -- the bus then owns
    its client and closes it -- or a ``redis.asyncio`` client the caller owns: a plain
    ``Redis``, one from ``Sentinel.master_for`` or a ``RedisCluster`` (the stream is one key).
    RESP2 and RESP3 connections, with or without ``decode_responses``, work alike. A client
    given with a ``socket_timeout`` must allow the reader's blocking reads
    (``min(max_lag / 4, 2)`` seconds).

    ``maxlen`` caps the stream (``MAXLEN ~``, so Redis may keep somewhat more); a reader more
    than ``maxlen`` entries behind resets its caches. ``max_lag`` (seconds): how long the reader
    may be out of touch before the caches answer every ``get`` with a miss.
    ``publish_timeout`` (seconds): how long ``invalidate_prefix`` waits for Redis to
    acknowledge the append before raising :class:`BusError`; also how long ``start()`` waits
    for Redis and ``aclose()`` for queued appends.

    Use ``async with bus`` (or ``await bus.start()`` ... ``await bus.aclose()``) on the event
    loop that will use the caches; attach caches with ``bus=`` in their constructors.
    """

    def __init__(
        self,
        url_or_client: str | Any,
        *,
        stream: str = "trie_cache:invalidate",
        maxlen: int = 100_000,
        max_lag: float = 5.0,
        publish_timeout: float = 2.0,
    ) -> None:
        if not isinstance(url_or_client, (str, redis.asyncio.Redis, redis.asyncio.RedisCluster)):
            raise TypeError(
                "url_or_client must be a Redis URL (str) or a redis.asyncio client, "
                f"not {type(url_or_client).__name__}"
            )
        if not isinstance(stream, str):
            raise TypeError(f"stream must be str, not {type(stream).__name__}")
        if not stream:
            raise ValueError("stream must not be empty")
        if isinstance(maxlen, bool) or not isinstance(maxlen, int):
            raise TypeError(f"maxlen must be int, not {type(maxlen).__name__}")
        if maxlen < 1:
            raise ValueError(f"maxlen must be at least 1, not {maxlen!r}")
        self._stream = stream
        self._maxlen = maxlen
        self._max_lag = _check_seconds("max_lag", max_lag)
        self._publish_timeout = _check_seconds("publish_timeout", publish_timeout)
        # The client last: a bad argument leaves no client behind.
        if isinstance(url_or_client, str):
            self._client: Any = redis.asyncio.Redis.from_url(url_or_client)
            self._owns_client = True
        else:
            self._client = url_or_client
            self._owns_client = False
        self._block_ms = max(1, int(min(self._max_lag / 4, 2.0) * 1000))
        #: Written into every entry this bus appends; its reader skips these.
        self.origin = uuid.uuid4().hex
        self._caches: weakref.WeakSet[Cache] = weakref.WeakSet()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._position: str | None = None
        self._reader: asyncio.Task[None] | None = None
        self._publisher: asyncio.Task[None] | None = None
        self._queue: collections.deque[tuple[str, asyncio.Future[None]]] = collections.deque()
        self._wake: asyncio.Event | None = None
        self._drained: asyncio.Event | None = None
        self._last_contact = 0.0
        self._watchdog: asyncio.TimerHandle | None = None
        self._lagging = False
        self._sending = False  # an append made by a caller itself is awaiting Redis
        self._closed = False
        self._resets = 0

    # -- public state ------------------------------------------------------------------

    @property
    def stream(self) -> str:
        """The key of the Redis Stream that carries the invalidations."""
        return self._stream

    @property
    def lagging(self) -> bool:
        """Whether the reader is out of touch (caches answer every ``get`` with a miss)."""
        return self._lagging

    @property
    def closed(self) -> bool:
        """Whether ``aclose()`` was called (or the ``async with`` block left)."""
        return self._closed

    @property
    def position(self) -> str | None:
        """The id of the last stream entry the reader handled (``None`` before ``start()``)."""
        return self._position

    @property
    def queued(self) -> int:
        """Prefixes waiting to be appended."""
        return len(self._queue)

    @property
    def resets(self) -> int:
        """Times the reader dropped every attached cache because of a gap."""
        return self._resets

    # -- lifetime ----------------------------------------------------------------------

    async def start(self) -> None:
        """Find the end of the stream and start the reader and publisher tasks.

        Raises :class:`BusError` if Redis does not answer within ``publish_timeout``.
        """
        if self._closed:
            raise BusError("this RedisBus is closed")
        if self._loop is not None:
            raise BusError("this RedisBus is already started")
        loop = asyncio.get_running_loop()
        try:
            position = await asyncio.wait_for(self._stream_end(), self._publish_timeout)
        except _RETRIED as exc:
            raise BusError(
                f"Redis did not answer within publish_timeout={self._publish_timeout}s "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        self._loop = loop
        self._position = position
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._touch()
        self._reader = loop.create_task(self._read_loop(), name=f"RedisBus reader {self.origin}")
        self._publisher = loop.create_task(
            self._publish_loop(), name=f"RedisBus publisher {self.origin}"
        )
        if self._queue:
            self._drained.clear()
            self._wake.set()

    async def aclose(self) -> None:
        """Append what is queued (waiting up to ``publish_timeout``), stop both tasks, close
        the client if the bus made it. Attached caches go on as local caches."""
        if self._closed:
            return
        if self._publisher is not None and self._queue:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.flush(), self._publish_timeout)
        self._closed = True
        if self._queue:
            logger.warning(
                "RedisBus %s closed with %d prefixes never appended to %r",
                self.origin,
                len(self._queue),
                self._stream,
            )
            for _, future in self._queue:
                if not future.done():
                    future.set_exception(BusError("the RedisBus was closed before the append"))
                    future.exception()
            self._queue.clear()
        if self._watchdog is not None:
            self._watchdog.cancel()
        for task in (self._reader, self._publisher):
            # redis-py may swallow a cancellation that lands while a command completes; the
            # loops also stop at their next turn now that the bus is closed.
            while task is not None and not task.done():
                task.cancel()
                await asyncio.wait([task], timeout=0.1)
        self._set_lagging(False)
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def flush(self) -> None:
        """Wait until every queued prefix has been appended (no deadline: wrap it in one)."""
        self._check_loop()
        assert self._drained is not None
        await self._drained.wait()

    # -- what caches call ----------------------------------------------------------------

    def _attach(self, cache: Cache) -> None:
        """Called by ``Cache.__init__`` for ``bus=self``."""
        if self._closed:
            raise BusError("this RedisBus is closed")
        self._caches.add(cache)
        if self._lagging:
            cache._lag(True)

    async def _publish(self, cache: Cache, prefix: str) -> None:
        """Called by ``cache.invalidate_prefix`` after its local drop."""
        if self._closed:
            cache._bus = None
            warnings.warn(
                f"{type(cache).__name__} invalidated {prefix!r} after its RedisBus was closed; "
                "it goes on as a local cache",
                BusClosedWarning,
                stacklevel=3,
            )
            return
        self._check_loop()
        for other in list(self._caches):
            if other is not cache:
                await self._drop_in(other, prefix)
        assert self._wake is not None and self._drained is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._publish_timeout
        future: asyncio.Future[None] = loop.create_future()
        if self._queue or self._sending:
            self._queue.append((prefix, future))
        else:
            # Nothing ahead of it: append from this task, without the hand-over to the publisher.
            self._sending = True
            self._drained.clear()
            try:
                if await self._append_by(prefix, deadline):
                    return
            finally:
                self._sending = False
                if self._queue:
                    self._wake.set()
                else:
                    self._drained.set()
            self._queue.appendleft((prefix, future))  # not acknowledged: first in line
        self._drained.clear()
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(future), max(0.0, deadline - loop.time()))
        except asyncio.TimeoutError:
            raise BusError(
                f"Redis did not acknowledge the invalidation of {prefix!r} within "
                f"publish_timeout={self._publish_timeout}s; it was dropped locally and stays "
                f"queued ({len(self._queue)} queued)"
            ) from None

    async def _append_by(self, prefix: str, deadline: float) -> bool:
        """Append ``prefix`` now; whether Redis acknowledged it before ``deadline``."""
        try:
            if _timeout_at is None:
                loop = asyncio.get_running_loop()
                await asyncio.wait_for(self._xadd(self._client, prefix), deadline - loop.time())
            else:
                async with _timeout_at(deadline):
                    await self._xadd(self._client, prefix)
        except Exception:  # noqa: BLE001 -- the publisher retries it and reports failures
            return False
        return True

    def _check_loop(self) -> None:
        if self._loop is None:
            raise BusError("RedisBus not started: use 'async with bus' or 'await bus.start()'")
        if asyncio.get_running_loop() is not self._loop:
            raise BusError("a RedisBus serves only the event loop that started it")

    # -- the publisher -------------------------------------------------------------------

    async def _publish_loop(self) -> None:
        assert self._wake is not None and self._drained is not None
        failures = 0
        while not self._closed:
            if not self._queue or self._sending:
                if not self._queue and not self._sending:
                    self._drained.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = [item for _, item in zip(range(_PUBLISH_BATCH), self._queue)]
            try:
                await self._append([prefix for prefix, _ in batch])
            except Exception as exc:  # noqa: BLE001 -- retried until Redis takes it
                failures += 1
                if failures == 1:
                    logger.warning(
                        "RedisBus %s: appending to %r failed (%s: %s); retrying, %d queued",
                        self.origin,
                        self._stream,
                        type(exc).__name__,
                        exc,
                        len(self._queue),
                    )
                await asyncio.sleep(min(0.01 * 2**failures, 1.0))
                continue
            if failures:
                logger.warning("RedisBus %s: appending again", self.origin)
                failures = 0
            for _ in batch:
                _, future = self._queue.popleft()
                if not future.done():
                    future.set_result(None)

    async def _append(self, prefixes: list[str]) -> None:
        if len(prefixes) == 1:
            await self._xadd(self._client, prefixes[0])
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for prefix in prefixes:
                await self._xadd(pipe, prefix)
            await pipe.execute()

    async def _xadd(self, target: Any, prefix: str | None) -> Any:
        fields: dict[str, bytes | str] = {"o": self.origin}
        if prefix is not None:
            fields.update(_encode_prefix(prefix))
        # A pipeline queues the command and returns itself, a client awaits the reply.
        result = target.xadd(self._stream, fields, maxlen=self._maxlen, approximate=True)
        return await result if asyncio.iscoroutine(result) else result

    # -- the reader ----------------------------------------------------------------------

    async def _stream_end(self) -> str:
        """The id of the stream's last entry; a marker entry is appended if there is none."""
        last = await self._client.xrevrange(self._stream, "+", "-", count=1)
        if last:
            return _text(last[0][0])
        return _text(await self._xadd(self._client, None))

    async def _read_loop(self) -> None:
        assert self._loop is not None
        fresh = True  # the first read after (re)connecting does not block
        failures = 0
        # Where the oldest read not yet verified started. A round trip that verifies sends
        # XRANGE of it before the XREAD: if that entry is still in the stream, nothing between
        # it and the reads since was trimmed or lost (trimming removes the oldest entries
        # first). Reads verify after a reconnect and then at most every _VERIFY_EVERY seconds.
        check = self._position
        verified = -math.inf
        while not self._closed:
            assert self._position is not None and check is not None
            position = self._position
            now = self._loop.time()
            verify = fresh or now - verified >= _VERIFY_EVERY
            if fresh:
                block = None
            elif verify:
                block = self._block_ms
            else:  # wait no longer than until the next verification is due
                block = max(1, int((verified + _VERIFY_EVERY - now) * 1000))
            try:
                kept, reply = await self._read(check if verify else None, position, block)
                self._touch()
                entries = _entries(reply)
                if kept:
                    await self._apply(entries)
                    if verify:
                        check, verified = position, self._last_contact
                else:
                    self._position = _text(entries[-1][0]) if entries else await self._stream_end()
                    await self._reset(check)
                    check, verified = self._position, self._last_contact
            except Exception as exc:  # noqa: BLE001 -- retried; the lag watch covers it
                failures += 1
                fresh = True
                if failures == 1:
                    logger.warning(
                        "RedisBus %s: reading %r failed (%s: %s); retrying",
                        self.origin,
                        self._stream,
                        type(exc).__name__,
                        exc,
                    )
                await asyncio.sleep(min(0.01 * 2**failures, 1.0))
                continue
            if failures:
                logger.warning("RedisBus %s: reading again", self.origin)
                failures = 0
            fresh = len(entries) >= _READ_COUNT
            if not fresh and self._lagging and verify:
                self._set_lagging(False)
                self._touch()

    async def _read(self, check: str | None, position: str, block: int | None) -> tuple[bool, Any]:
        """One round trip: whether the entry ``check`` (if given) is still there, then what
        follows ``position`` (waiting up to ``block`` ms for something to)."""
        if check is None:
            return True, await self._client.xread(
                {self._stream: position}, count=_READ_COUNT, block=block
            )
        async with self._client.pipeline(transaction=False) as pipe:
            for queued in (
                pipe.xrange(self._stream, check, check),
                pipe.xread({self._stream: position}, count=_READ_COUNT, block=block),
            ):
                if asyncio.iscoroutine(queued):
                    await queued
            kept, reply = await pipe.execute()
        return bool(kept), reply

    async def _apply(self, entries: list[Any]) -> None:
        for entry_id, fields in entries:
            origin = _field(fields, "o")
            prefix = _decode_prefix(fields)
            if prefix is not None and (origin is None or _text(origin) != self.origin):
                for cache in list(self._caches):
                    await self._drop_in(cache, prefix)
            self._position = _text(entry_id)

    async def _drop_in(self, cache: Cache, prefix: str, *, reset: bool = False) -> None:
        """Apply a prefix from elsewhere (or a reset: ``""``) to one attached cache."""
        try:
            await cache._drop(prefix)
        except Exception:
            if getattr(cache, "closed", False):
                self._caches.discard(cache)  # a closed LmdbCache: nothing left to drop
                return
            logger.exception(
                "RedisBus %s: dropping %r in %s failed", self.origin, prefix, type(cache).__name__
            )
            return
        if reset:
            cache._bus_resets += 1
        else:
            cache._remote_invalidations += 1

    async def _reset(self, lost: str) -> None:
        self._resets += 1
        logger.warning(
            "RedisBus %s: entry %s is no longer in %r (trimmed, or the stream was deleted or "
            "recreated); dropping everything in %d caches",
            self.origin,
            lost,
            self._stream,
            len(self._caches),
        )
        for cache in list(self._caches):
            await self._drop_in(cache, "", reset=True)

    # -- lag ---------------------------------------------------------------------------

    def _touch(self) -> None:
        """The reader heard from Redis: restart the ``max_lag`` countdown."""
        assert self._loop is not None
        self._last_contact = self._loop.time()
        if self._watchdog is None and not self._lagging and not self._closed:
            self._watchdog = self._loop.call_at(self._last_contact + self._max_lag, self._watch)

    def _watch(self) -> None:
        assert self._loop is not None
        self._watchdog = None
        if self._closed:
            return
        due = self._last_contact + self._max_lag
        if self._loop.time() >= due:
            logger.warning(
                "RedisBus %s: no reply from Redis for %.3gs (max_lag); caches miss until the "
                "reader has caught up",
                self.origin,
                self._max_lag,
            )
            self._set_lagging(True)
        else:
            self._watchdog = self._loop.call_at(due, self._watch)

    def _set_lagging(self, lagging: bool) -> None:
        if lagging == self._lagging:
            return
        self._lagging = lagging
        for cache in list(self._caches):
            cache._lag(lagging)
