# The compiled radix trie core. The node layout is described in radix.pxd.
#
# Safety rules every mutation below follows:
# * Allocate first, then mutate: a MemoryError leaves the trie as it was.
# * No Python code runs between the first and the last structural write of an operation,
#   and references are dropped (which may run a value's __del__, and with it anything,
#   including calls back into this trie or a switch to another thread) only once the
#   structure and the counters are consistent again. Under the GIL that makes every
#   public method atomic.
# * Every structural change bumps ``modcount``; iterators hold raw node pointers and check
#   it before touching them.
#
# Memory comes from PyMem_Malloc: CPython's small-object allocator serves the small nodes
# from pools, faster than the C allocator and without its per-chunk header, so a leaf costs
# its 16-byte header and its label, rounded up to 16 bytes. It needs the GIL, which every
# function here runs under.

from cpython.object cimport PyObject, PyTypeObject, inquiry, traverseproc, visitproc
from cpython.unicode cimport PyUnicode_AsEncodedString, PyUnicode_Check, PyUnicode_DecodeUTF8
from libc.stdint cimport uint8_t, uint16_t, uint32_t, UINT32_MAX
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.stdlib cimport free, realloc
from libc.string cimport memcpy, memmove, memcmp, memset

from collections.abc import Mapping, MutableMapping
from threading import get_ident
from types import GenericAlias

from radix cimport *

cdef extern from "radix_search.h" nogil:
    int radix_find_byte(const uchar *keys, int n, uchar b)
    bint radix_label_matches(const uchar *label, const uchar *key, uint32_t length)
    bint radix_long_label_matches(const uchar *label, const uchar *key, uint32_t length)
    size_t radix_common_length(const uchar *a, const uchar *b, size_t n)
    void radix_prefetch_node(const void *node)
    size_t radix_utf8_ucs1(const uint8_t *s, size_t length, uchar *out)
    size_t radix_utf8_ucs2(const uint16_t *s, size_t length, uchar *out)
    size_t radix_utf8_ucs4(const uint32_t *s, size_t length, uchar *out)

cdef extern from "Python.h":
    # Declared here without an exception clause: a NULL result is handled by hand so the
    # common case (no lone surrogates) costs no exception-state bookkeeping.
    const char *utf8_and_size "PyUnicode_AsUTF8AndSize"(object s, Py_ssize_t *size)
    bint PyErr_ExceptionMatches(object exc)
    void PyErr_Clear()
    void incref "Py_INCREF"(PyObject *o)
    void decref "Py_DECREF"(PyObject *o)
    char *PyBytes_AS_STRING(object b)
    bint PyBytes_CheckExact(object b)
    bint PyUnicode_CheckExact(object s)
    bint PyUnicode_IS_COMPACT_ASCII(object s)
    Py_ssize_t PyUnicode_GET_LENGTH(object s)
    void *PyUnicode_DATA(object s)
    Py_ssize_t PyBytes_GET_SIZE(object b)
    const Py_ssize_t PY_SSIZE_T_MAX
    bint PyUnicode_IS_COMPACT(object s)
    int PyUnicode_KIND(object s)

cdef extern from *:
    void prefetch_write "__builtin_prefetch"(const void *addr, int rw) nogil

# How many garbage nodes a write releases on its way out.
DEF RECLAIM_SLICE = 64

cdef object _MISSING = object()

# Heaviest weight put() accepts, so that sums of weights cannot overflow.
DEF MAX_WEIGHT = 1 << 48

# (id, thread) of the tries whose repr is being built, so a trie inside itself prints "...".
cdef set _repr_running = set()


# ---------------------------------------------------------------------------------------
# Keys

cdef inline object key_source(object key, str what):
    """``key`` itself, or for a key with lone surrogates its UTF-8 form as bytes.

    Lone surrogates are encoded as their 3-byte sequences ("surrogatepass"), which keeps
    byte order equal to code point order. Read the bytes with :func:`source_bytes`.
    """
    cdef Py_ssize_t n
    if not PyUnicode_Check(key):
        raise TypeError(f"{what} must be str, not {type(key).__name__}")
    if utf8_and_size(key, &n) == NULL:
        if not PyErr_ExceptionMatches(UnicodeEncodeError):
            PyErr_Clear()
            raise MemoryError()
        PyErr_Clear()
        key = PyUnicode_AsEncodedString(key, b"utf-8", b"surrogatepass")
        n = PyBytes_GET_SIZE(key)
    if <size_t>n > UINT32_MAX:
        raise ValueError(f"{what} longer than {UINT32_MAX} UTF-8 bytes")
    return key


cdef inline const uchar *ascii_bytes(object key, Py_ssize_t *n) noexcept:
    """The bytes of a plain ASCII ``str`` (its UTF-8 form is its storage), else NULL."""
    if PyUnicode_CheckExact(key) and PyUnicode_IS_COMPACT_ASCII(key):
        n[0] = PyUnicode_GET_LENGTH(key)
        if <size_t>n[0] <= UINT32_MAX:
            return <const uchar *>PyUnicode_DATA(key)
    return NULL


# Non-ASCII keys of up to this many characters are encoded on the stack by the lookups and
# the writes (stores, deletes, pops), instead of making CPython build (and keep, inside the
# str) its UTF-8 copy.
DEF SMALL_KEY_CHARS = 64


cdef inline const uchar *small_utf8(object key, uchar *buf, Py_ssize_t *n) noexcept:
    """The UTF-8 bytes (lone surrogates passed through) of a short compact ``str``, written
    into ``buf`` (4 * SMALL_KEY_CHARS bytes), else NULL."""
    cdef Py_ssize_t length
    cdef int kind
    cdef void *data
    if not (PyUnicode_CheckExact(key) and PyUnicode_IS_COMPACT(key)):
        return NULL
    length = PyUnicode_GET_LENGTH(key)
    if length > SMALL_KEY_CHARS:
        return NULL
    kind = PyUnicode_KIND(key)
    data = PyUnicode_DATA(key)
    if kind == 1:
        n[0] = <Py_ssize_t>radix_utf8_ucs1(<const uint8_t *>data, <size_t>length, buf)
    elif kind == 2:
        n[0] = <Py_ssize_t>radix_utf8_ucs2(<const uint16_t *>data, <size_t>length, buf)
    else:
        n[0] = <Py_ssize_t>radix_utf8_ucs4(<const uint32_t *>data, <size_t>length, buf)
    return buf


cdef inline const uchar *in_place_bytes(object key, uchar *buf, Py_ssize_t *n) noexcept:
    """The UTF-8 bytes of a plain ASCII ``str`` (its own storage) or of a short one (written
    into ``buf``, 4 * SMALL_KEY_CHARS bytes), else NULL: then use :func:`key_source`. Either
    way CPython is not asked for the str's UTF-8 form, which it would keep inside it."""
    cdef const uchar *k = ascii_bytes(key, n)
    if k == NULL:
        k = small_utf8(key, buf, n)
    return k


cdef inline const uchar *source_bytes(object source, Py_ssize_t *n) noexcept:
    """The bytes of what :func:`key_source` returned (cannot fail for those)."""
    if PyBytes_CheckExact(source):
        n[0] = PyBytes_GET_SIZE(source)
        return <const uchar *>PyBytes_AS_STRING(source)
    return <const uchar *>utf8_and_size(source, n)


cdef inline object key_str(const uchar *data, Py_ssize_t n):
    return PyUnicode_DecodeUTF8(<const char *>data, n, b"surrogatepass")


# ---------------------------------------------------------------------------------------
# Nodes

cdef inline size_t label_offset(int kind) noexcept:
    """Where the label of a node of ``kind`` starts when it always follows the struct (Bare
    leaves and Node4s, whatever its length), else 0 (inline up to INLINE_LABEL bytes)."""
    if kind == KIND_BARE:
        return BARE_HEADER
    if kind == KIND_N4:
        return sizeof(Node4)
    return 0


cdef inline uchar *label_of(Node *node) noexcept:
    cdef size_t offset = label_offset(node.kind)
    if offset:
        return (<uchar *>node) + offset
    if node.plen <= INLINE_LABEL:
        return &node.label.inl[0]
    return node.label.ptr


cdef inline size_t node_size(int kind) noexcept:
    """The struct of a node of ``kind`` (a Bare leaf's with its first 8 label bytes)."""
    if kind == KIND_LEAF:
        return sizeof(Node)
    if kind == KIND_BARE:
        return sizeof(Bare)
    if kind == KIND_N4:
        return sizeof(Node4)
    if kind == KIND_N16:
        return sizeof(Node16)
    if kind == KIND_N48:
        return sizeof(Node48)
    return sizeof(Node256)


cdef inline int capacity(int kind) noexcept:
    if kind == KIND_LEAF or kind == KIND_BARE:
        return 0
    if kind == KIND_N4:
        return 4
    if kind == KIND_N16:
        return 16
    if kind == KIND_N48:
        return 48
    return 256


cdef inline size_t tail_size(size_t plen) noexcept:
    """Bytes a node's allocation holds after its struct for a label of ``plen`` bytes."""
    return plen if plen > INLINE_LABEL else 0


cdef inline size_t body_size(int kind, size_t plen) noexcept:
    """Bytes of a node of ``kind`` with a label of ``plen`` bytes, its Link not counted."""
    if kind == KIND_BARE:
        return BARE_HEADER + (plen if plen > INLINE_LABEL else INLINE_LABEL)
    if kind == KIND_N4:
        return sizeof(Node4) + plen
    return node_size(kind) + tail_size(plen)


cdef inline void put_label(Node *node, size_t size, const uchar *src, size_t plen) noexcept:
    """Write the label ``src[:plen]`` into a node of struct size ``size`` whose allocation
    has ``body_size`` bytes; ``src`` must not overlap the node."""
    cdef size_t offset = label_offset(node.kind)
    if offset:
        memcpy((<uchar *>node) + offset, src, plen)
    elif plen > INLINE_LABEL:
        node.label.ptr = (<uchar *>node) + size
        memcpy(node.label.ptr, src, plen)
    elif plen:
        memcpy(node.label.inl, src, plen)
    node.plen = <uint32_t>plen


cdef inline size_t link_size(uint8_t flags) noexcept:
    """Bytes allocated before the header of a node with these flags (see radix.pxd)."""
    if not (flags & F_LINKED):
        return 0
    if flags & F_SHORT:
        return sizeof(QLink)
    if flags & F_WEIGHED:
        return sizeof(Link) + sizeof(Py_ssize_t)
    return sizeof(Link)


