"""A second process for the LmdbCache tests (run as a script, not collected by pytest);
the tests start it with :func:`run_proc`.

python tests/lmdb_proc.py stream PATH      put keys from 20 tasks forever, printing each
                                           key after its ``await put`` returned
python tests/lmdb_proc.py get PATH KEY     print the rows under KEY as JSON, or MISS
python tests/lmdb_proc.py put PATH KEY N   put N rows (about 1 KiB each) under KEY
python tests/lmdb_proc.py hold PATH        hold the folder's write lock (an open write
                                           transaction), print "locked", release it when
                                           stdin closes
python tests/lmdb_proc.py readers PATH     open the folder with one reader slot, print "open";
                                           on a line from stdin take that slot, print
                                           "reading"; exit when stdin closes
python tests/lmdb_proc.py fsize PATH LIMIT run the file-size-limit scenario below with
                                           RLIMIT_FSIZE lowered to LIMIT bytes ("file": the
                                           data file's size) and SIGXFSZ ignored, printing
                                           what each step did as JSON
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import lmdb

import trie_cache
from trie_cache import CachedRows, LmdbCache
from trie_cache._lmdb_format import encode_key


def run_proc(*args: str, timeout: float = 60) -> str:
    """Run this script with ``args`` in a fresh interpreter that imports the same trie_cache
    as the caller; what it printed, stripped (``CalledProcessError`` if it failed)."""
    root = Path(trie_cache.__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, __file__, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(root)},
        check=True,
    )
    return done.stdout.strip()


def rows_of(n: int, fetched_at: float = 1.25) -> CachedRows:
    return CachedRows({f"r{i}": {"i": i, "pad": "x" * 1000} for i in range(n)}, fetched_at)


async def stream(path: str) -> None:
    async with LmdbCache(path, durable=True, map_size=1 << 20) as cache:

        async def writer(task: int) -> None:
            i = 0
            while True:
                key = f"t{task}/{i}"
                await cache.put(key, CachedRows({"r": {"task": task, "i": i}}, float(i)))
                sys.stdout.write(key + "\n")
                sys.stdout.flush()
                i += 1

        await asyncio.gather(*(writer(t) for t in range(20)))


async def get(path: str, key: str) -> None:
    async with LmdbCache(path) as cache:
        rows = await cache.get(key)
    if rows is None:
        print("MISS")
    else:
        print(
            json.dumps(
                {"fetched_at": rows.fetched_at, "rows": {k: dict(v) for k, v in rows.rows.items()}}
            )
        )


async def put(path: str, key: str, n: int) -> None:
    async with LmdbCache(path, map_size=1 << 16) as cache:
        await cache.put(key, rows_of(n))
    print("ok")


def hold(path: str) -> None:
    env = lmdb.open(path, max_dbs=2)
    txn = env.begin(write=True)
    print("locked", flush=True)
    sys.stdin.read()
    txn.abort()
    env.close()


def readers(path: str) -> None:
    env = lmdb.open(path, max_dbs=2, max_readers=1)
    print("open", flush=True)
    sys.stdin.readline()
    txn = env.begin()
    print("reading", flush=True)
    sys.stdin.read()
    txn.abort()
    env.close()


def outcome(result: Any) -> Any:
    """A JSON-able account of a result or exception of ``gather(return_exceptions=True)``."""
    if isinstance(result, BaseException):
        return f"{type(result).__name__}: {result}"
    if isinstance(result, CachedRows):
        return "rows"
    return "miss" if result is None else result


async def fsize(path: str, limit: str) -> None:
    """Puts, reads and invalidations while the data file cannot grow (or be written)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    report: dict[str, Any] = {}
    LmdbCache(path).close()
    env = lmdb.open(path, max_dbs=2)
    with env.begin(write=True, db=env.open_db(b"rows")) as txn:
        txn.put(encode_key("corrupt")[0], b"not rows")
    env.close()
    async with LmdbCache(path, map_size=4 << 20) as cache:
        for tenant in "ab":
            for i in range(50):
                await cache.put(f"{tenant}/{i}", rows_of(2))
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        size = os.path.getsize(os.path.join(path, "data.mdb")) if limit == "file" else int(limit)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
        report["put"] = "ok"
        for i in range(500):
            try:
                await cache.put(f"c/{i}", rows_of(4))
            except Exception as exc:  # noqa: BLE001 - reported to the test
                report["put"] = outcome(exc)
                break
        stored = [await cache.get(f"{t}/{i}") for t in "ab" for i in range(50)]
        report["readable"] = all(rows == rows_of(2) for rows in stored)
        report["corrupt"] = outcome(
            (await asyncio.gather(cache.get("corrupt"), return_exceptions=True))[0]
        )
        report["batch"] = [
            outcome(r)
            for r in await asyncio.gather(
                cache.put("c/big", rows_of(50)),
                cache.invalidate_prefix("b/1"),
                return_exceptions=True,
            )
        ]
        report["b/1 after"] = outcome(
            (await asyncio.gather(cache.get("b/1"), return_exceptions=True))[0]
        )
        report["b/2 after"] = outcome(
            (await asyncio.gather(cache.get("b/2"), return_exceptions=True))[0]
        )
        steps = []
        for i in range(50):
            removed, got = await asyncio.gather(
                cache.invalidate_prefix(f"a/{i}"), cache.get(f"a/{i}"), return_exceptions=True
            )
            steps.append([outcome(removed), outcome(got)])
        report["invalidations"] = steps
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        report["clear"] = outcome(
            (await asyncio.gather(cache.invalidate_prefix(""), return_exceptions=True))[0]
        )
        report["a/1 after clear"] = outcome(
            (await asyncio.gather(cache.get("a/1"), return_exceptions=True))[0]
        )
        await cache.put("after", rows_of(1))
        report["after"] = outcome(await cache.get("after"))
        report["count"] = await cache.count()
    print(json.dumps(report))


def main(argv: list[str]) -> None:
    command, path, *rest = argv
    if command == "stream":
        asyncio.run(stream(path))
    elif command == "get":
        asyncio.run(get(path, rest[0]))
    elif command == "put":
        asyncio.run(put(path, rest[0], int(rest[1])))
    elif command == "hold":
        hold(path)
    elif command == "readers":
        readers(path)
    elif command == "fsize":
        asyncio.run(fsize(path, rest[0]))
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
