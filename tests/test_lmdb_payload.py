"""The payload ``LmdbCache`` stores: the table form, the map form, and the core decoders.

A page with at least one row, only scalar values, and records that list their fields in one
common order is stored in the table form ``[2, fetched_at, [field, ...], [row_id, cell, ...]]``
(``cbor2.undefined`` for a field a record lacks); any other page as ``CachedRows.to_cbor()``. Both decoders of the table form and of flat map-form pages
live in the trie cores, so they are tested over both.
"""

from __future__ import annotations

import copy
import importlib
from typing import Any

import cbor2
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from trie_cache import CachedRows, _lmdb
from trie_cache._rows import CBOR_FORMAT_VERSION

TABLE = _lmdb.TABLE_VERSION
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64) + 1, max_value=2**64 - 1),
    st.floats(allow_nan=False),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=8),
    st.binary(max_size=8),
)
NAMES = st.text(max_size=6).filter(lambda s: not any("\ud800" <= c <= "\udfff" for c in s))


@st.composite
def tables(draw: st.DrawFn) -> CachedRows:
    """Pages the table form applies to: scalars only, fields in one common order (a record
    may lack some)."""
    fields = draw(st.lists(NAMES, unique=True, max_size=5))
    ids = draw(st.lists(NAMES, unique=True, min_size=1, max_size=8))
    sparse = draw(st.booleans())
    rows = {
        row_id: {f: draw(SCALARS) for f in fields if not sparse or draw(st.booleans())}
        for row_id in ids
    }
    return CachedRows(rows, draw(st.floats(allow_nan=False, allow_infinity=False)))


def stored_payload(rows: CachedRows) -> Any:
    """The decoded CBOR payload ``put`` would store for ``rows``."""
    _, value = _lmdb.encode_value("k", rows)
    return cbor2.loads(value)


def decoders(core_name: str) -> Any:
    return importlib.import_module(
        {"cython": "trie_cache._radix", "python": "trie_cache._radix_py"}[core_name]
    )


def assert_same_page(got: CachedRows | None, want: CachedRows) -> None:
    assert got == want
    assert got is not None
    assert type(got.fetched_at) is float
    assert list(got.rows) == list(want.rows)
    assert [list(r) for r in got.rows.values()] == [list(r) for r in want.rows.values()]
    for record in got.rows.values():
        with pytest.raises(TypeError):
            record["x"] = 1  # type: ignore[index]
    with pytest.raises(TypeError):
        got.rows["x"] = {}  # type: ignore[index]


# -- which form -------------------------------------------------------------------------


def test_uniform_flat_pages_are_stored_as_a_table() -> None:
    rows = CachedRows({"a": {"id": 1, "n": "x"}, "b": {"id": 2, "n": None}}, 5.0)
    assert stored_payload(rows) == [TABLE, 5.0, ["id", "n"], ["a", 1, "x", "b", 2, None]]


U = cbor2.undefined


@pytest.mark.parametrize(
    ("records", "names", "cells"),
    [
        pytest.param(
            {"a": {"x": 1}, "b": {"x": 2, "y": 3}}, ["x", "y"], ["a", 1, U, "b", 2, 3], id="later"
        ),
        pytest.param(
            {"a": {"x": 1, "y": 2}, "b": {"y": 3}}, ["x", "y"], ["a", 1, 2, "b", U, 3], id="first"
        ),
        # Regression: a first record with no fields once made the page count as dense.
        pytest.param({"a": {}, "b": {"x": 1}}, ["x"], ["a", U, "b", 1], id="empty-first"),
        pytest.param(
            {"a": {"x": 1}, "b": {"y": 2}}, ["y", "x"], ["a", U, 1, "b", 2, U], id="apart"
        ),
        pytest.param({"a": {}, "b": {}}, [], ["a", "b"], id="no-fields"),
        pytest.param(
            {"a": {"y": 1}, "b": {"x": 2, "y": 3}}, ["x", "y"], ["a", U, 1, "b", 2, 3], id="before"
        ),
        pytest.param(
            {"a": {"x": 1, "z": 2}, "b": {"x": 3, "y": 4, "z": 5}},
            ["x", "y", "z"],
            ["a", 1, U, 2, "b", 3, 4, 5],
            id="between",
        ),
    ],
)
def test_records_lacking_fields_leave_cells_undefined(
    records: dict[str, dict[str, Any]], names: list[str], cells: list[Any]
) -> None:
    rows = CachedRows(records, 1.0)
    assert stored_payload(rows) == [TABLE, 1.0, names, cells]
    _, value = _lmdb.encode_value("k", rows)
    assert_same_page(_lmdb._decode_payload(value, value[-5]), rows)


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param(CachedRows({}, 1.0), id="no-rows"),
        pytest.param(CachedRows({"a": {"x": 1, "y": 2}, "b": {"y": 1, "x": 2}}, 1.0), id="order"),
        pytest.param(
            CachedRows({"a": {"x": 1, "y": 2}, "b": {"z": 1, "y": 2, "x": 3}}, 1.0),
            id="order-with-a-new-field",
        ),
        pytest.param(CachedRows({"a": {"x": [1]}, "b": {"x": 1}}, 1.0), id="nested"),
        pytest.param(CachedRows({"a": {"x": U}}, 1.0), id="undefined-value"),
    ],
)
def test_other_pages_are_stored_as_to_cbor(rows: CachedRows) -> None:
    assert stored_payload(rows) == cbor2.loads(rows.to_cbor())
    assert stored_payload(rows)[0] == CBOR_FORMAT_VERSION
    _, value = _lmdb.encode_value("k", rows)
    assert _lmdb._decode_payload(value, value[-5]) == rows


