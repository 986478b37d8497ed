"""Hazards: values whose ``__del__`` uses the trie that is dropping them, and threads."""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
from threads import run_threads

HAZARD_KEY = "zz/hazard"  # sorts last, so popitem takes it
NEIGHBOURS = {"a": 1, "a/b": 2, "k": 3, "k/sib": 4, "k/sib2": 5, "other": 6, "zz": 7}


class OnDel:
    """Runs ``action(trie)`` from ``__del__`` while armed; keeps what it raised."""

    def __init__(self, trie: Any, action: Callable[[Any], Any], log: list[Any]) -> None:
        self.trie = trie
        self.action = action
        self.log = log
        self.armed = True

    def __del__(self) -> None:
        if not self.armed:
            return
        self.armed = False
        try:
            self.log.append(("ran", self.action(self.trie)))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.log.append(("raised", exc))


def assert_consistent(trie: Any) -> None:
    """Every public view of ``trie`` agrees with every other."""
    items = list(trie.items())
    keys = [k for k, _ in items]
    assert keys == sorted(set(keys))
    assert len(trie) == len(items)
    assert trie.count_prefix("") == len(items)
    assert list(trie) == keys
    assert list(trie.values()) == [v for _, v in items]
    for key, value in items:
        assert trie[key] is value
        assert key in trie
    for first in {k[:1] for k in keys if k}:
        assert trie.count_prefix(first) == sum(k.startswith(first) for k in keys)
        assert list(trie.keys(first)) == [k for k in keys if k.startswith(first)]
    assert trie.pending_reclaim >= 0


@pytest.fixture
def log() -> Iterator[list[Any]]:
    entries: list[Any] = []
    yield entries
    assert [e for e in entries if e[0] == "raised"] == []


def hazard_trie(trie_cls: Any, action: Callable[[Any], Any], log: list[Any]) -> Any:
    trie = trie_cls(NEIGHBOURS)
    trie[HAZARD_KEY] = OnDel(trie, action, log)
    return trie


ACTIONS: dict[str, Callable[[Any], Any]] = {
    "replace": lambda t: t.__setitem__("other", "new"),
    "insert": lambda t: t.__setitem__("k/new", "new"),
    "insert-splitting": lambda t: t.__setitem__("k/si", "new"),
    "pop": lambda t: t.pop("k/sib", None),
    "pop-merging": lambda t: (t.pop("k/sib", None), t.pop("k", None)),
    "popitem": lambda t: t.popitem() if len(t) else None,
    "setdefault": lambda t: t.setdefault("k/sib3", "new"),
    "invalidate": lambda t: t.invalidate_prefix("k"),
    "invalidate-all": lambda t: t.invalidate_prefix(""),
    "clear": lambda t: t.clear(),
    "reclaim": lambda t: t.reclaim(),
    "read-everything": lambda t: (list(t.items()), len(t), t.count_prefix("k")),
    "check-consistency": assert_consistent,
}

TRIGGERS: dict[str, Callable[[Any], Any]] = {
    "replace": lambda t: t.__setitem__(HAZARD_KEY, "replacement"),
    "del": lambda t: t.__delitem__(HAZARD_KEY),
    "pop": lambda t: t.pop(HAZARD_KEY),
    "popitem": lambda t: t.popitem(),
    "invalidate+reclaim": lambda t: (t.invalidate_prefix("zz/"), t.reclaim()),
    "invalidate-all+reclaim": lambda t: (t.invalidate_prefix(""), t.reclaim()),
    "invalidate+later-writes": lambda t: (
        t.invalidate_prefix("zz"),
        [t.__setitem__("w", n) for n in range(4)],
    ),
    "clear": lambda t: t.clear(),
}


@pytest.mark.parametrize("trigger", TRIGGERS.values(), ids=TRIGGERS.keys())
@pytest.mark.parametrize("action", ACTIONS.values(), ids=ACTIONS.keys())
def test_value_del_that_uses_the_trie(
    trie_cls: Any,
    log: list[Any],
    action: Callable[[Any], Any],
    trigger: Callable[[Any], Any],
) -> None:
    trie = hazard_trie(trie_cls, action, log)
    trigger(trie)
    assert [e[0] for e in log] == ["ran"]
    assert HAZARD_KEY not in trie or trie[HAZARD_KEY] == "replacement"
    assert_consistent(trie)
    trie.reclaim()
    assert trie.pending_reclaim == 0
    assert_consistent(trie)


def test_replaced_value_goes_after_the_new_one_is_stored(trie_cls: Any, log: list[Any]) -> None:
    trie = hazard_trie(trie_cls, lambda t: (t.get(HAZARD_KEY), len(t)), log)
    trie[HAZARD_KEY] = "replacement"
    assert log == [("ran", ("replacement", len(NEIGHBOURS) + 1))]


def test_value_del_may_overwrite_its_own_key(trie_cls: Any, log: list[Any]) -> None:
    trie = hazard_trie(trie_cls, lambda t: t.__setitem__(HAZARD_KEY, "from __del__"), log)
    trie[HAZARD_KEY] = "replacement"
    assert trie[HAZARD_KEY] == "from __del__"
    assert_consistent(trie)