cdef inline QLink *qlink(Node *node) noexcept:
    """The queue neighbours of a linked node."""
    return (<QLink *>node) - 1


cdef inline Node *parent_of(Node *node) noexcept:
    """The parent of a linked node (NULL for the root and a detached top)."""
    if node.flags & F_SHORT:
        return <Node *>node.count
    return ((<Link *>node) - 1).parent


cdef inline void set_parent(Node *node, Node *parent) noexcept:
    if node.flags & F_SHORT:
        node.count = <Py_ssize_t>parent
    else:
        ((<Link *>node) - 1).parent = parent


cdef inline Py_ssize_t *weight_of(Node *node) noexcept:
    """The subtree weight of an ``F_WEIGHED`` node."""
    return (<Py_ssize_t *>((<Link *>node) - 1)) - 1


cdef inline Py_ssize_t count_of(Node *node) noexcept:
    """Values in a node's subtree: a live F_SHORT leaf's count field holds its parent, a
    Bare leaf has none."""
    if node.flags & F_SHORT or node.kind == KIND_BARE:
        return node.value != NULL
    return node.count


cdef inline bint has_count(Node *node) noexcept:
    """Whether ``node.count`` is a live node's count (not its parent, not label bytes)."""
    return not (node.flags & F_SHORT) and node.kind != KIND_BARE


cdef inline Node *new_node(int kind, const uchar *label, size_t plen, uint8_t layout) noexcept:
    """A node of ``kind`` with no value and no children, or NULL when out of memory.

    ``layout``: the F_LINKED, F_SHORT and F_WEIGHED flags of the node; a zeroed Link of
    that layout is allocated before the header (nodes of a linked trie).
    """
    cdef size_t size = node_size(kind)
    cdef size_t extra = link_size(layout)
    cdef char *block
    cdef Node *node
    if plen > UINT32_MAX:
        return NULL
    block = <char *>PyMem_Malloc(extra + body_size(kind, plen))
    if block == NULL:
        return NULL
    if extra:
        memset(block, 0, extra)
    node = <Node *>(block + extra)
    memset(node, 0, size)  # a constant size where inlined with a constant kind: no call
    node.kind = kind
    node.flags = layout
    put_label(node, size, label, plen)
    return node


cdef inline void free_block(Node *node) noexcept:
    """Free the allocation of one node (its Link and its label included)."""
    PyMem_Free((<char *>node) - link_size(node.flags))


cdef inline void free_node(Node *node) noexcept:
    """Free one node's memory (its label lives in it); its value and children are the
    caller's business."""
    free_block(node)


# ---------------------------------------------------------------------------------------
# The eviction queue of a bounded trie (SIEVE). Value-holding nodes are threaded through
# their Links in insertion order. These functions keep the queue consistent when nodes
# join, leave or move; the policy itself is RadixTrie._make_room.

cdef inline void q_push(Queue *q, Node *node) noexcept:
    """Append a node that just got a value at the newest end, unvisited."""
    cdef QLink *link = qlink(node)
    link.older = q.newest
    link.newer = NULL
    if q.newest != NULL:
        qlink(q.newest).newer = node
    else:
        q.oldest = node
    q.newest = node
    node.flags = (node.flags | F_QUEUED) & ~F_VISITED


cdef inline void q_unlink(Queue *q, Node *node) noexcept:
    """Take a node out of the queue (no-op if it is not in it); the hand moves on."""
    cdef QLink *link
    if not (node.flags & F_QUEUED):
        return
    link = qlink(node)
    if q.hand == node:
        q.hand = link.newer
    if q.keep == node:
        q.keep = NULL
    if link.older != NULL:
        qlink(link.older).newer = link.newer
    else:
        q.oldest = link.newer
    if link.newer != NULL:
        qlink(link.newer).older = link.older
    else:
        q.newest = link.older
    link.older = link.newer = NULL
    node.flags &= ~(F_QUEUED | F_VISITED)


cdef inline void q_moved(Queue *q, Node *old, Node *fresh) noexcept:
    """A linked node was reallocated at ``fresh``: repoint its queue neighbours."""
    cdef QLink *link = qlink(fresh)
    if fresh.flags & F_QUEUED:
        if link.older != NULL:
            qlink(link.older).newer = fresh
        else:
            q.oldest = fresh
        if link.newer != NULL:
            qlink(link.newer).older = fresh
        else:
            q.newest = fresh
    if q.hand == old:
        q.hand = fresh
    if q.keep == old:
        q.keep = fresh


cdef inline bint sorted_arrays(Node *node, uchar **keys, Node ***kids) noexcept:
    """For a Node4 or Node16 (same layout, different size): its key and child arrays."""
    if node.kind == KIND_N4:
        keys[0] = (<Node4 *>node).keys
        kids[0] = (<Node4 *>node).kids
        return True
    if node.kind == KIND_N16:
        keys[0] = (<Node16 *>node).keys
        kids[0] = (<Node16 *>node).kids
        return True
    return False


cdef inline Node **find_child(Node *node, uchar b) noexcept:
    cdef int i
    cdef uchar *keys
    cdef Node **kids
    cdef Node48 *n48
    cdef Node256 *n256
    if sorted_arrays(node, &keys, &kids):
        i = radix_find_byte(keys, node.nkids, b)
        return &kids[i] if i >= 0 else NULL
    if node.kind == KIND_N48:
        n48 = <Node48 *>node
        i = n48.index[b]
        return &n48.kids[i - 1] if i else NULL
    if node.kind == KIND_N256:
        n256 = <Node256 *>node
        return &n256.kids[b] if n256.kids[b] != NULL else NULL
    return NULL


cdef Node *child_after(Node *node, int pos, int *next_pos, uchar *byte) noexcept:
    """The first child in byte order at position >= ``pos``, or NULL.

    Positions are array indexes for Node4/Node16 and byte values for Node48/Node256;
    *next_pos receives the position to resume from.
    """
    cdef int slot
    cdef uchar *keys
    cdef Node **kids
    cdef Node48 *n48
    cdef Node256 *n256
    if sorted_arrays(node, &keys, &kids):
        if pos < node.nkids:
            next_pos[0] = pos + 1
            byte[0] = keys[pos]
            return kids[pos]
        return NULL
    if node.kind == KIND_N48:
        n48 = <Node48 *>node
        while pos < 256:
            slot = n48.index[pos]
            if slot:
                next_pos[0] = pos + 1
                byte[0] = <uchar>pos
                return n48.kids[slot - 1]
            pos += 1
        return NULL
    if node.kind == KIND_N256:
        n256 = <Node256 *>node
        while pos < 256:
            if n256.kids[pos] != NULL:
                next_pos[0] = pos + 1
                byte[0] = <uchar>pos
                return n256.kids[pos]
            pos += 1
        return NULL
    return NULL


cdef inline Node *last_child(Node *node, uchar *byte) noexcept:
    """The child with the greatest byte, or NULL."""
    cdef int b
    cdef uchar *keys
    cdef Node **kids
    cdef Node48 *n48
    cdef Node256 *n256
    if node.nkids == 0:
        return NULL
    if sorted_arrays(node, &keys, &kids):
        byte[0] = keys[node.nkids - 1]
        return kids[node.nkids - 1]
    b = 255
    if node.kind == KIND_N48:
        n48 = <Node48 *>node
        while n48.index[b] == 0:
            b -= 1
        byte[0] = <uchar>b
        return n48.kids[n48.index[b] - 1]
    n256 = <Node256 *>node
    while n256.kids[b] == NULL:
        b -= 1
    byte[0] = <uchar>b
    return n256.kids[b]


cdef Node *rebuild(Node *node, int kind, const uchar *label, size_t plen,
                   Queue *q) noexcept:
    """A copy of ``node`` with the children storage of ``kind`` and the label
    ``label[:plen]`` (which may lie in ``node``); NULL when out of memory.

    The value, count and Link move over as they are; the old node is freed, and the
    children's parent and the queue's pointers follow the move. An F_SHORT leaf that grows
    children gets a Link with a parent field (and its count back); a value-holding node of a
    trie without max_weight that loses its last child becomes an F_SHORT leaf, unless it is
    the root (the caller has already set its count to 1).
    """
    cdef uint8_t flags = node.flags
    cdef size_t extra
    cdef size_t size = node_size(kind)
    cdef char *block
    cdef Node *fresh
    cdef Node *child
    cdef int pos = 0, i = 0, next_pos
    cdef uchar b
    cdef uchar *keys
    cdef Node **kids
    cdef bint is_sorted
    cdef Node48 *s48
    cdef Node256 *s256
    if plen > UINT32_MAX:
        return NULL
    if kind != KIND_LEAF:
        flags &= ~F_SHORT
    elif ((flags & (F_LINKED | F_WEIGHED | F_SHORT)) == F_LINKED and node.value != NULL
            and parent_of(node) != NULL):
        flags |= F_SHORT
    extra = link_size(flags)
    block = <char *>PyMem_Malloc(extra + body_size(kind, plen))
    if block == NULL:
        return NULL
    fresh = <Node *>(block + extra)
    memset(fresh, 0, size)
    if node.kind == KIND_BARE or kind == KIND_BARE:
        # The fields up to value are common; a Bare leaf's count is implied (its value).
        memcpy(fresh, node, BARE_HEADER)
        if kind != KIND_BARE:
            fresh.count = count_of(node)
    else:
        memcpy(fresh, node, sizeof(Head))  # the label is put below
    fresh.kind = kind
    fresh.flags = flags
    if flags != node.flags:
        # The parent moves between the count field and the Link.
        qlink(fresh)[0] = qlink(node)[0]
        if flags & F_SHORT:
            fresh.count = <Py_ssize_t>parent_of(node)
        else:
            ((<Link *>fresh) - 1).parent = <Node *>node.count
            fresh.count = count_of(node)
    elif extra:
        memcpy(block, (<char *>node) - extra, extra)
    put_label(fresh, size, label, plen)
    is_sorted = sorted_arrays(fresh, &keys, &kids)
    while True:
        child = child_after(node, pos, &next_pos, &b)
        if child == NULL:
            break
        pos = next_pos
        if is_sorted:
            keys[i] = b
            kids[i] = child
        elif kind == KIND_N48:
            s48 = <Node48 *>fresh
            s48.kids[i] = child
            s48.index[b] = <uchar>(i + 1)
        else:
            s256 = <Node256 *>fresh
            s256.kids[b] = child
        if extra:
            set_parent(child, fresh)
        i += 1
    free_block(node)
    if extra:
        q_moved(q, node, fresh)
    return fresh


