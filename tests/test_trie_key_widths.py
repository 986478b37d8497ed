"""Keys of every UTF-8 width at the edges of the lookups' short-key path (64 characters).

The compiled core encodes short non-ASCII probe keys itself instead of asking CPython for
their UTF-8 form, and compares labels and searches child arrays a word at a time; these
tests hold both cores to ``dict`` on keys built to hit those edges.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
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


# Short keys of each str storage width (1, 2 and 4 bytes a character) and one of 64
# characters, the longest the compiled core encodes on the stack.
SHORT_KEYS = ["ké/" + "é" * 20, "k中/" + "中" * 20, "k\U00010000/" + "\U0001f600" * 20, "é" * 64]


def _remove_if_old(d: dict[str, object], k: str) -> None:
    if d.get(k) == "old":
        del d[k]


# Each call with a key: (on the trie, on a dict holding the same entries).
CALLS: dict[
    str, tuple[Callable[[Any, str], object], Callable[[dict[str, object], str], object]]
] = {
    "setitem": (lambda t, k: t.__setitem__(k, "new"), lambda d, k: d.__setitem__(k, "new")),
    "put": (lambda t, k: t.put(k, "new"), lambda d, k: d.__setitem__(k, "new")),
    "put over max_weight": (lambda t, k: t.put(k, "new", 1000), lambda d, k: d.pop(k)),
    "setdefault": (lambda t, k: t.setdefault(k, "new"), lambda d, k: d.setdefault(k, "new")),
    "delitem": (lambda t, k: t.__delitem__(k), lambda d, k: d.__delitem__(k)),
    "pop": (lambda t, k: t.pop(k), lambda d, k: d.pop(k)),
    "pop absent": (lambda t, k: t.pop(k, None), lambda d, k: None),
    "remove_if_is": (lambda t, k: t.remove_if_is(k, "old"), _remove_if_old),
    "get": (lambda t, k: t.get(k), lambda d, k: None),
    "contains": (lambda t, k: k in t, lambda d, k: None),
}


# The calls made with a key the trie does not hold.
ABSENT = {"setdefault", "pop absent"}


BOUNDS: list[dict[str, int]] = [{}, {"max_entries": 100}, {"max_weight": 100}]


@pytest.mark.parametrize(
    ("call", "bound"),
    [
        (call, bound)
        for call in sorted(CALLS)
        for bound in BOUNDS
        # Only a trie with max_weight refuses a heavy entry.
        if call != "put over max_weight" or "max_weight" in bound
    ],
    ids=str,
)
def test_short_non_ascii_keys_get_no_utf8_copy_kept_inside_them(
    trie_cls: Any, call: str, bound: dict[str, int]
) -> None:
    # CPython keeps the UTF-8 form of a str once asked for it, and sys.getsizeof counts it:
    # the trie encodes a short key itself, so the caller's key is no bigger after a call.
    on_trie, on_dict = CALLS[call]
    for key in SHORT_KEYS:
        trie = trie_cls(**bound)
        expected: dict[str, object] = {}
        for k in (key, key + "a", key[:-1]):
            if not (k == key and call in ABSENT):
                trie[k] = expected[k] = "old"
        probe = fresh(key)
        size = sys.getsizeof(probe)
        on_trie(trie, probe)
        assert sys.getsizeof(probe) == size
        on_dict(expected, key)
        assert dict(trie.items()) == expected
