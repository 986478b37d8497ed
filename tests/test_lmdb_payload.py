"""The payload ``LmdbCache`` stores, and the core decoders that read it.

A page with rows is stored in the table form
``[2, fetched_at, [field, ...], [row_id, cell, ...], {row: [field index, ...]}?]``: field
names once per page, ``cbor2.undefined`` in the cell of a field a record lacks, and the
optional last item for records whose fields come in another order. A page without rows is
stored as ``CachedRows.to_cbor()`` (the map form). Both decoders live in the trie cores, so
they are tested over both.
"""

from __future__ import annotations

import gc
import importlib
import math
import tracemalloc
from types import MappingProxyType
from typing import Any

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trie_cache import CachedRows, _lmdb_format
from trie_cache._rows import CBOR_FORMAT_VERSION, MAX_DEPTH, _freeze

TABLE = _lmdb_format.TABLE_VERSION
U = cbor2.undefined
TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=6)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64) + 1, max_value=2**64 - 1),
    st.floats(allow_nan=False),
    TEXT,
    st.binary(max_size=8),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(TEXT, inner, max_size=3),
        st.frozensets(st.integers(), max_size=3),
    ),
    max_leaves=8,
)


@st.composite
def pages(draw: st.DrawFn, values: st.SearchStrategy[Any] = VALUES) -> CachedRows:
    """Pages with rows: records drawn from a few fields, some of them shuffled or sparse."""
    fields = draw(st.lists(TEXT, unique=True, max_size=5))
    ids = draw(st.lists(TEXT, unique=True, min_size=1, max_size=6))
    rows = {}
    for row_id in ids:
        chosen = draw(st.lists(st.sampled_from(fields), unique=True)) if fields else []
        if draw(st.booleans()):
            chosen = [f for f in fields if f in chosen]  # the common order
        rows[row_id] = {f: draw(values) for f in chosen}
    return CachedRows(rows, draw(st.floats(allow_nan=False, allow_infinity=False)))


def stored_payload(rows: CachedRows) -> Any:
    """The decoded CBOR payload ``put`` would store for ``rows``."""
    _, value = _lmdb_format.encode_value("k", rows)
    return cbor2.loads(value)


def decode(rows: CachedRows) -> CachedRows:
    """What ``get`` returns for ``rows`` after ``put``, from the stored value."""
    lkey, value = _lmdb_format.encode_value("k", rows)
    _, flags = _lmdb_format.check_value(lkey, value)
    return _lmdb_format.decode_payload(value, flags)


def decoders(core_name: str) -> Any:
    return importlib.import_module(
        {"cython": "trie_cache._rowcodec", "python": "trie_cache._rowcodec_py"}[core_name]
    )


def assert_read_only(value: Any) -> None:
    """No list or dict anywhere inside ``value``: it cannot change."""
    assert not isinstance(value, (list, dict, set, bytearray))
    if isinstance(value, MappingProxyType):
        for v in value.values():
            assert_read_only(v)
    elif isinstance(value, (tuple, frozenset)):
        for v in value:
            assert_read_only(v)


def ordered(value: Any) -> Any:
    """``value`` with the order of every nested map made part of what ``==`` compares."""
    if isinstance(value, MappingProxyType):
        return [(k, ordered(v)) for k, v in value.items()]
    if isinstance(value, tuple):
        return tuple(ordered(v) for v in value)
    return value


def assert_same_page(got: CachedRows | None, want: CachedRows) -> None:
    assert got == want
    assert got is not None
    assert type(got.fetched_at) is float
    assert math.copysign(1.0, got.fetched_at) == math.copysign(1.0, want.fetched_at)
    assert got._flat == want._flat
    assert list(got.rows) == list(want.rows)
    assert [list(r) for r in got.rows.values()] == [list(r) for r in want.rows.values()]
    assert isinstance(got.rows, MappingProxyType)
    for record in got.rows.values():
        assert isinstance(record, MappingProxyType)
        for value in record.values():
            assert_read_only(value)
    assert ordered(got.rows) == ordered(want.rows)


# -- which form, and the layout --------------------------------------------------------


def test_uniform_flat_pages_are_stored_as_a_plain_table() -> None:
    rows = CachedRows({"a": {"id": 1, "n": "x"}, "b": {"id": 2, "n": None}}, 5.0)
    assert stored_payload(rows) == [TABLE, 5.0, ["id", "n"], ["a", 1, "x", "b", 2, None]]


