"""The RadixTrie contract, over both cores (``trie_cls`` is parametrised in conftest)."""

from __future__ import annotations

import copy
import gc
import pickle
import random
import sys
import weakref
from collections.abc import Callable, Iterator
from types import MappingProxyType
from typing import Any

import pytest

# Keys of every kind the trie must hold, in no particular order.
ODD_KEYS = [
    "",
    "\0",
    "\0\0",
    "a\0b",
    "é",
    "e\u0301",
    "\U0001f600",
    "\U0001f600x",
    "\ud800",
    "\udfff",
    "\ud83d\ude00",  # two lone surrogates: not the same key as "\U0001f600"
    "\uffff",
    "\U0010ffff",
    "ascii",
    "ascii/é/\U0001f600",
]

LONG_KEY = "x" * 50_000 + "é" + "y" * 50_000 + "\U0001f600" + "z" * 100


def filled(trie_cls: Any, keys: list[str]) -> Any:
    trie = trie_cls()
    for n, key in enumerate(keys):
        trie[key] = n
    return trie


def clients_trie(trie_cls: Any) -> Any:
    return filled(
        trie_cls,
        ["client", "clientele", "clients", "clientsX", "clients/page_0", "other", "c"],
    )


# -- construction and the mapping basics -----------------------------------------------


def test_new_trie_is_empty(trie_cls: Any) -> None:
    trie = trie_cls()
    assert len(trie) == 0
    assert not trie
    assert list(trie) == []
    assert "" not in trie
    assert trie.pending_reclaim == 0


def test_constructor_takes_a_mapping(trie_cls: Any) -> None:
    trie = trie_cls({"b": 2, "a": 1})
    assert list(trie.items()) == [("a", 1), ("b", 2)]


def test_constructor_takes_pairs(trie_cls: Any) -> None:
    trie = trie_cls([("b", 2), ("a", 1), ("b", 3)])
    assert list(trie.items()) == [("a", 1), ("b", 3)]


def test_constructor_takes_another_trie(trie_cls: Any) -> None:
    source = trie_cls({"k": 1, "kk": 2})
    trie = trie_cls(source)
    assert list(trie.items()) == [("k", 1), ("kk", 2)]
    trie["k"] = 5
    assert source["k"] == 1


def test_constructor_rejects_keywords(trie_cls: Any) -> None:
    with pytest.raises(TypeError):
        trie_cls(a=1)


def test_set_then_get(trie_cls: Any) -> None:
    trie = trie_cls()
    trie["key"] = "value"
    assert trie["key"] == "value"
    assert len(trie) == 1


def test_none_is_a_value(trie_cls: Any) -> None:
    trie = trie_cls()
    trie["k"] = None
    assert "k" in trie
    assert trie["k"] is None
    assert trie.get("k", "default") is None
    assert trie.pop("k", "default") is None


def test_set_replaces_without_growing(trie_cls: Any) -> None:
    trie = trie_cls({"key": 1})
    trie["key"] = 2
    assert trie["key"] == 2
    assert len(trie) == 1


def test_getitem_missing_raises_keyerror_with_the_key(trie_cls: Any) -> None:
    trie = trie_cls({"abc": 1, "abd": 2})
    for missing in ["ab", "abcd", "x", "", "a"]:
        with pytest.raises(KeyError) as info:
            trie[missing]
        assert info.value.args == (missing,)


def test_delitem_removes(trie_cls: Any) -> None:
    trie = trie_cls({"a": 1, "ab": 2, "abc": 3})
    del trie["ab"]
    assert "ab" not in trie
    assert list(trie.items()) == [("a", 1), ("abc", 3)]


def test_delitem_missing_raises_keyerror(trie_cls: Any) -> None:
    trie = trie_cls({"abc": 1})
    with pytest.raises(KeyError) as info:
        del trie["ab"]
    assert info.value.args == ("ab",)
    assert list(trie.items()) == [("abc", 1)]


def test_contains(trie_cls: Any) -> None:
    trie = trie_cls({"abc": 1, "": 0})
    assert "abc" in trie
    assert "" in trie
    assert "ab" not in trie
    assert "abcd" not in trie


