"""``CachedRows``: the immutable value a cache stores, and its CBOR form."""

from __future__ import annotations

import gc
import io
import math
import sys
import time
from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from itertools import chain
from types import MappingProxyType
from typing import Any, Final, cast

import cbor2

__all__ = ["CBOR_FORMAT_VERSION", "CachedRows"]

#: Version number written first in every CBOR payload; bump it when the layout changes.
CBOR_FORMAT_VERSION = 1

#: Nesting deeper than this inside a record is refused (it also catches cyclic values).
MAX_DEPTH = 64

Record = Mapping[str, Any]

#: Field value types stored as they are (no freezing needed, nothing nested).
SCALAR_TYPES = frozenset({str, int, float, bool, bytes, type(None)})


def _refuse_shared(*args: object) -> Any:
    raise cbor2.CBORDecodeError("shared values (CBOR tags 28 and 29) are not rows")


#: ``semantic_decoders`` for reading payloads: ``to_cbor`` never writes shared values, and
#: freezing a value shared along many paths copies it along each (exponential in its depth).
NO_SHARED_VALUES: Final = {28: _refuse_shared, 29: _refuse_shared}


def _freeze(value: object, depth: int) -> Any:
    """A read-only copy of a field value: maps become read-only maps, arrays tuples."""
    if isinstance(value, (str, bytes, int, float)) or value is None:
        return value
    if depth >= MAX_DEPTH:
        raise ValueError(f"field values nest deeper than {MAX_DEPTH} levels (or are cyclic)")
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v, depth + 1) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple([_freeze(v, depth + 1) for v in value])
    if isinstance(value, bytearray):
        return bytes(value)
    if isinstance(value, AbstractSet):
        return frozenset(value)
    return value


#: Ids of objects the whole process shares (CPython keeps them for its lifetime), which
#: ``nbytes`` does not count: ``None``, ``True``, ``False`` and the small ints.
_SHARED_IDS: Final = frozenset(map(id, [None, True, False, *range(-5, 257)]))
_PROXY_BYTES: Final = sys.getsizeof(MappingProxyType({}))
#: Bytes of a read-only record of n fields, the dict behind it included (the constructor and
#: the decoders all build it by insertion, which gives this size): index n.
_record_bytes: list[int] = []


def _record_sizes(most: int) -> list[int]:
    """``_record_bytes``, extended to index ``most``."""
    table = _record_bytes
    if len(table) <= most:
        grown: dict[str, None] = {}
        for n in range(most + 1):
            if n > 0:
                grown[str(n)] = None
            if n >= len(table):
                table.append(_PROXY_BYTES + sys.getsizeof(grown))
    return table


def _owned(value: object, seen: set[int], names: set[str]) -> int:
    """Bytes of ``value`` (not counted yet) and of what it contains; ``seen`` holds the ids
    counted, ``names`` the ``str`` map keys counted (once per text)."""
    if isinstance(value, MappingProxyType):
        size = sys.getsizeof(value) + sum(map(sys.getsizeof, gc.get_referents(value)))
        for key, item in value.items():
            if type(key) is str:
                if key not in names:
                    names.add(key)
                    size += sys.getsizeof(key)
            elif id(key) not in seen and id(key) not in _SHARED_IDS:
                seen.add(id(key))
                size += _owned(key, seen, names)
            if id(item) not in seen and id(item) not in _SHARED_IDS:
                seen.add(id(item))
                size += _owned(item, seen, names)
        return size
    size = sys.getsizeof(value)
    if isinstance(value, (tuple, frozenset)):
        for item in value:
            if id(item) not in seen and id(item) not in _SHARED_IDS:
                seen.add(id(item))
                size += _owned(item, seen, names)
    return size


def _rows_nbytes(rows: CachedRows) -> int:
    """The estimate ``CachedRows.nbytes`` documents."""
    records = rows._rows
    size = sys.getsizeof(rows) + sys.getsizeof(records)
    size += sum(map(sys.getsizeof, gc.get_referents(records)))
    if not records:
        return size
    size += sum(map(sys.getsizeof, records))
    widths = list(map(len, records.values()))
    size += sum(map(_record_sizes(max(widths)).__getitem__, widths))
    names = set(chain.from_iterable(records.values()))
    size += sum(map(sys.getsizeof, names))
    values = list(chain.from_iterable([record.values() for record in records.values()]))
    distinct = dict(zip(map(id, values), values))
    for shared in _SHARED_IDS & distinct.keys():
        del distinct[shared]
    if rows._flat:
        return size + sum(map(sys.getsizeof, distinct.values()))
    seen = set(distinct)
    for value in distinct.values():
        size += _owned(value, seen, names)
    return size


