"""Pure-Python twin of the compiled radix trie core (``trie_cache._radix``).

Layout. A path-compressed trie over the characters of ``str`` keys. Every node is a
``_Node``: its ``label`` is the run of characters on the edge from its parent (the root's
label is empty), ``children`` maps the first character of each child's label to the child,
``value`` holds the value of the key that ends at the node (``_ABSENT`` when none does) and
``count`` is the number of values in the node's subtree, its own included. A node that holds
a value also keeps the whole ``key``, so iteration never rebuilds keys. Apart from the root,
every node holds a value or has at least two children; a deletion that leaves a valueless
node with one child merges the two.

Code point order is the order ``sorted()`` gives for ``str``, and a node's key is a prefix
of every key below it, so a pre-order walk that visits children in sorted order yields keys
in sorted order.

``invalidate_prefix`` walks the prefix, detaches the subtree below it and subtracts its count
along the path: O(len(prefix)). Detached subtrees wait on a pending list. Each later write
releases up to ``_SLICE`` of their nodes, as the compiled core does: set, del, pop and popitem
once their own change is done, invalidate_prefix before it detaches; setdefault and writes
that fail release nothing. ``reclaim()`` and ``clear()`` release them all.
Nothing here recurses, so chains of any depth are safe.

Bounded tries (``max_entries`` or ``max_weight``) evict with SIEVE exactly as the compiled
core does; their nodes are ``_QNode``: ``weight`` of the node's own value, ``wsum`` of its
subtree (so a detached subtree's weight leaves the total at once), and the two neighbours in
the eviction queue. See ``_make_room``. Without ``max_weight`` every entry weighs 1. A trie
with ``expired`` and no bound has the same nodes and queue, kept in store order; each write
trims its oldest end (``_expire_oldest``).

A value's ``__del__`` may run arbitrary code that uses the same trie, so every method finishes
its changes to the structure before it lets go of a reference to a value. One re-entrant lock
per trie keeps threads from seeing a half-done change (pure-Python code can be interrupted
between any two bytecodes); the thread that holds it may re-enter from such a ``__del__``.
"""

from __future__ import annotations

import reprlib
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import Any, ClassVar, Generic, TypeVar, overload

from ._limits import check_limit

__all__ = ["RadixTrie"]

V = TypeVar("V")
T = TypeVar("T")

#: Nodes of detached subtrees released by each write.
_SLICE = 64


