#!/usr/bin/env python
"""``LmdbCache`` against raw ``lmdb`` + ``cbor2`` and against ``diskcache``, in one run.

    python bench/bench_lmdb.py [--keys 100000] [--probes 20000] [--puts 200] [--rounds 5]
                               [--no-diskcache]

Three stores hold the same ``--keys`` keys, ``tenant_{t:05d}/clients/page_{i}`` in 5 tenants,
each value a page of 10 rows with the same three scalar fields (about 400 bytes of CBOR),
plus a tenth as many keys for each other kind of page: "sparse" (odd rows have a fourth
field), "reordered" (odd rows list their fields in reverse) and "nested" (a list and a map
in every record). ``LmdbCache`` stores pages in its table form; raw and diskcache store
``cbor2.dumps`` of the plain ``[1, fetched_at, {row_id: record}]``, which is ``to_cbor()``.
The contenders:

* ``LmdbCache`` (``durable=True``);
* raw: one LMDB environment (``sync=True``), key ``k.encode()``, value ``cbor2.dumps`` of the
  plain payload, one transaction per operation -- what a user of the two packages writes;
* ``diskcache.Cache`` storing the same CBOR bytes (its SQLite runs in WAL mode with
  ``synchronous=NORMAL``, so its commits are not synced: a gentler durability).

Figures, each the best of ``--rounds`` (the contenders alternate inside every round):

* one page of each kind: size and ``cbor2.loads`` time of ``to_cbor()`` and of what ``put``
  stores (including the trailer), and the time to encode each.
* get, hit / miss and a hit of each other kind: ``--probes`` random keys in a loop on the
  event loop thread, per call, in thread CPU time (all three read inline). Raw decodes with ``cbor2.loads``; "raw +
  from_cbor" also builds the ``CachedRows`` that ``LmdbCache.get`` returns. Then, in wall
  time, 2,000 of those reads inline against the same read sent to the default executor
  (what reading off the loop would cost).
* invalidate one tenant (20% of the keys): ``await invalidate_prefix(p)`` against a raw
  cursor range delete (``set_range`` then ``delete`` while the key starts with ``p``) in one
  synced transaction, and ``diskcache``'s ``evict(tag)`` with the tenant as tag. Wall time.
* put: ``--puts`` puts awaited one after the other (one transaction each), and 100 tasks
  each putting ``--puts`` / 5 keys at once (group commit), against raw one transaction
  per put; puts per second, wall time. Also with ``durable=False`` / ``sync=False``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

import cbor2
import lmdb

from trie_cache import CachedRows, LmdbCache
from trie_cache._lmdb_format import encode_value
from trie_cache.bench.toolkit import (
    CLOCKS,
    Best,
    Column,
    Table,
    Target,
    format_ratio,
    format_time,
    format_value,
    machine_line,
    tenant_key,
    tenant_prefix,
    timed,
    timed_async,
)

TENANTS = 5
SEED = 7
TARGETS = {
    "get, hit": Target(1.2),  # LmdbCache / raw, at most
    "invalidate 20%": Target(1.0),  # LmdbCache / raw, at most
    "100 tasks put": Target(5.0, at_least=True),  # throughput / raw one txn per put
}
CPU, WALL = CLOCKS["cpu"], CLOCKS["wall"]


def cpu_time(fn: Callable[[], Any]) -> float:
    return timed(fn, clock=CPU, collect=True)[0]


def wall_time(fn: Callable[[], Any]) -> float:
    return timed(fn, clock=WALL, collect=True)[0]


async def cpu_time_async(fn: Callable[[], Awaitable[Any]]) -> float:
    return (await timed_async(fn, clock=CPU, collect=True))[0]


async def wall_time_async(fn: Callable[[], Awaitable[Any]]) -> float:
    return (await timed_async(fn, clock=WALL, collect=True))[0]


def page(n: int) -> CachedRows:
    return CachedRows(
        {
            f"row_{n}_{i}": {"id": n * 10 + i, "name": f"client {n}-{i}", "balance": i * 1.25}
            for i in range(10)
        },
        1_700_000_000.0 + n,
    )


def sparse_page(n: int) -> CachedRows:
    """A page whose odd rows have a field more (a column that is often left out)."""
    return CachedRows(
        {
            f"row_{n}_{i}": {"id": n * 10 + i, "name": f"client {n}-{i}", "balance": i * 1.25}
            | ({"note": f"n{i}"} if i % 2 else {})
            for i in range(10)
        },
        1_700_000_000.0 + n,
    )


def reordered_page(n: int) -> CachedRows:
    """A page whose odd rows list their fields in reverse order."""
    return CachedRows(
        {
            f"row_{n}_{i}": dict(
                list({"id": n * 10 + i, "name": f"client {n}-{i}", "balance": i * 1.25}.items())[
                    :: -1 if i % 2 else 1
                ]
            )
            for i in range(10)
        },
        1_700_000_000.0 + n,
    )


def nested_page(n: int) -> CachedRows:
    """A page whose records hold a list and a map (array and JSON columns)."""
    return CachedRows(
        {
            f"row_{n}_{i}": {
                "id": n * 10 + i,
                "name": f"client {n}-{i}",
                "tags": ["a", f"t{i}"],
                "address": {"city": f"city {i}", "zip": 10_000 + i},
            }
            for i in range(10)
        },
        1_700_000_000.0 + n,
    )


#: Page kinds besides the plain one, each under its own keys (a tenth as many).
OTHER_PAGES = {"sparse": sparse_page, "reordered": reordered_page, "nested": nested_page}


def plain(rows: CachedRows) -> list[Any]:
    """The payload raw users encode: the same CBOR as ``to_cbor``, from plain dicts."""
    return [1, rows.fetched_at, {k: dict(v) for k, v in rows.rows.items()}]


key = tenant_key
prefix = tenant_prefix


class Raw:
    """Raw lmdb + cbor2, one transaction per operation."""

    def __init__(self, path: Path, sync: bool) -> None:
        self.env = lmdb.open(str(path), map_size=1 << 30, sync=sync, metasync=sync)

    def fill(self, items: Sequence[tuple[str, bytes]]) -> None:
        with self.env.begin(write=True) as txn:
            for k, v in items:
                txn.put(k.encode(), v)

    def get_loop(self, probes: Sequence[str], decode: Callable[[bytes], Any] = cbor2.loads) -> None:
        begin = self.env.begin
        for k in probes:
            with begin() as txn:
                v = txn.get(k.encode())
            if v is not None:
                decode(v)

    def get_rows_loop(self, probes: Sequence[str]) -> None:
        """:meth:`get_loop` building what ``LmdbCache.get`` returns: a ``CachedRows``."""
        self.get_loop(probes, CachedRows.from_cbor)

    def put_loop(self, items: Sequence[tuple[str, Any]]) -> None:
        begin, dumps = self.env.begin, cbor2.dumps
        for k, payload in items:
            with begin(write=True) as txn:
                txn.put(k.encode(), dumps(payload))

    def invalidate(self, p: str) -> int:
        start = p.encode()
        removed = 0
        with self.env.begin(write=True) as txn:
            cursor = txn.cursor()
            if cursor.set_range(start):
                key_, delete = cursor.key, cursor.delete
                while key_().startswith(start):
                    delete()
                    removed += 1
        return removed


def fill_lmdb_cache_folder(path: Path, items: Sequence[tuple[str, CachedRows]]) -> None:
    """Write the cache's records directly (the bytes ``put`` writes), before it is opened."""
    LmdbCache(path).close()
    env = lmdb.open(str(path), max_dbs=2, map_size=1 << 30)
    db = env.open_db(b"rows")
    with env.begin(write=True, db=db) as txn:
        for k, rows in items:
            txn.put(*encode_value(k, rows))
    env.close()


