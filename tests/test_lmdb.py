"""LmdbCache: persistence, key layout, the writer thread, faults, other processes.

The behaviour shared with MemCache is in the contract tests; these are LMDB's own.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import cbor2
import lmdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lmdb_proc import run_proc

from trie_cache import CachedRows, LmdbCache, _lmdb_format
from trie_cache._lmdb import LmdbCacheClosedError, LmdbCacheError
from trie_cache._lmdb_format import HEAD_BYTES, encode_key

# Where the tested trie_cache was imported from (the checkout, or site-packages for an install):
# the helper process imports the same one.
ROOT = Path(_lmdb_format.__file__).resolve().parents[1]
PROC = Path(__file__).with_name("lmdb_proc.py")


def rows(n: int = 2, fetched_at: float = 1700000000.123456) -> CachedRows:
    return CachedRows({f"r{i}": {"i": i, "name": f"n{i}"} for i in range(n)}, fetched_at)


@pytest.fixture
async def cache(tmp_path: Path) -> AsyncIterator[LmdbCache]:
    async with LmdbCache(tmp_path / "db", durable=False) as c:
        yield c


def put_raw(path: Path, key: str, value: bytes) -> None:
    """Store ``value`` as the record of ``key`` behind the cache's back (it must be closed)."""
    env = lmdb.open(str(path), max_dbs=2)
    try:
        with env.begin(write=True, db=env.open_db(b"rows")) as txn:
            txn.put(encode_key(key)[0], value)
    finally:
        env.close()


# -- lifetime ---------------------------------------------------------------------------


