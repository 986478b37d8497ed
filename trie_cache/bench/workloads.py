"""Key shapes, values, operation streams and checks shared by every comparison.

Every system gets the same keys, the same probes and the same operation stream, built by
the functions here from a fixed seed. Probe keys are built afresh (new ``str`` objects whose
hash is not cached yet) before each timed round, the way a service builds a key per request.

Key shape ``db{g}/t{table:03d}/p{page:05d}``: key ``i`` lies in group ``i % 10``, so the
prefix ``"db3/"`` holds exactly a tenth of the keys of a store filled with keys ``0..n-1``
(``n`` a multiple of 10). The mixed workload uses ``t{table:05d}/p{page:03d}``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .._rows import CachedRows
from . import toolkit
from .toolkit import fresh

__all__ = [
    "BATCH",
    "GROUPS",
    "INVALIDATED_GROUP",
    "MIXED_PAGES",
    "MixedStream",
    "ValuePool",
    "fresh",
    "group_prefix",
    "key",
    "keys",
    "make_mixed_stream",
    "miss_indices",
    "parse_count",
    "probe_indices",
    "put_indices",
]

#: Key groups; one group's prefix selects a tenth of a store's keys.
GROUPS = 10
#: Tables per group in the key shape.
TABLES = 1000
#: The group whose prefix the invalidation benchmark drops.
INVALIDATED_GROUP = 3
#: Probes per timed get/put round.
BATCH = 10_000
#: Pages per table in the mixed workload.
MIXED_PAGES = 100
#: Share of mixed-workload operations that are writes (each invalidates its table).
MIXED_WRITE_SHARE = 0.10
#: Distinct values; key ``i`` stores value ``i % VALUE_KINDS``.
VALUE_KINDS = 256

SEED = 20240521


def parse_count(text: str) -> int:
    """A key count such as ``"10k"``, ``"1M"`` or ``"2_000"``: a positive multiple of 10."""
    return toolkit.parse_count(text, multiple_of=GROUPS)


def key(i: int) -> str:
    """Key number ``i``, built afresh."""
    return f"db{i % GROUPS}/t{(i // GROUPS) % TABLES:03d}/p{i // (GROUPS * TABLES):05d}"


def keys(indices: Sequence[int] | range) -> list[str]:
    """Fresh key strings for ``indices``."""
    return [key(i) for i in indices]


def group_prefix(group: int) -> str:
    """The prefix shared by every key of ``group``."""
    return f"db{group}/"


def probe_indices(n: int, count: int = BATCH, seed: int = SEED) -> list[int]:
    """``count`` indices of stored keys (``0..n-1``) in random order, repeating if ``n`` < count."""
    rng = random.Random(seed)
    if count <= n:
        return rng.sample(range(n), count)
    return [rng.randrange(n) for _ in range(count)]


def put_indices(n: int, round_no: int = 0, count: int = BATCH) -> range:
    """Keys that a store filled with ``0..n-1`` has never held: the put batch of a round.

    Every round inserts keys never inserted before, so no system reuses the room that the
    previous round's keys left behind.
    """
    start = n + round_no * count
    return range(start, start + count)


#: Start of the indices used for misses: far past anything stored.
MISS_BASE = 500_000_000


def miss_indices(n: int, count: int = BATCH, seed: int = SEED + 1) -> list[int]:
    """Indices of keys never stored, in random order; they share the stored keys' prefixes."""
    rng = random.Random(seed)
    return [MISS_BASE + rng.randrange(MISS_BASE) for _ in range(count)]


class ValuePool:
    """``VALUE_KINDS`` distinct values, as objects and as their CBOR bytes.

    In-memory systems store the :class:`CachedRows` object; the systems that keep bytes
    (lmdb, diskcache) store its CBOR encoding, as a persistent cache has to.
    """

    def __init__(self) -> None:
        self.objects: list[CachedRows] = [
            CachedRows(
                {f"r{j}": {"id": j, "name": f"row {j}", "score": j / 7}},
                fetched_at=1_700_000_000.0 + j,
            )
            for j in range(VALUE_KINDS)
        ]
        self.payloads: list[bytes] = [rows.to_cbor() for rows in self.objects]

    def values(self, indices: Sequence[int] | range, binary: bool) -> list[Any]:
        pool: Sequence[Any] = self.payloads if binary else self.objects
        return [pool[i % VALUE_KINDS] for i in indices]

    def expected(self, i: int, binary: bool) -> Any:
        return self.payloads[i % VALUE_KINDS] if binary else self.objects[i % VALUE_KINDS]


@dataclass
class MixedStream:
    """A cached-table service: page reads (misses filled by a put) and table writes.

    ``ops`` holds ``(is_write, text)``: a page key to read, or a table prefix to invalidate.
    Replaying it on a store that holds every page of every table gives ``expected_hits``
    hits and leaves exactly the keys of ``missing`` absent.
    """

    tables: int
    pages: int
    ops: list[tuple[bool, str]]
    expected_hits: int
    missing: list[str]

    @property
    def reads(self) -> int:
        return sum(1 for is_write, _ in self.ops if not is_write)

    def all_keys(self) -> list[str]:
        return [mixed_key(t, p) for t in range(self.tables) for p in range(self.pages)]

    def fresh_ops(self) -> list[tuple[bool, str]]:
        """The same stream with every string built afresh."""
        return [(w, fresh(text)) for w, text in self.ops]


def mixed_key(table: int, page: int) -> str:
    return f"t{table:05d}/p{page:03d}"


def mixed_prefix(table: int) -> str:
    return f"t{table:05d}/"


def make_mixed_stream(
    n_keys: int, n_ops: int, pages: int = MIXED_PAGES, seed: int = SEED + 2
) -> MixedStream:
    """``n_keys // pages`` tables of ``pages`` pages, all cached at the start.

    Table popularity is skewed (``u**2``: low-numbered tables are read and written most),
    and so is page popularity within a table (``u**8``: the first pages are read most).
    """
    tables = max(1, n_keys // pages)
    rng = random.Random(seed)
    present: list[set[int]] = [set(range(pages)) for _ in range(tables)]
    ops: list[tuple[bool, str]] = []
    hits = 0
    for _ in range(n_ops):
        table = int(tables * rng.random() ** 2)
        if rng.random() < MIXED_WRITE_SHARE:
            ops.append((True, mixed_prefix(table)))
            present[table].clear()
        else:
            page = int(pages * rng.random() ** 8)
            ops.append((False, mixed_key(table, page)))
            if page in present[table]:
                hits += 1
            else:
                present[table].add(page)
    missing = [mixed_key(t, p) for t in range(tables) for p in range(pages) if p not in present[t]]
    return MixedStream(tables, pages, ops, hits, missing)