cdef inline Node *reshape(Node *node, int kind, Queue *q) noexcept:
    """``node`` with the children storage of ``kind`` (see rebuild); NULL when out of
    memory."""
    return rebuild(node, kind, label_of(node), node.plen, q)


cdef inline void insert_sorted(uchar *keys, Node **kids, int n, uchar b, Node *child) noexcept:
    cdef int i = n
    while i > 0 and keys[i - 1] > b:
        keys[i] = keys[i - 1]
        kids[i] = kids[i - 1]
        i -= 1
    keys[i] = b
    kids[i] = child


cdef int add_child(Node **slot, uchar b, Node *child, Queue *q) noexcept:
    """Hang ``child`` under byte ``b`` of ``slot[0]``, growing the node if it is full.

    -1 when out of memory, with nothing changed. ``b`` must be free.
    """
    cdef Node *node = slot[0]
    cdef Node48 *n48
    cdef uchar *keys
    cdef Node **kids
    cdef int i, kind = node.kind
    if node.nkids >= capacity(kind):
        kind = KIND_N4 if kind == KIND_LEAF or kind == KIND_BARE else kind + 1
        node = reshape(node, kind, q)
        if node == NULL:
            return -1
        slot[0] = node
    if sorted_arrays(node, &keys, &kids):
        insert_sorted(keys, kids, node.nkids, b, child)
    elif kind == KIND_N48:
        n48 = <Node48 *>node
        i = 0
        while n48.kids[i] != NULL:
            i += 1
        n48.kids[i] = child
        n48.index[b] = <uchar>(i + 1)
    else:
        (<Node256 *>node).kids[b] = child
    node.nkids += 1
    if node.flags & F_LINKED:
        set_parent(child, node)
    return 0


cdef inline void remove_sorted(uchar *keys, Node **kids, int n, uchar b) noexcept:
    cdef int i = 0
    while keys[i] != b:
        i += 1
    memmove(&keys[i], &keys[i + 1], <size_t>(n - i - 1))
    memmove(&kids[i], &kids[i + 1], <size_t>(n - i - 1) * sizeof(Node *))


cdef inline int shrunk_kind(int kind, int nkids) noexcept:
    """The kind a node of ``kind`` left with ``nkids`` children shrinks to, or -1."""
    # Shrink with some slack so that add/remove at a boundary doesn't reshape each time.
    if kind == KIND_N4 and nkids == 0:
        return KIND_LEAF
    if kind == KIND_N16 and nkids <= 3:
        return KIND_N4
    if kind == KIND_N48 and nkids <= 12:
        return KIND_N16
    if kind == KIND_N256 and nkids <= 40:
        return KIND_N48
    return -1


cdef void remove_child(Node **slot, uchar b, Queue *q) noexcept:
    """Unhang the child under byte ``b`` of ``slot[0]`` and shrink the node when sparse.

    Never fails: if a smaller node cannot be allocated the node keeps its shape.
    """
    cdef Node *node = slot[0]
    cdef Node *smaller
    cdef Node48 *n48
    cdef uchar *keys
    cdef Node **kids
    cdef int kind = node.kind, shrink_to
    if sorted_arrays(node, &keys, &kids):
        remove_sorted(keys, kids, node.nkids, b)
    elif kind == KIND_N48:
        n48 = <Node48 *>node
        n48.kids[n48.index[b] - 1] = NULL
        n48.index[b] = 0
    else:
        (<Node256 *>node).kids[b] = NULL
    node.nkids -= 1
    shrink_to = shrunk_kind(kind, node.nkids)
    if shrink_to >= 0:
        smaller = reshape(node, shrink_to, q)
        if smaller != NULL:
            slot[0] = smaller


# Labels of merged nodes up to this many bytes are assembled on the stack.
DEF MERGE_STACK_LABEL = 256


cdef void merge_with_child(Node **slot, Queue *q) noexcept:
    """Fold a valueless node with one child into that child (path compression).

    A child whose new label is longer than INLINE_LABEL, and a Node4 child, is rebuilt with
    it. Skipped when out of memory: the unmerged node is still a valid trie.
    """
    cdef Node *node = slot[0]
    cdef Node *child
    cdef Node *fresh
    cdef int next_pos
    cdef uchar b
    cdef size_t total
    cdef uchar *buf
    cdef uchar stack_buf[MERGE_STACK_LABEL]
    child = child_after(node, 0, &next_pos, &b)
    total = <size_t>node.plen + 1 + child.plen
    if total > UINT32_MAX:
        return
    if total <= INLINE_LABEL and child.kind != KIND_N4:
        # The result fits where the child's label is (inline, or a Bare leaf's 8 bytes):
        # the child keeps its block. A Node4's block has no room beyond its label.
        memcpy(stack_buf, label_of(node), node.plen)
        stack_buf[node.plen] = b
        memcpy(stack_buf + node.plen + 1, label_of(child), child.plen)
        memcpy(label_of(child), stack_buf, total)  # inline, or a Bare leaf's 8 bytes
        child.plen = <uint32_t>total
        if child.flags & F_LINKED:
            set_parent(child, parent_of(node))
        slot[0] = child
        free_node(node)
        return
    buf = stack_buf
    if total > MERGE_STACK_LABEL:
        buf = <uchar *>PyMem_Malloc(total)
        if buf == NULL:
            return
    memcpy(buf, label_of(node), node.plen)
    buf[node.plen] = b
    memcpy(buf + node.plen + 1, label_of(child), child.plen)
    fresh = rebuild(child, child.kind, buf, total, q)
    if buf != stack_buf:
        PyMem_Free(buf)
    if fresh == NULL:
        return
    if fresh.flags & F_LINKED:
        set_parent(fresh, parent_of(node))
    slot[0] = fresh
    free_node(node)


cdef void cut_label_front(Node *node, size_t cut) noexcept:
    """Drop the first ``cut`` bytes of a node's label (never allocates; a long label's
    bytes stay in the node's allocation)."""
    cdef size_t old = node.plen, rest = node.plen - cut
    cdef uchar *tail
    if label_offset(node.kind):
        tail = label_of(node)
        memmove(tail, tail + cut, rest)
    elif old > INLINE_LABEL:
        tail = node.label.ptr
        if rest > INLINE_LABEL:
            memmove(tail, tail + cut, rest)
        else:
            memcpy(node.label.inl, tail + cut, rest)
    else:
        memmove(node.label.inl, node.label.inl + cut, rest)
    node.plen = <uint32_t>rest


cdef inline size_t common_length(const uchar *a, const uchar *b, size_t n) noexcept:
    return radix_common_length(a, b, n)


cdef inline bint label_matches(const uchar *label, const uchar *k, uint32_t plen,
                               Py_ssize_t rest) noexcept:
    """Whether the ``plen``-byte ``label`` of a node (from :func:`label_of`: 8 bytes are
    readable there) equals ``k[:plen]``; ``rest >= plen`` bytes are readable at ``k``."""
    if plen > 32:
        # memcmp compares 32 bytes a step where the CPU can: it wins on long runs.
        return memcmp(label, k, plen) == 0
    if plen > INLINE_LABEL:
        return radix_long_label_matches(label, k, plen)
    if rest >= 8:
        return radix_label_matches(label, k, plen)
    return memcmp(label, k, plen) == 0


cdef inline Node *find_exact(Node *node, const uchar *key, Py_ssize_t n) noexcept:
    """The node where ``key`` ends, or NULL; the caller checks its value."""
    cdef Py_ssize_t i = 0
    cdef uint32_t plen
    cdef Node **slot
    while True:
        plen = node.plen
        if plen:
            if n - i < plen or not label_matches(label_of(node), key + i, plen, n - i):
                return NULL
            i += plen
        if i == n:
            return node
        slot = find_child(node, key[i])
        if slot == NULL:
            return NULL
        node = slot[0]
        radix_prefetch_node(node)
        i += 1


cdef Node *find_prefix(Node *node, const uchar *prefix, Py_ssize_t n) noexcept:
    """The highest node whose keys all start with ``prefix``, or NULL: :meth:`_walk`
    without the path, for readers."""
    cdef Py_ssize_t i = 0, rest
    cdef uint32_t plen
    cdef Node **slot
    while True:
        plen = node.plen
        if plen:
            rest = n - i
            if rest <= plen:
                return node if memcmp(label_of(node), prefix + i, <size_t>rest) == 0 else NULL
            if not label_matches(label_of(node), prefix + i, plen, rest):
                return NULL
            i += plen
        if i == n:
            return node
        slot = find_child(node, prefix[i])
        if slot == NULL:
            return NULL
        node = slot[0]
        radix_prefetch_node(node)
        i += 1


cdef inline Node **kid_array(Node *node, int *length) noexcept:
    """The children array of a node and its length; entries may be NULL in Node48/256."""
    cdef uchar *keys
    cdef Node **kids
    if sorted_arrays(node, &keys, &kids):
        length[0] = node.nkids
        return kids
    if node.kind == KIND_N48:
        length[0] = 48
        return (<Node48 *>node).kids
    if node.kind == KIND_N256:
        length[0] = 256
        return (<Node256 *>node).kids
    length[0] = 0
    return NULL


cdef Node *clone_node(Node *src) noexcept:
    """A copy of one node, children pointers included, holding its own value reference."""
    cdef size_t size = node_size(src.kind)
    cdef Node *node = <Node *>PyMem_Malloc(body_size(src.kind, src.plen))
    if node == NULL:
        return NULL
    memcpy(node, src, size)
    put_label(node, size, label_of(src), src.plen)
    if node.value != NULL:
        incref(node.value)
    return node


cdef void free_tree(Node *top) noexcept:
    """Free a tree (NULL children allowed) and release its values. Not re-entrant."""
    cdef Node *todo = top
    cdef Node *node
    cdef Node **kids
    cdef PyObject *value
    cdef int length, i
    top.count = 0
    while todo != NULL:
        node = todo
        todo = <Node *>node.count
        kids = kid_array(node, &length)
        for i in range(length):
            if kids[i] != NULL:
                kids[i].count = <Py_ssize_t>todo
                todo = kids[i]
        value = node.value
        free_node(node)
        if value != NULL:
            decref(value)


