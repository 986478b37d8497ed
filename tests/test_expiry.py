"""Expiry that frees memory (issue 10), both cores: a trie with ``expired`` and no bound keeps
its entries in a store-order queue and each write removes up to two expired entries at its
oldest end; ``remove_expired``; the compare-and-delete ``remove_if_is``; and ``MemCache``, whose
``get`` removes the expired rows it meets. Time is a fake clock or a flag on a value: no sleeps.
"""

from __future__ import annotations

import asyncio
import copy
import importlib
import math
import pickle
import random
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sieve_model import SieveModel
from threads import run_threads, unexpected

from trie_cache import CachedRows, MemCache, _cache, _memcache

# -- a clock the predicates read (values are the times they were stored at) ------------------

_NOW = [0]


def _older_than_2(value: int) -> bool:
    """Expired: stored more than 2 ticks ago (module level, so tries with it pickle)."""
    return _NOW[0] - value > 2


@pytest.fixture(autouse=True)
def _clock_at_zero() -> None:
    _NOW[0] = 0


class Flagged:
    def __init__(self, expired: bool = False) -> None:
        self.expired = expired


def _flagged(value: Flagged) -> bool:
    return value.expired


def _never(value: object) -> bool:
    return False


def _queue(trie: Any) -> list[str]:
    """The keys in queue order, oldest first (a queued trie pickles its queue)."""
    entries, _hand = trie.__reduce__()[2]
    return [entry[0] for entry in entries]


# -- the store-order queue of a trie with expired and no bound ------------------------------


def test_expired_without_a_bound_keeps_the_queue_in_store_order(trie_cls: Any) -> None:
    trie = trie_cls(expired=_older_than_2)
    for key in "abc":
        trie[key] = 0
    trie["a"] = 0  # a replaced key moves to the newest end
    trie.setdefault("b", 0)  # a hit moves nothing
    trie.put("d", 0, 5)
    assert _queue(trie) == ["b", "c", "a", "d"]
    assert (trie.max_entries, trie.max_weight, trie.expired) == (None, None, _older_than_2)
    assert (len(trie), trie.evictions, trie.expirations) == (4, 0, 0)


def test_each_write_removes_at_most_two_expired_entries_at_the_oldest_end(trie_cls: Any) -> None:
    trie = trie_cls(expired=_older_than_2)
    for i in range(10):
        trie[f"old/{i}"] = 0
    _NOW[0] = 10
    trie["new/0"] = 10
    assert _queue(trie) == [f"old/{i}" for i in range(2, 10)] + ["new/0"]
    assert (len(trie), trie.expirations) == (9, 2)
    for i in range(1, 5):
        trie[f"new/{i}"] = 10
    assert (len(trie), trie.expirations) == (5, 10)
    assert sorted(trie) == [f"new/{i}" for i in range(5)]
    trie["new/5"] = 10  # nothing expired is left: the oldest entry stops the walk
    assert (len(trie), trie.expirations, trie.evictions) == (6, 10, 0)


def test_the_walk_stops_at_the_first_entry_that_is_not_expired(trie_cls: Any) -> None:
    trie = trie_cls(expired=_flagged)
    trie["a"] = Flagged(True)
    trie["b"] = Flagged(False)
    trie["c"] = Flagged(True)
    trie["d"] = Flagged(False)
    assert _queue(trie) == ["b", "c", "d"]  # a went with d's write; b stopped the walk
    assert trie.expirations == 1


def test_a_write_never_expires_its_own_entry(trie_cls: Any) -> None:
    trie = trie_cls(expired=_flagged)
    trie["a"] = Flagged(True)
    assert list(trie) == ["a"]
    trie["a"] = Flagged(True)  # replaced: still the write's own entry
    assert list(trie) == ["a"]
    trie["b"] = Flagged(True)
    assert list(trie) == ["b"]
    assert trie.expirations == 1


