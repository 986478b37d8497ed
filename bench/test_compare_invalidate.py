"""Drop the tenth of the keys under one prefix, over every system (``invalidate_prefix``).

Run: ``python -m pytest bench/test_compare_invalidate.py --benchmark-only
--benchmark-group-by=group``. Each system drops the prefix the best way it offers (see each
adapter's ``how`` in ``trie_cache/bench/peers.py``); ``RadixTrie + reclaim()`` also releases the
removed entries inside the timed call. After every round: the store's count, every removed key
absent, and a sample of the kept keys with their values; the removed keys are put back untimed.
"""

from __future__ import annotations

import pytest

from trie_cache.bench.suite import StoreHandle


@pytest.mark.compare("invalidate")
def test_invalidate_prefix(benchmark: object, compare_store: StoreHandle) -> None:
    compare_store.run(benchmark, "invalidate")
