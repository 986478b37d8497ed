"""``CachedRows.nbytes``: what the rows hold in memory, the same however they were built."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import cbor2
import pytest

from trie_cache import CachedRows, _lmdb_format
from trie_cache._rows import CBOR_FORMAT_VERSION, _freeze


def fresh(text: str) -> str:
    """A new ``str`` object equal to ``text`` (literals of one module may share one object)."""
    return "".join(list(text))


def page(n: int, width: int = 3, *, nested: bool = False) -> dict[str, dict[str, Any]]:
    """``n`` records of ``width`` fields; every value is its own object."""
    names = [f"field{j}" for j in range(width)]
    rows: dict[str, dict[str, Any]] = {}
    for i in range(n):
        record: dict[str, Any] = {name: fresh(f"value {i} {j}" * 3) for j, name in enumerate(names)}
        record["n"] = 10_000 + i
        record["x"] = i + 0.5
        if nested:
            record["tags"] = [fresh(f"tag {i}"), {"k": fresh(f"v {i}"), "m": [i + 1.5, 2**70 + i]}]
        rows[fresh(f"row {i}")] = record
    return rows


def decoders(core_name: str) -> Any:
    return importlib.import_module(
        {"cython": "trie_cache._rowcodec", "python": "trie_cache._rowcodec_py"}[core_name]
    )


def lmdb_read(rows: CachedRows, core_name: str, form: str) -> CachedRows:
    """``rows`` as ``LmdbCache.get`` builds them from the stored payload, with one core."""
    slow = None if rows._flat else _freeze
    core = decoders(core_name)
    if form == "table":
        payload = cbor2.loads(_lmdb_format.encode_payload(rows))
        assert payload[0] == _lmdb_format.TABLE_VERSION
        got = core.rows_from_table(payload, payload[0], CachedRows, _lmdb_format.ABSENT, slow)
    else:
        payload = cbor2.loads(rows.to_cbor())
        got = core.rows_from_map(payload, CBOR_FORMAT_VERSION, CachedRows, slow)
    assert got == rows
    return got  # type: ignore[no-any-return]


def test_nbytes_is_an_int_and_counts_at_least_the_values() -> None:
    source = page(20)
    rows = CachedRows(source, 1.0)
    assert type(rows.nbytes) is int
    values = sum(sys.getsizeof(v) for record in source.values() for v in record.values()) + sum(
        sys.getsizeof(row_id) for row_id in source
    )
    assert rows.nbytes > values
    assert rows.nbytes == rows.nbytes


def test_empty_rows_weigh_the_container_alone() -> None:
    empty = CachedRows({}, 1.0)
    assert 0 < empty.nbytes < 400
    assert CachedRows({"r": {}}, 1.0).nbytes > empty.nbytes


def test_nbytes_grows_with_rows_and_with_values() -> None:
    sizes = [CachedRows(page(n), 1.0).nbytes for n in (1, 10, 100)]
    assert sizes[0] < sizes[1] < sizes[2]
    short = CachedRows({"r": {"a": fresh("x" * 10)}}, 1.0).nbytes
    long = CachedRows({"r": {"a": fresh("x" * 10_000)}}, 1.0).nbytes
    assert long - short == 10_000 - 10
    blob = CachedRows({"r": {"a": b"\0" * 50_000}}, 1.0).nbytes
    assert blob >= 50_000


def test_nested_values_are_counted_with_what_they_contain() -> None:
    flat = CachedRows({"r": {"a": fresh("abc" * 100)}}, 1.0).nbytes
    nested = CachedRows({"r": {"a": [[fresh("abc" * 100)]]}}, 1.0).nbytes
    assert nested - flat == 2 * sys.getsizeof((None,))
    in_map = CachedRows({"r": {"a": {"k": fresh("abc" * 100)}}}, 1.0).nbytes
    assert in_map - flat >= sys.getsizeof({"k": None})


def test_a_shared_value_object_is_counted_once() -> None:
    blob = fresh("y" * 5_000)
    one = CachedRows({"r": {"a": blob}}, 1.0).nbytes
    shared = CachedRows({"r": {"a": blob, "b": blob}, "s": {"a": blob}}, 1.0).nbytes
    assert shared - one < 1_000
    copies = CachedRows({"r": {"a": blob, "b": fresh(blob)}, "s": {"a": fresh(blob)}}, 1.0)
    assert copies.nbytes - shared == 2 * sys.getsizeof(blob)


def test_field_names_are_counted_once_per_name() -> None:
    name = "a_rather_long_field_name_" * 4
    same = CachedRows({"r0": {fresh(name + "0"): 1}, "r1": {fresh(name + "0"): 1}}, 1.0)
    other = CachedRows({"r0": {fresh(name + "0"): 1}, "r1": {fresh(name + "1"): 1}}, 1.0)
    assert other.nbytes - same.nbytes == sys.getsizeof(name + "0")
    nested_same = CachedRows({"r": {"a": {fresh(name): 1}, "b": {fresh(name): 1}}}, 1.0)
    nested_other = CachedRows({"r": {"a": {fresh(name): 1}, "b": {fresh(name[:-1] + "x"): 1}}}, 1.0)
    assert nested_other.nbytes - nested_same.nbytes == sys.getsizeof(name)


def test_process_shared_scalars_count_nothing() -> None:
    base = CachedRows({"r": {"a": 0}}, 1.0).nbytes
    for value in (None, True, False, -5, 256, 7):
        assert CachedRows({"r": {"a": value}}, 1.0).nbytes == base
    assert CachedRows({"r": {"a": 2**40}}, 1.0).nbytes == base + sys.getsizeof(2**40)


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
def test_nbytes_is_the_same_from_cbor_and_constructor(nested: bool) -> None:
    rows = CachedRows(page(30, nested=nested), 2.0)
    assert CachedRows.from_cbor(rows.to_cbor()).nbytes == rows.nbytes


@pytest.mark.parametrize("form", ["table", "map"])
@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
def test_nbytes_is_the_same_for_rows_read_from_lmdb(
    core_name: str, form: str, nested: bool
) -> None:
    rows = CachedRows(page(30, nested=nested), 2.0)
    assert lmdb_read(rows, core_name, form).nbytes == rows.nbytes


def test_both_codec_cores_give_the_same_nbytes() -> None:
    rows = CachedRows(page(12, nested=True), 3.0)
    for form in ("table", "map"):
        assert lmdb_read(rows, "cython", form).nbytes == lmdb_read(rows, "python", form).nbytes


def test_nbytes_survives_pickling_unchanged() -> None:
    import pickle

    rows = CachedRows(page(5, nested=True), 1.0)
    assert pickle.loads(pickle.dumps(rows)).nbytes == rows.nbytes


@pytest.mark.parametrize("form", ["constructor", "table", "map"])
def test_record_sizes_are_those_of_the_records_held(core_name: str, form: str) -> None:
    import gc

    from trie_cache._rows import _record_sizes

    rows = CachedRows({f"r{n}": {f"f{j}": j for j in range(n)} for n in range(40)}, 1.0)
    if form != "constructor":
        rows = lmdb_read(rows, core_name, form)
    table = _record_sizes(40)
    for record in rows.rows.values():
        (held,) = gc.get_referents(record)
        assert sys.getsizeof(record) + sys.getsizeof(held) == table[len(record)]