@pytest.mark.parametrize(
    ("records", "table"),
    [
        pytest.param(
            {"a": {"x": 1}, "b": {"x": 2, "y": 3}}, [["x", "y"], ["a", 1, U, "b", 2, 3]], id="later"
        ),
        pytest.param(
            {"a": {"x": 1, "y": 2}, "b": {"y": 3}}, [["x", "y"], ["a", 1, 2, "b", U, 3]], id="first"
        ),
        # Regression: a first record with no fields once made the page count as complete.
        pytest.param({"a": {}, "b": {"x": 1}}, [["x"], ["a", U, "b", 1]], id="empty-first"),
        pytest.param(
            {"a": {"x": 1}, "b": {"y": 2}}, [["y", "x"], ["a", U, 1, "b", 2, U]], id="apart"
        ),
        pytest.param({"a": {}, "b": {}}, [[], ["a", "b"]], id="no-fields"),
        pytest.param(
            {"a": {"y": 1}, "b": {"x": 2, "y": 3}},
            [["x", "y"], ["a", U, 1, "b", 2, 3]],
            id="before",
        ),
        pytest.param(
            {"a": {"x": 1, "z": 2}, "b": {"x": 3, "y": 4, "z": 5}},
            [["x", "y", "z"], ["a", 1, U, 2, "b", 3, 4, 5]],
            id="between",
        ),
        pytest.param(
            {"a": {"x": 1, "y": 2}, "b": {"y": 3, "x": 4}},
            [["x", "y"], ["a", 1, 2, "b", 4, 3], {1: [1, 0]}],
            id="reordered",
        ),
        pytest.param(
            {"a": {"x": 1, "y": 2}, "b": {"y": 3, "x": 4, "z": 5}, "c": {"x": 6}},
            [["x", "y", "z"], ["a", 1, 2, U, "b", 4, 3, 5, "c", 6, U, U], {1: [1, 0, 2]}],
            id="reordered-with-a-new-field",
        ),
        pytest.param(
            {"a": {"x": [1, {"k": b"v"}]}, "b": {"x": {"m": [2]}}},
            [["x"], ["a", [1, {"k": b"v"}], "b", {"m": [2]}]],
            id="nested",
        ),
    ],
)
def test_table_layout(records: dict[str, dict[str, Any]], table: list[Any]) -> None:
    rows = CachedRows(records, 1.0)
    assert stored_payload(rows) == [TABLE, 1.0, *table]
    assert_same_page(decode(rows), rows)


def test_a_page_without_rows_is_stored_as_to_cbor() -> None:
    rows = CachedRows({}, 1.0)
    assert stored_payload(rows) == [CBOR_FORMAT_VERSION, 1.0, {}]
    assert_same_page(decode(rows), rows)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(U, id="undefined"),
        # Regression: simple value 23 encodes as undefined, the cell of a missing field, so
        # LmdbCache stored the page without that field.
        pytest.param(cbor2.CBORSimpleValue(23), id="simple-23"),
        pytest.param(cbor2.CBORSimpleValue(0), id="simple-0"),
        pytest.param([1, U], id="undefined-nested"),
    ],
)
def test_no_value_can_read_as_a_missing_field(value: Any) -> None:
    with pytest.raises(TypeError, match=r"row 'b', field 'y': .*(UndefinedType|CBORSimpleValue)"):
        CachedRows({"a": {"x": 1, "y": 2}, "b": {"x": 2, "y": value}}, 1.0)


@given(pages())
def test_any_page_round_trips_through_the_stored_value(rows: CachedRows) -> None:
    assert stored_payload(rows)[0] == TABLE
    assert_same_page(decode(rows), rows)


@given(pages(values=SCALARS))
def test_any_flat_page_round_trips_through_the_stored_value(rows: CachedRows) -> None:
    assert rows._flat
    assert_same_page(decode(rows), rows)


def test_map_form_written_by_to_cbor_is_read() -> None:
    rows = CachedRows({"a": {"x": [1, {"k": 2}], "y": "s"}, "b": {"y": None}}, 3.0)
    value = _lmdb_format.frame_value(b"", rows.to_cbor(), rows._flat)
    assert_same_page(_lmdb_format.decode_payload(value, value[-5]), rows)


# -- the core decoders ------------------------------------------------------------------


