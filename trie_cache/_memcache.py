"""``MemCache``: the cache contract on the in-process radix trie."""

from __future__ import annotations

from ._cache import Cache, check_prefix, check_rows
from ._core import RadixTrie
from ._rows import CachedRows

__all__ = ["MemCache"]


class MemCache(Cache):
    """In-memory cache; ``invalidate_prefix`` costs O(len(prefix)).

    Every trie operation is a single call that completes without awaiting, so tasks on
    one loop and threads running other loops can share an instance without locks.
    """

    def __init__(self) -> None:
        self._trie = RadixTrie()

    async def get(self, key: str) -> CachedRows | None:
        # The trie raises TypeError for a non-str key itself.
        return self._trie.get(key)  # type: ignore[no-any-return]

    async def put(self, key: str, rows: CachedRows) -> None:
        check_rows(rows)
        self._trie[key] = rows

    async def invalidate_prefix(self, prefix: str) -> int:
        return self._trie.invalidate_prefix(check_prefix(prefix))  # type: ignore[no-any-return]

    def __len__(self) -> int:
        return len(self._trie)
