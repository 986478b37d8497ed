"""``CachedRows``: the immutable value a cache stores, and its CBOR form."""

from __future__ import annotations

import gc
import io
import math
import sys
import time
from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)
from itertools import chain
from types import MappingProxyType
from typing import Any, Final, cast
from uuid import UUID

import cbor2

__all__ = ["CBOR_FORMAT_VERSION", "CachedRows"]

#: Version number written first in every CBOR payload; bump it when the layout changes.
CBOR_FORMAT_VERSION = 1

#: Nesting deeper than this inside a record is refused.
MAX_DEPTH = 64

Record = Mapping[str, Any]

_NONE: Final = type(None)
#: Field value types stored as they are (no freezing needed, nothing nested).
SCALAR_TYPES = frozenset({str, int, float, bool, bytes, _NONE})
#: Scalars that need no check at all (``str`` is checked for lone surrogates).
_PLAIN: Final = frozenset({int, float, bool, bytes, _NONE})
#: Types held as they are, after a check for ``Decimal``.
_LEAVES: Final = frozenset(
    {date, Decimal, UUID, IPv4Address, IPv6Address, IPv4Network, IPv6Network}
    | {IPv4Interface, IPv6Interface}
)
#: The usual types of lists, tuples, maps and sets given (their subclasses are too).
_CONTAINER_TYPES: Final = frozenset({list, tuple, dict, set, frozenset, MappingProxyType})
#: Types of the read-only copies of lists, tuples, maps and sets.
_FROZEN_CONTAINERS: Final = frozenset({tuple, MappingProxyType, frozenset})
#: What ``CachedRows`` accepts, for error messages (the README and the class docstring have
#: the table).
ACCEPTED: Final = (
    "str, int, float, bool, None, bytes (bytearray, memoryview), aware datetime, date, "
    "finite Decimal, UUID, ipaddress addresses/networks/interfaces, list/tuple, "
    "map, set/frozenset"
)


def _refuse_shared(*args: object) -> Any:
    raise cbor2.CBORDecodeError("shared values (CBOR tags 28 and 29) are not rows")


#: ``semantic_decoders`` for reading payloads: ``to_cbor`` never writes shared values, and
#: freezing a value shared along many paths copies it along each (exponential in its depth).
NO_SHARED_VALUES: Final = {28: _refuse_shared, 29: _refuse_shared}

#: Items (containers and scalars) that rows may be written out as, beyond which sharing is
#: checked: see ``_Memo``.
MAX_WRITTEN = 1 << 20
#: Marks a container being copied in the constructor's memo (met again: it is cyclic).
_BUSY: Final = object()


class _Memo:
    """The constructor's record of the containers it copied, so each is copied once.

    A container used in several places of the rows is held once, but written out (by
    ``to_cbor``, by ``LmdbCache``) once per place: ``a = [a, a]`` nested 60 levels is 60
    lists in memory and 2**60 when written. ``written`` counts the items the rows write out,
    ``refs`` the references the rows hold (the items of each distinct container, and each
    field); a tree writes as many items as it holds references.
    """

    __slots__ = ("copies", "refs", "written")

    def __init__(self) -> None:
        #: id of a container given -> (that container, its copy or _BUSY, items written).
        self.copies: dict[int, tuple[object, object, int]] = {}
        self.refs = 0
        self.written = 0

    def check(self) -> None:
        """``ValueError`` once sharing multiplies what the rows write out past the limit."""
        if self.written > MAX_WRITTEN and self.written > 16 * self.refs:
            raise ValueError(
                f"values shared along many paths would be written out as {self.written:,} "
                f"items for {self.refs:,} held: values must (nearly) form a tree"
            )

    def size(self, given: object, frozen: object) -> int:
        """Items ``frozen`` (the copy of ``given``) is written out as."""
        if type(frozen) in _FROZEN_CONTAINERS:
            return self.copies[id(given)][2]
        return 1