#: Encodings and decodings of one page per timed loop in bench_page_forms.
PAGE_LOOPS = 2000


def _repeat(fn: Callable[[], Any], times: int) -> None:
    for _ in range(times):
        fn()


def bench_page_forms(rounds: int) -> None:
    """Per page kind: stored bytes and cbor2.loads time of to_cbor() against what put stores,
    and the time to encode each (CPU time per page, best of ``rounds``)."""
    kinds = {"plain": page, **OTHER_PAGES}
    rows_out = []
    for kind, make in kinds.items():
        rows = make(3)
        map_form = rows.to_cbor()
        _, stored = encode_value("k", rows)
        best = Best()
        for _ in range(rounds):
            contenders: list[tuple[str, Callable[[], Any]]] = [
                ("loads map", partial(cbor2.loads, map_form)),
                ("loads stored", partial(cbor2.loads, stored)),
                ("to_cbor", rows.to_cbor),
                ("encode_value", partial(encode_value, "k", rows)),
            ]
            for name, fn in contenders:
                seconds = cpu_time(partial(_repeat, fn, PAGE_LOOPS))
                best.add(name, seconds / PAGE_LOOPS)
        rows_out.append(
            (
                f"{kind}: to_cbor / stored",
                f"{len(map_form)} / {len(stored)} B",
                (
                    f"loads {format_time(best['loads map'])} / "
                    f"{format_time(best['loads stored'])}, encode "
                    f"{format_time(best['to_cbor'])} / {format_time(best['encode_value'])}"
                ),
            )
        )
    report("one page: the map form (to_cbor) against what put stores (CPU time)", rows_out)


