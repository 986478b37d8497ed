"""The cache contract, the read-through machinery every backend shares, and ``NoCache``.

Backend rule: a backend subclasses :class:`Cache`, calls ``super().__init__(max_age=max_age,
stale_while_revalidate=...)`` and implements three coroutines, which receive input the base
has already checked (``key`` and ``prefix`` are ``str``, ``rows`` is a :class:`CachedRows`)::

    async def _get(self, key) -> CachedRows | None   # the stored rows or None; no age check
    async def _put(self, key, rows) -> None           # store, replacing what was there
    async def _invalidate(self, prefix) -> int        # drop every key starting with prefix

and optionally ``aclose()`` (calling ``super().aclose()``), ``_put_if`` (below), ``_put_if_now``
(the same without awaiting, where the backend can), and two plain callables its ``__init__``
hands to the base: ``self._set_reader(read)`` (``read(key)``: the stored rows or ``None``
without awaiting, ``_UNKNOWN`` when it cannot answer without awaiting; a read that needs
nothing of the instance can be the class attribute ``_initial_reader`` instead, as in
``NoCache``) and ``self._set_now``
(``set_now(key, rows)``: a store that needs no await, ``OVERSIZED`` if it refused the rows as
too heavy; ``None``, the default: only ``_put_if`` stores). Callables rather than methods, so
that a backend whose read or store is a C function (``MemCache``: its trie's ``get`` and
``__setitem__``) costs no Python frame; they must not refer to the cache (no reference
cycle). Writes must take
effect in the order they are called: a ``_put`` called before an ``_invalidate`` (or another
``_put``) lands before it, even if both await. ``MemCache`` writes synchronously; ``LmdbCache``
feeds one writer thread through a queue. The base provides the public API on top and keeps all
bookkeeping: ``get`` (``max_age``, hit and miss counts), ``put``, ``invalidate_prefix``,
``get_or_fetch`` (single-flight, no stale fills, stale-while-revalidate), ``cached`` and
``stats``. Backends do not override the public methods; the exceptions are ``MemCache.get``
and ``put``, the same logic inlined for speed.

The hit. ``get_or_fetch`` is a small coroutine: one read (``_read_now``), one age compare when
the cache has a ``max_age``, a counter. Everything else -- the options given on a hit, stale
rows, a read that awaits, a bypass while the bus lags, the miss -- goes on in plain functions
(``_through``, ``_miss``), which return the rows or a coroutine for the caller to await. A
coroutine's frame holds all its locals, and a hit pays for every slot (made, copied into the
coroutine, cleared), so the miss path's locals stay out of it; a miss pays one plain call
instead. While the bus lags, ``_read_now`` is a function that answers ``_UNKNOWN`` (``_lag``
swaps it), so the hit checks no lag flag: ``_through`` sees ``_UNKNOWN`` and bypasses, or
reads with ``_get`` for a backend without a synchronous read.

How stale fills are refused. Each key with a fetch in flight has a *registration* in a radix
trie (``_flights``). ``invalidate_prefix(p)`` first detaches every registration under ``p`` with
the trie's own ``invalidate_prefix`` -- O(len(p)), however many fetches are pending -- and
``put(key, ...)`` drops the registration of ``key``; both do it under ``_write_lock`` before
they write. A fetch stores its result with ``_put_if(key, rows, guard)``: the backend stores
only if ``guard()`` (the registration is still the one in the trie, one O(len(key)) lookup)
holds at the moment of the store, atomically against those detaches from any thread.
``MemCache`` evaluates the guard and stores under ``_write_lock``; ``LmdbCache`` sends the guard
with the write request and its writer thread evaluates it inside the write transaction, where
the order of all writes is decided: a detach that comes first makes the guard refuse; one that
comes later belongs to an invalidation or put queued after the fill, which removes or replaces
it. The default ``_put_if`` (check, then ``_put``) is atomic only for a backend used from one
thread. This is the per-prefix generation counter of the issue in trie form: detaching a subtree
ends the generation of every fetch under it, and nothing needs pruning afterwards.

The fetch's first step: a generation instead of a registration. The registration exists for
callers that join and for writes that come while the fetch waits; while the fetch's first step
runs inside the call (below), no other caller on its loop can run, so a miss registers nothing
yet (a registration and its removal cost a trie insert and delete, and a ``_Flight``: about a
fifth of a miss). It reads the cache-wide ``_generation`` before calling ``fetch``; every
``put`` and ``invalidate_prefix`` increments it, *then* takes ``_write_lock`` to detach if any
flight is registered or any fill is inside a check (``_checking``). A fetch that returns in its
first step is stored by ``_miss`` with the backend's ``_set_now``: under ``_write_lock``, with
``_checking`` raised, only if the generation is unchanged. A write that increments
after that check sees ``_checking`` and waits for the lock, so it lands after the store; one
that increments before makes the check refuse (any write refuses it, not only one for this
key: the window is one synchronous step, and a refused fill is only a miss later). A fetch that
suspends (or whose store must await) registers its flight then, in ``_flight_from``, under the
same check: if a write came during the first step, the flight stays out of the registry, no
caller joins it and its fill is refused. The increment itself takes no lock: two writes that
increment at once may lose one of the increments, but either still changes the value a fill
compares with.

The miss path. The first caller of a key (per event loop) starts the fetch, and registers a
flight if the fetch suspends; later callers on the same loop join it. Every caller that waits
for a flight, the first one included, awaits a future of its own, resolved with the flight's
rows or exception, and counts in ``_Flight.waiting``.

* Python 3.12 and later: the fetch runs in a task of its own, started eagerly
  (``asyncio.Task(..., eager_start=True)``): its first step runs inside the call, in that
  task. A fetch that returns without suspending (a memo, pre-fetched rows) leaves the task
  done before the constructor returns; the caller takes the result and, with a backend that
  stores without awaiting (``_set_now``), stores it: no flight, no await, no
  loop iteration, no shield. A fetch that suspends goes on in its task; when that task ends, a
  done-callback (``_fetched``) stores the rows and resolves the callers' futures (a store that
  awaits goes on in a task). A store that awaits after a fetch that did not suspend also runs
  in a task (``_store_in_task``). The task costs about 0.35 microseconds a miss over running
  the fetch inline (``bench/bench_read_through.py --speed --fetch-path inline``).
* Python 3.10 and 3.11 (no eager start): the fetch runs in its first caller's task. Its first
  step runs inline (``coro.send``), with the same no-suspension fast path; a fetch that
  suspends is driven on by ``_Drive``, which passes its suspensions to the task unchanged. A
  plain task per miss would cost a loop iteration before the fetch even starts (``--speed
  --fetch-path task`` on 3.11: a miss about 11x the hand-written baseline instead of 2x).

Cancellation, Python 3.12+. A caller's cancellation cancels its own future, never the fetch
task: the fetch goes on for the callers still waiting. When the last waiting caller leaves
(``waiting`` drops to 0) while the fetch runs, that caller cancels the fetch task and marks
the flight abandoned (later callers start a new fetch). Once the fetch has returned, its
store completes even if every caller has left. A timeout or ``TaskGroup`` inside the fetch
acts on the fetch's task (they cancel the *current* task), so a ``TimeoutError`` is the
fetch's outcome, shared by every caller. A fetch that ends in ``CancelledError`` that the
cache did not cause (the fetch raised it, or something else cancelled its task) shares it
too: nobody starts it again. The task runs in a copy of the caller's context
(``contextvars``): the fetch sees the caller's values; what it sets stays in its copy.

Cancellation, Python 3.10/3.11. The fetch runs in its first caller's task, so a cancellation
of that task reaches the fetch, exactly as if the fetch were awaited directly: that is what
makes a timeout or a ``TaskGroup`` inside the fetch work (both cancel the *current* task; a
cancellation of the caller cannot be told apart from theirs). If the first caller is
cancelled, the fetch ends cancelled; the callers still waiting are not cancelled: they start
(or join) a new fetch. Cancelling any other caller cancels nothing. Once the fetch has
returned, the first caller's cancellation no longer reaches the fill: the store is relayed
through a proxy future, and on cancellation the half-run fill moves into a task of its own
(``_Rest``) that completes the store and answers the joiners. The fetch runs in the caller's
context: what it sets in ``contextvars`` is seen by the caller afterwards.

Stale-while-revalidate. Rows older than ``max_age`` but not older than ``max_age +
stale_while_revalidate`` are returned at once, and a background refresh starts: a flight like
any other (callers that miss join it), run in a task the cache owns and cancels on ``aclose``;
nobody's cancellation cancels it. A refresh that fails is counted, logged once per key until a
refresh of that key succeeds, and never raised into a caller.
"""

