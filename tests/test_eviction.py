"""The bound of a RadixTrie (issue 10): SIEVE eviction, weights, expiry, and their interplay
with deferred release, re-entrant finalisers, threads, copies and pickling -- both cores."""

from __future__ import annotations

import copy
import gc
import importlib
import pickle
import random
from typing import Any

import pytest
from sieve_model import SieveModel
from threads import run_threads, unexpected

# -- construction --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["max_entries", "max_weight"])
@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (0, ValueError),
        (-1, ValueError),
        (True, TypeError),
        (False, TypeError),
        (1.0, TypeError),
        ("10", TypeError),
    ],
)
def test_bad_bounds_are_refused(trie_cls: Any, name: str, bad: object, error: type) -> None:
    with pytest.raises(error, match=name):
        trie_cls(**{name: bad})


def test_bad_expired_is_refused(trie_cls: Any) -> None:
    with pytest.raises(TypeError, match="int"):
        trie_cls(max_entries=2, expired=3)


@pytest.mark.parametrize(("bad", "error"), [(-1, ValueError), (True, TypeError), (1.5, TypeError)])
def test_bad_weight_is_refused_and_changes_nothing(trie_cls: Any, bad: object, error: type) -> None:
    trie = trie_cls({"a": 1}, max_weight=10)
    with pytest.raises(error, match="weight"):
        trie.put("a", 2, bad)
    assert dict(trie.items()) == {"a": 1}
    assert trie.weight == 1


def test_bounds_are_read_only_properties(trie_cls: Any) -> None:
    trie = trie_cls(max_entries=5, max_weight=50)
    assert (trie.max_entries, trie.max_weight, trie.weight, trie.evictions) == (5, 50, 0, 0)
    with pytest.raises(AttributeError):
        trie.max_entries = 6
    unbounded = trie_cls({"a": 1, "b": 2})
    assert (unbounded.max_entries, unbounded.max_weight, unbounded.weight) == (None, None, 2)


# -- the policy ----------------------------------------------------------------------------


def test_fifo_without_hits(trie_cls: Any) -> None:
    trie = trie_cls(max_entries=3)
    for key in "abcdef":
        trie[key] = key
    assert list(trie) == ["d", "e", "f"]
    assert trie.evictions == 3


def test_a_hit_protects_an_entry_until_the_hand_wraps_around(trie_cls: Any) -> None:
    trie = trie_cls({"a": 1, "b": 2, "c": 3}, max_entries=3)
    assert trie.get("a") == 1
    trie["d"] = 4  # the hand clears a's bit and evicts b
    assert list(trie) == ["a", "c", "d"]
    trie["e"] = 5  # the hand stayed on c: c goes
    assert list(trie) == ["a", "d", "e"]
    trie["f"] = 6  # d goes: the hand moves on from where it stopped, not from the oldest
    trie["g"] = 7  # e goes
    assert list(trie) == ["a", "f", "g"]
    trie["h"] = 8  # f goes; the hand is on g
    trie["i"] = 9  # g goes; the hand is on h
    assert list(trie) == ["a", "h", "i"]
    trie["j"] = 10  # h goes; the hand is on i
    trie["k"] = 11  # i goes: the hand keeps to the new end while it finds victims there
    trie["l"] = 12  # j goes
    assert list(trie) == ["a", "k", "l"]
    trie.get("k")
    trie.get("l")
    trie["m"] = 13  # k, l lose their bits, the hand wraps around: a goes at last
    assert list(trie) == ["k", "l", "m"]
    assert trie.evictions == 10


def test_replacing_keeps_one_queue_entry_and_its_place(trie_cls: Any) -> None:
    trie = trie_cls({"a": 1, "b": 2}, max_entries=2)
    trie["a"] = 10  # a keeps its place (oldest) and counts as visited
    assert len(trie) == 2
    trie["c"] = 3  # a visited: b goes
    assert dict(trie.items()) == {"a": 10, "c": 3}
    assert trie.evictions == 1


