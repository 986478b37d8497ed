"""Real redis-server processes and worker processes for the RedisBus tests (not collected).

The shared server comes from ``TRIE_CACHE_REDIS_URL`` (``.ci/redis.sh start`` sets it). Without
it a local run starts one from ``redis-server`` on PATH, or skips with the reason; with
``CI=true`` a missing or unreachable server fails the run. Tests that pause, kill or restart a
server start their own (:class:`RedisServer`) and stop it by its PID.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis

ROOT = Path(__file__).resolve().parent.parent
PROC = Path(__file__).with_name("redis_proc.py")
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Skip locally; fail under ``CI=true``, where the server is part of the contract."""
    if IN_CI:
        pytest.fail(f"CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def ping(url: str, timeout: float = 10.0) -> None:
    """Wait until the server at ``url`` answers PING; raise ``redis.ConnectionError`` if not."""
    deadline = time.monotonic() + timeout
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        while True:
            try:
                client.ping()
                return
            except (redis.ConnectionError, redis.TimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    finally:
        client.close()


class RedisServer:
    """A private redis-server (persistence off) on a free loopback port, in ``folder``."""

    def __init__(self, folder: Path, *extra: str) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("no redis-server on PATH (apt-get install redis-server)")
        assert binary is not None
        self.binary = binary
        self.folder = folder
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None
        for _ in range(3):  # a free port can be taken by another process before the server binds
            self.port = free_port()
            self.url = f"redis://127.0.0.1:{self.port}/0"
            try:
                self.start()
                return
            except AssertionError as exc:
                failure = str(exc)
        unavailable(failure)

    def start(self) -> None:
        """Start the server (again, empty) on its port and wait for PING; AssertionError (with
        the server's log) if it does not answer."""
        log_path = self.folder / "redis.log"
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    self.binary,
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.folder),
                    *self.extra,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            ping(self.url)
        except redis.RedisError:
            self.stop()
            tail = log_path.read_text(errors="replace")[-2000:]
            raise AssertionError(
                f"redis-server did not answer on port {self.port}; its log:\n{tail}"
            ) from None

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: everything the server held is gone."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGCONT)  # a paused server would not die of SIGTERM
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


def shared_url(tmp_folder: Path) -> tuple[str, RedisServer | None]:
    """The URL of the server for non-destructive tests, and the server if this run started it."""
    url = os.environ.get("TRIE_CACHE_REDIS_URL")
    if url:
        try:
            ping(url, timeout=5.0)
        except redis.RedisError as exc:
            pytest.fail(f"TRIE_CACHE_REDIS_URL={url} does not answer PING: {exc}", pytrace=False)
        return url, None
    if IN_CI:
        pytest.fail("CI=true but TRIE_CACHE_REDIS_URL is not set (.ci/redis.sh start)")
    server = RedisServer(tmp_folder)
    return server.url, server


class Worker:
    """A Python process with one cache and one RedisBus, driven by JSON lines (redis_proc.py)."""

    def __init__(self, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.proc = proc
        self.log = log

    @classmethod
    async def spawn(cls, log: Path, **config: Any) -> Worker:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        with open(log, "ab") as err:  # noqa: ASYNC230 -- a local file, opened once
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(PROC),
                json.dumps(config),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                env=env,
            )
        worker = cls(proc, log)
        assert await worker.read(30.0) == {"ready": True}
        return worker

    async def read(self, timeout: float) -> Any:
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"worker silent for {timeout}s; log:\n{self.stderr()}") from None
        if not line:
            raise AssertionError(f"worker exited; log:\n{self.stderr()}")
        return json.loads(line)

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    async def call(self, op: str, reply_within: float = 20.0, **args: Any) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **args}).encode() + b"\n")
        await self.proc.stdin.drain()
        return await self.read(reply_within)

    async def wait(self, field: str, value: Any, timeout: float = 10.0) -> Any:
        """Wait until the worker's ``field`` (a stats counter: at least ``value``; ``lagging``:
        equal) holds; return its stats."""
        reply = await self.call("wait", timeout + 5.0, field=field, value=value, timeout=timeout)
        assert reply.get("ok"), f"{field} never reached {value!r}: {reply}\n{self.stderr()}"
        return reply["stats"]

    def pause(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    async def close(self) -> None:
        if self.proc.returncode is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            try:
                await self.call("close", 10.0)
            except (AssertionError, BrokenPipeError, ConnectionResetError):
                pass
            try:
                await asyncio.wait_for(self.proc.wait(), 10.0)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
