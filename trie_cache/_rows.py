"""``CachedRows``: the immutable value a cache stores, and its CBOR form."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

import cbor2

__all__ = ["CBOR_FORMAT_VERSION", "CachedRows"]

#: Version number written first in every CBOR payload; bump it when the layout changes.
CBOR_FORMAT_VERSION = 1

Record = Mapping[str, Any]


def _freeze_rows(rows: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Record]:
    if not isinstance(rows, Mapping):
        raise TypeError(f"rows must be a mapping of row id to record, not {type(rows).__name__}")
    frozen: dict[str, Record] = {}
    for row_id, record in rows.items():
        if not isinstance(row_id, str):
            raise TypeError(f"row ids must be str, not {type(row_id).__name__}")
        if not isinstance(record, Mapping):
            raise TypeError(
                f"record of row {row_id!r} must be a mapping, not {type(record).__name__}"
            )
        for field in record:
            if not isinstance(field, str):
                raise TypeError(
                    f"field names in row {row_id!r} must be str, not {type(field).__name__}"
                )
        frozen[row_id] = MappingProxyType(dict(record))
    return MappingProxyType(frozen)


def _check_fetched_at(fetched_at: object) -> float:
    if isinstance(fetched_at, bool) or not isinstance(fetched_at, (int, float)):
        raise TypeError(f"fetched_at must be a float of epoch seconds, not {type(fetched_at).__name__}")
    value = float(fetched_at)
    if not math.isfinite(value):
        raise ValueError(f"fetched_at must be finite, not {value!r}")
    return value


class CachedRows:
    """Rows fetched together, in order, and the wall-clock time they were fetched.

    ``rows`` maps row id to record (field name to a CBOR-encodable value) and keeps the
    order it was given in; ``fetched_at`` is epoch seconds and defaults to now. Both are
    read-only views: the constructor copies the mappings it is given.
    """

    __slots__ = ("_fetched_at", "_rows")

    _rows: Mapping[str, Record]
    _fetched_at: float

    def __init__(
        self, rows: Mapping[str, Mapping[str, Any]], fetched_at: float | None = None
    ) -> None:
        frozen = _freeze_rows(rows)
        when = time.time() if fetched_at is None else _check_fetched_at(fetched_at)
        object.__setattr__(self, "_rows", frozen)
        object.__setattr__(self, "_fetched_at", when)

    @property
    def rows(self) -> Mapping[str, Record]:
        return self._rows

    @property
    def fetched_at(self) -> float:
        return self._fetched_at

    def age(self, now: float | None = None) -> float:
        """Seconds since the rows were fetched (``now`` defaults to ``time.time()``)."""
        return (time.time() if now is None else now) - self._fetched_at

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"CachedRows is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"CachedRows is immutable; cannot delete {name!r}")

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CachedRows):
            return NotImplemented
        if self._fetched_at != other._fetched_at or len(self._rows) != len(other._rows):
            return False
        # Row order is part of the value; field order inside a record is not.
        for (id_a, rec_a), (id_b, rec_b) in zip(self._rows.items(), other._rows.items()):
            if id_a != id_b or rec_a != rec_b:
                return False
        return True

    def __hash__(self) -> int:
        return hash((self._fetched_at, tuple(self._rows)))

    def __repr__(self) -> str:
        return f"CachedRows({len(self._rows)} rows, fetched_at={self._fetched_at!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (CachedRows, ({k: dict(v) for k, v in self._rows.items()}, self._fetched_at))

    def to_cbor(self) -> bytes:
        """Encode as CBOR: ``[version, fetched_at, {row_id: {field: value}}]``.

        Maps keep their order and floats are written so they decode to the same value.
        Raises ``cbor2.CBOREncodeError`` (a ``ValueError``) for values CBOR cannot hold.
        """
        payload = [
            CBOR_FORMAT_VERSION,
            self._fetched_at,
            {row_id: dict(record) for row_id, record in self._rows.items()},
        ]
        return cbor2.dumps(payload)

    @classmethod
    def from_cbor(cls, data: bytes) -> CachedRows:
        """Decode what :meth:`to_cbor` wrote; ``ValueError`` for anything else."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"from_cbor expects bytes, not {type(data).__name__}")
        payload = cbor2.loads(bytes(data))
        if not isinstance(payload, list) or len(payload) != 3:
            raise ValueError("not a CachedRows payload: expected a 3-item CBOR array")
        version, fetched_at, rows = payload
        if version != CBOR_FORMAT_VERSION or isinstance(version, bool):
            raise ValueError(f"unsupported CachedRows format version {version!r}")
        if isinstance(fetched_at, bool) or not isinstance(fetched_at, (int, float)):
            raise ValueError("not a CachedRows payload: fetched_at is not a number")
        if not isinstance(rows, dict):
            raise ValueError("not a CachedRows payload: rows is not a map")
        try:
            return cls(rows, float(fetched_at))
        except TypeError as exc:
            raise ValueError(f"not a CachedRows payload: {exc}") from exc