cdef Node *clone_tree(Node *src) except NULL:
    """A deep copy of a tree, made without running any Python code (atomic under the GIL)."""
    cdef Node *top = clone_node(src)
    cdef Node *node
    cdef Node *copy
    cdef Node **kids
    cdef Node **stack = NULL
    cdef void *grown
    cdef Py_ssize_t depth = 0, cap = 0, j
    cdef int length, i, k
    if top == NULL:
        raise MemoryError()
    node = top
    while True:
        # Replace node's children (still the source's) by copies, and queue the copies.
        kids = kid_array(node, &length)
        for i in range(length):
            if kids[i] == NULL:
                continue
            if depth == cap:
                cap = cap * 2 if cap else 64
                grown = PyMem_Realloc(stack, <size_t>cap * sizeof(Node *))
                copy = NULL if grown == NULL else clone_node(kids[i])
                if grown != NULL:
                    stack = <Node **>grown
            else:
                copy = clone_node(kids[i])
            if copy == NULL:
                # Cut every pointer that still leads into the source, then drop the copy.
                for k in range(i, length):
                    kids[k] = NULL
                for j in range(depth):
                    kids = kid_array(stack[j], &length)
                    memset(kids, 0, <size_t>length * sizeof(Node *))
                PyMem_Free(stack)
                free_tree(top)
                raise MemoryError()
            kids[i] = copy
            stack[depth] = copy
            depth += 1
        if depth == 0:
            break
        depth -= 1
        node = stack[depth]
    PyMem_Free(stack)
    return top


# What a lookup returns for a key that holds no value: a node with no value, so that NULL
# is left to mean an exception (no PyErr_Occurred() call on every miss).
cdef Node _absent


cdef Node *lookup_slow(Node *root, object key) except NULL:
    """:func:`lookup` for a key that is not a compact ASCII ``str``."""
    cdef Py_ssize_t n
    cdef object source
    cdef uchar buf[4 * SMALL_KEY_CHARS]
    cdef Node *node
    cdef const uchar *k = small_utf8(key, buf, &n)
    if k == NULL:
        source = key_source(key, "keys")
        k = source_bytes(source, &n)
    node = find_exact(root, k, n)
    return &_absent if node == NULL else node


cdef inline Node *lookup(Node *root, object key) except NULL:
    """The node where ``key`` ends, or a node with no value (``_absent``) when no key ends
    there; its ``value`` says whether ``key`` is stored. TypeError for a non-str key."""
    cdef Py_ssize_t n
    cdef Node *node
    cdef const uchar *k = ascii_bytes(key, &n)
    if k == NULL:
        return lookup_slow(root, key)
    node = find_exact(root, k, n)
    return &_absent if node == NULL else node


cdef Py_ssize_t own_weight(Node *node) noexcept:
    """The weight of a linked node's own value: its subtree's less its children's (1 in a
    trie without max_weight)."""
    cdef int length, i
    cdef Node **kids
    cdef Py_ssize_t weight
    if not (node.flags & F_WEIGHED):
        return 1
    kids = kid_array(node, &length)
    weight = weight_of(node)[0]
    for i in range(length):
        if kids[i] != NULL:
            weight -= weight_of(kids[i])[0]
    return weight


cdef uchar byte_of(Node *parent, Node *child) noexcept:
    """The byte under which ``child`` hangs from ``parent``."""
    cdef int pos = 0, next_pos
    cdef uchar b = 0
    cdef Node *kid
    while True:
        kid = child_after(parent, pos, &next_pos, &b)
        if kid == NULL or kid == child:
            return b
        pos = next_pos


cdef Node **slot_of(Node *parent, Node *child, uchar *byte) noexcept:
    """The slot of ``parent`` that holds ``child``, and its byte in *byte."""
    cdef int i
    cdef uchar *keys
    cdef Node **kids
    cdef Node48 *n48
    cdef Node256 *n256
    if sorted_arrays(parent, &keys, &kids):
        for i in range(parent.nkids):
            if kids[i] == child:
                byte[0] = keys[i]
                return &kids[i]
        return NULL
    if parent.kind == KIND_N48:
        n48 = <Node48 *>parent
        for i in range(256):
            if n48.index[i] and n48.kids[n48.index[i] - 1] == child:
                byte[0] = <uchar>i
                return &n48.kids[n48.index[i] - 1]
        return NULL
    n256 = <Node256 *>parent
    for i in range(256):
        if n256.kids[i] == child:
            byte[0] = <uchar>i
            return &n256.kids[i]
    return NULL