async def test_creates_missing_folders(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b"
    async with LmdbCache(path) as c:
        await c.put("k", rows())
    assert (path / "data.mdb").exists()


async def test_constructor_does_no_disk_io_on_the_calling_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[int] = []
    real_open = lmdb.open

    def recording_open(*args: Any, **kwargs: Any) -> lmdb.Environment:
        threads.append(threading.get_ident())
        return real_open(*args, **kwargs)

    monkeypatch.setattr(lmdb, "open", recording_open)
    async with LmdbCache(tmp_path / "db") as c:
        await c.put("k", rows())
    assert threads and threading.get_ident() not in threads


async def test_writes_run_on_the_writer_thread(cache: LmdbCache) -> None:
    store = cache._store
    threads: list[int] = []
    apply = store._apply

    def recording_apply(batch: list[tuple[Any, ...]]) -> Any:
        threads.append(threading.get_ident())
        return apply(batch)

    store._apply = recording_apply  # type: ignore[method-assign]
    await cache.put("k", rows())
    await cache.invalidate_prefix("k")
    assert threads == [store.thread.ident] * 2
    assert store.thread.ident != threading.get_ident()


async def test_aclose_stops_the_writer_thread(tmp_path: Path) -> None:
    c = LmdbCache(tmp_path / "db")
    await c.put("k", rows())
    await c.aclose()
    assert c.closed and not c._store.thread.is_alive()
    await c.aclose()  # twice is fine


def test_close_from_sync_code_stops_the_writer_thread(tmp_path: Path) -> None:
    c = LmdbCache(tmp_path / "db")
    c.close()
    assert c.closed and not c._store.thread.is_alive()
    c.close()


def test_dropped_cache_stops_its_thread(tmp_path: Path) -> None:
    c = LmdbCache(tmp_path / "db")
    thread = c._store.thread
    del c
    gc.collect()
    thread.join(timeout=10)
    assert not thread.is_alive()


async def test_closed_cache_raises_on_every_call(tmp_path: Path) -> None:
    c = LmdbCache(tmp_path / "db")
    await c.aclose()
    with pytest.raises(LmdbCacheClosedError, match="closed"):
        await c.get("k")
    with pytest.raises(LmdbCacheClosedError, match="closed"):
        await c.put("k", rows())
    with pytest.raises(LmdbCacheClosedError, match="closed"):
        await c.invalidate_prefix("")
    with pytest.raises(LmdbCacheClosedError, match="closed"):
        await c.get_or_fetch("k", _never_called)


async def _never_called() -> CachedRows:
    raise AssertionError("fetch must not run")


async def test_close_waits_for_queued_writes(tmp_path: Path) -> None:
    c = LmdbCache(tmp_path / "db")
    puts = [asyncio.ensure_future(c.put(f"k{i}", rows())) for i in range(50)]
    await asyncio.sleep(0)  # let every put enqueue
    await c.aclose()
    await asyncio.gather(*puts)
    async with LmdbCache(tmp_path / "db") as again:
        assert await again.count() == 50


def test_constructor_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="not bytes"):
        LmdbCache(b"x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not float"):
        LmdbCache(tmp_path, map_size=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        LmdbCache(tmp_path, map_size=0)
    with pytest.raises(ValueError, match="below"):
        LmdbCache(tmp_path, map_size=1 << 20, max_map_size=1 << 16)
    with pytest.raises(TypeError, match="not int"):
        LmdbCache(tmp_path, durable=1)  # type: ignore[arg-type]


# -- values -----------------------------------------------------------------------------


async def test_rows_come_back_exactly(cache: LmdbCache) -> None:
    stored = CachedRows(
        {"z": {"b": 2, "a": [1, 2.5, None]}, "a": {"y": b"\x00", "x": {"n": True}}},
        0.1 + 0.2,
    )
    await cache.put("k", stored)
    got = await cache.get("k")
    assert got == stored
    assert got is not None
    assert got.fetched_at == 0.1 + 0.2 and type(got.fetched_at) is float
    assert list(got.rows) == ["z", "a"]
    assert [list(r) for r in got.rows.values()] == [["b", "a"], ["y", "x"]]
    with pytest.raises(TypeError):
        got.rows["z"]["b"] = 3  # type: ignore[index]


async def test_get_decodes_what_from_cbor_decodes(cache: LmdbCache) -> None:
    stored = rows(5)
    await cache.put("k", stored)
    got = await cache.get("k")
    assert got == CachedRows.from_cbor(stored.to_cbor())
    assert repr(got) == repr(stored) and hash(got) == hash(stored)


async def test_put_replaces(cache: LmdbCache) -> None:
    await cache.put("k", rows(1))
    await cache.put("k", rows(3))
    assert await cache.get("k") == rows(3)
    assert await cache.count() == 1


async def test_values_cbor_cannot_encode_raise_and_write_nothing(cache: LmdbCache) -> None:
    # CachedRows refuses them (tests/test_rows_values.py), so they never reach the store.
    await cache.put("k", rows(1))
    with pytest.raises(TypeError, match="row 'r', field 'f': object"):
        await cache.put("k", CachedRows({"r": {"f": object()}}))
    with pytest.raises(ValueError, match="row 'r', field 'f': .*surrogate"):
        await cache.put("new", CachedRows({"r": {"f": "lone \ud800"}}))
    assert await cache.get("k") == rows(1)
    assert await cache.count() == 1


async def test_bad_key_and_value_types_raise_and_write_nothing(cache: LmdbCache) -> None:
    with pytest.raises(TypeError, match="bytes"):
        await cache.put(b"k", rows())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="dict"):
        await cache.put("k", {"r": {}})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="int"):
        await cache.get(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="NoneType"):
        await cache.invalidate_prefix(None)  # type: ignore[arg-type]
    assert await cache.count() == 0


# -- keys -------------------------------------------------------------------------------

ODD_KEYS = [
    "",
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfff\ud800y",
    "\U0001f600",
    "é" * 300,
    "a" * 480,
    "a" * 481,
    "a" * 100_000,
    "\U0001f600" * 50_000,
]


async def test_every_key_the_trie_accepts_round_trips(cache: LmdbCache) -> None:
    for i, key in enumerate(ODD_KEYS):
        await cache.put(key, rows(1, float(i)))
    for i, key in enumerate(ODD_KEYS):
        assert await cache.get(key) == rows(1, float(i)), key[:20]
    assert await cache.count() == len(ODD_KEYS)