class _Absent:
    """Marks a node that holds no value (``None`` is a valid value)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<absent>"


_ABSENT: Any = _Absent()


class _Node:
    __slots__ = ("children", "count", "key", "label", "value")

    label: str  # characters on the edge from the parent; "" for the root
    children: dict[str, _Node]  # first character of a child's label -> child
    value: Any  # the value of the key ending here, or _ABSENT
    key: str | None  # the whole key when a value is present, else None
    count: int  # values in this subtree, this node's included

    def __init__(self, label: str) -> None:
        self.label = label
        self.children = {}
        self.value = _ABSENT
        self.key = None
        self.count = 0


class _QNode(_Node):
    """A node of a bounded trie: also its weights and its place in the eviction queue."""

    __slots__ = ("newer", "older", "queued", "visited", "weight", "wsum")

    older: _QNode | None  # queue neighbour inserted just before this node
    newer: _QNode | None  # queue neighbour inserted just after this node
    weight: int  # weight of this node's own value (0 when none)
    wsum: int  # weights of the values in this subtree, this node's included
    queued: bool  # holds a value and sits in the queue
    visited: bool  # read since the hand last passed

    def __init__(self, label: str) -> None:
        super().__init__(label)
        self.older = self.newer = None
        self.weight = self.wsum = 0
        self.queued = self.visited = False


#: Heaviest weight ``put`` accepts (as the compiled core).
_MAX_WEIGHT = 1 << 48


def _check_weight(weight: object) -> int:
    if isinstance(weight, bool) or not isinstance(weight, int):
        raise TypeError(f"weight must be an int, not {type(weight).__name__}")
    if weight < 0 or weight > _MAX_WEIGHT:
        raise ValueError(f"weight must be between 0 and 2**48, not {weight!r}")
    return weight


def _restore(
    cls: type[RadixTrie[Any]], max_entries: int | None, max_weight: int | None, expired: Any
) -> RadixTrie[Any]:
    """An empty trie of ``cls`` with these bounds; unpickling then calls __setstate__."""
    return cls.__new__(cls, max_entries=max_entries, max_weight=max_weight, expired=expired)


def _check(key: object, what: str) -> str:
    if type(key) is str:
        return key
    if isinstance(key, str):
        # A subclass may override indexing or comparison; work on the plain characters.
        return str.__str__(key)
    raise TypeError(f"{what} must be str, not {type(key).__name__}")


def _common_length(key: str, start: int, label: str) -> int:
    """Length of the common prefix of ``key[start:]`` and ``label``.

    The caller knows their first characters are equal. Binary search over ``startswith``
    keeps long labels cheap.
    """
    n = min(len(label), len(key) - start)
    if key.startswith(label[:n], start):
        return n
    lo, hi = 1, n  # key[start:start+lo] matches; key[start:start+hi] does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if key.startswith(label[:mid], start):
            lo = mid
        else:
            hi = mid
    return lo


class RadixTrie(Generic[V]):
    """A mapping of ``str`` keys kept in code point order, with O(len(prefix)) prefix
    counting and invalidation.

    ``max_entries`` / ``max_weight`` bound the trie: after each write returns it holds at
    most that many entries and that much weight (see :meth:`put`), evicting with SIEVE;
    ``expired(value) -> bool`` lets the eviction hand drop expired entries first.

    ``expired`` without a bound keeps the entries in a queue in store order (a replaced key
    moves to the newest end), and every write that stores examines at most two entries at its
    oldest end, removing those ``expired`` calls expired and stopping at the first it does
    not: entries nobody reads again still leave, with no sweeper and no scan. A bounded trie
    leaves expiry to its hand. :meth:`remove_expired` walks the oldest end on demand, and
    :meth:`remove_if_is` lets a reader remove what it found expired.
    """

    __slots__ = (
        "_bounded",
        "_evictions",
        "_expirations",
        "_expired",
        "_expiry_only",
        "_hand",
        "_keep",
        "_lock",
        "_max_entries",
        "_max_weight",
        "_modcount",
        "_newest",
        "_node",
        "_oldest",
        "_pending",
        "_pending_count",
        "_root",
    )

    __hash__: ClassVar[None]  # type: ignore[assignment]

    _root: _Node  # holds the value of "" and the children of every other key
    _pending: list[_Node]  # detached nodes whose values are not released yet
    _pending_count: int  # values held by the nodes in _pending and their subtrees
    _modcount: int  # bumped on every structural change; iterators compare it
    _lock: threading.RLock
    # The bound: see _make_room. ``_bounded`` is true when a limit or ``expired`` is set:
    # then the nodes are _QNode and the entries sit in the queue.
    _bounded: bool
    _expiry_only: bool  # queued for ``expired`` alone: store order, writes trim the oldest end
    _max_entries: int | None
    _max_weight: int | None
    _expired: Any  # None, or value -> bool, asked by the hand
    _node: type[_Node]  # _QNode when bounded
    _oldest: _QNode | None
    _newest: _QNode | None
    _hand: _QNode | None  # next node the hand examines; None means the oldest
    _keep: _QNode | None  # the entry the current write stored: never its own victim
    _evictions: int
    _expirations: int

    def __new__(
        cls,
        other: Any = (),
        /,
        *,
        max_entries: int | None = None,
        max_weight: int | None = None,
        expired: Callable[[Any], object] | None = None,
    ) -> RadixTrie[V]:
        limit_entries = check_limit(max_entries, "max_entries")
        limit_weight = check_limit(max_weight, "max_weight")
        if expired is not None and not callable(expired):
            raise TypeError(f"expired must be callable or None, not {type(expired).__name__}")
        self = super().__new__(cls)
        self._bounded = limit_entries is not None or limit_weight is not None
        self._expiry_only = not self._bounded and expired is not None
        self._bounded = self._bounded or self._expiry_only
        self._max_entries = limit_entries
        self._max_weight = limit_weight
        self._expired = expired
        self._node = _QNode if self._bounded else _Node
        self._oldest = self._newest = self._hand = self._keep = None
        self._evictions = self._expirations = 0
        self._root = self._node("")
        self._pending = []
        self._pending_count = 0
        self._modcount = 0
        self._lock = threading.RLock()
        return self

    def __init__(
        self,
        other: Mapping[str, V] | RadixTrie[V] | Iterable[tuple[str, V]] = (),
        /,
        *,
        max_entries: int | None = None,
        max_weight: int | None = None,
        expired: Callable[[Any], object] | None = None,
    ) -> None:
        self.update(other)

    # -- the bound (SIEVE) -------------------------------------------------------------

    @property
    def max_entries(self) -> int | None:
        """The most entries the trie holds after a write returns, or None."""
        return self._max_entries

    @property
    def max_weight(self) -> int | None:
        """The greatest total weight the trie holds after a write returns, or None."""
        return self._max_weight

    @property
    def weight(self) -> int:
        """Sum of the weights of the entries; ``len(self)`` without ``max_weight`` (every
        entry then weighs 1)."""
        if self._bounded:
            return self._root.wsum  # type: ignore[attr-defined, no-any-return]
        return self._root.count

    @property
    def evictions(self) -> int:
        """Entries removed by the hand to make room."""
        return self._evictions

    @property
    def expirations(self) -> int:
        """Entries removed because ``expired`` said so: by the hand, by the writes of a
        trie with no bound, by :meth:`remove_expired`."""
        return self._expirations

    @property
    def expired(self) -> Callable[[Any], object] | None:
        """The predicate asked about the entries the hand (or an expiry step) meets, or None."""
        return self._expired  # type: ignore[no-any-return]

    def _push(self, node: _QNode) -> None:
        """Append a node that just got a value at the newest end, unvisited."""
        node.older = self._newest
        node.newer = None
        if self._newest is not None:
            self._newest.newer = node
        else:
            self._oldest = node
        self._newest = node
        node.queued = True
        node.visited = False

    def _unlink(self, node: _QNode) -> None:
        """Take a node out of the queue (no-op if it is not in it); the hand moves on."""
        if not node.queued:
            return
        if self._hand is node:
            self._hand = node.newer
        if self._keep is node:
            self._keep = None
        if node.older is not None:
            node.older.newer = node.newer
        else:
            self._oldest = node.newer
        if node.newer is not None:
            node.newer.older = node.older
        else:
            self._newest = node.older
        node.older = node.newer = None
        node.queued = node.visited = False

    def _over(self) -> bool:
        root = self._root
        if self._max_entries is not None and root.count > self._max_entries:
            return True
        return self._max_weight is not None and root.wsum > self._max_weight  # type: ignore[attr-defined]

    def _settle_hand(self) -> None:
        """Move the hand off nodes of detached subtrees before an entry joins the queue.

        The hand then points where it would have pointed had ``invalidate_prefix`` unlinked
        the detached nodes at once: a new entry never slips in between.
        """
        node = self._hand
        while node is not None and not self._live(node):
            self._unlink(node)
            node = self._hand

    def _live(self, node: _QNode) -> bool:
        """Whether a queued node is in the trie (not in a detached subtree)."""
        key = node.key
        return key is not None and self._find(key) is node

    def _make_room(self) -> None:
        """Evict until the bound holds: SIEVE, the same decisions as the compiled core.

        The hand examines the queue from the oldest end towards the newest and wraps
        around. A node of a detached subtree leaves the queue as the hand meets it. An entry
        ``expired`` calls expired is removed whatever its visited bit; a visited entry loses
        the bit and is passed; the first unvisited entry is the victim, and the hand stays on
        the entry after it. The entry the current write stored (``_keep``) is passed over.
        Each victim's value goes once the trie is consistent.
        """
        while self._over():
            node = self._hand
            if node is None:
                node = self._oldest
                if node is None:
                    return
            if node is self._keep:
                if node.older is None and node.newer is None:
                    return
                self._hand = node.newer
                continue
            if not self._live(node):
                self._unlink(node)
                continue
            expired = self._expired
            if expired is not None:
                value = node.value
                stamp = self._modcount
                gone = bool(expired(value))
                if self._modcount != stamp or node.value is not value:
                    del value  # the predicate changed the trie: look again
                    continue
                del value
                if gone:
                    self._evict(node, True)
                    continue
            if node.visited:
                node.visited = False
                self._hand = node.newer
                continue
            self._evict(node, False)

    def _evict(self, node: _QNode, expired: bool) -> None:
        key = node.key
        assert key is not None
        old = self._remove(key)
        if expired:
            self._expirations += 1
        else:
            self._evictions += 1
        del old  # may re-enter; the trie and the queue are consistent here

    def _expire_oldest(self, budget: int) -> int:
        """Remove entries from the queue's oldest end while ``expired`` calls them expired,
        examining at most ``budget`` of them; return how many went.

        The compiled core's rules: nodes of detached subtrees leave the queue unexamined; the
        walk stops at the first entry that is not expired, at the entry the current write
        stored (``_keep``), when the predicate changed the trie, and when a released value's
        ``__del__`` wrote to it (``_keep`` was cleared: a write ends by clearing it).
        """
        keeping = self._keep is not None
        removed = 0
        while budget > 0 and self._expired is not None:
            node = self._oldest
            if node is None or node is self._keep:
                break
            if not self._live(node):
                self._unlink(node)
                continue
            budget -= 1
            value = node.value
            stamp = self._modcount
            gone = bool(self._expired(value))
            if self._modcount != stamp or node.value is not value or not gone:
                break
            del value
            self._evict(node, True)
            removed += 1
            if keeping and self._keep is None:
                break
        return removed

    def remove_expired(self) -> int:
        """Remove entries from the oldest end of the queue while ``expired`` calls them
        expired; return how many (counted in :attr:`expirations`).

        The walk stops at the first entry that is not expired, so it costs what it removes
        plus one call of ``expired``; it is never run by the trie itself. The queue is in
        store order when ``expired`` is set without a bound, in insertion order (a replaced
        key keeps its place) in a bounded trie. 0 for a trie without ``expired``.
        """
        with self._lock:
            if not self._bounded:
                return 0
            removed = self._expire_oldest(self._root.count)
            if self._pending:
                self._release(_SLICE)
            return removed

    def remove_if_is(self, key: str, value: object) -> bool:
        """Remove ``key`` if the value it holds is ``value`` itself (``is``, not ``==``);
        return whether it did.

        A compare-and-delete: a reader that found ``value`` stale removes it without
        removing what another thread stored under ``key`` since. Atomic like every method.
        """
        key = _check(key, "keys")
        with self._lock:
            node = self._find(key)
            if node is None or node.value is _ABSENT or node.value is not value:
                return False
            old = self._remove(key)
            del old  # the caller holds value: no __del__ runs here
            if self._pending:
                self._release(_SLICE)
            return True

    def _write(self, key: str, value: Any, weight: int) -> None:
        """Set ``key`` (checked) with ``weight``, restore the bound, release a slice."""
        old = self._store(key, value, True, weight)
        if self._bounded:
            try:
                self._make_room()
                if self._expiry_only:
                    self._expire_oldest(2)
            finally:
                self._keep = None  # also when expired raised: keep names no entry
        del old  # the structure is consistent: the old value may go now
        if self._pending:
            self._release(_SLICE)

    def put(self, key: str, value: V, weight: int = 1) -> bool:
        """Store ``value`` under ``key`` with a ``weight`` (an int, 0 to 2**48); return
        whether it was stored.

        An entry heavier than ``max_weight`` is not stored and removes what ``key`` held
        (``False``). A trie without ``max_weight`` records no weights (each entry weighs 1):
        ``put`` is then ``self[key] = value``.
        """
        weight = _check_weight(weight)
        key = _check(key, "keys")
        with self._lock:
            if self._max_weight is not None and weight > self._max_weight:
                old = self._remove(key)
                del old
                if self._pending:
                    self._release(_SLICE)
                return False
            self._write(key, value, weight)
            return True

    # -- lookups -------------------------------------------------------------------

    def _find(self, key: str) -> _Node | None:
        node = self._root
        i = 0
        n = len(key)
        while i < n:
            child = node.children.get(key[i])
            if child is None or not key.startswith(child.label, i):
                return None
            i += len(child.label)
            node = child
        return node

    def _locate(self, prefix: str) -> tuple[list[_Node], _Node | None]:
        """The path to the highest node whose key starts with ``prefix`` (or None)."""
        path = [self._root]
        node = self._root
        i = 0
        n = len(prefix)
        while i < n:
            child = node.children.get(prefix[i])
            if child is None:
                return path, None
            label = child.label
            if len(label) >= n - i:
                if label.startswith(prefix[i:]):
                    return path, child
                return path, None
            if not prefix.startswith(label, i):
                return path, None
            i += len(label)
            path.append(child)
            node = child
        path.pop()
        return path, node

    def __getitem__(self, key: str) -> V:
        with self._lock:
            node = self._find(_check(key, "keys"))
            if node is None or node.value is _ABSENT:
                raise KeyError(key)
            if self._bounded:
                node.visited = True  # type: ignore[attr-defined]
            return node.value  # type: ignore[no-any-return]

    @overload
    def get(self, key: str) -> V | None: ...
    @overload
    def get(self, key: str, default: V | T) -> V | T: ...

    def get(self, key: str, default: Any = None) -> Any:
        """The value under ``key``, or ``default``."""
        key = _check(key, "keys")
        with self._lock:
            node = self._find(key)
            if node is None or node.value is _ABSENT:
                return default
            if self._bounded:
                node.visited = True  # type: ignore[attr-defined]
            return node.value

    def __contains__(self, key: object) -> bool:
        key = _check(key, "keys")
        with self._lock:
            node = self._find(key)
            return node is not None and node.value is not _ABSENT

    def __len__(self) -> int:
        return self._root.count

    def count_prefix(self, prefix: str) -> int:
        """How many keys start with ``prefix``; O(len(prefix))."""
        prefix = _check(prefix, "prefixes")
        with self._lock:
            node = self._locate(prefix)[1]
            return 0 if node is None else node.count

    # -- writes ----------------------------------------------------------------------

    def __setitem__(self, key: str, value: V) -> None:
        key = _check(key, "keys")
        with self._lock:
            self._write(key, value, 1)

    def _store(self, key: str, value: Any, replace: bool, weight: int = 1) -> Any:
        """Set ``key``; return the value it had (``_ABSENT`` if none).

        With ``replace`` false an existing value is kept and returned. In a queued trie the
        entry weighs ``weight`` and ``_keep`` names its node: a new key joins the queue's
        newest end, a replaced one keeps its place and counts as visited (``_expiry_only``:
        moves to the newest end). Without ``max_weight`` every entry weighs 1, as in the
        compiled core, which keeps no weights then.
        """
        new_node = self._node
        bounded = self._bounded
        if bounded:
            self._settle_hand()
            if self._max_weight is None:
                weight = 1
        node = self._root
        path: list[_Node] = []
        i = 0
        n = len(key)
        while i < n:
            child = node.children.get(key[i])
            if child is None:
                # New leaf under node.
                leaf = new_node(key[i:])
                leaf.value = value
                leaf.key = key
                leaf.count = 1
                path.append(node)
                for above in path:
                    above.count += 1
                node.children[key[i]] = leaf
                if bounded:
                    self._queue_new(leaf, path, weight)  # type: ignore[arg-type]
                self._modcount += 1
                return _ABSENT
            label = child.label
            if key.startswith(label, i):
                path.append(node)
                i += len(label)
                node = child
                continue
            # The key leaves the child's label part-way: split the edge at m.
            m = _common_length(key, i, label)
            mid = new_node(label[:m])
            rest = label[m:]
            mid.children[rest[0]] = child
            holder = mid
            if i + m == n:
                mid.value = value
                mid.key = key
            else:
                holder = leaf = new_node(key[i + m :])
                leaf.value = value
                leaf.key = key
                leaf.count = 1
                mid.children[key[i + m]] = leaf
            mid.count = child.count + 1
            if bounded:
                mid.wsum = child.wsum  # type: ignore[attr-defined]
            # Link: nothing from here on allocates or lets go of a value.
            child.label = rest
            path.append(node)
            for above in path:
                above.count += 1
            node.children[key[i]] = mid
            if bounded:
                if holder is not mid:
                    path.append(mid)
                self._queue_new(holder, path, weight)  # type: ignore[arg-type]
            self._modcount += 1
            return _ABSENT
        old = node.value
        if old is _ABSENT:
            node.value = value
            node.key = key
            path.append(node)
            for above in path:
                above.count += 1
            if bounded:
                path.pop()
                self._queue_new(node, path, weight)  # type: ignore[arg-type]
            self._modcount += 1
        elif replace:
            node.value = value
            if bounded:
                assert isinstance(node, _QNode)
                delta = weight - node.weight
                node.weight = weight
                path.append(node)
                for above in path:
                    above.wsum += delta  # type: ignore[attr-defined]
                if self._expiry_only:
                    self._unlink(node)  # the queue stays in store order
                    self._push(node)
                else:
                    node.visited = True
                self._keep = node
        return old

    def _queue_new(self, node: _QNode, above: list[_Node], weight: int) -> None:
        """A bounded trie's ``node`` just got its value: weigh it and queue it."""
        node.weight = weight
        node.wsum += weight
        for up in above:
            up.wsum += weight  # type: ignore[attr-defined]
        self._push(node)
        self._keep = node

    @overload
    def setdefault(self: RadixTrie[T | None], key: str, default: None = None) -> T | None: ...
    @overload
    def setdefault(self, key: str, default: V) -> V: ...

    def setdefault(self, key: str, default: Any = None) -> Any:
        """``self[key]`` if present, else store and return ``default``."""
        key = _check(key, "keys")
        with self._lock:
            node = self._find(key)
            if node is not None and node.value is not _ABSENT:
                if self._bounded:
                    node.visited = True  # type: ignore[attr-defined]
                return node.value
            self._write(key, default, 1)
            return default

    def _remove(self, key: str) -> Any:
        """Remove ``key``; return its value, or ``_ABSENT`` with nothing changed."""
        path = [self._root]
        node = self._root
        i = 0
        n = len(key)
        while i < n:
            child = node.children.get(key[i])
            if child is None or not key.startswith(child.label, i):
                return _ABSENT
            i += len(child.label)
            path.append(child)
            node = child
        old = node.value
        if old is _ABSENT:
            return _ABSENT
        node.value = _ABSENT
        node.key = None
        for above in path:
            above.count -= 1
        if self._bounded:
            assert isinstance(node, _QNode)
            weight = node.weight
            node.weight = 0
            for above in path:
                above.wsum -= weight  # type: ignore[attr-defined]
            self._unlink(node)
        self._modcount += 1
        if node is not self._root:
            parent = path[-2]
            if not node.children:
                del parent.children[node.label[0]]
                self._tidy(path[-3] if len(path) > 2 else None, parent)
            elif len(node.children) == 1:
                self._merge(parent, node)
        return old

    @staticmethod
    def _tidy(parent: _Node | None, node: _Node) -> None:
        """After a child of ``node`` went: merge ``node`` into its only child if it must.

        ``parent`` is None when ``node`` is the root, which never merges.
        """
        if parent is not None and node.value is _ABSENT and len(node.children) == 1:
            RadixTrie._merge(parent, node)

    @staticmethod
    def _merge(parent: _Node, node: _Node) -> None:
        """Replace ``node`` (valueless, one child) by its child under ``parent``."""
        (child,) = node.children.values()
        child.label = node.label + child.label
        parent.children[node.label[0]] = child
        node.children.clear()

    def __delitem__(self, key: str) -> None:
        with self._lock:
            old = self._remove(_check(key, "keys"))
            if old is _ABSENT:
                raise KeyError(key)
            del old
            if self._pending:
                self._release(_SLICE)

    @overload
    def pop(self, key: str) -> V: ...
    @overload
    def pop(self, key: str, default: V | T) -> V | T: ...

    def pop(self, key: str, default: Any = _ABSENT) -> Any:
        """Remove ``key`` and return its value; ``default`` or KeyError when absent."""
        with self._lock:
            old = self._remove(_check(key, "keys"))
            if old is _ABSENT:
                if default is _ABSENT:
                    raise KeyError(key)
                return default
            if self._pending:
                self._release(_SLICE)
        return old

    def popitem(self) -> tuple[str, V]:
        """Remove and return the last ``(key, value)`` in order; KeyError if empty."""
        with self._lock:
            node = self._root
            while node.children:
                node = node.children[max(node.children)]
            if node.value is _ABSENT:
                raise KeyError("popitem(): RadixTrie is empty")
            key = node.key
            assert key is not None
            return key, self.pop(key)

    @overload
    def update(self, other: Mapping[str, V], /, **kwargs: V) -> None: ...
    @overload
    def update(self, other: RadixTrie[V], /, **kwargs: V) -> None: ...
    @overload
    def update(self, other: Iterable[tuple[str, V]], /, **kwargs: V) -> None: ...
    @overload
    def update(self, /, **kwargs: V) -> None: ...

    def update(self, other: Any = (), /, **kwargs: V) -> None:
        """Like ``dict.update``."""
        if isinstance(other, Mapping):
            for key in other:
                self[key] = other[key]
        elif hasattr(other, "keys"):
            for key in other.keys():  # noqa: SIM118 (dict.update calls keys())
                self[key] = other[key]
        else:
            for key, value in other:
                self[key] = value
        for key, value in kwargs.items():
            self[key] = value

    def invalidate_prefix(self, prefix: str) -> int:
        """Remove every key that starts with ``prefix`` ("" removes all); return how many.

        O(len(prefix)): the subtree is detached now and released later.
        """
        prefix = _check(prefix, "prefixes")
        with self._lock:
            self._release(_SLICE)
            return self._detach(prefix)

    def _detach(self, prefix: str) -> int:
        path, node = self._locate(prefix)
        if node is None or node.count == 0:
            return 0
        removed = node.count
        if node is self._root:
            self._root = self._node("")
        else:
            parent = path[-1]
            del parent.children[node.label[0]]
            for above in path:
                above.count -= removed
            if self._bounded:
                weight = node.wsum  # type: ignore[attr-defined]
                for above in path:
                    above.wsum -= weight  # type: ignore[attr-defined]
            self._tidy(path[-2] if len(path) > 1 else None, parent)
        self._pending.append(node)
        self._pending_count += removed
        self._modcount += 1
        return removed

    def clear(self) -> None:
        """Remove every key and release all memory and references, pending ones too."""
        with self._lock:
            self._detach("")
            self._release(None)

    def reclaim(self) -> int:
        """Release every detached entry now; return how many values were released."""
        with self._lock:
            return self._release(None)

    @property
    def pending_reclaim(self) -> int:
        """Entries removed by ``invalidate_prefix`` whose values are not released yet."""
        return self._pending_count

    def _release(self, budget: int | None) -> int:
        """Release up to ``budget`` pending nodes (all when None); return values released.

        Each step leaves the pending list consistent before a value goes, so a value's
        ``__del__`` may use the trie, this method included.
        """
        pending = self._pending
        released = 0
        left = -1 if budget is None else budget
        while pending and left != 0:
            left -= 1
            node = pending.pop()
            children = node.children
            if children:
                pending.extend(children.values())
                children.clear()
            value = node.value
            if value is not _ABSENT:
                if self._bounded:
                    self._unlink(node)  # type: ignore[arg-type]
                node.value = _ABSENT
                node.key = None
                self._pending_count -= 1
                released += 1
            del node
            del value  # may run a __del__ that uses this trie
        return released

    # -- iteration -------------------------------------------------------------------

    def _iter(self, prefix: object, kind: int) -> _TrieIterator:
        prefix = _check(prefix, "prefixes")
        with self._lock:
            node = self._locate(prefix)[1]
            return _TrieIterator(self, node, kind)

    def __iter__(self) -> Iterator[str]:
        return self._iter("", _KEYS)

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Keys starting with ``prefix``, in code point order (a lazy iterator)."""
        return self._iter(prefix, _KEYS)

    def values(self, prefix: str = "") -> Iterator[V]:
        """Values of the keys starting with ``prefix``, in key order (a lazy iterator)."""
        return self._iter(prefix, _VALUES)

    def items(self, prefix: str = "") -> Iterator[tuple[str, V]]:
        """``(key, value)`` pairs for keys starting with ``prefix``, in key order."""
        return self._iter(prefix, _ITEMS)

    # -- whole-mapping protocols -----------------------------------------------------

    def copy(self) -> RadixTrie[V]:
        """A shallow copy (pending entries are not copied).

        A bounded trie's copy has the same bounds, ``expired``, weights, queue order, visited
        bits and hand, so it makes the same eviction decisions; its counters start at zero.
        """
        with self._lock:
            if self._bounded:
                new = self._copy_bounded()
            else:
                new = RadixTrie()
                new._root = _copy_tree(self._root)
            if self._pending:
                self._release(_SLICE)
        return new

    def _copy_bounded(self) -> RadixTrie[V]:
        new: RadixTrie[V] = RadixTrie(
            max_entries=self._max_entries, max_weight=self._max_weight, expired=self._expired
        )
        node = self._oldest
        hand_next = False
        while node is not None:
            if node is self._hand:
                hand_next = True
            if self._live(node):
                assert node.key is not None
                new._store(node.key, node.value, True, node.weight)
                fresh = new._keep
                assert fresh is not None
                new._keep = None
                fresh.visited = node.visited
                if hand_next:
                    new._hand = fresh
                    hand_next = False
            node = node.newer
        return new

    def __ior__(self, other: Any) -> RadixTrie[V]:
        self.update(other)
        return self

    def __or__(self, other: Any) -> RadixTrie[V]:
        if not isinstance(other, Mapping):
            return NotImplemented
        new = self.copy()
        new.update(other)
        return new

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        if len(self) != len(other):
            return False
        for key, value in self.items():
            try:
                theirs = other[key]
            except (KeyError, TypeError):
                return False
            if not (value is theirs or value == theirs):
                return False
        return True

    def __copy__(self) -> RadixTrie[V]:
        # copy.copy keeps a subclass's type, as the compiled core's does.
        if type(self) is RadixTrie:
            return self.copy()
        return type(self)(self.copy())

    @reprlib.recursive_repr()
    def __repr__(self) -> str:
        body = ", ".join(f"{key!r}: {value!r}" for key, value in self.items())
        return f"{type(self).__name__}({{{body}}})"

    def __reduce__(self) -> tuple[Any, ...]:
        # The entries travel as state, set after the empty trie exists: pickle and deepcopy
        # record the trie first, so a value that refers back to it (t["self"] = t) works.
        return (
            _restore,
            (type(self), self._max_entries, self._max_weight, self._expired),
            self._state(),
        )

    def _state(self) -> Any:
        """``[(key, value), ...]`` in key order; for a bounded trie ``(entries, hand)`` with
        ``[(key, value, weight, visited), ...]`` in queue order and the hand's index."""
        with self._lock:
            if not self._bounded:
                return list(self.items())
            entries: list[tuple[str, Any, int, bool]] = []
            hand = -1
            stamp = self._modcount
            node = self._oldest
            while node is not None:
                if node is self._hand and hand < 0:
                    hand = len(entries)
                if self._live(node):
                    assert node.key is not None
                    entries.append((node.key, node.value, node.weight, node.visited))
                    if self._modcount != stamp:  # a finaliser run by the collector wrote
                        raise RuntimeError("RadixTrie changed shape while being pickled")
                node = node.newer
            return (entries, hand if hand < len(entries) else -1)

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, list):
            for key, value in state:
                self[key] = value
            return
        entries, hand = state
        with self._lock:
            for key, value, weight, visited in entries:
                if not self._bounded:
                    self[key] = value
                    continue
                self._store(_check(key, "keys"), value, True, _check_weight(weight))
                node = self._keep
                self._keep = None
                if node is not None and visited:
                    node.visited = True
            if self._bounded:
                if hand >= 0:
                    node = self._oldest
                    while node is not None and hand > 0:
                        node = node.newer
                        hand -= 1
                    self._hand = node
                self._make_room()
                self._keep = None