from __future__ import annotations

import abc
import asyncio
import functools
import logging
import math
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Generator, Mapping
from dataclasses import dataclass
from types import CoroutineType, TracebackType
from typing import TYPE_CHECKING, Any, Final, ParamSpec

from ._core import RadixTrie
from ._rows import CachedRows

if TYPE_CHECKING:
    from typing_extensions import Self

    from ._cached import Cached, KeySpec

P = ParamSpec("P")

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

logger = logging.getLogger("trie_cache")

#: What ``get_or_fetch`` accepts as ``fetch``: an async callable returning rows.
Fetch = Callable[[], Awaitable["CachedRows | Mapping[str, Mapping[str, Any]]"]]

#: What ``_read_now`` answers when only the awaiting ``_get`` can tell (or the bus lags).
_UNKNOWN: Final[Any] = object()
#: ``_put_if``'s answer when the backend refused rows too heavy to keep (it counts them as
#: ``oversized``): neither a fill nor a stale fill.
OVERSIZED: Final[Any] = object()
#: What a waiting caller gets when the cache cancelled the fetch it waited for: try again.
_RETRY: Final[Any] = object()

#: Whether a miss runs its fetch in a task of its own (started eagerly: Python 3.12+) or in
#: its first caller's task (3.10, 3.11); see the module docstring. ``bench_read_through.py
#: --fetch-path task|inline`` overrides it, to measure one path against the other.
_FETCH_IN_TASK = sys.version_info >= (3, 12)

#: Tasks start eagerly: the first step runs inside the constructor, in the new task.
_EAGER = sys.version_info >= (3, 12)
_Task = asyncio.Task


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


