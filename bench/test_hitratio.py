"""The yardsticks of the hit-ratio benchmarks: the reference policies decide as their papers say,
the streams are reproducible, and trie_cache's bounded trie replays a stream as the SIEVE model.

Not benchmarks: ``python -m pytest bench/test_hitratio.py`` (seconds).
"""

from __future__ import annotations

from typing import Any

import pytest

from trie_cache.bench import hitratio as hr


def read_all(model: Any, keys: list[str]) -> int:
    return int(model.mixed([(False, k) for k in keys], None))


def test_sieve_model_follows_the_hand_by_hand_trace() -> None:
    # Room for 2. The hand evicts k9, k8, k2, k5 in turn (all unvisited); k9 comes back and is
    # read (visited); k1's miss clears k9's bit and evicts k7; k9 is read again; k0's miss
    # clears k9 again and evicts k1 (the head: the hand wraps to the tail); k7's miss finds
    # k9 unvisited at the tail and evicts it, leaving k0 then k7.
    model = hr.SieveModel(2)
    hits = read_all(model, ["k9", "k8", "k2", "k5", "k9", "k7", "k9", "k1", "k9", "k0", "k7"])
    assert hits == 2
    assert model.order() == ["k0", "k7"]
    assert model.evictions == 7  # 9 misses, the first 2 into free room


def test_sieve_model_hand_stays_where_it_evicted() -> None:
    model = hr.SieveModel(3)
    read_all(model, ["a", "b", "c", "a", "c"])  # a and c visited
    read_all(model, ["d"])  # clears a, evicts b; the hand rests on c
    assert model.order() == ["a", "c", "d"]
    # From c: clears c, evicts d. A hand sent back to the tail would evict a instead.
    read_all(model, ["e"])
    assert model.order() == ["a", "c", "e"]


def test_sieve_model_invalidation_leaves_the_queue() -> None:
    model = hr.SieveModel(3)
    model.mixed([(False, "t1/a"), (False, "t2/a"), (False, "t1/b"), (True, "t1/")], None)
    assert model.order() == ["t2/a"]
    assert read_all(model, ["t2/a", "t1/a"]) == 1


def test_lru_model_decides_as_cachetools() -> None:
    cachetools = pytest.importorskip("cachetools")
    stream = hr.zipf_stream(2_000, 20_000, seed=7)
    lru = cachetools.LRUCache(maxsize=100)
    expected = 0
    for _, k in stream.ops:
        if lru.get(k) is None:
            lru[k] = 1
        else:
            expected += 1
    assert hr.LruModel(100).mixed(stream.ops, 1) == expected


def test_loop_over_one_more_key_than_the_room() -> None:
    stream = hr.loop_stream(101, 2_020)
    assert hr.LruModel(100).mixed(stream.ops, 1) == 0  # LRU's worst case: every read misses
    # Nothing is ever read while cached, so no visited bit is set: SIEVE is a FIFO here and
    # misses every read too. S3-FIFO's ghost queue sends keys back to its main queue.
    assert hr.SieveModel(100).mixed(stream.ops, 1) == 0
    assert hr.S3FifoModel(100).mixed(stream.ops, 1) > 0


@pytest.mark.parametrize("model", [hr.LruModel, hr.SieveModel, hr.S3FifoModel])
def test_models_hold_their_bound_and_beat_nothing_unbounded(model: type[Any]) -> None:
    stream = hr.table_stream(tables=50, pages=10, operations=5_000)
    system = model(40)
    hits = system.mixed(stream.ops, 1)
    assert system.count() <= 40
    assert 0 < hits <= stream.unbounded_hits


def test_streams_are_reproducible() -> None:
    assert hr.zipf_stream(1_000, 5_000).ops == hr.zipf_stream(1_000, 5_000).ops
    assert hr.table_stream(20, 5, 2_000).ops == hr.table_stream(20, 5, 2_000).ops
    assert hr.zipf_stream(1_000, 5_000, seed=1).ops != hr.zipf_stream(1_000, 5_000, seed=2).ops


def test_zipf_stream_is_skewed() -> None:
    stream = hr.zipf_stream(10_000, 100_000)
    counts: dict[str, int] = {}
    for _, k in stream.ops:
        counts[k] = counts.get(k, 0) + 1
    top = sorted(counts.values(), reverse=True)
    # Zipf(1.0) over 10,000 keys: the most popular key takes about 1 / H(10,000) = 10%.
    assert 0.09 < top[0] / 100_000 < 0.12
    assert stream.unbounded_hits == 100_000 - len(counts)


def test_bounded_trie_replays_as_the_sieve_model() -> None:
    reason = hr.bound_supported()
    if reason is not None:
        pytest.fail(reason)
    stream = hr.zipf_stream(5_000, 50_000, seed=3)
    for capacity in (50, 500):
        trie = hr.BoundedRadix(capacity)
        model = hr.SieveModel(capacity)
        mine, theirs = trie.mixed(stream.ops, 1), model.mixed(stream.ops, 1)
        assert trie.count() <= capacity
        misses = stream.reads - theirs
        assert abs((stream.reads - mine) - misses) <= 0.01 * misses
