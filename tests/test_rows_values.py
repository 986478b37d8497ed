"""One value contract: ``CachedRows`` accepts exactly the values CBOR gives back equal, refuses
the rest naming the row, the field and the type, and every backend stores what it accepts."""

from __future__ import annotations

import copy
import email.message
import enum
import importlib
import ipaddress
import time
import uuid
import zoneinfo
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trie_cache import CachedRows, LmdbCache, _lmdb_format
from trie_cache._rows import _freeze

UTC = timezone.utc
PLUS_2 = timezone(timedelta(hours=2))


class Color(enum.IntEnum):
    RED = 7


class Label(str):
    pass


class Pairs(Mapping[Any, Any]):
    """A mapping over a list of pairs, so its keys need not be hashable."""

    def __init__(self, pairs: list[tuple[Any, Any]]) -> None:
        self._pairs = pairs

    def __getitem__(self, key: Any) -> Any:
        return next(v for k, v in self._pairs if k == key)

    def __iter__(self) -> Iterator[Any]:
        return iter([k for k, _ in self._pairs])

    def __len__(self) -> int:
        return len(self._pairs)


#: (given, held): each accepted kind of value and what CachedRows holds and every backend returns.
ACCEPTED: dict[str, tuple[Any, Any]] = {
    "str": ("Ada", "Ada"),
    "str-astral": ("é \U0001f600", "é \U0001f600"),
    "str-subclass": (Label("x"), "x"),
    "int": (-3, -3),
    "int-big": (2**200, 2**200),
    "int-negative-big": (-(2**100), -(2**100)),
    "int-enum": (Color.RED, 7),
    "float": (1.5, 1.5),
    "float-inf": (float("-inf"), float("-inf")),
    "float-negative-zero": (-0.0, -0.0),
    "bool": (True, True),
    "none": (None, None),
    "bytes": (b"\x00\xff", b"\x00\xff"),
    "bytearray": (bytearray(b"ab"), b"ab"),
    "memoryview": (memoryview(b"cd"), b"cd"),
    "datetime-utc": (datetime(2024, 5, 1, 12, 30, 5, 123456, UTC),) * 2,
    "datetime-offset": (datetime(2024, 5, 1, 12, 30, tzinfo=PLUS_2),) * 2,
    "datetime-zoneinfo": (
        datetime(2024, 7, 1, 12, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
        datetime(2024, 7, 1, 12, tzinfo=PLUS_2),
    ),
    "date": (date(2024, 2, 29), date(2024, 2, 29)),
    "decimal": (Decimal("12.340"), Decimal("12.340")),
    "decimal-tiny": (Decimal("1E-400"), Decimal("1E-400")),
    "uuid": (uuid.UUID(int=12345), uuid.UUID(int=12345)),
    "ipv4": (ipaddress.ip_address("10.1.2.3"),) * 2,
    "ipv6-network": (ipaddress.ip_network("2001:db8::/32"),) * 2,
    "ipv4-interface": (ipaddress.ip_interface("10.0.0.1/8"),) * 2,
    "list": ([1, "a", [2.5, None]], (1, "a", (2.5, None))),
    "tuple": ((1, (2,)), (1, (2,))),
    "empty-list": ([], ()),
    "map": ({"a": 1, "b": [1]}, {"a": 1, "b": (1,)}),
    "map-other-keys": ({1: "i", b"k": "b", (1, 2): "t", None: 0},) * 2,
    "ordered-dict": (OrderedDict(b=1, a=2), {"b": 1, "a": 2}),
    "set": ({1, "a"}, frozenset({1, "a"})),
    "frozenset-of-tuples": (frozenset({(1, 2)}), frozenset({(1, 2)})),
    "nested-everything": (
        {"when": datetime(2020, 1, 1, tzinfo=UTC), "ids": [uuid.UUID(int=1)], "d": {Decimal(1)}},
        {"when": datetime(2020, 1, 1, tzinfo=UTC), "ids": (uuid.UUID(int=1),), "d": {Decimal(1)}},
    ),
}
NAMES = list(ACCEPTED)
CONTAINERS = (list, tuple, dict, set, frozenset)


def kinds(value: Any) -> Any:
    """``value`` with every item replaced by its type, containers kept, for exact comparison."""
    if isinstance(value, MappingProxyType):
        return ("map", [(kinds(k), kinds(v)) for k, v in value.items()])
    if isinstance(value, (tuple, frozenset)):
        return (type(value), sorted(map(repr, map(kinds, value))))
    if isinstance(value, datetime):
        return (datetime, value.tzinfo, value.utcoffset())
    return type(value)


def page() -> dict[str, dict[str, Any]]:
    """Two records holding every accepted value (the second in another field order, with
    copies of the containers: values must form a tree)."""
    first = {name: given for name, (given, _) in ACCEPTED.items()}
    second = {
        name: copy.deepcopy(first[name]) if isinstance(first[name], CONTAINERS) else first[name]
        for name in reversed(NAMES)
    }
    return {"r1": first, "r2": second}


def assert_held(rows: CachedRows) -> None:
    """Each field of ``rows`` holds what the table says, with exactly its types."""
    for record in rows.rows.values():
        assert set(record) == set(ACCEPTED)
        for name, value in record.items():
            held = ACCEPTED[name][1]
            assert value == held, name
            want = kinds(_freeze(held, 1)) if isinstance(held, (dict, set)) else None
            if want is not None:
                assert kinds(value) == want, name
            elif not isinstance(held, tuple):
                assert type(value) is type(held), name
                if isinstance(held, datetime):
                    assert value.tzinfo == held.tzinfo, name
                    assert type(value.tzinfo) is timezone, name


@pytest.mark.parametrize("name", NAMES)
def test_each_accepted_value_is_held_as_the_table_says(name: str) -> None:
    given, held = ACCEPTED[name]
    rows = CachedRows({"r": {"f": given}}, 1.0)
    value = rows.rows["r"]["f"]
    assert value == held
    assert type(value) is type(_freeze(held, 1)) if isinstance(held, (dict, set)) else True
    back = CachedRows.from_cbor(rows.to_cbor())
    assert back == rows
    assert kinds(back.rows["r"]["f"]) == kinds(value)


def test_a_page_of_every_accepted_value_round_trips_through_cbor() -> None:
    rows = CachedRows(page(), 5.0)
    assert_held(rows)
    back = CachedRows.from_cbor(rows.to_cbor())
    assert back == rows
    assert_held(back)


@pytest.mark.parametrize("form", ["table", "map"])
def test_both_codec_cores_decode_every_accepted_value_alike(core_name: str, form: str) -> None:
    core = importlib.import_module(
        {"cython": "trie_cache._rowcodec", "python": "trie_cache._rowcodec_py"}[core_name]
    )
    rows = CachedRows(page(), 5.0)
    if form == "table":
        payload = cbor2.loads(_lmdb_format.encode_payload(rows))
        got = core.rows_from_table(payload, payload[0], CachedRows, _lmdb_format.ABSENT, _freeze)
    else:
        payload = cbor2.loads(rows.to_cbor())
        got = core.rows_from_map(payload, payload[0], CachedRows, _freeze)
    assert got == rows
    assert_held(got)


async def test_every_accepted_value_survives_a_real_lmdb_folder(tmp_path: Path) -> None:
    rows = CachedRows(page(), 5.0)
    async with LmdbCache(tmp_path / "db") as cache:
        await cache.put("t/page", rows)
        got = await cache.get("t/page")
    assert got == rows and got is not None
    assert_held(got)
    async with LmdbCache(tmp_path / "db") as cache:  # read back by a fresh environment
        again = await cache.get("t/page")
    assert again == rows and again is not None
    assert_held(again)


@pytest.mark.also_nocache
async def test_every_backend_stores_and_fills_every_accepted_value(
    make_cache: Callable[..., Any], cache_backend: str
) -> None:
    cache = make_cache()
    rows = CachedRows(page(), time.time())
    if cache_backend != "nocache":
        await cache.put("t/put", rows)
        got = await cache.get("t/put")
        assert got == rows
        assert_held(got)

    async def fetch() -> dict[str, dict[str, Any]]:
        return page()

    filled = await cache.get_or_fetch("t/fill", fetch)
    assert_held(filled)
    if cache_backend != "nocache":
        stored = await cache.get("t/fill")
        assert stored == filled
        assert_held(stored)


# -- refused values: the row, the field and the type are named, nothing is kept ---------------


REFUSED: dict[str, tuple[Any, type[Exception], str]] = {
    "naive-datetime": (datetime(2024, 1, 1), ValueError, "naive datetime.*aware datetime"),
    "odd-offset": (
        datetime(2024, 1, 1, tzinfo=timezone(-timedelta(seconds=30))),
        ValueError,
        r"UTC offset -0:00:30 .*whole minutes",
    ),
    "object": (object(), TypeError, "object values cannot be stored"),
    "time": (datetime(2024, 1, 1).time(), TypeError, "time values"),
    "timedelta": (timedelta(1), TypeError, "timedelta values"),
    "undefined": (cbor2.undefined, TypeError, "UndefinedType values"),
    "simple-23": (cbor2.CBORSimpleValue(23), TypeError, "CBORSimpleValue values"),
    "tag": (cbor2.CBORTag(9999, 1), TypeError, "CBORTag values"),
    "message": (email.message.Message(), TypeError, "Message values"),
    "decimal-nan": (Decimal("NaN"), ValueError, "NaN"),
    "decimal-inf": (Decimal("-Infinity"), ValueError, "Infinity"),
    "lone-surrogate": ("a\ud800", ValueError, "lone surrogate"),
    "nested-object": ([1, {"k": object()}], TypeError, "object values"),
    "map-key": (Pairs([({"a": 1}, 1)]), TypeError, "map key of type mappingproxy is not hashable"),
    "complex": (1j, TypeError, "complex values"),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_a_value_outside_the_table_is_refused_naming_row_field_and_type(name: str) -> None:
    value, error, message = REFUSED[name]
    with pytest.raises(error, match=rf"row 'r2', field 'bad': .*{message}"):
        CachedRows({"r1": {"bad": 1}, "r2": {"ok": 1, "bad": value}}, 1.0)


def test_field_names_and_row_ids_must_be_cbor_text() -> None:
    with pytest.raises(ValueError, match="row 'r', field name: .*lone surrogate"):
        CachedRows({"r": {"\udfff": 1}}, 1.0)
    with pytest.raises(ValueError, match="row id: .*lone surrogate"):
        CachedRows({"\ud800": {"f": 1}}, 1.0)
    rows = CachedRows({Label("r"): {Label("f"): 1}}, 1.0)
    assert [type(k) for k in rows.rows] == [str]
    assert [type(k) for k in rows.rows["r"]] == [str]


def test_from_cbor_refuses_tags_that_decode_to_other_types() -> None:
    # Regression: tag 36 decoded to a mutable email.message.Message, which was kept.
    payload = cbor2.dumps([1, 1.0, {"r": {"m": cbor2.CBORTag(36, "Subject: x\n\nbody")}}])
    with pytest.raises(ValueError, match="row 'r', field 'm': Message values"):
        CachedRows.from_cbor(payload)
    payload = cbor2.dumps([1, 1.0, {"r": {"m": cbor2.CBORTag(30, [1, 3])}}])  # Fraction
    with pytest.raises(ValueError, match="Fraction values"):
        CachedRows.from_cbor(payload)


def test_a_memoryview_is_copied_to_bytes() -> None:
    # Regression: the memoryview was kept, so the rows changed with its buffer.
    buffer = bytearray(b"abc")
    rows = CachedRows({"r": {"m": memoryview(buffer), "n": [memoryview(buffer)]}}, 1.0)
    buffer[0] = ord("z")
    assert rows.rows["r"]["m"] == b"abc" and type(rows.rows["r"]["m"]) is bytes
    assert rows.rows["r"]["n"] == (b"abc",)
    assert CachedRows.from_cbor(rows.to_cbor()) == rows


@pytest.mark.also_nocache
async def test_a_naive_datetime_is_refused_alike_by_every_backend(
    make_cache: Callable[..., Any],
) -> None:
    # Regression: MemCache stored it while LmdbCache.put and its fills raised TypeError.
    cache = make_cache()

    async def fetch() -> dict[str, dict[str, Any]]:
        return {"r": {"born": datetime(1990, 1, 1)}}

    with pytest.raises(ValueError, match="row 'r', field 'born': naive datetime"):
        await cache.get_or_fetch("k", fetch)
    assert await cache.get("k") is None


async def test_lmdb_keeps_a_field_once_dropped_for_simple_value_23(tmp_path: Path) -> None:
    # Regression: CBORSimpleValue(23) was written as undefined, the table cell of a missing
    # field, so the page came back without that field. Now no such value can enter rows,
    # and every value rows hold comes back with its field.
    with pytest.raises(TypeError, match="CBORSimpleValue"):
        CachedRows({"a": {"x": 1, "y": cbor2.CBORSimpleValue(23)}}, 1.0)
    rows = CachedRows({"a": {"x": 1, "y": None}, "b": {"y": False, "x": 0}}, 1.0)
    async with LmdbCache(tmp_path / "db") as cache:
        await cache.put("k", rows)
        got = await cache.get("k")
    assert got is not None
    assert [list(r.items()) for r in got.rows.values()] == [
        list(r.items()) for r in rows.rows.values()
    ]


# -- shared and cyclic values (item 9) --------------------------------------------------------


def doubling(levels: int, leaf: Any) -> Any:
    """``a = [a, a]`` ``levels`` times: 2**levels paths to the leaf through shared lists."""
    node = leaf
    for _ in range(levels):
        node = [node, node]
    return node


@pytest.mark.parametrize("leaf", [[], [1, "x"], {"k": 1}], ids=["empty", "list", "map"])
def test_values_shared_along_many_paths_are_refused_at_once(leaf: Any) -> None:
    # Regression: 22 levels took 10 s and 60 never ended (each level doubled the copying).
    with pytest.raises(ValueError, match="row 'r', field 'f': values shared along many paths"):
        CachedRows({"r": {"f": doubling(60, leaf)}}, 1.0)


def test_values_shared_along_fewer_paths_are_copied_once_and_shared() -> None:
    value = doubling(14, ["x"])  # 2**14 paths: 2**15 items written, under MAX_WRITTEN
    rows = CachedRows({"r": {"f": value}}, 1.0)
    held = rows.rows["r"]["f"]
    assert held[0] is held[1] and held[0][0] is held[1][1]
    assert CachedRows.from_cbor(rows.to_cbor()) == rows


def test_sharing_is_refused_only_when_it_multiplies_what_is_written() -> None:
    # Written items: fields x (100,000 + 1); held references: 100,000 + fields.
    big = list(range(100_000))
    eleven = CachedRows({"r": {f"f{i}": big for i in range(11)}}, 1.0)
    assert eleven.rows["r"]["f0"] is eleven.rows["r"]["f10"]
    with pytest.raises(ValueError, match="row 'r', field 'f16': values shared along many"):
        CachedRows({"r": {f"f{i}": big for i in range(20)}}, 1.0)


def test_a_container_used_twice_is_copied_once() -> None:
    tags = ["a", "b"]
    inner = {"deep": [1], "tags": tags}
    rows = CachedRows(
        {"r1": {"tags": tags, "m": inner}, "r2": {"tags": tags, "m": inner, "x": [tags]}}, 1.0
    )
    assert rows.rows["r1"]["tags"] is rows.rows["r2"]["tags"] is rows.rows["r2"]["x"][0]
    assert rows.rows["r1"]["m"] is rows.rows["r2"]["m"]
    assert rows.rows["r1"]["m"]["tags"] is rows.rows["r1"]["tags"]
    back = CachedRows.from_cbor(rows.to_cbor())
    assert back == rows


@pytest.mark.parametrize("kind", ["list", "dict", "record", "set-in-list"])
def test_cyclic_values_are_refused(kind: str) -> None:
    record: dict[str, Any] = {}
    if kind == "list":
        cyclic: Any = [1]
        cyclic.append(cyclic)
        record["f"] = cyclic
    elif kind == "dict":
        cyclic = {}
        cyclic["self"] = [cyclic]
        record["f"] = cyclic
    elif kind == "record":
        record["f"] = record
    else:
        cyclic = [frozenset({1})]
        cyclic.append([cyclic])
        record["f"] = cyclic
    with pytest.raises(ValueError, match="row 'r', field 'f': a .* that contains itself"):
        CachedRows({"r": record}, 1.0)


def test_nothing_is_kept_by_a_refused_value() -> None:
    # The memo of containers met lives for one constructor call.
    source: dict[str, Any] = {"r": {"f": [1], "g": object()}}
    with pytest.raises(TypeError):
        CachedRows(source, 1.0)
    assert CachedRows({"r": {"f": source["r"]["f"]}}, 1.0).rows["r"]["f"] == (1,)


# -- any accepted value, drawn -----------------------------------------------------------------

LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=8),
    st.binary(max_size=8),
    st.datetimes(
        min_value=datetime(1900, 1, 1),  # New York's offset had seconds before 1883
        timezones=st.sampled_from([UTC, PLUS_2, zoneinfo.ZoneInfo("America/New_York")]),
    ),
    st.dates(),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.uuids(),
    st.ip_addresses(),
)
KEYS = st.one_of(st.text(max_size=4, alphabet="abc"), st.integers(-3, 3), st.binary(max_size=2))
DRAWN = st.recursive(
    LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner, inner),
        st.dictionaries(KEYS, inner, max_size=3),
        st.frozensets(st.one_of(st.integers(), st.text(max_size=3)), max_size=3),
    ),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None)
