"""pytest-benchmark cases: the trie cores beside ``dict``, one group per operation.

Benchmarks, not tests (``python -m pytest`` does not collect ``bench/``). Run::

    python -m pytest bench/test_core_bench.py --benchmark-only --benchmark-group-by=group

Each case is parametrised over ``dict``, ``cython`` and ``python``; ``--bench-keys N`` sets the
size (default 100,000) and ``--bench-no-cython`` drops the compiled core's cases. A get or put
case times one loop over ``PROBES`` keys built afresh before every round (equal strings, not
the stored objects), so a round's time divided by ``PROBES`` is the cost of one operation.
``bench/core_bench.py`` prints the same measurements as ratios, with the memory figure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from core_bench import (
    KeySpace,
    await_loop,
    dict_count_prefix,
    dict_invalidate,
    load_core,
    loop_get,
    loop_set,
)

IMPLS = ("dict", "cython", "python")
PROBES = 20_000
ROUNDS = 10
TENANT = 5
VALUE = object()

Setup = Callable[[], tuple[tuple[Any, ...], dict[str, Any]]]


def new_mapping(impl: str) -> Any:
    return {} if impl == "dict" else load_core(impl)()


@pytest.fixture(scope="module", params=IMPLS)
def impl(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def space(bench_keys: int) -> KeySpace:
    return KeySpace(bench_keys)


@pytest.fixture(scope="module")
def probe_indices(space: KeySpace) -> list[int]:
    return space.sample(PROBES)


@pytest.fixture(scope="module")
def filled(impl: str, space: KeySpace) -> Any:
    """All keys of ``space``, inserted in random order, each mapped to ``VALUE``."""
    mapping = new_mapping(impl)
    loop_set(mapping, space.keys(space.shuffled()), VALUE)
    assert len(mapping) == space.total
    return mapping


def fresh(build: Callable[[list[int]], list[str]], indices: list[int], *head: Any) -> Setup:
    """A pedantic ``setup``: the arguments ``head`` then a new list of probe strings."""
    return lambda: ((*head, build(indices)), {})


def run_gets(
    benchmark: Any, filled: Any, build: Callable[[list[int]], list[str]], indices: list[int]
) -> Any:
    """Time gets of fresh probes from ``build``; what the first probe finds afterwards."""
    get = filled.get
    benchmark.extra_info["ops_per_round"] = len(indices)
    benchmark.pedantic(loop_get, setup=fresh(build, indices, get), rounds=ROUNDS)
    return get(build(indices[:1])[0])


@pytest.mark.benchmark(group="get, hit")
def test_get_hit(benchmark: Any, filled: Any, space: KeySpace, probe_indices: list[int]) -> None:
    assert run_gets(benchmark, filled, space.keys, probe_indices) is VALUE


@pytest.mark.benchmark(group="get, miss")
def test_get_miss(benchmark: Any, filled: Any, space: KeySpace, probe_indices: list[int]) -> None:
    assert run_gets(benchmark, filled, space.misses, probe_indices) is None


@pytest.mark.benchmark(group="put, new key")
def test_put_new(benchmark: Any, impl: str, space: KeySpace, probe_indices: list[int]) -> None:
    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (new_mapping(impl), space.keys(probe_indices), VALUE), {}

    benchmark.extra_info["ops_per_round"] = len(probe_indices)
    benchmark.pedantic(loop_set, setup=setup, rounds=ROUNDS)


@pytest.mark.benchmark(group="put, replace")
def test_put_replace(
    benchmark: Any, filled: Any, space: KeySpace, probe_indices: list[int]
) -> None:
    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (filled, space.keys(probe_indices), VALUE), {}

    benchmark.extra_info["ops_per_round"] = len(probe_indices)
    benchmark.pedantic(loop_set, setup=setup, rounds=ROUNDS)
    assert len(filled) == space.total


@pytest.mark.benchmark(group="invalidate_prefix, one tenant")
def test_invalidate_prefix(benchmark: Any, impl: str, filled: Any, space: KeySpace) -> None:
    """One tenant's keys dropped; the trie's detached subtree is released outside the timing."""
    tenant_keys = space.tenant_range(TENANT)

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        if impl != "dict":
            filled.reclaim()
        loop_set(filled, space.keys(tenant_keys), VALUE)
        return (filled, space.tenant_prefix(TENANT)), {}

    def trie_invalidate(trie: Any, prefix: str) -> int:
        return int(trie.invalidate_prefix(prefix))

    target = dict_invalidate if impl == "dict" else trie_invalidate
    benchmark.extra_info["keys_removed"] = space.per_tenant
    removed = benchmark.pedantic(target, setup=setup, rounds=ROUNDS)
    assert removed == space.per_tenant
    loop_set(filled, space.keys(tenant_keys), VALUE)
    assert len(filled) == space.total


@pytest.mark.benchmark(group="count_prefix, one tenant")
def test_count_prefix(benchmark: Any, impl: str, filled: Any, space: KeySpace) -> None:
    prefix = space.tenant_prefix(TENANT)
    if impl == "dict":
        count = benchmark(dict_count_prefix, filled, prefix)
    else:
        count = benchmark(filled.count_prefix, prefix)
    assert count == space.per_tenant


@pytest.fixture(scope="module")
def event_loop_for_bench() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def async_get(
    impl: str, space: KeySpace, event_loop_for_bench: asyncio.AbstractEventLoop
) -> Callable[[str], Awaitable[Any]]:
    """``dict``: an ``async def`` returning ``d.get(k)``; a core: ``MemCache.get`` on it."""
    import trie_cache

    rows = trie_cache.CachedRows({"1": {"id": 1}}, fetched_at=0.0)
    keys = space.keys(space.shuffled())
    if impl == "dict":
        d: dict[str, Any] = {}
        loop_set(d, keys, rows)

        async def dict_aget(key: str) -> Any:
            return d.get(key)

        return dict_aget
    cache = trie_cache.MemCache(_trie_cls=load_core(impl))

    async def fill() -> None:
        for k in keys:
            await cache.put(k, rows)

    event_loop_for_bench.run_until_complete(fill())
    assert len(cache) == space.total
    return cache.get


@pytest.mark.benchmark(group="await get, hit")
def test_await_get(
    benchmark: Any,
    async_get: Callable[[str], Awaitable[Any]],
    event_loop_for_bench: asyncio.AbstractEventLoop,
    space: KeySpace,
    probe_indices: list[int],
) -> None:
    def run(probes: list[str]) -> float:
        return event_loop_for_bench.run_until_complete(await_loop(async_get, probes))

    benchmark.extra_info["ops_per_round"] = len(probe_indices)
    benchmark.pedantic(run, setup=fresh(space.keys, probe_indices), rounds=ROUNDS)
    probe = space.keys(probe_indices[:1])[0]
    assert event_loop_for_bench.run_until_complete(async_get(probe)) is not None