@given(page=pages())
def test_rows_from_table_builds_the_page(core_name: str, page: CachedRows) -> None:
    payload = stored_payload(page)
    slow = None if page._flat else _freeze
    got = decoders(core_name).rows_from_table(payload, TABLE, CachedRows, U, slow)
    assert_same_page(got, page)
    # Every record shares the field name objects of the one decoded list.
    name_objects = {id(name) for record in got.rows.values() for name in record}
    assert name_objects <= {id(name) for name in payload[2]}


@given(page=pages())
def test_rows_from_map_builds_the_page(core_name: str, page: CachedRows) -> None:
    payload = cbor2.loads(page.to_cbor())
    slow = None if page._flat else _freeze
    got = decoders(core_name).rows_from_map(payload, CBOR_FORMAT_VERSION, CachedRows, slow)
    assert_same_page(got, page)


def test_decoders_leave_other_types_to_the_slow_freeze(core_name: str) -> None:
    # The compiled core freezes lists and dicts itself and hands the set to slow; the
    # twin hands each non-scalar field value to it.
    seen: list[Any] = []

    def slow(value: Any, depth: int) -> Any:
        seen.append((value, depth))
        return _freeze(value, depth)

    payload = [TABLE, 1.0, ["f"], ["r", [{"s": {1, 2}}]]]
    got = decoders(core_name).rows_from_table(payload, TABLE, CachedRows, U, slow)
    assert got is not None
    assert got.rows["r"]["f"] == ({"s": frozenset({1, 2})},)
    assert seen[-1] in [({1, 2}, 3), ([{"s": {1, 2}}], 1)]


@pytest.mark.parametrize("form", ["table", "map"])
def test_decoders_refuse_nesting_deeper_than_the_constructor_allows(
    core_name: str, form: str
) -> None:
    deep: Any = 1
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    core = decoders(core_name)
    with pytest.raises(ValueError, match="deeper"):
        CachedRows({"r": {"f": deep}})
    with pytest.raises(ValueError, match="deeper"):
        if form == "table":
            core.rows_from_table([TABLE, 1.0, ["f"], ["r", deep]], TABLE, CachedRows, U, _freeze)
        else:
            core.rows_from_map([1, 1.0, {"r": {"f": deep}}], 1, CachedRows, _freeze)


BAD_TABLES = {
    "not-a-list": {"a": 1},
    "three-items": [TABLE, 1.0, ["f"]],
    "six-items": [TABLE, 1.0, ["f"], ["r", 1], {}, None],
    "other-version": [TABLE + 1, 1.0, ["f"], ["r", 1]],
    "version-true": [True, 1.0, [], ["r"]],
    "fetched-at-int": [TABLE, 1, ["f"], ["r", 1]],
    "fetched-at-nan": [TABLE, math.nan, ["f"], ["r", 1]],
    "fetched-at-inf": [TABLE, -math.inf, ["f"], ["r", 1]],
    "names-not-a-list": [TABLE, 1.0, "f", ["r", 1]],
    "name-not-str": [TABLE, 1.0, [1], ["r", 1]],
    "cells-not-a-list": [TABLE, 1.0, ["f"], {"r": 1}],
    "no-rows": [TABLE, 1.0, ["f"], []],
    "ragged-cells": [TABLE, 1.0, ["f", "g"], ["r", 1, 2, "s", 1]],
    "row-id-not-str": [TABLE, 1.0, ["f"], [1, 1]],
    "repeated-row-id": [TABLE, 1.0, ["f"], ["r", 1, "r", 2]],
    "field-twice-in-a-record": [TABLE, 1.0, ["f", "f"], ["r", 1, 2]],
    "orders-not-a-map": [TABLE, 1.0, ["f", "g"], ["r", 1, 2], [[1, 0]]],
    "order-not-a-list": [TABLE, 1.0, ["f", "g"], ["r", 1, 2], {0: "ab"}],
    "order-too-short": [TABLE, 1.0, ["f", "g"], ["r", 1, 2], {0: [1]}],
    "order-too-long": [TABLE, 1.0, ["f", "g"], ["r", 1, U], {0: [1, 0]}],
    "order-past-the-fields": [TABLE, 1.0, ["f", "g"], ["r", 1, 2], {0: [2, 0]}],
    "order-negative": [TABLE, 1.0, ["f", "g"], ["r", 1, 2], {0: [-1, 0]}],
    "order-index-not-int": [TABLE, 1.0, ["f", "g"], ["r", 1, 2], {0: [1.0, 0]}],
    "order-names-an-absent-cell": [TABLE, 1.0, ["f", "g"], ["r", 1, U], {0: [1]}],
    "order-repeats-a-field": [TABLE, 1.0, ["f", "g"], ["r", 1, 2], {0: [1, 1]}],
    # Regression: the twin read a null order as "no order", the compiled core refused it.
    "order-null": [TABLE, 1.0, ["f", "g"], ["r", 1, 2], {0: None}],
}