def test_setdefault_of_a_present_key_is_a_hit(trie_cls: Any) -> None:
    trie = trie_cls({"a": 1, "b": 2}, max_entries=2)
    assert trie.setdefault("a", 9) == 1
    trie["c"] = 3
    assert sorted(trie) == ["a", "c"]


def test_membership_and_iteration_are_not_hits(trie_cls: Any) -> None:
    trie = trie_cls({"a": 1, "b": 2}, max_entries=2)
    assert "a" in trie
    assert list(trie.items()) == [("a", 1), ("b", 2)]
    trie["c"] = 3
    assert sorted(trie) == ["b", "c"]


def test_weight_bound_evicts_until_the_new_entry_fits(trie_cls: Any) -> None:
    trie = trie_cls(max_weight=10)
    for key in "abcde":
        assert trie.put(key, key, 2)
    assert trie.weight == 10
    assert trie.put("big", 0, 7)
    assert dict(trie.items()) == {"big": 0, "e": "e"}
    assert trie.weight == 9
    assert trie.evictions == 4


def test_an_entry_heavier_than_the_bound_is_not_stored_and_drops_the_old_one(
    trie_cls: Any,
) -> None:
    trie = trie_cls(max_weight=10)
    trie.put("k", "old", 3)
    trie.put("other", 1, 3)
    assert trie.put("k", "new", 11) is False
    assert "k" not in trie
    assert dict(trie.items()) == {"other": 1}
    assert trie.weight == 3
    assert trie.evictions == 0


def test_replacing_with_a_heavier_value_evicts_others_not_itself(trie_cls: Any) -> None:
    trie = trie_cls(max_weight=6)
    for key in "abc":
        trie.put(key, key, 2)
    trie.put("b", "B", 6)
    assert dict(trie.items()) == {"b": "B"}
    assert trie.weight == 6


def test_zero_weight_entries_are_bounded_by_count_only(trie_cls: Any) -> None:
    trie = trie_cls(max_entries=3, max_weight=5)
    for i in range(10):
        trie.put(f"k{i}", i, 0)
    assert len(trie) == 3
    assert trie.weight == 0


def test_plain_writes_weigh_one(trie_cls: Any) -> None:
    trie = trie_cls(max_weight=3)
    for key in "abcde":
        trie[key] = 0
    assert len(trie) == 3
    assert trie.weight == 3


def test_internal_nodes_holding_values_are_weighed_apart_from_their_subtree(
    trie_cls: Any,
) -> None:
    trie = trie_cls(max_weight=100)
    trie.put("a", 1, 5)
    trie.put("ab", 2, 7)
    trie.put("abc", 3, 11)
    trie.put("ab", 4, 1)  # replace the middle one
    assert trie.weight == 17
    del trie["ab"]
    assert trie.weight == 16
    assert trie.invalidate_prefix("abc") == 1
    assert trie.weight == 5


def test_unbounded_put_ignores_weight(trie_cls: Any) -> None:
    trie = trie_cls()
    assert trie.put("a", 1, 1000)
    assert trie.weight == 1
    assert trie.evictions == 0


def test_without_max_weight_every_entry_weighs_one(trie_cls: Any) -> None:
    # The compiled core keeps no weights then (its leaves are smaller for it).
    trie = trie_cls(max_entries=3)
    assert trie.put("a", 1, 1000)
    assert trie.put("b", 2, 0)
    trie["c"] = 3
    assert trie.weight == 3
    trie.put("a", 4, 7)  # a replace is weighed alike
    assert trie.weight == 3
    assert trie.put("d", 5, 2**48)
    assert (len(trie), trie.weight, trie.evictions) == (3, 3, 1)
    assert [w for _, _, w, _ in trie.__reduce__()[2][0]] == [1, 1, 1]
    assert trie.copy().weight == 3


