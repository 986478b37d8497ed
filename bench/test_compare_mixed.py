"""A cached-table service over every system (group ``mixed``).

Run: ``python -m pytest bench/test_compare_mixed.py --benchmark-only
--benchmark-group-by=group``. Tables of 100 pages, all cached at the start; 2,000 operations:
90% page reads (a miss is filled by a put), 10% writes that invalidate their table's prefix.
Table and page popularity are skewed. Each round's read hits and the keys left must match a
plain model; ``extra_info`` reports ops/s and the hit rate.
"""

from __future__ import annotations

import pytest

from trie_cache.bench.suite import run_benchmark


@pytest.mark.compare("mixed")
def test_mixed(benchmark: object, compare_target: tuple[str, int]) -> None:
    system, n = compare_target
    run_benchmark(benchmark, system, "mixed", n)
