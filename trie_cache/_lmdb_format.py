"""The on-disk format of ``LmdbCache``: how keys and rows become LMDB keys and values.

Pure functions and constants, no I/O: ``_lmdb.py`` holds the store (environment, writer thread,
group commit, map growth) and the ``Cache`` backend, and calls only what is defined here to
turn keys and rows into bytes and back. ``tests/test_lmdb_payload.py`` tests this module alone.

On-disk layout (layout version 1)
---------------------------------
The folder holds one LMDB environment with two named databases:

``meta``
    ``b"layout"`` -> the CBOR map ``{"layout": 1, "head": 480, "digest": 16}``. A folder
    written with another layout is refused on open instead of being misread.
``rows``
    One record per cache key. Let ``b`` be the key encoded as UTF-8 with ``surrogatepass``
    (so lone surrogates work; this encoding is prefix-free per character, hence ``p`` is a
    string prefix of ``k`` exactly when ``b(p)`` is a byte prefix of ``b(k)``).

    * short key, ``len(b) <= 480``: LMDB key ``b"k" + b``;
    * long key: LMDB key ``b"k" + b[:480] + blake2b(b[480:], 16 bytes)`` (497 bytes, under
      LMDB's 511-byte limit), and the tail ``b[480:]`` is stored in the value.

    The leading ``b"k"`` makes ``""`` a legal LMDB key. A short LMDB key is at most 481
    bytes, a long one exactly 497, so the two never collide.

    The value is ``payload + trailer``. ``payload`` is a CBOR array whose first item is
    its format version:

    * ``2``, the table form, for a page with rows:
      ``[2, fetched_at, [field, ...], [row_id, cell, ..., row_id, cell, ...]]``, one cell
      per field and row in the field list's order, ``undefined`` (CBOR simple value 23)
      where the record lacks the field. Field names are written, and decoded, once per
      page rather than once per record. If some records list their fields in another
      order than the field list, a fifth item ``{row number: [field index, ...]}`` gives
      their order.
    * ``1``, the map form, which is ``CachedRows.to_cbor()``:
      ``[1, fetched_at, {row_id: {field: value}}]``; written for a page without rows.
      ``CachedRows`` never holds ``undefined`` (nor any CBOR simple value), so no cell can be
      mistaken for a missing field.

    The trailer is, for a long key, ``tail`` and ``len(tail)`` (4 bytes, little-endian);
    then one flags byte (bit 0: every field value is a scalar, so decoding needs no deep
    freeze); then ``crc32`` of everything before it (4 bytes, little-endian). A CRC-32
    over data followed by its own little-endian CRC is a fixed constant, so a value is
    checked in one pass, and CBOR decoding reads the first item and stops at the trailer,
    so nothing is sliced on the way.

Why this keeps prefix semantics exact
    Every key, short or long, sorts under the first 480 bytes of its encoding, so for a
    prefix of at most 480 bytes the keys starting with it are exactly the LMDB keys
    starting with ``b"k" + b(prefix)``: one cursor range, deleted in one write transaction
    without looking at values. A longer prefix can only match long keys sharing its first
    480 bytes; that range is walked once (same transaction) and each entry's stored tail is
    compared with the rest of the prefix. ``get`` of a long key compares the stored tail, so a
    digest collision reads as a miss, never as another key's rows.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from typing import Any, Final

import cbor2

from ._core import rows_from_map, rows_from_table
from ._rows import (
    CBOR_FORMAT_VERSION,
    NO_SHARED_VALUES,
    CachedRows,
    _freeze,
    _thaw,
    dumps_payload,
)

__all__ = [
    "ABSENT",
    "DECODE_ERRORS",
    "DIGEST_BYTES",
    "HEAD_BYTES",
    "LAYOUT",
    "LAYOUT_KEY",
    "LAYOUT_VERSION",
    "LONG_LEN",
    "NS",
    "TABLE_VERSION",
    "Corrupt",
    "UnknownVersion",
    "check_value",
    "decode_payload",
    "encode_key",
    "encode_value",
    "frame_value",
    "stored_tail",
    "successor",
]


#: Bytes of the encoded key kept verbatim in the LMDB key; the rest is hashed.
HEAD_BYTES: Final = 480
#: Size of the blake2b digest of a long key's tail.
DIGEST_BYTES: Final = 16
#: Layout of the folder (not of the payload, which has its own version).
LAYOUT_VERSION: Final = 1

NS: Final = b"k"
LONG_LEN: Final = len(NS) + HEAD_BYTES + DIGEST_BYTES
LAYOUT_KEY: Final = b"layout"
LAYOUT: Final = cbor2.dumps({"layout": LAYOUT_VERSION, "head": HEAD_BYTES, "digest": DIGEST_BYTES})
#: Payload version of the table form (``CBOR_FORMAT_VERSION`` is the map form's).
TABLE_VERSION: Final = 2
#: A table cell of a field the record does not have.
ABSENT: Final = cbor2.undefined


def encode_key(key: str) -> tuple[bytes, bytes]:
    """The LMDB key for ``key`` and the tail kept in the value (``b""`` for a short key)."""
    b = key.encode("utf-8", "surrogatepass")
    if len(b) <= HEAD_BYTES:
        return NS + b, b""
    tail = b[HEAD_BYTES:]
    return NS + b[:HEAD_BYTES] + hashlib.blake2b(tail, digest_size=DIGEST_BYTES).digest(), tail


def frame_value(tail: bytes, payload: bytes, flat: bool = False) -> bytes:
    """The stored value: payload, (for a long key) tail and its length, flags, checksum."""
    flags = b"\x01" if flat else b"\x00"
    body = payload + flags if not tail else payload + tail + U32.pack(len(tail)) + flags
    return body + U32.pack(zlib.crc32(body))


FLAT: Final = 1
U32: Final = struct.Struct("<I")
# crc32(data + crc32(data) as 4 little-endian bytes) is this constant for any data, so a
# value is checked in one pass without slicing off its checksum.
CRC_RESIDUE: Final = 0x2144DF1C


class UnknownVersion(Exception):
    pass


class Corrupt(Exception):
    pass


def check_value(lkey: bytes, value: bytes) -> tuple[bytes, int]:
    """``(tail, flags)`` of a stored value; ``Corrupt`` if it fails its checksum."""
    size = len(value)
    if size < 6 or zlib.crc32(value) != CRC_RESIDUE:
        raise Corrupt("checksum mismatch")
    if len(lkey) != LONG_LEN:
        return b"", value[-5]
    end = size - 9
    start = end - U32.unpack_from(value, end)[0]
    if start < 1:
        raise Corrupt("tail longer than the value")
    return value[start:end], value[-5]


def successor(prefix: bytes) -> bytes:
    """The least byte string greater than every string that starts with ``prefix``."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        raise ValueError("a prefix of only 0xff bytes has no successor")
    return stripped[:-1] + bytes([stripped[-1] + 1])


