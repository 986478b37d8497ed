"""A small SIEVE model of a bounded ``RadixTrie``: what each core must decide.

SIEVE (Zhang et al., NSDI 2024): entries sit in one FIFO queue in insertion order; a read
sets an entry's visited bit; to make room, a hand walks from the oldest end towards the
newest (wrapping around), clears the bits it passes and evicts the first unvisited entry,
then stays on the entry after it. The trie's rules on top, all written out here:

- A new key joins the newest end unvisited; replacing a key keeps its place and marks it
  visited; ``get``, ``[]`` and ``setdefault`` of a present key mark it visited.
- The entry the current write stored is never its own victim (the hand passes it untouched).
- An entry ``expired(value)`` calls expired is removed whatever its bit.
- Removing entries (``del``, ``pop``, ``invalidate_prefix``) moves a hand that stood on one
  of them to the first remaining entry after it, or to the oldest end if none is left.

With ``expired`` and no bound (``expiry_only``) the queue is kept for expiry alone: a replaced
key moves to the newest end, and after each write the two oldest entries are examined,
removed while ``expired`` calls them expired, stopping at the first it does not and at the
entry the write stored. ``remove_expired`` walks the oldest end the same way, without limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


class SieveModel:
    def __init__(
        self,
        max_entries: int | None = None,
        max_weight: int | None = None,
        expired: Callable[[Any], object] | None = None,
    ) -> None:
        self.max_entries = max_entries
        self.max_weight = max_weight
        self.expired = expired
        self.queue: list[str] = []  # oldest first
        self.values: dict[str, Any] = {}
        self.weights: dict[str, int] = {}
        self.visited: set[str] = set()
        self.hand: str | None = None  # None: the oldest
        self.evictions = 0
        self.expirations = 0
        self.expiry_only = max_entries is None and max_weight is None and expired is not None

    # -- reads ------------------------------------------------------------------------

    def get(self, key: str) -> Any:
        if key in self.values:
            self.visited.add(key)
        return self.values.get(key)

    @property
    def weight(self) -> int:
        return sum(self.weights.values())

    # -- writes -----------------------------------------------------------------------

    def put(self, key: str, value: Any, weight: int = 1) -> bool:
        if self.max_weight is not None and weight > self.max_weight:
            self.remove([key])
            return False
        if key in self.values and not self.expiry_only:
            self.visited.add(key)
        else:
            if key in self.values:
                self.queue.remove(key)
            self.queue.append(key)
            self.visited.discard(key)
        self.values[key] = value
        # Without max_weight a trie records no weights: every entry weighs 1.
        self.weights[key] = weight if self.max_weight is not None else 1
        self._make_room(key)
        if self.expiry_only:
            self._expire_oldest(2, key)
        return True

    def setdefault(self, key: str, default: Any) -> Any:
        if key in self.values:
            self.visited.add(key)
            return self.values[key]
        self.put(key, default)
        return default

    def remove(self, keys: Iterable[str]) -> None:
        doomed = {k for k in keys if k in self.values}
        if not doomed:
            return
        if self.hand in doomed:
            at = self.queue.index(self.hand)
            self.hand = next((k for k in self.queue[at:] if k not in doomed), None)
        self.queue = [k for k in self.queue if k not in doomed]
        for key in doomed:
            del self.values[key]
            del self.weights[key]
            self.visited.discard(key)

    def invalidate_prefix(self, prefix: str) -> None:
        self.remove([k for k in self.values if k.startswith(prefix)])

    def remove_if_is(self, key: str, value: Any) -> bool:
        if key in self.values and self.values[key] is value:
            self.remove([key])
            return True
        return False

    def remove_expired(self) -> int:
        return self._expire_oldest(len(self.values), None)

    def _expire_oldest(self, budget: int, keep: str | None) -> int:
        removed = 0
        while budget > 0 and self.expired is not None and self.queue:
            key = self.queue[0]
            if key == keep:
                break
            budget -= 1
            if not self.expired(self.values[key]):
                break
            self.remove([key])
            self.expirations += 1
            removed += 1
        return removed

    # -- the policy ---------------------------------------------------------------------

    def _over(self) -> bool:
        if self.max_entries is not None and len(self.values) > self.max_entries:
            return True
        return self.max_weight is not None and self.weight > self.max_weight

    def _after(self, key: str) -> str | None:
        at = self.queue.index(key)
        return self.queue[at + 1] if at + 1 < len(self.queue) else None

    def _make_room(self, keep: str) -> None:
        while self._over():
            key = self.hand if self.hand is not None else self.queue[0]
            if key == keep:
                if len(self.queue) == 1:
                    return
                self.hand = self._after(key)
                continue
            if self.expired is not None and self.expired(self.values[key]):
                self.remove([key])
                self.expirations += 1
                continue
            if key in self.visited:
                self.visited.discard(key)
                self.hand = self._after(key)
                continue
            self.remove([key])
            self.evictions += 1