@pytest.mark.parametrize(
    "remove",
    [lambda t: t.__delitem__(HAZARD_KEY), lambda t: t.pop(HAZARD_KEY), lambda t: t.popitem()],
    ids=["del", "pop", "popitem"],
)
def test_removed_value_goes_after_the_key_is_gone(
    trie_cls: Any, log: list[Any], remove: Callable[[Any], Any]
) -> None:
    trie = hazard_trie(trie_cls, lambda t: (HAZARD_KEY in t, len(t), t.count_prefix("zz")), log)
    result = remove(trie)
    del result
    assert log == [("ran", (False, len(NEIGHBOURS), 1))]


def test_value_del_may_reinsert_its_own_key(trie_cls: Any, log: list[Any]) -> None:
    trie = hazard_trie(trie_cls, lambda t: t.__setitem__(HAZARD_KEY, "again"), log)
    del trie[HAZARD_KEY]
    assert trie[HAZARD_KEY] == "again"
    assert_consistent(trie)


def test_reclaimed_values_see_a_consistent_trie(trie_cls: Any, log: list[Any]) -> None:
    def check(t: Any) -> int:
        assert_consistent(t)
        return int(t.pending_reclaim)

    trie = trie_cls(NEIGHBOURS)
    for n in range(200):
        trie[f"zz/{n:03}"] = OnDel(trie, check, log)
    trie.invalidate_prefix("zz/")
    assert trie.reclaim() == 200
    # Each value leaves the pending count before it is let go.
    assert [pending for _, pending in log] == list(range(199, -1, -1))
    assert trie == NEIGHBOURS


def test_many_values_that_invalidate_and_insert_during_clear(trie_cls: Any, log: list[Any]) -> None:
    trie = trie_cls(NEIGHBOURS)

    def churn(t: Any) -> None:
        t.invalidate_prefix("k")
        t["k/" + str(len(log))] = "x"
        t.reclaim()

    for n in range(100):
        trie[f"zz/{n:03}"] = OnDel(trie, churn, log)
    trie.clear()
    assert len(log) == 100
    trie.reclaim()
    assert_consistent(trie)
    assert trie.pending_reclaim == 0
    assert set(trie) <= {f"k/{n}" for n in range(100)}


def test_value_del_clearing_during_slice_release(trie_cls: Any, log: list[Any]) -> None:
    trie = trie_cls(NEIGHBOURS)
    for n in range(50):
        trie[f"zz/{n:02}"] = OnDel(trie, lambda t: t.clear(), log)
    trie.invalidate_prefix("zz/")
    trie["new"] = 1  # releases a slice: the first __del__ clears the trie, "new" included
    assert len(log) == 50
    assert trie.pending_reclaim == 0
    assert_consistent(trie)


# -- threads ---------------------------------------------------------------------------

THREADS = 6
OPS_PER_THREAD = 2_000
ALPHABET = "ab/é"


def random_key(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 4)))


def mixed_ops(trie: Any, seed: int) -> None:
    rng = random.Random(seed)
    for n in range(OPS_PER_THREAD):
        key = random_key(rng)
        roll = rng.random()
        if roll < 0.30:
            trie[key] = (seed, n)
        elif roll < 0.40:
            trie.get(key)
            _ = key in trie
        elif roll < 0.50:
            trie.pop(key, None)
        elif roll < 0.55:
            try:
                del trie[key]
            except KeyError:
                pass
        elif roll < 0.60:
            trie.setdefault(key, (seed, n))
        elif roll < 0.67:
            trie.invalidate_prefix(key[:2])
        elif roll < 0.75:
            assert 0 <= trie.count_prefix(key[:1]) <= len(trie) + THREADS * 4
        elif roll < 0.85:
            try:
                for _ in trie.items(key[:1]):
                    pass
            except RuntimeError:
                pass  # another thread changed the structure: expected
        elif roll < 0.90:
            trie.reclaim()
        elif roll < 0.95:
            try:
                trie.popitem()
            except KeyError:
                pass
        else:
            trie.copy()


@pytest.fixture
def fast_switching() -> Iterator[None]:
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


@pytest.mark.usefixtures("fast_switching")
def test_threads_share_one_trie(trie_cls: Any) -> None:
    trie = trie_cls()
    assert run_threads(partial(mixed_ops, trie), THREADS, timeout=60) == []
    assert_consistent(trie)
    keys = list(trie)
    prefixes = {k[:n] for k in keys for n in range(len(k) + 1)}
    for prefix in prefixes:
        assert trie.count_prefix(prefix) == sum(k.startswith(prefix) for k in keys)
    trie.reclaim()
    assert trie.pending_reclaim == 0
    trie.clear()
    assert len(trie) == 0


def mirror_key(trie: Any, key: str) -> None:
    trie["d/" + key] = key


def count_key(trie: Any, key: str) -> int:
    return int(trie.count_prefix(key))


@pytest.mark.usefixtures("fast_switching")
def test_threads_with_values_whose_del_uses_the_trie(trie_cls: Any) -> None:
    trie = trie_cls()
    log: list[Any] = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(OPS_PER_THREAD // 4):
            key = random_key(rng)
            mirror = rng.random() < 0.5
            trie[key] = OnDel(trie, partial(mirror_key if mirror else count_key, key=key), log)
            if rng.random() < 0.2:
                trie.invalidate_prefix(key[:1])

    assert run_threads(worker, THREADS, timeout=60) == []
    trie.reclaim()
    assert_consistent(trie)
    for value in trie.values():
        if isinstance(value, OnDel):
            value.armed = False
    trie.clear()
    assert [e for e in log if e[0] == "raised"] == []