def test_get_with_and_without_default(trie_cls: Any) -> None:
    trie = trie_cls({"a": 1})
    assert trie.get("a") == 1
    assert trie.get("b") is None
    assert trie.get("b", 7) == 7


def test_pop_returns_and_removes(trie_cls: Any) -> None:
    trie = trie_cls({"a": 1, "b": 2})
    assert trie.pop("a") == 1
    assert list(trie) == ["b"]


def test_pop_missing_uses_default_or_raises(trie_cls: Any) -> None:
    trie = trie_cls({"a": 1})
    assert trie.pop("zz", "d") == "d"
    assert trie.pop("zz", default="kw") == "kw"
    assert trie.pop("zz", None) is None
    with pytest.raises(KeyError) as info:
        trie.pop("zz")
    assert info.value.args == ("zz",)
    assert len(trie) == 1


def test_setdefault_inserts_only_when_missing(trie_cls: Any) -> None:
    trie = trie_cls({"a": 1})
    assert trie.setdefault("a", 5) == 1
    assert trie["a"] == 1
    assert trie.setdefault("b", 5) == 5
    assert trie["b"] == 5
    assert trie.setdefault("c") is None
    assert "c" in trie
    assert len(trie) == 3


def test_popitem_takes_the_last_key_in_order(trie_cls: Any) -> None:
    keys = ["b", "a", "ba", "", "bab", "aaa"]
    trie = filled(trie_cls, keys)
    popped = []
    while trie:
        popped.append(trie.popitem())
    assert popped == sorted(((k, keys.index(k)) for k in keys), reverse=True)


def test_popitem_on_empty_raises_keyerror(trie_cls: Any) -> None:
    with pytest.raises(KeyError):
        trie_cls().popitem()


def test_update_from_mapping_pairs_and_keywords(trie_cls: Any) -> None:
    trie = trie_cls({"a": 0})
    trie.update({"a": 1, "b": 2})
    trie.update([("c", 3)], d=4)
    trie.update(e=5)
    trie.update(trie_cls({"f": 6}))
    trie.update()
    assert list(trie.items()) == [("a", 1), ("b", 2), ("c", 3), ("d", 4), ("e", 5), ("f", 6)]


def test_update_takes_any_iterable_of_two_items(trie_cls: Any) -> None:
    trie = trie_cls()
    trie.update([["a", 1], iter(("b", 2)), "c3"])
    assert list(trie.items()) == [("a", 1), ("b", 2), ("c", "3")]


def test_update_from_an_object_with_keys(trie_cls: Any) -> None:
    class KeysOnly:
        def keys(self) -> list[str]:
            return ["k"]

        def __getitem__(self, key: str) -> str:
            return key * 2

    trie = trie_cls()
    trie.update(KeysOnly())
    assert list(trie.items()) == [("k", "kk")]


def test_update_rejects_malformed_pairs(trie_cls: Any) -> None:
    trie = trie_cls()
    with pytest.raises(ValueError):
        trie.update([("a", 1, 2)])
    with pytest.raises(TypeError):
        trie.update([1])
    with pytest.raises(TypeError):
        trie.update(5)
    assert len(trie) == 0


def test_clear_empties(trie_cls: Any) -> None:
    trie = filled(trie_cls, ["a", "ab", "b", ""])
    trie.clear()
    assert len(trie) == 0
    assert list(trie) == []
    assert trie.pending_reclaim == 0
    trie["a"] = 1
    assert list(trie.items()) == [("a", 1)]


def test_copy_is_equal_and_independent(trie_cls: Any) -> None:
    value: list[int] = []
    trie = trie_cls({"a": value, "ab": 2, "": 3})
    dup = trie.copy()
    assert type(dup) is trie_cls
    assert dup == trie
    assert dup["a"] is value
    dup["abc"] = 4
    del dup["a"]
    assert list(trie.items()) == [("", 3), ("a", value), ("ab", 2)]
    assert list(dup.items()) == [("", 3), ("ab", 2), ("abc", 4)]