async def test_long_keys_sharing_the_stored_head_stay_apart(cache: LmdbCache) -> None:
    head = "h" * HEAD_BYTES
    keys = [head, head + "a", head + "b", head + "ab", head + "a" * 5000]
    for i, key in enumerate(keys):
        await cache.put(key, rows(1, float(i)))
    for i, key in enumerate(keys):
        assert await cache.get(key) == rows(1, float(i))
    assert await cache.get(head + "c") is None
    assert await cache.get(head[:-1]) is None


def test_lmdb_keys_fit_and_short_and_long_never_collide() -> None:
    short, _ = encode_key("a" * HEAD_BYTES)
    long, tail = encode_key("a" * (HEAD_BYTES + 1))
    assert len(long) == _lmdb_format.LONG_LEN <= 511 and tail == b"a"
    assert len(short) < len(long)
    assert encode_key("é" * 1000)[0].startswith(encode_key("é" * 240)[0])


async def test_long_key_whose_digest_collides_reads_as_a_miss(
    cache: LmdbCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    head = "h" * HEAD_BYTES
    monkeypatch.setattr(hashlib, "blake2b", _constant_digest)
    await cache.put(head + "one", rows(1))
    assert await cache.get(head + "two") is None
    assert await cache.get(head + "one") == rows(1)


class _constant_digest:
    def __init__(self, data: bytes, digest_size: int) -> None:
        self.size = digest_size

    def digest(self) -> bytes:
        return b"\x00" * self.size


async def test_invalidating_a_long_prefix_removes_only_its_long_keys(cache: LmdbCache) -> None:
    head = "é" * 239 + "x"  # 479 bytes, so the stored head ends inside the next character
    keys = [head, head + "é", head + "éa", head + "éb", head + "ü", head + "é" * 300]
    for key in keys:
        await cache.put(key, rows())
    assert await cache.invalidate_prefix(head + "éa") == 1
    assert await cache.invalidate_prefix(head + "é") == 3
    assert [await cache.get(k) is not None for k in keys] == [
        True,
        False,
        False,
        False,
        True,
        False,
    ]
    assert await cache.invalidate_prefix(head) == 2
    assert await cache.count() == 0


def test_successor_bounds_exactly_the_keys_under_a_prefix() -> None:
    assert _lmdb_format.successor(b"ka") == b"kb"
    assert _lmdb_format.successor(b"ka\xff\xff") == b"kb"
    for key in (b"ka", b"ka\x00", b"ka\xff\xff\xff", b"ka\xff" * 200):
        assert key < _lmdb_format.successor(b"ka")
    assert not b"kb" < _lmdb_format.successor(b"ka")


async def test_invalidate_empty_prefix_clears_everything(cache: LmdbCache) -> None:
    for key in ODD_KEYS:
        await cache.put(key, rows())
    assert await cache.invalidate_prefix("") == len(ODD_KEYS)
    assert await cache.count() == 0
    assert await cache.get("") is None


_ALPHABET = st.sampled_from(["a", "b", "é", "\U0001f600", "\ud800", "\x00"])
_HEADS = st.sampled_from(["", "a" * 470, "a" * 478, "a" * 479 + "é", "é" * 240, "a" * 900])
_KEYS = st.builds(lambda h, t: h + "".join(t), _HEADS, st.lists(_ALPHABET, max_size=12))


@settings(max_examples=40, deadline=None)
@given(keys=st.lists(_KEYS, max_size=12), extra=_KEYS, cut=st.integers(0, 2000), pick=st.integers())
def test_prefix_semantics_match_str_startswith(
    keys: list[str], extra: str, cut: int, pick: int
) -> None:
    # The prefix is a cut of one stored key (or of another key), so it often matches.
    source = keys[pick % len(keys)] if keys and pick % 3 else extra
    prefix = source[:cut]

    async def check(path: Path) -> None:
        async with LmdbCache(path, durable=False) as c:
            for i, key in enumerate(keys):
                await c.put(key, rows(1, float(i)))
            model = {key: i for i, key in enumerate(keys)}
            removed = await c.invalidate_prefix(prefix)
            assert removed == sum(key.startswith(prefix) for key in model)
            for key, i in model.items():
                expected = None if key.startswith(prefix) else rows(1, float(i))
                assert await c.get(key) == expected
            assert await c.count() == len(model) - removed

    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(check(Path(tmp)))


# -- group commit -----------------------------------------------------------------------


async def test_concurrent_puts_share_transactions_and_return_after_commit(
    tmp_path: Path,
) -> None:
    async with LmdbCache(tmp_path / "db", durable=True) as c:
        store = c._store
        before = store.batches
        committed: list[bool] = []

        async def put(i: int) -> None:
            key = f"k{i}"
            await c.put(key, rows())
            # A fresh read transaction sees committed data only.
            committed.append(store.read(encode_key(key)[0]) is not None)

        await asyncio.gather(*(put(i) for i in range(100)))
        assert committed == [True] * 100
        assert store.batches - before <= 10


async def test_one_failing_request_does_not_fail_its_batch(
    cache: LmdbCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = cache._store
    do = store._do

    def failing_do(txn: Any, req: tuple[Any, ...]) -> object:
        if req[1] == encode_key("bad")[0]:
            raise lmdb.BadValsizeError("injected")
        return do(txn, req)

    monkeypatch.setattr(store, "_do", failing_do)
    results = await asyncio.gather(
        *(cache.put(k, rows()) for k in ("a", "bad", "b")), return_exceptions=True
    )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], LmdbCacheError) and "BadValsizeError: injected" in str(results[1])
    assert isinstance(results[1].__cause__, lmdb.BadValsizeError)
    assert await cache.get("a") == rows() and await cache.get("b") == rows()
    assert await cache.get("bad") is None