@pytest.mark.parametrize("max_weight", [None, 10**9])
def test_a_bounded_trie_that_never_evicts_keeps_the_shape_of_a_dict(
    trie_cls: Any, max_weight: int | None
) -> None:
    # Leaves that grow children, splits at a leaf, nodes shrinking back to leaves, exact and
    # wider invalidations, slices of reclaim: the counts, contents and weight stay a dict's.
    rng = random.Random(7)
    trie = trie_cls(max_entries=10**6, max_weight=max_weight)
    model: dict[str, int] = {}
    keys = ["".join(rng.choice("ab/é") for _ in range(rng.randrange(0, 7))) for _ in range(300)]
    for step in range(6000):
        key = rng.choice(keys)
        roll = rng.random()
        if roll < 0.55:
            trie[key] = model[key] = step
        elif roll < 0.8:
            assert trie.pop(key, None) == model.pop(key, None)
        elif roll < 0.9:
            prefix = key[: rng.randrange(len(key) + 1)]
            gone = [k for k in model if k.startswith(prefix)]
            assert trie.invalidate_prefix(prefix) == len(gone)
            for k in gone:
                del model[k]
        elif roll < 0.95:
            trie.reclaim()
        else:
            prefix = key[: rng.randrange(len(key) + 1)]
            assert trie.count_prefix(prefix) == sum(1 for k in model if k.startswith(prefix))
        if step % 500 == 0:
            assert dict(trie.items()) == model
    assert dict(trie.items()) == model
    assert (len(trie), trie.weight, trie.evictions) == (len(model), len(model), 0)
    assert sorted(k for k, _, _, _ in trie.__reduce__()[2][0]) == sorted(model)


@pytest.mark.parametrize("max_weight", [None, 100])
@pytest.mark.parametrize(
    ("keys", "left"),
    [
        (["a", "b", "c"], ["b", "c"]),  # the victim hangs from the root
        (["ab", "a", "c"], ["a", "c"]),  # its parent keeps a value
        (["ab", "ac", "x"], ["ac", "x"]),  # its parent, valueless, is merged with "ac"
        (["ab", "ac", "ad", "x"], ["ac", "ad", "x"]),  # its parent keeps two children
        (["a", "ab", "ac", "x"], ["ab", "ac", "x"]),  # the victim has children
        (["", "a", "b", "x"], ["a", "b", "x"]),  # the victim is the root
    ],
)
def test_each_shape_of_victim_leaves_the_trie_whole(
    trie_cls: Any, keys: list[str], left: list[str], max_weight: int | None
) -> None:
    trie = trie_cls(max_entries=len(keys) - 1, max_weight=max_weight)
    for key in keys:
        trie.put(key, key.upper(), 2)
    assert sorted(trie) == left
    assert trie.evictions == 1
    assert trie.weight == len(left) * (2 if max_weight else 1)
    prefixes = {k[:i] for k in keys for i in range(len(k) + 1)}
    for prefix in prefixes:
        assert trie.count_prefix(prefix) == sum(1 for k in left if k.startswith(prefix))
    for key in left:  # the structure still finds, replaces, removes and re-adds every key
        assert trie.pop(key) == key.upper()
        trie[key] = key
    assert dict(trie.items()) == {k: k for k in left}


# -- expiry ----------------------------------------------------------------------------------


class Stamped:
    def __init__(self, stale: bool) -> None:
        self.stale = stale


def _is_stale(value: Stamped) -> bool:
    return value.stale


def test_the_hand_removes_expired_entries_whatever_their_bit(trie_cls: Any) -> None:
    trie = trie_cls(max_entries=3, expired=_is_stale)
    trie["a"] = Stamped(False)
    trie["b"] = Stamped(True)
    trie["c"] = Stamped(True)
    trie.get("a")
    trie.get("b")
    trie.get("c")
    trie["d"] = Stamped(False)  # a: visited, kept; b: expired although visited
    assert sorted(trie) == ["a", "c", "d"]
    assert (trie.evictions, trie.expirations) == (0, 1)
    trie["e"] = Stamped(False)  # the hand is on c: expired
    assert sorted(trie) == ["a", "d", "e"]
    assert (trie.evictions, trie.expirations) == (0, 2)