def test_equality_with_mappings(trie_cls: Any) -> None:
    trie = trie_cls({"a": 1, "b": 2})
    assert trie == {"b": 2, "a": 1}
    assert trie == MappingProxyType({"a": 1, "b": 2})
    assert trie == trie_cls({"a": 1, "b": 2})
    assert trie != {"a": 1}
    assert trie != {"a": 1, "b": 3}
    assert trie != {"a": 1, "c": 2}
    assert trie != trie_cls({"a": 1, "c": 2})
    assert trie != [("a", 1), ("b", 2)]
    assert trie != 1
    assert trie_cls() == {}


def test_equality_uses_identity_first(trie_cls: Any) -> None:
    nan = float("nan")
    assert trie_cls({"a": nan}) == {"a": nan}


def test_unhashable(trie_cls: Any) -> None:
    with pytest.raises(TypeError):
        hash(trie_cls())


def test_repr_looks_like_a_dict(trie_cls: Any) -> None:
    assert repr(trie_cls()) == "RadixTrie({})"
    assert repr(trie_cls({"b": [2], "a": "x"})) == "RadixTrie({'a': 'x', 'b': [2]})"


def test_repr_of_a_trie_inside_itself_terminates(trie_cls: Any) -> None:
    trie = trie_cls()
    trie["self"] = trie
    assert "..." in repr(trie)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_round_trip(trie_cls: Any, protocol: int) -> None:
    trie = filled(trie_cls, ODD_KEYS + [LONG_KEY])
    back = pickle.loads(pickle.dumps(trie, protocol))
    assert type(back) is trie_cls
    assert list(back.items()) == list(trie.items())


def test_copy_module_shallow_and_deep(trie_cls: Any) -> None:
    inner = [1]
    trie = trie_cls({"a": inner})
    assert copy.copy(trie)["a"] is inner
    deep = copy.deepcopy(trie)
    assert deep == trie
    assert deep["a"] is not inner


# -- order and prefix views ------------------------------------------------------------


