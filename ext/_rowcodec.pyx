# Decoders of LmdbCache's stored payloads (trie_cache/_lmdb_format.py), compiled because
# LmdbCache.get is hot. The pure-Python twin is trie_cache/_rowcodec_py.py; trie_cache/_core.py
# picks one of the two with the same switch as the trie core.
# They take a payload cbor2 just decoded (so it is theirs to change) and build CachedRows
# without its constructor's checks: the stored value passed its checksum, so it is what
# put wrote. A shape that is not what put writes gives None, and the caller reports it.
# The payload must be a tree: the caller decodes with shared values (CBOR tags 28/29)
# refused, since dicts are frozen in place and a value reached along many paths would be
# frozen once per path.

from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from libc.math cimport isfinite

cdef extern from "Python.h":
    bint PyUnicode_CheckExact(object o)
    bint PyBytes_CheckExact(object o)
    bint PyList_CheckExact(object o)
    bint PyLong_CheckExact(object o)
    bint PyFloat_CheckExact(object o)
    bint PyDict_CheckExact(object o)
    bint PyBool_Check(object o)
    double PyFloat_AS_DOUBLE(object o)
    Py_ssize_t PyList_GET_SIZE(object o)
    PyObject *PyList_GET_ITEM(object o, Py_ssize_t i)
    int PyDict_Next(object d, Py_ssize_t *pos, PyObject **key, PyObject **value)
    int PyDict_SetItem(object d, object key, object value) except -1
    PyObject *PyDict_GetItemWithError(object d, object key) except? NULL
    object PyDictProxy_New(object mapping)
    int PyObject_GenericSetAttr(object o, object name, object value) except -1

# Nesting limit of a field value, as trie_cache._rows.MAX_DEPTH.
DEF MAX_DEPTH = 64


cdef inline bint is_scalar(object v):
    return (PyUnicode_CheckExact(v) or PyLong_CheckExact(v) or PyFloat_CheckExact(v)
            or PyBytes_CheckExact(v) or v is None or PyBool_Check(v))


cdef object freeze(object v, int depth, object slow):
    """``v`` read-only, as ``CachedRows`` holds it: a list becomes a tuple and a dict a
    read-only view of itself (its values frozen in place); ``slow(v, depth)`` (the
    constructor's own freezing) handles any other type."""
    cdef Py_ssize_t i, n
    cdef PyObject *k
    cdef PyObject *x
    cdef object t
    if is_scalar(v):
        return v
    if depth >= MAX_DEPTH:
        raise ValueError(f"field values nest deeper than {MAX_DEPTH} levels (or are cyclic)")
    if PyList_CheckExact(v):
        n = PyList_GET_SIZE(v)
        t = PyTuple_New(n)
        for i in range(n):
            item = freeze(<object>PyList_GET_ITEM(v, i), depth + 1, slow)
            Py_INCREF(item)
            PyTuple_SET_ITEM(t, i, item)
        return t
    if PyDict_CheckExact(v):
        i = 0
        # Replacing values of keys already present keeps the dict's size and layout, which
        # PyDict_Next allows during the walk.
        while PyDict_Next(v, &i, &k, &x):
            if not is_scalar(<object>x):
                PyDict_SetItem(v, <object>k, freeze(<object>x, depth + 1, slow))
        return PyDictProxy_New(v)
    return slow(v, depth)


cdef inline bint finite_float(object v):
    return PyFloat_CheckExact(v) and isfinite(PyFloat_AS_DOUBLE(v))


cdef object make_rows(type cls, dict rows, object fetched_at, bint flat):
    cdef object result = cls.__new__(cls)
    PyObject_GenericSetAttr(result, "_rows", PyDictProxy_New(rows))
    PyObject_GenericSetAttr(result, "_fetched_at", fetched_at)
    PyObject_GenericSetAttr(result, "_flat", flat)
    return result


