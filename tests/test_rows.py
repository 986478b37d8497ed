"""``CachedRows``: immutable, equal by value, and a CBOR round trip that keeps everything."""

from __future__ import annotations

import math
import pickle
import time
from collections import OrderedDict
from typing import Any

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trie_cache import CachedRows
from trie_cache._rows import CBOR_FORMAT_VERSION, MAX_DEPTH

ROWS = {"r2": {"name": "b", "n": 2}, "r1": {"name": "a", "n": 1, "tags": ["x", "y"]}}


def test_rows_keep_the_order_given() -> None:
    rows = CachedRows(ROWS, 1.0)
    assert list(rows.rows) == ["r2", "r1"]
    assert list(rows) == ["r2", "r1"]
    assert list(rows.rows["r1"]) == ["name", "n", "tags"]
    assert len(rows) == 2


def test_fetched_at_defaults_to_now() -> None:
    before = time.time()
    rows = CachedRows({})
    assert before <= rows.fetched_at <= time.time()


def test_fetched_at_int_is_stored_as_float() -> None:
    rows = CachedRows({}, 5)
    assert rows.fetched_at == 5.0
    assert type(rows.fetched_at) is float


def test_age_counts_from_fetched_at() -> None:
    assert CachedRows({}, 100.0).age(now=130.5) == 30.5
    assert 0 <= CachedRows({}).age() < 60


def test_empty_rows_are_still_true() -> None:
    assert CachedRows({}, 1.0)
    assert len(CachedRows({}, 1.0)) == 0


def test_attributes_cannot_be_set_or_deleted() -> None:
    rows = CachedRows(ROWS, 1.0)
    with pytest.raises(AttributeError):
        rows.fetched_at = 2.0  # type: ignore[misc]
    with pytest.raises(AttributeError, match="immutable"):
        rows.extra = 1
    with pytest.raises(AttributeError, match="immutable"):
        rows._fetched_at = 2.0
    with pytest.raises(AttributeError, match="immutable"):
        del rows._rows


def test_rows_and_records_are_read_only() -> None:
    rows = CachedRows(ROWS, 1.0)
    with pytest.raises(TypeError):
        rows.rows["r3"] = {}  # type: ignore[index]
    with pytest.raises(TypeError):
        rows.rows["r1"]["name"] = "z"  # type: ignore[index]


def test_constructor_copies_its_input() -> None:
    source: dict[str, Any] = {"r": {"tags": ["a"], "meta": {"k": 1}}}
    rows = CachedRows(source, 1.0)
    source["r"]["tags"].append("b")
    source["r"]["meta"]["k"] = 2
    source["s"] = {}
    assert list(rows.rows) == ["r"]
    assert rows.rows["r"]["tags"] == ("a",)
    assert rows.rows["r"]["meta"] == {"k": 1}


def test_nested_values_are_frozen() -> None:
    rows = CachedRows({"r": {"l": [1, [2]], "m": {"a": {"b": 1}}, "b": bytearray(b"x")}}, 1.0)
    record = rows.rows["r"]
    assert record["l"] == (1, (2,))
    assert record["b"] == b"x" and type(record["b"]) is bytes
    with pytest.raises(TypeError):
        record["m"]["a"]["b"] = 2


def test_equal_by_value() -> None:
    assert CachedRows(ROWS, 1.0) == CachedRows(dict(ROWS), 1.0)
    assert CachedRows(ROWS, 1.0) == CachedRows(OrderedDict(ROWS), 1.0)
    assert hash(CachedRows(ROWS, 1.0)) == hash(CachedRows(dict(ROWS), 1.0))


def test_field_order_does_not_change_equality() -> None:
    assert CachedRows({"r": {"a": 1, "b": 2}}, 1.0) == CachedRows({"r": {"b": 2, "a": 1}}, 1.0)