def stored_tail(lkey: bytes, value: bytes) -> bytes | None:
    try:
        return check_value(lkey, value)[0]
    except (Corrupt, struct.error):
        return None


def decode_payload(payload: bytes, flags: int) -> CachedRows:
    """Rows from a checksummed payload; ``ValueError``/``TypeError`` if it is not rows.

    The checksum says these bytes are what ``put`` wrote for a valid ``CachedRows``, so
    the per-field checks of ``CachedRows.from_cbor`` are skipped (they would double the
    cost of a ``get``): the core's decoders check the shape and freeze nested values as
    the constructor does, which flat rows (flag bit 0) do not need.
    """
    # Reads the first CBOR item; the trailer follows it.
    data = cbor2.loads(payload, semantic_decoders=NO_SHARED_VALUES)
    slow = None if flags & FLAT else _freeze
    if type(data) is list and data:
        version = data[0]
        if version == TABLE_VERSION and type(version) is int:
            rows = rows_from_table(data, TABLE_VERSION, CachedRows, ABSENT, slow)
            if rows is None:
                raise ValueError("not a table of rows")
            return rows
        if version == CBOR_FORMAT_VERSION and type(version) is int:
            rows = rows_from_map(data, CBOR_FORMAT_VERSION, CachedRows, slow)
            if rows is None:
                raise ValueError("not [version, fetched_at, {row id: record}]")
            return rows
        raise UnknownVersion(version)
    raise ValueError("not a CBOR array that starts with a format version")


#: What decoding a stored value may raise when the value is not rows this code can read.
DECODE_ERRORS: Final = (
    UnknownVersion,
    Corrupt,
    struct.error,
    ValueError,
    TypeError,
    AttributeError,
    RecursionError,
    cbor2.CBORDecodeError,
)


def table_form(rows: CachedRows) -> list[Any] | None:
    """The table form of ``rows``, or ``None`` for a page without rows (the map form).

    The field list merges the records' fields, each new one placed right after the field
    before it in its record. Every row has one cell per field, ``cbor2.undefined`` for a
    field the record lacks (``CachedRows`` refuses it as a value). A record that lists two
    fields in another order than the field list is rare (one query gives one column order)
    and keeps its order in a fifth item, ``{row: [field index, ...]}``.
    """
    records = rows._rows
    if not records:
        return None
    cells: list[Any] = []
    append, extend = cells.append, cells.extend
    fields = None
    for row_id, record in records.items():
        if fields is None:
            fields = tuple(record)
        elif tuple(record) != fields:
            cells.clear()
            break
        append(row_id)
        extend(record.values())
    else:  # every record lists the same fields in the same order: the common case
        if not rows._flat:
            cells = [_thaw(cell) for cell in cells]
        return [TABLE_VERSION, rows._fetched_at, list(fields or ()), cells]
    names: list[str] = []
    index: dict[str, int] = {}
    reordered: list[int] = []
    for row, record in enumerate(records.values()):
        last = -1
        deviates = False
        for field in record:
            at = index.get(field)
            if at is None:
                # A new field goes right after the record's previous one, before any later
                # (at the end once the record has left the field list's order).
                at = len(names) if deviates else last + 1
                if at == len(names):
                    index[field] = at
                    names.append(field)
                else:
                    names.insert(at, field)
                    index = {name: i for i, name in enumerate(names)}
            elif at <= last:
                deviates = True
            last = at
        if deviates:
            reordered.append(row)
    for row_id, record in records.items():
        append(row_id)
        extend([record.get(field, ABSENT) for field in names])
    if not rows._flat:
        cells = [_thaw(cell) for cell in cells]  # read-only views back to what CBOR encodes
    table = [TABLE_VERSION, rows._fetched_at, names, cells]
    if reordered:
        items = list(records.values())
        table.append({row: [index[field] for field in items[row]] for row in reordered})
    return table


def encode_payload(rows: CachedRows) -> bytes:
    """The stored CBOR payload of ``rows``: the table form when it applies, else ``to_cbor``."""
    table = table_form(rows)
    return rows.to_cbor() if table is None else dumps_payload(table)


def encode_value(key: str, rows: CachedRows) -> tuple[bytes, bytes]:
    """The LMDB key and value that ``put(key, rows)`` stores."""
    lkey, tail = encode_key(key)
    try:
        payload = encode_payload(rows)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"rows for key {key!r} cannot be stored: {exc}") from exc
    return lkey, frame_value(tail, payload, rows._flat)