def _text(value: str) -> str:
    """``value`` if CBOR can hold it (UTF-8 text: no lone surrogates)."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(
                f"str {value!r:.60} has a lone surrogate, which CBOR text cannot hold"
            ) from None
    return value


def _aware(value: datetime) -> datetime:
    """``value`` as CBOR gives it back: a ``datetime`` whose ``tzinfo`` is a fixed offset."""
    offset = value.utcoffset()
    if offset is None:
        raise ValueError(
            "naive datetime (no tzinfo) cannot be stored: it names no instant; use an aware "
            "datetime, such as value.replace(tzinfo=timezone.utc)"
        )
    if offset % timedelta(minutes=1):
        raise ValueError(
            f"datetime with UTC offset {'-' if offset < timedelta(0) else '+'}{abs(offset)} "
            "cannot be stored: CBOR keeps whole minutes"
        )
    tz = value.tzinfo
    if (
        type(value) is datetime
        and not value.fold
        and type(tz) is timezone
        and len(tz.__getinitargs__()) == 1  # type: ignore[attr-defined]
    ):
        return value  # already as CBOR gives it back: an unnamed fixed offset
    return datetime(
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        timezone(offset) if offset else timezone.utc,
    )


def _decimal(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError(f"Decimal {value} cannot be stored: CBOR reads it back as a float")
    return value


def _convert(value: object) -> Any:
    """A value of a subclass of an accepted type as its accepted type, or ``TypeError``."""
    if isinstance(value, str):
        return _text(str.__str__(value))
    if isinstance(value, int):
        return int.__index__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(memoryview(value))
    if isinstance(value, datetime):
        return _aware(value)
    if isinstance(value, date):
        return date(value.year, value.month, value.day)
    if isinstance(value, Decimal):
        return _decimal(Decimal(value))
    if isinstance(value, UUID):
        return UUID(int=value.int)
    raise TypeError(f"{type(value).__name__} values cannot be stored (accepted: {ACCEPTED})")


def _freeze(value: object, depth: int, memo: _Memo | None = None) -> Any:
    """A field value as ``CachedRows`` holds it: checked, read-only, of an accepted type.

    Maps become read-only maps, lists and tuples tuples, sets frozensets; ``TypeError`` for a
    type outside the accepted ones, ``ValueError`` for a value CBOR cannot give back equal.
    ``memo`` is the constructor's (see ``_Memo``); the decoders pass none, as what cbor2
    decodes (shared values refused) is a tree.
    """
    kind = type(value)
    if kind is str:
        return _text(value)  # type: ignore[arg-type]
    if kind in _PLAIN:
        return value
    if kind in _LEAVES:
        return _decimal(value) if kind is Decimal else value  # type: ignore[arg-type]
    if kind is datetime:
        if value.tzinfo is timezone.utc and not value.fold:  # type: ignore[attr-defined]
            return value
        return _aware(value)  # type: ignore[arg-type]
    if kind in _CONTAINER_TYPES or isinstance(value, (list, tuple, Mapping, AbstractSet)):
        return _freeze_container(value, depth, memo)
    return _convert(value)


def _freeze_container(value: object, depth: int, memo: _Memo | None) -> Any:
    """The read-only copy of a list, tuple, map or set (see ``_freeze``).

    With a ``memo``, a container met again is not copied again (its copy is shared), and one
    met inside itself is cyclic.
    """
    if depth >= MAX_DEPTH:
        raise ValueError(f"field values nest deeper than {MAX_DEPTH} levels")
    if memo is not None:
        met = memo.copies.get(id(value))
        if met is not None:
            if met[1] is _BUSY:
                name = type(value).__name__
                raise ValueError(f"a {name} that contains itself (cyclic values cannot be stored)")
            return met[1]
        memo.copies[id(value)] = (value, _BUSY, 0)  # kept alive, so its id stays its own
    # Scalars are taken as they are, inline (most items are); a container's copy adds the
    # items it is written out as (``written``, known once it is copied).
    copies = None if memo is None else memo.copies
    plain, containers = _PLAIN, _FROZEN_CONTAINERS
    frozen: Any
    written = 1
    given = type(value)
    if given is dict or (given is not list and given is not tuple and isinstance(value, Mapping)):
        mapping = cast("Mapping[Any, Any]", value)
        items: dict[Any, Any] = {}
        for key, item in mapping.items():
            kind = type(key)
            if kind not in plain and (kind is not str or not key.isascii()):
                copy = _freeze(key, depth + 1, memo)
                if copies is not None and type(copy) in containers:
                    written += copies[id(key)][2] - 1
                key = copy
            kind = type(item)
            if kind not in plain and (kind is not str or not item.isascii()):
                copy = _freeze(item, depth + 1, memo)
                if copies is not None and type(copy) in containers:
                    written += copies[id(item)][2] - 1
                item = copy
            try:
                items[key] = item
            except TypeError:
                raise TypeError(
                    f"a map key of type {type(key).__name__} is not hashable once frozen"
                ) from None
        if len(items) != len(mapping):
            raise ValueError("two keys of a map are equal once frozen")
        frozen = MappingProxyType(items)
        refs = 2 * len(items)
    else:
        members: list[Any] = []
        append = members.append
        for item in value:  # type: ignore[attr-defined]
            kind = type(item)
            if kind in plain or (kind is str and item.isascii()):
                append(item)
                continue
            copy = _freeze(item, depth + 1, memo)
            if copies is not None and type(copy) in containers:
                written += copies[id(item)][2] - 1
            append(copy)
        if given is not list and given is not tuple and isinstance(value, AbstractSet):
            try:
                frozen = frozenset(members)
            except TypeError:
                raise TypeError("a set member is not hashable once frozen") from None
            if len(frozen) != len(members):
                raise ValueError("two members of a set are equal once frozen")
        else:
            frozen = tuple(members)
        refs = len(members)
    written += refs
    if memo is not None:
        memo.copies[id(value)] = (value, frozen, written)
        memo.refs += refs
    return frozen


#: Ids of objects the whole process shares (CPython keeps them for its lifetime), which
#: ``nbytes`` does not count: ``None``, ``True``, ``False`` and the small ints.
_SHARED_IDS: Final = frozenset(map(id, [None, True, False, *range(-5, 257)]))
_PROXY_BYTES: Final = sys.getsizeof(MappingProxyType({}))
#: Bytes of a read-only record of n fields, the dict behind it included (the constructor and
#: the decoders all build it by insertion, which gives this size): index n.
_record_bytes: list[int] = []


def _record_sizes(most: int) -> list[int]:
    """``_record_bytes``, covering index ``most`` (rebuilt whole, so threads never see a
    table in the middle of growing)."""
    global _record_bytes
    table = _record_bytes
    if len(table) <= most:
        grown: dict[str, None] = {}
        table = []
        for n in range(max(most + 1, 2 * len(_record_bytes))):
            if n > 0:
                grown[str(n)] = None
            table.append(_PROXY_BYTES + sys.getsizeof(grown))
        _record_bytes = table
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


def _key_text(text: object, what: str) -> str:
    """A row id or field name: a ``str`` CBOR can hold, as a plain ``str``."""
    if type(text) is not str:
        if not isinstance(text, str):
            raise TypeError(f"{what} must be str, not {type(text).__name__}")
        text = str.__str__(text)
    return _text(text) if not text.isascii() else text


def _freeze_rows(rows: object) -> tuple[Mapping[str, Record], bool]:
    """A read-only copy of ``rows``, and whether every field value is a scalar."""
    if not isinstance(rows, Mapping):
        raise TypeError(f"rows must be a mapping of row id to record, not {type(rows).__name__}")
    frozen: dict[str, Record] = {}
    flat = True
    memo: _Memo | None = None
    plain, text = _PLAIN, _text
    for row_id, record in rows.items():
        try:
            row_id = _key_text(row_id, "row ids")
        except ValueError as exc:
            raise ValueError(f"row id: {exc}") from None
        if not isinstance(record, Mapping):
            raise TypeError(
                f"record of row {row_id!r} must be a mapping, not {type(record).__name__}"
            )
        fields: dict[str, Any] = {}
        for field, value in record.items():
            if type(field) is not str or not field.isascii():
                try:
                    field = _key_text(field, f"field names in row {row_id!r}")
                except ValueError as exc:
                    raise ValueError(f"row {row_id!r}, field name: {exc}") from None
            kind = type(value)
            if kind in plain or (kind is str and value.isascii()):
                fields[field] = value
                continue
            try:
                if kind is str:
                    value = text(value)
                else:
                    if memo is None:
                        memo = _Memo()
                    given = value
                    value = _freeze(given, 1, memo)
                    memo.written += memo.size(given, value)
                    memo.refs += 1
                    memo.check()
            except TypeError as exc:
                raise TypeError(f"row {row_id!r}, field {field!r}: {exc}") from None
            except ValueError as exc:
                raise ValueError(f"row {row_id!r}, field {field!r}: {exc}") from None
            if flat and type(value) not in SCALAR_TYPES:
                flat = False
            fields[field] = value
        if row_id in frozen:
            raise ValueError(f"row id {row_id!r} is given twice")
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

    ``rows`` maps row id (``str``) to record (field name, ``str``, to value) and keeps the
    order it was given in; ``fetched_at`` is epoch seconds and defaults to now. The
    constructor copies what it is given into read-only form, so a stored value cannot
    change, and accepts exactly the values that CBOR (``to_cbor``, ``LmdbCache``) gives back
    equal, so every backend stores whatever it accepts and returns the same value:

    ==============================  =====================================================
    given                           held (and returned by every backend)
    ==============================  =====================================================
    ``str``                         ``str``; lone surrogates refused (``ValueError``)
    ``int`` (any size)              ``int``
    ``float`` (``nan``, ``inf``)    ``float``
    ``bool``, ``None``              as given
    ``bytes``, ``bytearray``,       ``bytes`` (a copy)
    ``memoryview``
    aware ``datetime``              ``datetime`` with a fixed-offset ``timezone`` (a zone
                                    such as ``ZoneInfo`` becomes its offset at that
                                    instant); naive, or an offset not in whole minutes,
                                    refused (``ValueError``)
    ``date``                        ``date``
    ``Decimal``                     ``Decimal``; NaN and infinities refused
                                    (``ValueError``: CBOR reads them back as floats)
    ``UUID``                        ``UUID``
    ``ipaddress`` addresses,        as given
    networks, interfaces
    ``list``, ``tuple``             ``tuple`` of held values
    any ``Mapping``                 read-only mapping (``MappingProxyType``) of held
                                    values; keys are held values that are hashable
    ``set``, ``frozenset``          ``frozenset`` of held values
    ==============================  =====================================================

    A subclass of ``str``, ``int``, ``float``, ``bytes``, ``datetime``, ``date``,
    ``Decimal`` or ``UUID`` (an ``IntEnum``, a ``numpy.float64``) is held as that type. Any
    other value (``time``, ``timedelta``, ``cbor2.undefined`` and other CBOR simple values,
    any object) raises ``TypeError``; the message names the row id, the field and the
    value's type, and nothing is kept. Values nest at most ``MAX_DEPTH`` levels; a value
    containing itself is refused. A list or map used in several places of the rows is
    copied once and shared, but written out once per place; rows that would be written out
    as more than ``MAX_WRITTEN`` items, 16 times more than they hold (``a = [a, a]``
    nested 20 levels), are refused (``ValueError``).

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
        to the same value. Never fails: the constructor accepts only values CBOR holds.
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
        """Decode what :meth:`to_cbor` wrote; ``ValueError`` for anything else, including
        values the constructor refuses (CBOR tags that decode to other types)."""
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
