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

A value's ``__del__`` may run arbitrary code that uses the same trie, so every method finishes
its changes to the structure before it lets go of a reference to a value. One re-entrant lock
per trie keeps threads from seeing a half-done change (pure-Python code can be interrupted
between any two bytecodes); the thread that holds it may re-enter from such a ``__del__``.
"""

from __future__ import annotations

import reprlib
import threading
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import Any, ClassVar, Generic, TypeVar, overload

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
    counting and invalidation."""

    __slots__ = ("_lock", "_modcount", "_pending", "_pending_count", "_root")

    __hash__: ClassVar[None]  # type: ignore[assignment]

    _root: _Node  # holds the value of "" and the children of every other key
    _pending: list[_Node]  # detached nodes whose values are not released yet
    _pending_count: int  # values held by the nodes in _pending and their subtrees
    _modcount: int  # bumped on every structural change; iterators compare it
    _lock: threading.RLock

    def __new__(cls, other: Any = (), /) -> RadixTrie[V]:
        self = super().__new__(cls)
        self._root = _Node("")
        self._pending = []
        self._pending_count = 0
        self._modcount = 0
        self._lock = threading.RLock()
        return self

    def __init__(
        self, other: Mapping[str, V] | RadixTrie[V] | Iterable[tuple[str, V]] = (), /
    ) -> None:
        self.update(other)

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
            old = self._store(key, value, replace=True)
            del old  # the structure is consistent: the old value may go now
            if self._pending:
                self._release(_SLICE)

    def _store(self, key: str, value: Any, replace: bool) -> Any:
        """Set ``key``; return the value it had (``_ABSENT`` if none).

        With ``replace`` false an existing value is kept and returned.
        """
        node = self._root
        path: list[_Node] = []
        i = 0
        n = len(key)
        while i < n:
            child = node.children.get(key[i])
            if child is None:
                # New leaf under node.
                leaf = _Node(key[i:])
                leaf.value = value
                leaf.key = key
                leaf.count = 1
                path.append(node)
                for above in path:
                    above.count += 1
                node.children[key[i]] = leaf
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
            mid = _Node(label[:m])
            rest = label[m:]
            mid.children[rest[0]] = child
            if i + m == n:
                mid.value = value
                mid.key = key
            else:
                leaf = _Node(key[i + m :])
                leaf.value = value
                leaf.key = key
                leaf.count = 1
                mid.children[key[i + m]] = leaf
            mid.count = child.count + 1
            # Link: nothing from here on allocates or lets go of a value.
            child.label = rest
            path.append(node)
            for above in path:
                above.count += 1
            node.children[key[i]] = mid
            self._modcount += 1
            return _ABSENT
        old = node.value
        if old is _ABSENT:
            node.value = value
            node.key = key
            path.append(node)
            for above in path:
                above.count += 1
            self._modcount += 1
        elif replace:
            node.value = value
        return old

    @overload
    def setdefault(self: RadixTrie[T | None], key: str, default: None = None) -> T | None: ...
    @overload
    def setdefault(self, key: str, default: V) -> V: ...

    def setdefault(self, key: str, default: Any = None) -> Any:
        """``self[key]`` if present, else store and return ``default``."""
        key = _check(key, "keys")
        with self._lock:
            old = self._store(key, default, replace=False)
            return default if old is _ABSENT else old

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
            self._root = _Node("")
        else:
            parent = path[-1]
            del parent.children[node.label[0]]
            for above in path:
                above.count -= removed
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
        """A shallow copy (pending entries are not copied)."""
        new: RadixTrie[V] = RadixTrie()
        with self._lock:
            new._root = _copy_tree(self._root)
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
        return (type(self), (dict(self.items()),))


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
