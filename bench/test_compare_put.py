"""put of 10,000 keys the store never held, over every system (group ``put``).

Run: ``python -m pytest bench/test_compare_put.py --benchmark-only --benchmark-group-by=group``.
Between rounds (untimed) the previous batch is deleted, so the store is back to n keys; each
round's batch is checked afterwards, value by value, with a sample of the older keys.
"""

from __future__ import annotations

import pytest

from trie_cache.bench.suite import StoreHandle


@pytest.mark.compare("put")
def test_put(benchmark: object, compare_store: StoreHandle) -> None:
    compare_store.run(benchmark, "put")