_KEYS, _VALUES, _ITEMS = 0, 1, 2

# Whichever core ``trie_cache`` picks, both are mappings (and compare as such).
MutableMapping.register(RadixTrie)


def _copy_tree(root: _Node) -> _Node:
    new_root = _Node(root.label)
    stack = [(root, new_root)]
    while stack:
        src, dst = stack.pop()
        dst.value = src.value
        dst.key = src.key
        dst.count = src.count
        for first, child in src.children.items():
            twin = _Node(child.label)
            dst.children[first] = twin
            stack.append((child, twin))
    return new_root


class _TrieIterator(Iterator[Any]):
    """Pre-order walk with an explicit stack; children in sorted order."""

    __slots__ = ("_kind", "_modcount", "_stack", "_trie")

    def __init__(self, trie: RadixTrie[Any], node: _Node | None, kind: int) -> None:
        self._trie: RadixTrie[Any] | None = trie if node is not None else None
        self._stack = [] if node is None else [node]
        self._modcount = trie._modcount
        self._kind = kind

    def __iter__(self) -> _TrieIterator:
        return self

    def __next__(self) -> Any:
        trie = self._trie
        if trie is None:
            raise StopIteration
        with trie._lock:
            if trie._modcount != self._modcount:
                self._modcount = -1  # stays broken, like dict's iterators
                raise RuntimeError("RadixTrie changed size during iteration")
            stack = self._stack
            while stack:
                node = stack.pop()
                children = node.children
                if children:
                    if len(children) == 1:
                        stack.extend(children.values())
                    else:
                        for first in sorted(children, reverse=True):
                            stack.append(children[first])
                value = node.value
                if value is not _ABSENT:
                    if self._kind == _KEYS:
                        return node.key
                    if self._kind == _VALUES:
                        return value
                    return (node.key, value)
            self._trie = None
            raise StopIteration