cdef Py_ssize_t check_limit(object value, str name) except -2:
    """``PY_SSIZE_T_MAX`` for None, else ``value`` checked to be a positive int."""
    if value is None:
        return PY_SSIZE_T_MAX
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive int or None, not {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, not {value!r}")
    return min(value, PY_SSIZE_T_MAX)


cdef Py_ssize_t check_weight(object weight) except -1:
    if isinstance(weight, bool) or not isinstance(weight, int):
        raise TypeError(f"weight must be an int, not {type(weight).__name__}")
    if weight < 0 or weight > MAX_WEIGHT:
        raise ValueError(f"weight must be between 0 and 2**48, not {weight!r}")
    return weight


def _restore(cls, max_entries, max_weight, expired):
    """An empty trie of ``cls`` with these bounds; unpickling then calls __setstate__."""
    return cls.__new__(cls, max_entries=max_entries, max_weight=max_weight, expired=expired)


# ---------------------------------------------------------------------------------------
# The trie

cdef class RadixTrie:
    """A mutable mapping from ``str`` to any object, ordered by code point.

    ``invalidate_prefix(p)`` removes every key that starts with ``p`` in O(len(p)): the
    subtree is detached at once and its memory and references are released later, a
    bounded slice at each write, or all at once by :meth:`reclaim`.

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

    cdef Node *root              # never NULL; its label is always empty
    cdef Node *garbage           # head of the list of detached subtrees awaiting release
    cdef Py_ssize_t pending      # values held by nodes on the garbage list
    cdef size_t modcount         # bumped on every structural change; iterators compare it
    cdef Node ***path            # scratch: slots walked by the current mutation
    cdef uchar *path_bytes       # scratch: path_bytes[d] is the byte above path[d]'s node
    cdef Py_ssize_t path_cap     # entries allocated in path and path_bytes
    cdef object gc_anchor        # unused; an object field makes Cython give the type GC
                                 # support, whose traverse/clear slots are replaced below
    # The bound (see _make_room). ``linked`` is true when either limit or ``expired`` is set:
    # then every node has a Link and value-holding nodes sit in ``queue``.
    cdef bint linked
    cdef bint expiry_only          # linked for ``expired`` alone: the queue stays in store
                                   # order and each write trims its oldest end (_expire_oldest)
    cdef bint weighed              # max_weight set: Links hold subtree weights
    cdef uint8_t layout            # flags of a new node (see new_node); 0 when not linked
    cdef uint8_t leaf_layout       # flags of a new leaf
    cdef Py_ssize_t limit_entries  # PY_SSIZE_T_MAX when unbounded
    cdef Py_ssize_t limit_weight   # PY_SSIZE_T_MAX when unbounded
    cdef object expired_fn         # None, or value -> bool, asked by the hand
    cdef Queue queue
    cdef Py_ssize_t n_evictions    # entries the hand removed to make room
    cdef Py_ssize_t n_expirations  # entries the hand removed because expired_fn said so
    cdef Py_ssize_t dead           # queued entries in detached subtrees: while 0, the hand
                                   # needs no walk up to tell a live node from a dead one
    cdef uchar *keybuf             # scratch: the key of the node being evicted or copied
    cdef Py_ssize_t keycap

    def __cinit__(self, *args, max_entries=None, max_weight=None, expired=None, **kwargs):
        self.root = NULL
        self.keybuf = NULL
        self.path = NULL
        self.path_bytes = NULL
        self.path_cap = 0
        self.limit_entries = check_limit(max_entries, "max_entries")
        self.limit_weight = check_limit(max_weight, "max_weight")
        if expired is not None and not callable(expired):
            raise TypeError(f"expired must be callable or None, not {type(expired).__name__}")
        self.expired_fn = expired
        self.linked = (max_entries is not None or max_weight is not None
                       or expired is not None)
        self.expiry_only = max_entries is None and max_weight is None and expired is not None
        self.weighed = max_weight is not None
        self.layout = 0
        if self.linked:
            self.layout = F_LINKED | F_WEIGHED if self.weighed else F_LINKED
        self.leaf_layout = self.layout | F_SHORT if self.layout == F_LINKED else self.layout
        self.root = new_node(KIND_LEAF, NULL, 0, self.layout)
        if self.root == NULL:
            raise MemoryError()
        self.garbage = NULL
        self.pending = 0
        self.modcount = 0
        self._grow_path(64)

    def __init__(self, other=(), /, *, max_entries=None, max_weight=None, expired=None):
        self.update(other)

    def __dealloc__(self):
        cdef Node *node = self.root
        if node != NULL:
            self.root = NULL
            node.count = <Py_ssize_t>self.garbage
            self.garbage = node
        self._reclaim(-1)
        PyMem_Free(self.path)
        PyMem_Free(self.path_bytes)
        PyMem_Free(self.keybuf)

    # -- scratch path ------------------------------------------------------------------

    cdef int _grow_path(self, Py_ssize_t depth) except -1:
        cdef Py_ssize_t cap = self.path_cap
        cdef Node ***path
        cdef uchar *path_bytes
        if depth < cap:
            return 0
        while cap <= depth:
            cap = cap * 2 if cap else 64
        path = <Node ***>PyMem_Realloc(self.path, <size_t>cap * sizeof(Node **))
        if path == NULL:
            raise MemoryError()
        self.path = path
        path_bytes = <uchar *>PyMem_Realloc(self.path_bytes, <size_t>cap)
        if path_bytes == NULL:
            raise MemoryError()
        self.path_bytes = path_bytes
        self.path_cap = cap
        return 0

    # -- mutations ---------------------------------------------------------------------

    cdef int _set(self, const uchar *key, Py_ssize_t n, object value,
                  Py_ssize_t weight) except -1:
        """Store ``value`` under ``key``; 1 when the key is new, 0 when replaced.

        In a linked trie the entry weighs ``weight``, and ``queue.keep`` names its node: a
        new key joins the queue's newest end, a replaced one keeps its place and counts as
        visited (``expiry_only``: moves to the newest end). The caller then restores the
        bound (``_make_room``).
        """
        cdef Node **slot = &self.root
        cdef Node **child_slot
        cdef Node *node
        cdef Node *leaf
        cdef PyObject *old
        cdef Py_ssize_t i = 0, depth = 0, j, m, delta
        cdef uint32_t plen
        if self.linked:
            self._settle_hand()
        while True:
            node = slot[0]
            if depth + 1 >= self.path_cap:
                self._grow_path(depth + 1)
            self.path[depth] = slot
            depth += 1
            plen = node.plen
            if plen:
                m = <Py_ssize_t>common_length(label_of(node), key + i,
                                              <size_t>min(<Py_ssize_t>plen, n - i))
                if m < plen:
                    return self._split(slot, depth, m, key, i, n, value, weight)
                i += plen
            if i == n:
                old = node.value
                incref(<PyObject *>value)
                node.value = <PyObject *>value
                if old != NULL:
                    if self.linked:
                        if self.weighed:
                            delta = weight - own_weight(node)
                            for j in range(depth):
                                weight_of(self.path[j][0])[0] += delta
                        if self.expiry_only:
                            q_unlink(&self.queue, node)  # the queue stays in store order
                            q_push(&self.queue, node)
                        else:
                            node.flags |= F_VISITED
                        self.queue.keep = node
                    decref(old)  # the structure did not change; last step
                    return 0
                for j in range(depth):
                    self.path[j][0].count += 1
                if self.linked:
                    if self.weighed:
                        for j in range(depth):
                            weight_of(self.path[j][0])[0] += weight
                    q_push(&self.queue, node)
                    self.queue.keep = node
                self.modcount += 1
                return 1
            child_slot = find_child(node, key[i])
            if child_slot == NULL:
                if node.flags & F_QUEUED and node.nkids == capacity(node.kind):
                    # The node moves (reshape): its queue neighbours, anywhere in memory,
                    # are written then. Start fetching them while the leaf is made.
                    if qlink(node).older != NULL:
                        prefetch_write(qlink(qlink(node).older), 1)
                    if qlink(node).newer != NULL:
                        prefetch_write(qlink(qlink(node).newer), 1)
                # A constant kind in each branch: new_node inlines with a constant-size memset.
                if self.linked:
                    leaf = new_node(KIND_LEAF, key + i + 1, <size_t>(n - i - 1),
                                    self.leaf_layout)
                else:
                    leaf = new_node(KIND_BARE, key + i + 1, <size_t>(n - i - 1), 0)
                if leaf == NULL:
                    raise MemoryError()
                if self.linked:
                    leaf.count = 1  # an F_SHORT leaf's count becomes its parent in add_child
                if add_child(slot, key[i], leaf, &self.queue) < 0:
                    free_node(leaf)
                    raise MemoryError()
                incref(<PyObject *>value)
                leaf.value = <PyObject *>value
                for j in range(depth):
                    self.path[j][0].count += 1
                if self.linked:
                    if self.weighed:
                        weight_of(leaf)[0] = weight
                        for j in range(depth):
                            weight_of(self.path[j][0])[0] += weight
                    q_push(&self.queue, leaf)
                    self.queue.keep = leaf
                self.modcount += 1
                return 1
            slot = child_slot
            radix_prefetch_node(slot[0])
            i += 1

    cdef int _split(self, Node **slot, Py_ssize_t depth, Py_ssize_t m,
                    const uchar *key, Py_ssize_t i, Py_ssize_t n, object value,
                    Py_ssize_t weight) except -1:
        """Insert ``key`` where it parts from the label of ``slot[0]`` after ``m`` bytes."""
        cdef Node *node = slot[0]
        cdef Node *fork
        cdef Node *leaf = NULL
        cdef Node *parent = NULL
        cdef uchar *label = label_of(node)
        cdef uchar node_byte = label[m], leaf_byte
        cdef Node4 *f4
        cdef Py_ssize_t j
        fork = new_node(KIND_N4, label, <size_t>m, self.layout)
        if fork == NULL:
            raise MemoryError()
        if i + m < n:
            if self.linked:
                leaf = new_node(KIND_LEAF, key + i + m + 1, <size_t>(n - i - m - 1),
                                self.leaf_layout)
            else:
                leaf = new_node(KIND_BARE, key + i + m + 1, <size_t>(n - i - m - 1), 0)
            if leaf == NULL:
                free_node(fork)
                raise MemoryError()
            if self.linked:
                leaf.count = 1  # an F_SHORT leaf's count becomes its parent below
        # Nothing below can fail.
        if self.linked:
            parent = parent_of(node)
        fork.count = count_of(node) + 1
        cut_label_front(node, <size_t>m + 1)
        # The fork's children are written directly, in byte order (the two bytes differ:
        # the key parts from the label there).
        f4 = <Node4 *>fork
        incref(<PyObject *>value)
        if leaf != NULL:
            leaf_byte = key[i + m]
            j = leaf_byte > node_byte
            f4.keys[j] = leaf_byte
            f4.kids[j] = leaf
            f4.keys[1 - j] = node_byte
            f4.kids[1 - j] = node
            fork.nkids = 2
            leaf.value = <PyObject *>value
        else:
            f4.keys[0] = node_byte
            f4.kids[0] = node
            fork.nkids = 1
            fork.value = <PyObject *>value
        if self.linked:
            set_parent(node, fork)
            if leaf != NULL:
                set_parent(leaf, fork)
        slot[0] = fork
        for j in range(depth - 1):
            self.path[j][0].count += 1
        if self.linked:
            set_parent(fork, parent)
            if self.weighed:
                weight_of(fork)[0] = weight_of(node)[0] + weight
                for j in range(depth - 1):
                    weight_of(self.path[j][0])[0] += weight
                if leaf != NULL:
                    weight_of(leaf)[0] = weight
            if leaf != NULL:
                q_push(&self.queue, leaf)
                self.queue.keep = leaf
            else:
                q_push(&self.queue, fork)
                self.queue.keep = fork
        self.modcount += 1
        return 1

    cdef int _remove(self, const uchar *key, Py_ssize_t n, PyObject **out) except -1:
        """Unlink ``key``; 1 and its value's reference in *out, or 0 when absent."""
        cdef Py_ssize_t depth, start
        cdef Node *node = self._walk(key, n, True, &depth, &start)
        if node == NULL or node.value == NULL:
            return 0
        self._take_value(node, depth, out)
        return 1

    cdef void _take_value(self, Node *node, Py_ssize_t depth, PyObject **out) noexcept:
        """Unlink the value of ``node``, found at ``path[depth - 1]``, into *out."""
        cdef Py_ssize_t j, weight
        for j in range(depth - 1):
            self.path[j][0].count -= 1
        if has_count(node):  # a short leaf's count field is its parent, a Bare has none
            node.count -= 1
        if self.linked:
            if self.weighed:
                weight = own_weight(node)
                for j in range(depth):
                    weight_of(self.path[j][0])[0] -= weight
            q_unlink(&self.queue, node)
        out[0] = node.value
        node.value = NULL
        self.modcount += 1
        self._tidy(depth)

    cdef bint _take_leaf(self, Node *node, PyObject **out) noexcept:
        """Unlink the value of a live linked leaf into *out, as ``_take_value`` would, when
        its parent keeps a value or another child: then only the parent's slot and the
        leaf's byte are looked up, and the counts (and weights) are taken off through the
        parent pointers, not along a rebuilt path. False, with nothing done, otherwise."""
        cdef Node *parent = parent_of(node)
        cdef Node *up
        cdef Node **slot = &parent
        cdef Py_ssize_t weight
        cdef uchar b = 0, above = 0
        if node.nkids or parent == NULL or (parent.value == NULL and parent.nkids < 2):
            return False
        up = parent_of(parent)
        if up == NULL:
            slot = &self.root
        elif (shrunk_kind(parent.kind, parent.nkids - 1) >= 0
                or (parent.value == NULL and parent.nkids == 2)):
            slot = slot_of(up, parent, &above)  # the parent moves or merges: its real slot
        slot_of(parent, node, &b)
        up = parent
        while up != NULL:
            up.count -= 1
            up = parent_of(up)
        if self.weighed:
            weight = weight_of(node)[0]
            up = parent
            while up != NULL:
                weight_of(up)[0] -= weight
                up = parent_of(up)
        q_unlink(&self.queue, node)
        out[0] = node.value
        node.value = NULL
        self.modcount += 1
        # _tidy's work, for this case: the parent is not left empty, it may be merged.
        remove_child(slot, b, &self.queue)
        free_node(node)
        if slot != &self.root and slot[0].value == NULL and slot[0].nkids == 1:
            merge_with_child(slot, &self.queue)  # slot is the real one here (see above)
        return True

    cdef int _path_up(self, Node *node, Py_ssize_t *depth) except -1:
        """Fill ``path``/``path_bytes`` down to a live linked node from its parents."""
        cdef Py_ssize_t d = 1
        cdef Node *up = node
        cdef Node *parent
        cdef uchar b = 0
        while parent_of(up) != NULL:
            up = parent_of(up)
            d += 1
        if d >= self.path_cap:
            self._grow_path(d)
        depth[0] = d
        up = node
        while True:
            d -= 1
            parent = parent_of(up)
            if parent == NULL:
                self.path[d] = &self.root
                return 0
            self.path[d] = slot_of(parent, up, &b)
            self.path_bytes[d] = b
            up = parent

    cdef void _tidy(self, Py_ssize_t depth) noexcept:
        """Restore path compression after the node at ``path[depth - 1]`` lost something.

        Walks up while nodes end up with neither a value nor children, then merges a
        valueless node left with one child. The root is never removed nor merged.
        """
        cdef Node *node
        cdef Node **slot
        while depth > 1:
            slot = self.path[depth - 1]
            node = slot[0]
            if node.value != NULL:
                return
            if node.nkids == 1:
                merge_with_child(slot, &self.queue)
                return
            if node.nkids != 0:
                return
            remove_child(self.path[depth - 2], self.path_bytes[depth - 1], &self.queue)
            free_node(node)
            depth -= 1

    cdef Node *_walk(self, const uchar *prefix, Py_ssize_t n, bint exact,
                     Py_ssize_t *depth, Py_ssize_t *label_start) except? NULL:
        """The highest node whose keys all start with ``prefix``, or NULL.

        With ``exact``, the node where ``prefix`` ends, as a key, or NULL. Fills
        ``path``/``path_bytes`` down to the node; *label_start is the offset in ``prefix`` at
        which the node's label begins.
        """
        cdef Node **slot = &self.root
        cdef Node *node
        cdef Py_ssize_t i = 0, d = 0, rest
        cdef uint32_t plen
        while True:
            node = slot[0]
            if d + 1 >= self.path_cap:
                self._grow_path(d + 1)
            self.path[d] = slot
            d += 1
            plen = node.plen
            label_start[0] = i
            if plen:
                rest = n - i
                if rest <= plen:
                    if (exact and rest < plen) or memcmp(label_of(node), prefix + i,
                                                         <size_t>rest) != 0:
                        return NULL
                    break
                if memcmp(label_of(node), prefix + i, plen) != 0:
                    return NULL
                i += plen
            if i == n:
                break
            slot = find_child(node, prefix[i])
            if slot == NULL:
                return NULL
            self.path_bytes[d] = prefix[i]
            i += 1
        depth[0] = d
        return node

    cdef Py_ssize_t _invalidate(self, const uchar *prefix, Py_ssize_t n) except -1:
        cdef Py_ssize_t depth, start, removed, removed_queued, j, weight
        cdef Node *node = self._walk(prefix, n, False, &depth, &start)
        cdef Node *fresh
        if node == NULL or count_of(node) == 0:
            return 0
        removed = removed_queued = count_of(node)
        if depth == 1:
            fresh = new_node(KIND_LEAF, NULL, 0, self.layout)
            if fresh == NULL:
                raise MemoryError()
            self.root = fresh
        else:
            # Counts first: the parent may shrink into an F_SHORT leaf, whose count field
            # then holds its parent.
            for j in range(depth - 1):
                self.path[j][0].count -= removed
            remove_child(self.path[depth - 2], self.path_bytes[depth - 1], &self.queue)
            if self.linked:
                if self.weighed:
                    weight = weight_of(node)[0]
                    for j in range(depth - 1):
                        weight_of(self.path[j][0])[0] -= weight
                # The detached top has no parent: the hand, walking up from a node below
                # it, ends here and not at the root, so it knows the node is gone. An
                # F_SHORT leaf's parent field becomes the garbage link: it leaves the
                # queue now, which is where the hand would have taken it out.
                if node.flags & F_SHORT:
                    q_unlink(&self.queue, node)
                    removed_queued = 0
                else:
                    set_parent(node, NULL)
            self._tidy(depth - 1)
        node.count = <Py_ssize_t>self.garbage
        self.garbage = node
        self.pending += removed
        if self.linked:
            self.dead += removed_queued
        self.modcount += 1
        return removed

    cdef Py_ssize_t _reclaim(self, Py_ssize_t budget) except -1:
        """Free up to ``budget`` garbage nodes (all when negative); values released."""
        cdef Node *node
        cdef Node *child
        cdef PyObject *value
        cdef Py_ssize_t released = 0
        cdef int pos = 0, next_pos
        cdef uchar b
        while self.garbage != NULL and budget != 0:
            node = self.garbage
            self.garbage = <Node *>node.count
            pos = 0
            while True:
                child = child_after(node, pos, &next_pos, &b)
                if child == NULL:
                    break
                pos = next_pos
                if child.flags & F_SHORT:
                    # Its parent field becomes the garbage link: out of the queue now.
                    if child.flags & F_QUEUED:
                        q_unlink(&self.queue, child)
                        if self.dead > 0:
                            self.dead -= 1
                elif child.flags & F_LINKED:
                    set_parent(child, NULL)  # its parent is about to be freed
                child.count = <Py_ssize_t>self.garbage
                self.garbage = child
            if node.flags & F_QUEUED:
                q_unlink(&self.queue, node)
                if self.dead > 0:
                    self.dead -= 1
            value = node.value
            free_node(node)
            budget -= 1
            if value != NULL:
                self.pending -= 1
                released += 1
                decref(value)  # may re-enter; the garbage list is consistent here
        return released

    # -- the bound (SIEVE) --------------------------------------------------------------

    cdef inline bint _over(self) noexcept:
        return self.root.count > self.limit_entries or (
            self.weighed and weight_of(self.root)[0] > self.limit_weight)

    cdef bint _live(self, Node *node) noexcept:
        """Whether a linked node is in the trie (not in a detached subtree)."""
        cdef Node *up
        while True:
            up = parent_of(node)
            if up == NULL:
                return node == self.root
            node = up

    cdef void _settle_hand(self) noexcept:
        """Move the hand off nodes of detached subtrees before an entry joins the queue.

        The hand then points where it would have pointed had ``invalidate_prefix`` unlinked
        the detached nodes at once: a new entry never slips in between. Amortised O(1): each
        node leaves the queue once.
        """
        cdef Node *node = self.queue.hand
        if self.dead == 0:
            return
        while node != NULL and not self._live(node):
            q_unlink(&self.queue, node)
            self.dead -= 1
            node = self.queue.hand

    cdef Py_ssize_t _key_of(self, Node *node) except -1:
        """Write the key of a live linked node into ``keybuf``; return its length."""
        cdef Py_ssize_t n = 0, at
        cdef Node *up = node
        cdef Node *parent
        cdef void *grown
        while True:
            n += up.plen
            parent = parent_of(up)
            if parent == NULL:
                break
            n += 1
            up = parent
        if n > self.keycap or self.keybuf == NULL:
            grown = PyMem_Realloc(self.keybuf, <size_t>max(n, 64))
            if grown == NULL:
                raise MemoryError()
            self.keybuf = <uchar *>grown
            self.keycap = max(n, 64)
        at = n
        up = node
        while True:
            at -= up.plen
            memcpy(self.keybuf + at, label_of(up), up.plen)
            parent = parent_of(up)
            if parent == NULL:
                return n
            at -= 1
            self.keybuf[at] = byte_of(parent, up)
            up = parent

    cdef int _make_room(self) except -1:
        """Evict until the bound holds: SIEVE (Zhang et al., NSDI 2024).

        The hand examines the queue from the oldest end towards the newest and wraps
        around. A node of a detached subtree leaves the queue as the hand meets it. An entry
        ``expired_fn`` calls expired is removed whatever its visited bit; a visited entry
        loses the bit and is passed; the first unvisited entry is the victim, and the hand
        stays on the entry after it. The entry the current write stored (``queue.keep``) is
        passed over untouched. Each victim's value is released once the trie is consistent,
        so its __del__ may use the trie; every step re-reads the hand afterwards.
        """
        cdef Node *node
        cdef QLink *link
        cdef size_t stamp
        cdef object value
        cdef bint gone
        while self._over():
            node = self.queue.hand
            if node == NULL:
                node = self.queue.oldest
                if node == NULL:
                    return 0
            link = qlink(node)
            if node == self.queue.keep:
                if link.older == NULL and link.newer == NULL:
                    return 0
                self.queue.hand = link.newer
                continue
            if self.dead and not self._live(node):
                q_unlink(&self.queue, node)
                self.dead -= 1
                continue
            if self.expired_fn is not None:
                value = <object>node.value
                stamp = self.modcount
                gone = bool(self.expired_fn(value))
                if self.modcount != stamp or node.value != <PyObject *>value:
                    value = None  # the predicate changed the trie: look again
                    continue
                value = None
                if gone:
                    self._evict(node, True)
                    continue
            if node.flags & F_VISITED:
                node.flags &= ~F_VISITED
                self.queue.hand = link.newer
                continue
            self._evict(node, False)
        return 0

    cdef int _evict(self, Node *node, bint expired) except -1:
        """Remove a live queued node's entry; its value goes last."""
        cdef Py_ssize_t depth
        cdef PyObject *out = NULL
        if not self._take_leaf(node, &out):
            self._path_up(node, &depth)
            self._take_value(node, depth, &out)
        if expired:
            self.n_expirations += 1
        else:
            self.n_evictions += 1
        decref(out)  # may re-enter; the trie and the queue are consistent here
        return 0

    cdef Py_ssize_t _expire_oldest(self, Py_ssize_t budget) except -1:
        """Remove entries from the queue's oldest end while ``expired_fn`` calls them
        expired, examining at most ``budget`` of them; return how many went.

        Nodes of detached subtrees leave the queue as they are met, unexamined. The walk stops
        at the first entry that is not expired, at the entry the current write stored
        (``queue.keep``), when the predicate changed the trie, and when a released value's
        ``__del__`` wrote to it (``keep`` was cleared: a write ends by clearing it). Each value
        goes once the trie is consistent, as in ``_make_room``.
        """
        cdef Node *node
        cdef bint keeping = self.queue.keep != NULL
        cdef size_t stamp
        cdef object value
        cdef bint gone
        cdef Py_ssize_t removed = 0
        while budget > 0 and self.expired_fn is not None:
            node = self.queue.oldest
            if node == NULL or node == self.queue.keep:
                break
            if self.dead and not self._live(node):
                q_unlink(&self.queue, node)
                self.dead -= 1
                continue
            budget -= 1
            value = <object>node.value
            stamp = self.modcount
            gone = bool(self.expired_fn(value))
            if self.modcount != stamp or node.value != <PyObject *>value or not gone:
                break
            value = None
            self._evict(node, True)
            removed += 1
            if keeping and self.queue.keep == NULL:
                break
        return removed

    def remove_expired(self):
        """Remove entries from the oldest end of the queue while ``expired`` calls them
        expired; return how many (counted in :attr:`expirations`).

        The walk stops at the first entry that is not expired, so it costs what it removes
        plus one call of ``expired``; it is never run by the trie itself. The queue is in
        store order when ``expired`` is set without a bound, in insertion order (a replaced
        key keeps its place) in a bounded trie. 0 for a trie without ``expired``.
        """
        cdef Py_ssize_t removed
        if not self.linked:
            return 0
        removed = self._expire_oldest(self.root.count)
        if self.garbage != NULL:
            self._reclaim(RECLAIM_SLICE)
        return removed

    def remove_if_is(self, key, value):
        """Remove ``key`` if the value it holds is ``value`` itself (``is``, not ``==``);
        return whether it did.

        A compare-and-delete: a reader that found ``value`` stale removes it without
        removing what another thread stored under ``key`` since. Atomic like every method.
        """
        cdef Py_ssize_t n, depth, start
        cdef object source
        cdef uchar buf[4 * SMALL_KEY_CHARS]
        cdef const uchar *k = in_place_bytes(key, buf, &n)
        cdef PyObject *out = NULL
        cdef Node *node
        if k == NULL:
            source = key_source(key, "keys")
            k = source_bytes(source, &n)
        node = self._walk(k, n, True, &depth, &start)
        if node == NULL or node.value == NULL or node.value != <PyObject *>value:
            return False
        self._take_value(node, depth, &out)
        decref(out)  # the caller holds value: no __del__ runs here
        if self.garbage != NULL:
            self._reclaim(RECLAIM_SLICE)
        return True

    cdef int _store(self, object key, object value, Py_ssize_t weight) except -1:
        """Set ``key`` with ``weight``, restore the bound, release a slice of garbage."""
        cdef Py_ssize_t n
        cdef object source
        cdef uchar buf[4 * SMALL_KEY_CHARS]
        cdef const uchar *k = in_place_bytes(key, buf, &n)
        if k == NULL:
            source = key_source(key, "keys")
            k = source_bytes(source, &n)
        self._set(k, n, value, weight)
        if self.linked:
            try:
                if self._over():
                    self._make_room()
                if self.expiry_only:
                    self._expire_oldest(2)
            finally:
                self.queue.keep = NULL  # also when expired raised: keep names no entry
        if self.garbage != NULL:
            self._reclaim(RECLAIM_SLICE)
        return 0

    def put(self, key, value, weight=1):
        """Store ``value`` under ``key`` with a ``weight`` (an int, 0 to 2**48); return
        whether it was stored.

        An entry heavier than ``max_weight`` is not stored and removes what ``key`` held
        (``False``). A trie without ``max_weight`` records no weights (each entry weighs 1):
        ``put`` is then ``self[key] = value``.
        """
        cdef Py_ssize_t w = check_weight(weight)
        cdef Py_ssize_t n
        cdef object source
        cdef PyObject *out = NULL
        cdef uchar buf[4 * SMALL_KEY_CHARS]
        cdef const uchar *k
        if self.linked and w > self.limit_weight:
            k = in_place_bytes(key, buf, &n)
            if k == NULL:
                source = key_source(key, "keys")
                k = source_bytes(source, &n)
            if self._remove(k, n, &out):
                decref(out)
            if self.garbage != NULL:
                self._reclaim(RECLAIM_SLICE)
            return False
        self._store(key, value, w)
        return True

    @property
    def max_entries(self):
        """The most entries the trie holds after a write returns, or None."""
        return None if self.limit_entries == PY_SSIZE_T_MAX else self.limit_entries

    @property
    def max_weight(self):
        """The greatest total weight the trie holds after a write returns, or None."""
        return None if self.limit_weight == PY_SSIZE_T_MAX else self.limit_weight

    @property
    def weight(self):
        """Sum of the weights of the entries; ``len(self)`` without ``max_weight`` (every
        entry then weighs 1)."""
        if self.weighed:
            return weight_of(self.root)[0]
        return self.root.count

    @property
    def evictions(self):
        """Entries removed by the hand to make room."""
        return self.n_evictions

    @property
    def expirations(self):
        """Entries removed because ``expired`` said so: by the hand, by the writes of a
        trie with no bound, by :meth:`remove_expired`."""
        return self.n_expirations

    @property
    def expired(self):
        """The predicate asked about the entries the hand (or an expiry step) meets, or None."""
        return self.expired_fn

    # -- mapping protocol --------------------------------------------------------------

    def __len__(self):
        return self.root.count

    def __getitem__(self, key):
        cdef Node *node = lookup(self.root, key)
        if node.value == NULL:
            raise KeyError(key)
        if self.linked:
            node.flags |= F_VISITED
        return <object>node.value

    def get(self, key, default=None):
        """The value under ``key``, or ``default``."""
        cdef Node *node = lookup(self.root, key)
        if node.value == NULL:
            return default
        if self.linked:
            node.flags |= F_VISITED
        return <object>node.value

    def __contains__(self, key):
        return lookup(self.root, key).value != NULL

    def __setitem__(self, key, value):
        cdef Py_ssize_t n
        cdef object source
        cdef const uchar *k
        cdef uchar buf[4 * SMALL_KEY_CHARS]
        if self.linked:
            self._store(key, value, 1)
            return
        k = in_place_bytes(key, buf, &n)
        if k == NULL:
            source = key_source(key, "keys")
            k = source_bytes(source, &n)
        self._set(k, n, value, 1)
        if self.garbage != NULL:
            self._reclaim(RECLAIM_SLICE)

    def __delitem__(self, key):
        cdef Py_ssize_t n
        cdef object source
        cdef PyObject *out = NULL
        cdef uchar buf[4 * SMALL_KEY_CHARS]
        cdef const uchar *k = in_place_bytes(key, buf, &n)
        if k == NULL:
            source = key_source(key, "keys")
            k = source_bytes(source, &n)
        if not self._remove(k, n, &out):
            raise KeyError(key)
        decref(out)
        if self.garbage != NULL:
            self._reclaim(RECLAIM_SLICE)

    def pop(self, key, default=_MISSING):
        """Remove ``key`` and return its value; ``default`` or KeyError when absent."""
        cdef Py_ssize_t n
        cdef object source
        cdef PyObject *out = NULL
        cdef object value
        cdef uchar buf[4 * SMALL_KEY_CHARS]
        cdef const uchar *k = in_place_bytes(key, buf, &n)
        if k == NULL:
            source = key_source(key, "keys")
            k = source_bytes(source, &n)
        if not self._remove(k, n, &out):
            if default is _MISSING:
                raise KeyError(key)
            return default
        value = <object>out
        decref(out)
        if self.garbage != NULL:
            self._reclaim(RECLAIM_SLICE)
        return value

    def setdefault(self, key, default=None):
        """``self[key]`` if present, else store and return ``default``."""
        cdef Node *node = lookup(self.root, key)
        if node.value != NULL:
            if self.linked:
                node.flags |= F_VISITED
            return <object>node.value
        self._store(key, default, 1)
        return default

    def popitem(self):
        """Remove and return the ``(key, value)`` pair with the greatest key."""
        cdef Node *node = self.root
        cdef bytearray key = bytearray()
        cdef uchar b
        if node.count == 0:
            raise KeyError("popitem(): RadixTrie is empty")
        while node.nkids:
            node = last_child(node, &b)
            key.append(b)
            key += (<char *>label_of(node))[:node.plen]
        text = bytes(key).decode("utf-8", "surrogatepass")
        return text, self.pop(text)

    def clear(self):
        """Remove every key and release all memory and references, pending ones too."""
        self._invalidate(<const uchar *>b"", 0)
        self._reclaim(-1)

    def update(self, other=(), /, **kwargs):
        """Like ``dict.update``."""
        if isinstance(other, Mapping):
            for key in other:
                self[key] = other[key]
        elif hasattr(other, "keys"):
            for key in other.keys():
                self[key] = other[key]
        else:
            for key, value in other:
                self[key] = value
        for key, value in kwargs.items():
            self[key] = value

    def copy(self):
        """A new trie with the same items (values are shared, not copied); atomic.

        Always a plain ``RadixTrie``, like ``dict.copy`` and the pure-Python twin. A bounded
        trie's copy has the same bounds, ``expired``, weights, queue order, visited bits
        and hand, so it makes the same eviction decisions; its counters start at zero.
        """
        # Not type(self)(): a subclass's __init__ could store entries, and replacing the
        # root below would leak them.
        cdef RadixTrie other
        cdef Node *top
        if self.linked:
            other = self._copy_linked()
        else:
            other = RadixTrie.__new__(RadixTrie)
            top = clone_tree(self.root)
            free_node(other.root)  # the empty root made by __cinit__
            other.root = top
        if self.garbage != NULL:
            self._reclaim(RECLAIM_SLICE)
        return other

    cdef RadixTrie _copy_linked(self):
        """The copy of a bounded trie: its live entries stored anew in queue order."""
        cdef RadixTrie other = RadixTrie.__new__(
            RadixTrie, max_entries=self.max_entries, max_weight=self.max_weight,
            expired=self.expired_fn)
        cdef Node *node = self.queue.oldest
        cdef Node *fresh
        cdef Py_ssize_t n
        cdef bint hand_next = False
        if not other.linked:
            # The collector cleared expired (trie_clear) of a trie linked for it alone.
            other.update(self.items())
            return other
        while node != NULL:
            if node == self.queue.hand:
                hand_next = True
            if self._live(node):
                n = self._key_of(node)
                other._set(self.keybuf, n, <object>node.value, own_weight(node))
                fresh = other.queue.keep
                other.queue.keep = NULL
                fresh.flags |= node.flags & F_VISITED
                if hand_next:
                    other.queue.hand = fresh
                    hand_next = False
            node = qlink(node).newer
        return other

    def __ior__(self, other):
        self.update(other)
        return self

    def __or__(self, other):
        if not isinstance(other, Mapping):
            return NotImplemented
        new = self.copy()
        new.update(other)
        return new

    def __copy__(self):
        # copy.copy keeps a subclass's type, as the __reduce__ this replaces does.
        if type(self) is RadixTrie:
            return self.copy()
        return type(self)(self.copy())

    def __iter__(self):
        return make_iterator(self, <const uchar *>b"", 0, 0)

    def keys(self, prefix=""):
        """Keys starting with ``prefix``, in code point order."""
        return self._iterate(prefix, 0)

    def values(self, prefix=""):
        """Values of the keys starting with ``prefix``, in key order."""
        return self._iterate(prefix, 1)

    def items(self, prefix=""):
        """``(key, value)`` pairs of the keys starting with ``prefix``, in key order."""
        return self._iterate(prefix, 2)

    def _iterate(self, prefix, int what):
        cdef Py_ssize_t n
        cdef object source = key_source(prefix, "prefixes")
        cdef const uchar *p = source_bytes(source, &n)
        return make_iterator(self, p, n, what)

    def __eq__(self, other):
        if not isinstance(other, Mapping):
            return NotImplemented
        if len(self) != len(other):
            return False
        for key, value in self.items():
            try:
                theirs = other[key]
            except (KeyError, TypeError):
                return False
            if not (theirs is value or theirs == value):
                return False
        return True

    __hash__ = None

    def __repr__(self):
        token = (id(self), get_ident())
        if token in _repr_running:
            return "..."
        _repr_running.add(token)
        try:
            return f"{type(self).__name__}({dict(self.items())!r})"
        finally:
            _repr_running.discard(token)

    def __reduce__(self):
        # The entries travel as state, set after the empty trie exists: pickle and deepcopy
        # record the trie first, so a value that refers back to it (t["self"] = t) works.
        return (_restore, (type(self), self.max_entries, self.max_weight, self.expired_fn),
                self._state())

    cdef object _state(self):
        """``[(key, value), ...]`` in key order; for a bounded trie ``(entries, hand)`` with
        ``[(key, value, weight, visited), ...]`` in queue order and the hand's index."""
        cdef Node *node = self.queue.oldest
        cdef Py_ssize_t n
        cdef list entries = []
        cdef Py_ssize_t hand = -1
        cdef size_t stamp = self.modcount
        cdef object value
        cdef Py_ssize_t weight
        cdef bint visited
        if not self.linked:
            return list(self.items())
        while node != NULL:
            if node == self.queue.hand and hand < 0:
                hand = len(entries)
            if self._live(node):
                # Read the node first: building the entry allocates, which may run the cycle
                # collector and with it code that changes the trie and frees the node.
                value = <object>node.value
                weight = own_weight(node)
                visited = (node.flags & F_VISITED) != 0
                n = self._key_of(node)
                entries.append((key_str(self.keybuf, n), value, weight, visited))
                if self.modcount != stamp:
                    raise RuntimeError("RadixTrie changed shape while being pickled")
            node = qlink(node).newer
        return (entries, hand if hand < len(entries) else -1)

    def __setstate__(self, state):
        cdef Node *node
        cdef Py_ssize_t hand
        cdef bint seen
        if isinstance(state, list):
            for key, value in state:
                self[key] = value
            return
        entries, hand = state
        for key, value, weight, visited in entries:
            if not self.linked:
                self[key] = value
                continue
            seen = bool(visited)  # before the store: its __bool__ may be any code
            self._set_key(key, value, check_weight(weight))
            node = self.queue.keep
            self.queue.keep = NULL
            if node != NULL and seen:
                node.flags |= F_VISITED
        if self.linked and hand >= 0:
            node = self.queue.oldest
            while node != NULL and hand > 0:
                node = qlink(node).newer
                hand -= 1
            self.queue.hand = node
        if self.linked:
            self._make_room()
            self.queue.keep = NULL

    cdef int _set_key(self, object key, object value, Py_ssize_t weight) except -1:
        cdef Py_ssize_t n
        cdef object source = key_source(key, "keys")
        cdef const uchar *k = source_bytes(source, &n)
        return self._set(k, n, value, weight)

    # -- prefixes ----------------------------------------------------------------------

    def count_prefix(self, prefix):
        """How many keys start with ``prefix``; O(len(prefix))."""
        cdef Py_ssize_t n
        cdef object source
        cdef const uchar *p = ascii_bytes(prefix, &n)
        cdef Node *node
        if p == NULL:
            source = key_source(prefix, "prefixes")
            p = source_bytes(source, &n)
        node = find_prefix(self.root, p, n)
        return 0 if node == NULL else count_of(node)

    def invalidate_prefix(self, prefix):
        """Remove every key that starts with ``prefix`` and return how many.

        A plain string prefix: ``"ab"`` removes ``"ab"``, ``"abc"`` and ``"ab/x"``; ``""``
        removes everything. O(len(prefix)); the removed entries' memory and references are
        released later (see :meth:`reclaim`).
        """
        cdef Py_ssize_t n, removed
        cdef object source = key_source(prefix, "prefixes")
        cdef const uchar *p = source_bytes(source, &n)
        if self.garbage != NULL:
            self._reclaim(RECLAIM_SLICE)
        return self._invalidate(p, n)

    def reclaim(self):
        """Release everything removed but not yet freed; return how many values that was."""
        return self._reclaim(-1)

    @property
    def pending_reclaim(self):
        """Removed entries whose values have not been released yet."""
        return self.pending

    @classmethod
    def __class_getitem__(cls, item):
        """``RadixTrie[int]``: a generic alias, as for ``dict`` and the pure-Python twin."""
        return GenericAlias(cls, item)


cdef class _Iterator:
    """Depth-first walk in byte order; raises RuntimeError once the trie changes shape."""

    cdef RadixTrie trie
    cdef size_t modcount
    cdef int what               # 0 keys, 1 values, 2 items
    cdef bint exhausted         # ran to the end (or never started): stays at StopIteration
    cdef Node **nodes           # stack of nodes being walked
    cdef int *positions         # per stack entry: -1 before the node's own value, else child pos
    cdef Py_ssize_t *bases      # per stack entry: key length before the node's byte and label
    cdef Py_ssize_t depth, cap  # stack entries in use and allocated
    cdef uchar *key             # bytes of the key of the node on top of the stack
    cdef Py_ssize_t keylen, keycap

    def __cinit__(self):
        self.nodes = NULL
        self.positions = NULL
        self.bases = NULL
        self.key = NULL
        self.depth = self.cap = self.keylen = self.keycap = 0
        # Only _start gives an iterator a trie: one made by calling the class directly
        # must not reach self.trie (None) in __next__.
        self.exhausted = True

    cdef int _start(self, RadixTrie trie, const uchar *prefix, Py_ssize_t n, int what) except -1:
        cdef Py_ssize_t depth, start
        cdef Node *node
        self.trie = trie
        self.what = what
        self.modcount = trie.modcount
        self.depth = 0
        self.exhausted = False
        node = trie._walk(prefix, n, False, &depth, &start)
        if node == NULL:
            return 0
        self._reserve(1, start + node.plen)
        memcpy(self.key, prefix, <size_t>start)
        memcpy(self.key + start, label_of(node), node.plen)
        self.keylen = start + node.plen
        self.nodes[0] = node
        self.positions[0] = -1
        self.bases[0] = 0
        self.depth = 1
        return 0

    def __dealloc__(self):
        PyMem_Free(self.nodes)
        PyMem_Free(self.positions)
        PyMem_Free(self.bases)
        PyMem_Free(self.key)

    cdef int _reserve(self, Py_ssize_t depth, Py_ssize_t keylen) except -1:
        cdef Py_ssize_t cap
        cdef void *mem
        if depth > self.cap:
            cap = max(depth, 2 * self.cap, 16)
            mem = PyMem_Realloc(self.nodes, <size_t>cap * sizeof(Node *))
            if mem == NULL:
                raise MemoryError()
            self.nodes = <Node **>mem
            mem = PyMem_Realloc(self.positions, <size_t>cap * sizeof(int))
            if mem == NULL:
                raise MemoryError()
            self.positions = <int *>mem
            mem = PyMem_Realloc(self.bases, <size_t>cap * sizeof(Py_ssize_t))
            if mem == NULL:
                raise MemoryError()
            self.bases = <Py_ssize_t *>mem
            self.cap = cap
        if keylen >= self.keycap:
            cap = max(keylen, 2 * self.keycap, 64)
            mem = PyMem_Realloc(self.key, <size_t>cap)
            if mem == NULL:
                raise MemoryError()
            self.key = <uchar *>mem
            self.keycap = cap
        return 0

    def __iter__(self):
        return self

    def __next__(self):
        cdef Node *node
        cdef Node *child
        cdef int next_pos
        cdef uchar b
        cdef Py_ssize_t top
        if self.exhausted:
            raise StopIteration
        if self.modcount != self.trie.modcount:
            self.depth = 0
            raise RuntimeError("RadixTrie changed shape during iteration")
        while self.depth:
            top = self.depth - 1
            node = self.nodes[top]
            if self.positions[top] < 0:
                self.positions[top] = 0
                if node.value != NULL:
                    return self._emit(node)
                continue
            child = child_after(node, self.positions[top], &next_pos, &b)
            if child == NULL:
                self.keylen = self.bases[top]
                self.depth = top
                continue
            self.positions[top] = next_pos
            self._reserve(self.depth + 1, self.keylen + 1 + child.plen)
            self.nodes[self.depth] = child
            self.positions[self.depth] = -1
            self.bases[self.depth] = self.keylen
            self.key[self.keylen] = b
            memcpy(self.key + self.keylen + 1, label_of(child), child.plen)
            self.keylen += 1 + child.plen
            self.depth += 1
        self.exhausted = True
        raise StopIteration

    cdef object _emit(self, Node *node):
        # Take the value first: building the key or the tuple may run the garbage
        # collector, and with it code that changes the trie.
        cdef object value = <object>node.value
        if self.what == 1:
            return value
        key = key_str(self.key, self.keylen)
        if self.what == 0:
            return key
        return (key, value)


cdef _Iterator make_iterator(RadixTrie trie, const uchar *prefix, Py_ssize_t n, int what):
    cdef _Iterator it = _Iterator.__new__(_Iterator)
    it._start(trie, prefix, n, what)
    return it


MutableMapping.register(RadixTrie)


# ---------------------------------------------------------------------------------------
# Cycle collection: the values are held through raw pointers, so the collector is shown
# them by hand. A value that refers back to its trie is then collected like one in a dict.

cdef int visit_tree(Node *top, visitproc visit, void *arg) noexcept:
    """Visit the values of one tree, depth first with a heap stack.

    Runs inside the collector: it allocates with the C allocator only, and if that fails it
    visits less, which only makes the collector keep objects it could have freed.
    """
    cdef Node **stack = <Node **>realloc(NULL, 64 * sizeof(Node *))
    cdef Node **grown
    cdef Node **kids
    cdef Node *node
    cdef Py_ssize_t depth = 0, cap = 64
    cdef int length, i, status = 0
    if stack == NULL:
        return 0
    stack[0] = top
    depth = 1
    while depth and status == 0:
        depth -= 1
        node = stack[depth]
        if node.value != NULL:
            status = visit(node.value, arg)
        kids = kid_array(node, &length)
        if depth + length > cap:
            grown = <Node **>realloc(stack, <size_t>(2 * cap + length) * sizeof(Node *))
            if grown == NULL:
                continue
            stack = grown
            cap = 2 * cap + length
        for i in range(length):
            if kids[i] != NULL:
                stack[depth] = kids[i]
                depth += 1
    free(stack)
    return status


cdef int trie_traverse(PyObject *obj, visitproc visit, void *arg) except -1:
    cdef RadixTrie trie = <RadixTrie>obj
    cdef Node *node
    cdef int status
    if trie.expired_fn is not None:
        status = visit(<PyObject *>trie.expired_fn, arg)
        if status:
            return status
    if trie.root != NULL:
        status = visit_tree(trie.root, visit, arg)
        if status:
            return status
    node = trie.garbage
    while node != NULL:
        status = visit_tree(node, visit, arg)
        if status:
            return status
        node = <Node *>node.count
    return 0


cdef int trie_clear(object obj) except -1:
    cdef RadixTrie trie = <RadixTrie>obj
    trie.expired_fn = None
    try:
        trie._invalidate(<const uchar *>b"", 0)
    except MemoryError:
        pass  # the collector retries later; the values stay reachable meanwhile
    trie._reclaim(-1)
    return 0


(<PyTypeObject *>RadixTrie).tp_traverse = <traverseproc>trie_traverse
(<PyTypeObject *>RadixTrie).tp_clear = <inquiry>trie_clear
