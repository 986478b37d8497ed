#!/usr/bin/env python
"""``RedisBus``: how long an invalidation takes to reach another process, and what it costs.

    cd /tmp && PYTHONPATH=/path/to/checkout python /path/to/checkout/bench/bench_redis.py \\
        [--n 10000] [--interval-ms 1] [--url redis://127.0.0.1:6379/0]

Without ``--url`` the script starts a private ``redis-server`` (persistence off) on a free
loopback port and stops it at the end. Two processes: this one (A) and a reader (B, this
script run with ``--reader``), both timing with ``CLOCK_MONOTONIC``, which one machine shares
between processes.

* Propagation delay, bus: A calls ``await cache.invalidate_prefix(p)`` on a ``MemCache`` with a
  ``RedisBus`` ``--n`` times, one every ``--interval-ms`` (1 ms; 0 sends back to back, which
  measures whether B keeps up rather than the delay); B, a ``MemCache`` on its own bus, notes when
  its local drop of ``p`` runs. Delay = B's drop - the start of A's call. p50, p99, max.
* Propagation delay, raw redis-py (the baseline, same run, same server): A awaits
  ``XADD`` ``--n`` times; B loops on ``XREAD BLOCK`` and notes when each entry arrives.
* Cost of the append: ``await invalidate_prefix(p)`` on a ``MemCache`` without a bus and with
  one (which waits for Redis to acknowledge the ``XADD``), against a raw ``await xadd``, alone
  and with a raw ``XREAD BLOCK`` loop on the same stream in this process (a bus reads its own
  entries too: Redis cannot filter them out); per call, p50, p99 and max of ``--n`` calls.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis
import redis.asyncio

import trie_cache
from trie_cache import MemCache
from trie_cache.redis import RedisBus


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": ordered[len(ordered) // 2],
        "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "max": ordered[-1],
    }


class TimedMemCache(MemCache):
    """A MemCache that notes when each local drop of a prefix starts (B's side)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dropped: dict[str, int] = {}

    async def _invalidate(self, prefix: str) -> int:
        self.dropped[prefix] = time.monotonic_ns()
        return await super()._invalidate(prefix)


# -- B: the reader process ------------------------------------------------------------------------


async def reader(mode: str, url: str, stream: str, n: int) -> None:
    arrived: dict[str, int] = {}
    if mode == "bus":
        async with RedisBus(url, stream=stream) as bus:
            cache = TimedMemCache(bus=bus)
            print("ready", flush=True)
            while len(cache.dropped) < n:
                await asyncio.sleep(0.01)
            arrived = cache.dropped
    else:
        client = redis.asyncio.Redis.from_url(url)
        last: Any = "$"
        print("ready", flush=True)
        while len(arrived) < n:
            reply: Any = await client.xread({stream: last}, count=1000, block=1000)
            now = time.monotonic_ns()
            for _, entries in reply:
                for entry_id, fields in entries:
                    arrived[fields[b"p"].decode()] = now
                    last = entry_id
        await client.aclose()
    print(json.dumps(arrived), flush=True)


# -- A: the writer, this process -----------------------------------------------------------------


def spawn_reader(mode: str, url: str, stream: str, n: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--reader",
            mode,
            "--url",
            url,
            "--stream",
            stream,
            "--n",
            str(n),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def delays(proc: subprocess.Popen[str], started: dict[str, int]) -> list[float]:
    out, _ = proc.communicate(timeout=120)
    arrived: dict[str, int] = json.loads(out)
    assert arrived.keys() == started.keys(), "the reader missed invalidations"
    return [(arrived[p] - started[p]) / 1e6 for p in started]  # ms


async def pace(i: int, first: float, interval: float) -> None:
    """Sleep until the ``i``-th send is due, ``interval`` seconds apart from ``first``."""
    due = first + i * interval - time.monotonic()
    if due > 0:
        await asyncio.sleep(due)


async def propagation_bus(url: str, n: int, interval: float) -> list[float]:
    stream = f"bench:{uuid.uuid4().hex}"
    proc = spawn_reader("bus", url, stream, n)
    started: dict[str, int] = {}
    async with RedisBus(url, stream=stream, maxlen=n * 2) as bus:
        cache = MemCache(bus=bus)
        await asyncio.sleep(0.2)
        first = time.monotonic()
        for i in range(n):
            await pace(i, first, interval)
            prefix = f"t{i % 50}/clients/{i}/"
            started[prefix] = time.monotonic_ns()
            await cache.invalidate_prefix(prefix)
    return delays(proc, started)


async def propagation_raw(url: str, n: int, interval: float) -> list[float]:
    stream = f"bench:{uuid.uuid4().hex}"
    proc = spawn_reader("raw", url, stream, n)
    started: dict[str, int] = {}
    client = redis.asyncio.Redis.from_url(url)
    await asyncio.sleep(0.2)
    first = time.monotonic()
    for i in range(n):
        await pace(i, first, interval)
        prefix = f"t{i % 50}/clients/{i}/"
        started[prefix] = time.monotonic_ns()
        await client.xadd(stream, {"o": "bench", "p": prefix}, maxlen=n * 2, approximate=True)
    await client.aclose()
    return delays(proc, started)


async def append_cost(url: str, n: int) -> dict[str, dict[str, float]]:
    stream = f"bench:{uuid.uuid4().hex}"
    client = redis.asyncio.Redis.from_url(url)
    results: dict[str, dict[str, float]] = {}

    async def timed(call: Any) -> dict[str, float]:
        times = []
        for i in range(n):
            prefix = f"t{i % 50}/clients/{i}/"
            t0 = time.perf_counter_ns()
            await call(prefix)
            times.append((time.perf_counter_ns() - t0) / 1e3)  # us
        return percentiles(times)

    local = MemCache()
    results["invalidate_prefix, no bus"] = await timed(local.invalidate_prefix)

    async def raw(prefix: str) -> None:
        await client.xadd(stream, {"o": "bench", "p": prefix}, maxlen=n * 2, approximate=True)

    results["raw await xadd"] = await timed(raw)

    stop = asyncio.Event()

    async def follow() -> None:
        # What a bus does besides appending: read the stream, own entries included.
        reader = redis.asyncio.Redis.from_url(url)
        newest: Any = await reader.xrevrange(stream, "+", "-", count=1)
        last = newest[0][0]
        while not stop.is_set():  # redis-py may swallow a cancellation: stop by a flag
            reply: Any = await reader.xread({stream: last}, count=1000, block=100)
            for _, entries in reply:
                last = entries[-1][0]
        await reader.aclose()

    following = asyncio.ensure_future(follow())
    await asyncio.sleep(0.1)
    results["raw await xadd + raw XREAD loop"] = await timed(raw)
    stop.set()
    await following
    async with RedisBus(url, stream=stream, maxlen=n * 2) as bus:
        shared = MemCache(bus=bus)
        results["invalidate_prefix, with bus"] = await timed(shared.invalidate_prefix)
    await client.aclose()
    return results


def start_server(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("no redis-server on PATH; pass --url")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    client.close()
    return proc, url


async def main(url: str, n: int, interval: float) -> None:
    print(
        f"trie_cache {trie_cache.__version__}, core {trie_cache.CORE}, redis-py "
        f"{redis.__version__}, n={n}, interval {interval * 1000:g} ms, load {os.getloadavg()[0]:.2f}"
    )
    raw = await propagation_raw(url, n, interval)
    bus = await propagation_bus(url, n, interval)
    print("\npropagation delay, A's call -> B (ms)      p50      p99      max")
    for name, values in (("raw redis-py XADD -> XREAD", raw), ("RedisBus invalidate -> drop", bus)):
        p = percentiles(values)
        print(f"  {name:<38} {p['p50']:8.3f} {p['p99']:8.3f} {p['max']:8.3f}")
    p_raw, p_bus = percentiles(raw), percentiles(bus)
    print(
        f"  bus / raw: p50 {p_bus['p50'] / p_raw['p50']:.2f}x, p99 {p_bus['p99'] / p_raw['p99']:.2f}x;"
        f" target p99 <= 5 ms: {'met' if p_bus['p99'] <= 5.0 else 'NOT met'}"
    )
    cost = await append_cost(url, n)
    print("\nper call (us)                              p50      p99      max")
    for name, p in cost.items():
        print(f"  {name:<38} {p['p50']:8.1f} {p['p99']:8.1f} {p['max']:8.1f}")
    added = cost["invalidate_prefix, with bus"]["p50"] - cost["invalidate_prefix, no bus"]["p50"]
    print(
        f"  the append adds {added:.1f} us at p50 ("
        f"{cost['invalidate_prefix, with bus']['p50'] / cost['raw await xadd']['p50']:.2f}x a raw"
        " await xadd, "
        f"{cost['invalidate_prefix, with bus']['p50'] / cost['raw await xadd + raw XREAD loop']['p50']:.2f}x"
        " one with a raw reader beside it)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--url")
    parser.add_argument(
        "--interval-ms", type=float, default=1.0, help="between sends (0: back to back)"
    )
    parser.add_argument("--reader", choices=["bus", "raw"], help=argparse.SUPPRESS)
    parser.add_argument("--stream", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reader:
        asyncio.run(reader(args.reader, args.url, args.stream, args.n))
        sys.exit(0)
    assert trie_cache.CORE == "cython", (
        f"the benchmark runs on the compiled core, not {trie_cache.CORE}"
    )
    if args.url:
        asyncio.run(main(args.url, args.n, args.interval_ms / 1000))
    else:
        with tempfile.TemporaryDirectory() as folder:
            server, server_url = start_server(Path(folder))
            try:
                asyncio.run(main(server_url, args.n, args.interval_ms / 1000))
            finally:
                server.send_signal(signal.SIGTERM)
                server.wait()
