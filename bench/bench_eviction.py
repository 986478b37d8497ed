#!/usr/bin/env python
"""Bounded caches (issue 10): miss ratios against LRU and a reference SIEVE, the cost of the
bound on get and put, memory per entry, a byte bound's real footprint, and a soak.

    python bench/bench_eviction.py [--core cython|python] [--quick] [--only SECTIONS]
                                   [--keys N] [--soak [--soak-ops N]]

Sections (``--only misses,speed,memory,bytes``; all by default):

* misses: ``MemCache(max_entries=k)`` replays a seeded Zipf(1.0) stream of 1,000,000 reads
  over 100,000 keys (a miss is filled by a put), k = 1% and 10% of the keys, beside an LRU
  (an ``OrderedDict``), SIEVE as its paper describes it and S3-FIFO, all simulated here by
  :mod:`trie_cache.bench.hitratio`; then a loop over k + 1 keys. Targets: at least 15% fewer
  misses than the LRU, within 1% (relative) of the reference SIEVE, the loop no worse than LRU.
* speed: a ``RadixTrie`` with ``max_entries`` against an unbounded one holding the same
  ``--keys`` keys (the README's shape, default 1,000,000), in this process, rounds alternating:
  get (hit), put (replace), put (new key: the bounded trie is full, so each put evicts), and
  ``await MemCache.get`` bounded against unbounded. Targets: get ≤ 1.1x, put ≤ 1.3x.
* memory: RSS growth per entry of a fresh subprocess holding ``--keys`` keys, keys included:
  ``dict``, the unbounded trie, the bounded one, and an unbounded one with ``expired`` (the
  queue ``MemCache(max_age=...)`` keeps for expiry). Target: bounded ≤ 0.65x the dict.
* bytes: a fresh subprocess fills ``MemCache(max_bytes=64 MiB)`` with 1,000,000 distinct pages
  of about 1 KiB of rows; its RSS may grow by at most 1.5 x 64 MiB. Also how ``nbytes``
  compares with what ``tracemalloc`` sees for the same rows.
* ``--soak``: :mod:`trie_cache.bench.soak` in a fresh subprocess, 10,000,000 operations with
  ``max_entries=100_000``: the RSS must stay flat after the warm-up.

Times are this thread's CPU time, best of the rounds; every ratio is taken within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

# trie_cache picks its core when first imported: every import of it here comes after main()
# applies --core.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIB = 1 << 20
TENANTS = 10
SEED = 11
SECTIONS = ("misses", "speed", "memory", "bytes")


def select_core(name: str) -> None:
    """Make ``import trie_cache`` pick core ``name`` (before the first import)."""
    os.environ["TRIE_CACHE_PURE_PYTHON"] = "1" if name == "python" else "0"


def child_env(core: str) -> dict[str, str]:
    env = dict(os.environ)
    env["TRIE_CACHE_PURE_PYTHON"] = "1" if core == "python" else "0"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    return env


# --------------------------------------------------------------------------- verdicts


@dataclass
class Verdict:
    name: str
    figure: str
    target: str
    passed: bool


VERDICTS: list[Verdict] = []


def judge(name: str, figure: str, target: str, passed: bool) -> str:
    VERDICTS.append(Verdict(name, figure, target, passed))
    return "PASS" if passed else "MISS"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = "  ".join(
        h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths))
    )
    print(line)
    print("-" * len(line))
    for r in rows:
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))
            )
        )


# --------------------------------------------------------------------------- misses


def section_misses() -> None:
    from trie_cache.bench import hitratio as hr

    # The targets are for this stream; --quick shortens the other sections only (a shorter
    # stream has a larger share of first reads, which every policy misses).
    keys, requests = 100_000, 1_000_000
    zipf = hr.zipf_stream(keys, requests, alpha=1.0)
    print(f"Miss ratio: {zipf.description}; seeded; a miss is filled by a put.")
    systems: list[type[Any]] = [
        hr.BoundedMemCache,
        hr.BoundedRadix,
        hr.LruModel,
        hr.SieveModel,
        hr.S3FifoModel,
    ]
    value = _rows_value()
    for capacity in (keys // 100, keys // 10):
        misses: dict[str, int] = {}
        extra: dict[str, str] = {}
        for cls in systems:
            system = cls(capacity)
            try:
                hits = system.mixed(zipf.ops, value)
                misses[cls.name] = zipf.reads - hits
                held = system.count()
                if cls is hr.BoundedMemCache:
                    stats = system.cache.stats()
                    extra[cls.name] = (
                        f"held {held:,}, evictions {stats.evictions:,} "
                        f"(puts - held = {misses[cls.name] - held:,})"
                    )
                    if held > capacity or stats.evictions != misses[cls.name] - held:
                        raise AssertionError(f"bound or eviction count wrong: {extra[cls.name]}")
            finally:
                system.close()
        lru, sieve = misses["lru-model"], misses["sieve-model"]
        rows = []
        for cls in systems:
            m = misses[cls.name]
            rows.append(
                [
                    cls.title,
                    f"{m:,}",
                    f"{100 * m / zipf.reads:.2f}%",
                    f"{m / lru:.3f}",
                    f"{m / sieve - 1:+.2%}",
                ]
            )
        print()
        print(f"k = {capacity:,} ({100 * capacity / keys:g}% of the keys)")
        table(["system", "misses", "miss ratio", "vs LRU", "vs SIEVE model"], rows)
        print(f"  MemCache: {extra['memcache-bounded']}")
        mine = misses["memcache-bounded"]
        fewer = 1 - mine / lru
        off = abs(mine / sieve - 1)
        print(
            f"  target: >= 15% fewer misses than LRU: {fewer:.1%} "
            + judge(f"misses vs LRU, k={capacity:,}", f"{fewer:.1%} fewer", ">= 15%", fewer >= 0.15)
        )
        print(
            f"  target: within 1% of the SIEVE model: {off:.2%} "
            + judge(f"misses vs SIEVE model, k={capacity:,}", f"{off:.2%}", "<= 1%", off <= 0.01)
        )
    print()
    for capacity in (keys // 100, keys // 10):
        loop = hr.loop_stream(capacity + 1, 20 * (capacity + 1))
        counts = {}
        for cls in (hr.BoundedMemCache, hr.LruModel, hr.SieveModel, hr.S3FifoModel):
            system = cls(capacity)
            try:
                counts[cls.title] = loop.reads - system.mixed(loop.ops, value)
            finally:
                system.close()
        mine, lru = counts[hr.BoundedMemCache.title], counts[hr.LruModel.title]
        cells = ", ".join(f"{t} {100 * m / loop.reads:.1f}%" for t, m in counts.items())
        print(f"Loop over k+1 = {capacity + 1:,} keys, {loop.reads:,} reads; miss ratio: {cells}")
        print(
            "  target: no worse than LRU "
            + judge(
                f"loop k+1, k={capacity:,}",
                f"{100 * mine / loop.reads:.1f}% vs {100 * lru / loop.reads:.1f}%",
                "<= LRU",
                mine <= lru,
            )
        )


def _rows_value() -> Any:
    from trie_cache import CachedRows

    return CachedRows({"r1": {"id": 1, "name": "row 1"}}, fetched_at=0.0)


# --------------------------------------------------------------------------- speed

now = time.thread_time_ns


def readme_keys(indices: Sequence[int], per_tenant: int) -> list[str]:
    """The README's key shape: half ``clients/page_{i}``, half ``orders/id/{i:08d}``."""
    half = per_tenant // 2
    return [
        f"tenant_{j // per_tenant:05d}/clients/page_{j % per_tenant}"
        if j % per_tenant < half
        else f"tenant_{j // per_tenant:05d}/orders/id/{j % per_tenant - half:08d}"
        for j in indices
    ]


