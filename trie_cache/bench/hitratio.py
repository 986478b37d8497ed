"""Hit ratios under a bound: trie_cache's SIEVE against the peers' policies, same streams.

Every system gets the same capacity (in entries) and replays the same seeded request stream
through its adapter's :meth:`~trie_cache.bench.peers.System.mixed`: a read that misses is
filled by a put, a write drops a table's prefix the way the adapter always drops one. Two
streams:

* ``zipf``: reads only, over ``keys`` keys whose popularity follows Zipf(``alpha``) (rank
  ``r`` drawn with weight ``1 / r**alpha``; ranks are dealt to keys in a seeded random order).
* ``tables``: a cached table service. ``tables`` tables of ``pages`` pages; the table of each
  operation is drawn Zipf(1.0) over tables, the page Zipf(1.0) over its table's pages; a share
  of the operations are writes, each dropping its table's prefix ``t{table:05d}/``.

Reference policies simulated here (the same request semantics, in plain Python) serve as
yardsticks: an LRU on an ``OrderedDict``, SIEVE as its paper describes it (Zhang et al., NSDI
2024) and S3-FIFO (Yang et al., SOSP 2023). ``bench/bench_eviction.py`` holds trie_cache to
them; ``python -m trie_cache.bench`` prints the table of the installed systems.
"""

from __future__ import annotations

import abc
import argparse
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from .peers import (
    CacheboxSystem,
    CachetoolsSystem,
    MemCacheSystem,
    RadixSystem,
    System,
    TheineSystem,
    _import,
    missing_reason,
)
from .workloads import SEED, ValuePool, key, mixed_key, mixed_prefix

__all__ = [
    "HIT_SYSTEMS",
    "HitRatios",
    "LruModel",
    "S3FifoModel",
    "SieveModel",
    "Stream",
    "loop_stream",
    "render",
    "render_markdown",
    "run",
    "table_stream",
    "zipf_stream",
]

Ops = list[tuple[bool, str]]


# -- streams -------------------------------------------------------------------------------


@dataclass
class Stream:
    """A replayable request stream: ``ops`` as :meth:`System.mixed` takes them."""

    name: str
    #: What the stream is, for a table's notes.
    description: str
    #: Distinct keys the stream can read (the universe the capacities are a share of).
    universe: int
    ops: Ops
    #: Read hits an unbounded cache would score (only first reads and reads after an
    #: invalidation miss): the ceiling of every bounded system.
    unbounded_hits: int = 0

    @property
    def reads(self) -> int:
        return sum(1 for is_write, _ in self.ops if not is_write)


def _zipf_cumulative(n: int, alpha: float) -> list[float]:
    total = 0.0
    cumulative = []
    for rank in range(1, n + 1):
        total += rank**-alpha
        cumulative.append(total)
    return cumulative


def zipf_stream(keys: int, requests: int, alpha: float = 1.0, seed: int = SEED) -> Stream:
    """``requests`` reads over ``keys`` keys of Zipf(``alpha``) popularity, seeded."""
    rng = random.Random(seed)
    names = [key(i) for i in range(keys)]
    rng.shuffle(names)  # rank r is the key names[r]: popularity is not key order
    ranks = rng.choices(range(keys), cum_weights=_zipf_cumulative(keys, alpha), k=requests)
    ops: Ops = [(False, names[r]) for r in ranks]
    hits = requests - len(set(ranks))
    return Stream(
        "zipf",
        f"Zipf(α={alpha:g}) reads over {keys:,} keys, {requests:,} requests",
        keys,
        ops,
        hits,
    )


def table_stream(
    tables: int,
    pages: int,
    operations: int,
    write_share: float = 0.02,
    seed: int = SEED + 3,
) -> Stream:
    """A cached table service: page reads skewed to hot tables, writes dropping a table."""
    rng = random.Random(seed)
    table_order = list(range(tables))
    rng.shuffle(table_order)
    table_weights = _zipf_cumulative(tables, 1.0)
    page_weights = _zipf_cumulative(pages, 1.0)
    which_table = rng.choices(table_order, cum_weights=table_weights, k=operations)
    which_page = rng.choices(range(pages), cum_weights=page_weights, k=operations)
    ops: Ops = []
    present: list[set[int]] = [set() for _ in range(tables)]
    hits = 0
    for table, page in zip(which_table, which_page):
        if rng.random() < write_share:
            ops.append((True, mixed_prefix(table)))
            present[table].clear()
        else:
            ops.append((False, mixed_key(table, page)))
            if page in present[table]:
                hits += 1
            else:
                present[table].add(page)
    return Stream(
        "tables",
        (
            f"{tables:,} tables x {pages} pages, Zipf(1.0) over tables and over pages, "
            f"{operations:,} operations, {100 * write_share:g}% writes dropping their table"
        ),
        tables * pages,
        ops,
        hits,
    )