async def test_cancelled_put_does_not_break_the_writer(cache: LmdbCache) -> None:
    task = asyncio.ensure_future(cache.put("k", rows()))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await cache.put("other", rows())
    assert await cache.get("other") == rows()


async def test_reads_see_this_processes_queued_writes_in_call_order(cache: LmdbCache) -> None:
    await cache.put("old", rows(1))
    put = asyncio.ensure_future(cache.put("new", rows(2)))
    invalidate = asyncio.ensure_future(cache.invalidate_prefix("old"))
    await asyncio.sleep(0)  # both are queued, probably not committed yet
    assert await cache.get("new") == rows(2)
    assert await cache.get("old") is None
    await put
    assert await invalidate == 1
    assert cache._store.pending == {} and cache._store.pending_invalidations == 0


async def test_a_cancelled_put_still_lands(tmp_path: Path) -> None:
    async with LmdbCache(tmp_path / "db") as c:
        put = asyncio.ensure_future(c.put("k", rows()))
        await asyncio.sleep(0)
        put.cancel()
        assert await c.get("k") == rows()
    async with LmdbCache(tmp_path / "db") as c:
        assert await c.get("k") == rows()


async def test_loops_in_two_threads_share_one_cache(cache: LmdbCache) -> None:
    async def work(tag: str) -> None:
        for i in range(20):
            await cache.put(f"{tag}{i}", rows())
            assert await cache.get(f"{tag}{i}") == rows()

    await asyncio.gather(asyncio.to_thread(asyncio.run, work("t")), work("m"))
    assert await cache.count() == 40


# -- the map ----------------------------------------------------------------------------


async def test_full_map_grows_and_keeps_everything(tmp_path: Path) -> None:
    async with LmdbCache(tmp_path / "db", map_size=1 << 16, durable=False) as c:
        big = CachedRows({f"r{i}": {"pad": "x" * 1000} for i in range(50)}, 1.0)
        for i in range(40):
            await c.put(f"k{i}", big)
        assert c._store.env is not None
        assert c._store.env.info()["map_size"] > 1 << 16
        for i in range(40):
            assert await c.get(f"k{i}") == big


