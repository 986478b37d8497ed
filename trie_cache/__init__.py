"""trie_cache: an in-process cache on a radix trie with O(len(prefix)) invalidation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._cache import Cache, CacheStats, NoCache
from ._cached import STABLE_KEY_TYPES, Cached
from ._core import CORE, RadixTrie
from ._memcache import MemCache
from ._rows import CachedRows

if TYPE_CHECKING:
    from ._lmdb import LmdbCache, LmdbCacheClosedError, LmdbCacheError

__version__ = "0.1.0"

__all__ = [
    "CORE",
    "STABLE_KEY_TYPES",
    "Cache",
    "CacheStats",
    "Cached",
    "CachedRows",
    "LmdbCache",
    "LmdbCacheClosedError",
    "LmdbCacheError",
    "MemCache",
    "NoCache",
    "RadixTrie",
    "__version__",
]


_LAZY_LMDB = frozenset({"LmdbCache", "LmdbCacheClosedError", "LmdbCacheError"})


def __getattr__(name: str) -> Any:
    # LmdbCache pulls in lmdb; load it only when asked for.
    if name in _LAZY_LMDB:
        from . import _lmdb

        return getattr(_lmdb, name)
    raise AttributeError(f"module 'trie_cache' has no attribute {name!r}")