def _thaw(value: object) -> Any:
    """The plain ``dict``/``list`` form of a frozen value, as CBOR encodes it."""
    if isinstance(value, MappingProxyType):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


def _freeze_rows(rows: object) -> tuple[Mapping[str, Record], bool]:
    """A read-only copy of ``rows``, and whether every field value is a scalar."""
    if not isinstance(rows, Mapping):
        raise TypeError(f"rows must be a mapping of row id to record, not {type(rows).__name__}")
    frozen: dict[str, Record] = {}
    flat = True
    for row_id, record in rows.items():
        if not isinstance(row_id, str):
            raise TypeError(f"row ids must be str, not {type(row_id).__name__}")
        if not isinstance(record, Mapping):
            raise TypeError(
                f"record of row {row_id!r} must be a mapping, not {type(record).__name__}"
            )
        fields: dict[str, Any] = {}
        for field, value in record.items():
            if not isinstance(field, str):
                raise TypeError(
                    f"field names in row {row_id!r} must be str, not {type(field).__name__}"
                )
            fields[field] = _freeze(value, 1)
            if flat and type(value) not in SCALAR_TYPES:
                flat = False
        frozen[row_id] = MappingProxyType(fields)
    return MappingProxyType(frozen), flat


def _check_fetched_at(fetched_at: object) -> float:
    if isinstance(fetched_at, bool) or not isinstance(fetched_at, (int, float)):
        raise TypeError(
            f"fetched_at must be a float of epoch seconds, not {type(fetched_at).__name__}"
        )
    try:
        value = float(fetched_at)
    except OverflowError:
        value = math.inf
    if not math.isfinite(value):
        raise ValueError(f"fetched_at must be finite, not {fetched_at!r}")
    return value