def test_expired_is_asked_only_when_room_is_needed(trie_cls: Any) -> None:
    asked: list[str] = []

    def expired(value: str) -> bool:
        asked.append(value)
        return False

    trie = trie_cls(max_entries=2, expired=expired)
    trie["a"] = "a"
    trie["b"] = "b"
    assert trie.get("a") == "a"
    assert asked == []
    trie["c"] = "c"
    assert asked == ["a", "b"]


def test_an_expired_predicate_that_raises_leaves_the_trie_consistent(trie_cls: Any) -> None:
    def expired(value: int) -> bool:
        raise RuntimeError("boom")

    trie = trie_cls({"a": 1}, max_entries=1, expired=expired)
    with pytest.raises(RuntimeError, match="boom"):
        trie["b"] = 2
    assert dict(trie.items()) == {"a": 1, "b": 2}  # stored; the bound waits for the next write
    trie.expired  # noqa: B018 - the property is readable
    assert len(trie) == 2


def test_an_expired_predicate_that_writes_to_the_trie(trie_cls: Any) -> None:
    trie: Any = None

    def expired(value: int) -> bool:
        if value == 1 and "x" not in trie:
            trie["x"] = 99  # changes the trie under the hand: the hand looks again
        return False

    trie = trie_cls({"a": 1, "b": 2}, max_entries=2, expired=expired)
    trie["c"] = 3
    assert len(trie) <= 2
    assert "c" in trie


# -- deferred release ----------------------------------------------------------------------


def test_detached_entries_leave_len_and_weight_at_once_and_are_never_victims(
    trie_cls: Any,
) -> None:
    trie = trie_cls(max_entries=100, max_weight=1000)
    for i in range(100):
        trie.put(f"old/{i:03d}", i, 3)
    assert trie.invalidate_prefix("old/") == 100
    assert (len(trie), trie.weight) == (0, 0)
    assert trie.pending_reclaim > 0
    for i in range(100):
        trie.put(f"new/{i:03d}", i, 3)
    assert len(trie) == 100
    assert trie.evictions == 0  # the detached entries took no room and were no victims
    trie["one more"] = 0
    assert trie.evictions == 1
    assert "new/000" not in trie  # the oldest live entry went, not a detached one
    trie.reclaim()
    assert trie.pending_reclaim == 0
    assert len(trie) == 100


def test_the_hand_on_a_detached_entry_moves_to_the_next_live_one(trie_cls: Any) -> None:
    model = SieveModel(max_entries=4)
    trie = trie_cls(max_entries=4)
    for key in ["a", "b", "x/1", "x/2"]:
        trie[key] = key
        model.put(key, key)
    for key in ["a", "b"]:
        trie.get(key)
        model.get(key)
    trie["c"] = "c"  # the hand clears a, b and evicts x/1: it stays on x/2
    model.put("c", "c")
    trie.invalidate_prefix("x/")
    model.invalidate_prefix("x/")
    for key in ["d", "e", "f"]:
        trie[key] = key
        model.put(key, key)
        assert dict(trie.items()) == model.values
    assert trie.evictions == model.evictions


def test_eviction_interleaved_with_pending_reclaim_matches_the_model(trie_cls: Any) -> None:
    rng = random.Random(7)
    trie = trie_cls(max_entries=50)
    model = SieveModel(max_entries=50)
    for step in range(4000):
        key = f"t{rng.randrange(8)}/{rng.randrange(40)}"
        op = rng.random()
        if op < 0.6:
            trie[key] = step
            model.put(key, step)
        elif op < 0.9:
            assert trie.get(key) == model.get(key)
        elif op < 0.98:
            prefix = key[: rng.randrange(1, 3)]
            trie.invalidate_prefix(prefix)
            model.invalidate_prefix(prefix)
        else:
            trie.reclaim()
        assert len(trie) <= 50
    assert dict(trie.items()) == model.values
    assert trie.evictions == model.evictions


