"""One timed operation on one system over a store of ``n`` keys, with its checks.

A :class:`Case` fills a store (untimed) or takes one already filled, gives the arguments of
each timed round from :meth:`Case.before` (untimed: it undoes what the previous round
changed and builds fresh key strings), times :meth:`Case.run`, and :meth:`Case.check`
proves afterwards that the system did all the work: the right keys are gone, the others
stay with their values, and the counts agree with a plain model. :meth:`Case.finish` puts
the store back as it was filled, so the next case can use it. ``python -m trie_cache.bench``
and the pytest suite in ``bench/`` both measure through this class.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from .peers import System, get_system, loop_clock, missing_reason
from .workloads import (
    BATCH,
    GROUPS,
    INVALIDATED_GROUP,
    MixedStream,
    ValuePool,
    fresh,
    group_prefix,
    key,
    keys,
    make_mixed_stream,
    miss_indices,
    probe_indices,
    put_indices,
)

__all__ = ["OPERATION_TITLES", "Case", "CheckFailed", "Unsupported", "open_store"]

#: Column titles of the operations.
OPERATION_TITLES = {
    "get": "get (hit)",
    "miss": "get (miss)",
    "put": "put (new key)",
    "invalidate": "invalidate 10%",
    "mixed": "mixed workload",
}

#: Kept keys whose values are checked after a round.
_SAMPLE = 500

_POOL: ValuePool | None = None


def _pool() -> ValuePool:
    global _POOL
    if _POOL is None:
        _POOL = ValuePool()
    return _POOL


class CheckFailed(AssertionError):
    """A system did not leave the store in the state the operation demands."""


class Unsupported(Exception):
    """The system cannot take part in this case; the message says why."""


def _check_runnable(system_cls: type[System], peak: int) -> None:
    reason = missing_reason(system_cls)
    if reason is not None:
        raise Unsupported(reason)
    limit = system_cls.max_keys
    if limit is not None and peak > limit:
        raise Unsupported(
            f"{system_cls.title} runs with at most {limit:,} keys, this case needs {peak:,}: "
            f"{system_cls.max_keys_reason}"
        )


def open_store(system: str, n: int, batch: int = BATCH) -> System:
    """A store of ``system`` filled with keys ``0..n-1`` (untimed), ready for the get, miss,
    put and invalidate cases of the same ``n`` and ``batch``."""
    system_cls = get_system(system)
    _check_runnable(system_cls, n)
    pool = _pool()
    store = system_cls(2 * n + 4 * batch)
    try:
        store.load(keys(range(n)), pool.values(range(n), system_cls.binary))
        count = store.count()
        if count != n:
            raise CheckFailed(f"{system_cls.title} holds {count} keys after loading {n}")
        store.settle()
    except BaseException:
        store.close()
        raise
    return store


class Case:
    """``operation`` on the system named ``system`` over ``n`` keys.

    ``batch`` is the number of keys a get, miss or put round handles; ``mixed_ops`` the length
    of the mixed stream. Times are per operation (:attr:`ops` a round), except for
    ``invalidate``, which is one call a round.
    """

    def __init__(
        self,
        system: str,
        operation: str,
        n: int,
        *,
        batch: int = BATCH,
        mixed_ops: int = 2_000,
    ) -> None:
        if operation not in OPERATION_TITLES:
            raise ValueError(f"unknown operation {operation!r}")
        if n < GROUPS or n % GROUPS:
            raise ValueError(f"n must be a positive multiple of {GROUPS}, not {n!r}")
        self.system_cls = get_system(system)
        if operation not in self.system_cls.operations:
            raise Unsupported(f"{self.system_cls.title} does not take part in {operation!r}")
        _check_runnable(self.system_cls, n + batch if operation == "put" else n)
        self.operation = operation
        self.n = n
        self.batch = batch
        self.pool = _pool()
        self.binary = self.system_cls.binary
        self.stream: MixedStream | None = None
        if operation == "mixed":
            self.stream = make_mixed_stream(n, mixed_ops)
        self.store: System | None = None
        self._owned = False
        self._dirty = False
        self._round = 0
        #: Result of the last timed round.
        self.last: Any = None

    @property
    def clock(self) -> Callable[[], float]:
        """The clock to time :meth:`run` with: wall time, or for an async system the time
        spent inside its coroutines (:func:`~trie_cache.bench.peers.loop_clock`)."""
        return loop_clock if self.system_cls.is_async else time.perf_counter

    @property
    def ops(self) -> int:
        """Operations one timed round performs."""
        if self.operation == "invalidate":
            return 1
        if self.stream is not None:
            return len(self.stream.ops)
        return self.batch

    # -- life cycle ----------------------------------------------------------------------

    def open(self, store: System | None = None) -> System:
        """Use ``store`` (from :func:`open_store` with the same ``n``; not for ``mixed``) or
        make and fill one (untimed)."""
        if store is not None:
            if self.stream is not None:
                raise ValueError("the mixed case fills its own store")
            self.store = store
            self._owned = False
            return store
        if self.stream is None:
            self.store = open_store(self.system_cls.name, self.n, self.batch)
        else:
            self.store = self.system_cls(2 * self.n + 4 * self.batch)
            all_keys = self.stream.all_keys()
            value = self.pool.expected(0, self.binary)
            try:
                self.store.load(all_keys, [value] * len(all_keys))
                count = self.store.count()
                self._expect(count == len(all_keys), f"holds {count} keys after loading")
            except BaseException:
                self.store.close()
                self.store = None
                raise
        self._owned = True
        return self.store

    def finish(self) -> None:
        """Undo the last round (untimed): the store holds what it was filled with."""
        store = self._system()
        if self._dirty:
            self._undo(store)
            self._dirty = False
        store.settle()

    def close(self) -> None:
        """Release the store if this case made it."""
        if self.store is not None and self._owned:
            self.store.close()
        self.store = None

    def _system(self) -> System:
        if self.store is None:
            raise RuntimeError("Case.open() has not been called")
        return self.store

    # -- rounds --------------------------------------------------------------------------

    def _undo(self, store: System) -> None:
        op = self.operation
        if op == "put":
            store.delete_batch(keys(put_indices(self.n, self._round, self.batch)))
            self._round += 1
        elif op == "invalidate":
            gone = self._invalidated()
            store.load(keys(gone), self.pool.values(gone, self.binary))
        elif op == "mixed":
            missing = self._stream().missing
            value = self.pool.expected(0, self.binary)
            store.load([fresh(k) for k in missing], [value] * len(missing))

    def before(self) -> tuple[Any, ...]:
        """Undo the previous round (untimed) and return the next round's arguments."""
        store = self._system()
        if self._dirty:
            self._undo(store)
        store.settle()
        self._dirty = True
        op = self.operation
        if op == "get":
            return (keys(probe_indices(self.n, self.batch)),)
        if op == "miss":
            return (keys(miss_indices(self.n, self.batch)),)
        if op == "put":
            batch = put_indices(self.n, self._round, self.batch)
            return (keys(batch), self.pool.values(batch, self.binary))
        if op == "invalidate":
            return (fresh(group_prefix(INVALIDATED_GROUP)),)
        return (self._stream().fresh_ops(), self.pool.expected(0, self.binary))

    def run(self, *args: Any) -> Any:
        """The timed call; its result is also kept in :attr:`last` for the checks."""
        store = self._system()
        op = self.operation
        result: Any
        if op in ("get", "miss"):
            result = store.get_batch(args[0])
        elif op == "put":
            result = store.put_batch(args[0], args[1])
        elif op == "invalidate":
            result = store.invalidate(args[0])
        else:
            result = store.mixed(args[0], args[1])
        self.last = result
        return result

    # -- checks --------------------------------------------------------------------------

    def _expect(self, ok: bool, what: str) -> None:
        if not ok:
            raise CheckFailed(f"{self.system_cls.title}, {self.operation}, n={self.n}: {what}")

    def _stream(self) -> MixedStream:
        if self.stream is None:
            raise RuntimeError("not a mixed case")
        return self.stream

    def _invalidated(self) -> range:
        return range(INVALIDATED_GROUP, self.n, GROUPS)

    def _check_values(self, indices: Sequence[int] | range) -> None:
        found = self._system().lookup_many(keys(indices))
        for i, got in zip(indices, found):
            want = self.pool.expected(i, self.binary)
            self._expect(got == want, f"key {key(i)!r} holds {got!r}, expected {want!r}")

    def _check_absent(self, absent: Sequence[str]) -> None:
        found = self._system().lookup_many([fresh(k) for k in absent])
        for k, got in zip(absent, found):
            self._expect(got is None, f"key {k!r} should be gone, holds {got!r}")

    def _kept_sample(self, exclude_group: int | None = None) -> list[int]:
        step = max(1, self.n // _SAMPLE)
        return [i for i in range(0, self.n, step) if i % GROUPS != exclude_group]

    def check(self, result: Any) -> dict[str, float]:
        """Prove the last round did all its work; return figures worth reporting."""
        store = self._system()
        op = self.operation
        count = store.count()
        if op == "get":
            self._expect(result == self.batch, f"found {result} of {self.batch} stored keys")
            self._expect(count == self.n, f"holds {count} keys, expected {self.n}")
            self._check_values(probe_indices(self.n, self.batch)[:_SAMPLE])
            return {}
        if op == "miss":
            self._expect(result == 0, f"found {result} keys that were never stored")
            self._expect(count == self.n, f"holds {count} keys, expected {self.n}")
            self._check_absent(keys(miss_indices(self.n, self.batch)[:_SAMPLE]))
            return {}
        if op == "put":
            expected = self.n + self.batch
            self._expect(count == expected, f"holds {count} keys, expected {expected}")
            self._check_values(put_indices(self.n, self._round, self.batch))
            self._check_values(self._kept_sample())
            return {}
        if op == "invalidate":
            gone = self._invalidated()
            expected = self.n - len(gone)
            # Only keys 0..n-1 were stored, so the right count with every removed key absent
            # means exactly the other keys stay; their values are sampled as well.
            self._expect(count == expected, f"holds {count} keys, expected {expected}")
            self._check_absent(keys(gone))
            self._check_values(self._kept_sample(exclude_group=INVALIDATED_GROUP))
            return {"removed": float(len(gone))}
        stream = self._stream()
        expected = stream.tables * stream.pages - len(stream.missing)
        self._expect(
            result == stream.expected_hits,
            f"{result} read hits, the model has {stream.expected_hits}",
        )
        self._expect(count == expected, f"holds {count} keys, the model {expected}")
        self._check_absent(stream.missing)
        return {"hit_rate": stream.expected_hits / stream.reads}
