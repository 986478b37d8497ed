"""A worker process for the RedisBus tests (run as a script, not collected by pytest).

python tests/redis_proc.py CONFIG_JSON

CONFIG_JSON: {"url", "stream", "backend": "mem" | "lmdb", "path" (lmdb), "protocol": 2 | 3,
"max_lag", "publish_timeout", "maxlen"}. The process opens one RedisBus and one cache on it,
prints {"ready": true}, then answers one JSON line per command line on stdin:

  {"op": "put", "key"}                    -> {"ok": true}
  {"op": "get", "key"}                    -> {"hit": bool}
  {"op": "invalidate", "prefix"}          -> {"removed": n} or {"error": "BusError: ..."}
  {"op": "fetch_start", "key"}            -> {"ok": true} once the fetch function is running
  {"op": "fetch_release", "key"}          -> {"rows": [...]}: what get_or_fetch returned
  {"op": "stats"}                         -> {"stats": {...}}
  {"op": "wait", "field", "value", "timeout"} -> {"ok": bool, "stats": {...}}
  {"op": "flush"}                         -> {"ok": true}
  {"op": "close"}                         -> {"ok": true}, then exits
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import time
from typing import Any

import redis.asyncio

from trie_cache import CachedRows, LmdbCache, MemCache
from trie_cache.redis import BusError, RedisBus


def rows_for(key: str) -> CachedRows:
    return CachedRows({"r": {"key": key}}, time.time())


class Worker:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.fetches: dict[str, tuple[asyncio.Event, asyncio.Task[CachedRows]]] = {}

    async def open(self) -> None:
        config = self.config
        client = redis.asyncio.Redis.from_url(config["url"], protocol=config.get("protocol", 2))
        self.client = client
        self.bus = RedisBus(
            client,
            stream=config["stream"],
            max_lag=config.get("max_lag", 5.0),
            publish_timeout=config.get("publish_timeout", 2.0),
            maxlen=config.get("maxlen", 100_000),
        )
        await self.bus.start()
        if config.get("backend", "mem") == "lmdb":
            self.cache: Any = LmdbCache(config["path"], durable=False, bus=self.bus)
        else:
            self.cache = MemCache(bus=self.bus)

    def stats(self) -> dict[str, Any]:
        stats = dataclasses.asdict(self.cache.stats())
        stats.update(lagging=self.bus.lagging, queued=self.bus.queued)
        return stats

    async def fetch_start(self, key: str) -> None:
        release = asyncio.Event()
        running = asyncio.Event()

        async def fetch() -> CachedRows:
            running.set()
            await release.wait()
            return rows_for(key)

        task = asyncio.ensure_future(self.cache.get_or_fetch(key, fetch))
        self.fetches[key] = (release, task)
        await running.wait()

    async def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        op = command["op"]
        if op == "put":
            await self.cache.put(command["key"], rows_for(command["key"]))
            return {"ok": True}
        if op == "get":
            return {"hit": await self.cache.get(command["key"]) is not None}
        if op == "invalidate":
            try:
                return {"removed": await self.cache.invalidate_prefix(command["prefix"])}
            except BusError as exc:
                return {"error": f"BusError: {exc}"}
        if op == "fetch_start":
            await self.fetch_start(command["key"])
            return {"ok": True}
        if op == "fetch_release":
            release, task = self.fetches.pop(command["key"])
            release.set()
            rows = await task
            return {"rows": sorted(rows.rows)}
        if op == "stats":
            return {"stats": self.stats()}
        if op == "wait":
            field, value = command["field"], command["value"]
            deadline = time.monotonic() + command["timeout"]
            while True:
                stats = self.stats()
                now = stats[field]
                if (now == value) if isinstance(value, bool) else (now >= value):
                    return {"ok": True, "stats": stats}
                if time.monotonic() > deadline:
                    return {"ok": False, "stats": stats}
                await asyncio.sleep(0.005)
        if op == "flush":
            await self.bus.flush()
            return {"ok": True}
        if op == "close":
            await self.bus.aclose()
            await self.cache.aclose()
            await self.client.aclose()
            return {"ok": True}
        raise ValueError(f"unknown op {op!r}")


async def main(config: dict[str, Any]) -> None:
    worker = Worker(config)
    await worker.open()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"ready": True}), flush=True)
    while line := await reader.readline():
        command = json.loads(line)
        print(json.dumps(await worker.handle(command)), flush=True)
        if command["op"] == "close":
            return


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
