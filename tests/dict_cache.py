"""``DictCache``: a backend written to the ``Cache`` rule -- three primitives on a dict."""

from __future__ import annotations

from trie_cache import Cache, CachedRows


class DictCache(Cache):
    """The rows in ``data``; ``invalidate_prefix`` scans it. Nothing else is overridden."""

    def __init__(self, *, max_age: float | None = None) -> None:
        super().__init__(max_age=max_age)
        self.data: dict[str, CachedRows] = {}

    async def _get(self, key: str) -> CachedRows | None:
        return self.data.get(key)

    async def _put(self, key: str, rows: CachedRows) -> None:
        self.data[key] = rows

    async def _invalidate(self, prefix: str) -> int:
        doomed = [k for k in self.data if k.startswith(prefix)]
        for k in doomed:
            del self.data[k]
        return len(doomed)
