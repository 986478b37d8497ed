"""The cycle collector sees the values a trie holds, live or waiting for release."""

from __future__ import annotations

import gc
import weakref
from typing import Any


class Node:
    """A value that can point back at the trie holding it."""

    trie: Any = None


def test_value_referring_to_its_trie_is_collected(trie_cls: Any) -> None:
    trie = trie_cls()
    value = Node()
    value.trie = trie
    trie["k"] = value
    ref = weakref.ref(value)
    del trie, value
    gc.collect()
    assert ref() is None


def test_cycle_through_a_pending_entry_is_collected(trie_cls: Any) -> None:
    trie = trie_cls()
    value = Node()
    value.trie = trie
    trie["p/1"] = value
    trie["q"] = 1
    assert trie.invalidate_prefix("p/") == 1
    assert trie.pending_reclaim == 1
    ref = weakref.ref(value)
    del trie, value
    gc.collect()
    assert ref() is None


def test_trie_inside_itself_is_collected(trie_cls: Any) -> None:
    class Sub(trie_cls):  # type: ignore[misc]
        pass

    trie = Sub({f"k{n}": n for n in range(100)})
    trie["self"] = trie
    ref = weakref.ref(trie)
    del trie
    gc.collect()
    assert ref() is None


def test_collection_leaves_live_tries_intact(trie_cls: Any) -> None:
    trie = trie_cls({f"k{n:03d}": [n] for n in range(300)})
    trie.invalidate_prefix("k1")
    gc.collect()
    assert len(trie) == 200
    assert trie["k250"] == [250]
    assert trie.reclaim() == 100
