"""LmdbCache under faults: maps other processes resize, a map at its limit, a file that cannot grow.

Each fault is real: a second process (``tests/lmdb_proc.py``) grows the map or holds the write
lock, LMDB runs out of map, or ``RLIMIT_FSIZE`` stops the data file from growing. What must hold
(issue 12): only the request that does not fit fails, what is stored stays readable, a full
cache can be cleaned, no stale row is served, and nothing but ``LmdbCacheError`` (or
``TypeError``/``ValueError`` for bad input) leaves the cache.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import lmdb
import pytest
from lmdb_proc import run_proc

from trie_cache import CachedRows, LmdbCache
from trie_cache._lmdb import LmdbCacheClosedError, LmdbCacheError

ROOT = Path(__file__).resolve().parents[1]
PROC = Path(__file__).with_name("lmdb_proc.py")
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def rows(n: int = 2, fetched_at: float = 1700000000.5) -> CachedRows:
    return CachedRows({f"r{i}": {"i": i, "name": f"n{i}"} for i in range(n)}, fetched_at)


def padded(n: int) -> CachedRows:
    """``n`` rows of about 1 KiB each."""
    return CachedRows({f"r{i}": {"pad": "x" * 1000} for i in range(n)}, 1.0)


class Helper:
    """A second process run with ``lmdb_proc.py COMMAND PATH``, driven line by line."""

    def __init__(self, command: str, path: Path, ready: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(PROC), command, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        self.expect(ready)

    def expect(self, line: str) -> None:
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == line

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def finish(self) -> None:
        """Close its stdin (which ends it) and wait for it."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        assert self.proc.wait(timeout=30) == 0
        self.proc.stdout.close()


async def until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.005)


# -- maps resized by other processes (items 2 and 4) -----------------------------------


async def test_open_adopts_a_map_another_process_grows_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "db"
    LmdbCache(path, map_size=1 << 16).close()
    real_open = lmdb.open
    grown: list[str] = []

    def open_then_let_another_process_grow(*args: Any, **kwargs: Any) -> lmdb.Environment:
        env = real_open(*args, **kwargs)
        if not grown:
            # Between this process's lmdb.open and its first transaction, another process
            # writes 2 MiB and so grows the map past this one's 64 KiB.
            grown.append(run_proc("put", str(path), "theirs", "2000"))
        return env

    monkeypatch.setattr(lmdb, "open", open_then_let_another_process_grow)
    async with LmdbCache(path, map_size=1 << 16) as c:
        got = await c.get("theirs")
        assert got is not None and len(got) == 2000
        await c.put("mine", rows())
        assert await c.count() == 2
    assert grown == ["ok"]


async def test_count_adopts_a_map_another_process_grew(tmp_path: Path) -> None:
    path = tmp_path / "db"
    async with LmdbCache(path, map_size=1 << 16, durable=False) as c:
        await c.put("mine", rows())
        assert await asyncio.to_thread(run_proc, "put", str(path), "theirs", "2000") == "ok"
        assert await c.count() == 2
        assert await c.get("mine") == rows()


# -- a small map_size (item 6) ----------------------------------------------------------


@pytest.mark.parametrize("max_map_size", [None, 1 << 20])
@pytest.mark.parametrize("map_size", [4096, 16384, 32768])
async def test_a_small_map_size_grows_to_open_a_fresh_folder(
    tmp_path: Path, map_size: int, max_map_size: int | None
) -> None:
    path = tmp_path / "db"
    async with LmdbCache(path, map_size=map_size, max_map_size=max_map_size) as c:
        await c.put("k", rows())
        assert await c.get("k") == rows()
    async with LmdbCache(path, map_size=map_size, max_map_size=max_map_size) as c:
        assert await c.get("k") == rows()


async def test_databases_that_cannot_fit_max_map_size_are_refused_on_open(
    tmp_path: Path,
) -> None:
    c = LmdbCache(tmp_path / "db", map_size=4096, max_map_size=8192)
    with pytest.raises(LmdbCacheError, match="do not fit in max_map_size=8192"):
        await c.get("k")
    await c.aclose()


# -- the map at max_map_size (item 3) ---------------------------------------------------


