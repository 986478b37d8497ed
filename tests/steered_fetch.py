"""An async fetch function a test steers, shared by the read-through test modules."""

from __future__ import annotations

import asyncio
from typing import Any


class SteeredFetch:
    """Counts its calls, waits on ``gate`` (open unless ``gated``), then returns ``result``
    or raises it if it is an exception; notes whether it was cancelled while waiting."""

    def __init__(self, result: object, *, gated: bool) -> None:
        self.result = result
        self.calls = 0
        self.started = asyncio.Event()
        self.gate = asyncio.Event()
        if not gated:
            self.gate.set()
        self.cancelled = False

    async def __call__(self) -> Any:
        self.calls += 1
        self.started.set()
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result