@given(values=st.lists(DRAWN, min_size=1, max_size=4))
def test_any_accepted_value_comes_back_the_same_from_cbor_and_both_decoders(
    values: list[Any],
) -> None:
    rows = CachedRows({"r1": {f"f{i}": v for i, v in enumerate(values)}, "r2": {"f0": 1}}, 2.0)
    want = [kinds(v) for v in rows.rows["r1"].values()]
    back = CachedRows.from_cbor(rows.to_cbor())
    assert back == rows
    assert [kinds(v) for v in back.rows["r1"].values()] == want
    slow = None if rows._flat else _freeze
    for module in ("trie_cache._rowcodec", "trie_cache._rowcodec_py"):
        core = importlib.import_module(module)
        payload = cbor2.loads(_lmdb_format.encode_payload(rows))
        got = core.rows_from_table(payload, payload[0], CachedRows, _lmdb_format.ABSENT, slow)
        assert got == rows
        assert [kinds(v) for v in got.rows["r1"].values()] == want
        assert got.nbytes == back.nbytes


def test_a_datetime_is_held_as_cbor_gives_it_back() -> None:
    plain = datetime(2024, 1, 1, 9, tzinfo=PLUS_2)
    named = datetime(2024, 1, 1, 9, tzinfo=timezone(timedelta(hours=2), "CEST"))
    folded = datetime(2024, 1, 1, 9, tzinfo=UTC, fold=1)
    rows = CachedRows({"r": {"plain": plain, "named": named, "folded": folded}}, 1.0)
    held = rows.rows["r"]
    assert held["plain"] is plain  # nothing to change
    back = CachedRows.from_cbor(rows.to_cbor()).rows["r"]
    for field in ("plain", "named", "folded"):
        assert repr(held[field]) == repr(back[field]), field
    assert held["named"].tzname() == "UTC+02:00" and held["folded"].fold == 0