@pytest.mark.parametrize("payload", BAD_TABLES.values(), ids=BAD_TABLES.keys())
@pytest.mark.parametrize("flat", [True, False], ids=["flat", "nested"])
def test_rows_from_table_refuses_other_shapes(core_name: str, payload: Any, flat: bool) -> None:
    before = cbor2.loads(cbor2.dumps(payload))  # a deep copy (it holds cbor2.undefined)
    slow = None if flat else _freeze
    assert decoders(core_name).rows_from_table(payload, TABLE, CachedRows, U, slow) is None
    assert repr(payload) == repr(before)  # repr: nan is not equal to itself


BAD_MAPS = {
    "not-a-list": "rows",
    "two-items": [CBOR_FORMAT_VERSION, 1.0],
    "four-items": [CBOR_FORMAT_VERSION, 1.0, {}, None],
    "other-version": [CBOR_FORMAT_VERSION + 5, 1.0, {"r": {"f": 1}}],
    "fetched-at-int": [CBOR_FORMAT_VERSION, 1, {"r": {"f": 1}}],
    "fetched-at-nan": [CBOR_FORMAT_VERSION, math.nan, {"r": {"f": 1}}],
    "field-name-not-str": [CBOR_FORMAT_VERSION, 1.0, {"r": {"f": 1}, "s": {1: 2}}],
    "rows-not-a-map": [CBOR_FORMAT_VERSION, 1.0, [["r", 1]]],
    "row-id-not-str": [CBOR_FORMAT_VERSION, 1.0, {"r": {"f": 1}, 2: {"f": 1}}],
    "last-record-not-a-map": [CBOR_FORMAT_VERSION, 1.0, {"r": {"f": [1]}, "s": [1]}],
}


@pytest.mark.parametrize("payload", BAD_MAPS.values(), ids=BAD_MAPS.keys())
@pytest.mark.parametrize("flat", [True, False], ids=["flat", "nested"])
def test_rows_from_map_refuses_other_shapes_and_changes_nothing(
    core_name: str, payload: Any, flat: bool
) -> None:
    before = cbor2.loads(cbor2.dumps(payload))  # a deep copy (it holds cbor2.undefined)
    slow = None if flat else _freeze
    got = decoders(core_name).rows_from_map(payload, CBOR_FORMAT_VERSION, CachedRows, slow)
    assert got is None
    assert repr(payload) == repr(before)  # repr: nan is not equal to itself
    if isinstance(payload, list) and len(payload) == 3 and isinstance(payload[2], dict):
        # Nothing was frozen or wrapped before the bad record was found.
        assert [type(r) for r in payload[2].values()] == [type(r) for r in before[2].values()]
        assert [
            type(v) for r in payload[2].values() if isinstance(r, dict) for v in r.values()
        ] == [type(v) for r in before[2].values() if isinstance(r, dict) for v in r.values()]


def test_decoders_leak_nothing(core_name: str) -> None:
    # Each round builds and drops pages and refused payloads; a reference kept per round
    # (one record, one tuple) would add well over the margin across the rounds.
    core = decoders(core_name)
    nested = CachedRows(
        {f"r{i}": {"a": i, "b": [i, {"c": "x"}], "s": {1, 2}} for i in range(5)}, 1.0
    )
    reordered = CachedRows({"a": {"x": 1, "y": 2}, "b": {"y": 3, "x": 4, "z": 5}}, 1.0)
    table_blobs = [cbor2.dumps(stored_payload(p)) for p in (nested, reordered)]
    flat = [p._flat for p in (nested, reordered)]
    map_blob = nested.to_cbor()
    bad_blobs = [cbor2.dumps(p) for p in BAD_TABLES.values()]
    bad_map_blobs = [cbor2.dumps(p) for p in BAD_MAPS.values()]

    def one_round() -> None:
        for blob, is_flat in zip(table_blobs, flat):
            slow = None if is_flat else _freeze
            assert core.rows_from_table(cbor2.loads(blob), TABLE, CachedRows, U, slow)
        assert core.rows_from_map(cbor2.loads(map_blob), CBOR_FORMAT_VERSION, CachedRows, _freeze)
        for blob in bad_blobs:
            assert core.rows_from_table(cbor2.loads(blob), TABLE, CachedRows, U, _freeze) is None
        for blob in bad_map_blobs:
            payload = cbor2.loads(blob)
            assert core.rows_from_map(payload, CBOR_FORMAT_VERSION, CachedRows, _freeze) is None

    for _ in range(50):
        one_round()
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        for _ in range(1000):
            one_round()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert grown < 32 * 1024, grown