def new_keys(total: int, start: int, count: int, rng: random.Random) -> list[str]:
    """``count`` keys never stored, of the README's shapes, spread over the tenants at random
    and in random order (so a put lands anywhere in the trie, as a stored key's would)."""
    per = total // TENANTS
    half = per // 2
    keys = []
    for n in range(start, start + count):
        tenant = rng.randrange(TENANTS)
        if n % 2:
            keys.append(f"tenant_{tenant:05d}/clients/page_{half + n}")
        else:
            keys.append(f"tenant_{tenant:05d}/orders/id/{half + n:08d}")
    rng.shuffle(keys)
    return keys


def loop_get(get: Callable[[str], Any], probes: Sequence[str]) -> None:
    for k in probes:
        get(k)


def loop_set(mapping: Any, probes: Sequence[str], value: object) -> None:
    for k in probes:
        mapping[k] = value


def loop_set_del(mapping: Any, probes: Sequence[str], old: Sequence[str], value: object) -> None:
    for k, gone in zip(probes, old):
        mapping[k] = value
        del mapping[gone]


def timed(fn: Callable[..., Any], *args: Any) -> int:
    """Nanoseconds of this thread's CPU time one call of ``fn(*args)`` takes, GC paused."""
    from trie_cache.bench import toolkit

    return round(1e9 * toolkit.timed(fn, *args, clock=time.thread_time)[0])