def test_row_order_is_part_of_the_value() -> None:
    assert CachedRows({"a": {}, "b": {}}, 1.0) != CachedRows({"b": {}, "a": {}}, 1.0)


def test_differs_by_fetched_at_rows_or_records() -> None:
    base = CachedRows({"a": {"f": 1}}, 1.0)
    assert base != CachedRows({"a": {"f": 1}}, 2.0)
    assert base != CachedRows({"a": {"f": 2}}, 1.0)
    assert base != CachedRows({"b": {"f": 1}}, 1.0)
    assert base != CachedRows({"a": {"f": 1}, "b": {}}, 1.0)


def test_not_equal_to_other_types() -> None:
    assert CachedRows({}, 1.0) != {}
    assert CachedRows({}, 1.0).__eq__({}) is NotImplemented


def test_repr_names_size_and_time() -> None:
    assert repr(CachedRows(ROWS, 1.5)) == "CachedRows(2 rows, fetched_at=1.5)"


def test_pickle_round_trip() -> None:
    rows = CachedRows(ROWS, 1.25)
    assert pickle.loads(pickle.dumps(rows)) == rows


@pytest.mark.parametrize("bad", [None, [("a", {})], "rows", 3])
def test_rows_not_a_mapping_is_type_error(bad: Any) -> None:
    with pytest.raises(TypeError, match=type(bad).__name__):
        CachedRows(bad)


def test_row_id_not_str_is_type_error() -> None:
    with pytest.raises(TypeError, match="row ids must be str, not int"):
        CachedRows({1: {}})  # type: ignore[dict-item]


def test_record_not_a_mapping_is_type_error() -> None:
    with pytest.raises(TypeError, match="must be a mapping, not list"):
        CachedRows({"a": [1]})  # type: ignore[dict-item]


def test_field_name_not_str_is_type_error() -> None:
    with pytest.raises(TypeError, match="field names in row 'a' must be str, not bytes"):
        CachedRows({"a": {b"f": 1}})  # type: ignore[dict-item]


@pytest.mark.parametrize("bad", ["1.0", True, [1.0], b"1"])
def test_fetched_at_not_a_number_is_type_error(bad: Any) -> None:
    with pytest.raises(TypeError, match=type(bad).__name__):
        CachedRows({}, bad)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 10**400])