def check_max_age(max_age: object, name: str = "max_age") -> float | None:
    """``None`` or a non-negative number of seconds (``math.inf``: no limit)."""
    if max_age is None:
        return None
    if isinstance(max_age, bool) or not isinstance(max_age, (int, float)):
        raise TypeError(f"{name} must be a number of seconds or None, not {type(max_age).__name__}")
    value = float(max_age)
    if math.isnan(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative number of seconds, not {max_age!r}")
    return value


def check_stale(stale: object) -> float | None:
    """``stale_while_revalidate``: like ``max_age``."""
    return check_max_age(stale, "stale_while_revalidate")


def _unknown(key: str) -> Any:
    """``Cache._read_now`` of a backend that cannot read without awaiting."""
    return _UNKNOWN


def _no_rows(key: str) -> None:
    """``NoCache._read_now``: nothing stored (a bad key is still refused)."""
    check_key(key)


def _check_options(max_age: object, stale: object) -> None:
    """``get_or_fetch``'s options on a miss: checked, unused."""
    if max_age is not None:
        check_max_age(max_age)
    if stale is not None:
        check_stale(stale)


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters since the cache was created; a snapshot, taken by :meth:`Cache.stats`.

    Counters are plain integers updated without locks: exact for one event loop, and may
    miss an increment when several threads use one cache at the same moment.

    Each ``get_or_fetch`` call counts once in ``hits``, ``stale_served`` or ``misses``, and
    each of its misses once in ``fetches`` (it started the fetch) or ``coalesced`` (it joined
    one). Each fetch (``fetches``, background refreshes included) ends once in ``fills``,
    ``stale_fills_prevented``, ``fetch_errors``, ``fill_errors`` or ``fetches_cancelled`` --
    except on ``NoCache``, which stores nothing: its fetches that return rows end in none.
    """

    hits: int = 0
    """``get`` (also inside ``get_or_fetch``) found rows young enough."""
    misses: int = 0
    """``get`` found nothing, or rows older than ``max_age`` (and than the stale window)."""
    fetches: int = 0
    """Calls of a ``fetch`` function started by ``get_or_fetch`` (refreshes included)."""
    coalesced: int = 0
    """``get_or_fetch`` calls that joined a fetch already in flight instead of starting one."""
    fills: int = 0
    """Fetched rows stored in the cache."""
    stale_fills_prevented: int = 0
    """Fetched rows not stored because the key was invalidated or put while fetching."""
    fetch_errors: int = 0
    """Fetches that raised (or returned something that is not rows); nothing is stored."""
    fill_errors: int = 0
    """Fetches that returned rows the backend then failed to store (the error is raised)."""
    fetches_cancelled: int = 0
    """Fetches cancelled before they returned (their last caller left, or the cache closed)."""
    stale_served: int = 0
    """``get_or_fetch`` calls answered with rows inside the stale-while-revalidate window."""
    refreshes: int = 0
    """Background refreshes started by those calls (also counted in ``fetches``)."""
    invalidations: int = 0
    """Calls of ``invalidate_prefix``."""
    keys_removed: int = 0
    """Keys those calls removed, in total."""
    evictions: int = 0
    """Entries removed to make room under ``max_entries`` / ``max_bytes`` (MemCache)."""
    expirations: int = 0
    """Entries removed because expired: older than the cache's ``max_age`` plus its default
    stale window (MemCache: by a default ``get``, a write, the eviction hand or
    ``remove_expired``)."""
    oversized: int = 0
    """Rows not stored because heavier than ``max_bytes`` on their own."""
    remote_invalidations: int = 0
    """Prefixes applied from the bus: invalidated by another process, or another cache on it."""
    bus_resets: int = 0
    """Times the bus dropped everything because it could not rule out a missed invalidation."""
    bypassed: int = 0
    """``get`` calls answered with a miss because the bus was lagging (also in ``misses``)."""


class _Flight:
    """One fill (fetch, then store) in flight for one key on one event loop.

    Class attributes are the defaults, so making one sets one attribute (``loop``).
    """

    #: The task running the fetch (3.12+) or the store; on 3.10/3.11 the task the fill moved
    #: to once its first caller left; a refresh's task. None while the fill runs inline.
    task: asyncio.Task[Any] | None = None
    #: One future per caller that waits for it, resolved with the fill's outcome.
    joiners: list[asyncio.Future[CachedRows]] | None = None
    #: How many of those callers are still waiting (not cancelled).
    waiting = 0
    #: True until ``fetch()`` returned or raised; from then on no caller's cancellation
    #: reaches the fill (its store goes on in a task).
    fetching = True
    #: Its fetch was cancelled because its callers left (3.12+: the last one; 3.10/3.11: the
    #: first one); a later caller must not join it but start anew.
    abandoned = False
    #: A stale-while-revalidate refresh: owned by the cache, not cancelled by callers.
    background = False
    #: The outcome is out; nobody may join any more.
    done = False
    #: The event loop of its callers; set right after making it.
    loop: asyncio.AbstractEventLoop


def _flight_on(registration: Any, loop: asyncio.AbstractEventLoop) -> _Flight | None:
    """The flight of ``loop`` in a registration (a flight, or a dict of them by loop)."""
    if registration is None:
        return None
    if type(registration) is dict:
        return registration.get(loop)
    return registration if registration.loop is loop else None


def _settle(flight: _Flight, rows: CachedRows | None, exc: BaseException | None) -> None:
    """Hand the fill's outcome to every joiner still waiting."""
    flight.done = True
    joiners = flight.joiners
    if not joiners:
        return
    for fut in joiners:
        if fut.done():
            continue  # that caller was cancelled
        if exc is None:
            fut.set_result(rows)  # type: ignore[arg-type]
        elif isinstance(exc, asyncio.CancelledError) and (flight.abandoned or flight.background):
            fut.set_result(_RETRY)  # the cache cancelled the fetch, not them: they start anew
        else:
            fut.set_exception(exc)


def _wake(proxy: asyncio.Future[None], _: object) -> None:
    if not proxy.done():
        proxy.set_result(None)


class _Drive:
    """The first caller drives a suspended fill: ``await _Drive(fill, first_step, flight)``.

    The fetch's suspensions pass through unchanged; the store's are relayed through a proxy
    future, so that the caller's cancellation reaches this driver, not the store (see the
    module docstring).
    """

    __slots__ = ("coro", "flight", "step")

    def __init__(self, coro: Coroutine[Any, Any, CachedRows], step: Any, flight: _Flight) -> None:
        self.coro = coro
        self.step = step
        self.flight = flight

    def __await__(self) -> Generator[Any, None, CachedRows]:
        coro, step, flight = self.coro, self.step, self.flight
        loop = flight.loop
        while True:
            relay = None
            try:
                if flight.fetching or not getattr(step, "_asyncio_future_blocking", None):
                    # The fetch's own suspensions pass straight through, as in a task.
                    yield step
                else:
                    # The store: relayed, so that a cancellation cannot reach it.
                    step._asyncio_future_blocking = False
                    proxy = loop.create_future()
                    relay = _wake.__get__(proxy)
                    step.add_done_callback(relay)
                    proxy._asyncio_future_blocking = True
                    yield proxy
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:
                if isinstance(exc, asyncio.CancelledError):
                    if relay is not None:
                        # The rows are being stored: the store goes on in a task of its own.
                        step.remove_done_callback(relay)
                        flight.task = task = loop.create_task(_Rest(coro, step))
                        task.add_done_callback(_retrieve)
                        raise
                    # The task has cancelled what the fetch waits for; the fetch gets the
                    # CancelledError (a timeout inside it turns it into TimeoutError).
                    flight.abandoned = True
                try:
                    step = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value  # type: ignore[no-any-return]
                continue
            try:
                step = coro.send(None)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]


