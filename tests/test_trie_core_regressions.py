"""Regressions found by reviewing the compiled core, and guards for its delicate paths.

Every test runs over both cores (``trie_cls``). The guards drive the compiled core through
the shapes its C code special-cases: every node kind on the way up and down (Node4, Node16,
Node48, Node256), Node48 slot reuse, labels on both sides of the 8-byte inline limit, and
paths deeper than the first scratch allocation, checking against a dict after each step.
"""

from __future__ import annotations

import copy
import functools
import gc
import importlib
import random
from typing import Any

import pytest


class Tracked:
    """A value that counts how many of its kind are alive."""

    live = 0

    def __init__(self, tag: object = None) -> None:
        self.tag = tag
        Tracked.live += 1

    def __del__(self) -> None:
        Tracked.live -= 1


@pytest.fixture
def tracked() -> type[Tracked]:
    gc.collect()
    Tracked.live = 0
    return Tracked


def assert_matches(trie: Any, model: dict[str, Any], prefixes: list[str]) -> None:
    """``trie`` holds exactly ``model``; ``count_prefix`` agrees with a brute count."""
    keys = sorted(model)
    assert len(trie) == len(model)
    assert list(trie) == keys
    for key in keys:
        assert trie[key] is model[key]
    for prefix in prefixes:
        want = [k for k in keys if k.startswith(prefix)]
        assert trie.count_prefix(prefix) == len(want), prefix
        assert list(trie.keys(prefix)) == want, prefix


def all_prefixes(keys: list[str]) -> list[str]:
    return sorted({key[:i] for key in keys for i in range(len(key) + 1)})


# -- regressions ---------------------------------------------------------------------------