def test_fetched_at_not_finite_is_value_error(bad: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        CachedRows({}, bad)


def test_cyclic_value_is_value_error() -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(ValueError, match="cyclic"):
        CachedRows({"a": {"f": cycle}})


def test_nesting_up_to_the_limit_is_accepted() -> None:
    value: Any = 1
    for _ in range(MAX_DEPTH - 1):
        value = [value]
    rows = CachedRows({"a": {"f": value}}, 1.0)
    assert CachedRows.from_cbor(rows.to_cbor()) == rows


# -- CBOR ----------------------------------------------------------------------------------


def test_cbor_round_trip_keeps_rows_fields_and_time() -> None:
    rows = CachedRows(
        {"z": {"b": 1, "a": [1, 2.5, None, True]}, "a": {"y": b"\x00", "x": {"n": "é"}}},
        1_700_000_000.123456789,
    )
    back = CachedRows.from_cbor(rows.to_cbor())
    assert back == rows
    assert list(back.rows) == ["z", "a"]
    assert list(back.rows["z"]) == ["b", "a"]
    assert list(back.rows["a"]["x"]) == ["n"]
    assert back.fetched_at == rows.fetched_at


def test_cbor_layout_is_version_time_rows() -> None:
    payload = cbor2.loads(CachedRows({"a": {"f": 1}}, 2.0).to_cbor())
    assert payload == [CBOR_FORMAT_VERSION, 2.0, {"a": {"f": 1}}]


@pytest.mark.parametrize(
    "record",
    [{"n": 1, "s": "x", "b": b"y", "f": 1.5, "t": True, "z": None}, {"n": 1, "l": [1, {"m": [2]}]}],
    ids=["scalars", "nested"],
)
def test_to_cbor_writes_the_plain_structure(record: dict[str, Any]) -> None:
    rows = CachedRows({"r2": record, "r1": {"k": "v"}}, 4.0)
    expected = cbor2.dumps([CBOR_FORMAT_VERSION, 4.0, {"r2": record, "r1": {"k": "v"}}])
    assert rows.to_cbor() == expected


def test_from_cbor_accepts_bytearray_and_memoryview() -> None:
    rows = CachedRows(ROWS, 3.0)
    data = rows.to_cbor()
    assert CachedRows.from_cbor(bytearray(data)) == rows
    assert CachedRows.from_cbor(memoryview(data)) == rows


@given(
    rows=st.dictionaries(
        st.text(),
        st.dictionaries(
            st.text(alphabet=st.characters(exclude_categories=["Cs"])),
            st.one_of(
                st.none(),
                st.booleans(),
                st.integers(),
                st.floats(allow_nan=False),
                st.text(alphabet=st.characters(exclude_categories=["Cs"])),
                st.binary(),
                st.lists(st.integers(), max_size=3),
            ),
            max_size=4,
        ),
        max_size=5,
    ),
    fetched_at=st.floats(allow_nan=False, allow_infinity=False),
)
def test_cbor_round_trip_any_rows(rows: dict[str, dict[str, Any]], fetched_at: float) -> None:
    try:
        original = CachedRows(rows, fetched_at)
        data = original.to_cbor()
    except ValueError:
        # Row ids with lone surrogates cannot be CBOR text; that is the only refusal.
        assert any(_has_surrogate(row_id) for row_id in rows)
        return
    back = CachedRows.from_cbor(data)
    assert back == original
    assert list(back.rows) == list(original.rows)
    assert [list(r) for r in back.rows.values()] == [list(r) for r in original.rows.values()]
    assert math.copysign(1.0, back.fetched_at) == math.copysign(1.0, original.fetched_at)


def _has_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(ch) <= 0xDFFF for ch in text)


def test_a_value_cbor_cannot_hold_is_refused_by_the_constructor() -> None:
    # Regression: the constructor kept it and only to_cbor (and LmdbCache) refused it.
    with pytest.raises(TypeError, match="row 'a', field 'f': object values"):
        CachedRows({"a": {"f": object()}})


def test_a_row_id_cbor_cannot_hold_is_refused_by_the_constructor() -> None:
    with pytest.raises(ValueError, match="row id: .*lone surrogate"):
        CachedRows({"\ud800": {}})


@pytest.mark.parametrize("bad", ["text", None, 12, [b"x"]])
def test_from_cbor_not_bytes_is_type_error(bad: Any) -> None:
    with pytest.raises(TypeError, match=type(bad).__name__):
        CachedRows.from_cbor(bad)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "premature end"),
        (b"\xff", "break"),
        (cbor2.dumps([1, 2.0]), "3-item"),
        (cbor2.dumps({"a": 1}), "3-item"),
        (cbor2.dumps([2, 1.0, {}]), "version 2"),
        (cbor2.dumps([True, 1.0, {}]), "version True"),
        (cbor2.dumps([1, 1, {}]), "fetched_at is int"),
        (cbor2.dumps([1, math.nan, {}]), "finite"),
        (cbor2.dumps([1, 1.0, [1]]), "rows is list"),
        (cbor2.dumps([1, 1.0, {1: {}}]), "row ids must be str"),
        (cbor2.dumps([1, 1.0, {"a": 5}]), "must be a mapping"),
        (cbor2.dumps([1, 1.0, {"a": {1: 2}}]), "field names"),
        (CachedRows({}, 1.0).to_cbor() + b"\x00", "data follows"),
    ],
)
def test_from_cbor_bad_payload_is_value_error(data: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        CachedRows.from_cbor(data)
