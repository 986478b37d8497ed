"""get over every system: stored keys (group ``get``) and never-stored keys (``get-miss``).

Run: ``python -m pytest bench/test_compare_get.py --benchmark-only --benchmark-group-by=group``.
Each round probes 10,000 freshly built key strings; afterwards the hit count, a sample of the
values and the store's size are checked.
"""

from __future__ import annotations

import pytest

from trie_cache.bench.suite import StoreHandle


@pytest.mark.compare("get")
def test_get(benchmark: object, compare_store: StoreHandle) -> None:
    compare_store.run(benchmark, "get")


@pytest.mark.compare("miss")
def test_get_miss(benchmark: object, compare_store: StoreHandle) -> None:
    compare_store.run(benchmark, "miss")