def test_an_expiry_step_goes_on_when_the_write_s_own_node_shrinks(trie_cls: Any) -> None:
    # Removing a29 leaves the node of a2 (the entry this write stored) without children: the
    # compiled core reallocates it smaller, which must not end the step early.
    trie = trie_cls(expired=_older_than_2)
    trie["a29"] = 0
    trie["b"] = 0
    _NOW[0] = 10
    trie["a2"] = 10
    assert (_queue(trie), trie.expirations) == (["a2"], 2)


def test_a_replaced_key_is_examined_by_its_new_place(trie_cls: Any) -> None:
    trie = trie_cls(expired=_older_than_2)
    trie["a"] = 0
    trie["b"] = 0
    _NOW[0] = 5
    trie["a"] = 5  # fresh rows, newest end: b is the oldest now, expired, and goes
    assert _queue(trie) == ["a"]
    trie["c"] = 5
    assert _queue(trie) == ["a", "c"]
    assert trie.expirations == 1


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(lambda t: t.__setitem__("new", Flagged()), id="setitem"),
        pytest.param(lambda t: t.put("new", Flagged(), 3), id="put"),
        pytest.param(lambda t: t.setdefault("new", Flagged()), id="setdefault"),
        pytest.param(lambda t: t.update({"new": Flagged()}), id="update"),
        pytest.param(lambda t: t.__ior__({"new": Flagged()}), id="ior"),
    ],
)
def test_every_storing_write_expires(trie_cls: Any, write: Any) -> None:
    trie = trie_cls({"x": Flagged(), "y": Flagged(), "z": Flagged()}, expired=_flagged)
    for value in trie.values():
        value.expired = True
    write(trie)
    assert sorted(trie) == ["new", "z"]
    assert trie.expirations == 2


def test_reads_and_removals_expire_nothing(trie_cls: Any) -> None:
    trie = trie_cls({"x": Flagged(), "y": Flagged(), "z": Flagged()}, expired=_flagged)
    for value in trie.values():
        value.expired = True
    trie.get("x")
    assert trie["y"].expired  # a read
    assert "z" in trie
    trie.pop("z")
    del trie["y"]
    trie.invalidate_prefix("nothing")
    assert (list(trie), trie.expirations) == (["x"], 0)


def test_a_bounded_trie_leaves_expiry_to_its_hand(trie_cls: Any) -> None:
    trie = trie_cls(max_entries=5, expired=_flagged)
    for key in "abcd":
        trie[key] = Flagged(True)
    assert len(trie) == 4  # under the bound: writes examine nothing
    trie["e"] = Flagged(False)
    trie["f"] = Flagged(False)  # over the bound: the hand removes what it meets expired
    assert sorted(trie) == ["b", "c", "d", "e", "f"]
    assert (trie.expirations, trie.evictions) == (1, 0)
    trie["b"] = Flagged(True)  # replaced: keeps its place (SIEVE), unlike an expiry-only trie
    assert _queue(trie) == ["b", "c", "d", "e", "f"]


# -- remove_expired ---------------------------------------------------------------------------


def test_remove_expired_walks_the_oldest_end_while_expired(trie_cls: Any) -> None:
    trie = trie_cls(expired=_older_than_2)
    for i in range(100):
        trie.put(f"k{i:03d}", 0)
    trie["late"] = 3
    for i in range(100, 110):
        trie.put(f"k{i:03d}", 0)  # stored after "late": the walk stops before them
    _NOW[0] = 4
    assert trie.remove_expired() == 100
    assert trie.expirations == 100
    assert _queue(trie)[0] == "late"
    assert trie.remove_expired() == 0
    _NOW[0] = 9
    assert trie.remove_expired() == 11
    assert (len(trie), trie.expirations) == (0, 111)


def test_remove_expired_on_a_bounded_trie_walks_its_queue(trie_cls: Any) -> None:
    trie = trie_cls(max_entries=10, expired=_flagged)
    for key in "abcd":
        trie[key] = Flagged(key != "c")
    assert trie.remove_expired() == 2
    assert _queue(trie) == ["c", "d"]


def test_remove_expired_without_expired_removes_nothing(trie_cls: Any) -> None:
    for trie in (trie_cls({"a": 1}), trie_cls({"a": 1}, max_entries=3)):
        assert trie.remove_expired() == 0
        assert list(trie) == ["a"]


