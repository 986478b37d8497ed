"""Shared options and fixtures for the pytest-benchmark cases under ``bench/``.

These are benchmarks, not tests: ``python -m pytest`` (testpaths = tests) never collects them.
Run them explicitly, for example::

    python -m pytest bench/test_core_bench.py --benchmark-only --benchmark-group-by=group

``--bench-keys N`` sets the number of keys (default 100,000); ``--bench-no-cython`` deselects
the compiled core's cases on a machine without the extension. Without that flag a missing
extension fails the compiled cases instead of hiding them.

The comparison against peer caches (``bench/test_compare_*.py``, cases from
``trie_cache.bench``) takes ``--compare-sizes`` (default ``10k,100k``), ``--compare-1m`` (or
``TRIE_CACHE_BENCH_1M=1``) to add a million keys, and ``--compare-systems``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from trie_cache.bench.suite import StoreHandle

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
    # The comparison against peer caches (bench/test_compare_*.py).
    group.addoption(
        "--compare-sizes",
        default="10k,100k",
        help="store sizes of the comparison, comma separated (default 10k,100k)",
    )
    group.addoption(
        "--compare-1m",
        action="store_true",
        default=False,
        help="add 1M keys to the comparison sizes (or set TRIE_CACHE_BENCH_1M=1)",
    )
    group.addoption(
        "--compare-systems",
        default="",
        help="systems of the comparison, comma separated (default: all)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "compare(operation): a comparison benchmark of one operation over all systems"
    )


def pytest_report_header(config: pytest.Config) -> str:
    from trie_cache import CORE

    return f"trie_cache core: {CORE}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("compare")
    if marker is None:
        return
    from trie_cache.bench.suite import params, parse_sizes

    config = metafunc.config
    try:
        sizes = parse_sizes(config.getoption("--compare-sizes"), config.getoption("--compare-1m"))
    except ValueError as exc:
        raise pytest.UsageError(f"--compare-sizes: {exc}") from None
    chosen = [s.strip() for s in config.getoption("--compare-systems").split(",") if s.strip()]
    cases = params(marker.args[0], sizes, chosen or None)
    if "compare_store" in metafunc.fixturenames:
        metafunc.parametrize("compare_store", cases, indirect=True, scope="session")
    else:
        metafunc.parametrize("compare_target", cases)


@pytest.fixture(scope="session")
def compare_store(request: pytest.FixtureRequest) -> Iterator[StoreHandle]:
    """A store filled once for the get, miss, put and invalidate comparisons of one
    (system, size); pytest runs the tests that share it together."""
    from trie_cache.bench.suite import StoreHandle

    system, n = request.param
    handle = StoreHandle.open(system, n)
    yield handle
    handle.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--bench-no-cython"):
        return

    def compiled(item: pytest.Item) -> bool:
        callspec = getattr(item, "callspec", None)
        return callspec is not None and "cython" in callspec.params.values()

    dropped = [item for item in items if compiled(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if not compiled(item)]


@pytest.fixture(scope="session")
def bench_keys(request: pytest.FixtureRequest) -> int:
    """How many keys the benchmarked structures hold."""
    keys = int(request.config.getoption("--bench-keys"))
    if keys < 20:
        raise pytest.UsageError(f"--bench-keys must be at least 20, not {keys}")
    return keys
