"""RedisBus against real redis-server processes, with real worker processes (issue #11).

See redis_support.py for where the servers come from. Streams are named per test, so tests
share one server without seeing each other's entries.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("redis", reason="redis-py is not installed (pip install '.[test]')")

import redis.asyncio
from redis_support import ROOT, RedisServer, Worker, shared_url

from trie_cache import CachedRows, LmdbCache, MemCache, NoCache
from trie_cache.redis import BusClosedWarning, BusError, RedisBus

ROWS = CachedRows({"r": {"v": 1}}, 0.0)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, server = shared_url(tmp_path_factory.mktemp("redis"))
    yield url
    if server is not None:
        server.stop()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private server this test may pause, kill and restart."""
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisServer(folder)
    yield server
    server.stop()


@pytest.fixture
def stream() -> str:
    return f"trie_cache:test:{uuid.uuid4().hex}"


@pytest.fixture
async def spawn(tmp_path: Path, stream: str) -> AsyncIterator[Callable[..., Awaitable[Worker]]]:
    """``await spawn(url=..., **config)``: a worker process on ``stream``; closed at the end."""
    started: list[Worker] = []

    async def make(**config: Any) -> Worker:
        config.setdefault("stream", stream)
        worker = await Worker.spawn(tmp_path / f"worker{len(started)}.log", **config)
        started.append(worker)
        return worker

    yield make
    await asyncio.gather(*(worker.close() for worker in started))


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def stream_prefixes(url: str, stream: str) -> list[str]:
    """The prefixes in the stream, oldest first (marker entries left out)."""
    client = redis.asyncio.Redis.from_url(url, decode_responses=True)
    try:
        entries: Any = await client.xrange(stream)
    finally:
        await client.aclose()
    return [fields["p"] for _, fields in entries if "p" in fields]


# -- without a server ---------------------------------------------------------------------------


