"""A soak of a bounded ``MemCache``: mixed operations over ever-new keys, RSS sampled.

Every put stores a new key with a new value, so an unbounded cache, or a bounded one that
leaks what it evicts or invalidates, grows for as long as the soak runs. The operations,
drawn from a seeded generator:

* 55% gets of a key put recently (within the last ``2 * max_entries`` puts: hits, or
  misses where the entry was evicted or invalidated);
* 5% gets of a key never put (misses);
* 39.99% puts of the next new key, ``s{n // 1000:07d}/k{n % 1000:03d}``, each with a new
  :class:`~trie_cache.CachedRows`;
* 0.01% invalidations of the prefix ``s{...}/`` of a recent block of 1,000 keys (about a
  quarter of the blocks are dropped before they would be evicted).

The resident set size is read every ``ops // samples`` operations. After the warm-up (the
first ``warmup`` share of the operations, by which time the cache has been full for a
while), the RSS should stay flat: :attr:`SoakResult.growth` is the largest RSS seen after
the warm-up minus the RSS at its end.

Run as ``python -m trie_cache.bench.soak [--ops N] [--max-entries N]``; ``bench/bench_eviction.py
--soak`` runs it in a fresh subprocess and ``tests/test_soak.py`` runs a short one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from .toolkit import rss_bytes

__all__ = ["SoakResult", "main", "soak"]

BLOCK = 1_000


@dataclass
class SoakResult:
    core: str
    ops: int
    max_entries: int
    warmup_ops: int
    #: (operations done, RSS in bytes, entries held) at each sample, the start included
    samples: list[tuple[int, int, int]] = field(default_factory=list)
    puts: int = 0
    hits: int = 0
    misses: int = 0
    invalidations: int = 0
    evictions: int = 0
    #: most entries seen at any sample (the bound must hold)
    most_entries: int = 0
    seconds: float = 0.0

    @property
    def warm_rss(self) -> int:
        """RSS at the first sample at or after the warm-up."""
        return next(rss for done, rss, _ in self.samples if done >= self.warmup_ops)

    @property
    def growth(self) -> int:
        """Largest RSS after the warm-up minus the RSS when it ended."""
        after = [rss for done, rss, _ in self.samples if done >= self.warmup_ops]
        return max(after) - after[0]

    @property
    def start_growth(self) -> int:
        """Largest RSS seen minus the RSS before the first operation."""
        return max(rss for _, rss, _ in self.samples) - self.samples[0][1]


def _key(n: int) -> str:
    return f"s{n // BLOCK:07d}/k{n % BLOCK:03d}"


async def _run(result: SoakResult, seed: int, samples: int) -> None:
    from .. import CachedRows, MemCache

    cache = MemCache(max_entries=result.max_entries)
    get, put, drop = cache.get, cache.put, cache.invalidate_prefix
    rng = random.Random(seed)
    draw = rng.random
    below = rng.randrange
    window = 2 * result.max_entries
    every = max(1, result.ops // samples)
    result.samples.append((0, rss_bytes(), 0))
    made = 0
    hits = misses = 0
    start = time.perf_counter()
    for done in range(1, result.ops + 1):
        u = draw()
        if u < 0.55:
            if made and await get(_key(made - 1 - below(min(made, window)))) is not None:
                hits += 1
            else:
                misses += 1
        elif u < 0.60:
            if await get(_key(made + 10 * window + below(window))) is not None:
                raise AssertionError("a key never put was found")
            misses += 1
        elif u < 0.9999:
            await put(_key(made), CachedRows({"r": {"n": made}}, fetched_at=float(made)))
            made += 1
        else:
            block = (made - below(min(made, window) + 1)) // BLOCK
            await drop(f"s{max(block, 0):07d}/")
            result.invalidations += 1
        if done % every == 0:
            held = len(cache)
            result.most_entries = max(result.most_entries, held)
            result.samples.append((done, rss_bytes(), held))
    result.seconds = time.perf_counter() - start
    result.puts = made
    result.hits, result.misses = hits, misses
    result.evictions = int(cache.stats().evictions)


def soak(
    ops: int, max_entries: int, warmup: float = 0.2, samples: int = 40, seed: int = 5
) -> SoakResult:
    """Run the soak in this process; see the module's docstring."""
    from .._core import CORE

    result = SoakResult(CORE, ops, max_entries, int(ops * warmup))
    asyncio.run(_run(result, seed, samples))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m trie_cache.bench.soak", description=__doc__)
    p.add_argument("--ops", type=int, default=10_000_000)
    p.add_argument("--max-entries", type=int, default=100_000)
    p.add_argument("--warmup", type=float, default=0.2, help="share of ops before RSS is judged")
    p.add_argument("--samples", type=int, default=40)
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = p.parse_args(argv)
    result = soak(args.ops, args.max_entries, args.warmup, args.samples)
    if args.json:
        print(json.dumps(asdict(result)))
        return 0
    mib = 1 << 20
    print(
        f"soak ({result.core} core): {result.ops:,} ops, max_entries={result.max_entries:,}, "
        f"{result.puts:,} puts, {result.evictions:,} evictions, {result.invalidations:,} "
        f"invalidations, hit ratio {result.hits / max(1, result.hits + result.misses):.1%}, "
        f"{result.seconds:.1f} s"
    )
    print(
        f"RSS: +{result.start_growth / mib:.1f} MiB from the start; after the warm-up "
        f"({result.warmup_ops:,} ops) +{result.growth / mib:.2f} MiB; most entries held "
        f"{result.most_entries:,}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