def test_clear_empties_the_queue(trie_cls: Any) -> None:
    trie = trie_cls({"a": 1, "b": 2}, max_entries=2)
    trie.clear()
    trie["c"] = 3
    trie["d"] = 4
    trie["e"] = 5
    assert list(trie) == ["d", "e"]


# -- copies and pickles ------------------------------------------------------------------


def _decisions(trie: Any, keys: list[str]) -> list[list[str]]:
    seen = []
    for key in keys:
        trie[key] = key
        seen.append(sorted(trie))
    return seen


def test_copy_keeps_bounds_weights_queue_order_visited_bits_and_hand(trie_cls: Any) -> None:
    trie = trie_cls(max_entries=4, max_weight=40)
    for key in "abcdef":
        trie.put(key, key, 5)
    trie.get("d")
    trie.get("f")
    twin = trie.copy()
    assert (twin.max_entries, twin.max_weight, twin.weight) == (4, 40, trie.weight)
    assert twin.evictions == 0
    more = [f"n{i}" for i in range(9)]
    assert _decisions(twin, more) == _decisions(trie, more)


def test_pickle_keeps_the_queue_and_the_bounds(trie_cls: Any) -> None:
    trie = trie_cls(max_entries=4)
    for key in "abcdef":
        trie[key] = key
    trie.get("c")
    back = pickle.loads(pickle.dumps(trie))
    assert type(back) is trie_cls
    assert back.max_entries == 4
    more = [f"n{i}" for i in range(9)]
    assert _decisions(back, more) == _decisions(trie, more)


def test_copy_skips_detached_entries(trie_cls: Any) -> None:
    trie = trie_cls(max_entries=10)
    for i in range(10):
        trie[f"k{i}"] = i
    trie.invalidate_prefix("k1")
    twin = trie.copy()
    assert dict(twin.items()) == dict(trie.items())
    assert len(twin) == 9


# -- re-entrant finalisers -----------------------------------------------------------------


class TouchesTrieOnDel:
    """A value whose __del__ reads, writes and invalidates the trie that evicts it."""

    def __init__(self, trie: Any, n: int, log: list[Any]) -> None:
        self.trie = trie
        self.n = n
        self.log = log

    def __del__(self) -> None:
        trie = self.trie
        try:
            self.log.append((self.n, len(trie), trie.get(f"k{self.n}")))
            if self.n % 3 == 0:
                trie[f"from-del/{self.n}"] = self.n
            if self.n % 5 == 0:
                trie.invalidate_prefix("from-del/")
            list(trie.items())
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            self.log.append(exc)


def test_victims_finalisers_may_use_the_trie(trie_cls: Any) -> None:
    log: list[Any] = []
    trie = trie_cls(max_entries=8)
    for n in range(300):
        trie[f"k{n}"] = TouchesTrieOnDel(trie, n, log)
        if n % 7 == 0:
            trie.get(f"k{n - 3}")
        assert len(trie) <= 8
    assert not [entry for entry in log if isinstance(entry, BaseException)]
    assert len(log) >= 250
    # Each victim was gone from the trie (structure consistent) when its __del__ ran.
    assert all(entry[2] is None for entry in log)
    trie.clear()
    gc.collect()


def test_a_finaliser_that_refills_during_eviction_keeps_the_bound(trie_cls: Any) -> None:
    trie = trie_cls(max_entries=5)

    class Refill:
        def __init__(self, n: int) -> None:
            self.n = n

        def __del__(self) -> None:
            if self.n < 200:
                trie[f"refill/{self.n}"] = Refill(self.n + 100)

    for n in range(60):
        trie[f"k{n}"] = Refill(n)
        assert len(trie) <= 5
    trie.clear()


# -- threads -----------------------------------------------------------------------------------


