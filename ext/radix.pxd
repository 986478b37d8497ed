# Declarations of the compiled radix trie's nodes; ``_radix.pyx`` implements the trie.
#
# Layout, in the style of the Adaptive Radix Tree (Leis et al., 2013):
#
# * Keys are stored as UTF-8 bytes, lone surrogates passed through, so byte order equals
#   code point order and a str prefix is exactly a byte prefix.
# * Every node starts with a ``Node`` header (a ``Node4`` and a ``Bare`` leaf with a part of
#   it, see below). A node's *label* is the compressed run of bytes that follows the byte
#   under which it hangs from its parent (path compression); the root's label is always
#   empty. A label longer than ``INLINE_LABEL`` bytes is stored in the node's own
#   allocation, just after its struct, so reading it touches no other block.
# * Children live in the same allocation as the header, in one of four shapes chosen by
#   fan-out: ``Node4`` and ``Node16`` keep sorted parallel arrays of bytes and pointers,
#   ``Node48`` maps a byte to a slot through a 256-entry index, ``Node256`` is indexed by
#   the byte itself. A node with no children is a header alone (``KIND_LEAF``).
# * A leaf of a trie without ``Link``s (no bound, no ``expired``) is a ``Bare`` node
#   (``KIND_BARE``): the header's first 16 bytes (kind, flags, nkids, plen, value) and the
#   label right after them, never fewer than 8 bytes of room. It has no ``count`` (it holds
#   exactly one value while it is in the trie) and no label pointer, so a leaf costs 16
#   bytes plus its label: 32 bytes up to a 16-byte label, 48 up to 32. Once detached, its
#   first 8 label bytes, where a ``Node`` has ``count``, are its garbage link. The root is
#   never bare (it may hold no value); a bare leaf that gets a child becomes a Node4, and a
#   node that loses its last child becomes a ``KIND_LEAF`` (its count kept).
# * A ``Node4`` has no ``label`` field either: its header is a ``Head`` (Node without the
#   label) and its label, of any length, follows the struct, so a fork with an empty label
#   (the common one under random keys) is 64 bytes, a pymalloc class below the 80 it would
#   need with the 8 inline label bytes.
# * ``count`` is the number of values in a node's subtree, so counting or dropping a whole
#   prefix needs no visit below the node where the prefix ends.
# * Detached subtrees wait on a singly linked *garbage list* threaded through ``count``
#   (no longer needed once detached), so detaching never allocates and freeing needs no
#   stack and no recursion.
# * A *bounded* trie (max_entries or max_weight set) allocates every node with a ``Link``
#   just before its header (flag ``F_LINKED``): the node's parent and, for a value-holding
#   node, its two neighbours in the eviction queue (SIEVE: a FIFO in insertion order, a
#   visited bit, a hand). So does a trie with an ``expired`` predicate and no bound, whose
#   queue is kept in store order for expiry alone (no hand). A trie with ``max_weight`` also
#   keeps each subtree's weight there (``F_WEIGHED``); without it every entry weighs 1 and
#   ``count`` is the weight. A leaf of a trie without ``max_weight`` has only the queue
#   neighbours (``F_SHORT``, 16 bytes: the leaf is 48 bytes, a pymalloc class below the 64
#   of a full Link): a live leaf always holds one value, so its ``count`` field holds its
#   parent instead. Other tries' nodes have no ``Link``.

from cpython.object cimport PyObject
from libc.stdint cimport uint8_t, uint16_t, uint32_t

ctypedef unsigned char uchar

cdef enum:
    KIND_LEAF = 0     # no child storage
    KIND_N4 = 1       # up to 4 children
    KIND_N16 = 2      # up to 16 children
    KIND_N48 = 3      # up to 48 children
    KIND_N256 = 4     # up to 256 children
    KIND_BARE = 5     # a leaf with the 16-byte header of Bare (tries without Links)
    INLINE_LABEL = 8  # labels up to this many bytes live inside the header (not in a
                      # Node4's nor a Bare leaf's: theirs always follow the struct)

cdef enum:
    F_LINKED = 1      # allocated with a Link just before the header
    F_QUEUED = 2      # holds a value and sits in the trie's eviction queue
    F_VISITED = 4     # read since the hand last passed (SIEVE's visited bit)
    F_SHORT = 8       # a leaf whose Link is a QLink: ``count`` holds its parent
    F_WEIGHED = 16    # the Link starts with the subtree's weight (tries with max_weight)

cdef union Label:
    uchar inl[8]      # the label itself when plen <= INLINE_LABEL
    uchar *ptr        # the label when plen > INLINE_LABEL: the bytes after the node's struct

cdef struct Node:
    uint8_t kind      # one of KIND_*; says which struct below this header opens
    uint8_t flags     # F_* bits (this byte was padding before)
    uint16_t nkids    # children in use (0..256)
    uint32_t plen     # bytes in this node's label
    PyObject *value   # owned reference, or NULL when no key ends at this node
    Py_ssize_t count  # values in this subtree, this node's included; garbage link once detached
    Label label       # the compressed path below the parent's branching byte

# A KIND_BARE leaf: Node's fields up to ``value``, then the label (at offset BARE_HEADER,
# where Node has ``count``), at least INLINE_LABEL bytes of room, longer ones running on.
cdef struct Bare:
    uint8_t kind
    uint8_t flags
    uint16_t nkids    # always 0
    uint32_t plen
    PyObject *value
    uchar label[8]

cdef enum:
    BARE_HEADER = 16  # offset of a Bare leaf's label: sizeof(Bare) - INLINE_LABEL

# Node's fields without the label: the header of a Node4, whose label follows the struct.
cdef struct Head:
    uint8_t kind
    uint8_t flags
    uint16_t nkids
    uint32_t plen
    PyObject *value
    Py_ssize_t count

cdef struct Node4:
    Head hdr
    uchar keys[4]     # branching bytes of the children, ascending
    Node *kids[4]     # kids[i] hangs under keys[i]

cdef struct Node16:
    Node hdr
    uchar keys[16]    # branching bytes of the children, ascending
    Node *kids[16]    # kids[i] hangs under keys[i]

cdef struct Node48:
    Node hdr
    uchar index[256]  # byte -> 1 + slot in kids, 0 when the byte has no child
    Node *kids[48]    # unordered; NULL marks a free slot

cdef struct Node256:
    Node hdr
    Node *kids[256]   # kids[b] hangs under byte b, or NULL


# The bytes before a linked node's header, nearest last. Every linked node has the QLink;
# all but F_SHORT leaves have the parent before it; F_WEIGHED nodes have the weight first:
#   [weight][parent][older newer][header ...]
cdef struct QLink:
    Node *older       # queue neighbour inserted just before this node, or NULL
    Node *newer       # queue neighbour inserted just after this node, or NULL

cdef struct Link:
    Node *parent      # NULL for the root and for the top of a detached subtree
    QLink q

cdef struct Queue:
    Node *oldest      # first node the hand examines after wrapping around
    Node *newest      # where a new entry joins
    Node *hand        # next node the hand examines; NULL means the oldest
    Node *keep        # the entry the current write stored: never its own victim
