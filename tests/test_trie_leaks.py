"""Leak checks over both cores: memory stays flat across many cycles, and every value
reference the trie took is given back by reclaim(), clear(), removal and deletion."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import textwrap
import weakref
from collections.abc import Callable
from typing import Any

import pytest

MODULES = {"cython": "trie_cache._radix", "python": "trie_cache._radix_py"}

# Run in a fresh interpreter: RSS of the test process itself says little. Warm up, then
# compare peak RSS after more cycles; leaking one node or one value per entry would add
# megabytes (each cycle stores a few thousand entries holding 200-byte values).
RSS_SCRIPT = textwrap.dedent(
    """
    import importlib, json, resource, sys

    RadixTrie = importlib.import_module(sys.argv[1]).RadixTrie
    HEADS = [("users", ""), ("é/\\U0001f600", "\\ud800")]  # ASCII; multi-byte and surrogate
    KEYS = []
    for i in range(3000):
        head, tail = HEADS[i % 2]
        KEYS.append(f"{head}/{i % 97}/{'long-segment-' * (i % 3)}{i}{tail}")

    def cycle(trie, round_):
        for i, key in enumerate(KEYS):
            trie[key] = bytes(200) + i.to_bytes(4, "little")
        trie.invalidate_prefix("users/1")
        trie.invalidate_prefix("é")
        for i in range(50):  # writes release pending garbage in slices
            trie[f"w/{i}"] = i
        trie.reclaim()
        for i, key in enumerate(KEYS[::3]):
            trie[key] = round_
        trie.copy().clear()
        for key in KEYS[::5]:
            trie.pop(key, None)
        trie.invalidate_prefix("users")
        if round_ % 2:
            trie.clear()
        else:
            trie.reclaim()
            trie.invalidate_prefix("")

    def peak_kib():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    trie = RadixTrie()
    for round_ in range(15):
        cycle(trie, round_)
    warm = peak_kib()
    for round_ in range(15, 75):
        cycle(trie, round_)
        if round_ % 10 == 0:
            del trie
            trie = RadixTrie()
    print(json.dumps({"warm": warm, "end": peak_kib(), "len": len(trie)}))
    """
)


@pytest.fixture
def core_module(core_name: str) -> str:
    return MODULES[core_name]


def test_rss_is_flat_over_fill_invalidate_reclaim_clear_cycles(core_module: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, core_module],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    # ru_maxrss is KiB on Linux, bytes on macOS: compare as a ratio with a small floor.
    growth = result["end"] - result["warm"]
    assert growth <= max(result["warm"] * 0.05, 4096 if sys.platform != "darwin" else 4 << 20), (
        result
    )


class Value:
    """A weak-referenceable value."""

    __slots__ = ("__weakref__", "n")

    def __init__(self, n: int) -> None:
        self.n = n


class Released:
    """Weak references whose callbacks count released values."""

    def __init__(self) -> None:
        self.count = 0
        self.refs: list[weakref.ref[Value]] = []

    def track(self, value: Value) -> Value:
        self.refs.append(weakref.ref(value, self._fired))
        return value

    def _fired(self, _ref: weakref.ref[Value]) -> None:
        self.count += 1


def filled(trie_cls: Any, released: Released, n: int = 300) -> Any:
    trie = trie_cls()
    for i in range(n):
        key = ("a/", "b/long-label-over-eight/", "\ud800/", "\U0001f600")[i % 4] + str(i)
        trie[key] = released.track(Value(i))
    return trie


def test_reclaim_releases_invalidated_values(trie_cls: Any) -> None:
    released = Released()
    trie = filled(trie_cls, released)
    removed = trie.invalidate_prefix("b/")
    assert removed == 75
    assert released.count == 0  # still pending
    assert trie.reclaim() == 75
    assert released.count == 75
    assert trie.pending_reclaim == 0


def test_clear_releases_live_and_pending_values(trie_cls: Any) -> None:
    released = Released()
    trie = filled(trie_cls, released)
    trie.invalidate_prefix("a/")
    trie.clear()
    assert released.count == 300
    assert len(trie) == 0 and trie.pending_reclaim == 0


def test_deleting_the_trie_releases_live_and_pending_values(trie_cls: Any) -> None:
    released = Released()
    trie = filled(trie_cls, released)
    trie.invalidate_prefix("\ud800")
    assert trie.pending_reclaim == 75
    del trie
    gc.collect()
    assert released.count == 300


REMOVALS: dict[str, Callable[[Any, str], Any]] = {
    "del": lambda t, k: t.__delitem__(k),
    "pop": lambda t, k: t.pop(k),
    "replace": lambda t, k: t.__setitem__(k, None),
    "invalidate+reclaim": lambda t, k: (t.invalidate_prefix(k), t.reclaim()),
}


@pytest.mark.parametrize("remove", REMOVALS.values(), ids=REMOVALS.keys())
def test_removed_values_are_released_one_by_one(
    trie_cls: Any, remove: Callable[[Any, str], Any]
) -> None:
    released = Released()
    trie = filled(trie_cls, released)
    # Last key first: a prefix invalidation then removes exactly one key at a time.
    keys = list(trie)[::-1]
    for done, key in enumerate(keys, 1):
        remove(trie, key)
        assert released.count == done
    assert trie.pending_reclaim == 0


def test_shared_value_refcount_returns_to_baseline(trie_cls: Any) -> None:
    # One object stored under many keys: every reference taken is given back once.
    shared = Value(0)
    baseline = sys.getrefcount(shared)
    trie = trie_cls()
    for round_ in range(3):
        for i in range(500):
            trie[f"k/{i % 7}/{'x' * (i % 13)}{i}"] = shared
        trie.update({f"u/{i}": shared for i in range(50)})
        dup = trie.copy()
        assert sys.getrefcount(shared) == baseline + 2 * len(trie)
        del dup
        trie.invalidate_prefix("k/3")
        trie.pop("u/1")
        assert sys.getrefcount(shared) == baseline + len(trie) + trie.pending_reclaim
        if round_ == 1:
            trie.clear()
        else:
            trie.reclaim()
        assert sys.getrefcount(shared) == baseline + len(trie)
    del trie
    assert sys.getrefcount(shared) == baseline
