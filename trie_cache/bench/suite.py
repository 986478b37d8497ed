"""Glue between :class:`~trie_cache.bench.cases.Case` and pytest-benchmark.

The pytest files ``bench/test_compare_*.py`` and ``bench/conftest.py`` use these helpers;
pytest and pytest-benchmark are imported only when a helper runs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .cases import Case, Unsupported, open_store
from .peers import SYSTEMS, System, get_system, loop_clock, missing_reason
from .workloads import BATCH, parse_count

__all__ = [
    "DEFAULT_SIZES",
    "GROUPS",
    "StoreHandle",
    "params",
    "parse_sizes",
    "run_benchmark",
    "size_label",
]

#: Sizes benchmarked unless asked otherwise; 1M is opt-in.
DEFAULT_SIZES = (10_000, 100_000)
LARGE_SIZE = 1_000_000
#: Environment variable that adds the 1M size, like ``--compare-1m``.
LARGE_ENV = "TRIE_CACHE_BENCH_1M"

#: pytest-benchmark group of each operation (a size label is appended).
GROUPS = {
    "get": "get",
    "miss": "get-miss",
    "put": "put",
    "invalidate": "invalidate_prefix",
    "mixed": "mixed",
}

#: Operations in the mixed workload per round.
MIXED_OPS = 2_000
#: Aim for about this much timed work per case; rounds are bounded below and above.
TARGET_SECONDS = 0.5
MIN_ROUNDS = 3
MAX_ROUNDS = 20


def size_label(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def parse_sizes(text: str, large: bool) -> list[int]:
    """``"10k,100k"`` -> ``[10000, 100000]``; ``large`` (or the env variable) adds 1M."""
    sizes = [parse_count(part) for part in text.split(",") if part.strip()]
    env = os.environ.get(LARGE_ENV, "").strip().lower() in {"1", "true", "yes"}
    if (large or env) and LARGE_SIZE not in sizes:
        sizes.append(LARGE_SIZE)
    return sorted(set(sizes))


def params(operation: str, sizes: Sequence[int], systems: Sequence[str] | None = None) -> Any:
    """``pytest.param((system, n))`` for every system taking part in ``operation``.

    Systems every operation shares come first in one fixed order, so the index of a
    ``(system, n)`` pair is the same in every test function (pytest groups the tests of a
    session-scoped store by it). Async systems are timed with
    :func:`~trie_cache.bench.peers.loop_clock` through the benchmark marker's ``timer``.
    """
    import pytest

    names = list(SYSTEMS) if systems is None else list(systems)
    shared = [s for s in names if len(get_system(s).operations) > 1]
    extra = [s for s in names if s not in shared and operation in get_system(s).operations]
    out = []
    for block in (shared, extra):
        for n in sizes:
            for system in block:
                cls = get_system(system)
                marks = [pytest.mark.benchmark(timer=loop_clock)] if cls.is_async else []
                out.append(pytest.param((system, n), marks=marks, id=f"{system}-{size_label(n)}"))
    return out


@dataclass
class StoreHandle:
    """A store shared by the get, miss, put and invalidate benchmarks of one system and size;
    ``reason`` says why there is none."""

    system: str
    n: int
    store: System | None
    reason: str | None = None

    @classmethod
    def open(cls, system: str, n: int) -> StoreHandle:
        reason = missing_reason(get_system(system))
        if reason is not None:
            return cls(system, n, None, reason)
        try:
            return cls(system, n, open_store(system, n, BATCH))
        except Unsupported as exc:
            return cls(system, n, None, str(exc))

    def run(self, benchmark: Any, operation: str) -> dict[str, Any]:
        """:func:`run_benchmark` on this store; a skip (with its reason) if there is none."""
        if self.store is None:
            import pytest

            pytest.skip(self.reason or "no store")
        return run_benchmark(benchmark, self.system, operation, self.n, self.store)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None


def run_benchmark(
    benchmark: Any,
    system: str,
    operation: str,
    n: int,
    store: System | None = None,
    mixed_ops: int = MIXED_OPS,
) -> dict[str, Any]:
    """Time ``operation`` with pytest-benchmark; every round is checked (see ``Case.check``).

    One untimed, checked warm-up round sets the number of rounds. ``store`` is a shared store
    from :class:`StoreHandle`, left as it was filled; without one the case fills its own.
    Returns the ``extra_info`` recorded.
    """
    import pytest

    try:
        case = Case(system, operation, n, batch=BATCH, mixed_ops=mixed_ops)
    except Unsupported as exc:
        pytest.skip(str(exc))
    case.open(store)
    try:
        clock = case.clock
        args = case.before()
        start = clock()
        warm = case.run(*args)
        elapsed = clock() - start
        case.check(warm)
        # A round of over a second (a scan-based system at 100k or more) gets 2 rounds.
        least = 2 if elapsed > 1.0 else MIN_ROUNDS
        rounds = int(min(MAX_ROUNDS, max(least, TARGET_SECONDS / max(elapsed, 1e-9))))

        def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
            return case.before(), {}

        def teardown(*_: Any) -> None:
            case.check(case.last)

        benchmark.group = f"{GROUPS[operation]} {size_label(n)}"
        benchmark.pedantic(case.run, setup=setup, teardown=teardown, rounds=rounds)
        info = _extra_info(benchmark, case)
        case.finish()
    finally:
        case.close()
    return info


def _extra_info(benchmark: Any, case: Case) -> dict[str, Any]:
    from .._core import CORE

    cls = case.system_cls
    info: dict[str, Any] = {
        "system": cls.title,
        "how": cls.how,
        "keys": case.n,
        "ops_per_round": case.ops,
        "core": CORE,
        "clock": "in-loop (loop_clock)" if cls.is_async else "perf_counter",
    }
    info.update(case.check(case.last))
    stats = getattr(getattr(benchmark, "stats", None), "stats", None)
    if stats is not None and stats.min > 0:
        info["ns_per_op_min"] = round(stats.min / case.ops * 1e9, 1)
        if case.operation == "mixed":
            info["ops_per_s"] = round(case.ops / stats.min)
    benchmark.extra_info.update(info)
    return info
