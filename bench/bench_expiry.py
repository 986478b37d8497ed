#!/usr/bin/env python
"""What expiry costs (issue 10): a trie or cache with ``max_age`` against one without, in one
process, rounds alternating, this thread's CPU time, best of the rounds.

    python bench/bench_expiry.py [--keys N] [--rounds R] [--probes P]

* ``await MemCache(max_age=3600).get`` on fresh rows (the hit the expiry code must not slow
  down) against ``await MemCache().get``;
* ``RadixTrie(expired=...).get`` (the queue kept for expiry: a Link per node, a visited store
  per hit) against ``RadixTrie().get``;
* a put of a new key: ``RadixTrie(expired=...)`` (joins the queue, one call of ``expired`` on
  the oldest entry, not expired) against ``RadixTrie()``; the same through ``MemCache.put``;
* a put that expires the two oldest entries against one that expires none, and a ``get``
  that removes the expired rows it meets against a miss on an absent key.

The keys have the README's shape (``tenant_00003/clients/page_12``). To compare two trees, run
this once with each on ``PYTHONPATH`` (the script needs nothing newer than ``RadixTrie``'s
``expired`` argument) and compare the figures of runs taken close together.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

TENANTS = 10
SEED = 5
now = time.thread_time_ns


def readme_keys(indices: Sequence[int], per_tenant: int, tag: str = "clients/page_") -> list[str]:
    return [f"tenant_{j // per_tenant:05d}/{tag}{j % per_tenant}" for j in indices]


def timed(fn: Callable[[], Any]) -> int:
    gc.disable()
    try:
        t0 = now()
        fn()
        return now() - t0
    finally:
        gc.enable()


def never(value: object) -> bool:
    return False


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keys", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--probes", type=int, default=100_000)
    args = p.parse_args(argv)

    import trie_cache
    from trie_cache import CachedRows, MemCache, RadixTrie

    total, probes, rounds = args.keys, min(args.probes, args.keys), args.rounds
    per = total // TENANTS
    rng = random.Random(SEED)
    order = list(range(total))
    rng.shuffle(order)
    stored = readme_keys(order, per)
    fresh_rows = CachedRows({"r1": {"id": 1}}, time.time() + 10**6)  # fresh for the whole run
    best: dict[tuple[str, str], int] = {}

    def record(case: str, side: str, ns: int) -> None:
        best[(case, side)] = min(best.get((case, side), sys.maxsize), ns)

    def alternate(case: str, sides: Sequence[tuple[str, Callable[[int], int]]]) -> None:
        for r in range(rounds):
            for side, run in sides if r % 2 == 0 else sides[::-1]:
                record(case, side, run(r))

    samples = [readme_keys(rng.sample(range(total), probes), per) for _ in range(rounds)]

    # -- tries
    plain: Any = RadixTrie()
    expiring: Any = RadixTrie(expired=never)
    for trie in (plain, expiring):
        for k in stored:
            trie[k] = fresh_rows

    def trie_get(trie: Any) -> Callable[[int], int]:
        def run(r: int) -> int:
            get, keys = trie.get, [k[:1] + k[1:] for k in samples[r]]

            def loop() -> None:
                for k in keys:
                    get(k)

            return timed(loop)

        return run

    def trie_put(trie: Any) -> Callable[[int], int]:
        def run(r: int) -> int:
            keys = readme_keys(range(r * probes, (r + 1) * probes), per, "new/")
            rng.shuffle(keys)

            def loop() -> None:
                for k in keys:
                    trie[k] = fresh_rows

            ns = timed(loop)
            for k in keys:
                del trie[k]
            return ns

        return run

    alternate("trie get, hit", [("without", trie_get(plain)), ("with", trie_get(expiring))])
    alternate("trie put, new key", [("without", trie_put(plain)), ("with", trie_put(expiring))])
    del plain, expiring
    gc.collect()

    # -- caches
    loop = asyncio.new_event_loop()
    plain_cache = MemCache()
    aging = MemCache(max_age=3600)
    for cache in (plain_cache, aging):
        for k in stored:
            loop.run_until_complete(cache.put(k, fresh_rows))
    del stored

    def awaited(call: Callable[[str], Awaitable[Any]], keys: Sequence[str]) -> int:
        async def go() -> int:
            t0 = now()
            for k in keys:
                await call(k)
            return now() - t0

        gc.disable()
        try:
            return loop.run_until_complete(go())
        finally:
            gc.enable()

    def cache_get(cache: Any) -> Callable[[int], int]:
        return lambda r: awaited(cache.get, [k[:1] + k[1:] for k in samples[r]])

    def cache_put(cache: Any) -> Callable[[int], int]:
        def run(r: int) -> int:
            keys = readme_keys(range(r * probes, (r + 1) * probes), per, "new/")
            ns = awaited(lambda k: cache.put(k, fresh_rows), keys)
            for k in keys:
                cache._trie.pop(k)
            return ns

        return run

    alternate(
        "MemCache.get, hit", [("without", cache_get(plain_cache)), ("with", cache_get(aging))]
    )
    alternate(
        "MemCache.put, new key", [("without", cache_put(plain_cache)), ("with", cache_put(aging))]
    )
    del plain_cache, aging
    gc.collect()

    # -- what an expiry costs when it happens (MemCache with max_age=60, rows 2 hours old)
    small = min(total, 3 * probes)
    old_rows = CachedRows({"r1": {"id": 1}}, time.time() - 7200)
    draining = MemCache(max_age=60)
    idle = MemCache(max_age=60)
    have = readme_keys(range(small), per, "old/")

    # A write to a trie with expiry would expire the old rows as they go in: the full tries
    # are built from a state (which stores without expiring) and copied (likewise).
    def template(cache: Any, rows: CachedRows) -> Any:
        cls: Any = type(cache._trie)
        trie = cls.__new__(cls, expired=cache._trie.expired)
        trie.__setstate__(([(k, rows, 1, False) for k in have], -1))
        return trie

    full = {id(draining): template(draining, old_rows), id(idle): template(idle, fresh_rows)}

    def refill(cache: Any) -> None:
        cache._trie = full[id(cache)].copy()
        assert len(cache._trie) == small

    def cache_put_then(cache: Any) -> Callable[[int], int]:
        def run(r: int) -> int:
            refill(cache)
            keys = readme_keys(range(probes), per, "new/")
            return awaited(lambda k: cache.put(k, fresh_rows), keys)

        return run

    alternate(
        "put that expires 2",
        [("without", cache_put_then(idle)), ("with", cache_put_then(draining))],
    )

    def cache_get_then(cache: Any, keys: Sequence[str]) -> Callable[[int], int]:
        def run(r: int) -> int:
            refill(draining)
            return awaited(cache.get, keys[:probes])

        return run

    absent = readme_keys(range(small), per, "absent/")
    alternate(
        "get that expires 1",
        [("without", cache_get_then(draining, absent)), ("with", cache_get_then(draining, have))],
    )
    loop.close()
    if hasattr(MemCache, "remove_expired"):  # a tree with expiry: it did expire
        assert draining.stats().expirations > 0

    print(f"bench_expiry: core={trie_cache.CORE}; {total:,} keys, best of {rounds} x {probes:,}")
    labels = {
        "put that expires 2": ("expires none", "expires 2"),
        "get that expires 1": ("miss, absent", "miss, removes"),
    }
    print(f"{'operation':24} {'without':>14} {'with':>14} {'ratio':>7}")
    for case in (
        "trie get, hit",
        "trie put, new key",
        "MemCache.get, hit",
        "MemCache.put, new key",
        "put that expires 2",
        "get that expires 1",
    ):
        a = best[(case, "without")] / probes
        b = best[(case, "with")] / probes
        left, right = labels.get(case, ("", ""))
        print(f"{case:24} {a:9.1f} ns/op {b:9.1f} ns/op {b / a:6.2f}x  {left} / {right}".rstrip())
    print("without/with: RadixTrie() / RadixTrie(expired=...), MemCache() / MemCache(max_age=3600)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