def test_remove_expired_takes_no_arguments(trie_cls: Any) -> None:
    trie = trie_cls(expired=_flagged)
    with pytest.raises(TypeError):
        trie.remove_expired(1)


# -- remove_if_is: a compare-and-delete -------------------------------------------------------


@pytest.mark.parametrize(
    "bounds",
    [{}, {"max_entries": 10}, {"expired": _never}],
    ids=["plain", "bounded", "expiring"],
)
def test_remove_if_is_removes_only_that_very_value(trie_cls: Any, bounds: dict[str, Any]) -> None:
    first, twin = [1, 2], [1, 2]
    trie = trie_cls(**bounds)
    trie["k"] = first
    trie["k/x"] = Flagged()
    assert trie.remove_if_is("k", twin) is False  # equal is not enough
    assert trie.remove_if_is("missing", first) is False
    assert trie.remove_if_is("k/", first) is False  # a path node holding no value
    assert trie.remove_if_is("k", first) is True
    assert trie.remove_if_is("k", first) is False
    assert list(trie) == ["k/x"]
    assert (len(trie), trie.weight) == (1, 1)
    trie["k"] = twin
    assert sorted(trie) == ["k", "k/x"]


def test_a_stale_compare_and_delete_leaves_a_newer_value(trie_cls: Any) -> None:
    trie = trie_cls(expired=_flagged)
    seen = Flagged(True)
    trie["k"] = seen
    found = trie.get("k")  # a reader finds expired rows ...
    newer = Flagged()
    trie["k"] = newer  # ... another writer stores newer ones ...
    assert trie.remove_if_is("k", found) is False  # ... the reader's removal is a no-op
    assert trie["k"] is newer
    assert trie.expirations == 0


@pytest.mark.parametrize(("key", "name"), [(5, "int"), (b"k", "bytes"), (None, "NoneType")])
def test_remove_if_is_refuses_a_non_str_key(trie_cls: Any, key: Any, name: str) -> None:
    trie = trie_cls({"k": 1}, expired=_flagged)
    with pytest.raises(TypeError, match=name):
        trie.remove_if_is(key, 1)
    with pytest.raises(TypeError):
        trie.remove_if_is("k")
    assert dict(trie.items()) == {"k": 1}


def test_remove_if_is_releases_a_slice_of_pending_garbage(trie_cls: Any) -> None:
    trie = trie_cls()
    for i in range(2000):
        trie[f"g/{i}"] = i
    trie["k"] = value = Flagged()
    trie.invalidate_prefix("g/")
    pending = trie.pending_reclaim
    assert trie.remove_if_is("k", value)
    assert trie.pending_reclaim < pending


# -- interplay: pending reclaim, predicates and finalisers that act, iterators, copies ---------


def test_detached_entries_at_the_oldest_end_are_skipped_not_counted(trie_cls: Any) -> None:
    trie = trie_cls(expired=_older_than_2)
    for i in range(500):
        trie[f"gone/{i:03d}"] = 0
    for i in range(5):
        trie[f"old/{i}"] = 0
    assert trie.invalidate_prefix("gone/") == 500
    assert trie.pending_reclaim > 0  # still queued, waiting for release
    _NOW[0] = 10
    trie["new/0"] = 10
    assert sorted(trie) == ["new/0", "old/2", "old/3", "old/4"]
    assert trie.expirations == 2
    assert trie.remove_expired() == 3
    trie.reclaim()
    assert (sorted(trie), trie.pending_reclaim) == (["new/0"], 0)