class _Rest(Coroutine[Any, Any, CachedRows]):
    """A half-run fill as a coroutine a task can run: first it waits for ``step`` (what the
    fill was waiting for), then it passes everything through to the fill."""

    __slots__ = ("_coro", "_started", "_step")

    def __init__(self, coro: Coroutine[Any, Any, CachedRows], step: Any) -> None:
        self._coro = coro
        self._step = step
        self._started = False

    def send(self, value: Any) -> Any:
        if not self._started:
            self._started = True
            step = self._step
            if isinstance(step, asyncio.Future):
                step._asyncio_future_blocking = True
            return step
        return self._coro.send(value)

    def throw(self, exc: Any, value: Any = None, tb: Any = None) -> Any:
        if not self._started:
            # Cancelled before it ran: what the fill waits for is cancelled with it.
            self._started = True
            if isinstance(exc, asyncio.CancelledError) and isinstance(self._step, asyncio.Future):
                self._step.cancel()
        if value is None and tb is None:
            return self._coro.throw(exc)
        return self._coro.throw(exc, value, tb)

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Generator[Any, None, CachedRows]:
        raise TypeError("_Rest is run by a task, not awaited")


class _Resume:
    """``await _Resume(coro, step)``: a coroutine already stepped once (it is waiting on
    ``step``), awaited from there on as if it had been awaited from the start."""

    __slots__ = ("coro", "step")

    def __init__(self, coro: Coroutine[Any, Any, Any], step: Any) -> None:
        self.coro = coro
        self.step = step

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, step = self.coro, self.step
        while True:
            try:
                value = yield step
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # noqa: BLE001 - passed on to the coroutine
                try:
                    step = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    step = coro.send(value)
                except StopIteration as stop:
                    return stop.value


async def _awaiting(aw: Any) -> Any:
    """A coroutine awaiting ``aw``: what a task runs for a fetch that returned an awaitable
    other than a coroutine (or something that is not awaitable: a ``TypeError`` then)."""
    return await aw


def _retrieve(task: asyncio.Task[Any]) -> None:
    # Mark the outcome as seen, so a fill whose callers all left logs no "never retrieved".
    if not task.cancelled():
        task.exception()