class CachedRows:
    """Rows fetched together, in order, and the wall-clock time they were fetched.

    ``rows`` maps row id (``str``) to record (field name to a CBOR-encodable value) and
    keeps the order it was given in; ``fetched_at`` is epoch seconds and defaults to now.
    The constructor copies what it is given into read-only form: records and nested maps
    become read-only mappings, nested lists become tuples, so a stored value cannot change.

    Two instances are equal when their ``fetched_at``, row ids in order, and records are
    equal. An instance is always true, even with no rows, so ``if rows:`` tests for a hit.
    """

    __slots__ = ("_fetched_at", "_flat", "_nbytes", "_rows")

    _rows: Mapping[str, Record]
    _fetched_at: float
    _flat: bool  # every field value is a scalar: CBOR encoding needs no deep copy
    _nbytes: int  # set on the first read of ``nbytes``

    def __init__(
        self, rows: Mapping[str, Mapping[str, Any]], fetched_at: float | None = None
    ) -> None:
        frozen, flat = _freeze_rows(rows)
        when = time.time() if fetched_at is None else _check_fetched_at(fetched_at)
        object.__setattr__(self, "_rows", frozen)
        object.__setattr__(self, "_fetched_at", when)
        object.__setattr__(self, "_flat", flat)

    @property
    def rows(self) -> Mapping[str, Record]:
        """Row id to record, in the order given; read-only."""
        return self._rows

    @property
    def fetched_at(self) -> float:
        """When the rows were fetched, in epoch seconds."""
        return self._fetched_at

    @property
    def nbytes(self) -> int:
        """An estimate, in bytes, of the memory these rows hold in this process.

        Counted, with ``sys.getsizeof``: this object; the read-only mapping of rows and the
        dict behind it; each row id; each record's read-only mapping and dict; each field
        name, and each ``str`` key of a nested map, once per distinct text (the records of
        one query share their field names, and rows read back from ``LmdbCache`` share
        them); every field value, with what it contains (nested read-only maps and their
        dicts, tuples, frozensets, their items). Any other object held in several places is
        counted once (by identity). Not counted: ``None``, ``True``, ``False`` and ints from -5 to
        256, which the whole process shares; what a value refers to without owning it
        (a ``datetime``'s ``tzinfo``); the cache key, which is not part of the rows.

        Rows of the same content have the same ``nbytes`` whether they come from the
        constructor, :meth:`from_cbor` or an ``LmdbCache`` read, with either core, unless
        the constructor was given one object in several places (then it holds, and counts,
        that object once). Computed on first read, then kept; the constructor and reads
        pay nothing for it.
        """
        try:
            return self._nbytes
        except AttributeError:
            size = _rows_nbytes(self)
            object.__setattr__(self, "_nbytes", size)
            return size

    def age(self, now: float | None = None) -> float:
        """Seconds since the rows were fetched (``now`` defaults to ``time.time()``)."""
        return (time.time() if now is None else now) - self._fetched_at

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"CachedRows is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"CachedRows is immutable; cannot delete {name!r}")

    def __len__(self) -> int:
        return len(self._rows)

    def __bool__(self) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CachedRows):
            return NotImplemented
        if self._fetched_at != other._fetched_at or len(self._rows) != len(other._rows):
            return False
        # Row order is part of the value; field order inside a record is not (as for dicts).
        for (id_a, rec_a), (id_b, rec_b) in zip(self._rows.items(), other._rows.items()):
            if id_a != id_b or rec_a != rec_b:
                return False
        return True

    def __hash__(self) -> int:
        return hash((self._fetched_at, tuple(self._rows)))

    def __repr__(self) -> str:
        return f"CachedRows({len(self._rows)} rows, fetched_at={self._fetched_at!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (CachedRows, (_thaw(self._rows), self._fetched_at))

    def to_cbor(self) -> bytes:
        """Encode as CBOR: ``[version, fetched_at, {row_id: {field: value}}]``.

        Maps keep their order; ``fetched_at`` is written as a 64-bit float, so it decodes
        to the same value. ``TypeError`` names a value type CBOR cannot hold;
        ``ValueError`` for a value it cannot hold (text with lone surrogates).
        """
        if self._flat:
            # Each record is a MappingProxyType; its copy() is a fast dict copy.
            records = cast("Mapping[str, MappingProxyType[str, Any]]", self._rows)
            rows: Any = {row_id: record.copy() for row_id, record in records.items()}
        else:
            rows = _thaw(self._rows)
        return dumps_payload([CBOR_FORMAT_VERSION, self._fetched_at, rows])

    @classmethod
    def from_cbor(cls, data: bytes | bytearray | memoryview) -> CachedRows:
        """Decode what :meth:`to_cbor` wrote; ``ValueError`` for anything else."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"from_cbor expects bytes, not {type(data).__name__}")
        stream = io.BytesIO(data)
        try:
            payload = cbor2.CBORDecoder(stream, semantic_decoders=NO_SHARED_VALUES).decode()
        except (cbor2.CBORDecodeError, RecursionError) as exc:
            cause = f" ({exc.__cause__})" if exc.__cause__ is not None else ""
            raise ValueError(f"not a CachedRows payload: {exc}{cause}") from exc
        if stream.tell() != len(stream.getbuffer()):
            raise ValueError("not a CachedRows payload: data follows the CBOR item")
        return cls._from_payload(payload)

    @classmethod
    def _from_payload(cls, payload: object) -> CachedRows:
        if not isinstance(payload, list) or len(payload) != 3:
            return _bad_payload("expected a 3-item CBOR array")
        version, fetched_at, rows = payload
        if isinstance(version, bool) or version != CBOR_FORMAT_VERSION:
            return _bad_payload(f"unsupported format version {version!r}")
        if not isinstance(fetched_at, float):
            return _bad_payload(f"fetched_at is {type(fetched_at).__name__}, not float")
        if not isinstance(rows, dict):
            return _bad_payload(f"rows is {type(rows).__name__}, not a map")
        try:
            return cls(rows, fetched_at)
        except (TypeError, ValueError) as exc:
            return _bad_payload(str(exc))


def dumps_payload(payload: object) -> bytes:
    """CBOR of ``payload``; ``TypeError`` names a type CBOR cannot hold, ``ValueError`` a value."""
    try:
        return cbor2.dumps(payload)
    except (cbor2.CBOREncodeValueError, UnicodeEncodeError) as exc:
        raise ValueError(f"CachedRows cannot be encoded as CBOR: {exc}") from exc
    except cbor2.CBOREncodeError as exc:
        raise TypeError(f"CachedRows cannot be encoded as CBOR: {exc}") from exc


def _bad_payload(reason: str) -> CachedRows:
    raise ValueError(f"not a CachedRows payload: {reason}")