def test_iteration_is_in_code_point_order(trie_cls: Any) -> None:
    rng = random.Random(7)
    alphabet = "ab/\0é\U0001f600\ud800z"
    keys = {"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6))) for _ in range(400)}
    trie = trie_cls({k: len(k) for k in keys})
    assert list(trie) == sorted(keys)
    assert list(trie.keys()) == sorted(keys)
    assert list(trie.values()) == [len(k) for k in sorted(keys)]
    assert list(trie.items()) == [(k, len(k)) for k in sorted(keys)]


def test_views_are_lazy_iterators(trie_cls: Any) -> None:
    trie = trie_cls({"a": 1, "b": 2})
    for view in (iter(trie), trie.keys(), trie.values(), trie.items(), trie.keys("a")):
        assert isinstance(view, Iterator)
        assert iter(view) is view
    items = trie.items()
    assert next(items) == ("a", 1)
    assert next(items) == ("b", 2)
    with pytest.raises(StopIteration):
        next(items)


def test_prefix_views_select_keys_starting_with_prefix(trie_cls: Any) -> None:
    keys = ["", "a", "ab", "abc", "abd", "abdx", "ac", "b", "ba", "a/é", "a/\U0001f600"]
    trie = filled(trie_cls, keys)
    for prefix in ["", "a", "ab", "abd", "abdx", "abdxy", "a/", "b", "c", "abz", "é"]:
        expected = sorted(k for k in keys if k.startswith(prefix))
        assert list(trie.keys(prefix)) == expected, prefix
        assert list(trie.values(prefix)) == [keys.index(k) for k in expected], prefix
        assert list(trie.items(prefix)) == [(k, keys.index(k)) for k in expected], prefix


def test_prefix_ending_inside_a_compressed_edge(trie_cls: Any) -> None:
    trie = trie_cls({"abcdef": 1, "abcdxy": 2})
    assert list(trie.keys("abcde")) == ["abcdef"]
    assert list(trie.keys("abc")) == ["abcdef", "abcdxy"]
    assert list(trie.keys("abcdefg")) == []
    assert trie.count_prefix("abcde") == 1
    assert trie.count_prefix("abc") == 2
    assert trie.count_prefix("abq") == 0


def test_count_prefix_matches_a_scan(trie_cls: Any) -> None:
    rng = random.Random(3)
    keys = {"".join(rng.choice("ab/é") for _ in range(rng.randint(0, 7))) for _ in range(300)}
    trie = trie_cls(dict.fromkeys(keys, 0))
    prefixes = {k[:n] for k in keys for n in range(len(k) + 1)} | {"zz", "a/z", "ééééééééé"}
    for prefix in prefixes:
        assert trie.count_prefix(prefix) == sum(k.startswith(prefix) for k in keys), prefix
    assert trie.count_prefix("") == len(keys)


# -- invalidate_prefix -----------------------------------------------------------------

REMOVED_BY_CLIENTS = ["clients", "clientsX", "clients/page_0"]


def test_invalidate_prefix_removes_every_key_starting_with_prefix(trie_cls: Any) -> None:
    trie = clients_trie(trie_cls)
    assert trie.invalidate_prefix("clients") == 3
    assert list(trie) == ["c", "client", "clientele", "other"]
    assert len(trie) == 4


MISSING = object()

PROBES: dict[str, Callable[[Any, str], bool]] = {
    "in": lambda t, k: k in t,
    "get": lambda t, k: t.get(k, MISSING) is not MISSING,
    "count_prefix": lambda t, k: t.count_prefix(k) > 0,
    "keys": lambda t, k: k in list(t.keys(k)),
    "values": lambda t, k: list(t.values(k)) != [],
    "items": lambda t, k: k in dict(t.items()),
    "iter": lambda t, k: k in list(t),
    "pop": lambda t, k: t.pop(k, MISSING) is not MISSING,
}


@pytest.mark.parametrize("probe", PROBES.values(), ids=PROBES.keys())
def test_invalidated_keys_are_invisible(trie_cls: Any, probe: Callable[[Any, str], bool]) -> None:
    assert all(probe(clients_trie(trie_cls), key) for key in REMOVED_BY_CLIENTS)
    trie = clients_trie(trie_cls)
    trie.invalidate_prefix("clients")
    assert not any(probe(trie, key) for key in REMOVED_BY_CLIENTS)
    assert len(trie) == 4


def test_invalidated_keys_raise_keyerror(trie_cls: Any) -> None:
    trie = clients_trie(trie_cls)
    trie.invalidate_prefix("clients")
    for key in REMOVED_BY_CLIENTS:
        with pytest.raises(KeyError):
            trie[key]
        with pytest.raises(KeyError):
            del trie[key]
        with pytest.raises(KeyError):
            trie.pop(key)
    assert len(trie) == 4


def test_invalidate_empty_prefix_removes_everything(trie_cls: Any) -> None:
    trie = filled(trie_cls, ODD_KEYS)
    assert trie.invalidate_prefix("") == len(ODD_KEYS)
    assert len(trie) == 0
    assert list(trie.items()) == []
    assert "" not in trie
    assert trie.count_prefix("") == 0
    assert trie.invalidate_prefix("") == 0


def test_invalidate_of_absent_prefix_changes_nothing(trie_cls: Any) -> None:
    trie = clients_trie(trie_cls)
    before = list(trie.items())
    for prefix in ["clientsY", "d", "clientz", "others", "oth" + "\0"]:
        assert trie.invalidate_prefix(prefix) == 0
    assert list(trie.items()) == before
    assert trie.pending_reclaim == 0


def test_invalidate_prefix_inside_an_edge_and_at_a_key(trie_cls: Any) -> None:
    trie = trie_cls({"abcdef": 1, "abcdxy": 2, "ab": 3, "abc": 4, "b": 5})
    assert trie.invalidate_prefix("abcde") == 1
    assert list(trie) == ["ab", "abc", "abcdxy", "b"]
    assert trie.invalidate_prefix("abc") == 2
    assert list(trie) == ["ab", "b"]
    assert trie.count_prefix("ab") == 1
    assert trie.invalidate_prefix("ab") == 1
    assert list(trie.items()) == [("b", 5)]


def test_invalidate_then_reinsert(trie_cls: Any) -> None:
    trie = clients_trie(trie_cls)
    trie.invalidate_prefix("clients")
    trie["clients/page_0"] = "fresh"
    assert trie["clients/page_0"] == "fresh"
    assert trie.count_prefix("clients") == 1
    trie.reclaim()
    assert trie.pending_reclaim == 0
    assert trie["clients/page_0"] == "fresh"
    assert len(trie) == 5


def test_pending_reclaim_counts_until_reclaim(trie_cls: Any) -> None:
    trie = clients_trie(trie_cls)
    assert trie.invalidate_prefix("clients") == 3
    assert trie.pending_reclaim == 3
    assert trie.reclaim() == 3
    assert trie.pending_reclaim == 0
    assert trie.reclaim() == 0


def wide_trie(trie_cls: Any, *prefixes: str) -> Any:
    """1000 keys under each prefix, all leaves of one node."""
    return trie_cls({p + chr(0x100 + n): n for p in prefixes for n in range(1000)})


def test_pending_reclaim_adds_up_over_invalidations(trie_cls: Any) -> None:
    trie = wide_trie(trie_cls, "p/", "q/")
    assert trie.invalidate_prefix("p/") == 1000
    assert trie.invalidate_prefix("q/") == 1000
    left = trie.pending_reclaim
    assert 2000 - 64 <= left < 2000  # the second call released one slice of the first
    assert trie.reclaim() == left
    assert trie.pending_reclaim == 0


def test_later_writes_release_pending_in_bounded_slices(trie_cls: Any) -> None:
    trie = wide_trie(trie_cls, "p/")
    assert trie.invalidate_prefix("p/") == 1000
    assert trie.pending_reclaim == 1000
    trie["w"] = 0
    assert 1000 - 64 <= trie.pending_reclaim < 1000
    for n in range(200):
        trie["w"] = n
    assert trie.pending_reclaim == 0
    assert list(trie.items()) == [("w", 199)]


def test_clear_releases_pending_entries(trie_cls: Any) -> None:
    trie = clients_trie(trie_cls)
    trie.invalidate_prefix("c")
    assert trie.pending_reclaim == 6
    trie.clear()
    assert trie.pending_reclaim == 0


class Tracked:
    """A value that weak references can follow."""


def test_values_are_released_by_reclaim(trie_cls: Any) -> None:
    values = [Tracked() for _ in range(100)]
    refs = [weakref.ref(v) for v in values]
    trie = trie_cls({f"k{n}": v for n, v in enumerate(values)})
    del values
    trie.invalidate_prefix("k")
    assert all(ref() is not None for ref in refs)
    assert trie.reclaim() == 100
    assert all(ref() is None for ref in refs)


REMOVALS: dict[str, Callable[[Any], Any]] = {
    "del": lambda t: t.__delitem__("key"),
    "pop": lambda t: t.pop("key"),
    "popitem": lambda t: t.popitem(),
    "replace": lambda t: t.__setitem__("key", 0),
    "clear": lambda t: t.clear(),
    "invalidate": lambda t: (t.invalidate_prefix("ke"), t.reclaim()),
    "invalidate-all": lambda t: (t.invalidate_prefix(""), t.reclaim()),
    "invalidate-then-writes": lambda t: (
        t.invalidate_prefix("ke"),
        [t.__setitem__("w", n) for n in range(10)],
    ),
}


@pytest.mark.parametrize("remove", REMOVALS.values(), ids=REMOVALS.keys())
def test_removed_value_has_no_extra_references(trie_cls: Any, remove: Callable[[Any], Any]) -> None:
    value = Tracked()
    baseline = sys.getrefcount(value)
    trie = trie_cls()
    for _ in range(50):
        trie["kex"] = "other"  # sorts before "key": popitem takes "key"
        trie["key"] = value
        assert sys.getrefcount(value) == baseline + 1
        remove(trie)
        assert sys.getrefcount(value) == baseline
    ref = weakref.ref(value)
    del value
    assert ref() is None


def test_keys_are_not_leaked(trie_cls: Any) -> None:
    key = f"leak-{id(trie_cls)}"  # a fresh object, not an interned constant
    baseline = sys.getrefcount(key)
    trie = trie_cls()
    for _ in range(50):
        trie[key] = 1
        assert list(trie) == [key]
        del trie[key]
    assert sys.getrefcount(key) == baseline


# -- key kinds -------------------------------------------------------------------------


def test_every_kind_of_key_round_trips(trie_cls: Any) -> None:
    trie = filled(trie_cls, ODD_KEYS)
    assert len(trie) == len(ODD_KEYS)
    for n, key in enumerate(ODD_KEYS):
        assert trie[key] == n, ascii(key)
        assert key in trie
    assert list(trie) == sorted(ODD_KEYS)
    assert all(type(key) is str for key in trie)


def test_surrogate_pair_is_not_the_astral_character(trie_cls: Any) -> None:
    trie = trie_cls({"\ud83d\ude00": "pair"})
    assert "\U0001f600" not in trie
    trie["\U0001f600"] = "astral"
    assert trie["\ud83d\ude00"] == "pair"
    assert trie.count_prefix("\ud83d") == 1
    assert list(trie) == sorted(["\ud83d\ude00", "\U0001f600"])


def test_non_ascii_prefixes(trie_cls: Any) -> None:
    trie = filled(trie_cls, ODD_KEYS)
    for prefix in ["\0", "é", "e", "\U0001f600", "\ud800", "\ud83d", "ascii/é"]:
        expected = sorted(k for k in ODD_KEYS if k.startswith(prefix))
        assert list(trie.keys(prefix)) == expected, ascii(prefix)
        assert trie.count_prefix(prefix) == len(expected), ascii(prefix)
    assert trie.invalidate_prefix("\U0001f600") == 2
    assert trie.invalidate_prefix("\0") == 2
    assert list(trie) == sorted(set(ODD_KEYS) - {"\U0001f600", "\U0001f600x", "\0", "\0\0"})


def test_str_subclass_keys_are_stored_as_str(trie_cls: Any) -> None:
    class Key(str):
        def __getitem__(self, index: Any) -> Any:
            raise AssertionError("the trie must not index through the subclass")

    trie = trie_cls()
    trie[Key("abc")] = 1
    assert trie["abc"] == 1
    assert Key("abc") in trie
    assert trie.count_prefix(Key("ab")) == 1
    assert [type(k) for k in trie] == [str]


def test_long_key_and_its_prefixes(trie_cls: Any) -> None:
    assert len(LONG_KEY) > 100_000
    shorter = LONG_KEY[:70_000]
    trie = trie_cls({LONG_KEY: "long", shorter: "shorter", "x": "x", "xy": "xy"})
    assert trie[LONG_KEY] == "long"
    assert trie[shorter] == "shorter"
    assert LONG_KEY[:-1] not in trie
    assert LONG_KEY + "!" not in trie
    assert trie.count_prefix(LONG_KEY[:50_001]) == 2
    assert trie.count_prefix(LONG_KEY[:60_000]) == 2
    assert trie.count_prefix(LONG_KEY[:80_000]) == 1
    assert trie.count_prefix("x" * 5) == 2
    assert list(trie.keys(LONG_KEY[:100])) == [shorter, LONG_KEY]
    assert list(trie) == sorted([LONG_KEY, shorter, "x", "xy"])
    assert trie.invalidate_prefix(LONG_KEY[:60_000]) == 2
    assert list(trie) == ["x", "xy"]
    assert trie.reclaim() == 2


def test_long_keys_diverging_late(trie_cls: Any) -> None:
    base = "k" * 100_001
    keys = [base + c for c in "ba\0é\U0001f600"] + [base]
    trie = filled(trie_cls, keys)
    assert list(trie) == sorted(keys)
    assert trie.count_prefix(base) == len(keys)
    del trie[base]
    assert trie.pop(base + "a") == 1
    assert list(trie) == sorted(keys[:1] + keys[2:5])


# -- non-str keys and prefixes ---------------------------------------------------------

BAD_KEYS = [1, None, b"bytes", 1.5, ("t",)]

OPERATIONS: dict[str, Callable[[Any, Any], Any]] = {
    "getitem": lambda t, k: t[k],
    "setitem": lambda t, k: t.__setitem__(k, 1),
    "delitem": lambda t, k: t.__delitem__(k),
    "contains": lambda t, k: k in t,
    "get": lambda t, k: t.get(k),
    "get-default": lambda t, k: t.get(k, 0),
    "pop": lambda t, k: t.pop(k),
    "pop-default": lambda t, k: t.pop(k, 0),
    "setdefault": lambda t, k: t.setdefault(k, 0),
    "update-mapping": lambda t, k: t.update({k: 1}),
    "update-pairs": lambda t, k: t.update([(k, 1)]),
    "keys": lambda t, k: t.keys(k),
    "values": lambda t, k: t.values(k),
    "items": lambda t, k: t.items(k),
    "count_prefix": lambda t, k: t.count_prefix(k),
    "invalidate_prefix": lambda t, k: t.invalidate_prefix(k),
}


@pytest.mark.parametrize("bad", BAD_KEYS, ids=lambda b: type(b).__name__)
@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
def test_non_str_raises_typeerror_and_changes_nothing(
    trie_cls: Any, operation: Callable[[Any, Any], Any], bad: Any
) -> None:
    trie = trie_cls({"a": 1, "ab": 2, "": 3})
    trie["gone/1"] = 4
    trie.invalidate_prefix("gone/")
    with pytest.raises(TypeError, match=type(bad).__name__):
        operation(trie, bad)
    assert list(trie.items()) == [("", 3), ("a", 1), ("ab", 2)]
    assert len(trie) == 3
    assert trie.pending_reclaim == 1


@pytest.mark.parametrize("bad", BAD_KEYS, ids=lambda b: type(b).__name__)
def test_constructor_rejects_non_str_keys(trie_cls: Any, bad: Any) -> None:
    with pytest.raises(TypeError, match=type(bad).__name__):
        trie_cls({bad: 1})


# -- deep chains -----------------------------------------------------------------------

CHAIN = 20_000


_CHAINS: dict[Any, Any] = {}


def chain_trie(trie_cls: Any) -> Any:
    """Keys "a", "aa", ... of length 1..CHAIN: a chain of CHAIN nested nodes.

    Inserted longest first, so that building the chain does not cost O(CHAIN**2) steps
    in the pure-Python core; the finished trie is the same either way. Built once per
    core; each test gets a copy.
    """
    if trie_cls not in _CHAINS:
        trie = trie_cls()
        for n in range(CHAIN, 0, -1):
            trie["a" * n] = n
        _CHAINS[trie_cls] = trie
    return _CHAINS[trie_cls].copy()


def test_deep_chain_inserts_counts_and_iterates(trie_cls: Any) -> None:
    trie = chain_trie(trie_cls)
    assert len(trie) == CHAIN
    assert trie["a" * CHAIN] == CHAIN
    assert trie["a"] == 1
    assert trie.count_prefix("a" * 15_000) == CHAIN - 15_000 + 1
    assert sum(1 for _ in trie) == CHAIN
    assert list(trie.values("a" * (CHAIN - 2))) == [CHAIN - 2, CHAIN - 1, CHAIN]
    assert trie.popitem() == ("a" * CHAIN, CHAIN)
    dup = trie.copy()
    assert len(dup) == CHAIN - 1
    assert dup.count_prefix("a" * 19_000) == 1000


def test_deep_chain_invalidate_and_reclaim(trie_cls: Any) -> None:
    trie = chain_trie(trie_cls)
    assert trie.invalidate_prefix("a" * 5_001) == CHAIN - 5_000
    assert len(trie) == 5_000
    assert trie.pending_reclaim == CHAIN - 5_000
    trie["b"] = 0
    left = trie.pending_reclaim
    assert CHAIN - 5_000 - 64 <= left < CHAIN - 5_000
    assert trie.reclaim() == left
    assert trie.pending_reclaim == 0
    assert trie.invalidate_prefix("") == 5_001
    trie.clear()
    assert len(trie) == 0


def test_deep_chain_clear(trie_cls: Any) -> None:
    trie = chain_trie(trie_cls)
    trie.clear()
    assert len(trie) == 0
    assert list(trie) == []


def test_deep_chain_is_garbage_collected(trie_cls: Any) -> None:
    trie = chain_trie(trie_cls)
    marker = Tracked()
    ref = weakref.ref(marker)
    trie["a" * CHAIN] = marker
    del marker
    del trie
    gc.collect()
    assert ref() is None


def test_deep_chain_pending_is_garbage_collected(trie_cls: Any) -> None:
    trie = chain_trie(trie_cls)
    marker = Tracked()
    ref = weakref.ref(marker)
    trie["a" * CHAIN] = marker
    del marker
    trie.invalidate_prefix("a")
    del trie
    gc.collect()
    assert ref() is None


# -- iteration and mutation ------------------------------------------------------------

STRUCTURAL = {
    "new-key": lambda t: t.__setitem__("new", 1),
    "delitem": lambda t: t.__delitem__("b"),
    "pop": lambda t: t.pop("b"),
    "popitem": lambda t: t.popitem(),
    "setdefault-new": lambda t: t.setdefault("new", 1),
    "invalidate": lambda t: t.invalidate_prefix("b"),
    "invalidate-all": lambda t: t.invalidate_prefix(""),
    "clear": lambda t: t.clear(),
    "update-new": lambda t: t.update({"new": 1}),
}

VIEWS = {
    "iter": lambda t: iter(t),
    "keys": lambda t: t.keys(),
    "values": lambda t: t.values(),
    "items": lambda t: t.items(),
    "keys-prefix": lambda t: t.keys("a"),
}


@pytest.mark.parametrize("view", VIEWS.values(), ids=VIEWS.keys())
@pytest.mark.parametrize("mutate", STRUCTURAL.values(), ids=STRUCTURAL.keys())
def test_structural_change_during_iteration_raises(
    trie_cls: Any, mutate: Callable[[Any], Any], view: Callable[[Any], Iterator[Any]]
) -> None:
    trie = trie_cls({"a": 1, "aa": 2, "ab": 3, "b": 4, "c": 5})
    it = view(trie)
    next(it)
    mutate(trie)
    with pytest.raises(RuntimeError):
        next(it)


def test_change_before_first_next_raises(trie_cls: Any) -> None:
    trie = trie_cls({"a": 1})
    it = iter(trie)
    trie["b"] = 2
    with pytest.raises(RuntimeError):
        next(it)


def test_iterator_stays_broken_after_a_change(trie_cls: Any) -> None:
    trie = trie_cls({"a": 1, "b": 2, "c": 3})
    it = iter(trie)
    next(it)
    del trie["c"]
    with pytest.raises(RuntimeError):
        next(it)
    with pytest.raises(RuntimeError):
        next(it)


def test_exhausted_iterator_stays_exhausted(trie_cls: Any) -> None:
    trie = trie_cls({"a": 1})
    it = iter(trie)
    assert list(it) == ["a"]
    trie["b"] = 2
    with pytest.raises(StopIteration):
        next(it)


def test_replacing_values_during_iteration_is_allowed(trie_cls: Any) -> None:
    trie = trie_cls({"a": 1, "b": 2, "c": 3})
    seen = []
    for key, value in trie.items():
        seen.append((key, value))
        trie["c"] = 30
        trie.setdefault("a", 0)
        trie.update({"b": 20})
    assert seen == [("a", 1), ("b", 20), ("c", 30)]


def test_new_iterator_after_a_change_works(trie_cls: Any) -> None:
    trie = trie_cls({"a": 1})
    it = iter(trie)
    trie["b"] = 2
    with pytest.raises(RuntimeError):
        next(it)
    assert list(trie) == ["a", "b"]