def test_a_predicate_that_raises_leaves_the_write_done_and_the_trie_consistent(
    trie_cls: Any,
) -> None:
    calls = [0]

    def expired(value: int) -> bool:
        calls[0] += 1
        if value < 0:
            raise RuntimeError("boom")
        return value == 0

    trie = trie_cls(expired=expired)
    trie["bad"] = -1
    with pytest.raises(RuntimeError, match="boom"):
        trie["a"] = 1
    assert dict(trie.items()) == {"a": 1, "bad": -1}  # stored; nothing removed
    del trie["bad"]
    trie["b"] = 0
    trie["c"] = 2
    assert (sorted(trie), trie.expirations) == (["a", "b", "c"], 0)  # a is not expired
    del trie["a"]
    trie["d"] = 2  # b: expired, removed; c: not, the walk stops
    assert (sorted(trie), trie.expirations) == (["c", "d"], 1)
    assert len(list(trie)) == len(trie)
    del trie["c"], trie["d"]
    trie["e"] = -1
    with pytest.raises(RuntimeError, match="boom"):
        trie["f"] = 0  # raises on e; the write's own entry f is not protected after it
    del trie["e"]
    assert (trie.remove_expired(), list(trie), trie.expirations) == (1, [], 2)


def test_a_predicate_that_writes_ends_the_step(trie_cls: Any) -> None:
    armed = [False]

    def expired(value: Flagged) -> bool:
        if armed[0]:
            armed[0] = False
            del trie["x"]  # a change inside the predicate: the step ends
        return value.expired

    trie = trie_cls({"a": Flagged(), "b": Flagged(), "x": Flagged()}, expired=expired)
    trie["a"].expired = trie["b"].expired = True
    armed[0] = True
    trie["c"] = Flagged()
    assert (_queue(trie), trie.expirations) == (["a", "b", "c"], 0)
    trie["d"] = Flagged()  # the next write examines the oldest two again
    assert (_queue(trie), trie.expirations) == (["c", "d"], 2)


class Haunted(Flagged):
    """A value whose finaliser writes into (and reads) the trie it lived in."""

    def __init__(self, trie: Any, expired: bool) -> None:
        super().__init__(expired)
        self.trie = trie

    def __del__(self) -> None:
        trie = self.trie
        if trie is not None and len(trie) < 50:
            trie.get("a")
            trie[f"ghost/{len(trie)}"] = Flagged()


def test_a_finaliser_that_writes_during_an_expiry_step(trie_cls: Any) -> None:
    trie = trie_cls(expired=_flagged)
    for i in range(6):
        trie[f"h/{i}"] = Haunted(trie, True)
    trie["new"] = Flagged()
    assert "new" in trie
    assert any(key.startswith("ghost/") for key in trie)
    assert len(list(trie)) == len(trie)
    for _ in range(10):
        trie["more"] = Flagged()
    assert len(list(trie)) == len(trie)
    for key in list(trie):
        value = trie[key]
        if isinstance(value, Haunted):
            value.trie = None


def test_iterators_fail_after_a_write_that_expires_and_only_then(trie_cls: Any) -> None:
    trie = trie_cls({"a": Flagged(), "b": Flagged(), "c": Flagged()}, expired=_flagged)
    keys = iter(trie)
    assert next(keys) == "a"
    trie["a"] = Flagged()  # replaced (moves to the newest end), expired nothing: as today
    assert _queue(trie) == ["b", "c", "a"]
    assert next(keys) == "b"
    trie["c"].expired = True  # not the oldest (b is): the next write removes nothing
    trie["c"] = Flagged()
    assert next(keys) == "c"
    assert trie.expirations == 0
    values = iter(trie.values())
    next(values)
    trie["b"].expired = True
    trie["a"].expired = True
    trie["a"] = Flagged()  # a replace that expires b: the shape changed
    assert (sorted(trie), trie.expirations) == (["a", "c"], 1)
    with pytest.raises(RuntimeError, match="changed"):
        next(values)


@pytest.mark.parametrize(
    "clone",
    [
        pytest.param(lambda t: t.copy(), id="copy"),
        pytest.param(copy.copy, id="copy.copy"),
        pytest.param(copy.deepcopy, id="deepcopy"),
        pytest.param(lambda t: pickle.loads(pickle.dumps(t)), id="pickle"),
    ],
)
def test_copies_keep_the_store_order_and_expire_alike(trie_cls: Any, clone: Any) -> None:
    trie = trie_cls(expired=_older_than_2)
    for i, key in enumerate(["m", "a", "z", "b", "y"]):
        trie[key] = i
    trie["a"] = 5
    twin = clone(trie)
    assert type(twin) is type(trie)
    assert _queue(twin) == _queue(trie) == ["m", "z", "b", "y", "a"]
    assert twin.expired is _older_than_2
    _NOW[0] = 5  # m (0) and z (2) expired, b (3) not yet
    for t in (trie, twin):
        t["new"] = 5
    assert _queue(twin) == _queue(trie) == ["b", "y", "a", "new"]
    assert twin.expirations == trie.expirations == 2


