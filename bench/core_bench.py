#!/usr/bin/env python
"""The radix trie core against ``dict``, on every key shape, measured in one run as ratios.

    python bench/core_bench.py [--core cython|python] [--keys 20k,1M] [--shapes readme,uuid,...]
                               [--quick] [--repeats N] [--probes N] [--calls N]
                               [--clock cpu|wall] [--no-memory] [--markdown]

The matrix: every key shape of ``--shapes`` (default all) at every size of ``--keys`` (default
20k and 1M keys):

* ``readme``: ``tenant_{t:05d}/clients/page_{i}`` and ``tenant_{t:05d}/orders/id/{i:08d}``, 10
  tenants, half of each tenant's keys in each shape, inserted in random order;
* ``uuid``: ``user:{uuid4}``; ``seq``: ``str(i)`` inserted in order; ``shuffled``: the same in
  random order; ``randint``: random 63-bit integers as ``str``;
* ``url``: about 216-character URLs whose first 150 characters are the same;
* ``nonascii``: ``{city}/{word}/{i}`` in Latin, Cyrillic, Greek, Arabic and CJK letters.

For each: get hit, get miss, put new, put replace and memory per entry, the trie against
``dict``; get hit and miss again with reused key objects; the median of many single
``count_prefix`` and ``invalidate_prefix`` calls. The ``readme`` shape at the largest size also
gets the figures of the README's first table: one tenant invalidated and counted (the single
call, against a ``dict`` scan), the release of what it detached, and ``await MemCache.get``.

How each figure is taken (times by ``--clock``, default this thread's CPU time, which leaves
out time spent descheduled; every ratio compares two figures taken moments apart, ``dict`` and
trie alternating which goes first; the GC is off while timing):

* get, put: a loop over ``--probes`` probe keys (a new random sample every round), timed as a
  whole and divided by the number of probes; the best of ``--repeats`` rounds. *Fresh* probes
  are new string objects equal to the stored keys, built before every round outside the timed
  region, so ``dict`` hashes each one as it does for a key built per request. *Reused* probes
  are the key objects the ``dict`` stores (their hash cached, as in a loop over a list of keys
  used before); reused misses are probe objects used once before. Misses have the stored
  keys' shape.
* put, new key: every key, in insertion order, into an empty structure (best of at most 5).
* count_prefix, invalidate_prefix, median: ``--calls`` single calls, each on another prefix
  (a stored key cut at a random length of at most 200 UTF-8 bytes, lengthened until it selects
  at most a thousandth of the keys), each after untimed other work (50 gets and 5 puts), timed
  one by one with ``perf_counter`` (a thread CPU time read costs a system call), less the
  clock's own cost. The removed keys are put back, untimed, after each invalidation.
* memory per entry: growth of the resident set of a fresh subprocess that builds the
  structure, divided by the number of keys. The ``dict`` keeps its key strings; the trie
  copies the key bytes and the strings are dropped. Both hold one shared value object.
* await get: ``await MemCache.get(k)`` against awaiting an ``async def`` that returns
  ``d.get(k)``, both in one loop inside one coroutine.

The targets (issue 15; put replace, one call of invalidate_prefix and await get: issue 3)
apply to the compiled core; ``--core python`` prints them for reference.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import random
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import replace
from typing import Any

from trie_cache.bench.toolkit import (
    CLOCK_HELP,
    CLOCKS,
    KEY_SHAPES,
    Clock,
    Column,
    Figure,
    KeyShape,
    Table,
    Target,
    clock_overhead,
    figure_table,
    format_count,
    format_ratio,
    format_time,
    fresh,
    machine_line,
    median,
    parse_count,
    rss_bytes,
    single_calls,
    tenant_key,
    tenant_prefix,
    timed,
    verdict_summary,
)

TENANTS = 10
SEED = 3
CORE_MODULES = {"cython": "trie_cache._radix", "python": "trie_cache._radix_py"}
DEFAULT_SIZES = "20k,1M"

# The clock every loop is timed with; ``--clock`` switches it.
CLOCK: Clock = CLOCKS["cpu"]


def use_clock(name: str) -> None:
    global CLOCK
    CLOCK = CLOCKS[name]


#: The targets, for the compiled core, by figure name: ratios to dict, or bounds in seconds.
TARGETS: dict[str, Target] = {
    "get, hit": Target(1.0),
    "get, miss": Target(1.0),
    "put, new key": Target(1.2),
    "put, replace": Target(2.0),
    "get, hit, reused key": Target(1.3),
    "memory per entry": Target(0.7),
    "count_prefix, median": Target(1e-6, "s"),
    "invalidate_prefix, median": Target(1e-6, "s"),
    "invalidate_prefix, one tenant": Target(50e-6, "s"),
    "await get, hit": Target(1.3),
}

#: The columns of the summary matrix: figure name -> column title.
MATRIX = {
    "get, hit": "get hit",
    "get, miss": "get miss",
    "put, new key": "put new",
    "put, replace": "put replace",
    "get, hit, reused key": "hit, reused",
    "get, miss, reused key": "miss, reused",
    "memory per entry": "memory",
}

#: Probes of untimed work between two timed single prefix calls: gets, then puts.
WORK_GETS = 50
WORK_PUTS = 5
#: A median prefix selects at most this share of the keys (and at least one key).
PREFIX_SHARE = 1 / 1000
#: The longest prefix of the median figures, in UTF-8 bytes.
PREFIX_BYTES = 200


# --------------------------------------------------------------------------- keys


class KeySpace:
    """The README's keys: ``total`` keys numbered 0..total-1, tenant ``j // per_tenant``.

    Within a tenant, index ``i < half`` is ``clients/page_{i}`` and ``i >= half`` is
    ``orders/id/{i - half:08d}``. A *miss* for index ``j`` has the same tenant and shape but
    a page or id number just past the stored ones.
    """

    def __init__(self, total: int) -> None:
        if total < 2 * TENANTS:
            raise ValueError(f"need at least {2 * TENANTS} keys, not {total}")
        self.half = total // (2 * TENANTS)
        self.per_tenant = 2 * self.half
        self.total = self.per_tenant * TENANTS

    def _build(self, indices: Sequence[int], shift: int) -> list[str]:
        per, half = self.per_tenant, self.half
        out = []
        for j in indices:
            tenant, i = divmod(j, per)
            if i < half:
                out.append(tenant_key(tenant, i + shift))
            else:
                out.append(f"{tenant_prefix(tenant)}orders/id/{i - half + shift:08d}")
        return out

    def keys(self, indices: Sequence[int]) -> list[str]:
        """Fresh key strings for ``indices`` (new objects every call, no cached hash)."""
        return self._build(indices, 0)

    def misses(self, indices: Sequence[int]) -> list[str]:
        """Fresh strings shaped like ``keys(indices)`` that are not stored."""
        return self._build(indices, self.half)

    def tenant_range(self, tenant: int) -> range:
        return range(tenant * self.per_tenant, (tenant + 1) * self.per_tenant)

    @staticmethod
    def tenant_prefix(tenant: int) -> str:
        return tenant_prefix(tenant)

    def shuffled(self, seed: int = SEED) -> list[int]:
        order = list(range(self.total))
        random.Random(seed).shuffle(order)
        return order

    def sample(self, count: int, seed: int = SEED) -> list[int]:
        return random.Random(seed).sample(range(self.total), min(count, self.total))


def readme_shape() -> KeyShape:
    """The ``readme`` key shape of the matrix, built from :class:`KeySpace`."""

    def stored(n: int) -> list[str]:
        space = KeySpace(n)
        return space.keys(space.shuffled())

    def misses(n: int, count: int) -> list[str]:
        space = KeySpace(n)
        return space.misses(space.sample(count, seed=SEED + 100))

    return KeyShape("readme", KEY_SHAPES["readme"].title, stored, misses)


SHAPES: dict[str, KeyShape] = {**KEY_SHAPES, "readme": readme_shape()}


# --------------------------------------------------------------------------- timed loops
# Each loop is the same code for dict and trie; only the object differs.


def loop_get(get: Callable[[str], Any], probes: Sequence[str]) -> None:
    for k in probes:
        get(k)


def loop_set(mapping: MutableMapping[str, Any], probes: Sequence[str], value: object) -> None:
    for k in probes:
        mapping[k] = value


def loop_empty(probes: Sequence[str]) -> None:
    for _k in probes:
        pass


def dict_invalidate(d: dict[str, Any], prefix: str) -> int:
    """What a dict needs to drop every key under ``prefix``: a scan, then the deletes."""
    dead = [k for k in d if k.startswith(prefix)]
    for k in dead:
        del d[k]
    return len(dead)


def dict_count_prefix(d: dict[str, Any], prefix: str) -> int:
    return len([k for k in d if k.startswith(prefix)])


async def await_loop(aget: Callable[[str], Awaitable[Any]], probes: Sequence[str]) -> float:
    """Seconds (by the benchmark's clock) an ``await aget(k)`` of every probe takes."""
    clock = CLOCK
    t0 = clock()
    for k in probes:
        await aget(k)
    return clock() - t0


def time_loop(fn: Callable[..., Any], *args: Any) -> float:
    return timed(fn, *args, clock=CLOCK)[0]


# --------------------------------------------------------------------------- core loading


def load_core(name: str) -> type[Any]:
    """The ``RadixTrie`` class of core ``name``; ImportError says why it is missing."""
    module = importlib.import_module(CORE_MODULES[name])
    return module.RadixTrie  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- measurements


class ShapeBench:
    """The figures of one key shape at one size; ``d`` and ``t`` hold the keys once built."""

    def __init__(
        self, trie_cls: type[Any], shape: KeyShape, n: int, repeats: int, probes: int
    ) -> None:
        self.trie_cls = trie_cls
        self.shape = shape
        self.keys = shape.stored(n)
        self.n = len(self.keys)
        self.miss_keys = shape.misses(n, min(probes, max(n, 1_000)))
        self.repeats = repeats
        # A different random sample of keys every round, so no round finds its keys in the
        # CPU caches because the previous round touched them.
        self.samples = [
            random.Random(SEED + 1 + r).sample(range(self.n), min(probes, self.n))
            for r in range(repeats)
        ]
        self.probes = len(self.samples[0])
        # Rounds for whole builds (and dict scans of every key).
        self.long_rounds = min(repeats, 5)
        self.value = object()
        self.d: dict[str, Any] = {}
        self.t: Any = trie_cls()

    def figure(self, name: str, base: float, value: float, unit: str = "s", **kw: Any) -> Figure:
        return Figure(name, value, base, unit, TARGETS.get(name), **kw)

    def put_new(self) -> Figure:
        """Insert every key, in insertion order, into an empty structure; keep the last ones."""
        best_d = best_t = float("inf")
        for r in range(self.long_rounds):
            self.d, self.t = {}, None
            gc.collect()
            d: dict[str, Any] = {}
            t = self.trie_cls()
            for side in "dt" if r % 2 == 0 else "td":
                keys = [fresh(k) for k in self.keys]
                if side == "d":
                    best_d = min(best_d, time_loop(loop_set, d, keys, self.value))
                else:
                    best_t = min(best_t, time_loop(loop_set, t, keys, self.value))
                del keys
            self.d, self.t = d, t
        assert len(self.d) == len(self.t) == self.n
        return self.figure("put, new key", best_d / self.n, best_t / self.n)

    def _probe_rounds(
        self,
        make: Callable[[list[int]], list[str]],
        run_d: Callable[[list[str]], float],
        run_t: Callable[[list[str]], float],
    ) -> tuple[float, float]:
        """Best seconds per operation of each side; every run gets a new list of probes."""
        best_d = best_t = float("inf")
        for r, sample in enumerate(self.samples):
            # Alternate which side goes first, so neither always runs on a warmer cache.
            if r % 2:
                best_t = min(best_t, run_t(make(sample)))
                best_d = min(best_d, run_d(make(sample)))
            else:
                best_d = min(best_d, run_d(make(sample)))
                best_t = min(best_t, run_t(make(sample)))
        return best_d / self.probes, best_t / self.probes

    def _misses(self, sample: list[int]) -> list[str]:
        pool = self.miss_keys
        return [pool[i % len(pool)] for i in sample]

    def get(self, hit: bool, reused: bool) -> Figure:
        """get of stored keys (``hit``) or of others, with fresh or reused probe objects."""
        if hit:
            source = list(self.d) if reused else self.keys
        else:
            source = self.miss_keys
            # A reused miss is a probe object used before: its hash (and UTF-8) cached.
            for k in source:
                self.d.get(k)
                self.t.get(k)
        if reused:

            def make(sample: list[int]) -> list[str]:
                return [source[i % len(source)] for i in sample]
        else:

            def make(sample: list[int]) -> list[str]:
                return [fresh(source[i % len(source)]) for i in sample]

        expect = self.value if hit else None
        dget, tget = self.d.get, self.t.get
        probes = make(self.samples[0])
        assert all(dget(k) is expect for k in probes) and all(tget(k) is expect for k in probes)
        d_s, t_s = self._probe_rounds(
            make, lambda p: time_loop(loop_get, dget, p), lambda p: time_loop(loop_get, tget, p)
        )
        name = "get, hit" if hit else "get, miss"
        return self.figure(name + (", reused key" if reused else ""), d_s, t_s)

    def put_replace(self) -> Figure:
        other = object()
        keys = self.keys

        def make(sample: list[int]) -> list[str]:
            return [fresh(keys[i]) for i in sample]

        d_s, t_s = self._probe_rounds(
            make,
            lambda p: time_loop(loop_set, self.d, p, other),
            lambda p: time_loop(loop_set, self.t, p, other),
        )
        assert len(self.d) == len(self.t) == self.n
        loop_set(self.d, keys, self.value)
        loop_set(self.t, keys, self.value)
        return self.figure("put, replace", d_s, t_s)

    def loop_overhead(self) -> float:
        best = min(time_loop(loop_empty, [fresh(self.keys[i]) for i in s]) for s in self.samples)
        return best / self.probes

    # -- single prefix calls, median -----------------------------------------------------

    def median_prefixes(self, calls: int) -> list[str]:
        """``calls`` prefixes of stored keys, each of at most PREFIX_BYTES UTF-8 bytes and
        selecting at most a PREFIX_SHARE of the keys where the bytes allow."""
        rng = random.Random(SEED + 50)
        count = self.t.count_prefix
        limit = max(1, int(self.n * PREFIX_SHARE))
        out = []
        for _ in range(calls):
            key = self.keys[rng.randrange(self.n)]
            most = len(key)
            while len(key[:most].encode("utf-8", "surrogatepass")) > PREFIX_BYTES:
                most -= 1
            cut = rng.randint(1, most)
            while cut < most and count(key[:cut]) > limit:
                cut += 1
            out.append(key[:cut])
        return out

    def _other_work(self, calls: int) -> Callable[[int], None]:
        rng = random.Random(SEED + 60)
        gets = [fresh(self.keys[rng.randrange(self.n)]) for _ in range(WORK_GETS * calls)]
        puts = [fresh(self.keys[rng.randrange(self.n)]) for _ in range(WORK_PUTS * calls)]
        t, value = self.t, self.value

        def work(i: int) -> None:
            loop_get(t.get, gets[i * WORK_GETS : (i + 1) * WORK_GETS])
            loop_set(t, puts[i * WORK_PUTS : (i + 1) * WORK_PUTS], value)

        return work

    def prefix_medians(self, calls: int) -> tuple[list[Figure], str]:
        """count_prefix and invalidate_prefix, each the median of ``calls`` single calls."""
        prefixes = self.median_prefixes(calls)
        t, value = self.t, self.value
        expected = [t.count_prefix(p) for p in prefixes]
        work = self._other_work(calls)
        wall = CLOCKS["wall"]

        def check_count(i: int, result: int) -> None:
            assert result == expected[i], (prefixes[i], result, expected[i])

        counted = single_calls(
            t.count_prefix, [fresh(p) for p in prefixes], work, check_count, clock=wall
        )
        removed: list[list[str]] = [[]]

        def before_invalidate(i: int) -> None:
            work(i)
            removed[0] = list(t.keys(prefixes[i]))

        def restore(i: int, result: int) -> None:
            assert result == len(removed[0]) == expected[i], (prefixes[i], result)
            loop_set(t, removed[0], value)

        dropped = single_calls(
            t.invalidate_prefix, [fresh(p) for p in prefixes], before_invalidate, restore, wall
        )
        assert len(t) == self.n
        t.reclaim()
        sizes = sorted(len(p.encode("utf-8", "surrogatepass")) for p in prefixes)
        under = sorted(expected)
        info = (
            f"{calls} prefixes of {sizes[0]}-{sizes[-1]} bytes (median {median(sizes):.0f}), "
            f"{under[0]}-{under[-1]} keys under each (median {median(under):.0f})"
        )
        figures = []
        for name, times in (("count_prefix", counted), ("invalidate_prefix", dropped)):
            ordered = sorted(times)
            p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
            figures.append(
                Figure(
                    f"{name}, median",
                    median(times),
                    unit="s",
                    target=TARGETS[f"{name}, median"],
                    note=f"p90 {format_time(p90)}, first call {format_time(times[0])}",
                )
            )
        return figures, info


class ReadmeExtras:
    """The README table's figures on top of the matrix: one tenant invalidated and counted,
    the release of what it detached, ``await MemCache.get``."""

    def __init__(self, bench: ShapeBench, core: str) -> None:
        self.bench = bench
        self.core = core
        self.space = KeySpace(bench.n)
        assert self.space.total == bench.n, "the readme shape needs a multiple of 20 keys"
        self.clock_cost = clock_overhead(CLOCK)

    def count_prefix(self, tenant: int) -> Figure:
        b, space = self.bench, self.space
        prefix = space.tenant_prefix(tenant)
        expect = space.per_tenant
        assert b.t.count_prefix(prefix) == expect == dict_count_prefix(b.d, prefix)
        calls = 1000
        best_d = best_t = float("inf")
        count = b.t.count_prefix
        for r in range(b.repeats):
            if r < b.long_rounds:
                best_d = min(best_d, time_loop(dict_count_prefix, b.d, fresh(prefix)))
            prefixes = [fresh(prefix) for _ in range(calls)]
            best_t = min(best_t, time_loop(loop_get, count, prefixes) / calls)
        return Figure(
            "count_prefix",
            best_t,
            best_d,
            note=f"{expect:,} keys under {prefix!r}, the same call 1,000 times in a loop; "
            "dict: scan with str.startswith",
        )

    def _restore_tenant(self, mapping: Any, tenant: int) -> None:
        loop_set(mapping, self.space.keys(self.space.tenant_range(tenant)), self.bench.value)
        assert len(mapping) == self.space.total

    def invalidate(self, tenant: int) -> tuple[Figure, list[str]]:
        b, space = self.bench, self.space
        expect = space.per_tenant
        best_d = best_t = best_reclaim = float("inf")
        for r in range(b.repeats):
            prefix = fresh(space.tenant_prefix(tenant))
            elapsed, removed = timed(b.t.invalidate_prefix, prefix, clock=CLOCK)
            assert removed == expect, removed
            assert len(b.t) == space.total - expect
            best_t = min(best_t, elapsed - self.clock_cost)
            best_reclaim = min(best_reclaim, time_loop(b.t.reclaim))
            assert b.t.pending_reclaim == 0
            self._restore_tenant(b.t, tenant)
            if r < b.long_rounds:
                best_d = min(best_d, time_loop(dict_invalidate, b.d, fresh(prefix)))
                assert len(b.d) == space.total - expect
                self._restore_tenant(b.d, tenant)
        info = [
            (
                f"invalidate_prefix({space.tenant_prefix(tenant)!r}) removes {expect:,} of "
                f"{space.total:,} keys; releasing them at once with reclaim() takes "
                f"{format_time(best_reclaim)} (off the caller's path)."
            ),
            self._release_during_puts(tenant),
        ]
        figure = Figure(
            "invalidate_prefix, one tenant",
            best_t,
            best_d,
            target=TARGETS["invalidate_prefix, one tenant"],
            note="one call (best of the rounds); dict: scan, then delete the matches",
        )
        return figure, info

    def _release_during_puts(self, tenant: int) -> str:
        """Single puts while a detached tenant is released in slices, against quiet ones.

        Both phases insert the tenant's keys again after invalidating it; in the quiet phase
        ``reclaim()`` has run first. Compared over the puts the release took, best of rounds
        (the slowest put of a round is easily a scheduler preemption on a shared machine).
        """
        b, space = self.bench, self.space
        prefix = space.tenant_prefix(tenant)
        tenant_keys = space.tenant_range(tenant)
        quiet_mean = quiet_max = busy_mean = busy_max = float("inf")
        released_after: int | None = None
        pending = 0
        for _ in range(b.long_rounds):
            b.t.invalidate_prefix(prefix)
            b.t.reclaim()
            quiet, _ = self._timed_puts(space.keys(tenant_keys))
            b.t.invalidate_prefix(prefix)
            pending = b.t.pending_reclaim
            busy, released_after = self._timed_puts(space.keys(tenant_keys))
            b.t.reclaim()
            assert len(b.t) == space.total
            span = released_after or len(busy)
            busy_mean = min(busy_mean, sum(busy[:span]) / span)
            busy_max = min(busy_max, max(busy[:span]))
            quiet_mean = min(quiet_mean, sum(quiet[:span]) / span)
            quiet_max = min(quiet_max, max(quiet[:span]))
        if released_after is None:
            return (
                f"Release in slices: {pending:,} entries still not all released after "
                f"{space.per_tenant:,} puts (mean {format_time(busy_mean)} a put)."
            )
        return (
            f"Release in slices: the {released_after:,} puts after the call released "
            f"{pending:,} entries; a put took {format_time(busy_mean)} on average, "
            f"{format_time(busy_max)} at most (same puts with nothing pending: "
            f"{format_time(quiet_mean)}, {format_time(quiet_max)} at most)."
        )

    def _timed_puts(self, keys: list[str]) -> tuple[list[float], int | None]:
        """(seconds of each single put, puts done once nothing was pending any more)."""
        t = self.bench.t
        value = self.bench.value
        times = [0.0] * len(keys)
        cost = self.clock_cost
        clock = CLOCK
        released_after = None
        gc.disable()
        try:
            for n, k in enumerate(keys):
                t0 = clock()
                t[k] = value
                times[n] = clock() - t0 - cost
                if released_after is None and not t.pending_reclaim:
                    released_after = n + 1
        finally:
            gc.enable()
        return times, released_after

    def await_get(self) -> Figure:
        import trie_cache

        b, space = self.bench, self.space
        rows = trie_cache.CachedRows({"1": {"id": 1}}, fetched_at=0.0)
        cache = trie_cache.MemCache(_trie_cls=load_core(self.core))
        d: dict[str, Any] = {}
        loop = asyncio.new_event_loop()
        try:
            keys = space.keys(space.shuffled())
            loop.run_until_complete(_fill_cache(cache, keys, rows))
            loop_set(d, keys, rows)
            del keys

            async def dict_aget(k: str) -> Any:
                return d.get(k)

            cache_get = cache.get

            def run(aget: Callable[[str], Awaitable[Any]], probes: list[str]) -> float:
                gc.disable()
                try:
                    return loop.run_until_complete(await_loop(aget, probes))
                finally:
                    gc.enable()

            probe = fresh(b.keys[b.samples[0][0]])
            assert loop.run_until_complete(cache_get(probe)) is rows

            def make(sample: list[int]) -> list[str]:
                return [fresh(b.keys[i]) for i in sample]

            d_s, t_s = b._probe_rounds(
                make, lambda p: run(dict_aget, p), lambda p: run(cache_get, p)
            )
        finally:
            loop.close()
        return Figure(
            "await get, hit",
            t_s,
            d_s,
            target=TARGETS["await get, hit"],
            note="MemCache.get vs an async def returning d.get(k); both bound outside",
        )


async def _fill_cache(cache: Any, keys: list[str], rows: object) -> None:
    put = cache.put
    for k in keys:
        await put(k, rows)


# --------------------------------------------------------------------------- memory


def memory_child(kind: str, core: str, shape: str, total: int) -> None:
    """Run in a fresh process: print the RSS growth per entry of one structure."""
    keys = SHAPES[shape].stored(total)
    trie_cls = load_core(core)
    value = object()
    mapping: Any = None
    gc.collect()
    before = rss_bytes()
    mapping = {} if kind == "dict" else trie_cls()
    for k in keys:
        # One fresh string per key: the dict keeps it, the trie copies it and drops it.
        mapping[fresh(k)] = value
    gc.collect()
    after = rss_bytes()
    assert len(mapping) == len(keys)
    print((after - before) / len(keys))


def memory_per_entry(core: str, shape: str, total: int, runs: int) -> Figure:
    def measure(kind: str) -> float:
        command = [sys.executable, __file__, "--memory-child", kind, "--core", core]
        command += ["--shapes", shape, "--keys", str(total)]
        out = subprocess.run(command, check=True, capture_output=True, text=True)
        return float(out.stdout.strip())

    d = min(measure("dict") for _ in range(runs))
    t = min(measure("trie") for _ in range(runs))
    return Figure(
        "memory per entry",
        t,
        d,
        "B",
        TARGETS["memory per entry"],
        note="RSS growth of a fresh process; dict keeps its key strings, trie does not",
    )


# --------------------------------------------------------------------------- one run


def run_shape(
    args: argparse.Namespace, trie_cls: type[Any], shape: KeyShape, n: int, extras: bool
) -> tuple[list[Figure], list[str]]:
    """Every figure of one shape at one size, printed as its table; and its notes."""
    bench = ShapeBench(trie_cls, shape, n, args.repeats, args.probes)
    figures = [bench.put_new()]
    figures.append(bench.get(hit=True, reused=False))
    figures.append(bench.get(hit=False, reused=False))
    figures.append(bench.get(hit=True, reused=True))
    figures.append(bench.get(hit=False, reused=True))
    figures.append(bench.put_replace())
    medians, info = bench.prefix_medians(args.calls)
    figures += medians
    notes = [f"median prefix calls: {info}."]
    if extras:
        more = ReadmeExtras(bench, args.core)
        tenant = TENANTS // 2
        figure, release = more.invalidate(tenant)
        figures += [figure, more.count_prefix(tenant)]
        notes += release
        notes.append(
            "Per-operation figures include the probe loop itself: "
            f"{format_time(bench.loop_overhead())} an iteration."
        )
    if args.memory:
        figures.append(memory_per_entry(args.core, shape.name, bench.n, args.memory_runs))
    if extras:
        # The facade's trie is built last, after the standalone structures are gone.
        bench.d, bench.t = {}, bench.trie_cls()
        gc.collect()
        figures.append(more.await_get())
    return figures, notes


def matrix_table(results: dict[tuple[str, int], list[Figure]]) -> Table:
    """Ratio to dict of each figure of the matrix, with PASS/MISS, a row per shape and size."""
    columns = [Column("shape", 9, "<"), Column("n", 4)]
    columns += [Column(title, 13) for title in MATRIX.values()]
    columns += [Column("count med.", 12), Column("inval. med.", 12)]
    table = Table(columns)
    for (shape, n), figures in results.items():
        by_name = {f.name: f for f in figures}
        cells = [shape, format_count(n)]
        for name in MATRIX:
            f = by_name.get(name)
            cells.append("-" if f is None else f"{format_ratio(f.ratio)} {f.verdict()}".strip())
        for name in ("count_prefix, median", "invalidate_prefix, median"):
            f = by_name[name]
            cells.append(f"{format_time(f.value)} {f.verdict()}")
        table.add(*cells)
    return table


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--core",
        choices=sorted(CORE_MODULES),
        default="cython",
        help="which trie core to measure (default: cython)",
    )
    parser.add_argument(
        "--keys",
        default=DEFAULT_SIZES,
        help=f"sizes, comma separated, like 20k,1M (default {DEFAULT_SIZES})",
    )
    parser.add_argument(
        "--shapes",
        default=",".join(SHAPES),
        help=f"key shapes, comma separated (default all: {','.join(SHAPES)})",
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer rounds: a rough figure in less time"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="rounds per figure, best taken (default 15, --quick 5; whole builds and slow "
        "dict scans take at most 5)",
    )
    parser.add_argument(
        "--probes", type=int, default=20_000, help="probe keys per get/put round (default 20,000)"
    )
    parser.add_argument(
        "--calls",
        type=int,
        default=None,
        help="single calls per median figure (default 201, --quick 51)",
    )
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu", help=CLOCK_HELP % "cpu")
    parser.add_argument(
        "--no-memory", dest="memory", action="store_false", help="skip the memory figures"
    )
    parser.add_argument("--markdown", action="store_true", help="also print the matrix in Markdown")
    parser.add_argument("--memory-child", choices=("dict", "trie"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        args.sizes = sorted({parse_count(part) for part in args.keys.split(",") if part.strip()})
    except ValueError as exc:
        parser.error(f"--keys: {exc}")
    args.shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    for name in args.shapes:
        if name not in SHAPES:
            parser.error(f"unknown shape {name!r}; known: {', '.join(SHAPES)}")
    if not args.sizes or min(args.sizes) < 2 * TENANTS:
        parser.error(f"--keys must be at least {2 * TENANTS}")
    if args.repeats is None:
        args.repeats = 5 if args.quick else 15
    if args.calls is None:
        args.calls = 51 if args.quick else 201
    args.memory_runs = 1 if args.quick else 2
    if args.repeats < 1 or args.probes < 1 or args.calls < 1:
        parser.error("--repeats, --probes and --calls must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    use_clock(args.clock)
    if args.memory_child:
        memory_child(args.memory_child, args.core, args.shapes[0], args.sizes[0])
        return 0
    try:
        trie_cls = load_core(args.core)
    except ImportError as exc:
        print(
            f"core {args.core!r} is not importable ({exc}); build it with `pip install -e .`"
            " or pass --core python",
            file=sys.stderr,
        )
        return 2
    import trie_cache

    if args.core == "cython" and trie_cache.CORE != "cython":
        raise SystemExit(f"trie_cache picked the {trie_cache.CORE} core, not the compiled one")

    started = time.monotonic()
    print(
        f"trie_cache core benchmark: core={args.core}, shapes {', '.join(args.shapes)}, "
        f"{' and '.join(format_count(n) for n in args.sizes)} keys, best of {args.repeats}, "
        f"{args.probes:,} probes a round, medians of {args.calls} calls, {args.clock} clock"
    )
    print(machine_line())
    results: dict[tuple[str, int], list[Figure]] = {}
    for n in args.sizes:
        for name in args.shapes:
            shape = SHAPES[name]
            extras = name == "readme" and n == args.sizes[-1]
            figures, notes = run_shape(args, trie_cls, shape, n, extras)
            results[(name, n)] = figures
            print(f"\n== {shape.title}: {format_count(n)} keys ==")
            print(figure_table(figures, name_width=30))
            for line in notes:
                print(line)
            sys.stdout.flush()

    all_figures = [
        replace(f, name=f"{shape} {format_count(n)}: {f.name}")
        for (shape, n), figures in results.items()
        for f in figures
    ]
    matrix = matrix_table(results)
    print("\nRatio to dict (and the median single prefix call), every shape and size:")
    for name in args.shapes:
        print(f"  {name}: {SHAPES[name].title}")
    print(matrix)
    if args.markdown:
        print()
        print("\n".join(matrix.markdown()))
    print(
        f"\nTargets (for the compiled core): {verdict_summary(all_figures)} "
        f"(run took {time.monotonic() - started:,.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