async def _await_loop(aget: Callable[[str], Awaitable[Any]], probes: Sequence[str]) -> int:
    t0 = now()
    for k in probes:
        await aget(k)
    return now() - t0


def section_speed(total: int, rounds: int, probes: int) -> None:
    from trie_cache import MemCache, RadixTrie
    from trie_cache.bench.toolkit import gc_paused

    per = total // TENANTS
    probes = min(probes, total)
    rng = random.Random(SEED)
    order = list(range(total))
    rng.shuffle(order)
    value = object()
    free: Any = RadixTrie()
    bound: Any = RadixTrie(max_entries=total)
    for trie in (free, bound):
        loop_set(trie, readme_keys(order, per), value)
    assert len(free) == len(bound) == total
    samples = [rng.sample(range(total), probes) for _ in range(rounds)]
    best: dict[tuple[str, str], int] = {}

    def record(case: str, side: str, ns: int) -> None:
        best[(case, side)] = min(best.get((case, side), sys.maxsize), ns)

    sides = (("unbounded", free), ("bounded", bound))
    for r, sample in enumerate(samples):
        for side, trie in sides if r % 2 == 0 else sides[::-1]:
            record("get, hit", side, timed(loop_get, trie.get, readme_keys(sample, per)))
    other = object()
    for r, sample in enumerate(samples):
        for side, trie in sides if r % 2 == 0 else sides[::-1]:
            record("put, replace", side, timed(loop_set, trie, readme_keys(sample, per), other))
    assert len(free) == len(bound) == total
    # New keys past the stored ones. "roomy" has a bound it never reaches (the bookkeeping
    # alone); the full bounded trie evicts one entry a put; "put+del" is what an unbounded
    # trie kept at its size by hand would do: each put followed by the delete of an old key.
    roomy: Any = RadixTrie(max_entries=2 * total)
    loop_set(roomy, readme_keys(order, per), value)
    # put+del gets a trie of its own: run on the unbounded one, it walked (and deleted) the
    # round's keys there just before the unbounded put on every other round, which then found
    # their paths in the CPU caches and set the baseline too low.
    spare: Any = RadixTrie()
    loop_set(spare, readme_keys(order, per), value)
    contenders = (("unbounded", free), ("roomy", roomy), ("bounded", bound), ("put+del", spare))
    for r in range(rounds):
        fresh = new_keys(total, r * probes, probes, rng)
        old = readme_keys([order[(r * probes + i) % total] for i in range(probes)], per)
        for side, trie in contenders if r % 2 == 0 else contenders[::-1]:
            keys = [k[:1] + k[1:] for k in fresh]  # new string objects, hash not cached
            if side == "put+del":
                record("put, new key", side, timed(loop_set_del, trie, keys, old, value))
                loop_set(trie, old, value)
            else:
                record("put, new key", side, timed(loop_set, trie, keys, value))
            if side != "bounded":
                for k in fresh:
                    del trie[k]
    assert len(free) == len(bound) == len(roomy) == total
    evicted = total - sum(1 for k in readme_keys(range(total), per) if k in bound)
    del free, bound, roomy, spare
    gc.collect()

    rows_value = _rows_value()
    loop = asyncio.new_event_loop()
    try:
        caches = (("unbounded", MemCache()), ("bounded", MemCache(max_entries=total)))
        keys = readme_keys(order, per)
        for _, cache in caches:
            for k in keys:
                cache._trie[k] = rows_value  # the fill is not what is measured
        del keys
        for r, sample in enumerate(samples):
            for side, cache in caches if r % 2 == 0 else caches[::-1]:
                probe = readme_keys(sample, per)
                with gc_paused():
                    ns = loop.run_until_complete(_await_loop(cache.get, probe))
                record("await MemCache.get, hit", side, ns)
    finally:
        loop.close()
    del caches

    print(
        f"Speed: {total:,} keys of the README's shape, best of {rounds} rounds of {probes:,} "
        f"fresh probe strings, CPU time; bounded = max_entries={total:,}"
    )
    limits = {"get, hit": 1.1, "put, replace": 1.3, "put, new key": 1.3}
    rows = []
    for case in ("get, hit", "put, replace", "put, new key", "await MemCache.get, hit"):
        a, b = best[(case, "unbounded")] / probes, best[(case, "bounded")] / probes
        ratio = b / a
        limit = limits.get(case)
        title = "put, new key (evicts)" if case == "put, new key" else case
        verdict = (
            "" if limit is None else judge(title, f"{ratio:.2f}x", f"<= {limit}x", ratio <= limit)
        )
        rows.append(
            [
                title,
                f"{a:.1f} ns",
                f"{b:.1f} ns",
                f"{ratio:.2f}x",
                f"<= {limit}x" if limit else "",
                verdict,
            ]
        )
        if case == "put, new key":
            c = best[(case, "roomy")] / probes
            verdict = judge(
                "put, new key (bound not reached)", f"{c / a:.2f}x", "<= 1.3x", c / a <= 1.3
            )
            rows.append(
                [
                    "  bound not reached",
                    f"{a:.1f} ns",
                    f"{c:.1f} ns",
                    f"{c / a:.2f}x",
                    "<= 1.3x",
                    verdict,
                ]
            )
            c = best[(case, "put+del")] / probes
            rows.append(
                ["  unbounded put + del", f"{a:.1f} ns", f"{c:.1f} ns", f"{c / a:.2f}x", "", ""]
            )
    table(["operation", "unbounded", "bounded", "ratio", "target", ""], rows)
    print(
        f"  put, new key (evicts): the bounded trie is full, so each of these puts evicts one "
        f"entry ({evicted:,} of the first {total:,} keys evicted over the rounds); bound not "
        f"reached: RadixTrie(max_entries={2 * total:,}) holding the same keys; unbounded put + "
        "del: each put followed by the delete of an old key, on a second unbounded trie. New keys "
        "are deleted after each round (untimed) but in the full bounded trie."
    )