def test_six_threads_on_one_expiring_trie(trie_cls: Any) -> None:
    trie = trie_cls(expired=_flagged)

    def work(seed: int) -> None:
        rng = random.Random(seed)
        for step in range(3000):
            key = f"t{rng.randrange(6)}/{rng.randrange(300)}"
            op = rng.random()
            if op < 0.45:
                trie[key] = Flagged(rng.random() < 0.6)
            elif op < 0.75:
                found = trie.get(key)
                if found is not None and found.expired:
                    trie.remove_if_is(key, found)
            elif op < 0.82:
                trie.pop(key, None)
            elif op < 0.85:
                trie.invalidate_prefix(key[:2])
            elif op < 0.9:
                trie.put(key, Flagged(), step % 7)
            elif op < 0.93:
                trie.remove_expired()
            elif op < 0.95:
                trie.copy()
            else:
                for _ in trie.items(key[:2]):
                    break

    assert unexpected(run_threads(work)) == []
    assert len(list(trie)) == len(trie) == sum(1 for _ in trie.values())
    for value in trie.values():
        value.expired = True
    trie.remove_expired()
    trie.reclaim()
    assert (len(trie), list(trie), trie.pending_reclaim) == (0, [], 0)
    assert trie.weight == 0


# -- both cores decide alike, and as the model says --------------------------------------------


def _random_run(cls: Any, seed: int, bounded: bool) -> list[Any]:
    rng = random.Random(seed)
    _NOW[0] = 0
    trie = cls(max_entries=6 if bounded else None, expired=_older_than_2)
    trace: list[Any] = []
    alphabet = ["a", "b", "/", "é", "\U0001f600", "\udc80"]
    for step in range(800):
        key = "".join(rng.choice(alphabet) for _ in range(rng.randrange(4)))
        op = rng.random()
        if op < 0.08:
            _NOW[0] += 1
        elif op < 0.35:
            trie[key] = _NOW[0] - rng.randrange(4)
        elif op < 0.45:
            trace.append(trie.put(key, _NOW[0], rng.randrange(4)))
        elif op < 0.6:
            found = trie.get(key)
            trace.append(found)
            if found is not None and _older_than_2(found):
                trace.append(trie.remove_if_is(key, found))
        elif op < 0.65:
            trace.append(trie.setdefault(key, _NOW[0]))
        elif op < 0.72:
            trace.append(trie.pop(key, None))
        elif op < 0.77:
            del_key = key if key in trie else None
            if del_key is not None:
                del trie[del_key]
        elif op < 0.83:
            trace.append(trie.invalidate_prefix(key[:1]))
        elif op < 0.87:
            trace.append(trie.remove_expired())
        elif op < 0.89:
            trie = trie.copy()
        elif op < 0.91:
            trie = pickle.loads(pickle.dumps(trie))
        elif op < 0.94:
            trie.reclaim()
        elif len(trie):
            trace.append(trie.popitem())
        trace.append((step, _queue(trie), trie.weight, trie.expirations, trie.evictions))
    return trace


@pytest.mark.parametrize("bounded", [False, True], ids=["expiry-only", "bounded"])
@pytest.mark.parametrize("seed", range(8))
def test_both_cores_expire_the_same_keys(seed: int, bounded: bool) -> None:
    compiled = importlib.import_module("trie_cache._radix").RadixTrie
    pure = importlib.import_module("trie_cache._radix_py").RadixTrie
    assert _random_run(compiled, seed, bounded) == _random_run(pure, seed, bounded)


