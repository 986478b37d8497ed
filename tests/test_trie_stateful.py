"""Random sequences of operations on a RadixTrie, checked against a plain dict, and on a
bounded RadixTrie, checked against a SIEVE model."""

from __future__ import annotations

import pickle
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

ALPHABET = ["a", "b", "/", "\0", "é", "\U0001f600"]
keys = st.text(alphabet=ALPHABET, max_size=6)
prefixes = st.text(alphabet=ALPHABET, max_size=3)
values = st.integers(min_value=0, max_value=9)

SETTINGS = settings(
    max_examples=40,
    stateful_step_count=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class TrieAgainstDict(RuleBasedStateMachine):
    """The trie must answer every question exactly as the dict model does."""

    trie_cls: Any = None

    def __init__(self) -> None:
        super().__init__()
        self.trie = self.trie_cls()
        self.model: dict[str, int] = {}

    @initialize(contents=st.dictionaries(keys, values, max_size=8))
    def fill(self, contents: dict[str, int]) -> None:
        self.trie = self.trie_cls(contents)
        self.model = dict(contents)

    @rule(key=keys, value=values)
    def set(self, key: str, value: int) -> None:
        self.trie[key] = value
        self.model[key] = value

    @rule(key=keys)
    def get(self, key: str) -> None:
        assert self.trie.get(key, -1) == self.model.get(key, -1)
        assert (key in self.trie) == (key in self.model)
        if key in self.model:
            assert self.trie[key] == self.model[key]

    @rule(key=keys)
    def delete(self, key: str) -> None:
        if key in self.model:
            del self.trie[key]
            del self.model[key]
        else:
            try:
                del self.trie[key]
            except KeyError as exc:
                assert exc.args == (key,)
            else:
                raise AssertionError(f"del of missing {key!r} did not raise KeyError")

    @rule(key=keys)
    def pop(self, key: str) -> None:
        assert self.trie.pop(key, -1) == self.model.pop(key, -1)

    @rule(key=keys, value=values)
    def setdefault(self, key: str, value: int) -> None:
        assert self.trie.setdefault(key, value) == self.model.setdefault(key, value)

    @rule()
    def popitem(self) -> None:
        if not self.model:
            try:
                self.trie.popitem()
            except KeyError:
                return
            raise AssertionError("popitem on an empty trie did not raise KeyError")
        last = max(self.model)
        assert self.trie.popitem() == (last, self.model.pop(last))

    @rule(prefix=prefixes)
    def invalidate_prefix(self, prefix: str) -> None:
        doomed = [k for k in self.model if k.startswith(prefix)]
        pending = self.trie.pending_reclaim
        assert self.trie.invalidate_prefix(prefix) == len(doomed)
        for key in doomed:
            del self.model[key]
        assert self.trie.pending_reclaim <= pending + len(doomed)

    @rule()
    def reclaim(self) -> None:
        pending = self.trie.pending_reclaim
        assert self.trie.reclaim() == pending
        assert self.trie.pending_reclaim == 0

    @rule(prefix=prefixes)
    def count_prefix(self, prefix: str) -> None:
        assert self.trie.count_prefix(prefix) == sum(k.startswith(prefix) for k in self.model)

    @rule(prefix=prefixes)
    def keys_with_prefix(self, prefix: str) -> None:
        expected = sorted(k for k in self.model if k.startswith(prefix))
        assert list(self.trie.keys(prefix)) == expected
        assert list(self.trie.items(prefix)) == [(k, self.model[k]) for k in expected]

    @rule()
    def copy(self) -> None:
        self.trie = self.trie.copy()

    @invariant()
    def same_length(self) -> None:
        assert len(self.trie) == len(self.model)

    @invariant()
    def same_items_in_order(self) -> None:
        assert list(self.trie.items()) == sorted(self.model.items())

    @invariant()
    def pending_is_never_negative(self) -> None:
        assert self.trie.pending_reclaim >= 0

    @invariant()
    def twin_nodes_are_compressed_and_counted(self) -> None:
        # The pure-Python core's nodes are Python objects: check its layout directly.
        # (The compiled core's nodes are C structs that Python code cannot reach.)
        root = getattr(self.trie, "_root", None)
        if root is None:
            return
        stack = [root]
        while stack:
            node = stack.pop()
            has_value = node.key is not None
            assert node.count == has_value + sum(c.count for c in node.children.values())
            if node is not root:
                assert has_value or len(node.children) >= 2
            for first, child in node.children.items():
                assert child.label[:1] == first
                stack.append(child)


def test_trie_behaves_like_a_dict(trie_cls: Any) -> None:
    machine = type("Machine", (TrieAgainstDict,), {"trie_cls": trie_cls})
    run_state_machine_as_test(machine, settings=SETTINGS)  # type: ignore[no-untyped-call]


def _zero_is_expired(value: int) -> bool:
    return value == 0


# Few keys, so that reads hit and writes replace often enough to exercise the visited bits.
bounded_keys = st.text(alphabet=["a", "b", "é", "\U0001f600"], max_size=3)

BOUNDED_SETTINGS = settings(SETTINGS, max_examples=80)


class BoundedTrieAgainstSieve(RuleBasedStateMachine):
    """A bounded trie must keep exactly the entries a SIEVE model keeps, op after op."""

    trie_cls: Any = None

    def __init__(self) -> None:
        super().__init__()
        self.trie: Any = None
        self.model = SieveModel()

    @initialize(
        max_entries=st.none() | st.integers(min_value=1, max_value=5),
        max_weight=st.none() | st.integers(min_value=1, max_value=12),
        expiring=st.booleans(),
        contents=st.lists(st.tuples(bounded_keys, values), max_size=8),
    )
    def fill(
        self,
        max_entries: int | None,
        max_weight: int | None,
        expiring: bool,
        contents: list[tuple[str, int]],
    ) -> None:
        if max_entries is None and max_weight is None:
            max_entries = 3
        expired = _zero_is_expired if expiring else None
        self.trie = self.trie_cls(
            contents, max_entries=max_entries, max_weight=max_weight, expired=expired
        )
        self.model = SieveModel(max_entries, max_weight, expired)
        for key, value in contents:
            self.model.put(key, value)

    @rule(key=bounded_keys, value=values, weight=st.integers(min_value=0, max_value=14))
    def put(self, key: str, value: int, weight: int) -> None:
        assert self.trie.put(key, value, weight) == self.model.put(key, value, weight)

    @rule(key=bounded_keys, value=values)
    def set(self, key: str, value: int) -> None:
        self.trie[key] = value
        self.model.put(key, value)

    @rule(key=bounded_keys)
    def get(self, key: str) -> None:
        assert self.trie.get(key) == self.model.get(key)

    @rule(key=bounded_keys)
    def getitem(self, key: str) -> None:
        expected = self.model.get(key)
        if expected is None:
            with pytest.raises(KeyError):
                self.trie[key]
        else:
            assert self.trie[key] == expected

    @rule(key=bounded_keys, value=values)
    def setdefault(self, key: str, value: int) -> None:
        assert self.trie.setdefault(key, value) == self.model.setdefault(key, value)

    @rule(key=bounded_keys)
    def pop(self, key: str) -> None:
        expected = self.model.values.get(key, -1)
        self.model.remove([key])
        assert self.trie.pop(key, -1) == expected

    @rule()
    def popitem(self) -> None:
        if self.model.values:
            last = max(self.model.values)
            expected = (last, self.model.values[last])
            self.model.remove([last])
            assert self.trie.popitem() == expected

    @rule(prefix=prefixes)
    def invalidate_prefix(self, prefix: str) -> None:
        doomed = sum(k.startswith(prefix) for k in self.model.values)
        self.model.invalidate_prefix(prefix)
        assert self.trie.invalidate_prefix(prefix) == doomed

    @rule()
    def reclaim(self) -> None:
        self.trie.reclaim()

    @rule()
    def copy(self) -> None:
        self.trie = self.trie.copy()
        self.model.evictions = self.model.expirations = 0

    @rule()
    def pickle_round_trip(self) -> None:
        self.trie = pickle.loads(pickle.dumps(self.trie))
        self.model.evictions = self.model.expirations = 0

    @invariant()
    def same_entries(self) -> None:
        if self.trie is None:
            return
        assert dict(self.trie.items()) == self.model.values
        assert len(self.trie) == len(self.model.values)
        assert self.trie.weight == self.model.weight

    @invariant()
    def bound_holds(self) -> None:
        if self.trie is None:
            return
        if self.trie.max_entries is not None:
            assert len(self.trie) <= self.trie.max_entries
        if self.trie.max_weight is not None:
            assert self.trie.weight <= self.trie.max_weight

    @invariant()
    def same_counters(self) -> None:
        if self.trie is None:
            return
        assert self.trie.evictions == self.model.evictions
        assert self.trie.expirations == self.model.expirations


def test_bounded_trie_follows_the_sieve_model(trie_cls: Any) -> None:
    machine = type("BoundedMachine", (BoundedTrieAgainstSieve,), {"trie_cls": trie_cls})
    run_state_machine_as_test(machine, settings=BOUNDED_SETTINGS)  # type: ignore[no-untyped-call]