def report(title: str, rows: list[tuple[str, str, str]]) -> None:
    table = Table([Column("", 42, "<"), Column("", 12), Column("", 1, "<")], indent="  ")
    for name, figure, note in rows:
        table.add(name, figure, " " + note)
    print(f"\n{title}")
    print("\n".join(table.lines(header=False)))


def versus(ratio: float, target: str | None = None) -> str:
    """``0.94x raw``, then ``target <= 1.2x raw: PASS`` if the figure has a target."""
    text = f"{format_ratio(ratio)} raw"
    if target is None:
        return text
    goal = TARGETS[target]
    return f"{text}  target {goal.text('raw')}: {'PASS' if goal.passes(ratio) else 'MISS'}"


async def main(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="bench_lmdb_"))
    try:
        return await run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


async def run(args: argparse.Namespace, tmp: Path) -> int:
    per_tenant = args.keys // TENANTS
    keys = [key(t, i) for t in range(TENANTS) for i in range(per_tenant)]
    pages = [page(n) for n in range(16)]
    page_items = [(k, pages[i % 16]) for i, k in enumerate(keys)]
    rng = random.Random(SEED)
    probes = {"hit": rng.sample(keys, min(args.probes, len(keys)))}
    probes["miss"] = [k.replace("page_", "page_x") for k in probes["hit"]]
    for kind, make in OTHER_PAGES.items():
        kind_pages = [make(n) for n in range(16)]
        kind_keys = [f"{kind}/page_{i}" for i in range(max(1, args.keys // 10))]
        page_items += [(k, kind_pages[i % 16]) for i, k in enumerate(kind_keys)]
        probes[f"{kind} hit"] = [rng.choice(kind_keys) for _ in probes["hit"]]
    hits = probes["hit"]
    # What raw and diskcache store: the CBOR of the plain payload (the same bytes as to_cbor).
    items = [(k, cbor2.dumps(plain(p))) for k, p in page_items]
    assert all(p.to_cbor() == b for (_, p), (_, b) in zip(page_items, items))
    print(
        f"bench_lmdb: {len(keys):,} keys (+{len(page_items) - len(keys):,} of other pages), "
        f"{args.probes:,} probes, best of {args.rounds}; "
        f"lmdb {lmdb.__version__} (LMDB {'.'.join(map(str, lmdb.version()))}), "
        f"cbor2 {metadata.version('cbor2')}"
    )
    print(machine_line())

    t_setup = time.perf_counter()
    fill_lmdb_cache_folder(tmp / "cache", page_items)
    raw = Raw(tmp / "raw", sync=True)
    raw.fill(items)
    dc: Any = None
    if args.diskcache:
        import diskcache  # type: ignore[import-untyped]

        dc = diskcache.Cache(str(tmp / "diskcache"), tag_index=True)
        with dc.transact():
            for k, v in items:
                dc.set(k, v, tag=k[: len(prefix(0))])
    print(f"(setup {time.perf_counter() - t_setup:.1f} s)")
    timer = Best()

    async with LmdbCache(tmp / "cache", durable=True) as cache:
        # -- get ----------------------------------------------------------------------
        async def cache_get(probes: Sequence[str]) -> None:
            get = cache.get
            for k in probes:
                await get(k)

        def dc_get(probes: Sequence[str]) -> None:
            get, loads = dc.get, cbor2.loads
            for k in probes:
                v = get(k)
                if v is not None:
                    loads(v)

        for _ in range(args.rounds):
            for kind, kind_probes in probes.items():
                contenders: list[tuple[str, Callable[[], Any], bool]] = [
                    (f"LmdbCache.get, {kind}", partial(cache_get, kind_probes), True),
                    (f"raw, {kind}", partial(raw.get_loop, kind_probes), False),
                    (f"raw + from_cbor, {kind}", partial(raw.get_rows_loop, kind_probes), False),
                ]
                if dc is not None:
                    contenders.append((f"diskcache, {kind}", partial(dc_get, kind_probes), False))
                random.shuffle(contenders)
                for name, fn, is_async in contenders:
                    seconds = await cpu_time_async(fn) if is_async else cpu_time(fn)
                    timer.add(name, seconds / len(kind_probes))

        rows_out = []
        for kind in probes:
            ours = timer[f"LmdbCache.get, {kind}"]
            base = timer[f"raw, {kind}"]
            target = "get, hit" if kind != "miss" else None
            rows_out.append(
                (f"LmdbCache.get, {kind}", format_time(ours), versus(ours / base, target))
            )
            rows_out.append((f"raw lmdb + cbor2, {kind}", format_time(base), versus(1.0)))
            rr = timer[f"raw + from_cbor, {kind}"]
            rows_out.append(
                (f"raw + CachedRows.from_cbor, {kind}", format_time(rr), versus(rr / base))
            )
            if dc is not None:
                d = timer[f"diskcache, {kind}"]
                rows_out.append((f"diskcache + cbor2, {kind}", format_time(d), versus(d / base)))
        report("get (thread CPU time per call)", rows_out)

        bench_page_forms(args.rounds)

        # -- inline against off-loop reads: why LmdbCache reads inline ----------------------
        loop = asyncio.get_running_loop()
        few = hits[:2000]

        async def inline() -> None:
            for k in few:
                await cache.get(k)

        async def off_loop() -> None:
            for k in few:
                await loop.run_in_executor(None, raw.get_rows_loop, (k,))

        for _ in range(args.rounds):
            timer.add("inline", await wall_time_async(inline) / len(few))
            timer.add("off-loop", await wall_time_async(off_loop) / len(few))
        ours, hop = timer["inline"], timer["off-loop"]
        report(
            "get, hit, inline against off the loop (wall time per call)",
            [
                ("LmdbCache.get (reads inline)", format_time(ours), format_ratio(1.0)),
                ("read + from_cbor in run_in_executor", format_time(hop), format_ratio(hop / ours)),
            ],
        )

        # -- invalidate one tenant ------------------------------------------------------
        tenant = 2
        p = prefix(tenant)
        tenant_items = items[tenant * per_tenant : (tenant + 1) * per_tenant]
        tenant_pages = [
            (k, pages[(tenant * per_tenant + i) % 16]) for i, (k, _) in enumerate(tenant_items)
        ]

        async def refill_cache() -> None:
            for start in range(0, len(tenant_pages), 2000):
                chunk = tenant_pages[start : start + 2000]
                await asyncio.gather(*(cache.put(k, v) for k, v in chunk))

        for _ in range(args.rounds):
            order = ["cache", "raw", "dc" if dc is not None else None]
            random.shuffle(order)
            for who in order:
                if who == "cache":
                    await refill_cache()
                    removed = 0

                    async def inv() -> None:
                        nonlocal removed
                        removed = await cache.invalidate_prefix(p)

                    timer.add("inv cache", await wall_time_async(inv))
                    assert removed == per_tenant, removed
                elif who == "raw":
                    raw.fill(tenant_items)
                    timer.add("inv raw", wall_time(lambda: raw.invalidate(p)))
                elif who == "dc":
                    with dc.transact():
                        for k, v in tenant_items:
                            dc.set(k, v, tag=p)
                    timer.add("inv dc", wall_time(lambda: dc.evict(p)))
        ours, base = timer["inv cache"], timer["inv raw"]
        rows_out = [
            (
                "LmdbCache.invalidate_prefix",
                format_time(ours),
                versus(ours / base, "invalidate 20%"),
            ),
            ("raw cursor range delete", format_time(base), versus(1.0)),
        ]
        if dc is not None:
            d = timer["inv dc"]
            rows_out.append(("diskcache evict(tag)", format_time(d), versus(d / base)))
        report(
            f"invalidate one tenant: {per_tenant:,} of {len(keys):,} keys (wall, synced commit)",
            rows_out,
        )

    # -- puts ---------------------------------------------------------------------------
    for durable in (True, False):
        await bench_puts(args, tmp, pages, dc, durable)
    if dc is not None:
        dc.close()
    raw.env.close()
    return 0


async def bench_puts(
    args: argparse.Namespace, tmp: Path, pages: list[CachedRows], dc: Any, durable: bool
) -> None:
    n = args.puts
    label = "durable=True / sync=True" if durable else "durable=False / sync=False"
    put_pages = [(f"put/{i}", pages[i % 16]) for i in range(n * 5)]
    put_plain = [(k, plain(v)) for k, v in put_pages]
    raw_p = Raw(tmp / f"raw_put_{durable}", sync=durable)
    best = Best()
    async with LmdbCache(tmp / f"cache_put_{durable}", durable=durable) as cache:

        async def sequential() -> None:
            for k, v in put_pages[:n]:
                await cache.put(k, v)

        async def concurrent() -> None:
            per_task = len(put_pages) // 100

            async def task(t: int) -> None:
                for k, v in put_pages[t * per_task : (t + 1) * per_task]:
                    await cache.put(k, v)

            await asyncio.gather(*(task(t) for t in range(100)))

        def dc_puts() -> None:
            for k, v in put_plain[:n]:
                dc.set(k, cbor2.dumps(v))

        for _ in range(max(1, args.rounds // 2)):
            best.add("raw", wall_time(lambda: raw_p.put_loop(put_plain[:n])) / n)
            best.add("seq", await wall_time_async(sequential) / n)
            best.add("conc", await wall_time_async(concurrent) / len(put_pages))
            if dc is not None:
                best.add("dc", wall_time(dc_puts) / n)
        batches = cache._store.batches
    raw_p.env.close()
    rate = {k: 1 / v for k, v in best.best.items()}
    raw_rate = rate["raw"]
    rows_out = [
        ("raw, one txn per put", format_value(raw_rate, "/s"), versus(1.0)),
        (
            "LmdbCache, one put at a time",
            format_value(rate["seq"], "/s"),
            versus(rate["seq"] / raw_rate),
        ),
        (
            "LmdbCache, 100 tasks at once",
            format_value(rate["conc"], "/s"),
            versus(rate["conc"] / raw_rate, "100 tasks put" if durable else None),
        ),
    ]
    if dc is not None:
        rows_out.append(
            (
                "diskcache, one set at a time",
                format_value(rate["dc"], "/s"),
                versus(rate["dc"] / raw_rate) + " (not synced)",
            )
        )
    report(f"put throughput, {label} ({batches} LmdbCache commits in all)", rows_out)


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--probes", type=int, default=20_000)
    ap.add_argument("--puts", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-diskcache", dest="diskcache", action="store_false")
    return ap.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse(sys.argv[1:]))))