@pytest.mark.parametrize("seed", range(4))
def test_an_expiring_trie_replays_as_the_model(trie_cls: Any, seed: int) -> None:
    rng = random.Random(seed)
    trie = trie_cls(expired=_older_than_2)
    model = SieveModel(expired=_older_than_2)
    for _ in range(3000):
        key = f"{rng.choice('ab')}{rng.randrange(40)}"
        op = rng.random()
        if op < 0.1:
            _NOW[0] += 1
        elif op < 0.55:
            value = _NOW[0] - rng.randrange(4)
            trie[key] = value
            model.put(key, value)
        elif op < 0.7:
            found = trie.get(key)
            assert found == model.get(key)
            if found is not None:
                assert trie.remove_if_is(key, found) == model.remove_if_is(key, found)
        elif op < 0.8:
            assert trie.pop(key, None) == model.values.get(key)
            model.remove([key])
        elif op < 0.85:
            trie.invalidate_prefix(key[:2])
            model.invalidate_prefix(key[:2])
        elif op < 0.9:
            assert trie.remove_expired() == model.remove_expired()
        elif op < 0.93:
            trie.reclaim()
        assert _queue(trie) == model.queue
        assert trie.expirations == model.expirations
    assert dict(trie.items()) == model.values


_keys = st.text(alphabet=["a", "b", "é", "\U0001f600"], max_size=3)


class ExpiringTrieAgainstModel(RuleBasedStateMachine):
    """A trie with ``expired`` (with or without a bound) keeps what the model keeps."""

    trie_cls: Any = None

    def __init__(self) -> None:
        super().__init__()
        self.trie: Any = None
        self.model = SieveModel()

    @initialize(max_entries=st.none() | st.integers(min_value=1, max_value=5))
    def start(self, max_entries: int | None) -> None:
        _NOW[0] = 0
        self.trie = self.trie_cls(max_entries=max_entries, expired=_older_than_2)
        self.model = SieveModel(max_entries, None, _older_than_2)

    @rule()
    def tick(self) -> None:
        _NOW[0] += 1

    @rule(key=_keys, age=st.integers(min_value=0, max_value=4))
    def put(self, key: str, age: int) -> None:
        self.trie[key] = _NOW[0] - age
        self.model.put(key, _NOW[0] - age)

    @rule(key=_keys)
    def get_and_remove_if_expired(self, key: str) -> None:
        found = self.trie.get(key)
        assert found == self.model.get(key)
        if found is not None and _older_than_2(found):
            assert self.trie.remove_if_is(key, found) == self.model.remove_if_is(key, found)

    @rule(key=_keys)
    def setdefault(self, key: str) -> None:
        assert self.trie.setdefault(key, _NOW[0]) == self.model.setdefault(key, _NOW[0])

    @rule(key=_keys)
    def pop(self, key: str) -> None:
        assert self.trie.pop(key, None) == self.model.values.get(key)
        self.model.remove([key])

    @rule(prefix=st.text(alphabet=["a", "b", "é"], max_size=2))
    def invalidate_prefix(self, prefix: str) -> None:
        self.trie.invalidate_prefix(prefix)
        self.model.invalidate_prefix(prefix)

    @rule()
    def remove_expired(self) -> None:
        assert self.trie.remove_expired() == self.model.remove_expired()

    @rule()
    def reclaim(self) -> None:
        self.trie.reclaim()

    @rule()
    def pickle_round_trip(self) -> None:
        self.trie = pickle.loads(pickle.dumps(self.trie))
        self.model.evictions = self.model.expirations = 0

    @invariant()
    def same_entries_and_order(self) -> None:
        if self.trie is None:
            return
        assert dict(self.trie.items()) == self.model.values
        assert _queue(self.trie) == self.model.queue
        assert (self.trie.expirations, self.trie.evictions) == (
            self.model.expirations,
            self.model.evictions,
        )