async def test_full_map_at_its_limit_raises_and_loses_nothing(tmp_path: Path) -> None:
    async with LmdbCache(
        tmp_path / "db", map_size=1 << 17, max_map_size=1 << 18, durable=False
    ) as c:
        big = CachedRows({f"r{i}": {"pad": "x" * 1000} for i in range(50)}, 1.0)
        stored = 0
        with pytest.raises(LmdbCacheError, match="full at max_map_size"):
            for i in range(100):
                await c.put(f"k{i}", big)
                stored += 1
        assert 0 < stored < 100
        await c.put("k0", rows(1))  # small writes still fit
        assert await c.get("k0") == rows(1)
        for i in range(1, stored):
            assert await c.get(f"k{i}") == big


# -- bad stored data --------------------------------------------------------------------

_GOOD = rows(2)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"garbage", id="garbage"),
        pytest.param(_GOOD.to_cbor(), id="cbor-without-checksum"),
        pytest.param(_lmdb_format.frame_value(b"", _GOOD.to_cbor())[:-3], id="truncated"),
        pytest.param(_lmdb_format.frame_value(b"", cbor2.dumps("rows")), id="wrong-shape"),
        pytest.param(
            _lmdb_format.frame_value(b"", cbor2.dumps([1, 2.0, [1]])), id="rows-not-a-map"
        ),
        pytest.param(_lmdb_format.frame_value(b"", b"\xff\xff"), id="invalid-cbor"),
        pytest.param(
            _lmdb_format.frame_value(b"", cbor2.dumps([1, 2.0, {"r": [1]}])), id="record-not-a-map"
        ),
        pytest.param(
            _lmdb_format.frame_value(b"", cbor2.dumps([1, 2.0, {"r": [1]}]), flat=True),
            id="flat-record-not-a-map",
        ),
        pytest.param(
            _lmdb_format.frame_value(b"", cbor2.dumps([1, 2, {}])), id="fetched-at-not-float"
        ),
        pytest.param(_lmdb_format.frame_value(b"", cbor2.dumps([])), id="empty-array"),
        pytest.param(
            _lmdb_format.frame_value(b"", cbor2.dumps([2, 1.0, ["f"], ["r", 1, "s"]]), flat=True),
            id="ragged-table",
        ),
        pytest.param(
            _lmdb_format.frame_value(
                b"", cbor2.dumps([2, 1.0, ["f"], ["r", 1, "r", 2]]), flat=True
            ),
            id="table-with-a-repeated-row-id",
        ),
        pytest.param(
            _lmdb_format.frame_value(b"", cbor2.dumps([2, 1.0, {"r": {"f": 1}}]), flat=True),
            id="table-version-map-layout",
        ),
        pytest.param(
            _lmdb_format.frame_value(
                b"", cbor2.dumps([1, 2.0, {"r": {"f": [1], "g": [1]}}], value_sharing=True)
            ),
            id="shared-values",
        ),
    ],
)
async def test_bad_stored_value_is_a_logged_miss_and_removed(
    tmp_path: Path, value: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "db"
    async with LmdbCache(path) as c:
        await c.put("other", _GOOD)
    put_raw(path, "bad key", value)
    async with LmdbCache(path) as c:
        with caplog.at_level(logging.WARNING, logger="trie_cache.lmdb"):
            assert await c.get("bad key") is None
        assert "'bad key'" in caplog.text and "removed" in caplog.text
        assert await c.get("other") == _GOOD
        assert await c.count() == 1
        await c.put("bad key", _GOOD)
        assert await c.get("bad key") == _GOOD


@pytest.mark.parametrize("flat", [False, True])
@pytest.mark.parametrize(
    "payload",
    [[3, 1.0, {"new": "layout"}], [3, 1.0, ["f"], ["r", 1], "more"], [3]],
    ids=["map-like", "table-like", "version-only"],
)
async def test_unknown_format_version_is_a_miss_and_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, payload: list[Any], flat: bool
) -> None:
    path = tmp_path / "db"
    LmdbCache(path).close()
    put_raw(path, "k", _lmdb_format.frame_value(b"", cbor2.dumps(payload), flat=flat))
    async with LmdbCache(path) as c:
        with caplog.at_level(logging.WARNING, logger="trie_cache.lmdb"):
            assert await c.get("k") is None
        assert "format version 3" in caplog.text and "removed" not in caplog.text
        assert await c.count() == 1


