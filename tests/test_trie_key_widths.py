"""Keys of every UTF-8 width at the edges of the lookups' short-key path (64 characters).

The compiled core encodes short non-ASCII probe keys itself instead of asking CPython for
their UTF-8 form, and compares labels and searches child arrays a word at a time; these
tests hold both cores to ``dict`` on keys built to hit those edges.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

# One character of each UTF-8 width, lone surrogates (passed through as 3 bytes) included.
WIDTHS = [
    "a",
    "\x7f",
    "\x80",
    "é",
    "\u07ff",
    "\u0800",
    "中",
    "\ud800",
    "\udfff",
    "\uffff",
    "\U00010000",
    "\U0010ffff",
]


def fresh(key: str) -> str:
    """An equal string that is a new object, as a caller's probe key would be."""
    return ("" + key + "x")[:-1]


@pytest.mark.parametrize("length", [0, 1, 7, 8, 9, 63, 64, 65, 200])
def test_lookups_agree_with_dict_at_each_width_and_length(trie_cls: Any, length: int) -> None:
    rnd = random.Random(length)
    stored: dict[str, int] = {}
    for i in range(400):
        key = "".join(rnd.choice(WIDTHS) for _ in range(length))
        stored[key] = i
    trie = trie_cls(stored)
    for key, value in stored.items():
        assert trie.get(fresh(key)) == value
        assert fresh(key) in trie
        assert trie[fresh(key)] == value
    for _ in range(400):
        probe = "".join(rnd.choice(WIDTHS) for _ in range(length))
        assert trie.get(probe) == stored.get(probe)
        assert (probe in trie) == (probe in stored)


def test_keys_that_differ_in_one_byte_anywhere_are_told_apart(trie_cls: Any) -> None:
    base = "tenant_00001/clients/page_" + "x" * 40
    keys = [base[:i] + chr(ord(base[i]) + 1) + base[i + 1 :] for i in range(len(base))]
    trie = trie_cls({k: i for i, k in enumerate(keys)})
    assert trie.get(fresh(base)) is None
    for i, key in enumerate(keys):
        assert trie.get(fresh(key)) == i


def test_children_found_among_every_fan_out(trie_cls: Any) -> None:
    # 1 to 256 children under one node: every child shape, every branching byte.
    for fan_out in (1, 3, 4, 5, 15, 16, 17, 47, 48, 49, 256):
        branch = [chr(b) for b in range(fan_out)]
        trie = trie_cls({"p/" + c + "/end": ord(c) for c in branch})
        for c in map(chr, range(300)):
            expected = ord(c) if c in branch else None
            assert trie.get(fresh("p/" + c + "/end")) == expected


@pytest.mark.parametrize("fan_out", [2, 4, 10, 16])
def test_free_child_slots_never_match(trie_cls: Any, fan_out: int) -> None:
    # Unused slots of a 4- or 16-child node hold zero bytes or the byte of a removed child.
    branch = [chr(ord("A") + i) for i in range(fan_out)]
    trie = trie_cls({"p/" + c: c for c in branch})
    del trie["p/" + branch[-1]]
    assert trie.get(fresh("p/" + branch[-1])) is None
    assert trie.get(fresh("p/\x00")) is None
    assert "p/\x00" not in trie
    assert [trie.get(fresh("p/" + c)) for c in branch[:-1]] == branch[:-1]