def test_expiring_trie_follows_the_model(trie_cls: Any) -> None:
    machine = type("ExpiringMachine", (ExpiringTrieAgainstModel,), {"trie_cls": trie_cls})
    run_state_machine_as_test(  # type: ignore[no-untyped-call, unused-ignore]
        machine,
        settings=settings(
            max_examples=60,
            stateful_step_count=40,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


# -- MemCache -----------------------------------------------------------------------------------


class FakeTime:
    """Stands in for the ``time`` module inside ``trie_cache._memcache``."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime(1_800_000_000.0)
    monkeypatch.setattr(_memcache, "time", fake)
    monkeypatch.setattr(_cache, "time", fake)  # the explicit max_age check (Cache._aged)
    return fake


async def _fill(cache: MemCache, clock: FakeTime, count: int) -> None:
    for i in range(count):
        await cache.put(f"t/clients/page_{i}", CachedRows({}, clock.now))


N = 100_000


async def test_issue_scenario_gets_remove_what_expired(trie_cls: Any, clock: FakeTime) -> None:
    cache = MemCache(_trie_cls=trie_cls, max_age=1)
    await _fill(cache, clock, N)
    assert (len(cache), cache.stats().expirations) == (N, 0)
    clock.now += 1.5  # "then wait"
    for i in range(N):
        assert await cache.get(f"t/clients/page_{i}") is None
        if i == N // 2 - 1:
            assert (len(cache), cache.stats().expirations) == (N // 2, N // 2)
    stats = cache.stats()
    assert (len(cache), stats.expirations, stats.misses, stats.hits) == (0, N, N, 0)
    assert len(list(cache._trie)) == 0


async def test_issue_scenario_new_puts_drain_two_old_entries_each(
    trie_cls: Any, clock: FakeTime
) -> None:
    cache = MemCache(_trie_cls=trie_cls, max_age=1)
    await _fill(cache, clock, N)
    clock.now += 1.5
    for i in range(N // 4):
        await cache.put(f"t/orders/page_{i}", CachedRows({}, clock.now))
    assert (len(cache), cache.stats().expirations) == (N - N // 2 + N // 4, N // 2)
    for i in range(N // 4, N // 2):
        await cache.put(f"t/orders/page_{i}", CachedRows({}, clock.now))
    assert (len(cache), cache.stats().expirations) == (N // 2, N)
    assert cache._trie.count_prefix("t/clients/") == 0
    await cache.put("one/more", CachedRows({}, clock.now))  # the rest are fresh: none go
    assert (len(cache), cache.stats().expirations) == (N // 2 + 1, N)


async def test_issue_scenario_remove_expired(trie_cls: Any, clock: FakeTime) -> None:
    cache = MemCache(_trie_cls=trie_cls, max_age=1)
    await _fill(cache, clock, N)
    assert cache.remove_expired() == 0
    clock.now += 1.5
    await cache.put("fresh", CachedRows({}, clock.now))
    assert cache.remove_expired() == N - 2
    assert (len(cache), cache.stats().expirations) == (1, N)
    with pytest.raises(TypeError):
        cache.remove_expired(1)  # type: ignore[call-arg]


async def test_rows_inside_the_stale_window_stay(trie_cls: Any, clock: FakeTime) -> None:
    cache = MemCache(_trie_cls=trie_cls, max_age=10, stale_while_revalidate=60)
    await cache.put("a", CachedRows({}, clock.now))
    await cache.put("b", CachedRows({}, clock.now))
    clock.now += 30  # past max_age, inside the stale window: a miss for get, kept
    assert await cache.get("a") is None
    await cache.put("c", CachedRows({}, clock.now))
    assert cache.remove_expired() == 0
    assert (len(cache), cache.stats().expirations) == (3, 0)

    async def fetch() -> CachedRows:
        return CachedRows({}, clock.now)

    stale = await cache.get_or_fetch("a", fetch)
    assert stale.fetched_at == clock.now - 30  # served stale while a refresh runs
    clock.now += 45  # past max_age + the window: expired
    assert await cache.get("b") is None
    assert await cache.get("b", max_age=math.inf) is None  # removed by the default get
    assert cache.stats().expirations == 1


async def test_get_with_an_explicit_max_age_removes_nothing(trie_cls: Any, clock: FakeTime) -> None:
    cache = MemCache(_trie_cls=trie_cls, max_age=5)
    await cache.put("k", CachedRows({}, clock.now - 100))
    assert await cache.get("k", max_age=10) is None
    assert await cache.get("k", max_age=math.inf) is not None
    assert (len(cache), cache.stats().expirations) == (1, 0)
    assert await cache.get("k") is None
    assert (len(cache), cache.stats().expirations) == (0, 1)


async def test_a_cache_without_max_age_expires_nothing(trie_cls: Any, clock: FakeTime) -> None:
    cache = MemCache(_trie_cls=trie_cls)
    assert cache._trie.expired is None  # and so no queue: the plain trie's memory
    await cache.put("k", CachedRows({}, clock.now - 10**6))
    await cache.put("j", CachedRows({}, clock.now))
    assert await cache.get("k") is not None
    assert (cache.remove_expired(), len(cache), cache.stats().expirations) == (0, 2, 0)


@pytest.mark.parametrize(
    "ages", [{"max_age": math.inf}, {"max_age": 1, "stale_while_revalidate": math.inf}]
)
async def test_nothing_expires_when_rows_stay_servable_forever(
    trie_cls: Any, clock: FakeTime, ages: dict[str, Any]
) -> None:
    cache = MemCache(_trie_cls=trie_cls, **ages)
    assert cache._trie.expired is None  # no queue kept
    await cache.put("k", CachedRows({}, clock.now - 10**6))
    await cache.put("j", CachedRows({}, clock.now))
    await cache.get("k")
    assert (len(cache), cache.remove_expired(), cache.stats().expirations) == (2, 0, 0)


async def test_a_bounded_cache_get_removes_expired_rows_too(trie_cls: Any, clock: FakeTime) -> None:
    cache = MemCache(_trie_cls=trie_cls, max_age=1, max_entries=100, max_bytes=100_000)
    for key in ("a", "b", "c"):
        await cache.put(key, CachedRows({"r": {"v": 1}}, clock.now))
    weight = cache.nbytes
    clock.now += 2
    await cache.put("d", CachedRows({"r": {"v": 1}}, clock.now))
    assert len(cache) == 4  # a bounded cache's writes leave expiry to the hand
    assert await cache.get("b") is None
    assert (len(cache), cache.nbytes, cache.stats().expirations) == (3, weight, 1)
    assert cache.remove_expired() == 2
    assert sorted(cache._trie) == ["d"]


async def test_fills_drain_expired_entries_too(trie_cls: Any, clock: FakeTime) -> None:
    cache = MemCache(_trie_cls=trie_cls, max_age=1)
    await _fill(cache, clock, 10)
    clock.now += 2

    async def fetch() -> CachedRows:
        return CachedRows({}, clock.now)

    for i in range(3):
        await cache.get_or_fetch(f"filled/{i}", fetch)
    assert (len(cache), cache.stats().expirations, cache.stats().fills) == (7, 6, 3)


def test_threads_share_a_cache_with_max_age(trie_cls: Any) -> None:
    cache = MemCache(_trie_cls=trie_cls, max_age=60)

    async def work(rng: random.Random) -> None:
        for i in range(1500):
            key = f"t{rng.randrange(3)}/{rng.randrange(200)}"
            op = rng.random()
            if op < 0.45:
                await cache.put(key, CachedRows({}, time.time() - rng.choice((0, 0, 3600))))
            elif op < 0.9:
                await cache.get(key)
            elif op < 0.95:
                await cache.get(key, max_age=math.inf)
            elif op < 0.97:
                cache.remove_expired()
            else:
                await cache.invalidate_prefix(key[:2])

    assert run_threads(lambda seed: asyncio.run(work(random.Random(seed)))) == []
    assert len(cache) == len(list(cache._trie))
    assert cache.stats().expirations > 0
    for key in list(cache._trie):
        asyncio.run(cache.get(key))  # meets every expired row left: removes it
    assert all(time.time() - rows.fetched_at < 60 for rows in cache._trie.values())
    assert len(cache) == len(list(cache._trie))
