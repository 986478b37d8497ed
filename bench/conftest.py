"""Shared options and fixtures for the pytest-benchmark cases under ``bench/``.

These are benchmarks, not tests: ``python -m pytest`` (testpaths = tests) never collects them.
Run them explicitly, for example::

    python -m pytest bench/test_core_bench.py --benchmark-only --benchmark-group-by=group

``--bench-keys N`` sets the number of keys (default 100,000); ``--bench-no-cython`` deselects
the compiled core's cases on a machine without the extension. Without that flag a missing
extension fails the compiled cases instead of hiding them.
"""

from __future__ import annotations

import pytest

DEFAULT_BENCH_KEYS = 100_000


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("trie_cache benchmarks")
    group.addoption(
        "--bench-keys",
        type=int,
        default=DEFAULT_BENCH_KEYS,
        help=f"keys in the benchmarked structures (default {DEFAULT_BENCH_KEYS:,})",
    )
    group.addoption(
        "--bench-no-cython",
        action="store_true",
        default=False,
        help="deselect the cases of the compiled core",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--bench-no-cython"):
        return
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "cython" in callspec.params.values():
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session")
def bench_keys(request: pytest.FixtureRequest) -> int:
    """How many keys the benchmarked structures hold."""
    keys = int(request.config.getoption("--bench-keys"))
    if keys < 20:
        raise pytest.UsageError(f"--bench-keys must be at least 20, not {keys}")
    return keys