def loop_stream(keys: int, requests: int) -> Stream:
    """Reads of keys ``0..keys-1`` in order, over and over: LRU's worst case at ``keys - 1``."""
    names = [key(i) for i in range(keys)]
    ops: Ops = [(False, names[i % keys]) for i in range(requests)]
    return Stream(
        "loop",
        f"a loop over {keys:,} keys, {requests:,} requests",
        keys,
        ops,
        requests - min(keys, requests),
    )


# -- reference policies ----------------------------------------------------------------------


class _Model(abc.ABC):
    """A policy simulated in Python, replayed like a peer (reads, misses filled, prefix drops)."""

    name: ClassVar[str]
    title: ClassVar[str]

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity

    @abc.abstractmethod
    def mixed(self, ops: Sequence[tuple[bool, str]], value: Any) -> int:
        """Replay ``ops``; return the read hits."""

    @abc.abstractmethod
    def count(self) -> int:
        """Entries held now."""

    def close(self) -> None:
        """Nothing to release."""


class LruModel(_Model):
    """LRU on an ``OrderedDict``: a hit moves the key to the newest end."""

    name = "lru-model"
    title = "LRU (OrderedDict model)"

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.store: OrderedDict[str, Any] = OrderedDict()

    def mixed(self, ops: Sequence[tuple[bool, str]], value: Any) -> int:
        store = self.store
        touch = store.move_to_end
        oldest = store.popitem
        capacity = self.capacity
        hits = 0
        for is_write, text in ops:
            if is_write:
                for k in [k for k in store if k.startswith(text)]:
                    del store[k]
            elif text in store:
                touch(text)
                hits += 1
            else:
                store[text] = value
                if len(store) > capacity:
                    oldest(last=False)
        return hits

    def count(self) -> int:
        return len(self.store)


class _Entry:
    __slots__ = ("key", "newer", "older", "visited")

    def __init__(self, key: str) -> None:
        self.key = key
        self.visited = False
        self.newer: _Entry | None = None
        self.older: _Entry | None = None


class SieveModel(_Model):
    """SIEVE as its paper describes it.

    One FIFO queue, newest at the head. A hit sets the entry's visited bit and moves nothing.
    A miss on a full cache evicts first: the hand, starting at the oldest entry (the tail),
    walks toward the head clearing the visited bits it passes and evicts the first unvisited
    entry; it then stays at that position (the next newer entry) for the next eviction,
    wrapping from the head back to the tail. The new entry goes in at the head. An entry
    dropped by an invalidation leaves the queue; a hand resting on it moves one step newer.
    """

    name = "sieve-model"
    title = "SIEVE (paper model)"

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.entries: dict[str, _Entry] = {}
        self.head: _Entry | None = None  # newest
        self.tail: _Entry | None = None  # oldest
        self.hand: _Entry | None = None
        self.evictions = 0

    def _unlink(self, entry: _Entry) -> None:
        if self.hand is entry:
            self.hand = entry.newer
        if entry.newer is None:
            self.head = entry.older
        else:
            entry.newer.older = entry.older
        if entry.older is None:
            self.tail = entry.newer
        else:
            entry.older.newer = entry.newer
        del self.entries[entry.key]

    def _evict(self) -> None:
        hand = self.hand or self.tail
        assert hand is not None
        while hand.visited:
            hand.visited = False
            hand = hand.newer or self.tail
            assert hand is not None
        self.hand = hand
        self._unlink(hand)  # the hand moves one step newer
        self.evictions += 1

    def _insert(self, text: str) -> None:
        if len(self.entries) >= self.capacity:
            self._evict()
        entry = _Entry(text)
        entry.older = self.head
        if self.head is None:
            self.tail = entry
        else:
            self.head.newer = entry
        self.head = entry
        self.entries[text] = entry

    def mixed(self, ops: Sequence[tuple[bool, str]], value: Any) -> int:
        entries = self.entries
        find = entries.get
        insert = self._insert
        hits = 0
        for is_write, text in ops:
            if is_write:
                for k in [k for k in entries if k.startswith(text)]:
                    self._unlink(entries[k])
                continue
            entry = find(text)
            if entry is None:
                insert(text)
            else:
                entry.visited = True
                hits += 1
        return hits

    def order(self) -> list[str]:
        """The keys from the oldest to the newest."""
        out = []
        entry = self.tail
        while entry is not None:
            out.append(entry.key)
            entry = entry.newer
        return out

    def count(self) -> int:
        return len(self.entries)