@pytest.mark.parametrize(
    ("form", "payload"),
    [
        pytest.param("table", [TABLE, 1.0, ["f"], ["r", 1, "s", [2]]], id="table-list"),
        pytest.param("table", [TABLE, 1.0, ["f"], ["r", {"m": 1}]], id="table-map"),
        pytest.param("map", [CBOR_FORMAT_VERSION, 1.0, {"r": {"f": 1}, "s": {"f": [2]}}], id="map"),
    ],
)
def test_flat_decoding_checks_every_value_is_a_scalar(
    core_name: str, form: str, payload: list[Any]
) -> None:
    # A value flagged flat with a list in it would come back mutable; with slow it is frozen.
    core = decoders(core_name)
    if form == "table":
        assert core.rows_from_table(copy_of(payload), TABLE, CachedRows, U, None) is None
        got = core.rows_from_table(copy_of(payload), TABLE, CachedRows, U, _freeze)
    else:
        assert core.rows_from_map(copy_of(payload), 1, CachedRows, None) is None
        got = core.rows_from_map(copy_of(payload), 1, CachedRows, _freeze)
    assert got is not None and not got._flat
    for record in got.rows.values():
        for value in record.values():
            assert_read_only(value)


def test_an_order_is_checked_whole_before_any_cell_is_frozen(core_name: str) -> None:
    # Regression: the compiled core froze cells while reading the order, so a cell too
    # deep to freeze raised there, where the twin refused the bad index first.
    deep: Any = 1
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    payload = [TABLE, 1.0, ["f", "g"], ["r", deep, 2], {0: [0, 7]}]
    assert decoders(core_name).rows_from_table(payload, TABLE, CachedRows, U, _freeze) is None


def copy_of(payload: Any) -> Any:
    return cbor2.loads(cbor2.dumps(payload))


def shared_page(levels: int) -> bytes:
    """A small CBOR page whose one field value reaches a map along 2**levels paths."""
    node: dict[str, Any] = {"x": 1}
    for _ in range(levels):
        node = {"a": node, "b": node}
    return cbor2.dumps([CBOR_FORMAT_VERSION, 1.0, {"r": {"f": node}}], value_sharing=True)


def test_from_cbor_refuses_shared_values() -> None:
    # Regression: a 250-byte page with 22 levels took 43 s to freeze (each level doubles it).
    with pytest.raises(ValueError, match="shared values"):
        CachedRows.from_cbor(shared_page(3))


def test_a_stored_value_with_shared_values_is_a_bad_value() -> None:
    value = _lmdb_format.frame_value(b"", shared_page(3), flat=False)
    with pytest.raises(cbor2.CBORDecodeError, match="semantic tag 28"):
        _lmdb_format.decode_payload(value, value[-5])


def decode_with(core: Any, form: str, cell: Any, slow: Any) -> Any:
    """Rows of one record ``{"f": 1, "g": cell}`` decoded by ``core`` from ``form``."""
    if form == "table":
        return core.rows_from_table(
            [TABLE, 1.0, ["f", "g"], ["r", 1, cell]], TABLE, CachedRows, U, slow
        )
    payload = [CBOR_FORMAT_VERSION, 1.0, {"r": {"f": 1, "g": cell}}]
    return core.rows_from_map(payload, CBOR_FORMAT_VERSION, CachedRows, slow)


@pytest.mark.parametrize("form", ["table", "map"])
@pytest.mark.parametrize(
    "value", [U, cbor2.CBORSimpleValue(23), cbor2.CBORTag(9999, 1)], ids=["undefined", "23", "tag"]
)
def test_decoders_refuse_values_rows_cannot_hold(core_name: str, form: str, value: Any) -> None:
    # put never writes them; a stored value holding one is not rows, with either core (a
    # top-level undefined table cell is a missing field, by design).
    core = decoders(core_name)
    if not (form == "table" and value is U):
        assert decode_with(core, form, value, None) is None
    with pytest.raises(TypeError, match="values cannot be stored"):
        decode_with(core, form, [1, value], _freeze)