@given(tables())
def test_a_page_with_one_field_order_round_trips_through_the_stored_value(
    rows: CachedRows,
) -> None:
    lkey, value = _lmdb.encode_value("k", rows)
    records = list(rows.rows.values())
    if all(len(r) <= len(records[0]) for r in records):
        # The first record has every field: the merge cannot go wrong.
        assert stored_payload(rows)[0] == TABLE
    _, flags = _lmdb._check_value(lkey, value)
    assert_same_page(_lmdb._decode_payload(value, flags), rows)


# -- the core decoders ------------------------------------------------------------------


@given(page=tables())
def test_rows_from_table_builds_the_page(core_name: str, page: CachedRows) -> None:
    payload = stored_payload(page)
    assume(payload[0] == TABLE)
    got = decoders(core_name).rows_from_table(payload, TABLE, CachedRows, U)
    assert_same_page(got, page)
    assert got._flat
    # Every record shares the field name objects of the one decoded list.
    name_objects = {id(name) for record in got.rows.values() for name in record}
    assert name_objects <= {id(name) for name in payload[2]}


@given(page=tables())
def test_flat_rows_from_payload_builds_the_page(core_name: str, page: CachedRows) -> None:
    payload = cbor2.loads(page.to_cbor())
    got = decoders(core_name).flat_rows_from_payload(payload, CBOR_FORMAT_VERSION, CachedRows)
    assert_same_page(got, page)
    assert got._flat


BAD_TABLES = {
    "not-a-list": {"a": 1},
    "three-items": [TABLE, 1.0, ["f"]],
    "five-items": [TABLE, 1.0, ["f"], ["r", 1], None],
    "other-version": [TABLE + 1, 1.0, ["f"], ["r", 1]],
    "version-true": [True, 1.0, [], ["r"]],
    "fetched-at-int": [TABLE, 1, ["f"], ["r", 1]],
    "names-not-a-list": [TABLE, 1.0, "f", ["r", 1]],
    "name-not-str": [TABLE, 1.0, [1], ["r", 1]],
    "cells-not-a-list": [TABLE, 1.0, ["f"], {"r": 1}],
    "no-rows": [TABLE, 1.0, ["f"], []],
    "ragged-cells": [TABLE, 1.0, ["f", "g"], ["r", 1, 2, "s", 1]],
    "row-id-not-str": [TABLE, 1.0, ["f"], [1, 1]],
    "duplicate-row-ids": [TABLE, 1.0, ["f"], ["r", 1, "r", 2]],
    "field-twice-in-a-record": [TABLE, 1.0, ["f", "f"], ["r", 1, 2]],
}


@pytest.mark.parametrize("payload", BAD_TABLES.values(), ids=BAD_TABLES.keys())
def test_rows_from_table_refuses_other_shapes(core_name: str, payload: Any) -> None:
    before = copy.deepcopy(payload)
    assert decoders(core_name).rows_from_table(payload, TABLE, CachedRows, U) is None
    assert payload == before


BAD_FLAT = {
    "not-a-list": "rows",
    "two-items": [CBOR_FORMAT_VERSION, 1.0],
    "four-items": [CBOR_FORMAT_VERSION, 1.0, {}, None],
    "other-version": [CBOR_FORMAT_VERSION + 5, 1.0, {"r": {"f": 1}}],
    "fetched-at-int": [CBOR_FORMAT_VERSION, 1, {"r": {"f": 1}}],
    "rows-not-a-map": [CBOR_FORMAT_VERSION, 1.0, [["r", 1]]],
    "last-record-not-a-map": [CBOR_FORMAT_VERSION, 1.0, {"r": {"f": 1}, "s": [1]}],
}


@pytest.mark.parametrize("payload", BAD_FLAT.values(), ids=BAD_FLAT.keys())
def test_flat_rows_from_payload_refuses_other_shapes_and_changes_nothing(
    core_name: str, payload: Any
) -> None:
    before = copy.deepcopy(payload)
    got = decoders(core_name).flat_rows_from_payload(payload, CBOR_FORMAT_VERSION, CachedRows)
    assert got is None
    assert payload == before
    if isinstance(payload, list) and len(payload) == 3 and isinstance(payload[2], dict):
        # No record was wrapped read-only before the bad one was found.
        assert [type(r) for r in payload[2].values()] == [type(r) for r in before[2].values()]