def rows_from_map(object payload, object version, type cls, object slow):
    """``cls`` (``CachedRows``) built from a decoded map-form payload
    ``[version, fetched_at, {row_id: {field: value}}]``, or ``None`` for any other shape.

    ``slow`` is ``None`` when every field value is a scalar (checked); otherwise values are
    frozen, and ``slow(value, depth)`` freezes those that are not lists, dicts or scalars.
    Field names must be ``str`` and ``fetched_at`` a finite float, as for the constructor.
    """
    cdef PyObject *k
    cdef PyObject *v
    cdef PyObject *field
    cdef PyObject *value
    cdef Py_ssize_t pos = 0, fpos
    if not PyList_CheckExact(payload) or PyList_GET_SIZE(payload) != 3:
        return None
    cdef object found = <object>PyList_GET_ITEM(payload, 0)
    cdef object fetched_at = <object>PyList_GET_ITEM(payload, 1)
    cdef object rows = <object>PyList_GET_ITEM(payload, 2)
    if not (PyLong_CheckExact(found) and finite_float(fetched_at)
            and PyDict_CheckExact(rows) and found == version):
        return None
    while PyDict_Next(rows, &pos, &k, &v):
        if not (PyUnicode_CheckExact(<object>k) and PyDict_CheckExact(<object>v)):
            return None
        fpos = 0
        while PyDict_Next(<object>v, &fpos, &field, &value):
            if not PyUnicode_CheckExact(<object>field):
                return None
            if slow is None and not is_scalar(<object>value):
                return None
    pos = 0
    while PyDict_Next(rows, &pos, &k, &v):
        # freeze() wraps a dict read-only and freezes its values; a flat record only
        # needs the wrapping.
        PyDict_SetItem(rows, <object>k,
                       PyDictProxy_New(<object>v) if slow is None else freeze(<object>v, 0, slow))
    return make_rows(cls, rows, fetched_at, slow is None)


def rows_from_table(object payload, object version, type cls, object absent, object slow):
    """``cls`` (``CachedRows``) built from a decoded table-form payload, or ``None`` if
    ``payload`` has another shape (repeated row ids or a field twice in a record included).

    The payload is ``[version, fetched_at, [field, ...], [row_id, cell, ...] * rows]`` and
    optionally ``{row: [field index, ...]}``, the field order of rows whose fields do not
    come in the field list's order. A cell that is ``absent`` is a field the record lacks.
    Every record gets the same field name objects. ``slow`` and ``fetched_at`` are as for
    ``rows_from_map``.
    """
    cdef Py_ssize_t size, width, nrows, r, j, base, present, nfields
    cdef PyObject *cell
    cdef PyObject *skip = <PyObject *>absent
    cdef PyObject *found_order
    if not PyList_CheckExact(payload):
        return None
    size = PyList_GET_SIZE(payload)
    if size != 4 and size != 5:
        return None
    cdef object found = <object>PyList_GET_ITEM(payload, 0)
    cdef object fetched_at = <object>PyList_GET_ITEM(payload, 1)
    cdef object names = <object>PyList_GET_ITEM(payload, 2)
    cdef object cells = <object>PyList_GET_ITEM(payload, 3)
    cdef object orders = <object>PyList_GET_ITEM(payload, 4) if size == 5 else None
    if not (PyLong_CheckExact(found) and finite_float(fetched_at)
            and PyList_CheckExact(names) and PyList_CheckExact(cells) and found == version):
        return None
    if orders is not None and not PyDict_CheckExact(orders):
        return None
    nfields = PyList_GET_SIZE(names)
    width = nfields + 1
    for j in range(nfields):
        if not PyUnicode_CheckExact(<object>PyList_GET_ITEM(names, j)):
            return None
    nrows = PyList_GET_SIZE(cells) // width
    if nrows == 0 or nrows * width != PyList_GET_SIZE(cells):
        return None
    cdef dict rows = {}
    cdef dict record
    cdef object row_id, order, index, value
    for r in range(nrows):
        base = r * width
        row_id = <object>PyList_GET_ITEM(cells, base)
        if not PyUnicode_CheckExact(row_id):
            return None
        record = {}
        present = 0
        for j in range(nfields):
            cell = PyList_GET_ITEM(cells, base + 1 + j)
            if cell != skip:
                present += 1
                if slow is None and not is_scalar(<object>cell):
                    return None
        found_order = NULL
        if orders is not None:
            found_order = PyDict_GetItemWithError(orders, r)
        if found_order == NULL:
            for j in range(nfields):
                cell = PyList_GET_ITEM(cells, base + 1 + j)
                if cell != skip:
                    value = <object>cell
                    if slow is not None:
                        value = freeze(value, 1, slow)
                    PyDict_SetItem(record, <object>PyList_GET_ITEM(names, j), value)
        else:
            # The whole order is checked before any cell is frozen (freezing may raise).
            order = <object>found_order
            if not PyList_CheckExact(order) or PyList_GET_SIZE(order) != present:
                return None
            for index in order:
                if not PyLong_CheckExact(index) or not 0 <= index < nfields:
                    return None
                j = index
                if PyList_GET_ITEM(cells, base + 1 + j) == skip:
                    return None
            for index in order:
                j = index
                value = <object>PyList_GET_ITEM(cells, base + 1 + j)
                if slow is not None:
                    value = freeze(value, 1, slow)
                PyDict_SetItem(record, <object>PyList_GET_ITEM(names, j), value)
        if len(record) != present:
            return None
        PyDict_SetItem(rows, row_id, PyDictProxy_New(record))
    if len(rows) != nrows:
        return None
    return make_rows(cls, rows, fetched_at, slow is None)