class _SeedingTrie:
    """Mixin for a subclass whose ``__init__`` stores an entry of its own."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self["seed"] = Tracked("seed")  # type: ignore[index]


def test_copy_of_a_subclass_releases_every_value(trie_cls: Any, tracked: type[Tracked]) -> None:
    # The compiled copy() built the new trie with type(self)(), which runs a subclass's
    # __init__, and then freed only the root header of what that __init__ had stored: the
    # seeded node and its value leaked.
    seeding = type("SeedingTrie", (_SeedingTrie, trie_cls), {})
    trie = seeding({"a": Tracked("a")})
    dup = trie.copy()
    assert sorted(dup) == ["a", "seed"]
    assert dup["seed"] is trie["seed"]
    del trie, dup
    gc.collect()
    assert tracked.live == 0


def test_copy_returns_the_base_type_like_dict(trie_cls: Any) -> None:
    # dict.copy() on a subclass returns a dict; the twin returns a RadixTrie.
    sub = type("Sub", (trie_cls,), {})
    assert type(sub({"a": 1}).copy()) is trie_cls


def test_copy_module_keeps_a_subclass_type(trie_cls: Any) -> None:
    sub: Any = type("Sub", (trie_cls,), {})
    dup = copy.copy(sub({"a": 1, "b": 2}))
    assert type(dup) is sub
    assert dict(dup.items()) == {"a": 1, "b": 2}


def test_iterator_type_cannot_be_used_without_a_trie(trie_cls: Any) -> None:
    # The compiled iterator class can be called directly; its next() used to read the
    # trie's modification counter through None (undefined behaviour, found by review).
    it_type = type(iter(trie_cls()))
    try:
        orphan = it_type()
    except TypeError:
        return
    with pytest.raises(StopIteration):
        next(orphan)
    with pytest.raises(StopIteration):
        next(orphan)


# -- guards: node kinds --------------------------------------------------------------------

# Distinct first bytes: 128 ASCII characters and 51 UTF-8 lead bytes (U+0080 .. U+10FFFF).
FIRST_BYTES = [chr(c) for c in range(128)] + [
    chr(c)
    for c in sorted(
        {
            *range(0x80, 0x800, 0x40),
            *range(0x800, 0x10000, 0x1000),
            *range(0x10000, 0x110000, 0x40000),
        }
    )
]


def test_first_byte_fan_out_is_all_distinct() -> None:
    firsts = {ch.encode("utf-8", "surrogatepass")[0] for ch in FIRST_BYTES}
    assert len(firsts) == len(FIRST_BYTES) > 170


@pytest.mark.parametrize("under", ["", "p/", "long-shared-label/"])
def test_node_grows_through_every_kind_and_shrinks_back(trie_cls: Any, under: str) -> None:
    rng = random.Random(7)
    trie = trie_cls()
    model: dict[str, Any] = {}
    order = FIRST_BYTES[:]
    rng.shuffle(order)
    probes = ["", under, under + "a", under + "\x00", under + "é"]
    sizes = {1, 2, 4, 5, 16, 17, 48, 49, len(order)}
    for n, ch in enumerate(order, 1):
        for key in (under + ch, under + ch + "tail-beyond-eight"):
            model[key] = object()
            trie[key] = model[key]
        if n in sizes:
            assert_matches(trie, model, probes)
    rng.shuffle(order)
    # Down past the shrink points of Node256 (40), Node48 (12), Node16 (3) and Node4 (0).
    for n, ch in enumerate(order, 1):
        del trie[under + ch]
        del model[under + ch]
        tail = under + ch + "tail-beyond-eight"
        assert trie.pop(tail) is model.pop(tail)
        left = len(order) - n
        if left in {41, 40, 39, 13, 12, 11, 4, 3, 2, 1, 0}:
            assert_matches(trie, model, probes)
    assert len(trie) == 0 and list(trie) == []


def test_node48_reuses_freed_slots(trie_cls: Any) -> None:
    trie = trie_cls()
    model: dict[str, Any] = {}
    chars = [chr(c) for c in range(33, 33 + 45)]
    for ch in chars:
        model["k" + ch] = trie["k" + ch] = ch
    rng = random.Random(3)
    spare = [chr(c) for c in range(90, 127)]
    for _ in range(300):  # churn between 40 and 48 children: holes in the slot array
        if len(model) > 40 and rng.random() < 0.5:
            key = rng.choice(sorted(model))
            del trie[key]
            del model[key]
        elif len(model) < 48:
            key = "k" + rng.choice(chars + spare)
            model[key] = trie[key] = key
    assert_matches(trie, model, ["", "k", "k!", "kZ"])


# -- guards: labels ------------------------------------------------------------------------


@pytest.mark.parametrize("length", [7, 8, 9, 10, 17])
def test_labels_across_the_inline_limit(trie_cls: Any, length: int) -> None:
    # Splitting a label at every offset moves its tail between heap and inline storage;
    # deleting the fork merges labels back across the limit.
    base = "".join(chr(0x61 + i % 26) for i in range(length)) + "é"
    for cut in range(len(base)):
        trie = trie_cls()
        model = {"x": 0, "x" + base: 1}
        trie.update(model)
        other = "x" + base[:cut] + "\U0001f600" + "y" * (length - cut)
        model[other] = trie[other] = 2
        inner = "x" + base[:cut]
        model[inner] = trie[inner] = 3
        prefixes = all_prefixes(list(model))
        assert_matches(trie, model, prefixes)
        for key in (inner, other):  # back to one long label, merged across the limit
            del trie[key]
            del model[key]
            assert_matches(trie, model, prefixes)


def _put_tracked(trie: Any, model: dict[str, Tracked], key: str) -> None:
    model[key] = trie[key] = Tracked(key)


@pytest.mark.parametrize("length", [0, 1, 7, 8, 9, 16, 17, 31, 32, 33])
def test_leaf_and_fork_labels_of_every_storage(
    trie_cls: Any, tracked: type[Tracked], length: int
) -> None:
    # The compiled core keeps a leaf's label right after a 16-byte header (at least 8 bytes
    # of room, where a detached leaf keeps its garbage link) and a 4-child fork's label after
    # its children; other nodes' labels up to 8 bytes inline. Split a leaf at every offset,
    # grow it a child, merge it back, copy it, and detach it, with every value released.
    tail = "".join(chr(0x61 + i % 26) for i in range(length))
    for cut in range(length + 1):
        trie = trie_cls()
        model: dict[str, Tracked] = {}
        put = functools.partial(_put_tracked, trie, model)
        put("k/" + tail)  # a leaf under the fork at "k/"
        put("k-")
        put("k/" + tail[:cut] + "\x00")  # splits the leaf's label after cut bytes
        put("k/" + tail + "/more")  # the leaf grows a child
        prefixes = all_prefixes(list(model))
        assert_matches(trie, model, prefixes)
        assert_matches(trie.copy(), model, prefixes)
        for key in ("k/" + tail + "/more", "k/" + tail[:cut] + "\x00"):  # merges back
            del trie[key]
            del model[key]
            assert_matches(trie, model, prefixes)
        assert trie.invalidate_prefix("k/" + tail) == 1  # a leaf as a detached top
        del model["k/" + tail]
        put("k/" + tail[:cut])
        assert trie.invalidate_prefix("k") == 2
        model.clear()
        assert tracked.live == trie.pending_reclaim == 2  # the put released the first
        assert trie.reclaim() == 2
        assert tracked.live == 0


def _merge_run(cls: Any, seed: int) -> list[Any]:
    """Writes to a bounded trie whose deletes keep merging forks into children with long
    labels (which the compiled core rebuilds in a new block), with what each step left."""
    rng = random.Random(seed)
    trie = cls(max_entries=12)
    stems = ["p", "pa" + "l" * 12, "pa" + "l" * 12 + "é" * 5, "q" + "\U0001f600" * 4]
    trace: list[Any] = []
    for _ in range(400):
        key = rng.choice(stems) + rng.choice(["", "x", "y", "xz" * 6, "/"])
        if rng.random() < 0.55:
            trie[key] = key
        elif key in trie:
            del trie[key]
        else:
            trie.get(rng.choice(list(trie) or [key]))
        trace.append(sorted(trie.items()))
    return trace


@pytest.mark.parametrize("seed", range(6))
def test_bounded_merges_into_long_labels_evict_as_the_pure_core(seed: int) -> None:
    # A merged child moves to a new block: its queue neighbours, the hand and its children's
    # parent links must follow it, or the next evictions pick other victims (or crash).
    compiled = importlib.import_module("trie_cache._radix").RadixTrie
    pure = importlib.import_module("trie_cache._radix_py").RadixTrie
    assert _merge_run(compiled, seed) == _merge_run(pure, seed)


def test_chain_deeper_than_the_scratch_path(trie_cls: Any) -> None:
    # Every prefix is a key, so each key ends one node deeper: 600 levels.
    keys = ["d" + "\U0001f600" * i for i in range(600)]
    trie = trie_cls({k: i for i, k in enumerate(keys)})
    assert trie.count_prefix("d" + "\U0001f600" * 300) == 300
    assert trie.pop(keys[-1]) == 599
    assert trie.invalidate_prefix(keys[450]) == 149
    del trie[keys[200]]  # merge in the middle of the chain
    assert trie.count_prefix(keys[199]) == 250
    assert list(trie.values(keys[440])) == list(range(440, 450))
    trie.reclaim()
    assert len(trie) == 449


def test_random_operations_agree_with_a_dict(trie_cls: Any, tracked: type[Tracked]) -> None:
    rng = random.Random(11)
    pieces = ["a", "b", "ab", "é", "\ud800", "\U0001f600", "\x00", "long-label-piece/"]
    trie = trie_cls()
    model: dict[str, Tracked] = {}
    for step in range(1500):
        op = rng.random()
        if op < 0.55 or not model:
            key = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 5)))
            value = Tracked(key)
            model[key] = trie[key] = value
            del value
        elif op < 0.85:
            key = rng.choice(sorted(model))
            assert trie.pop(key) is model.pop(key)
        else:
            key = rng.choice(sorted(model))
            prefix = key[: rng.randint(0, len(key))]
            gone = [k for k in model if k.startswith(prefix)]
            assert trie.invalidate_prefix(prefix) == len(gone)
            for k in gone:
                del model[k]
        if step % 100 == 0:
            assert_matches(trie, model, all_prefixes(list(model))[:300])
        assert tracked.live == len(trie) + trie.pending_reclaim
    trie.reclaim()
    assert tracked.live == len(model)
    del trie
    model.clear()
    gc.collect()
    assert tracked.live == 0