class Cache(abc.ABC):
    """An async cache of :class:`CachedRows` under ``str`` keys.

    A miss is ``None``; exceptions are for real faults and bad input. Keys are opaque:
    ``invalidate_prefix(p)`` drops every key that starts with ``p`` as a plain string.
    ``max_age`` (seconds) is the default age limit of ``get`` and ``get_or_fetch``: rows
    whose ``fetched_at`` is older count as a miss. ``None`` means no limit.
    ``stale_while_revalidate`` (seconds) is the default stale window of ``get_or_fetch``:
    rows older than ``max_age`` by no more than it are returned while a background refresh
    runs. ``None`` or ``0``: no window. ``bus`` (a :class:`trie_cache.redis.RedisBus`) shares
    ``invalidate_prefix`` with every cache on its stream, in this process and others.
    """

    #: False for a backend that stores nothing (``NoCache``): fills are not attempted.
    _stores = True
    #: The synchronous read a cache starts with (``_reader``). A backend whose read needs
    #: nothing of the instance names it here (``NoCache``); one whose read does calls
    #: ``_set_reader`` in its ``__init__`` (``MemCache``: its trie's ``get``).
    _initial_reader: Callable[[str], Any] = staticmethod(_unknown)

    # Counters of rare events, and the closing flag: class-level defaults, which an instance
    # shadows the first time it changes one. Each attribute set in ``__init__`` takes one of
    # the 30 slots CPython shares between the instances of a class; past 30 an instance keeps
    # its attributes in a plain dict, and the interpreter specialises no method call on it
    # (every ``self._miss(...)`` then looks the method up). These stay out of ``__init__``.
    _closing = False
    _stale_fills_prevented = 0
    _fetch_errors = 0
    _fill_errors = 0
    _fetches_cancelled = 0
    _stale_served = 0
    _refreshes = 0
    _remote_invalidations = 0
    _bus_resets = 0
    _bypassed = 0

    def __init__(
        self,
        *,
        max_age: float | None = None,
        stale_while_revalidate: float | None = None,
        bus: Any = None,
    ) -> None:
        self._max_age = check_max_age(max_age)
        self._stale = check_stale(stale_while_revalidate)
        # key -> {event loop: _Flight}; see the module docstring.
        self._flights: Any = RadixTrie()
        # Bumped by every put and invalidation before it detaches (module docstring).
        self._generation = 0
        # Fills inside a generation check, under _write_lock; a write that sees one waits.
        self._checking = 0
        # Held by a registration check with its store, and by put's and invalidate's detach.
        self._write_lock = threading.RLock()
        #: The backend's synchronous read (``_set_reader``): ``key`` -> the stored rows,
        #: ``None``, or ``_UNKNOWN`` (the default) when only the awaiting ``_get`` can tell.
        #: A callable in an attribute, not a method: no Python frame for a backend that
        #: reads with a C function (``MemCache``: its trie's ``get``), and no bound method
        #: that would tie the cache into a reference cycle.
        self._reader: Callable[[str], Any] = self._initial_reader
        #: What ``get_or_fetch`` reads with first: ``_reader``, or ``_unknown`` while the bus
        #: lags (``_lag``). One call that stands for both checks on a hit.
        self._read_now: Callable[[str], Any] = self._reader
        #: The store of a fill that needs no await, or ``None`` (the default) when only
        #: ``_put_if`` can store: ``(key, rows)`` -> ``OVERSIZED`` when the backend refused
        #: rows too heavy to keep, anything else when it stored them. Called under
        #: ``_write_lock`` after the fill's generation check (module docstring).
        self._set_now: Callable[[str, CachedRows], Any] | None = None
        self._refresh_tasks: set[asyncio.Task[None]] = set()
        self._failing_refreshes: set[str] = set()
        self._hits = 0
        self._misses = 0
        self._fetches = 0
        self._coalesced = 0
        self._fills = 0
        self._invalidations = 0
        self._keys_removed = 0
        #: Set (``_lag``) by a RedisBus that lost touch for longer than its ``max_lag``:
        #: every read (``get``, ``get_or_fetch``) is then a miss, counted as ``bypassed``.
        self._lagging = False
        self._bus: Any = None
        if bus is not None:
            if not callable(getattr(bus, "_attach", None)):
                raise TypeError(f"bus must be a RedisBus or None, not {type(bus).__name__}")
            bus._attach(self)
            self._bus = bus

    def _set_reader(self, read: Callable[[str], Any]) -> None:
        """Called by a backend's ``__init__``: its synchronous read (see ``_reader``)."""
        self._reader = read
        self._read_now = _unknown if self._lagging else read

    def _lag(self, lagging: bool) -> None:
        """Called by the bus: whether it lags (see ``_lagging``). A ``get_or_fetch`` in
        another thread that read ``_read_now`` just before the swap acts as if it had run
        just before it; ``_through`` tells a lag from a backend read that awaits by
        ``_lagging``."""
        self._lagging = lagging
        self._read_now = _unknown if lagging else self._reader

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

    async def _put_if(self, key: str, rows: CachedRows, guard: Callable[[], bool]) -> bool:
        """Store ``rows`` under ``key`` if ``guard()`` holds when the store happens; say if so.

        The guard and the store must be atomic against ``put``'s and ``invalidate_prefix``'s
        detach under ``_write_lock`` (module docstring). This default checks, then calls
        ``_put``: atomic only for a backend used from one thread.
        """
        if not guard():
            return False
        await self._put(key, rows)
        return True

    def _put_if_now(self, key: str, rows: CachedRows, flight: _Flight) -> Any:
        """``_put_if`` without awaiting, for a backend that can, with the guard
        ``self._registered(key, flight)``: ``True``/``False``, or ``_UNKNOWN`` (the default)
        when only the awaiting ``_put_if`` can store."""
        return _UNKNOWN

    # -- the public API -------------------------------------------------------------------

    @property
    def max_age(self) -> float | None:
        """The default age limit in seconds, or ``None``."""
        return self._max_age

    @property
    def stale_while_revalidate(self) -> float | None:
        """The default stale window of ``get_or_fetch`` in seconds, or ``None``."""
        return self._stale

    async def get(self, key: str, max_age: float | None = None) -> CachedRows | None:
        """The rows stored under ``key``, or ``None`` (also when older than ``max_age``).

        ``max_age=None`` uses the cache's default; ``math.inf`` lifts it for this call.
        """
        if self._lagging:
            self._bypass(key, max_age)
            return None
        return self._tally(await self._get(check_key(key)), max_age)

    def _bypass(self, key: str, max_age: float | None) -> None:
        """A read while the bus is lagging: a miss, counted as such and as bypassed."""
        check_key(key)
        if max_age is not None:
            check_max_age(max_age)
        self._misses += 1
        self._bypassed += 1

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
        self._generation += 1
        if self._flights or self._checking:
            with self._write_lock:
                self._flights.pop(key, None)
        await self._put(key, rows)

    async def invalidate_prefix(self, prefix: str) -> int:
        """Drop every key starting with ``prefix`` (``""``: all); return how many.

        Fetches in flight for those keys still answer their callers but store nothing.
        With a bus, ``prefix`` is then appended to its stream and the call returns once Redis
        acknowledged it (or raises ``trie_cache.redis.BusError`` after ``publish_timeout``).
        """
        check_prefix(prefix)
        self._generation += 1  # _drop inlined: one coroutine less
        if self._flights or self._checking:
            with self._write_lock:
                self._flights.invalidate_prefix(prefix)
        removed = await self._invalidate(prefix)
        self._invalidations += 1
        self._keys_removed += removed
        if self._bus is not None:
            await self._bus._publish(self, prefix)
        return removed

    async def _drop(self, prefix: str) -> int:
        """The local part of ``invalidate_prefix``, also what a bus applies from elsewhere."""
        self._generation += 1
        if self._flights or self._checking:
            with self._write_lock:
                self._flights.invalidate_prefix(prefix)
        return await self._invalidate(prefix)

    async def get_or_fetch(
        self,
        key: str,
        fetch: Fetch,
        *,
        max_age: float | None = None,
        stale_while_revalidate: float | None = None,
    ) -> CachedRows:
        """Cached rows for ``key``, or else the result of ``await fetch()``, stored.

        ``fetch`` returns :class:`CachedRows` or a mapping of rows (wrapped with
        ``fetched_at`` = when the fetch started). Concurrent calls for one key on one
        event loop share one fetch and its result or exception; a failed fetch stores
        nothing. On Python 3.12+ the fetch runs in a task of its own, started eagerly (a
        fetch that never suspends costs no loop iteration): cancelling a call leaves the
        fetch to the calls still waiting, and the last one to leave cancels it. On 3.10 and
        3.11 the fetch runs in the task of the call that started it: cancelling that call
        cancels the fetch, and the calls still waiting, which are not cancelled, start a new
        fetch; cancelling any other call leaves the fetch alone. Either way a fetch that has
        returned still stores. If the key is invalidated (or put) while the fetch runs, its
        result is returned but not stored, and later callers start a new fetch.

        Rows older than ``max_age`` (default: the cache's) by no more than
        ``stale_while_revalidate`` (default: the cache's) are returned at once, and one
        background refresh of the key starts unless a fetch for it is in flight already.
        """
        # A hit with the defaults costs what ``get``'s does: one read, one age compare. The
        # miss goes on in _miss, all else (options on a hit, stale rows, a bypass, a read
        # that awaits) in _through: plain functions, so that this coroutine's frame stays
        # small (module docstring).
        # _UNKNOWN while the bus lags. Loaded, then called: Python 3.11 has no specialised
        # load for a callable stored on the instance when written as a method call.
        read = self._read_now
        rows = read(key)
        if rows is None:
            if max_age is not None or stale_while_revalidate is not None:
                _check_options(max_age, stale_while_revalidate)
            self._misses += 1
            out = self._miss(key, fetch)
        elif (
            rows is not _UNKNOWN
            and max_age is None
            and stale_while_revalidate is None
            and (self._max_age is None or time.time() - rows.fetched_at <= self._max_age)
        ):
            self._hits += 1
            return rows  # type: ignore[no-any-return]
        else:
            out = self._through(key, fetch, rows, max_age, stale_while_revalidate)
        if type(out) is CoroutineType:
            return await out  # type: ignore[no-any-return]
        return out  # type: ignore[no-any-return]

    def _through(
        self,
        key: str,
        fetch: Fetch,
        rows: Any,
        max_age: float | None,
        stale_while_revalidate: float | None,
    ) -> Any:
        """``get_or_fetch`` past its plain hit, given what ``_read_now`` read (``_UNKNOWN``: the
        bus lags, or only ``_get`` can tell): the rows to return, or a coroutine to await
        for them."""
        if rows is _UNKNOWN:
            if self._lagging:
                check_key(key)
                self._bypassed += 1
                rows = None
            else:
                return self._read_through(key, fetch, max_age, stale_while_revalidate)
        if rows is not None:
            if max_age is None and self._max_age is None:
                if stale_while_revalidate is not None:
                    check_stale(stale_while_revalidate)
                self._hits += 1
                return rows
            limit = self._max_age if max_age is None else check_max_age(max_age)
            stale = (
                self._stale
                if stale_while_revalidate is None
                else check_stale(stale_while_revalidate)
            )
            age = time.time() - rows.fetched_at
            if limit is None or age <= limit:
                self._hits += 1
                return rows
            if stale and age <= limit + stale and not self._closing:
                self._stale_served += 1
                self._refresh(key, fetch)
                return rows
        else:
            _check_options(max_age, stale_while_revalidate)
        self._misses += 1
        return self._miss(key, fetch)

    async def _read_through(
        self,
        key: str,
        fetch: Fetch,
        max_age: float | None,
        stale_while_revalidate: float | None,
    ) -> CachedRows:
        """``get_or_fetch`` on a backend whose read awaits."""
        rows = await self._get(check_key(key))
        out = self._through(key, fetch, rows, max_age, stale_while_revalidate)
        if type(out) is CoroutineType:
            return await out  # type: ignore[no-any-return]
        return out  # type: ignore[no-any-return]

    def _miss(self, key: str, fetch: Fetch) -> Any:
        """A counted miss: join this loop's fetch of ``key``, or start one. The rows, or a
        coroutine to await for them."""
        loop = asyncio.get_running_loop()
        flights = self._flights
        registration = flights.get(key) if flights else None
        if registration is not None:
            other = _flight_on(registration, loop)
            if other is not None and not other.abandoned and not other.done:
                self._coalesced += 1
                return self._join(other, key, fetch)
        # No registration while the fetch's first step runs: the generation stands in
        # for it, and a flight registers only if that step suspends (module docstring).
        self._fetches += 1
        generation = self._generation
        started = time.time()
        try:
            aw = fetch()
        except BaseException as exc:
            self._count_failed_fetch(exc)
            raise
        if _FETCH_IN_TASK:
            # The fetch in a task of its own, started eagerly: its first step runs now,
            # and if it never suspends the task is done before the call returns.
            if type(aw) is not CoroutineType:
                aw = _awaiting(aw)
            try:
                # loop= is needed: 3.12.1's eager start calls loop.is_running() on the
                # argument, not on the loop it found.
                if _EAGER:
                    task = _Task(aw, loop=loop, eager_start=True)  # type: ignore[call-arg,unused-ignore]
                else:
                    task = _Task(aw, loop=loop)
            except BaseException as exc:
                # KeyboardInterrupt or SystemExit from the first step leaves the task
                # constructor (asyncio re-raises those).
                self._count_failed_fetch(exc)
                raise
            if not task.done():
                flight = self._flight_from(key, loop, generation)
                flight.task = task
                task.add_done_callback(functools.partial(self._fetched, key, flight, started))
                return self._join(flight, key, fetch)
            try:
                result = task.result()
            except BaseException as exc:
                self._count_failed_fetch(exc)
                raise
        else:
            # Python 3.10 and 3.11: the fetch runs in this caller's task (module docstring).
            if type(aw) is not CoroutineType:
                flight = self._flight_from(key, loop, generation)
                return self._drive(key, aw, flight, started)
            try:
                step = aw.send(None)
            except StopIteration as stop:
                result = stop.value
            except BaseException as exc:
                self._count_failed_fetch(exc)
                raise
            else:
                # It suspended: the general path, driven by this caller.
                flight = self._flight_from(key, loop, generation)
                return self._drive(key, _Resume(aw, step), flight, started)
        # The fetch returned without suspending: nobody could join it (no loop iteration
        # passed), so there is no flight and no one to answer.
        if type(result) is CachedRows:
            rows = result
        else:
            try:
                rows = _as_rows(result, started)
            except TypeError as exc:
                self._count_failed_fetch(exc)
                raise
        set_now = self._set_now
        if set_now is not None:
            # Stored unless a put or invalidation began since the fetch started: checked and
            # stored under the lock, with _checking raised (module docstring).
            lock = self._write_lock
            lock.acquire()  # acquire/release: cheaper than "with" on the miss path
            self._checking += 1
            try:
                if self._generation != generation:
                    self._stale_fills_prevented += 1
                elif set_now(key, rows) is not OVERSIZED:
                    self._fills += 1
                # else: counted by the backend as oversized
            except BaseException:
                self._fill_errors += 1
                raise
            finally:
                self._checking -= 1
                lock.release()
        elif self._stores:
            # The backend's store awaits: the general path for the rest.
            flight = self._flight_from(key, loop, generation)
            if _FETCH_IN_TASK:
                return self._store_in_task(key, rows, flight, started)
            return self._drive(key, rows, flight, started, True)
        return rows

    def _count_failed_fetch(self, exc: BaseException) -> None:
        if isinstance(exc, Exception):
            self._fetch_errors += 1
        else:
            self._fetches_cancelled += 1

    def _flight_from(self, key: str, loop: asyncio.AbstractEventLoop, generation: int) -> _Flight:
        """The flight of a fetch whose first step has run (it suspended, or the store of its
        rows awaits), registered unless a put or invalidation began since ``generation`` was
        read: then it stays out, no caller joins it, and its fill is refused."""
        flight = _Flight()
        flight.loop = loop
        with self._write_lock:
            self._checking += 1
            try:
                if (
                    self._generation == generation
                    and self._flights.setdefault(key, flight) is not flight
                ):
                    self._register_beside(key, flight)
            finally:
                self._checking -= 1
        return flight

    def _fetch_failed(self, key: str, flight: _Flight, exc: BaseException) -> None:
        """The fast path's fetch raised: count it and end the flight (nobody joined)."""
        flight.fetching = False
        flight.done = True
        self._unregister(key, flight)
        if isinstance(exc, Exception):
            self._fetch_errors += 1
        else:
            self._fetches_cancelled += 1

    async def _drive(
        self, key: str, fetched: Any, flight: _Flight, started: float, in_hand: bool = False
    ) -> CachedRows:
        """The general miss path: run the fill, inline until it suspends, then by ``_Drive``.

        ``fetched`` is what to await for the fetch's result, or (``in_hand``) the rows.
        """
        coro = self._fill(key, fetched, flight, started, in_hand)
        try:
            step = coro.send(None)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        return await _Drive(coro, step, flight)

    def cached(
        self,
        key: KeySpec,
        *,
        max_age: float | None = None,
        stale_while_revalidate: float | None = None,
    ) -> Callable[[Callable[P, Awaitable[Any]]], Cached[P]]:
        """A decorator: the async function's result, read through this cache.

        ``key`` is a format string over the function's arguments, or a callable taking the
        same arguments and returning the key; see :class:`trie_cache.Cached`.
        """
        from ._cached import decorator

        return decorator(self, key, max_age, stale_while_revalidate)

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
            fill_errors=self._fill_errors,
            fetches_cancelled=self._fetches_cancelled,
            stale_served=self._stale_served,
            refreshes=self._refreshes,
            invalidations=self._invalidations,
            keys_removed=self._keys_removed,
            remote_invalidations=self._remote_invalidations,
            bus_resets=self._bus_resets,
            bypassed=self._bypassed,
        )

    async def aclose(self) -> None:
        """Cancel the refreshes in flight (and wait for those on this loop); no new ones start.

        Backends release what they hold after calling this.
        """
        mine = self._stop_refreshing()
        if mine:
            await asyncio.gather(*mine, return_exceptions=True)

    def _stop_refreshing(self) -> list[asyncio.Task[None]]:
        """Start no more refreshes and cancel those in flight; return the running loop's."""
        self._closing = True
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        mine = []
        for task in list(self._refresh_tasks):
            loop = task.get_loop()
            if loop is running:
                task.cancel()
                mine.append(task)
            else:
                try:
                    loop.call_soon_threadsafe(task.cancel)
                except RuntimeError:
                    pass  # that loop is closed: the task will never run again
        return mine

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

    def _register(self, key: str, loop: asyncio.AbstractEventLoop) -> _Flight:
        """A new flight for ``key`` on ``loop``, registered in ``_flights``."""
        flight = _Flight()
        flight.loop = loop
        if self._flights.setdefault(key, flight) is not flight:
            self._register_beside(key, flight)
        return flight

    def _register_beside(self, key: str, flight: _Flight) -> None:
        """Register ``flight`` where ``key`` may hold a registration already.

        A registration is one flight, or a dict of flights by loop when loops in several
        threads fetch the key at once. Under the lock, so that no detach falls between
        reading the old registration and writing the new one.
        """
        flights = self._flights
        with self._write_lock:
            old = flights.get(key)
            if old is None or (type(old) is not dict and old.loop is flight.loop):
                flights[key] = flight  # an older flight of this loop is unregistered
            elif type(old) is dict:
                old[flight.loop] = flight
            else:
                flights[key] = {old.loop: old, flight.loop: flight}

    def _unregister(self, key: str, flight: _Flight) -> None:
        flights = self._flights
        registration = flights.get(key)
        if registration is flight:
            # A detach and a new registration by another thread may fall between these two
            # calls: that flight is then unregistered, and only refuses its fill.
            flights.pop(key, None)
        elif type(registration) is dict and registration.get(flight.loop) is flight:
            with self._write_lock:
                if registration.get(flight.loop) is flight:
                    del registration[flight.loop]
                    if not registration and flights.get(key) is registration:
                        flights.pop(key, None)

    def _registered(self, key: str, flight: _Flight) -> bool:
        """Whether nothing invalidated or put ``key`` since ``flight`` registered."""
        registration = self._flights.get(key)
        return registration is flight or (
            type(registration) is dict and registration.get(flight.loop) is flight
        )

    async def _join(
        self, flight: _Flight, key: str | None = None, fetch: Fetch | None = None
    ) -> Any:
        """Wait for a flight: its rows or its exception. If the cache cancelled its fetch,
        join or start another (``_miss(key, fetch)``), or without ``fetch`` return
        ``_RETRY``. A caller that leaves cancels nothing, unless it is the last one waiting
        for a fetch that runs in a task of its own: that fetch is then cancelled."""
        fut: asyncio.Future[CachedRows] = flight.loop.create_future()
        if flight.joiners is None:
            flight.joiners = [fut]
        else:
            flight.joiners.append(fut)
        flight.waiting += 1
        try:
            joined = await fut
        except asyncio.CancelledError:
            if fut.cancelled():
                flight.waiting -= 1
                task = flight.task
                if (
                    not flight.waiting
                    and flight.fetching
                    and task is not None
                    and not flight.background
                ):
                    flight.abandoned = True
                    task.cancel()
            else:
                fut.exception()  # the outcome came as this caller was cancelled: seen
            raise
        if joined is not _RETRY or fetch is None:
            return joined
        out = self._miss(key, fetch)  # type: ignore[arg-type]
        if type(out) is CoroutineType:
            return await out
        return out

    def _fetched(self, key: str, flight: _Flight, started: float, task: asyncio.Task[Any]) -> None:
        """The fetch task of a flight that suspended ended: store its rows unless the key went
        stale meanwhile, and answer the callers; a store that awaits goes on in a task."""
        flight.fetching = False
        try:
            result = task.result()
            rows = result if type(result) is CachedRows else _as_rows(result, started)
        except BaseException as exc:  # noqa: BLE001 - handed to the callers
            if isinstance(exc, Exception):
                self._fetch_errors += 1
            else:
                self._fetches_cancelled += 1
            _settle(flight, None, exc)
            self._unregister(key, flight)
            return
        if self._stores:
            try:
                stored = self._put_if_now(key, rows, flight)
            except BaseException as exc:  # noqa: BLE001 - handed to the callers
                self._fill_errors += 1
                _settle(flight, None, exc)
                self._unregister(key, flight)
                return
            if stored is _UNKNOWN:
                fill = self._fill(key, rows, flight, started, True)
                flight.task = store = flight.loop.create_task(fill)
                store.add_done_callback(_retrieve)
                return
            self._count_fill(key, flight, stored)
        _settle(flight, rows, None)
        self._unregister(key, flight)

    async def _store_in_task(
        self, key: str, rows: CachedRows, flight: _Flight, started: float
    ) -> CachedRows:
        """The fetch returned at once, but the backend's store awaits: store in a task of its
        own, which no caller's cancellation stops, and wait for it as any other caller."""
        flight.fetching = False
        fill = self._fill(key, rows, flight, started, True)
        if _EAGER:
            task = _Task(fill, loop=flight.loop, eager_start=True)  # type: ignore[call-arg,unused-ignore]
        else:
            task = _Task(fill, loop=flight.loop)
        if task.done():
            return task.result()
        flight.task = task
        task.add_done_callback(_retrieve)
        return await self._join(flight)  # type: ignore[no-any-return]

    def _count_fill(self, key: str, flight: _Flight, stored: Any) -> None:
        """Count what the store of fetched rows did."""
        if stored is OVERSIZED:
            pass  # counted by the backend as oversized
        elif stored and self._registered(key, flight):
            self._fills += 1
        else:
            # Refused; or an invalidation or put called during the write landed after it
            # (backends keep call order), removing or replacing the fill.
            self._stale_fills_prevented += 1

    async def _fill(
        self, key: str, fetched: Any, flight: _Flight, started: float, in_hand: bool = False
    ) -> CachedRows:
        """The body of a flight: await ``fetched`` (or, ``in_hand``, take it as the fetched
        rows), then store unless the key went stale meanwhile."""
        try:
            if in_hand:
                flight.fetching = False
                rows = fetched
            else:
                try:
                    rows = _as_rows(await fetched, started)
                except Exception:
                    self._fetch_errors += 1
                    raise
                except BaseException:
                    self._fetches_cancelled += 1
                    raise
                finally:
                    flight.fetching = False
            # From here on the fill finishes its write even if every caller has left.
            if self._stores:
                try:
                    stored = self._put_if_now(key, rows, flight)
                    if stored is _UNKNOWN:
                        stored = await self._put_if(
                            key, rows, lambda: self._registered(key, flight)
                        )
                except BaseException:
                    self._fill_errors += 1
                    raise
                self._count_fill(key, flight, stored)
            _settle(flight, rows, None)
            return rows  # type: ignore[no-any-return]
        except BaseException as exc:
            _settle(flight, None, exc)
            raise
        finally:
            self._unregister(key, flight)

    def _refresh(self, key: str, fetch: Fetch) -> None:
        """Start a background refresh of ``key``, unless a fill for it is in flight here."""
        loop = asyncio.get_running_loop()
        flight = _flight_on(self._flights.get(key), loop)
        if flight is not None and not flight.abandoned and not flight.done:
            return
        flight = self._register(key, loop)
        flight.background = True
        self._fetches += 1
        self._refreshes += 1
        task = loop.create_task(self._refresh_body(key, fetch, flight))
        flight.task = task
        self._refresh_tasks.add(task)
        task.add_done_callback(lambda t: self._refresh_done(key, flight, t))

    async def _refresh_body(self, key: str, fetch: Fetch, flight: _Flight) -> None:
        try:
            started = time.time()
            try:
                fetched = fetch()
            except BaseException as exc:
                self._fetch_failed(key, flight, exc)
                raise
            await self._fill(key, fetched, flight, started)
        except Exception as exc:  # noqa: BLE001 - counted by _fill; logged once a streak
            if key not in self._failing_refreshes:
                self._failing_refreshes.add(key)
                logger.warning(
                    "refresh of cache key %r failed (%s: %s); serving the stale rows until "
                    "they pass the stale window; further failures of this key are not logged "
                    "until a refresh succeeds",
                    key,
                    type(exc).__name__,
                    exc,
                )
        else:
            self._failing_refreshes.discard(key)

    def _refresh_done(self, key: str, flight: _Flight, task: asyncio.Task[None]) -> None:
        self._refresh_tasks.discard(task)
        if not flight.done:
            # Cancelled before it ran (the fill never started): release its joiners.
            _settle(flight, None, asyncio.CancelledError())
            self._unregister(key, flight)
        _retrieve(task)


def _as_rows(result: object, started: float) -> CachedRows:
    if isinstance(result, CachedRows):
        return result
    if isinstance(result, Mapping):
        return CachedRows(result, started)
    raise TypeError(
        f"fetch must return CachedRows or a mapping of rows, not {type(result).__name__}"
    )


class NoCache(Cache):
    """Stores nothing: every ``get`` misses, and ``get_or_fetch`` always fetches (single-flight).

    Its fetches that return rows count in no outcome counter: nothing is stored, nothing
    is refused.
    """

    _stores = False
    _initial_reader: Callable[[str], Any] = staticmethod(_no_rows)

    async def _get(self, key: str) -> CachedRows | None:
        return None

    async def _put(self, key: str, rows: CachedRows) -> None:
        return None

    async def _invalidate(self, prefix: str) -> int:
        return 0