def test_import_trie_cache_does_not_import_redis() -> None:
    code = (
        "import sys, trie_cache\n"
        "from trie_cache import MemCache, NoCache, LmdbCache\n"
        "MemCache(); NoCache()\n"
        "bad = sorted(m for m in sys.modules if m == 'redis' or m.startswith(('redis.', "
        "'trie_cache.redis')))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"stream": b"s"}, TypeError, "stream must be str, not bytes"),
        ({"stream": ""}, ValueError, "stream must not be empty"),
        ({"maxlen": 1.5}, TypeError, "maxlen must be int, not float"),
        ({"maxlen": 0}, ValueError, "maxlen must be at least 1"),
        ({"max_lag": "1"}, TypeError, "max_lag must be a number of seconds, not str"),
        ({"max_lag": 0}, ValueError, "max_lag must be a positive"),
        ({"publish_timeout": float("nan")}, ValueError, "publish_timeout must be a positive"),
        ({"publish_timeout": True}, TypeError, "not bool"),
    ],
)
def test_bad_arguments_name_the_value(kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        RedisBus("redis://127.0.0.1:1/0", **kwargs)


def test_bad_client_and_bad_bus_name_their_type() -> None:
    with pytest.raises(TypeError, match="url_or_client must be .* not int"):
        RedisBus(6379)
    with pytest.raises(TypeError, match="bus must be a RedisBus or None, not object"):
        MemCache(bus=object())
    with pytest.raises(TypeError, match="bus must be a RedisBus or None, not str"):
        NoCache(bus="redis://")


async def test_start_fails_with_bus_error_when_redis_does_not_answer() -> None:
    bus = RedisBus(f"redis://127.0.0.1:{_closed_port()}/0", publish_timeout=0.5)
    with pytest.raises(BusError, match="did not answer"):
        await bus.start()
    await bus.aclose()


async def test_invalidate_before_start_drops_locally_then_raises() -> None:
    bus = RedisBus("redis://127.0.0.1:1/0")
    cache = MemCache(bus=bus)
    await cache.put("a/1", ROWS)
    with pytest.raises(BusError, match="not started"):
        await cache.invalidate_prefix("a/")
    assert len(cache) == 0
    await bus.aclose()


def _closed_port() -> int:
    from redis_support import free_port

    return free_port()


# -- one process, the shared server -------------------------------------------------------------


@pytest.mark.parametrize(
    ("a_client", "b_client"),
    [
        ({"protocol": 2}, {"protocol": 3}),
        ({"protocol": 3, "decode_responses": True}, {"protocol": 2, "decode_responses": True}),
    ],
    ids=["resp2-to-resp3", "resp3-to-resp2-decoded"],
)
async def test_invalidation_crosses_between_resp2_and_resp3_clients(
    redis_url: str, stream: str, a_client: dict[str, Any], b_client: dict[str, Any]
) -> None:
    ca = redis.asyncio.Redis.from_url(redis_url, **a_client)
    cb = redis.asyncio.Redis.from_url(redis_url, **b_client)
    async with RedisBus(ca, stream=stream) as a, RedisBus(cb, stream=stream) as b:
        cache_a, cache_b = MemCache(bus=a), MemCache(bus=b)
        for key in ("t1/clients/1", "t1/clients/2", "t1/orders/1", "t1/clients\udc80/1"):
            await cache_a.put(key, ROWS)
            await cache_b.put(key, ROWS)
        assert await cache_a.invalidate_prefix("t1/clients/") == 2
        await wait_for(lambda: cache_b.stats().remote_invalidations == 1)
        assert await cache_b.get("t1/clients/1") is None
        assert await cache_b.get("t1/orders/1") is ROWS
        # A prefix that is not valid UTF-8 (a lone surrogate) crosses too.
        assert await cache_b.invalidate_prefix("t1/clients\udc80") == 1
        await wait_for(lambda: cache_a.stats().remote_invalidations == 1)
        assert await cache_a.get("t1/clients\udc80/1") is None
        assert await cache_a.get("t1/orders/1") is ROWS
    await ca.aclose()
    await cb.aclose()


async def test_own_entries_are_not_applied_twice(redis_url: str, stream: str) -> None:
    async with RedisBus(redis_url, stream=stream) as a, RedisBus(redis_url, stream=stream) as b:
        cache_a, cache_b = MemCache(bus=a), MemCache(bus=b)
        await cache_a.invalidate_prefix("p/")
        # Filled again right after its own invalidation: the reader must not drop it again.
        await cache_a.put("p/1", ROWS)
        await wait_for(lambda: cache_b.stats().remote_invalidations == 1)
        await wait_for(lambda: a.position == b.position)
        assert await cache_a.get("p/1") is ROWS
        stats = cache_a.stats()
        assert (stats.invalidations, stats.remote_invalidations) == (1, 0)
        assert await stream_prefixes(redis_url, stream) == ["p/"]


async def test_caches_on_one_bus_share_invalidations(redis_url: str, stream: str) -> None:
    async with RedisBus(redis_url, stream=stream) as bus:
        first, second, none = MemCache(bus=bus), MemCache(bus=bus), NoCache(bus=bus)
        await second.put("a/1", ROWS)
        await second.put("b/1", ROWS)
        await first.invalidate_prefix("a/")
        # Applied to the sibling before the call returned, not through the stream.
        assert await second.get("a/1") is None
        assert await second.get("b/1") is ROWS
        await none.invalidate_prefix("b/")
        assert await second.get("b/1") is None
        assert second.stats().remote_invalidations == 2
        assert await stream_prefixes(redis_url, stream) == ["a/", "b/"]


async def test_recreated_stream_resets(redis_url: str, stream: str) -> None:
    async with RedisBus(redis_url, stream=stream) as a, RedisBus(redis_url, stream=stream) as b:
        cache_a, cache_b = MemCache(bus=a), MemCache(bus=b)
        await cache_b.put("a/1", ROWS)
        await cache_b.put("z/1", ROWS)
        client = redis.asyncio.Redis.from_url(redis_url)
        await client.delete(stream)  # as FLUSHALL would
        await client.aclose()
        await cache_a.invalidate_prefix("a/")  # recreates the stream
        await wait_for(lambda: cache_b.stats().bus_resets == 1)
        assert len(cache_b) == 0
        # A lost its position too: every reader on the stream resets.
        await wait_for(lambda: a.resets == 1 and b.resets == 1)
        # After the reset the reader goes on with the new stream.
        await cache_b.put("c/1", ROWS)
        await cache_a.invalidate_prefix("c/")
        await wait_for(lambda: cache_b.stats().remote_invalidations >= 1 and len(cache_b) == 0)
        assert cache_b.stats().bus_resets == 1


async def test_closing_the_bus_leaves_local_caches_that_warn_once(
    redis_url: str, stream: str
) -> None:
    bus = RedisBus(redis_url, stream=stream)
    await bus.start()
    cache = MemCache(bus=bus)
    await cache.put("a/1", ROWS)
    await cache.put("b/1", ROWS)
    reader, publisher = bus._reader, bus._publisher
    await bus.aclose()
    assert bus.closed and reader is not None and reader.done()
    assert publisher is not None and publisher.done()
    with pytest.warns(BusClosedWarning, match="goes on as a local cache"):
        assert await cache.invalidate_prefix("a/") == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert await cache.invalidate_prefix("b/") == 1
    assert await stream_prefixes(redis_url, stream) == []
    with pytest.raises(BusError, match="closed"):
        MemCache(bus=bus)


async def test_several_invalidations_in_a_row_keep_their_order(redis_url: str, stream: str) -> None:
    async with RedisBus(redis_url, stream=stream) as a, RedisBus(redis_url, stream=stream) as b:
        cache_a, cache_b = MemCache(bus=a), MemCache(bus=b)
        prefixes = [f"k{i}/" for i in range(50)]
        await asyncio.gather(*(cache_a.invalidate_prefix(p) for p in prefixes))
        assert await stream_prefixes(redis_url, stream) == prefixes
        await wait_for(lambda: cache_b.stats().remote_invalidations == 50)


# -- several processes, the shared server ------------------------------------------------------


@pytest.mark.parametrize("processes", [2, 3])
async def test_invalidation_reaches_every_process(
    redis_url: str, spawn: Callable[..., Awaitable[Worker]], processes: int
) -> None:
    workers = list(
        await asyncio.gather(*(spawn(url=redis_url, protocol=2 + i % 2) for i in range(processes)))
    )
    for worker in workers:
        for key in ("t1/clients/1", "t1/clients/2", "t1/orders/1"):
            assert await worker.call("put", key=key) == {"ok": True}
    assert await workers[0].call("invalidate", prefix="t1/clients/") == {"removed": 2}
    for worker in workers[1:]:
        await worker.wait("remote_invalidations", 1)
        assert await worker.call("get", key="t1/clients/1") == {"hit": False}
        assert await worker.call("get", key="t1/clients/2") == {"hit": False}
        assert await worker.call("get", key="t1/orders/1") == {"hit": True}
    assert await workers[-1].call("invalidate", prefix="t1/orders/") == {"removed": 1}
    for worker in workers[:-1]:
        await worker.wait("remote_invalidations", 1)
        assert await worker.call("get", key="t1/orders/1") == {"hit": False}
    stats = (await workers[0].call("stats"))["stats"]
    assert (stats["remote_invalidations"], stats["bus_resets"]) == (1, 0)


async def test_fetch_in_flight_elsewhere_returns_rows_and_stores_nothing(
    redis_url: str, spawn: Callable[..., Awaitable[Worker]]
) -> None:
    a, b = await asyncio.gather(spawn(url=redis_url), spawn(url=redis_url))
    assert await b.call("fetch_start", key="t1/clients/7") == {"ok": True}
    assert await a.call("invalidate", prefix="t1/clients/") == {"removed": 0}
    await b.wait("remote_invalidations", 1)
    assert await b.call("fetch_release", key="t1/clients/7") == {"rows": ["r"]}
    assert await b.call("get", key="t1/clients/7") == {"hit": False}
    stats = (await b.call("stats"))["stats"]
    assert (stats["fills"], stats["stale_fills_prevented"]) == (0, 1)


async def test_lmdb_processes_sharing_a_folder_and_a_bus(
    redis_url: str, spawn: Callable[..., Awaitable[Worker]], tmp_path: Path
) -> None:
    folder = str(tmp_path / "lmdb")
    a, b = await asyncio.gather(
        spawn(url=redis_url, backend="lmdb", path=folder),
        spawn(url=redis_url, backend="lmdb", path=folder, protocol=3),
    )
    await a.call("put", key="t1/orders/1")
    await a.call("put", key="t1/clients/1")
    assert await b.call("get", key="t1/orders/1") == {"hit": True}  # one folder
    assert await b.call("fetch_start", key="t1/clients/2") == {"ok": True}
    assert await a.call("invalidate", prefix="t1/clients/") == {"removed": 1}
    await b.wait("remote_invalidations", 1)
    assert await b.call("fetch_release", key="t1/clients/2") == {"rows": ["r"]}
    for key, hit in (("t1/clients/1", False), ("t1/clients/2", False), ("t1/orders/1", True)):
        assert await a.call("get", key=key) == {"hit": hit}
        assert await b.call("get", key=key) == {"hit": hit}
    stats = (await b.call("stats"))["stats"]
    assert (stats["stale_fills_prevented"], stats["bus_resets"]) == (1, 0)


async def test_trimmed_past_a_reader_resets_it(
    redis_url: str, spawn: Callable[..., Awaitable[Worker]], stream: str
) -> None:
    b = await spawn(url=redis_url)
    await b.call("put", key="t1/orders/1")
    b.pause()  # a stalled worker: its reader falls behind
    try:
        async with RedisBus(redis_url, stream=stream, maxlen=10) as a:
            cache = NoCache(bus=a)
            for i in range(300):
                await cache.invalidate_prefix(f"t1/clients/{i}/")
            client = redis.asyncio.Redis.from_url(redis_url)
            length = await client.xlen(stream)
            await client.aclose()
            assert length < 300  # MAXLEN ~ trimmed the stream
    finally:
        b.resume()
    stats = await b.wait("bus_resets", 1)
    assert await b.call("get", key="t1/orders/1") == {"hit": False}
    assert stats["bus_resets"] == 1


# -- private servers: paused, killed, restarted -------------------------------------------------


async def test_paused_server_makes_gets_miss_until_caught_up(
    server: RedisServer, spawn: Callable[..., Awaitable[Worker]], stream: str
) -> None:
    b = await spawn(url=server.url, max_lag=0.3)
    for key in ("t1/clients/1", "t1/orders/1"):
        await b.call("put", key=key)
    async with RedisBus(server.url, stream=stream, publish_timeout=1.0) as a:
        cache_a = NoCache(bus=a)
        server.pause()
        try:
            await b.wait("lagging", True, timeout=5.0)
            assert await b.call("get", key="t1/orders/1") == {"hit": False}
            with pytest.raises(BusError, match="stays queued"):
                await cache_a.invalidate_prefix("t1/clients/")
            assert a.queued == 1
        finally:
            server.resume()
        await asyncio.wait_for(a.flush(), 5.0)
        stats = await b.wait("remote_invalidations", 1)
        stats = await b.wait("lagging", False)
    assert await b.call("get", key="t1/clients/1") == {"hit": False}
    assert await b.call("get", key="t1/orders/1") == {"hit": True}
    stats = (await b.call("stats"))["stats"]
    assert stats["bypassed"] >= 1 and stats["bus_resets"] == 0


def _v(rows: CachedRows | None) -> Any:
    return None if rows is None else rows.rows["r"]["v"]


@pytest.mark.parametrize("backend", ["mem", "lmdb"])
async def test_lagging_cache_misses_and_still_fetches(
    server: RedisServer, stream: str, backend: str, tmp_path: Path
) -> None:
    async with RedisBus(server.url, stream=stream, max_lag=0.2) as bus:
        if backend == "lmdb":
            cache: Any = LmdbCache(tmp_path / "lmdb", durable=False, bus=bus)
        else:
            cache = MemCache(bus=bus)
        await cache.put("a/1", ROWS)
        await cache.put("a/3", ROWS)
        get = cache.get  # bound before the lag: must be bypassed too
        server.pause()
        try:
            await wait_for(lambda: bus.lagging)
            assert await cache.get("a/1") is None
            assert await get("a/1") is None
            fetched = CachedRows({"r": {"v": 2}}, time.time())

            async def fetch() -> CachedRows:
                return fetched

            # get_or_fetch fetches even for a key it holds, and stores what it fetched.
            assert await cache.get_or_fetch("a/3", fetch) is fetched
            assert await cache.get_or_fetch("a/2", fetch) is fetched
            late = MemCache(bus=bus)  # attached while lagging: it bypasses too
            await late.put("b/1", ROWS)
            await late.put("b/2", ROWS)
            assert await late.get("b/1") is None
            assert await late.get_or_fetch("b/2", fetch) is fetched
            with pytest.raises(TypeError, match="cache keys must be str, not int"):
                await cache.get(1)
        finally:
            server.resume()
        await wait_for(lambda: not bus.lagging)
        assert [_v(await cache.get(k)) for k in ("a/1", "a/2", "a/3")] == [1, 2, 2]
        assert _v(await cache.get_or_fetch("a/1", fetch)) == 1  # the reads are restored
        assert await late.get("b/1") is ROWS
        assert await late.get_or_fetch("b/1", fetch) is ROWS
        stats = cache.stats()
        assert stats.bypassed == 4 and stats.misses == 4  # the refused key is not counted
        assert stats.fills == 2
        await cache.aclose()


async def test_restarted_empty_server_resets_every_cache(
    server: RedisServer, spawn: Callable[..., Awaitable[Worker]], stream: str
) -> None:
    b, c = await asyncio.gather(
        spawn(url=server.url, max_lag=0.5), spawn(url=server.url, max_lag=0.5, protocol=3)
    )
    for worker in (b, c):
        await worker.call("put", key="t1/orders/1")
    server.kill()
    await b.wait("lagging", True)
    assert await b.call("get", key="t1/orders/1") == {"hit": False}
    server.start()
    for worker in (b, c):
        stats = await worker.wait("bus_resets", 1)
        await worker.wait("lagging", False)
        assert await worker.call("get", key="t1/orders/1") == {"hit": False}
    # The readers follow the new stream.
    await c.call("put", key="t1/orders/2")
    assert await b.call("invalidate", prefix="t1/orders/") == {"removed": 0}
    stats = await c.wait("remote_invalidations", 1)
    assert await c.call("get", key="t1/orders/2") == {"hit": False}
    assert stats["bus_resets"] == 1


async def test_failed_append_drops_locally_raises_and_appends_later(
    server: RedisServer, stream: str
) -> None:
    async with RedisBus(server.url, stream=stream, publish_timeout=1.0) as bus:
        cache = MemCache(bus=bus)
        for key in ("a/1", "b/1", "c/1"):
            await cache.put(key, ROWS)
        server.kill()
        for prefix in ("a/", "b/"):
            with pytest.raises(BusError, match=f"invalidation of '{prefix}' within"):
                await cache.invalidate_prefix(prefix)
        assert bus.queued == 2
        assert [await cache.get(k) for k in ("a/1", "b/1", "c/1")] == [None, None, ROWS]
        assert cache.stats().invalidations == 2
        server.start()
        await asyncio.wait_for(bus.flush(), 10.0)
        assert bus.queued == 0
        assert await stream_prefixes(server.url, stream) == ["a/", "b/"]


# -- Sentinel and Cluster clients, each on private servers ---------------------------------------


@pytest.fixture
def sentinel(server: RedisServer, tmp_path: Path) -> Iterator[int]:
    """A Sentinel watching ``server`` as master "trie"; yields the Sentinel's port."""
    from redis_support import free_port, ping

    port = free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor trie 127.0.0.1 {server.port} 1\n"
    )
    proc = subprocess.Popen(
        [server.binary, str(conf), "--sentinel"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        ping(f"redis://127.0.0.1:{port}/0")
        yield port
    finally:
        proc.terminate()
        proc.wait(5)


async def test_sentinel_managed_clients(sentinel: int, stream: str) -> None:
    from redis.asyncio import sentinel as sentinel_module

    Sentinel: Any = sentinel_module.Sentinel  # untyped in redis-py
    sentinels = [Sentinel([("127.0.0.1", sentinel)], protocol=protocol) for protocol in (2, 3)]
    clients = [watcher.master_for("trie") for watcher in sentinels]
    async with RedisBus(clients[0], stream=stream) as a, RedisBus(clients[1], stream=stream) as b:
        cache_a, cache_b = MemCache(bus=a), MemCache(bus=b)
        await cache_b.put("t1/clients/1", ROWS)
        await cache_b.put("t1/orders/1", ROWS)
        assert await cache_a.invalidate_prefix("t1/clients/") == 0
        await wait_for(lambda: cache_b.stats().remote_invalidations == 1)
        assert await cache_b.get("t1/clients/1") is None
        assert await cache_b.get("t1/orders/1") is ROWS
    for client in clients:
        await client.aclose()
    for watcher in sentinels:
        for connection in watcher.sentinels:
            await connection.aclose()


async def test_cluster_clients(tmp_path: Path, stream: str) -> None:
    folder = tmp_path / "cluster"
    folder.mkdir()
    node = RedisServer(
        folder, "--cluster-enabled", "yes", "--cluster-config-file", str(folder / "nodes.conf")
    )
    try:
        admin: Any = redis.Redis(port=node.port)
        admin.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)  # a one-node cluster
        deadline = time.monotonic() + 10
        while b"cluster_state:ok" not in admin.execute_command("CLUSTER", "INFO"):
            assert time.monotonic() < deadline, "the one-node cluster never came up"
            await asyncio.sleep(0.05)
        admin.close()
        clients = [
            redis.asyncio.RedisCluster(host="127.0.0.1", port=node.port, protocol=protocol)
            for protocol in (2, 3)
        ]
        async with (
            RedisBus(clients[0], stream=stream, maxlen=10) as a,
            RedisBus(clients[1], stream=stream) as b,
        ):
            cache_a, cache_b = MemCache(bus=a), MemCache(bus=b)
            await cache_b.put("t1/clients/1", ROWS)
            await cache_b.put("t1/orders/1", ROWS)
            await cache_a.invalidate_prefix("t1/clients/")
            await wait_for(lambda: cache_b.stats().remote_invalidations == 1)
            assert await cache_b.get("t1/clients/1") is None
            assert await cache_b.get("t1/orders/1") is ROWS
            # Several queued appends go out in one cluster pipeline.
            await asyncio.gather(*(cache_a.invalidate_prefix(f"k{i}/") for i in range(20)))
            await wait_for(lambda: cache_b.stats().remote_invalidations == 21)
        for client in clients:
            await client.aclose()
    finally:
        node.stop()


async def test_closing_with_redis_down_reports_what_was_never_appended(
    server: RedisServer, stream: str, caplog: pytest.LogCaptureFixture
) -> None:
    bus = RedisBus(server.url, stream=stream, publish_timeout=1.0)
    await bus.start()
    cache = MemCache(bus=bus)
    server.kill()
    with pytest.raises(BusError, match="stays queued"):
        await cache.invalidate_prefix("a/")
    started = time.monotonic()
    with caplog.at_level("WARNING", logger="trie_cache.redis"):
        await bus.aclose()
    assert time.monotonic() - started < 5.0
    assert bus.closed and bus.queued == 0
    assert "closed with 1 prefixes never appended" in caplog.text