# --------------------------------------------------------------------------- memory


def memory_child(kind: str, total: int) -> None:
    """In a fresh process: print the RSS growth per entry of one structure."""
    from trie_cache import RadixTrie
    from trie_cache.bench.toolkit import rss_bytes

    per = total // TENANTS
    half = per // 2
    order = list(range(total))
    random.Random(SEED).shuffle(order)
    value = object()
    gc.collect()
    before = rss_bytes()
    mapping: Any = {}
    if kind == "trie":
        mapping = RadixTrie()
    elif kind == "bounded":
        mapping = RadixTrie(max_entries=total)
    elif kind == "expiring":
        mapping = RadixTrie(expired=lambda value: False)
    for j in order:
        if j % per < half:
            mapping[f"tenant_{j // per:05d}/clients/page_{j % per}"] = value
        else:
            mapping[f"tenant_{j // per:05d}/orders/id/{j % per - half:08d}"] = value
    gc.collect()
    after = rss_bytes()
    assert len(mapping) == total
    print((after - before) / total)


def section_memory(core: str, total: int, runs: int) -> None:
    def measure(kind: str) -> float:
        out = subprocess.run(
            [sys.executable, __file__, "--memory-child", kind, "--keys", str(total)],
            check=True,
            capture_output=True,
            text=True,
            env=child_env(core),
        )
        return float(out.stdout.strip())

    kinds = ("dict", "trie", "bounded", "expiring")
    figures = {kind: [measure(kind) for _ in range(runs)] for kind in kinds}
    d = min(figures["dict"])
    print(
        f"Memory per entry: RSS growth of a fresh process holding {total:,} keys of the README's "
        f"shape (one shared value; the dict keeps its key strings), best of {runs}"
    )
    rows = []
    for kind, title in (
        ("dict", "dict"),
        ("trie", "RadixTrie()"),
        ("bounded", f"RadixTrie(max_entries={total:,})"),
        ("expiring", "RadixTrie(expired=...)"),
    ):
        b = min(figures[kind])
        verdict = ""
        if kind == "bounded":
            verdict = judge(
                "memory per entry, bounded", f"{b / d:.2f}x dict", "<= 0.65x", b / d <= 0.65
            )
        rows.append(
            [title, f"{b:.1f} B", f"{b / d:.2f}x", "<= 0.65x" if kind == "bounded" else "", verdict]
        )
    table(["structure", "per entry", "vs dict", "target", ""], rows)


# --------------------------------------------------------------------------- bytes

PAGE_RECORDS = 2