def test_six_threads_on_one_bounded_trie(trie_cls: Any) -> None:
    trie = trie_cls(max_entries=200, max_weight=1500)

    def work(seed: int) -> None:
        rng = random.Random(seed)
        for step in range(3000):
            key = f"t{rng.randrange(6)}/{rng.randrange(400)}"
            op = rng.random()
            if op < 0.45:
                trie.put(key, step, rng.randrange(12))
            elif op < 0.85:
                trie.get(key)
            elif op < 0.9:
                trie.pop(key, None)
            elif op < 0.93:
                trie.invalidate_prefix(key[:2])
            elif op < 0.95:
                trie.setdefault(key, step)
            elif op < 0.96:
                trie.copy()
            else:
                for _ in trie.items(key[:2]):
                    break
            assert len(trie) <= 200 + 6  # other threads may be between store and evict

    assert unexpected(run_threads(work)) == []
    trie["final"] = 0
    assert len(trie) <= 200
    assert trie.weight <= 1500
    assert len(list(trie)) == len(trie)


# -- both cores decide alike -----------------------------------------------------------------


def _random_run(cls: Any, seed: int) -> list[Any]:
    rng = random.Random(seed)
    trie = cls(max_entries=rng.choice([None, 3, 20]), max_weight=rng.choice([None, 15, 80]))
    if trie.max_entries is None and trie.max_weight is None:
        trie = cls(max_entries=7)
    trace: list[Any] = []
    alphabet = ["a", "b", "/", "é", "\U0001f600", "\udc80"]
    for step in range(600):
        key = "".join(rng.choice(alphabet) for _ in range(rng.randrange(5)))
        op = rng.random()
        if op < 0.35:
            trace.append(trie.put(key, step, rng.randrange(10)))
        elif op < 0.5:
            trie[key] = step
        elif op < 0.75:
            trace.append(trie.get(key))
        elif op < 0.8:
            trace.append(trie.setdefault(key, step))
        elif op < 0.85:
            trace.append(trie.pop(key, None))
        elif op < 0.9:
            trace.append(trie.invalidate_prefix(key[:1]))
        elif op < 0.92:
            trie = trie.copy()
        elif op < 0.94:
            trie = pickle.loads(pickle.dumps(trie))
        elif op < 0.96:
            trie.reclaim()
        elif len(trie):
            trace.append(trie.popitem())
        trace.append((sorted(trie.items()), trie.weight))
    return trace


@pytest.mark.parametrize("seed", range(12))
def test_both_cores_evict_the_same_keys(seed: int) -> None:
    compiled = importlib.import_module("trie_cache._radix").RadixTrie
    pure = importlib.import_module("trie_cache._radix_py").RadixTrie
    assert _random_run(compiled, seed) == _random_run(pure, seed)


# -- issue 12, item 7: every write releases a slice of deferred garbage --------------------


def _with_garbage(trie_cls: Any, **bounds: Any) -> Any:
    trie = trie_cls(**bounds)
    for i in range(2000):
        trie[f"g/{i}"] = i
    trie.invalidate_prefix("g/")
    return trie


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(lambda t: t.setdefault("new", 1), id="setdefault"),
        pytest.param(lambda t: t.update({"new": 1}), id="update"),
        pytest.param(lambda t: t.__ior__({"new": 1}), id="ior"),
        pytest.param(lambda t: t.put("new", 1, 1), id="put"),
        pytest.param(lambda t: t.copy(), id="copy"),
        pytest.param(lambda t: t.__setitem__("new", 1), id="setitem"),
    ],
)
@pytest.mark.parametrize("bounded", [False, True], ids=["unbounded", "bounded"])
def test_every_write_releases_a_slice(trie_cls: Any, write: Any, bounded: bool) -> None:
    trie = _with_garbage(trie_cls, **({"max_entries": 5000} if bounded else {}))
    pending = trie.pending_reclaim
    write(trie)
    assert trie.pending_reclaim < pending