async def test_at_the_limit_only_the_put_that_does_not_fit_fails_in_its_batch(
    tmp_path: Path,
) -> None:
    path = tmp_path / "db"
    async with LmdbCache(path) as c:
        await c.put("corrupt", rows())
    env = lmdb.open(str(path), max_dbs=2)
    with env.begin(write=True, db=env.open_db(b"rows")) as txn:
        txn.put(b"kcorrupt", b"not rows")
    env.close()
    async with LmdbCache(path, map_size=1 << 18, max_map_size=1 << 19, durable=False) as c:
        for i in range(20):
            await c.put(f"old/{i}", rows(3))
        store = c._store
        holder = Helper("hold", path, "locked")  # holds the write lock until stdin closes
        try:
            # The writer takes this put and waits for the write lock; what follows queues
            # up behind it and is applied as one batch once the lock is free.
            first = asyncio.ensure_future(c.put("first", rows()))
            await until(lambda: store._queue.qsize() == 0, "the writer takes the first put")
            await asyncio.sleep(0.1)  # and reaches the lock
            batch = [
                asyncio.ensure_future(c.put("huge", padded(600))),  # more than max_map_size
                asyncio.ensure_future(c.put("small", rows(1))),
                asyncio.ensure_future(c.get("corrupt")),  # queues the removal of the value
                asyncio.ensure_future(c.invalidate_prefix("old/")),
                asyncio.ensure_future(c.put("old/after", rows(2))),  # lands after it
            ]
            await until(lambda: store._queue.qsize() == 5, "the batch is queued")
        finally:
            await asyncio.to_thread(holder.finish)
        results = await asyncio.gather(first, *batch, return_exceptions=True)
    assert results[0] is None
    assert isinstance(results[1], LmdbCacheError)
    assert "full at max_map_size=524288" in str(results[1])
    assert results[2:] == [None, None, 20, None]
    async with LmdbCache(path) as c:
        assert await c.get("huge") is None
        assert await c.get("small") == rows(1) and await c.get("first") == rows()
        assert await c.get("old/after") == rows(2)
        assert await c.count() == 3  # "corrupt" and the 20 older "old/" keys are gone