def make_page(n: int) -> Any:
    """Page ``n``: 2 records of distinct values, about 1 KiB of rows in this process."""
    from trie_cache import CachedRows

    return CachedRows(
        {
            f"{n}-{j}": {
                "id": n * PAGE_RECORDS + j,
                "name": f"customer {n:08d}/{j}",
                "score": n / (j + 1.5),
                "active": j % 2 == 0,
            }
            for j in range(PAGE_RECORDS)
        },
        fetched_at=1_700_000_000.0 + n,
    )


def peak_rss() -> int:
    """The most this process has held resident (``VmHWM``; ``ru_maxrss`` would carry the
    parent's peak over the exec of a child on Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def bytes_child(pages: int, limit: int) -> None:
    """In a fresh process: fill MemCache(max_bytes=limit) with ``pages`` pages; print JSON."""
    import tracemalloc

    from trie_cache import MemCache
    from trie_cache.bench.toolkit import rss_bytes

    # What nbytes says against what tracemalloc sees, on a sample of pages built the same way.
    sample = 2_000
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    built = [make_page(n) for n in range(pages, pages + sample)]
    traced = (tracemalloc.get_traced_memory()[0] - base) / sample
    tracemalloc.stop()
    said = sum(rows.nbytes for rows in built) / sample
    del built
    gc.collect()

    cache = MemCache(max_bytes=limit)
    key_bytes = len(f"page/{0:09d}".encode())
    gc.collect()
    before = rss_bytes()

    async def fill() -> None:
        put = cache.put
        for n in range(pages):
            await put(f"page/{n:09d}", make_page(n))

    start = time.perf_counter()
    asyncio.run(fill())
    seconds = time.perf_counter() - start
    gc.collect()
    after = rss_bytes()
    peak = peak_rss()
    stats = cache.stats()
    print(
        json.dumps(
            {
                "growth": after - before,
                "peak_growth": peak - before,
                "nbytes": cache.nbytes,
                "entries": len(cache),
                "evictions": stats.evictions,
                "oversized": stats.oversized,
                "traced_per_page": traced,
                "nbytes_per_page": said,
                "key_bytes": key_bytes,
                "seconds": seconds,
            }
        )
    )


def section_bytes(core: str, pages: int, runs: int) -> None:
    limit = 64 * MIB
    results = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, __file__, "--bytes-child", str(pages)],
            check=True,
            capture_output=True,
            text=True,
            env=child_env(core),
        )
        results.append(json.loads(out.stdout))
    growth = [r["growth"] / limit for r in results]
    last = results[-1]
    print(
        f"Byte bound: a fresh process fills MemCache(max_bytes=64 MiB) with {pages:,} distinct "
        f"pages of {PAGE_RECORDS} records ({last['nbytes_per_page']:.0f} B of rows by nbytes); "
        f"{runs} run(s)"
    )
    print(
        f"  held {last['entries']:,} entries, nbytes {last['nbytes'] / MIB:.1f} MiB, "
        f"{last['evictions']:,} evictions, {last['oversized']} oversized, fill {last['seconds']:.1f} s"
    )
    print(
        f"  RSS growth {', '.join(f'{g:.2f}' for g in growth)} x 64 MiB "
        f"(peak {max(r['peak_growth'] for r in results) / MIB:.1f} MiB); per entry held: "
        f"{last['growth'] / max(1, last['entries']):.0f} B against "
        f"{last['nbytes'] / max(1, last['entries']):.0f} B counted"
    )
    print(
        f"  nbytes against tracemalloc, per page built: {last['nbytes_per_page']:.0f} B counted, "
        f"{last['traced_per_page']:.0f} B allocated ({last['nbytes_per_page'] / last['traced_per_page'] - 1:+.1%}); "
        f"the trie's own node and queue per entry are not in nbytes"
    )
    worst = max(growth)
    print(
        "  target: RSS growth <= 1.5 x 64 MiB: "
        + judge("max_bytes RSS growth", f"{worst:.2f}x", "<= 1.5x", worst <= 1.5)
    )


# --------------------------------------------------------------------------- soak


def section_soak(core: str, ops: int, max_entries: int) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "trie_cache.bench.soak",
            "--ops",
            str(ops),
            "--max-entries",
            str(max_entries),
            "--json",
        ],
        check=True,
        capture_output=True,
        text=True,
        env=child_env(core),
        cwd=ROOT,
    )
    r = json.loads(out.stdout)
    warm = next(rss for done, rss, _ in r["samples"] if done >= r["warmup_ops"])
    after = [rss for done, rss, _ in r["samples"] if done >= r["warmup_ops"]]
    start = r["samples"][0][1]
    growth = max(after) - after[0]
    allowed = max(4 * MIB, 0.05 * (warm - start))
    print(
        f"Soak: {ops:,} mixed ops over ever-new keys, MemCache(max_entries={max_entries:,}): "
        f"{r['puts']:,} puts, {r['evictions']:,} evictions, {r['invalidations']:,} "
        f"invalidations, most entries held {r['most_entries']:,}, {r['seconds']:.0f} s"
    )
    trace = " ".join(
        f"{(rss - start) / MIB:.0f}"
        for _, rss, _ in r["samples"][:: max(1, len(r["samples"]) // 10)]
    )
    print(f"  RSS above the start, MiB, every tenth sample: {trace}")
    print(
        f"  after the warm-up ({r['warmup_ops']:,} ops, RSS +{(warm - start) / MIB:.1f} MiB): "
        f"+{growth / MIB:.2f} MiB; bound held: {r['most_entries'] <= max_entries}"
    )
    print(
        f"  target: flat after the warm-up (<= {allowed / MIB:.1f} MiB more) "
        + judge(
            "soak RSS after warm-up",
            f"+{growth / MIB:.2f} MiB",
            f"<= {allowed / MIB:.1f} MiB",
            growth <= allowed and r["most_entries"] <= max_entries,
        )
    )


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--core", choices=("cython", "python"), default="cython")
    p.add_argument(
        "--quick",
        action="store_true",
        help="fewer rounds and runs, 200,000 pages for the byte bound",
    )
    p.add_argument(
        "--only", default=",".join(SECTIONS), help=f"sections, from {','.join(SECTIONS)}"
    )
    p.add_argument("--keys", type=int, default=1_000_000, help="keys for speed and memory")
    p.add_argument("--rounds", type=int, default=None, help="speed rounds (default 15, quick 5)")
    p.add_argument("--probes", type=int, default=20_000)
    p.add_argument("--pages", type=int, default=1_000_000, help="pages for the byte bound")
    p.add_argument("--soak", action="store_true", help="also run the soak")
    p.add_argument("--soak-ops", type=int, default=10_000_000)
    p.add_argument("--soak-entries", type=int, default=100_000)
    p.add_argument(
        "--memory-child", choices=("dict", "trie", "bounded", "expiring"), help=argparse.SUPPRESS
    )
    p.add_argument("--bytes-child", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    for s in args.only:
        if s not in SECTIONS:
            p.error(f"unknown section {s!r}; known: {', '.join(SECTIONS)}")
    if args.rounds is None:
        args.rounds = 5 if args.quick else 15
    if args.keys < 2 * TENANTS or args.keys % TENANTS:
        p.error(f"--keys must be a multiple of {TENANTS}, at least {2 * TENANTS}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    select_core(args.core)
    if args.memory_child:
        memory_child(args.memory_child, args.keys)
        return 0
    if args.bytes_child:
        bytes_child(args.bytes_child, 64 * MIB)
        return 0
    import trie_cache

    if trie_cache.CORE != args.core:
        raise SystemExit(f"trie_cache picked the {trie_cache.CORE} core, not {args.core}")
    started = time.monotonic()
    from trie_cache.bench.toolkit import machine_line

    print(f"bench_eviction: core={trie_cache.CORE}; {machine_line()}")
    pages = min(args.pages, 200_000) if args.quick else args.pages
    steps: list[tuple[str, Callable[[], None]]] = [
        ("misses", section_misses),
        ("speed", lambda: section_speed(args.keys, args.rounds, args.probes)),
        ("memory", lambda: section_memory(args.core, args.keys, 1 if args.quick else 3)),
        ("bytes", lambda: section_bytes(args.core, pages, 1 if args.quick else 2)),
    ]
    for name, step in steps:
        if name in args.only:
            print()
            step()
    if args.soak:
        print()
        section_soak(args.core, args.soak_ops, args.soak_entries)
    print()
    passed = sum(v.passed for v in VERDICTS)
    missed = [f"{v.name} ({v.figure}, target {v.target})" for v in VERDICTS if not v.passed]
    print(
        f"Targets: {passed}/{len(VERDICTS)} PASS"
        + (f"; MISS: {'; '.join(missed)}" if missed else "")
        + f" (run took {time.monotonic() - started:,.0f} s, load average now {os.getloadavg()[0]:.2f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
