"""The cache contract every backend follows, and ``NoCache``."""

from __future__ import annotations

import abc
from types import TracebackType

from ._rows import CachedRows

__all__ = ["Cache", "NoCache", "check_key", "check_prefix", "check_rows"]


def check_key(key: object) -> str:
    if not isinstance(key, str):
        raise TypeError(f"cache keys must be str, not {type(key).__name__}")
    return key


def check_prefix(prefix: object) -> str:
    if not isinstance(prefix, str):
        raise TypeError(f"prefixes must be str, not {type(prefix).__name__}")
    return prefix


def check_rows(rows: object) -> CachedRows:
    if not isinstance(rows, CachedRows):
        raise TypeError(f"cache values must be CachedRows, not {type(rows).__name__}")
    return rows


class Cache(abc.ABC):
    """An async cache of :class:`CachedRows` under ``str`` keys.

    A miss is ``None``; exceptions are for real faults and bad input. Keys are opaque:
    ``invalidate_prefix(p)`` drops every key that starts with ``p`` as a plain string.
    """

    @abc.abstractmethod
    async def get(self, key: str) -> CachedRows | None:
        """The rows stored under ``key``, or ``None``."""

    @abc.abstractmethod
    async def put(self, key: str, rows: CachedRows) -> None:
        """Store ``rows`` under ``key``, replacing what was there."""

    @abc.abstractmethod
    async def invalidate_prefix(self, prefix: str) -> int:
        """Drop every key starting with ``prefix`` (``""``: all); return how many."""

    async def aclose(self) -> None:
        """Release what the backend holds; the base has nothing to release."""

    async def __aenter__(self) -> Cache:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class NoCache(Cache):
    """Stores nothing: every ``get`` misses. Useful to switch caching off."""

    __slots__ = ()

    async def get(self, key: str) -> CachedRows | None:
        check_key(key)
        return None

    async def put(self, key: str, rows: CachedRows) -> None:
        check_key(key)
        check_rows(rows)

    async def invalidate_prefix(self, prefix: str) -> int:
        check_prefix(prefix)
        return 0