async def test_a_full_cache_can_always_be_cleaned(tmp_path: Path) -> None:
    # Deleting from a full LMDB map needs free pages (copy-on-write, the free list): without
    # the reserve the first invalidation below fails with MDB_MAP_FULL.
    page = CachedRows({"r": {"pad": bytes(range(256)) + bytes(44)}}, 1.0)
    async with LmdbCache(
        tmp_path / "db", map_size=1 << 20, max_map_size=1 << 20, durable=False
    ) as c:
        stored = 0
        while True:
            results = await asyncio.gather(
                *(c.put(f"k/{stored + i:08}", page) for i in range(50)), return_exceptions=True
            )
            stored += 50
            if any(isinstance(r, LmdbCacheError) for r in results):
                break
        while True:
            try:
                await c.put(f"k/{stored:08}", page)
            except LmdbCacheError as exc:
                assert "full at max_map_size" in str(exc)
                break
            stored += 1
        assert stored > 1000
        for i in range(10, 60):
            assert await c.invalidate_prefix(f"k/{i:07}") == 10, i
            assert await c.get(f"k/{i:07}5") is None
        assert await c.get("k/00000605") == page
        remaining = await c.count()
        assert await c.invalidate_prefix("") == remaining > 0
        assert await c.count() == 0
        for i in range(stored // 2):
            await c.put(f"again/{i}", page)
        assert await c.get("again/0") == page


async def test_a_full_cache_keeps_what_it_stored(tmp_path: Path) -> None:
    async with LmdbCache(tmp_path / "db", map_size=1 << 18, max_map_size=1 << 19) as c:
        stored = 0
        with pytest.raises(LmdbCacheError, match="nothing was written"):
            while True:
                await c.put(f"k{stored}", padded(3))
                stored += 1
        results = await asyncio.gather(
            *(c.put(f"k{stored + i}", padded(3)) for i in range(20)), return_exceptions=True
        )
        assert all(isinstance(r, LmdbCacheError) for r in results)
        for i in range(stored):
            assert await c.get(f"k{i}") == padded(3)
        assert await c.count() == stored


# -- a file that cannot grow (item 5) ---------------------------------------------------


def fsize_scenario(path: Path, limit: str) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(run_proc("fsize", str(path), limit, timeout=120))
    return report


def test_a_file_that_cannot_grow_fails_puts_alone_and_keeps_invalidating(tmp_path: Path) -> None:
    # RLIMIT_FSIZE at the data file's size: LMDB gets EFBIG for pages past its end, as it
    # would get ENOSPC on a full disk.
    report = fsize_scenario(tmp_path / "db", "file")
    assert report["put"].startswith("LmdbCacheError: ")
    assert "File too large" in report["put"] and "nothing was written" in report["put"]
    assert report["readable"] is True
    assert report["corrupt"] == "miss"
    put, removed = report["batch"]
    assert put.startswith("LmdbCacheError: ") and "File too large" in put
    assert isinstance(removed, int) and removed >= 11
    assert report["b/1 after"] == "miss"
    # Each invalidation commits (a prefix, or every row if it had to); none is stale.
    for i, (removed, got) in enumerate(report["invalidations"]):
        assert isinstance(removed, int), (i, removed)
        assert got == "miss", (i, got)
    assert isinstance(report["clear"], int)
    assert report["a/1 after clear"] == "miss"
    assert report["after"] == "rows" and report["count"] == 1


def test_an_invalidation_that_cannot_be_committed_refuses_reads_under_it(
    tmp_path: Path,
) -> None:
    # RLIMIT_FSIZE at 8 KiB: only LMDB's two meta pages can be written, so no commit with
    # data pages succeeds, not even dropping every row. Reads still work (they map the file).
    report = fsize_scenario(tmp_path / "db", "8192")
    assert report["put"].startswith("LmdbCacheError: ") and "File too large" in report["put"]
    assert report["readable"] is True
    assert report["corrupt"] == "miss"  # its removal failed: still a miss, not an error
    put, failed = report["batch"]
    assert put.startswith("LmdbCacheError: ")
    assert failed.startswith("LmdbCacheError: cannot invalidate prefix 'b/1'")
    assert "nor drop every row" in failed and "File too large" in failed
    assert report["b/1 after"].startswith("LmdbCacheError: ")
    assert "may be stale" in report["b/1 after"]
    assert report["b/2 after"] == "rows"  # not under the prefix
    for i, (removed, got) in enumerate(report["invalidations"]):
        assert removed.startswith("LmdbCacheError: cannot invalidate"), (i, removed)
        assert got.startswith("LmdbCacheError: ") and "may be stale" in got, (i, got)
    # The limit lifted, invalidating everything commits and ends the refusal.
    assert report["clear"] == 101
    assert report["a/1 after clear"] == "miss"
    assert report["after"] == "rows" and report["count"] == 1


# -- the audit: raw lmdb errors never escape --------------------------------------------


async def test_a_read_lmdb_refuses_raises_lmdb_cache_error(tmp_path: Path) -> None:
    path = tmp_path / "db"
    LmdbCache(path).close()
    # Nobody has the folder open: the other process creates a new lock file with one reader
    # slot (LMDB keeps a lock file's size), and takes that slot when told.
    (path / "lock.mdb").unlink()
    other = Helper("readers", path, "open")
    try:
        async with LmdbCache(path) as c:
            await c.put("k", rows())
            assert await c.get("k") == rows()
            other.send("read")
            other.expect("reading")
            with pytest.raises(LmdbCacheError, match="cannot read LMDB folder .*ReadersFull"):
                await c.get("k")
            with pytest.raises(LmdbCacheError, match="cannot read LMDB folder .*ReadersFull"):
                await c.count()
            await c.put("k2", rows())  # a write needs no reader slot
    finally:
        other.finish()


async def test_the_closed_error_is_an_lmdb_cache_error(tmp_path: Path) -> None:
    c = LmdbCache(tmp_path / "db")
    await c.aclose()
    for call in (c.get("k"), c.put("k", rows()), c.invalidate_prefix(""), c.count()):
        with pytest.raises(LmdbCacheError, match="is closed") as info:
            await call
        assert isinstance(info.value, LmdbCacheClosedError)
        assert isinstance(info.value, RuntimeError)  # what it was before