class S3FifoModel(_Model):
    """S3-FIFO: a small FIFO (10% of the room), a main FIFO and a ghost FIFO of keys.

    A hit adds one to the entry's frequency, capped at 3. A miss whose key is in the ghost
    queue goes into the main queue, any other miss into the small one. To make room: while the
    small queue holds at least 10% of the room, its oldest entry leaves it, for the main queue
    if it was read since it came in (frequency at least ``promote``), else for the ghost queue
    (and the cache); otherwise the main queue's oldest entry is evicted, or, if its frequency
    is not 0, goes back in at the newest end with its frequency less one. The ghost queue
    remembers as many keys as the main queue has room for.
    """

    name = "s3fifo-model"
    title = "S3-FIFO (paper model)"

    def __init__(self, capacity: int, promote: int = 1) -> None:
        super().__init__(capacity)
        self.small_room = max(1, capacity // 10)
        self.main_room = max(1, capacity - self.small_room)
        self.promote = promote
        self.freq: dict[str, int] = {}
        self.small: OrderedDict[str, None] = OrderedDict()
        self.main: OrderedDict[str, None] = OrderedDict()
        self.ghost: OrderedDict[str, None] = OrderedDict()

    def _evict_main(self) -> None:
        main, freq = self.main, self.freq
        while main:
            k, _ = main.popitem(last=False)
            f = freq[k]
            if f:
                freq[k] = f - 1
                main[k] = None
            else:
                del freq[k]
                return

    def _evict(self) -> None:
        small, main, ghost, freq = self.small, self.main, self.ghost, self.freq
        if len(small) < self.small_room or not small:
            self._evict_main()
            return
        while small:
            k, _ = small.popitem(last=False)
            if freq[k] >= self.promote:
                freq[k] = 0
                main[k] = None
                if len(main) > self.main_room:
                    self._evict_main()
            else:
                del freq[k]
                ghost[k] = None
                if len(ghost) > self.main_room:
                    ghost.popitem(last=False)
                return

    def mixed(self, ops: Sequence[tuple[bool, str]], value: Any) -> int:
        freq, small, main, ghost = self.freq, self.small, self.main, self.ghost
        capacity = self.capacity
        hits = 0
        for is_write, text in ops:
            if is_write:
                for k in [k for k in freq if k.startswith(text)]:
                    del freq[k]
                    small.pop(k, None)
                    main.pop(k, None)
                continue
            f = freq.get(text)
            if f is not None:
                if f < 3:
                    freq[text] = f + 1
                hits += 1
                continue
            while len(freq) >= capacity:
                self._evict()
            freq[text] = 0
            if text in ghost:
                del ghost[text]
                main[text] = None
            else:
                small[text] = None
        return hits

    def count(self) -> int:
        return len(self.freq)


# -- trie_cache and the peers, bounded -------------------------------------------------------


class BoundedRadix(RadixSystem):
    name = "radix-bounded"
    title = "trie_cache.RadixTrie (SIEVE)"

    def __init__(self, capacity: int) -> None:
        System.__init__(self, capacity)
        from .._core import RadixTrie

        self.store = RadixTrie(max_entries=capacity)


class BoundedMemCache(MemCacheSystem):
    name = "memcache-bounded"
    title = "trie_cache.MemCache (SIEVE)"

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        from .._memcache import MemCache

        self.cache = MemCache(max_entries=capacity)


class CacheboxLfu(CacheboxSystem):
    name = "cachebox-lfu"
    title = "cachebox.LFUCache"

    def __init__(self, capacity: int) -> None:
        System.__init__(self, capacity)
        self.store = _import("cachebox").LFUCache(maxsize=capacity)


class CachetoolsLru(CachetoolsSystem):
    title = "cachetools.LRUCache"


class TheineTinyLfu(TheineSystem):
    title = "theine.Cache (W-TinyLFU)"


class Replayer(Protocol):
    """What the table needs of a system or a model."""

    title: ClassVar[str]

    def __init__(self, capacity: int) -> None: ...

    def mixed(self, ops: Sequence[tuple[bool, str]], value: Any) -> int: ...

    def count(self) -> int: ...

    def close(self) -> None: ...


#: The systems of the hit-ratio table, trie_cache's first; the models follow the peers.
HIT_SYSTEMS: dict[str, type[Replayer]] = {
    cls.name: cls
    for cls in (
        BoundedRadix,
        CachetoolsLru,
        CacheboxSystem,
        CacheboxLfu,
        TheineTinyLfu,
        LruModel,
        SieveModel,
        S3FifoModel,
    )
}


def bound_supported() -> str | None:
    """Why this trie_cache cannot bound a trie, or ``None`` when it can."""
    from .._core import RadixTrie

    try:
        RadixTrie(max_entries=1)
    except TypeError as exc:
        return f"this trie_cache has no bounded trie yet ({exc})"
    return None


def _missing(system: type[Replayer]) -> str | None:
    if system in (BoundedRadix, BoundedMemCache):
        return bound_supported()
    if isinstance(system, type) and issubclass(system, System):
        return missing_reason(system)
    return None


# -- running ---------------------------------------------------------------------------------


@dataclass
class HitRatios:
    """What one run measured: hits per (system, column), with the streams' facts."""

    #: column id -> (stream, capacity); a column is one stream at one capacity
    columns: dict[str, tuple[Stream, int]] = field(default_factory=dict)
    systems: list[str] = field(default_factory=list)
    hits: dict[tuple[str, str], int] = field(default_factory=dict)
    #: (system, column) -> entries held at the end (the bound is checked against it)
    held: dict[tuple[str, str], int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    elapsed: float = 0.0

    def ratio(self, system: str, column: str) -> float | None:
        hits = self.hits.get((system, column))
        if hits is None:
            return None
        return hits / self.columns[column][0].reads

    def misses_vs(self, system: str, base: str, column: str) -> float | None:
        """Misses of ``system`` over misses of ``base`` on ``column`` (below 1: fewer)."""
        mine, theirs = self.hits.get((system, column)), self.hits.get((base, column))
        if mine is None or theirs is None:
            return None
        reads = self.columns[column][0].reads
        return (reads - mine) / (reads - theirs) if reads > theirs else None


def column_id(stream: Stream, capacity: int) -> str:
    share = 100 * capacity / stream.universe
    return f"{stream.name}, k={capacity:,} ({share:g}%)"


def run(
    streams: Sequence[tuple[Stream, Sequence[int]]],
    systems: Sequence[str],
    step: Callable[[str], AbstractContextManager[None]] | None = None,
) -> HitRatios:
    """Replay each stream at each of its capacities on each system."""
    start = time.perf_counter()
    out = HitRatios()
    for stream, capacities in streams:
        for capacity in capacities:
            out.columns[column_id(stream, capacity)] = (stream, capacity)
    for name in systems:
        reason = _missing(HIT_SYSTEMS[name])
        if reason is None:
            out.systems.append(name)
        else:
            out.skipped[name] = reason
    value = ValuePool().objects[0]
    for name in out.systems:
        cls = HIT_SYSTEMS[name]
        for column, (stream, capacity) in out.columns.items():
            with (step or _no_step)(f"{cls.title}: {column}"):
                system = cls(capacity)
                try:
                    out.hits[(name, column)] = system.mixed(stream.ops, value)
                    out.held[(name, column)] = system.count()
                finally:
                    system.close()
    out.elapsed = time.perf_counter() - start
    return out


def _no_step(label: str) -> AbstractContextManager[None]:
    return nullcontext()


def default_streams(
    zipf_keys: int = 100_000, zipf_requests: int = 200_000, table_ops: int = 50_000
) -> list[tuple[Stream, list[int]]]:
    """The main job's streams: Zipf at 1% and 10% of its keys, the table service at 10%."""
    zipf = zipf_stream(zipf_keys, zipf_requests)
    tables = table_stream(tables=500, pages=20, operations=table_ops)
    return [
        (zipf, [zipf_keys // 100, zipf_keys // 10]),
        (tables, [tables.universe // 10]),
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the hit-ratio table on ``python -m trie_cache.bench``."""
    parser.add_argument(
        "--no-hit-ratio", action="store_true", help="skip the hit-ratio table (about 5 s)"
    )
    parser.add_argument(
        "--hit-requests",
        type=int,
        default=200_000,
        help="reads of the Zipf stream of the hit-ratio table (default 200,000; "
        "bench/bench_eviction.py replays 1,000,000)",
    )


def from_args(
    args: argparse.Namespace, step: Callable[[str], AbstractContextManager[None]] | None = None
) -> HitRatios | None:
    """The hit-ratio table that ``args`` ask for, or ``None`` (``--no-hit-ratio``)."""
    if args.no_hit_ratio:
        return None
    # The LRU model decides as cachetools' LRUCache (bench/test_hitratio.py checks it): the
    # main job leaves it out; bench/bench_eviction.py compares with it.
    systems = [name for name in HIT_SYSTEMS if name != LruModel.name]
    return run(default_streams(zipf_requests=args.hit_requests), systems, step)


# -- printing --------------------------------------------------------------------------------

#: The system whose misses the others are compared with.
BASELINE = "cachetools"


def _cell(results: HitRatios, system: str, column: str) -> str:
    ratio = results.ratio(system, column)
    if ratio is None:
        return "-"
    versus = results.misses_vs(system, BASELINE, column)
    tail = "" if versus is None or system == BASELINE else f" ({versus:.2f}x)"
    return f"{100 * ratio:.1f}%{tail}"


def _over_bound(results: HitRatios) -> Iterator[str]:
    for (system, column), held in results.held.items():
        capacity = results.columns[column][1]
        if held > capacity:
            yield f"{HIT_SYSTEMS[system].title} held {held:,} entries at k={capacity:,}"


def render(results: HitRatios) -> str:
    """The hit-ratio table: system x (stream, capacity), each with its misses against LRU."""
    columns = list(results.columns)
    width = max([len(HIT_SYSTEMS[s].title) for s in results.systems] + [6]) + 2
    cell = max(len(c) for c in columns) + 2
    lines = [
        (
            "hit ratio (a read that misses is filled by a put; same capacity in entries and "
            "same stream for every system); in brackets: misses / cachetools.LRUCache's misses"
        ),
    ]
    header = "system".ljust(width) + "".join(c.rjust(cell) for c in columns)
    lines += [header, "-" * len(header)]
    for system in results.systems:
        row = HIT_SYSTEMS[system].title.ljust(width)
        row += "".join(_cell(results, system, c).rjust(cell) for c in columns)
        lines.append(row)
    ceiling = "no bound".ljust(width)
    for c in columns:
        stream = results.columns[c][0]
        ceiling += f"{100 * stream.unbounded_hits / stream.reads:.1f}%".rjust(cell)
    lines.append(ceiling)
    seen = []
    for stream, _ in results.columns.values():
        if stream not in seen:
            seen.append(stream)
            lines.append(f"{stream.name}: {stream.description}")
    lines.append(
        "models: policies simulated in Python by trie_cache.bench.hitratio, the yardsticks; "
        "writes drop a table's keys in every system the way the comparison above drops a prefix"
    )
    for problem in _over_bound(results):
        lines.append(f"over the bound: {problem}")
    for system, reason in results.skipped.items():
        lines.append(f"not measured: {HIT_SYSTEMS[system].title}: {reason}")
    lines.append(f"hit-ratio runs took {results.elapsed:.1f} s")
    return "\n".join(lines)


def render_markdown(results: HitRatios) -> str:
    """The hit-ratio table in Markdown (for the README)."""
    columns = list(results.columns)
    lines = [
        "| hit ratio (misses vs LRU) | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for system in results.systems:
        cells = [_cell(results, system, c).replace("x)", "×)") for c in columns]
        lines.append(f"| {HIT_SYSTEMS[system].title} | " + " | ".join(cells) + " |")
    cells = []
    for c in columns:
        stream = results.columns[c][0]
        cells.append(f"{100 * stream.unbounded_hits / stream.reads:.1f}%")
    lines.append("| no bound | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def draw(axes: Any, results: HitRatios) -> None:
    """Grouped bars of the hit ratios on matplotlib ``axes``: one group a column."""
    columns = list(results.columns)
    systems = results.systems
    width = 0.8 / max(1, len(systems))
    lowest = 100.0
    for i, system in enumerate(systems):
        heights = [100 * (results.ratio(system, c) or 0.0) for c in columns]
        lowest = min([lowest, *heights])
        own = system in ("radix-bounded", "memcache-bounded")
        axes.bar(
            [x + (i - (len(systems) - 1) / 2) * width for x in range(len(columns))],
            heights,
            width,
            label=HIT_SYSTEMS[system].title,
            edgecolor="black" if own else "white",
            linewidth=1.5 if own else 0.5,
            hatch="//" if issubclass(HIT_SYSTEMS[system], _Model) else None,
        )
    axes.set_ylim(bottom=max(0.0, 10 * (lowest // 10) - 10))
    for x, c in enumerate(columns):
        stream = results.columns[c][0]
        ceiling = 100 * stream.unbounded_hits / stream.reads
        axes.hlines(ceiling, x - 0.45, x + 0.45, colors="grey", linestyles=":")
    axes.set_xticks(list(range(len(columns))))
    axes.set_xticklabels([c.replace(", ", "\n") for c in columns], fontsize=8)
    axes.set_ylabel("hit ratio, % (dotted: no bound; hatched: models)")
    axes.set_title("Hit ratio at the same capacity (higher is better)")
    axes.grid(True, axis="y", alpha=0.3)
    axes.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
