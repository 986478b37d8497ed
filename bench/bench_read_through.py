#!/usr/bin/env python
"""Read-through under load: ``get_or_fetch`` against the naive get-then-put pattern.

    python bench/bench_read_through.py [--backend mem|lmdb] [--tasks 1000] [--keys 50]
                                       [--reads 10] [--fetch-ms 5] [--write-ms 4] [--seed 1]
    python bench/bench_read_through.py --get-cost     # what the stats counters cost on get

A fake database holds one version number per tenant. ``--keys`` hot keys
``tenant_{t:02d}/clients/page_{n}`` (10 pages a tenant) are read by ``--tasks`` concurrent
tasks, ``--reads`` times each, with a short random pause between reads. A fetch reads the
tenant's version when it starts, then sleeps ``--fetch-ms`` (the database round trip) and
returns rows carrying that version. A writer task, every ``--write-ms`` on average
(exponential gaps), bumps a random tenant's version and then calls
``invalidate_prefix("tenant_XX/")``, as an application does after a write.

Both patterns run on a fresh cache of the chosen backend, with the same seed:

* naive: ``rows = await cache.get(k)``; on a miss ``rows = await fetch()`` and
  ``await cache.put(k, rows)``;
* trie_cache: ``rows = await cache.get_or_fetch(k, fetch)``.

A read is *stale* when the rows it returns carry a version older than the tenant's version
when the read began: a write had finished, invalidation included, and the reader still got
the old rows. For ``get_or_fetch`` that count must be 0. Timing varies between runs (the
event loop interleaves tasks by sleeps), so the counts do too; the ratio of fetches is the
figure to read.

``--get-cost`` instead times ``await MemCache.get(k)`` (hits on 100,000 keys, probed with
fresh equal strings) against awaiting an ``async def`` returning ``dict.get(k)``, and against
the same ``get`` with the hit and miss counters taken out: best of 15 rounds of CPU time,
the three interleaved in random order.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from trie_cache import CORE, Cache, CachedRows, MemCache

PAGES_PER_TENANT = 10


@dataclass
class Outcome:
    pattern: str
    reads: int
    fetches: int
    stale_reads: int
    seconds: float
    stats: Any


class Database:
    """Tenant versions, and fetches that read them with a round-trip delay."""

    def __init__(self, tenants: int, fetch_s: float) -> None:
        self.versions = [0] * tenants
        self.fetch_s = fetch_s
        self.fetches = 0

    def fetcher(self, tenant: int) -> Callable[[], Awaitable[CachedRows]]:
        async def fetch() -> CachedRows:
            self.fetches += 1
            version = self.versions[tenant]  # the read happens as the query starts
            started = time.time()
            await asyncio.sleep(self.fetch_s)
            return CachedRows({"page": {"tenant": tenant, "version": version}}, started)

        return fetch


def key_of(hot: int) -> tuple[str, int]:
    tenant, page = divmod(hot, PAGES_PER_TENANT)
    return f"tenant_{tenant:02d}/clients/page_{page}", tenant


async def run_pattern(pattern: str, cache: Cache, args: argparse.Namespace) -> Outcome:
    tenants = -(-args.keys // PAGES_PER_TENANT)
    db = Database(tenants, args.fetch_ms / 1000)
    stale = 0
    reads = 0
    done = asyncio.Event()

    async def read(hot: int) -> None:
        nonlocal stale, reads
        key, tenant = key_of(hot)
        floor = db.versions[tenant]
        fetch = db.fetcher(tenant)
        if pattern == "naive":
            rows = await cache.get(key)
            if rows is None:
                rows = await fetch()
                await cache.put(key, rows)
        else:
            rows = await cache.get_or_fetch(key, fetch)
        reads += 1
        if rows.rows["page"]["version"] < floor:
            stale += 1

    async def reader(rng: random.Random) -> None:
        for _ in range(args.reads):
            await read(rng.randrange(args.keys))
            await asyncio.sleep(rng.random() * args.fetch_ms / 1000)

    async def writer(rng: random.Random) -> None:
        while not done.is_set():
            await asyncio.sleep(rng.expovariate(1000 / args.write_ms))
            tenant = rng.randrange(tenants)
            db.versions[tenant] += 1
            await cache.invalidate_prefix(f"tenant_{tenant:02d}/")

    master = random.Random(args.seed)
    write_task = asyncio.create_task(writer(random.Random(master.random())))
    started = time.perf_counter()
    await asyncio.gather(*(reader(random.Random(master.random())) for _ in range(args.tasks)))
    elapsed = time.perf_counter() - started
    done.set()
    await write_task
    return Outcome(pattern, reads, db.fetches, stale, elapsed, cache.stats())


def make_cache(backend: str, tmp: str, n: int) -> Cache:
    if backend == "mem":
        return MemCache()
    from trie_cache import LmdbCache

    return LmdbCache(f"{tmp}/run{n}", durable=False)


async def main_async(args: argparse.Namespace) -> list[Outcome]:
    outcomes = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, pattern in enumerate(("naive", "get_or_fetch")):
            cache = make_cache(args.backend, tmp, n)
            try:
                outcomes.append(await run_pattern(pattern, cache, args))
            finally:
                await cache.aclose()
    return outcomes


class _UncountedMemCache(MemCache):
    """``MemCache.get`` without the hit and miss counters: the cost they add."""

    async def get(self, key: str, max_age: float | None = None) -> CachedRows | None:
        rows: CachedRows | None = self._trie.get(key)
        if rows is None or (max_age is None and self._max_age is None):
            return rows
        return self._aged(rows, max_age)


async def _await_all(aget: Callable[[str], Awaitable[Any]], probes: list[str]) -> int:
    t0 = time.process_time_ns()
    for k in probes:
        await aget(k)
    return time.process_time_ns() - t0


def measure_get_cost(rounds: int = 15, keys: int = 100_000, probes: int = 20_000) -> None:
    rng = random.Random(7)
    rows = CachedRows({"1": {"id": 1}}, 0.0)
    names = [f"tenant_{i % 10:05d}/clients/page_{i}" for i in range(keys)]
    d: dict[str, CachedRows] = {}
    counted = MemCache()
    uncounted = _UncountedMemCache()
    for k in names:
        d[k] = rows
        counted._trie[k] = rows
    uncounted._trie = counted._trie
    del names

    async def dict_aget(k: str) -> CachedRows | None:
        return d.get(k)

    contenders: dict[str, Callable[[str], Awaitable[Any]]] = {
        "async def -> dict.get": dict_aget,
        "MemCache.get": counted.get,
        "MemCache.get, no counters": uncounted.get,
    }
    best = dict.fromkeys(contenders, 1 << 62)
    picks = rng.sample(range(keys), probes)
    loop = asyncio.new_event_loop()
    gc.disable()
    try:
        for _ in range(rounds):
            order = list(contenders.items())
            rng.shuffle(order)
            for name, aget in order:
                fresh = [f"tenant_{i % 10:05d}/clients/page_{i}" for i in picks]
                best[name] = min(best[name], loop.run_until_complete(_await_all(aget, fresh)))
    finally:
        gc.enable()
        loop.close()
    base = best["async def -> dict.get"]
    print(f"# await get, hits: {keys:,} keys, core {CORE}, best of {rounds} x {probes:,}")
    for name, ns in best.items():
        print(f"{name:<28}{ns / probes:>8.1f} ns{ns / base:>7.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("mem", "lmdb"), default="mem")
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--keys", type=int, default=50, help="hot keys (10 a tenant)")
    parser.add_argument("--reads", type=int, default=10, help="reads per task")
    parser.add_argument("--fetch-ms", type=float, default=5.0)
    parser.add_argument("--write-ms", type=float, default=4.0, help="mean gap between writes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--get-cost", action="store_true", help="time get with/without stats")
    args = parser.parse_args(argv)
    if args.get_cost:
        measure_get_cost()
        return 0

    outcomes = asyncio.run(main_async(args))
    print(
        f"# backend {args.backend} (core {CORE}), {args.tasks} tasks x {args.reads} reads, "
        f"{args.keys} hot keys, fetch {args.fetch_ms} ms, a write every ~{args.write_ms} ms"
    )
    print(f"{'pattern':<14}{'reads':>8}{'fetches':>9}{'per read':>10}{'stale reads':>13}{'s':>7}")
    for o in outcomes:
        print(
            f"{o.pattern:<14}{o.reads:>8}{o.fetches:>9}{o.fetches / o.reads:>10.3f}"
            f"{o.stale_reads:>13}{o.seconds:>7.2f}"
        )
    naive, flight = outcomes
    print(f"fetches, get_or_fetch / naive: {flight.fetches / naive.fetches:.3f}")
    s = flight.stats
    print(
        f"get_or_fetch stats: hits {s.hits}, misses {s.misses}, fetches {s.fetches}, "
        f"coalesced {s.coalesced}, fills {s.fills}, "
        f"stale fills prevented {s.stale_fills_prevented}, invalidations {s.invalidations}"
    )
    if flight.stale_reads:
        print("FAIL: get_or_fetch served stale reads", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