async def test_corrupt_data_file_raises_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "db"
    path.mkdir()
    (path / "data.mdb").write_bytes(b"not an lmdb file" * 1000)
    c = LmdbCache(path)
    with pytest.raises(LmdbCacheError, match="cannot open LMDB folder"):
        await c.get("k")
    with pytest.raises(LmdbCacheError, match="cannot open LMDB folder"):
        async with c:
            pass
    await c.aclose()
    assert not c._store.thread.is_alive()


async def test_folder_of_another_layout_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db"
    LmdbCache(path).close()
    env = lmdb.open(str(path), max_dbs=2)
    meta = env.open_db(b"meta")
    with env.begin(write=True, db=meta) as txn:
        txn.put(b"layout", cbor2.dumps({"layout": 99}))
    env.close()
    c = LmdbCache(path)
    with pytest.raises(LmdbCacheError, match="another layout"):
        await c.get("k")
    await c.aclose()


# -- persistence and other processes ----------------------------------------------------


async def test_data_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "db"
    async with LmdbCache(path) as c:
        for key in ODD_KEYS:
            await c.put(key, rows(1))
    async with LmdbCache(path) as c:
        for key in ODD_KEYS:
            assert await c.get(key) == rows(1)


async def test_another_process_reads_what_this_one_wrote(cache: LmdbCache) -> None:
    stored = CachedRows({"b": {"x": 1}, "a": {"y": "é\x00"}}, 1700000000.5)
    await cache.put("shared/key", stored)
    out = await asyncio.to_thread(run_proc, "get", str(cache.path), "shared/key")
    assert json.loads(out) == {
        "fetched_at": 1700000000.5,
        "rows": {"b": {"x": 1}, "a": {"y": "é\x00"}},
    }
    assert list(json.loads(out)["rows"]) == ["b", "a"]


async def test_this_process_reads_what_another_wrote_and_grew(tmp_path: Path) -> None:
    path = tmp_path / "db"
    async with LmdbCache(path, map_size=1 << 16, durable=False) as c:
        await c.put("mine", rows())
        # The other process writes 2 MiB and so grows the map past this one's.
        out = await asyncio.to_thread(run_proc, "put", str(path), "theirs", "2000")
        assert out == "ok"
        got = await c.get("theirs")
        assert got is not None and len(got) == 2000
        await c.put("after", rows())
        assert await c.get("after") == rows() and await c.get("mine") == rows()


def test_kill_9_during_puts_keeps_every_acknowledged_put(tmp_path: Path) -> None:
    path = tmp_path / "db"
    proc = subprocess.Popen(
        [sys.executable, str(PROC), "stream", str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    acknowledged: list[str] = []
    deadline = time.monotonic() + 30
    try:
        assert proc.stdout is not None
        while len(acknowledged) < 300 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            acknowledged.append(line.strip())
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()
    assert len(acknowledged) >= 300, proc.returncode

    async def check() -> None:
        async with LmdbCache(path) as c:
            for key in acknowledged:
                task, i = key[1:].split("/")
                assert await c.get(key) == CachedRows(
                    {"r": {"task": int(task), "i": int(i)}}, float(i)
                ), key
            assert await c.count() >= len(acknowledged)
            await c.put("after", rows())
            assert await c.get("after") == rows()

    asyncio.run(check())
