"""Comparison of trie_cache with the caches a Python user would pick instead.

``python -m trie_cache.bench`` runs a short comparison and prints one table; the pytest
suite in the repository's ``bench/`` directory times the same cases with pytest-benchmark.
Both use :mod:`trie_cache.bench.peers` (the systems) and :mod:`trie_cache.bench.cases`
(the timed operations and their checks).
"""