def test_alternating_setdefault_and_invalidation_does_not_pile_up_garbage(
    trie_cls: Any,
) -> None:
    trie = trie_cls()
    for round_ in range(300):
        for i in range(20):
            trie.setdefault(f"r/{i}", round_)
        trie.invalidate_prefix("r/")
    assert len(trie) == 0
    assert trie.pending_reclaim < 200


def test_constructor_and_unpickling_release_what_they_inherit(trie_cls: Any) -> None:
    source = _with_garbage(trie_cls)
    pending = source.pending_reclaim
    trie_cls.__init__(source, {"x": 1})  # re-running the constructor writes like update
    assert source.pending_reclaim < pending
    back = pickle.loads(pickle.dumps(source))
    assert back.pending_reclaim == 0
    assert dict(back.items()) == dict(source.items())


def test_or_makes_a_new_trie(trie_cls: Any) -> None:
    trie = trie_cls({"a": 1})
    both = trie | {"b": 2}
    assert dict(both.items()) == {"a": 1, "b": 2}
    assert dict(trie.items()) == {"a": 1}
    trie |= [("c", 3)]
    assert dict(trie.items()) == {"a": 1, "c": 3}


# -- issue 12, item 8: tries in reference cycles pickle and deep-copy like a dict ----------


class Holder:
    def __init__(self, trie: Any) -> None:
        self.trie = trie


@pytest.mark.parametrize("bounds", [{}, {"max_entries": 10}], ids=["unbounded", "bounded"])
def test_a_trie_inside_itself_pickles_and_deep_copies(trie_cls: Any, bounds: Any) -> None:
    trie = trie_cls(**bounds)
    trie["self"] = trie
    trie["other"] = 1
    for back in (pickle.loads(pickle.dumps(trie)), copy.deepcopy(trie)):
        assert back["self"] is back
        assert back["other"] == 1
        assert back.max_entries == trie.max_entries


@pytest.mark.parametrize("bounds", [{}, {"max_weight": 10}], ids=["unbounded", "bounded"])
def test_a_value_referring_back_to_its_trie_pickles_and_deep_copies(
    trie_cls: Any, bounds: Any
) -> None:
    trie = trie_cls(**bounds)
    trie["h"] = Holder(trie)
    for back in (pickle.loads(pickle.dumps(trie)), copy.deepcopy(trie)):
        assert back["h"].trie is back


def test_a_long_chain_of_tries_pickles(trie_cls: Any) -> None:
    top = trie = trie_cls()
    for _ in range(200):
        inner = trie_cls()
        trie["next"] = inner
        trie = inner
    back = pickle.loads(pickle.dumps(top))
    depth = 0
    while "next" in back:
        back = back["next"]
        depth += 1
    assert depth == 200


def test_pickling_while_the_collector_changes_the_trie_raises_instead_of_crashing(
    trie_cls: Any,
) -> None:
    # The pickler's allocations run the collector (threshold 1), whose callback writes to the
    # trie and evicts. The compiled core used to read a freed node here; now the pickling
    # stops with RuntimeError as soon as it sees the change (or, if no collection fell inside
    # its walk, the pickle is whole).
    trie = trie_cls(max_entries=30)
    for i in range(30):
        trie[f"k{i}"] = i
    writes = 0

    def meddle(phase: str, info: dict[str, Any]) -> None:
        nonlocal writes
        if phase == "start" and writes < 1000:
            writes += 1
            trie[f"gc/{writes}"] = writes  # evicts, so nodes the pickler saw may go

    threshold = gc.get_threshold()
    gc.callbacks.append(meddle)
    gc.set_threshold(1)
    data = None
    try:
        data = pickle.dumps(trie)
    except RuntimeError as exc:
        assert "changed" in str(exc)
    finally:
        gc.set_threshold(*threshold)
        gc.callbacks.remove(meddle)
    assert len(trie) == 30
    if data is not None:
        back = pickle.loads(data)
        assert len(back) <= 30
        assert back.max_entries == 30
