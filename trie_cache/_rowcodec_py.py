"""Pure-Python twin of the compiled row codec ``trie_cache._rowcodec`` (``ext/_rowcodec.pyx``).

The decoders of LmdbCache's stored payloads (the layout is in ``_lmdb_format.py``): they take a
payload cbor2 just decoded, which is theirs to change, and build ``CachedRows`` without its
constructor's checks. A shape that is not what ``put`` writes gives ``None``.
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Any

from ._rows import SCALAR_TYPES

__all__ = ["rows_from_map", "rows_from_table"]


def _finite_float(value: object) -> bool:
    return type(value) is float and math.isfinite(value)


def _make_rows(cls: type[Any], rows: dict[str, Any], fetched_at: float, flat: bool) -> Any:
    result = object.__new__(cls)
    object.__setattr__(result, "_rows", MappingProxyType(rows))
    object.__setattr__(result, "_fetched_at", fetched_at)
    object.__setattr__(result, "_flat", flat)
    return result


def rows_from_map(payload: object, version: int, cls: type[Any], slow: Any) -> Any:
    """``cls`` (``CachedRows``) built from a decoded map-form payload
    ``[version, fetched_at, {row_id: {field: value}}]``, or ``None`` for any other shape.

    ``slow`` is ``None`` when every field value is a scalar (checked); otherwise
    ``slow(value, 1)`` freezes each field value (the constructor's own freezing). Field
    names must be ``str`` and ``fetched_at`` a finite float, as for the constructor.
    """
    if type(payload) is not list or len(payload) != 3:
        return None
    found, fetched_at, rows = payload
    if not (
        type(found) is int and _finite_float(fetched_at) and type(rows) is dict and found == version
    ):
        return None
    if any(type(k) is not str or type(v) is not dict for k, v in rows.items()):
        return None
    for record in rows.values():
        if any(type(field) is not str for field in record):
            return None
        if slow is None and any(type(v) not in SCALAR_TYPES for v in record.values()):
            return None
    for row_id, record in rows.items():
        if slow is not None:
            record = {field: slow(value, 1) for field, value in record.items()}
        rows[row_id] = MappingProxyType(record)
    return _make_rows(cls, rows, fetched_at, slow is None)


def rows_from_table(
    payload: object, version: int, cls: type[Any], absent: object, slow: Any
) -> Any:
    """``cls`` (``CachedRows``) built from a decoded table-form payload, or ``None`` if
    ``payload`` has another shape (repeated row ids or a field twice in a record included).

    The payload is ``[version, fetched_at, [field, ...], [row_id, cell, ...] * rows]`` and
    optionally ``{row: [field index, ...]}``, the field order of rows whose fields do not
    come in the field list's order. A cell that is ``absent`` is a field the record lacks.
    Every record gets the same field name objects. ``slow`` and ``fetched_at`` are as for
    ``rows_from_map``.
    """
    if type(payload) is not list or len(payload) not in (4, 5):
        return None
    found, fetched_at, names, cells = payload[:4]
    orders = payload[4] if len(payload) == 5 else None
    if not (
        type(found) is int
        and _finite_float(fetched_at)
        and type(names) is list
        and type(cells) is list
        and found == version
        and (orders is None or type(orders) is dict)
    ):
        return None
    if any(type(name) is not str for name in names):
        return None
    width = len(names) + 1
    nrows = len(cells) // width
    if nrows == 0 or nrows * width != len(cells):
        return None
    rows: dict[str, Any] = {}
    for r in range(nrows):
        row_id = cells[r * width]
        if type(row_id) is not str:
            return None
        row = cells[r * width + 1 : (r + 1) * width]
        present = [j for j, cell in enumerate(row) if cell is not absent]
        if slow is None and any(type(row[j]) not in SCALAR_TYPES for j in present):
            return None
        if orders is not None and r in orders:
            order = orders[r]
            if (
                type(order) is not list
                or len(order) != len(present)
                or any(type(j) is not int or not 0 <= j < len(names) for j in order)
                or any(row[j] is absent for j in order)
            ):
                return None
            present = order
        record = {names[j]: row[j] if slow is None else slow(row[j], 1) for j in present}
        if len(record) != len(present):
            return None
        rows[row_id] = MappingProxyType(record)
    if len(rows) != nrows:
        return None
    return _make_rows(cls, rows, fetched_at, slow is None)
