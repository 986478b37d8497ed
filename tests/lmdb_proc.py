"""A second process for the LmdbCache tests (run as a script, not collected by pytest).

python tests/lmdb_proc.py stream PATH      put keys from 20 tasks forever, printing each
                                           key after its ``await put`` returned
python tests/lmdb_proc.py get PATH KEY     print the rows under KEY as JSON, or MISS
python tests/lmdb_proc.py put PATH KEY N   put N rows (about 1 KiB each) under KEY
"""

from __future__ import annotations

import asyncio
import json
import sys

from trie_cache import CachedRows, LmdbCache


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


def main(argv: list[str]) -> None:
    command, path, *rest = argv
    if command == "stream":
        asyncio.run(stream(path))
    elif command == "get":
        asyncio.run(get(path, rest[0]))
    elif command == "put":
        asyncio.run(put(path, rest[0], int(rest[1])))
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
